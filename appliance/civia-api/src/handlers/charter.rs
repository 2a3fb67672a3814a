//! The usage charter (AI Act art. 4: staff AI literacy): every user accepts the current
//! version before using the model; the acceptances form the attestation register.
//!
//! `GET /v1/charter` and `POST /v1/charter/accept` for every user; `GET /admin/charter` is
//! [`get`] too. Publishing a version and the register are the admin plane's
//! (`civia-admin-api`).

use crate::body::{parse_json, read_body};
use crate::extract::principal;
use crate::{ApiError, ApiState};
use axum::body::Body;
use axum::extract::State;
use axum::http::Extensions;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

type Handler = Result<Response, ApiError>;

/// The current charter and when the caller accepted it (`GET /v1/charter`, `GET /admin/charter`).
pub async fn get(State(st): State<Arc<ApiState>>, ext: Extensions) -> Handler {
    let uid = principal(&ext)?.user().map(|u| u.id);
    let (c, accepted) = st.auth.charter_for(uid).await?;
    Ok(Json(json!({
        "version": c.version, "text": c.text, "created_at": c.created_at,
        "required": st.config.charter.required, "accepted_at": accepted,
    }))
    .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AcceptBody {
    version: u32,
}

pub(crate) async fn accept(State(st): State<Arc<ApiState>>, ext: Extensions, b: Body) -> Handler {
    let (uid, channel) = civia_auth::charter_signer(principal(&ext)?)?;
    let req: AcceptBody = parse_json(&read_body(b, 4096).await?)?;
    let version = req.version;
    let at = st.auth.accept_charter(uid, version, channel).await?;
    let detail = json!({"version": version, "channel": channel});
    st.audit_admin(&ext, "charter.accepted", None, detail)
        .await?;
    Ok(Json(json!({"version": version, "accepted_at": at})).into_response())
}
