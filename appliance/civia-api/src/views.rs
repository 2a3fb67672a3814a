//! The JSON shapes of the store's objects that several handlers answer with.

use crate::ApiError;
use civia_auth::{ApiKeyInfo, User};
use civia_knowledge::{Collection, Document};
use serde_json::{json, Value};
use std::collections::HashMap;

/// An account, without its password hash.
pub fn user_json(u: &User) -> Value {
    json!({
        "id": u.id, "name": u.name, "role": u.role.as_str(), "service": u.service,
        "created_at": u.created_at, "disabled": u.disabled,
    })
}

/// An API key's metadata (never the key itself).
pub fn key_json(k: &ApiKeyInfo) -> Value {
    json!({
        "id": k.id, "user": k.user, "name": k.name, "prefix": k.prefix, "model": k.model_scope,
        "created_at": k.created_at, "expires_at": k.expires_at, "last_used_at": k.last_used_at,
        "revoked": k.revoked,
    })
}

/// The names of the users by id, for collections' `owner`.
pub async fn owner_names(auth: &civia_auth::Auth) -> Result<HashMap<i64, String>, ApiError> {
    let users = auth.with_store(|s| s.users()).await?;
    Ok(users.into_iter().map(|u| (u.id, u.name)).collect())
}

/// A knowledge collection, its owner named.
pub fn collection_json(c: &Collection, owners: &HashMap<i64, String>) -> Value {
    json!({
        "object": "collection",
        "id": c.id,
        "name": c.name,
        "owner": owners.get(&c.owner_id).cloned().unwrap_or_default(),
        "description": c.description,
        "visibility": c.visibility,
        "created_at": c.created_at,
        "updated_at": c.updated_at,
        "documents": c.documents,
    })
}

/// A knowledge document and where its indexing is.
pub fn document_json(d: &Document) -> Value {
    json!({
        "object": "document",
        "id": d.id,
        "name": d.name,
        "collection_id": d.collection_id,
        "created_at": d.created_at,
        "updated_at": d.updated_at,
        "chunks": d.chunks,
        "status": d.status,
        "error": d.error,
        "error_details": d.error_details,
        "format": d.format,
        "pages": d.pages,
        "ocr_pages": d.ocr_pages,
        "bytes": d.bytes,
        "sha256": d.sha256,
        "metadata": d.metadata,
        "date": d.date,
    })
}
