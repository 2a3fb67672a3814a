//! What every handler that generates text shares: the commune's system prompt put first,
//! collecting a generation under the leak guard, and the AI Act
//! art. 50 marking (header and `civia` object) of every generated answer.

use crate::{ApiError, ApiState};
use axum::response::Response;
use civia_ipc::{ChatMessage, FinishReason, Prompt, Usage};
use civia_supervisor::{Event, Generation};
use serde_json::{json, Value};

/// The AI Act Art. 50 marking: header and `civia` object on every generated answer.
pub(crate) const AI_GENERATED_HEADER: &str = "x-civia-ai-generated";

/// Set when the prompt holds personal data (`personal_data`).
pub(crate) const WARNING_HEADER: &str = "x-civia-warning";

/// The conversation an exchange is kept in (`civia.save`).
pub(crate) const CONVERSATION_HEADER: &str = "x-civia-conversation-id";

/// The commune's system prompt goes first, before the request's own system message.
pub(crate) fn with_system_prompt(st: &ApiState, messages: Vec<ChatMessage>) -> Prompt {
    civia_openai::system_prompt(&st.config.guard.system_prompt, messages)
}

pub(crate) struct Collected {
    pub(crate) text: String,
    pub(crate) reason: FinishReason,
    pub(crate) usage: Usage,
    /// Stopped by the leak filter.
    pub(crate) leaked: bool,
}

/// What replaces (non-streamed) or ends (streamed) an answer that repeated the commune's
/// system prompt.
pub(crate) const LEAK_NOTICE: &str =
    "[Réponse interrompue : elle reprenait les consignes internes de l'assistant.]";

/// The guard's warning in the `civia` object (ANSSI GenAI R25).
pub(crate) fn leak_warning(marking: &mut Value) {
    add_warning(
        marking,
        "system_prompt_leak",
        "the answer was stopped: it repeated the assistant's internal instructions",
    );
}

/// Collects the answer; stops it as soon as it repeats the protected system prompt, and
/// then returns the guard's notice in its place.
pub(crate) async fn collect(
    mut generation: Generation,
    leak: Option<&civia_guard::LeakGuard>,
) -> Result<Collected, ApiError> {
    let mut text = String::new();
    let mut scanner = leak.map(civia_guard::LeakGuard::scanner);
    let mut leaked = false;
    while let Some(ev) = generation.next().await {
        match ev {
            Event::Started { .. } => {}
            Event::Delta(d) => {
                if leaked {
                    continue;
                }
                if scanner.as_mut().is_some_and(|s| s.push(&d)) {
                    leaked = true;
                    generation.cancel();
                    continue;
                }
                text.push_str(&d);
            }
            Event::Finished { reason, usage } => {
                if leaked || scanner.as_mut().is_some_and(|s| s.finish()) {
                    return Ok(Collected {
                        text: LEAK_NOTICE.to_string(),
                        reason,
                        usage,
                        leaked: true,
                    });
                }
                return Ok(Collected {
                    text,
                    reason,
                    usage,
                    leaked: false,
                });
            }
            Event::Failed(e) => return Err(e.into()),
        }
    }
    Err(ApiError::internal("the generation ended without a result"))
}

/// Adds a notice for the agent to the `civia` object's `warnings`.
pub(crate) fn add_warning(marking: &mut Value, code: &str, message: &str) {
    let w = json!({ "code": code, "message": message });
    match marking.get_mut("warnings").and_then(Value::as_array_mut) {
        Some(list) => list.push(w),
        None => marking["warnings"] = json!([w]),
    }
}

/// The exchange was answered but could not be kept in the history.
pub(crate) fn not_kept(marking: &mut Value) {
    add_warning(
        marking,
        "history_not_saved",
        "the answer could not be saved in the history",
    );
}

/// The `civia` object: AI-generated marking, and the guard's warning when the prompt held
/// personal data (kinds only).
pub(crate) fn civia_marking(
    st: &ApiState,
    pii: &[civia_guard::PiiKind],
    kept: Option<&str>,
) -> Value {
    let mut v = json!({
        "ai_generated": true,
        "model": st.model_id,
        "model_sha256": st.supervisor.status().model.map(|m| m.sha256),
    });
    if let Some(id) = kept {
        v["conversation_id"] = json!(id);
    }
    if !pii.is_empty() {
        let names: Vec<&str> = pii.iter().map(|k| k.name()).collect();
        v["warnings"] = json!([{
            "code": "personal_data",
            "kinds": pii,
            "message": format!(
                "personal data found in the request ({}): check that it is needed and reread \
                 the answer before sending it",
                names.join(", ")
            ),
        }]);
    }
    v
}

pub(crate) fn marked(
    mut resp: Response,
    pii: &[civia_guard::PiiKind],
    kept: Option<&str>,
) -> Response {
    resp.headers_mut().insert(
        AI_GENERATED_HEADER,
        axum::http::HeaderValue::from_static("true"),
    );
    if let Some(v) = kept.and_then(|id| axum::http::HeaderValue::from_str(id).ok()) {
        resp.headers_mut().insert(CONVERSATION_HEADER, v);
    }
    if !pii.is_empty() {
        resp.headers_mut().insert(
            WARNING_HEADER,
            axum::http::HeaderValue::from_static("personal_data"),
        );
    }
    resp
}
