//! Keeping a chat exchange in its author's history (`civia.save`): the request's `civia`
//! object, and the history service's refusals as HTTP answers. The rules (which
//! conversation, which messages, the title) are `civia_auth`'s ([`civia_auth::Keep`]).

use crate::extract::principal;
use crate::{ApiError, ApiState};
use axum::http::{Extensions, StatusCode};
use civia_auth::{Keep, KeepError, KeepRequest, Principal, User};
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

/// Checks the request's history options before generating (see [`civia_auth::Auth::prepare_keep`]).
pub(crate) async fn prepare_keep(
    st: &ApiState,
    ext: &Extensions,
    opts: Option<HistoryOptions>,
    messages: &[civia_ipc::ChatMessage],
) -> Result<Option<Keep>, ApiError> {
    let req = opts.map(|o| KeepRequest {
        save: o.save,
        conversation_id: o.conversation_id,
        title: o.title,
    });
    let messages = messages
        .iter()
        .map(|m| (m.role.as_str(), m.content.as_str()));
    st.auth
        .prepare_keep(
            st.config.history.enabled,
            ext.get::<Principal>(),
            req,
            messages,
        )
        .await
        .map_err(|e| match e {
            KeepError::Disabled => ApiError::new(
                StatusCode::CONFLICT,
                "invalid_request_error",
                "history_disabled",
                e.to_string(),
            )
            .with_param("civia.save"),
            KeepError::NoHistory => no_history(),
            KeepError::NotFound(id) => {
                conversation_not_found(&id).with_param("civia.conversation_id")
            }
            KeepError::Auth(e) => e.into(),
        })
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

fn no_history() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "permission_error",
        "permission_denied",
        KeepError::NoHistory.to_string(),
    )
}

/// The caller as the owner of a history: a user (the local admin socket has none) calling
/// with a credential only they hold (403 `own_credentials_required` otherwise).
pub(crate) fn owner(ext: &Extensions) -> Result<User, ApiError> {
    let p = principal(ext)?;
    if p.user().is_none() {
        return Err(no_history());
    }
    Ok(p.owner()?.clone())
}
