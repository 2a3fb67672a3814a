//! Metering of model requests: every request to the model is audited from its start
//! (`request.received`), admitted or refused (charter, role, quotas), and leaves exactly one
//! usage row and one outcome event (`request.refused`, `request.completed` or
//! `request.failed`), written by the handler when it knows the token counts, by the HTTP
//! layer with the error status, or when a stream is dropped ([`StreamGuard`]).
//!
//! Owns: the admission sequence ([`Meter::admit`]: received → charter gate → quotas →
//! admitted), the [`UsageTicket`] and its once-only outcome, the composition of the
//! `request.*` audit events (request id, pseudonym, role, model label, weights hash, prompt
//! and output digests, kinds of personal data, output-guard flags, duration, status) and of
//! the usage row, [`audit_label`] and [`CLIENT_CLOSED`]. `civia-api` extracts the caller
//! and the route, answers in HTTP and runs the handler; this crate only accounts.
//!
//! Must never: record prompt or answer text (only SHA-256 digests, token counts and the
//! kinds of personal data found); write a ticket's outcome twice; let a request reach the
//! model before its `request.received` event is durable; count a charter refusal against
//! the quotas (the charter is checked before the quotas).

mod ticket;

pub use ticket::{StreamGuard, UsageTicket};

use civia_audit::{Audit, AuditUnavailable, Event};
use civia_auth::{Auth, AuthError, Principal};
use std::sync::Arc;

/// Status recorded for a stream the client left before its end.
pub const CLIENT_CLOSED: u16 = 499;

/// Metering failed: the request must be refused.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The audit log cannot be written (model requests fail closed).
    #[error(transparent)]
    Audit(#[from] AuditUnavailable),
}

/// Where requests are accounted: usage rows through [`Auth`], events through [`Audit`]
/// (`None` only in unit setups: no events are written then).
#[derive(Clone)]
pub struct Meter {
    auth: Arc<Auth>,
    audit: Option<Arc<Audit>>,
}

/// One model request as it arrives, before admission.
#[derive(Debug, Clone)]
pub struct ModelRequest<'a> {
    /// The authenticated caller.
    pub who: &'a Principal,
    /// The model the request is served by (the speech model for transcriptions).
    pub model: String,
    /// SHA-256 of that model's weights, when loaded.
    pub model_sha256: Option<String>,
    /// Whether the commune requires the usage charter to be accepted.
    pub charter_required: bool,
}

/// How the caller answers a refusal: recorded as `request.refused`'s status and
/// `detail.code`, and as the usage row's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub code: &'static str,
}

/// What admission decided.
#[derive(Debug)]
pub enum Admission {
    /// Received and admitted (both events durable): the request may reach the model; the
    /// ticket must be finished (or dropped with its stream).
    Admitted(Arc<UsageTicket>),
    /// Refused before the model; `request.refused` and the usage row are already written.
    Refused(AuthError),
}

impl Meter {
    pub fn new(auth: Arc<Auth>, audit: Option<Arc<Audit>>) -> Self {
        Self { auth, audit }
    }

    /// Admits a model request: `request.received` (durable before anything else), then the
    /// charter gate, then role and quotas, then `request.admitted`. A refusal is recorded
    /// (usage row and `request.refused`, with the status and code `answer` gives) before it
    /// is returned. `Err` only when the audit log cannot be written.
    pub async fn admit(
        &self,
        req: ModelRequest<'_>,
        answer: impl FnOnce(&AuthError) -> Refusal,
    ) -> Result<Admission, Error> {
        let who = req.who;
        let mut base = Event::new("request.received")
            .request_id(uuid::Uuid::new_v4().simple().to_string())
            .role(who.role().as_str())
            .model(audit_label(&req.model));
        if let Some(sha) = req.model_sha256 {
            base = base.model_sha256(sha);
        }
        if let Some(audit) = &self.audit {
            base.user = Some(audit.who(who.user().map(|u| u.id)));
            audit.append(base.clone()).await?;
        }
        let ticket = Arc::new(UsageTicket::new(
            self.clone(),
            who.user().map(|u| u.id),
            who.key_id(),
            base.clone(),
            req.model,
        ));
        // The charter first: a refusal there does not count against the quotas.
        let admitted = match self.auth.charter_gate(who, req.charter_required).await {
            Ok(()) => self.auth.admit(who).await,
            Err(e) => Err(e),
        };
        match admitted {
            // The user's place in flight lives as long as the ticket (the response's end).
            Ok(place) => ticket.hold(place),
            Err(e) => {
                ticket.refuse(answer(&e)).await?;
                return Ok(Admission::Refused(e));
            }
        }
        if let Some(audit) = &self.audit {
            let ev = Event {
                event: "request.admitted".into(),
                ..base
            };
            audit.append(ev).await?;
        }
        Ok(Admission::Admitted(ticket))
    }
}

/// A model id as the audit accepts text fields: no control characters, at most 128 bytes.
pub fn audit_label(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars().filter(|c| !c.is_control()) {
        if out.len() + c.len_utf8() > 128 {
            break;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests;
