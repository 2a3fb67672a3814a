//! Authentication middleware: who is calling (API key, session cookie, or the local admin
//! socket), quota admission for model requests, and the usage row each of them leaves.

use crate::{ApiError, ApiState};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use civia_audit::Event;
use civia_auth::{AuthError, Principal, UsageRecord};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Name of the web session cookie.
pub const SESSION_COOKIE: &str = "civia_session";
/// Header carrying the session's CSRF token on state-changing requests.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The client's address (loopback when unknown, e.g. on the admin socket).
pub(crate) fn client_ip(ext: &axum::http::Extensions) -> IpAddr {
    ext.get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([127, 0, 0, 1]), |c| c.0.ip())
}

fn bearer(headers: &HeaderMap) -> Option<Result<String, AuthError>> {
    let v = headers.get(header::AUTHORIZATION)?;
    let token = v
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string());
    Some(token.filter(|t| !t.is_empty()).ok_or(AuthError::InvalidKey))
}

pub(crate) fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.to_string())
}

/// Who is calling: the local admin socket, else a bearer key, else a session cookie (with
/// its CSRF token on anything but GET/HEAD).
pub(crate) async fn authenticate(
    st: &ApiState,
    local: Option<Principal>,
    method: Method,
    headers: HeaderMap,
) -> Result<Principal, ApiError> {
    if let Some(p @ Principal::LocalAdmin) = local {
        return Ok(p);
    }
    if let Some(key) = bearer(&headers) {
        return Ok(st.auth.bearer(key?).await?);
    }
    if let Some(token) = session_cookie(&headers) {
        let csrf = if matches!(method, Method::GET | Method::HEAD) {
            None
        } else {
            Some(
                headers
                    .get(CSRF_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
                    .ok_or(AuthError::Csrf)?,
            )
        };
        return Ok(st.auth.session(token, csrf).await?);
    }
    Err(AuthError::MissingCredentials.into())
}

/// Requires credentials; the principal goes into the request's extensions.
pub(crate) async fn require_auth(
    State(st): State<Arc<ApiState>>,
    mut req: Request,
    next: Next,
) -> Response {
    let local = req.extensions().get::<Principal>().cloned();
    let (method, headers) = (req.method().clone(), req.headers().clone());
    match authenticate(&st, local, method, headers).await {
        Ok(p) => {
            req.extensions_mut().insert(p);
            next.run(req).await
        }
        Err(e) => {
            log::info!(
                "{} {} from {} refused: {}",
                req.method(),
                req.uri().path(),
                client_ip(req.extensions()),
                e.message
            );
            e.into_response()
        }
    }
}

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
            Some(crate::audit::sha256_hex(body));
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
        audit.append(ev).await
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
        base.user = Some(audit.who(&who));
        if let Err(e) = audit.append(base.clone()).await {
            return e.into_response();
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
    let admitted = match crate::charter::gate(&st, &who).await {
        Ok(()) => st.auth.admit(&who).await.map_err(ApiError::from),
        Err(e) => Err(e),
    };
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
            return e.into_response();
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

/// Who a request counts against in the fair queue: the user at their workstation.
pub(crate) fn fairness_key(ext: &axum::http::Extensions) -> String {
    let who = ext.get::<Principal>().map_or("anonymous", |p| p.name());
    format!("{who}@{}", client_ip(ext))
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
