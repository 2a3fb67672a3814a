//! Documents for the agents' tasks: `POST /v1/parse` extracts the text of an uploaded
//! PDF, DOCX, ODT or TXT file (the file is read in memory and dropped: nothing is stored).
//! It is a model request for the accounting (charter, quotas, requests in flight, audit:
//! the `meter` middleware); the extraction runs in a child process under the `[documents]`
//! budgets (wall clock, memory), at most `documents.max_parallel` at once;
//! `POST /v1/exports/{docx|odt|txt}` turns a draft, and `POST /v1/exports/tables/{ods|csv}` a
//! table, into a file that carries the AI marking (AI Act art. 50) in its metadata (CSV has
//! none) and, by default, a visible notice.
//!
//! Refusals are English with the document's `code` and `details` (docs/errors.md).

use crate::body::{parse_json, read_body, read_bytes, MAX_DOCUMENT_BYTES};
use crate::error::Class;
use crate::extract::principal;
use crate::{ApiError, ApiState};
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{header, Extensions, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use civia_auth::MODEL_USERS;
use civia_documents::isolated::Sandbox;
use civia_documents::{Error as DocError, ErrorKind, ExportFormat, Limits, TableFormat};
use civia_metering::UsageTicket;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

/// Header naming the uploaded file (percent-encoded UTF-8), a hint next to its content type.
pub const FILENAME_HEADER: &str = "x-civia-filename";

fn doc_error(e: &DocError) -> ApiError {
    let class = match e.kind() {
        ErrorKind::TooLarge => Class::TooLarge,
        ErrorKind::Encrypted
        | ErrorKind::NoText
        | ErrorKind::Unsupported
        | ErrorKind::Invalid
        | ErrorKind::InvalidDraft => Class::Invalid,
        ErrorKind::Exhausted => {
            log::warn!("document extraction stopped: {e}");
            Class::Unprocessable
        }
        ErrorKind::Internal => {
            log::error!("document service failed: {e}");
            Class::Internal
        }
    };
    ApiError::of(class, e.code(), e.to_string()).with_details(e.details())
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// The places of the extractions running at once (`documents.max_parallel`, read once).
static PLACES: std::sync::OnceLock<Arc<tokio::sync::Semaphore>> = std::sync::OnceLock::new();

/// A place among the extractions running at once, or 503 with Retry-After at once.
fn extraction_place(st: &ApiState) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
    let places = PLACES.get_or_init(|| {
        Arc::new(tokio::sync::Semaphore::new(
            st.config.documents.max_parallel,
        ))
    });
    places.clone().try_acquire_owned().map_err(|_| {
        let mut e = ApiError::of(
            Class::Unavailable,
            "documents_busy",
            "the box is already reading several documents: retry in a few seconds",
        );
        e.retry_after_secs = Some(5);
        e
    })
}

/// How the extraction process is run: civiad itself (`civiad extract-document`) unless
/// `documents.extractor` names another program.
fn sandbox(cfg: &civia_config::DocumentsConfig) -> Result<Sandbox, ApiError> {
    let (program, args) = match &cfg.extractor {
        Some(p) => (p.clone(), Vec::new()),
        None => (
            std::env::current_exe()
                .map_err(|e| ApiError::internal(format!("cannot find civiad's program: {e}")))?,
            vec!["extract-document".to_owned()],
        ),
    };
    Ok(Sandbox {
        program,
        args,
        wall: std::time::Duration::from_secs(cfg.timeout_secs),
        memory_bytes: cfg.memory_mb.saturating_mul(1024 * 1024),
    })
}

pub(crate) async fn extract(
    State(st): State<Arc<ApiState>>,
    ext: Extensions,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    principal(&ext)?.require(MODEL_USERS, "use the model")?;
    let bytes = read_bytes(body, MAX_DOCUMENT_BYTES).await.map_err(|e| {
        if e.status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::of(
                Class::TooLarge,
                "request_too_large",
                format!("the file is larger than the limit of {MAX_DOCUMENT_BYTES} bytes"),
            )
            .with_details(json!({"reason": "too_large", "max_bytes": MAX_DOCUMENT_BYTES}))
        } else {
            e
        }
    })?;
    let hint = headers
        .get(FILENAME_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(percent_decode)
        .or_else(|| {
            headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .filter(|t| !t.starts_with("application/octet-stream"))
                .map(str::to_string)
        });
    let limits = Limits {
        max_bytes: MAX_DOCUMENT_BYTES,
        ..Limits::default()
    };
    let _place = extraction_place(&st)?;
    let sandbox = sandbox(&st.config.documents)?;
    let extracted = tokio::task::spawn_blocking(move || {
        civia_documents::isolated::extract(&sandbox, &bytes, hint.as_deref(), &limits)
    })
    .await
    .map_err(|e| ApiError::internal(format!("extraction task failed: {e}")))?
    .map_err(|e| doc_error(&e))?;
    if let Some(t) = ext.get::<Arc<UsageTicket>>() {
        let sha = civia_base::hash::sha256_hex(extracted.text.as_bytes());
        t.finish(0, 0, 200, Some(sha)).await?;
    }
    Ok(Json(json!({
        "object": "document",
        "format": extracted.format.to_string().to_lowercase(),
        "text": extracted.text,
        "characters": extracted.text.chars().count(),
        "pages": extracted.pages,
        "truncated": extracted.truncated,
    }))
    .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportBody {
    title: String,
    text: String,
    /// Put "Brouillon IA — à vérifier" on top of the document (default true).
    notice: Option<bool>,
}

/// A file name from a title: letters, digits, dashes; at most 60 characters.
fn file_name(title: &str, ext: &str) -> String {
    let mut name: String = title
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .split('-')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("-")
        .chars()
        .take(60)
        .collect();
    if name.is_empty() {
        name = "brouillon".into();
    }
    format!("{name}.{ext}")
}

/// `Content-Disposition` for a download: an ASCII name for old clients and the UTF-8 name
/// (RFC 6266 / 5987) for the others.
fn disposition(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| if c.is_ascii() { c } else { '_' })
        .collect();
    // RFC 5987 attr-char, less the few that some clients mishandle: letters, digits, - . _
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_');
    let encoded = percent_encoding::utf8_percent_encode(name, KEEP);
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// The caller may use the model, and the title may title a file.
fn check_export(ext: &Extensions, title: &str) -> Result<(), ApiError> {
    let who = principal(ext)?;
    who.require(MODEL_USERS, "use the model")?;
    if !civia_documents::title_acceptable(title) {
        return Err(ApiError::bad_request(
            "`title`: at most 200 printable characters.",
            Some("title".into()),
        ));
    }
    Ok(())
}

/// A file to download, named after `title`, marked AI-generated.
fn download(title: &str, extension: &str, content_type: &str, bytes: Vec<u8>) -> Response {
    let name = file_name(title, extension);
    (
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (header::CONTENT_DISPOSITION, disposition(&name)),
        ],
        [(
            axum::http::HeaderName::from_static(crate::generation::AI_GENERATED_HEADER),
            "true",
        )],
        bytes,
    )
        .into_response()
}

/// Builds the marked draft of `title` and `body` and hands it to `write`.
fn with_draft<T>(
    st: &ApiState,
    title: &str,
    body: &str,
    notice: Option<bool>,
    write: impl FnOnce(&civia_documents::Draft) -> Result<T, DocError>,
) -> Result<T, ApiError> {
    let sha = st.supervisor.status().model.map(|m| m.sha256);
    let generated_at = civia_base::time::rfc3339(civia_auth::now());
    let draft = civia_documents::Draft {
        title,
        body,
        model: &st.model_id,
        model_sha256: sha.as_deref(),
        generated_at: &generated_at,
        author: None,
        visible_notice: notice.unwrap_or(true),
    };
    write(&draft).map_err(|e| doc_error(&e))
}

pub(crate) async fn export(
    State(st): State<Arc<ApiState>>,
    ext: Extensions,
    format: Result<Path<String>, PathRejection>,
    body: Body,
) -> Result<Response, ApiError> {
    let format: String = crate::extract::path(format)?;
    let req: ExportBody = parse_json(&read_body(body, 4 * 1024 * 1024).await?)?;
    check_export(&ext, &req.title)?;
    let Ok(format) = format.parse::<ExportFormat>() else {
        return Err(ApiError::of(
            Class::NotFound,
            "not_found",
            "Export formats: docx, odt, txt (tables: /v1/exports/tables/{ods|csv}).",
        ));
    };
    let bytes = with_draft(&st, &req.title, &req.text, req.notice, |d| format.export(d))?;
    Ok(download(
        &req.title,
        format.extension(),
        format.content_type(),
        bytes,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TableExportBody {
    title: String,
    table: civia_documents::Table,
    /// Put "Brouillon IA — à vérifier" as the first row (default true).
    notice: Option<bool>,
}

/// `POST /v1/exports/tables/{ods|csv}`: a table (the « Extraction de données » task's) as a
/// spreadsheet with typed cells or as CSV, marked like drafts.
pub(crate) async fn export_table(
    State(st): State<Arc<ApiState>>,
    ext: Extensions,
    format: Result<Path<String>, PathRejection>,
    body: Body,
) -> Result<Response, ApiError> {
    let format: String = crate::extract::path(format)?;
    let req: TableExportBody = parse_json(&read_body(body, 4 * 1024 * 1024).await?)?;
    check_export(&ext, &req.title)?;
    let Ok(format) = format.parse::<TableFormat>() else {
        return Err(ApiError::of(
            Class::NotFound,
            "not_found",
            "Table export formats: ods, csv.",
        ));
    };
    let bytes = with_draft(&st, &req.title, "", req.notice, |d| {
        format.export(d, &req.table)
    })?;
    Ok(download(
        &req.title,
        format.extension(),
        format.content_type(),
        bytes,
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn file_names_are_safe() {
        assert_eq!(
            super::file_name("Courrier à M. Durand", "docx"),
            "Courrier-à-M-Durand.docx"
        );
        assert_eq!(
            super::file_name("../../etc/passwd", "odt"),
            "etc-passwd.odt"
        );
        assert_eq!(super::file_name("\"; rm", "txt"), "rm.txt");
        assert_eq!(super::file_name("", "txt"), "brouillon.txt");
    }

    #[test]
    fn dispositions_are_ascii_headers() {
        let d = super::disposition("Courrier-à-M.docx");
        assert!(d.is_ascii(), "{d}");
        assert!(d.contains("filename*=UTF-8''Courrier-%C3%A0-M.docx"), "{d}");
        assert!(axum::http::HeaderValue::from_str(&d).is_ok());
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(
            super::percent_decode("rapport%20%C3%A9t%C3%A9.pdf"),
            "rapport été.pdf"
        );
        assert_eq!(super::percent_decode("100%"), "100%");
        assert_eq!(super::percent_decode("%zz%4"), "%zz%4");
    }
}
