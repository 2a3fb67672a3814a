//! The data-subject requests handled by the DPO (RGPD art. 15, 17, 20):
//! `/admin/users/{name}/data` exports everything the box holds about an agent and
//! `/admin/users/{name}/erase` erases it. Only the `dpo` role and the local admin socket may
//! run them; each is audited with its reason. An administrator (`admin` role) cannot.
//!
//! Erasure removes the conversations (text overwritten in the database files), the user's
//! private collections of documents and, when asked, the account, whose collections shared
//! with the service then pass to a colleague of the service (erased when none is left); the
//! audit trail keeps its pseudonymous metadata, which the law requires to keep for its
//! retention period.

use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::Extensions;
use axum::response::{IntoResponse, Response};
use axum::Json;
use civia_api::body::{parse_json, read_body};
use civia_api::extract::{path, principal, query, require};
use civia_api::user_data::{attachment, collections_after_departure, collections_heir, user_data};
use civia_api::{ApiError, ApiState};
use civia_auth::{Principal, Role};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

type Handler = Result<Response, ApiError>;

/// The DPO, or the local admin socket (root on the box). Not the `admin` role: an
/// administrator never reads an agent's conversations.
fn require_dsr(ext: &Extensions) -> Result<(), ApiError> {
    match principal(ext)? {
        Principal::LocalAdmin => Ok(()),
        _ => require(ext, &[Role::Dpo], "handle data-subject requests"),
    }
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
    let why = civia_auth::dsr_reason(query(q)?.reason)?;
    let user = st.auth.user(name).await?;
    let uid = user.id;
    let file = format!("civia-dsr-{}.json", user.name);
    let v = user_data(&st, user).await?;
    st.audit_admin(&ext, "dsr.exported", Some(uid), json!({"reason": why}))
        .await?;
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
    let why = civia_auth::dsr_reason(req.reason)?;
    let delete_account = req.delete_account;
    let user = st.auth.user(name.clone()).await?;
    let heir = collections_heir(&st, user.id).await?;
    let e = st.auth.erase_user(name, delete_account).await?;
    let (uid, n) = (e.user_id, e.conversations);
    let knowledge = collections_after_departure(&st, uid, delete_account, heir).await?;
    let detail = json!({
        "reason": why, "conversations": n, "account_deleted": delete_account,
        "knowledge": knowledge,
    });
    st.audit_admin(&ext, "dsr.erased", Some(uid), detail)
        .await?;
    Ok(Json(json!({
        "conversations_erased": n,
        "account_deleted": delete_account,
        "collections_erased": knowledge["collections_erased"],
        "collections_handed_over": knowledge["collections_handed_over"],
    }))
    .into_response())
}
