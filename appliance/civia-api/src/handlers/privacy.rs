//! The agent's own data (RGPD art. 15, 17, 20).
//!
//! - `/v1/conversations[/{id}]`: the caller's conversation history — listed, read and erased
//!   by its owner only. Every store query takes the owner's id: there is no read path for
//!   anyone else, administrators included.
//! - `/v1/me/export`: everything the box holds about the caller, as JSON.
//!
//! The data-subject requests handled by the DPO (`/admin/users/{name}/data` and `/erase`)
//! are the admin plane's (`civia-admin-api`).

use crate::extract::path;
use crate::history::{conversation_not_found, owner};
use crate::user_data::{attachment, conversation_json, message_json, user_data};
use crate::{ApiError, ApiState};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::Extensions;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use std::sync::Arc;

type Handler = Result<Response, ApiError>;

pub(crate) async fn list_conversations(
    State(st): State<Arc<ApiState>>,
    ext: Extensions,
) -> Handler {
    let me = owner(&ext)?;
    let list = st.auth.conversations(me.id).await?;
    let data: Vec<Value> = list.iter().map(|c| conversation_json(&st, c)).collect();
    Ok(Json(json!({
        "object": "list",
        "enabled": st.config.history.enabled,
        "retention_days": st.config.history.retention_days,
        "data": data,
    }))
    .into_response())
}

pub(crate) async fn get_conversation(
    State(st): State<Arc<ApiState>>,
    ext: Extensions,
    id: Result<Path<String>, PathRejection>,
) -> Handler {
    let me = owner(&ext)?;
    let id = path(id)?;
    let Some((c, messages)) = st.auth.conversation(me.id, id.clone()).await? else {
        return Err(conversation_not_found(&id));
    };
    let mut v = conversation_json(&st, &c);
    v["messages"] = messages.iter().map(message_json).collect();
    Ok(Json(v).into_response())
}

pub(crate) async fn delete_conversation(
    State(st): State<Arc<ApiState>>,
    ext: Extensions,
    id: Result<Path<String>, PathRejection>,
) -> Handler {
    let me = owner(&ext)?;
    let id = path(id)?;
    if !st.auth.delete_conversation(me.id, id.clone()).await? {
        return Err(conversation_not_found(&id));
    }
    st.audit_admin(
        &ext,
        "privacy.history_erased",
        None,
        json!({"conversations": 1}),
    )
    .await?;
    Ok(Json(json!({"id": id, "deleted": true})).into_response())
}

pub(crate) async fn delete_history(State(st): State<Arc<ApiState>>, ext: Extensions) -> Handler {
    let me = owner(&ext)?;
    let n = st.auth.delete_history(me.id).await?;
    st.audit_admin(
        &ext,
        "privacy.history_erased",
        None,
        json!({"conversations": n}),
    )
    .await?;
    Ok(Json(json!({"deleted": n})).into_response())
}

pub(crate) async fn export_mine(State(st): State<Arc<ApiState>>, ext: Extensions) -> Handler {
    let me = owner(&ext)?;
    let file = format!("civia-donnees-{}.json", me.name);
    let v = user_data(&st, me).await?;
    st.audit_admin(&ext, "privacy.exported", None, json!({}))
        .await?;
    Ok(attachment(v, &file))
}
