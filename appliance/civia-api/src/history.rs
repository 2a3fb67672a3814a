//! Keeping a chat exchange in its author's history (`civia.save`): the request's options
//! checked before generating, the exchange stored once the answer is complete.

use crate::extract::principal;
use crate::{ApiError, ApiState};
use axum::http::{Extensions, StatusCode};
use civia_auth::User;
use serde::Deserialize;

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

pub(crate) fn conversation_not_found(id: &str) -> ApiError {
    let shown: String = id.chars().filter(|c| !c.is_control()).take(40).collect();
    ApiError::new(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        "conversation_not_found",
        format!("No conversation `{shown}` in your history."),
    )
}

/// The caller as the owner of a history: a user (the local admin socket has none).
pub(crate) fn owner(ext: &Extensions) -> Result<User, ApiError> {
    principal(ext)?.user().cloned().ok_or_else(|| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "permission_error",
            "permission_denied",
            "The local admin socket has no conversation history.",
        )
    })
}
