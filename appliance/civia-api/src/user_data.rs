//! What the box holds about one user, as its owner (`/v1/me/export`) or the DPO
//! (`/admin/users/{name}/data`) receives it, and the JSON shapes of conversations that the
//! history routes answer with; and what becomes of a user's collections of documents when
//! the DPO erases the user's data or the account is deleted.

use crate::views::{document_json, key_json, user_json};
use crate::{ApiError, ApiState};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use civia_auth::User;
use serde_json::{json, Value};

/// How long a conversation is kept after its last message, in seconds.
fn retention_secs(st: &ApiState) -> i64 {
    i64::from(st.config.history.retention_days) * 86_400
}

/// A conversation as the history routes show it (with its expiry).
pub fn conversation_json(st: &ApiState, c: &civia_auth::Conversation) -> Value {
    json!({
        "id": c.id, "title": c.title, "created_at": c.created_at, "updated_at": c.updated_at,
        "expires_at": c.updated_at + retention_secs(st), "messages": c.messages,
    })
}

/// One message of a conversation.
pub fn message_json(m: &civia_auth::Message) -> Value {
    json!({"role": m.role, "content": m.content, "created_at": m.ts, "model": m.model})
}

/// Everything the box holds about `user`, as the owner or the DPO receives it.
pub async fn user_data(st: &ApiState, user: User) -> Result<Value, ApiError> {
    let d = st.auth.user_data(user).await?;
    let conversations: Vec<Value> = d
        .conversations
        .iter()
        .map(|(c, messages)| {
            let mut v = conversation_json(st, c);
            v["messages"] = messages.iter().map(message_json).collect();
            v
        })
        .collect();
    let pseudonym = st.audit.as_ref().map(|a| a.pseudonym_of(d.user.id));
    let knowledge = match &st.knowledge {
        Some(k) => k
            .owned_by(d.user.id)
            .await?
            .iter()
            .map(|(c, docs)| {
                json!({
                    "id": c.id, "name": c.name, "description": c.description,
                    "visibility": c.visibility, "created_at": c.created_at,
                    "documents": docs.iter().map(document_json).collect::<Vec<_>>(),
                })
            })
            .collect::<Vec<_>>(),
        None => Vec::new(),
    };
    Ok(json!({
        "generated_at": civia_auth::now(),
        "account": user_json(&d.user),
        "api_keys": d.keys.iter().map(key_json).collect::<Vec<_>>(),
        "charter_acceptances": d.acceptances.iter().map(|a| json!({
            "version": a.version, "accepted_at": a.accepted_at, "channel": a.channel,
        })).collect::<Vec<_>>(),
        "conversations": conversations,
        "collections": knowledge,
        "usage_by_day": d.usage.iter().map(|d| json!({
            "date": civia_base::time::date_of_day(d.day), "model": d.model, "requests": d.requests,
            "prompt_tokens": d.prompt_tokens, "completion_tokens": d.completion_tokens,
        })).collect::<Vec<_>>(),
        "audit": {
            "pseudonym": pseudonym,
            "retention_months": st.config.audit.retention_months,
            "note": "Le journal d'audit enregistre vos demandes sous ce pseudonyme (date, volumes, \
                     empreintes SHA-256), jamais leur texte ; il est conservé pour la durée \
                     indiquée, comme la loi l'exige, puis supprimé.",
        },
    }))
}

/// `v` as a JSON file download named `name`.
pub fn attachment(v: Value, name: &str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/json".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        Json(v),
    )
        .into_response()
}

/// Who receives the service collections of `user_id` if the account goes: the member of the
/// same service with the smallest id, if any. Read before the account is deleted.
pub async fn collections_heir(st: &ApiState, user_id: i64) -> Result<Option<i64>, ApiError> {
    if st.knowledge.is_none() {
        return Ok(None);
    }
    let peers = st
        .auth
        .with_store(move |s| s.service_peers(user_id))
        .await?;
    Ok(peers.into_iter().filter(|p| *p != user_id).min())
}

/// After an erasure (`account_deleted` false) or an account's deletion: the user's private
/// collections erased, the service ones handed to `heir` or erased (see
/// `civia_knowledge::Knowledge::owner_leaves`). The audit detail of what was done.
pub async fn collections_after_departure(
    st: &ApiState,
    user_id: i64,
    account_deleted: bool,
    heir: Option<i64>,
) -> Result<Value, ApiError> {
    let Some(k) = &st.knowledge else {
        return Ok(json!({"collections_erased": [], "collections_handed_over": [], "heir": null}));
    };
    let (erased, handed) = k.owner_leaves(user_id, account_deleted, heir).await?;
    Ok(json!({"collections_erased": erased, "collections_handed_over": handed, "heir": heir}))
}
