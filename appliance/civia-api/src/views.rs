//! The JSON shapes of the store's objects that several handlers answer with.

use civia_auth::{ApiKeyInfo, User};
use serde_json::{json, Value};

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
