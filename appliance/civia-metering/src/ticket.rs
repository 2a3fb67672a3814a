//! One model request's outcome, written once.

use crate::{Error, Meter, Refusal, CLIENT_CLOSED};
use civia_audit::Event;
use civia_auth::UsageRecord;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

/// One model request's outcome, written once: a usage row and the audit event
/// `request.completed` (or `request.failed`, `request.refused`) — by the handler when it
/// knows the token counts, else by the HTTP layer with the error status, else when a
/// stream is dropped.
pub struct UsageTicket {
    meter: Meter,
    user_id: Option<i64>,
    key_id: Option<i64>,
    started: Instant,
    /// Set by the first outcome written; every later one is a no-op.
    done: AtomicBool,
    /// The request's audit fields (request id, pseudonym, role, model, weights hash).
    audit: Event,
    /// The model the request is served by (the speech model for transcriptions).
    model: String,
    prompt_sha256: Mutex<Option<String>>,
    /// Kinds of personal data found in the prompt (never the data).
    pii: Mutex<Vec<civia_guard::PiiKind>>,
    /// What the output guard did (`system_prompt_leak`).
    output_flags: Mutex<Vec<&'static str>>,
    /// The answer's tool calls: function name and SHA-256 of the arguments (never them).
    tool_calls: Mutex<Vec<serde_json::Value>>,
    /// The user's place among their requests in flight, given back with the ticket.
    place: Mutex<Option<civia_auth::InFlight>>,
}

impl std::fmt::Debug for UsageTicket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UsageTicket")
            .field("request_id", &self.audit.request_id)
            .field("model", &self.model)
            .field("done", &self.done.load(Ordering::SeqCst))
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl UsageTicket {
    pub(crate) fn new(
        meter: Meter,
        user_id: Option<i64>,
        key_id: Option<i64>,
        audit: Event,
        model: String,
    ) -> Self {
        Self {
            meter,
            user_id,
            key_id,
            started: Instant::now(),
            done: AtomicBool::new(false),
            audit,
            model,
            prompt_sha256: Mutex::new(None),
            pii: Mutex::new(Vec::new()),
            output_flags: Mutex::new(Vec::new()),
            tool_calls: Mutex::new(Vec::new()),
            place: Mutex::new(None),
        }
    }

    /// Keeps the user's place in flight until the ticket is dropped.
    pub(crate) fn hold(&self, place: Option<civia_auth::InFlight>) {
        *lock(&self.place) = place;
    }

    /// The request body's hash for the audit (never the body), and the kinds of personal
    /// data it holds (the agent is warned, the audit records the fact).
    pub fn set_prompt(&self, body: &[u8]) {
        *lock(&self.prompt_sha256) = Some(civia_base::hash::sha256_hex(body));
        *lock(&self.pii) = civia_guard::scan(&String::from_utf8_lossy(body));
    }

    /// Records what the output guard did to the answer (for the audit detail).
    pub fn flag_output(&self, flag: &'static str) {
        lock(&self.output_flags).push(flag);
    }

    /// Records a tool call of the answer for the audit: the function's name and the
    /// arguments' hash (the arguments may hold personal data: never them).
    pub fn record_tool_call(&self, name: &str, arguments: &str) {
        lock(&self.tool_calls).push(serde_json::json!({
            "name": name,
            "arguments_sha256": civia_base::hash::sha256_hex(arguments),
        }));
    }

    /// Kinds of personal data found in the prompt.
    pub fn pii(&self) -> Vec<civia_guard::PiiKind> {
        lock(&self.pii).clone()
    }

    /// Writes the outcome; waits for the audit event's fsync. `Err` only when the audit log
    /// cannot be written. A no-op once an outcome is written.
    pub async fn finish(
        &self,
        prompt_tokens: u32,
        completion_tokens: u32,
        status: u16,
        output_sha256: Option<String>,
    ) -> Result<(), Error> {
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
    pub(crate) async fn refuse(&self, r: Refusal) -> Result<(), Error> {
        let ev = Event::new("request.refused").detail(serde_json::json!({ "code": r.code }));
        self.write(ev, r.status).await
    }

    /// The usage row and the audit event `ev` completed with the request's fields.
    async fn write(&self, ev: Event, status: u16) -> Result<(), Error> {
        if self.done.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let duration_ms = self.started.elapsed().as_millis() as u64;
        self.meter.auth.record_usage(UsageRecord {
            user_id: self.user_id,
            key_id: self.key_id,
            model: self.model.clone(),
            prompt_tokens: ev.prompt_tokens.unwrap_or(0),
            completion_tokens: ev.completion_tokens.unwrap_or(0),
            duration_ms,
            status,
        });
        let Some(audit) = &self.meter.audit else {
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
        let flags = lock(&self.output_flags).clone();
        if !flags.is_empty() {
            detail.insert("output_guard".into(), serde_json::json!(flags));
        }
        let calls = std::mem::take(&mut *lock(&self.tool_calls));
        if !calls.is_empty() {
            detail.insert("tool_calls".into(), serde_json::Value::Array(calls));
        }
        let detail = serde_json::Value::Object(detail);
        let prompt_sha256 = lock(&self.prompt_sha256).clone();
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

    /// From a destructor: the outcome is written in the background (needs a Tokio runtime).
    pub fn finish_detached(self: &Arc<Self>, status: u16) {
        if self.done.load(Ordering::SeqCst) {
            return;
        }
        let t = self.clone();
        tokio::spawn(async move {
            let _ = t.finish(0, 0, status, None).await;
        });
    }
}

/// Records a stream's usage as "client closed" ([`CLIENT_CLOSED`]) if it is dropped before
/// its end.
pub struct StreamGuard(pub Option<Arc<UsageTicket>>);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        if let Some(t) = &self.0 {
            t.finish_detached(CLIENT_CLOSED);
        }
    }
}
