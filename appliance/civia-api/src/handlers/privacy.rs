//! The agent's own data (RGPD art. 15, 17, 20) and the data-subject requests handled by the
//! DPO.
//!
//! - `/v1/conversations[/{id}]`: the caller's conversation history — listed, read and erased
//!   by its owner only. Every store query takes the owner's id: there is no read path for
//!   anyone else, administrators included.
//! - `/v1/me/export`: everything the box holds about the caller, as JSON.
//! - `/admin/users/{name}/data` and `/admin/users/{name}/erase`: the same export and the
//!   erasure, for a data-subject request. Only the `dpo` role and the local admin socket may
//!   run them; each is audited with its reason. An administrator (`admin` role) cannot.
//!
//! Erasure removes the conversations (text overwritten in the database files) and, when
//! asked, the account; the audit trail keeps its pseudonymous metadata, which the law
//! requires to keep for its retention period.

use crate::body::{parse_json, read_body};
use crate::extract::{path, principal, query, require};
use crate::history::{conversation_not_found, owner};
use crate::views::{key_json, user_json};
use crate::{ApiError, ApiState};
use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, Extensions};
use axum::response::{IntoResponse, Response};
use axum::Json;
use civia_auth::{Principal, Role, User};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

type Handler = Result<Response, ApiError>;

fn retention_secs(st: &ApiState) -> i64 {
    i64::from(st.config.history.retention_days) * 86_400
}

fn conversation_json(st: &ApiState, c: &civia_auth::Conversation) -> Value {
    json!({
        "id": c.id, "title": c.title, "created_at": c.created_at, "updated_at": c.updated_at,
        "expires_at": c.updated_at + retention_secs(st), "messages": c.messages,
    })
}

fn message_json(m: &civia_auth::Message) -> Value {
    json!({"role": m.role, "content": m.content, "created_at": m.ts, "model": m.model})
}

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

/// Everything the box holds about `user`, as the owner or the DPO receives it.
async fn user_data(st: &ApiState, user: User) -> Result<Value, ApiError> {
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
    Ok(json!({
        "generated_at": civia_auth::now(),
        "account": user_json(&d.user),
        "api_keys": d.keys.iter().map(key_json).collect::<Vec<_>>(),
        "charter_acceptances": d.acceptances.iter().map(|a| json!({
            "version": a.version, "accepted_at": a.accepted_at, "channel": a.channel,
        })).collect::<Vec<_>>(),
        "conversations": conversations,
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

fn attachment(v: Value, name: &str) -> Response {
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

pub(crate) async fn export_mine(State(st): State<Arc<ApiState>>, ext: Extensions) -> Handler {
    let me = owner(&ext)?;
    let file = format!("civia-donnees-{}.json", me.name);
    let v = user_data(&st, me).await?;
    st.audit_admin(&ext, "privacy.exported", None, json!({}))
        .await?;
    Ok(attachment(v, &file))
}

// ---- data-subject requests (DPO) ---------------------------------------------------------

/// The DPO, or the local admin socket (root on the box). Not the `admin` role: an
/// administrator never reads an agent's conversations.
fn require_dsr(ext: &Extensions) -> Result<(), ApiError> {
    match principal(ext)? {
        Principal::LocalAdmin => Ok(()),
        _ => require(ext, &[Role::Dpo], "handle data-subject requests"),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DsrQuery {
    reason: Option<String>,
}

pub(crate) async fn dsr_export(
    State(st): State<Arc<ApiState>>,
    ext: Extensions,
    name: Result<Path<String>, PathRejection>,
    q: Result<Query<DsrQuery>, QueryRejection>,
) -> Handler {
    require_dsr(&ext)?;
    let name = path(name)?;
    let why = civia_auth::dsr_reason(query(q)?.reason)?;
    let user = st.auth.user(name).await?;
    let uid = user.id;
    let file = format!("civia-dsr-{}.json", user.name);
    let v = user_data(&st, user).await?;
    st.audit_admin(&ext, "dsr.exported", Some(uid), json!({"reason": why}))
        .await?;
    Ok(attachment(v, &file))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EraseBody {
    reason: Option<String>,
    #[serde(default)]
    delete_account: bool,
}

pub(crate) async fn dsr_erase(
    State(st): State<Arc<ApiState>>,
    ext: Extensions,
    name: Result<Path<String>, PathRejection>,
    b: Body,
) -> Handler {
    require_dsr(&ext)?;
    let name = path(name)?;
    let req: EraseBody = parse_json(&read_body(b, 16 * 1024).await?)?;
    let why = civia_auth::dsr_reason(req.reason)?;
    let delete_account = req.delete_account;
    let e = st.auth.erase_user(name, delete_account).await?;
    let (uid, n) = (e.user_id, e.conversations);
    let detail = json!({"reason": why, "conversations": n, "account_deleted": delete_account});
    st.audit_admin(&ext, "dsr.erased", Some(uid), detail)
        .await?;
    Ok(Json(json!({"conversations_erased": n, "account_deleted": delete_account})).into_response())
}
