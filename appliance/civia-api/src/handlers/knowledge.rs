//! The commune's documents as knowledge, in OpenGateLLM's shapes (so Albert clients work
//! unchanged): `/v1/collections`, `/v1/documents` (multipart `file` + `collection`; indexed
//! in the background: 202 and a `status`), `/v1/chunks/{document}`, `/v1/search`.
//!
//! Handlers resolve the caller into a [`Viewer`] (the user and, from the store, the users of
//! the user's service as it is now), call `civia-knowledge`, which applies need-to-know
//! inside its queries, and shape the answer. Ingestion, search and deletions are audit
//! events (ids, counts and hashes, never text).

use crate::body::{parse_json, read_body, SMALL_BODY_LIMIT};
use crate::error::Class;
use crate::extract::{path, query};
use crate::knowledge_search::{audit, chunk_json, results_json, run_search, viewer, SearchArgs};
use crate::views::{collection_json, document_json, owner_names};
use crate::{ApiError, ApiState};
use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{Extensions, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use civia_knowledge::{KnowledgeError, Upload, Visibility};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

type Handler = Result<Response, ApiError>;

fn list(data: Vec<Value>) -> Response {
    Json(json!({"object": "list", "data": data})).into_response()
}

fn visibility(v: &str) -> Result<Visibility, ApiError> {
    Visibility::parse(v).ok_or_else(|| {
        ApiError::bad_request(
            "`visibility` must be `private`, `service` or `public`.",
            Some("visibility".into()),
        )
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewCollection {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    visibility: Option<String>,
}

pub(crate) async fn create_collection(
    State(st): State<Arc<ApiState>>,
    ext: Extensions,
    body: Body,
) -> Handler {
    let k = st.knowledge()?;
    let req: NewCollection = parse_json(&read_body(body, SMALL_BODY_LIMIT).await?)?;
    let v = viewer(&st, &ext).await?;
    let vis = visibility(req.visibility.as_deref().unwrap_or("private"))?;
    let c = k
        .create_collection(&v, &req.name, req.description, vis)
        .await?;
    audit(
        &st,
        &ext,
        "knowledge.collection_created",
        json!({"collection": c.id, "visibility": c.visibility}),
    )
    .await?;
    let owners = owner_names(&st.auth).await?;
    Ok((StatusCode::CREATED, Json(collection_json(&c, &owners))).into_response())
}

pub(crate) async fn list_collections(State(st): State<Arc<ApiState>>, ext: Extensions) -> Handler {
    let k = st.knowledge()?;
    let v = viewer(&st, &ext).await?;
    let cs = k.collections(&v).await?;
    let owners = owner_names(&st.auth).await?;
    Ok(list(
        cs.iter().map(|c| collection_json(c, &owners)).collect(),
    ))
}

pub(crate) async fn get_collection(
    State(st): State<Arc<ApiState>>,
    ext: Extensions,
    id: Result<Path<i64>, PathRejection>,
) -> Handler {
    let k = st.knowledge()?;
    let id = path(id)?;
    let v = viewer(&st, &ext).await?;
    let c = k.collection(&v, id).await?;
    let owners = owner_names(&st.auth).await?;
    Ok(Json(collection_json(&c, &owners)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CollectionPatch {
    #[serde(default)]
    name: Option<String>,
    /// `null` clears the description; absent leaves it.
    #[serde(default, with = "serde_with_double_option")]
    description: Option<Option<String>>,
    #[serde(default)]
    visibility: Option<String>,
}

/// `Option<Option<T>>` that tells an absent field (None) from an explicit null (Some(None)).
mod serde_with_double_option {
    use serde::{Deserialize, Deserializer};
    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<String>>, D::Error> {
        Ok(Some(Option::<String>::deserialize(d)?))
    }
}

pub(crate) async fn update_collection(
    State(st): State<Arc<ApiState>>,
    ext: Extensions,
    id: Result<Path<i64>, PathRejection>,
    body: Body,
) -> Handler {
    let k = st.knowledge()?;
    let id = path(id)?;
    let patch: CollectionPatch = parse_json(&read_body(body, SMALL_BODY_LIMIT).await?)?;
    let v = viewer(&st, &ext).await?;
    let vis = patch.visibility.as_deref().map(visibility).transpose()?;
    let c = k
        .update_collection(&v, id, patch.name, patch.description, vis)
        .await?;
    audit(
        &st,
        &ext,
        "knowledge.collection_updated",
        json!({"collection": c.id, "visibility": c.visibility}),
    )
    .await?;
    let owners = owner_names(&st.auth).await?;
    Ok(Json(collection_json(&c, &owners)).into_response())
}

pub(crate) async fn delete_collection(
    State(st): State<Arc<ApiState>>,
    ext: Extensions,
    id: Result<Path<i64>, PathRejection>,
) -> Handler {
    let k = st.knowledge()?;
    let id = path(id)?;
    let v = viewer(&st, &ext).await?;
    let c = k.delete_collection(&v, id).await?;
    audit(
        &st,
        &ext,
        "knowledge.collection_deleted",
        json!({"collection": c.id, "documents": c.documents}),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Most parts in an upload form; the metadata field's largest size.
const MAX_FIELDS: usize = 16;
const MAX_FIELD_BYTES: usize = 16 * 1024;

fn form_error(e: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("unreadable upload form: {e}"), None)
}

pub(crate) async fn upload_document(
    State(st): State<Arc<ApiState>>,
    ext: Extensions,
    req: Request,
) -> Handler {
    let k = st.knowledge()?;
    let limit = st.config.knowledge.max_file_bytes();
    let bound = limit + MAX_FIELDS * MAX_FIELD_BYTES + 64 * 1024;
    let (parts, body) = req.into_parts();
    let req = Request::from_parts(parts, Body::new(http_body_util::Limited::new(body, bound)));
    let mut form = Multipart::from_request(req, &())
        .await
        .map_err(|e| form_error(e.body_text()))?;
    let (mut file, mut collection, mut metadata) = (None, None, None);
    let mut seen = 0;
    while let Some(mut field) = form
        .next_field()
        .await
        .map_err(|e| upload_error(e, limit))?
    {
        seen += 1;
        if seen > MAX_FIELDS {
            return Err(ApiError::bad_request("too many fields in the form", None));
        }
        let name = field.name().unwrap_or_default().to_owned();
        let cap = if name == "file" {
            limit
        } else {
            MAX_FIELD_BYTES
        };
        let filename = field.file_name().map(str::to_owned);
        let mut bytes = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(|e| upload_error(e, limit))? {
            if bytes.len() + chunk.len() > cap {
                return Err(if name == "file" {
                    too_large(limit)
                } else {
                    ApiError::bad_request(format!("the field `{name}` is too long"), Some(name))
                });
            }
            bytes.extend_from_slice(&chunk);
        }
        match name.as_str() {
            "file" => {
                if file.is_some() {
                    return Err(ApiError::bad_request(
                        "one file per request (field `file`)",
                        Some("file".into()),
                    ));
                }
                file = Some((filename.unwrap_or_else(|| "document".into()), bytes));
            }
            "collection" => {
                let text = String::from_utf8_lossy(&bytes);
                collection = Some(text.trim().parse::<i64>().map_err(|_| {
                    ApiError::bad_request(
                        "`collection` must be a collection's numeric id",
                        Some("collection".into()),
                    )
                    .with_details(json!({"reason": "collection_id"}))
                })?);
            }
            "metadata" => {
                let v: Value = serde_json::from_slice(&bytes).map_err(|_| {
                    ApiError::bad_request(
                        "`metadata` must be a JSON object",
                        Some("metadata".into()),
                    )
                    .with_details(json!({"reason": "metadata_object"}))
                })?;
                if !v.is_object() {
                    return Err(ApiError::bad_request(
                        "`metadata` must be a JSON object",
                        Some("metadata".into()),
                    )
                    .with_details(json!({"reason": "metadata_object"})));
                }
                metadata = Some(v);
            }
            // OpenGateLLM's chunker settings are accepted and ignored: Civia chunks by
            // structure (pages, headings, paragraphs).
            _ => {}
        }
    }
    let Some((name, bytes)) = file else {
        return Err(ApiError::bad_request(
            "the file is missing (field `file`)",
            Some("file".into()),
        ));
    };
    let Some(collection) = collection else {
        return Err(ApiError::bad_request(
            "the collection is missing (field `collection`)",
            Some("collection".into()),
        ));
    };
    let v = viewer(&st, &ext).await?;
    let sha = civia_base::hash::sha256_hex(&bytes);
    let size = bytes.len();
    match k
        .upload(
            &v,
            collection,
            Upload {
                name,
                bytes,
                metadata,
            },
        )
        .await
    {
        Ok(d) => {
            audit(
                &st,
                &ext,
                "knowledge.document_uploaded",
                json!({
                    "document": d.id, "collection": collection, "sha256": sha, "bytes": size,
                }),
            )
            .await?;
            Ok((StatusCode::ACCEPTED, Json(document_json(&d))).into_response())
        }
        // The same file already there: that document.
        Err(KnowledgeError::Duplicate(existing)) => {
            let d = k.document(&v, existing).await?;
            Ok((StatusCode::OK, Json(document_json(&d))).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

fn too_large(limit: usize) -> ApiError {
    ApiError::of(
        Class::TooLarge,
        "request_too_large",
        format!("the file is larger than the limit of {limit} bytes"),
    )
    .with_details(json!({"reason": "too_large", "max_bytes": limit}))
}

fn upload_error(e: axum::extract::multipart::MultipartError, limit: usize) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        too_large(limit)
    } else {
        form_error(e.body_text())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DocumentsQuery {
    #[serde(default)]
    collection: Option<i64>,
    #[serde(default)]
    limit: Option<u32>,
    #[serde(default)]
    offset: Option<u32>,
}

pub(crate) async fn list_documents(
    State(st): State<Arc<ApiState>>,
    ext: Extensions,
    q: Result<Query<DocumentsQuery>, QueryRejection>,
) -> Handler {
    let k = st.knowledge()?;
    let q = query(q)?;
    let v = viewer(&st, &ext).await?;
    let docs = k
        .documents(
            &v,
            q.collection,
            q.limit.unwrap_or(100),
            q.offset.unwrap_or(0),
        )
        .await?;
    Ok(list(docs.iter().map(document_json).collect()))
}

pub(crate) async fn get_document(
    State(st): State<Arc<ApiState>>,
    ext: Extensions,
    id: Result<Path<i64>, PathRejection>,
) -> Handler {
    let k = st.knowledge()?;
    let id = path(id)?;
    let v = viewer(&st, &ext).await?;
    let d = k.document(&v, id).await?;
    Ok(Json(document_json(&d)).into_response())
}

pub(crate) async fn delete_document(
    State(st): State<Arc<ApiState>>,
    ext: Extensions,
    id: Result<Path<i64>, PathRejection>,
) -> Handler {
    let k = st.knowledge()?;
    let id = path(id)?;
    let v = viewer(&st, &ext).await?;
    let d = k.delete_document(&v, id).await?;
    audit(
        &st,
        &ext,
        "knowledge.document_deleted",
        json!({
            "document": d.id, "collection": d.collection_id, "sha256": d.sha256,
        }),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Page {
    #[serde(default)]
    limit: Option<u32>,
    #[serde(default)]
    offset: Option<u32>,
}

pub(crate) async fn list_chunks(
    State(st): State<Arc<ApiState>>,
    ext: Extensions,
    id: Result<Path<i64>, PathRejection>,
    q: Result<Query<Page>, QueryRejection>,
) -> Handler {
    let k = st.knowledge()?;
    let id = path(id)?;
    let q = query(q)?;
    let v = viewer(&st, &ext).await?;
    let chunks = k
        .chunks(&v, id, q.limit.unwrap_or(100), q.offset.unwrap_or(0))
        .await?;
    Ok(list(chunks.iter().map(chunk_json).collect()))
}

#[derive(Deserialize)]
struct SearchBody {
    prompt: String,
    #[serde(flatten)]
    args: SearchArgsLoose,
}

/// `SearchArgs` without `deny_unknown_fields` (flatten does not support it); unknown fields
/// are refused by hand below.
#[derive(Deserialize)]
struct SearchArgsLoose {
    #[serde(flatten)]
    rest: serde_json::Map<String, Value>,
}

pub(crate) async fn search(
    State(st): State<Arc<ApiState>>,
    ext: Extensions,
    body: Body,
) -> Handler {
    let raw = read_body(body, SMALL_BODY_LIMIT).await?;
    let b: SearchBody = parse_json(&raw)?;
    let args: SearchArgs = serde_json::from_value(Value::Object(b.args.rest))
        .map_err(|e| ApiError::bad_request(format!("Invalid search request: {e}"), None))?;
    let (method, hits) = run_search(&st, &ext, &args, b.prompt).await?;
    Ok(Json(json!({
        "object": "list",
        "data": results_json(method, &hits),
        "usage": {"prompt_tokens": 0, "total_tokens": 0},
    }))
    .into_response())
}
