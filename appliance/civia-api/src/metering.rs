//! Metering of model requests: every request to the model is audited from its start
//! (`request.received`), admitted or refused (charter, role, quotas), and leaves exactly one
//! usage row and one outcome event (`request.completed` / `request.failed`), written by the
//! handler when it knows the token counts, by [`meter`] with the error status, or when a
//! stream is dropped ([`StreamGuard`]).

use crate::{ApiError, ApiState};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use civia_audit::Event;
use civia_auth::{AuthError, Principal, UsageRecord};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// One model request's outcome, written once: a usage row and the audit event
/// `request.completed` (or `request.failed`) — by the handler when it knows the token counts,
/// else by [`meter`] with the error status, else when a stream is dropped.
pub(crate) struct UsageTicket {
    st: Arc<ApiState>,
    user_id: Option<i64>,
    key_id: Option<i64>,
    started: Instant,
    done: AtomicBool,
    /// The request's audit fields (request id, pseudonym, role, model, weights hash).
    audit: Event,
    /// The model the request is served by (the speech model for transcriptions).
    model: String,
    prompt_sha256: std::sync::Mutex<Option<String>>,
    /// Kinds of personal data found in the prompt (never the data).
    pii: std::sync::Mutex<Vec<civia_guard::PiiKind>>,
    /// What the output guard did (`system_prompt_leak`).
    output_flags: std::sync::Mutex<Vec<&'static str>>,
}

impl UsageTicket {
    /// The request body's hash for the audit (never the body), and the kinds of personal
    /// data it holds (the agent is warned, the audit records the fact).
    pub(crate) fn set_prompt(&self, body: &[u8]) {
        *self
            .prompt_sha256
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some(civia_base::hash::sha256_hex(body));
        *self
            .pii
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            civia_guard::scan(&String::from_utf8_lossy(body));
    }

    /// Records what the output guard did to the answer (for the audit detail).
    pub(crate) fn flag_output(&self, flag: &'static str) {
        self.output_flags
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(flag);
    }

    /// Kinds of personal data found in the prompt.
    pub(crate) fn pii(&self) -> Vec<civia_guard::PiiKind> {
        self.pii
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Writes the outcome; waits for the audit event's fsync. `Err` only when the audit log
    /// cannot be written.
    pub(crate) async fn finish(
        &self,
        prompt_tokens: u32,
        completion_tokens: u32,
        status: u16,
        output_sha256: Option<String>,
    ) -> Result<(), ApiError> {
        let name = if status == 200 {
            "request.completed"
        } else {
            "request.failed"
        };
        let ev = Event {
            prompt_tokens: Some(prompt_tokens),
            completion_tokens: Some(completion_tokens),
            output_sha256,
            ..Event::new(name)
        };
        self.write(ev, status).await
    }

    /// Refused before reaching the model (role, quota): `request.refused` with the code.
    async fn refuse(&self, e: &ApiError) -> Result<(), ApiError> {
        let ev = Event::new("request.refused").detail(serde_json::json!({ "code": e.code }));
        self.write(ev, e.status.as_u16()).await
    }

    /// The usage row and the audit event `ev` completed with the request's fields.
    async fn write(&self, ev: Event, status: u16) -> Result<(), ApiError> {
        if self.done.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let duration_ms = self.started.elapsed().as_millis() as u64;
        self.st.auth.record_usage(UsageRecord {
            user_id: self.user_id,
            key_id: self.key_id,
            model: self.model.clone(),
            prompt_tokens: ev.prompt_tokens.unwrap_or(0),
            completion_tokens: ev.completion_tokens.unwrap_or(0),
            duration_ms,
            status,
        });
        let Some(audit) = &self.st.audit else {
            return Ok(());
        };
        let mut detail = match ev.detail {
            Some(serde_json::Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        };
        detail.insert("duration_ms".into(), duration_ms.into());
        let pii = self.pii();
        if !pii.is_empty() {
            detail.insert("personal_data".into(), serde_json::json!(pii));
        }
        let flags = self
            .output_flags
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if !flags.is_empty() {
            detail.insert("output_guard".into(), serde_json::json!(flags));
        }
        let detail = serde_json::Value::Object(detail);
        let prompt_sha256 = self
            .prompt_sha256
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let ev = Event {
            event: ev.event,
            status: Some(status),
            prompt_tokens: ev.prompt_tokens,
            completion_tokens: ev.completion_tokens,
            output_sha256: ev.output_sha256,
            prompt_sha256,
            detail: Some(detail),
            ..self.audit.clone()
        };
        Ok(audit.append(ev).await?)
    }

    /// From a destructor: the outcome is written in the background.
    pub(crate) fn finish_detached(self: &Arc<Self>, status: u16) {
        if self.done.load(Ordering::SeqCst) {
            return;
        }
        let t = self.clone();
        tokio::spawn(async move {
            let _ = t.finish(0, 0, status, None).await;
        });
    }
}

/// Records a stream's usage as "client closed" if it is dropped before its end.
pub(crate) struct StreamGuard(pub(crate) Option<Arc<UsageTicket>>);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        if let Some(t) = &self.0 {
            t.finish_detached(CLIENT_CLOSED);
        }
    }
}

/// A model id as the audit accepts text fields: no control characters, at most 128 bytes.
fn audit_label(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars().filter(|c| !c.is_control()) {
        if out.len() + c.len_utf8() > 128 {
            break;
        }
        out.push(c);
    }
    out
}

/// Status recorded for a stream the client left before its end.
pub(crate) const CLIENT_CLOSED: u16 = 499;

/// Model requests: audited from the start, then role and quotas, then a usage row and an
/// audit event whatever the outcome.
pub(crate) async fn meter(
    State(st): State<Arc<ApiState>>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(who) = req.extensions().get::<Principal>().cloned() else {
        return ApiError::from(AuthError::MissingCredentials).into_response();
    };
    // A transcription is audited under the speech model, everything else the language model.
    let speech = req
        .uri()
        .path()
        .ends_with("/audio/transcriptions")
        .then(|| st.speech.as_ref().zip(st.config.speech_model_id()))
        .flatten();
    let (model, sha) = match speech {
        Some((s, id)) => (id, s.status().model.map(|m| m.sha256)),
        None => (
            st.model_id.clone(),
            st.supervisor.status().model.map(|m| m.sha256),
        ),
    };
    let mut base = Event::new("request.received")
        .request_id(uuid::Uuid::new_v4().simple().to_string())
        .role(who.role().as_str())
        .model(audit_label(&model));
    let served_by = model.clone();
    if let Some(sha) = sha {
        base = base.model_sha256(sha);
    }
    if let Some(audit) = &st.audit {
        base.user = Some(audit.who(who.user().map(|u| u.id)));
        if let Err(e) = audit.append(base.clone()).await {
            return ApiError::from(e).into_response();
        }
    }
    let ticket = Arc::new(UsageTicket {
        st: st.clone(),
        user_id: who.user().map(|u| u.id),
        key_id: who.key_id(),
        started: Instant::now(),
        done: AtomicBool::new(false),
        audit: base.clone(),
        model: served_by,
        prompt_sha256: std::sync::Mutex::new(None),
        pii: std::sync::Mutex::new(Vec::new()),
        output_flags: std::sync::Mutex::new(Vec::new()),
    });
    // The charter first: a refusal there does not count against the quotas.
    let admitted = match st.auth.charter_gate(&who, st.config.charter.required).await {
        Ok(()) => st.auth.admit(&who).await,
        Err(e) => Err(e),
    }
    .map_err(ApiError::from);
    if let Err(e) = admitted {
        if let Err(ae) = ticket.refuse(&e).await {
            return ae.into_response();
        }
        return e.into_response();
    }
    if let Some(audit) = &st.audit {
        let ev = Event {
            event: "request.admitted".into(),
            ..base
        };
        if let Err(e) = audit.append(ev).await {
            return ApiError::from(e).into_response();
        }
    }
    req.extensions_mut().insert(ticket.clone());
    let resp = next.run(req).await;
    if !resp.status().is_success() {
        if let Err(e) = ticket.finish(0, 0, resp.status().as_u16(), None).await {
            return e.into_response();
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    #[test]
    fn audit_labels_fit_the_audit_field_rules() {
        assert_eq!(super::audit_label("mistral-7b"), "mistral-7b");
        let long = "é".repeat(100);
        let l = super::audit_label(&long);
        assert!(l.len() <= 128 && l.chars().all(|c| c == 'é'));
        assert_eq!(super::audit_label("a\nb"), "ab");
    }
}
