//! Metering of model requests in HTTP: the middleware [`meter`] hands each model request to
//! [`civia_metering::Meter`] (received, charter, quotas, admitted), puts the admitted
//! [`UsageTicket`] in the request for the handler, and records the error status of a
//! response that failed. The accounting itself lives in `civia-metering`.

use crate::{ApiError, ApiState};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use civia_auth::{AuthError, Principal};
use civia_metering::{Admission, Meter, ModelRequest, Refusal, UsageTicket};
use std::sync::Arc;

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
    // A transcription is audited under the speech model, an embedding request under the
    // embedding model, everything else the language model.
    let path = req.uri().path();
    let speech = path
        .ends_with("/audio/transcriptions")
        .then(|| st.speech.as_ref().zip(st.config.speech_model_id()))
        .flatten();
    let embeddings = path
        .ends_with("/embeddings")
        .then(|| st.embeddings.as_ref().zip(st.embeddings_model_id()))
        .flatten();
    let (model, model_sha256) = match (speech, embeddings) {
        (Some((s, id)), _) => (id, s.status().model.map(|m| m.sha256)),
        (None, Some((e, id))) => (id, e.status().model.map(|m| m.sha256)),
        (None, None) => (
            st.model_id.clone(),
            st.supervisor.status().model.map(|m| m.sha256),
        ),
    };
    // The refusal's answer, computed once (and logged once when it is an internal error).
    let mut answer = None;
    let admission = Meter::new(st.auth.clone(), st.audit.clone())
        .admit(
            ModelRequest {
                who: &who,
                model,
                model_sha256,
                charter_required: st.config.charter.required,
            },
            |e| {
                let e = ApiError::from(e);
                let refusal = Refusal {
                    status: e.status.as_u16(),
                    code: e.code,
                };
                answer = Some(e);
                refusal
            },
        )
        .await;
    let ticket: Arc<UsageTicket> = match admission {
        Ok(Admission::Admitted(t)) => t,
        Ok(Admission::Refused(e)) => {
            return answer.unwrap_or_else(|| ApiError::from(e)).into_response()
        }
        Err(e) => return ApiError::from(e).into_response(),
    };
    req.extensions_mut().insert(ticket.clone());
    let resp = next.run(req).await;
    if !resp.status().is_success() {
        if let Err(e) = ticket.finish(0, 0, resp.status().as_u16(), None).await {
            return ApiError::from(e).into_response();
        }
    }
    resp
}
