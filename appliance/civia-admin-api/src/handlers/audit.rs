//! `/admin/audit/*`: verifying and exporting the audit trail (admin or DPO). Reading the
//! trail is itself an event (`audit.read`), written before anything is read.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, Extensions};
use axum::response::{IntoResponse, Response};
use axum::Json;
use civia_api::extract::{query, require};
use civia_api::{ApiError, ApiState};
use civia_audit::{Audit, Event, ExportFormat, ServiceError};
use civia_auth::{Principal, Role};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

fn audit(st: &ApiState) -> Result<&Audit, ApiError> {
    st.audit
        .as_deref()
        .ok_or_else(|| ApiError::internal("the audit log is not open"))
}

/// `audit.read` before any reading of the log.
async fn record_read(st: &ApiState, ext: &Extensions, what: &str) -> Result<(), ApiError> {
    let a = audit(st)?;
    let who = ext
        .get::<Principal>()
        .ok_or_else(|| ApiError::internal("no principal"))?;
    Ok(a.append(
        Event::new("audit.read")
            .user(a.who(who.user().map(|u| u.id)))
            .role(who.role().as_str())
            .detail(json!({ "what": what })),
    )
    .await?)
}

fn may_read(ext: &Extensions) -> Result<(), ApiError> {
    require(ext, &[Role::Admin, Role::Dpo], "read the audit log")
}

pub(crate) async fn verify(
    State(st): State<Arc<ApiState>>,
    ext: Extensions,
) -> Result<Response, ApiError> {
    may_read(&ext)?;
    record_read(&st, &ext, "verify").await?;
    let body = match audit(&st)?.verify().await {
        Ok(r) => json!({
            "ok": true, "segments": r.segments, "entries": r.entries, "first_seq": r.first_seq,
            "last_seq": r.last_seq, "checkpoint": r.checkpoint,
            "warnings": r.warnings.iter().map(|w| format!("{w:?}")).collect::<Vec<_>>(),
            "first_bad": null,
        }),
        Err(ServiceError::Audit(e)) => match e.tamper() {
            Some(t) => json!({
                "ok": false, "message": e.to_string(),
                "first_bad": {"segment": t.segment, "line": t.line, "seq": t.seq,
                              "kind": format!("{:?}", t.kind).to_lowercase()},
            }),
            None => {
                return Err(ApiError::internal(format!(
                    "the audit log cannot be read: {e}"
                )))
            }
        },
        Err(ServiceError::Task(e)) => {
            return Err(ApiError::internal(format!("verify task failed: {e}")))
        }
    };
    Ok(Json(body).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExportQuery {
    from: String,
    to: String,
    format: Option<String>,
}

pub(crate) async fn export(
    State(st): State<Arc<ApiState>>,
    ext: Extensions,
    q: Result<Query<ExportQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    may_read(&ext)?;
    let q = query(q)?;
    let time = |s: &str, p: &str| {
        civia_audit::parse_rfc3339(s).map_err(|e| {
            ApiError::bad_request(
                format!("`{p}` must be an RFC 3339 UTC time: {e}"),
                Some(p.into()),
            )
        })
    };
    let (from, to) = (time(&q.from, "from")?, time(&q.to, "to")?);
    let (format, ctype) = match q.format.as_deref().unwrap_or("jsonl") {
        "jsonl" => (ExportFormat::Json, "application/jsonl"),
        "csv" => (ExportFormat::Csv, "text/csv; charset=utf-8"),
        _ => {
            return Err(ApiError::bad_request(
                "`format` must be `jsonl` or `csv`.",
                Some("format".into()),
            ))
        }
    };
    record_read(&st, &ext, "export").await?;
    let out = audit(&st)?
        .export(from, to, format)
        .await
        .map_err(|e| match e {
            ServiceError::Task(e) => ApiError::internal(format!("export task failed: {e}")),
            ServiceError::Audit(e) => ApiError::internal(format!("export failed: {e}")),
        })?;
    Ok(([(header::CONTENT_TYPE, ctype)], out).into_response())
}
