//! The administration plane's part of the commune's documents: the collections shared with a
//! service or the whole commune (`GET /admin/knowledge/collections`) and the bulk import of a
//! folder (an archive, a USB stick), one file per request
//! (`POST /admin/knowledge/collections/{id}/documents?name=FILE`, the file's bytes as the
//! body), which `civia knowledge import DIR --collection ID` sends.
//!
//! Administrators and the local socket only. An agent's private collections are neither
//! listed nor filled from here: the service refuses them as not found. Every import is an
//! audit event (ids, size and hash, never text); indexing then runs in the background as for
//! an upload from the web app.

use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{Extensions, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use civia_api::body::read_bytes;
use civia_api::extract::{path, query, require};
use civia_api::views::{collection_json, document_json, owner_names};
use civia_api::{ApiError, ApiState};
use civia_auth::Role;
use civia_knowledge::Upload;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

type Handler = Result<Response, ApiError>;

pub(crate) async fn collections(State(st): State<Arc<ApiState>>, ext: Extensions) -> Handler {
    require(&ext, &[Role::Admin], "list shared collections")?;
    let k = st.knowledge()?;
    let cs = k.shared_collections().await?;
    let owners = owner_names(&st.auth).await?;
    Ok(Json(json!({
        "object": "list",
        "data": cs.iter().map(|c| collection_json(c, &owners)).collect::<Vec<_>>(),
    }))
    .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ImportQuery {
    /// The file's name as the agents will see it cited.
    name: String,
    /// The document's date (`YYYY-MM-DD`); the import day when absent.
    date: Option<String>,
}

pub(crate) async fn import(
    State(st): State<Arc<ApiState>>,
    ext: Extensions,
    id: Result<Path<i64>, PathRejection>,
    q: Result<Query<ImportQuery>, QueryRejection>,
    body: Body,
) -> Handler {
    require(&ext, &[Role::Admin], "import documents")?;
    let k = st.knowledge()?;
    let collection = path(id)?;
    let q = query(q)?;
    let bytes = read_bytes(body, st.config.knowledge.max_file_bytes()).await?;
    let (sha, size) = (civia_base::hash::sha256_hex(&bytes), bytes.len());
    let d = k
        .import(
            collection,
            Upload {
                name: q.name,
                bytes: bytes.to_vec(),
                metadata: q.date.map(|d| json!({ "date": d })),
            },
        )
        .await?;
    st.audit_admin(
        &ext,
        "knowledge.document_imported",
        None,
        json!({"document": d.id, "collection": collection, "sha256": sha, "bytes": size}),
    )
    .await?;
    Ok((StatusCode::ACCEPTED, Json(document_json(&d))).into_response())
}
