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

use crate::admin::{audit_admin, key_json, path, principal, query, require, user_json};
use crate::{parse_json, read_body, ApiError, ApiState};
use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, Extensions, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use civia_auth::{Principal, Role, User};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

type Handler = Result<Response, ApiError>;

/// The caller as the owner of a history: a user (the local admin socket has none).
fn owner(ext: &Extensions) -> Result<User, ApiError> {
    principal(ext)?.user().cloned().ok_or_else(|| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "permission_error",
            "permission_denied",
            "The local admin socket has no conversation history.",
        )
    })
}

fn retention_secs(st: &ApiState) -> i64 {
    i64::from(st.config.history.retention_days) * 86_400
}

pub(crate) fn conversation_not_found(id: &str) -> ApiError {
    let shown: String = id.chars().filter(|c| !c.is_control()).take(40).collect();
    ApiError::new(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        "conversation_not_found",
        format!("No conversation `{shown}` in your history."),
    )
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
    let list = st.auth.with_store(move |s| s.conversations(me.id)).await?;
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
    let key = id.clone();
    let found = st
        .auth
        .with_store(move |s| s.conversation(me.id, &key))
        .await?;
    let Some((c, messages)) = found else {
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
    let key = id.clone();
    let uid = me.id;
    if !st
        .auth
        .with_store(move |s| s.delete_conversation(uid, &key))
        .await?
    {
        return Err(conversation_not_found(&id));
    }
    audit_admin(
        &st,
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
    let n = st.auth.with_store(move |s| s.delete_history(me.id)).await?;
    audit_admin(
        &st,
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
    let uid = user.id;
    let name = user.name.clone();
    let (keys, acceptances, conversations, usage) = st
        .auth
        .with_store(move |s| {
            let keys = s.keys(Some(&name))?;
            let acceptances = s.charter_register(Some(uid))?;
            let mut conversations = Vec::new();
            for c in s.conversations(uid)? {
                if let Some(full) = s.conversation(uid, &c.id)? {
                    conversations.push(full);
                }
            }
            let usage = s.usage_of(uid)?;
            Ok((keys, acceptances, conversations, usage))
        })
        .await?;
    let conversations: Vec<Value> = conversations
        .iter()
        .map(|(c, messages)| {
            let mut v = conversation_json(st, c);
            v["messages"] = messages.iter().map(message_json).collect();
            v
        })
        .collect();
    let pseudonym = st.audit.as_ref().map(|a| a.pseudonym_of(uid));
    Ok(json!({
        "generated_at": civia_auth::now(),
        "account": user_json(&user),
        "api_keys": keys.iter().map(key_json).collect::<Vec<_>>(),
        "charter_acceptances": acceptances.iter().map(|a| json!({
            "version": a.version, "accepted_at": a.accepted_at, "channel": a.channel,
        })).collect::<Vec<_>>(),
        "conversations": conversations,
        "usage_by_day": usage.iter().map(|d| json!({
            "date": crate::admin::date(d.day), "model": d.model, "requests": d.requests,
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
    audit_admin(&st, &ext, "privacy.exported", None, json!({})).await?;
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

/// A reason is mandatory and recorded: "demande d'accès du 3 mars (courrier n° 12)".
fn reason(r: Option<String>) -> Result<String, ApiError> {
    let r = r.unwrap_or_default();
    let r = r.trim();
    if r.is_empty() || r.chars().count() > 200 || r.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "`reason` is required: 1 to 200 printable characters (the request's reference).",
            Some("reason".into()),
        ));
    }
    Ok(r.to_string())
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
    let why = reason(query(q)?.reason)?;
    let user = st.auth.with_store(move |s| s.user(&name)).await?;
    let uid = user.id;
    let file = format!("civia-dsr-{}.json", user.name);
    let v = user_data(&st, user).await?;
    audit_admin(&st, &ext, "dsr.exported", Some(uid), json!({"reason": why})).await?;
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
    let why = reason(req.reason)?;
    let delete_account = req.delete_account;
    let user = st.auth.with_store(move |s| s.user(&name)).await?;
    let (uid, uname, is_admin) = (user.id, user.name.clone(), user.role == Role::Admin);
    let erased = st
        .auth
        .with_store(move |s| {
            if delete_account && is_admin && !user.disabled && s.active_admins()? <= 1 {
                return Ok(None);
            }
            let n = s.delete_history(uid)?;
            if delete_account {
                s.delete_user(&uname)?;
            }
            Ok(Some(n))
        })
        .await?;
    let Some(n) = erased else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "invalid_request_error",
            "last_admin",
            "This is the last active administrator: create another one first.",
        ));
    };
    let detail = json!({"reason": why, "conversations": n, "account_deleted": delete_account});
    audit_admin(&st, &ext, "dsr.erased", Some(uid), detail).await?;
    Ok(Json(json!({"conversations_erased": n, "account_deleted": delete_account})).into_response())
}

/// Erases expired history once an hour.
pub async fn purge_history_hourly(st: Arc<ApiState>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        tick.tick().await;
        let before = civia_auth::now() - retention_secs(&st);
        match st.auth.with_store(move |s| s.purge_history(before)).await {
            Ok((0, 0)) => {}
            Ok((c, m)) => log::info!("history: {c} conversations and {m} messages expired"),
            Err(e) => log::error!("history: expiry failed: {e}"),
        }
    }
}

// ---- keeping a chat exchange -------------------------------------------------------------

/// The `civia` object of a chat request: `{"save": true, "conversation_id": "conv-…",
/// "title": "…"}`. Giving a conversation id implies `save`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HistoryOptions {
    save: Option<bool>,
    conversation_id: Option<String>,
    title: Option<String>,
}

/// A chat exchange to keep once its answer is complete.
pub(crate) struct Keep {
    owner: i64,
    pub(crate) id: String,
    title: String,
    /// The request's messages to add (system messages are not kept).
    messages: Vec<(String, String)>,
}

/// Checks the request's history options before generating: history on, a user caller, a
/// conversation of theirs. A new conversation keeps all the request's user and assistant
/// messages; an existing one, only the last user message (clients resend the rest).
pub(crate) async fn prepare_keep(
    st: &ApiState,
    ext: &Extensions,
    opts: Option<HistoryOptions>,
    messages: &[civia_ipc::ChatMessage],
) -> Result<Option<Keep>, ApiError> {
    let Some(opts) = opts else { return Ok(None) };
    if !opts.save.unwrap_or(opts.conversation_id.is_some()) {
        return Ok(None);
    }
    if !st.config.history.enabled {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "invalid_request_error",
            "history_disabled",
            "Conversation history is turned off on this box ([history] enabled = false).",
        )
        .with_param("civia.save"));
    }
    let me = owner(ext)?;
    let kept = |m: &&civia_ipc::ChatMessage| m.role == "user" || m.role == "assistant";
    let pair = |m: &civia_ipc::ChatMessage| (m.role.clone(), m.content.clone());
    let (id, messages): (String, Vec<(String, String)>) = match opts.conversation_id {
        Some(id) => {
            let key = id.clone();
            let uid = me.id;
            if !st
                .auth
                .with_store(move |s| s.owns_conversation(uid, &key))
                .await?
            {
                return Err(conversation_not_found(&id).with_param("civia.conversation_id"));
            }
            let last = messages.iter().rev().find(|m| m.role == "user").map(pair);
            (id, last.into_iter().collect())
        }
        None => (
            civia_auth::new_conversation_id().map_err(|e| ApiError::internal(e.to_string()))?,
            messages.iter().filter(kept).map(pair).collect(),
        ),
    };
    let title = opts.title.unwrap_or_else(|| {
        messages
            .iter()
            .find(|(r, _)| r == "user")
            .map(|(_, c)| c.clone())
            .unwrap_or_default()
    });
    Ok(Some(Keep {
        owner: me.id,
        id,
        title,
        messages,
    }))
}

impl Keep {
    /// Stores the exchange with `answer`; a failure is logged and reported to the caller
    /// as a warning (the answer itself was delivered).
    pub(crate) async fn save(self, st: &ApiState, answer: String) -> Result<(), ApiError> {
        let model = st.model_id.clone();
        let Keep {
            owner,
            id,
            title,
            messages,
        } = self;
        st.auth
            .with_store(move |s| {
                let mut all: Vec<civia_auth::NewMessage<'_>> = messages
                    .iter()
                    .map(|(role, content)| civia_auth::NewMessage {
                        role,
                        content,
                        model: None,
                    })
                    .collect();
                all.push(civia_auth::NewMessage {
                    role: "assistant",
                    content: &answer,
                    model: Some(&model),
                });
                s.append_messages(owner, &id, &title, &all)
            })
            .await
            .map_err(|e| {
                log::error!("history: an exchange was not kept: {e}");
                ApiError::from(e)
            })
    }
}
