//! The admin plane's accounts (`/admin/users`, `/admin/keys`, quotas, usage, status, pairing).
//!
//! Users, roles, keys, quotas and usage reports (aggregates per day and model or service,
//! never per agent). Admin routes need the `admin` role, the usage report `admin` or `dpo`,
//! the status `admin` or `integrator`. The last active admin cannot be removed, disabled or
//! demoted, so the box never locks its commune out.

use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{Extensions, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use civia_api::body::small_json;
use civia_api::extract::{client_ip, path, principal, query, require};
use civia_api::user_data::{collections_after_departure, collections_heir};
use civia_api::views::{key_json, user_json};
use civia_api::{ApiError, ApiState};
use civia_auth::{AuthError, KeyRequest, QuotaView, Role, User, UserChange};
use civia_supervisor::Phase;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

type Handler = Result<Response, ApiError>;

fn role(s: &str) -> Result<Role, ApiError> {
    Ok(s.parse::<Role>().map_err(AuthError::from)?)
}

fn created(v: Value) -> Handler {
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

// ---- pairing -------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PairBody {
    code: String,
    name: String,
    password: Option<String>,
}

pub(crate) async fn pair(State(st): State<Arc<ApiState>>, ext: Extensions, b: Body) -> Handler {
    let req: PairBody = small_json(b).await?;
    let (user, password) = st
        .auth
        .pair(&req.code, req.name, req.password, client_ip(&ext))
        .await?;
    st.audit_admin(
        &ext,
        "admin.paired",
        Some(user.id),
        json!({"role": "admin"}),
    )
    .await?;
    let mut v = json!({ "user": user_json(&user) });
    if let Some(p) = password {
        v["password"] = json!(p);
    }
    created(v)
}

// ---- users ---------------------------------------------------------------------------

pub(crate) async fn list_users(State(st): State<Arc<ApiState>>, ext: Extensions) -> Handler {
    require(&ext, &[Role::Admin], "list users")?;
    let users = st.auth.users().await?;
    let list: Vec<Value> = users.iter().map(user_json).collect();
    Ok(Json(json!({ "users": list })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    name: String,
    role: String,
    service: Option<String>,
    password: Option<String>,
}

pub(crate) async fn add_user(State(st): State<Arc<ApiState>>, ext: Extensions, b: Body) -> Handler {
    require(&ext, &[Role::Admin], "create users")?;
    let req: NewUser = small_json(b).await?;
    let r = role(&req.role)?;
    let (user, password) = st
        .auth
        .add_user(req.name, r, req.service, req.password)
        .await?;
    let detail = json!({"role": user.role.as_str()});
    st.audit_admin(&ext, "admin.user_created", Some(user.id), detail)
        .await?;
    log::info!(
        "user #{} ({}) created by {}",
        user.id,
        user.role.as_str(),
        principal(&ext)?.log_label()
    );
    let mut v = json!({ "user": user_json(&user) });
    if let Some(p) = password {
        v["password"] = json!(p);
    }
    created(v)
}

pub(crate) async fn get_user(
    State(st): State<Arc<ApiState>>,
    ext: Extensions,
    name: Result<Path<String>, PathRejection>,
) -> Handler {
    require(&ext, &[Role::Admin], "read users")?;
    let name = path(name)?;
    let u = st.auth.user(name).await?;
    Ok(Json(user_json(&u)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserPatch {
    role: Option<String>,
    disabled: Option<bool>,
    /// `null` clears the service.
    #[serde(default, deserialize_with = "double_option")]
    service: Option<Option<String>>,
    password: Option<String>,
    reset_password: Option<bool>,
}

/// Tells a missing field (None) from an explicit `null` (Some(None)).
fn double_option<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

pub(crate) async fn patch_user(
    State(st): State<Arc<ApiState>>,
    ext: Extensions,
    name: Result<Path<String>, PathRejection>,
    b: Body,
) -> Handler {
    require(&ext, &[Role::Admin], "change users")?;
    let name = path(name)?;
    let req: UserPatch = small_json(b).await?;
    let reset = req.reset_password == Some(true);
    if req.password.is_some() && reset {
        return Err(ApiError::bad_request(
            "Give either `password` or `reset_password`, not both.",
            Some("reset_password".into()),
        ));
    }
    let change = UserChange {
        role: req.role.as_deref().map(role).transpose()?,
        disabled: req.disabled,
        service: req.service.clone(),
        password: req.password.clone(),
        reset_password: reset,
    };
    let (user, generated) = st.auth.change_user(name.clone(), change).await?;
    log::info!(
        "user #{} changed by {}",
        user.id,
        principal(&ext)?.log_label()
    );
    let detail = json!({
        "role": req.role, "disabled": req.disabled, "service_changed": req.service.is_some(),
        "password_changed": req.password.is_some() || reset,
    });
    st.audit_admin(&ext, "admin.user_changed", Some(user.id), detail)
        .await?;
    let mut v = json!({ "user": user_json(&user) });
    if let Some(p) = generated {
        v["password"] = json!(p);
    }
    Ok(Json(v).into_response())
}

pub(crate) async fn delete_user(
    State(st): State<Arc<ApiState>>,
    ext: Extensions,
    name: Result<Path<String>, PathRejection>,
) -> Handler {
    require(&ext, &[Role::Admin], "delete users")?;
    let name = path(name)?;
    let user = st.auth.user(name.clone()).await?;
    let heir = collections_heir(&st, user.id).await?;
    let id = st.auth.delete_user(name.clone()).await?;
    let knowledge = collections_after_departure(&st, id, true, heir).await?;
    st.audit_admin(&ext, "admin.user_deleted", Some(id), knowledge)
        .await?;
    log::info!("user #{id} deleted by {}", principal(&ext)?.log_label());
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---- quotas --------------------------------------------------------------------------

fn quota_json(u: &User, q: &QuotaView) -> Value {
    json!({
        "user": u.name,
        "role": u.role.as_str(),
        "override": {
            "requests_per_minute": q.rpm_override,
            "tokens_per_day": q.tokens_override,
        },
        "effective": {
            "requests_per_minute": q.effective.requests_per_minute,
            "tokens_per_day": q.effective.tokens_per_day,
        },
        "tokens_today": q.tokens_today,
    })
}

pub(crate) async fn get_quota(
    State(st): State<Arc<ApiState>>,
    ext: Extensions,
    name: Result<Path<String>, PathRejection>,
) -> Handler {
    require(&ext, &[Role::Admin], "read quotas")?;
    let name = path(name)?;
    let (u, q) = st.auth.quota_view(name).await?;
    Ok(Json(quota_json(&u, &q)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuotaBody {
    requests_per_minute: Option<u32>,
    tokens_per_day: Option<u64>,
}

pub(crate) async fn put_quota(
    State(st): State<Arc<ApiState>>,
    ext: Extensions,
    name: Result<Path<String>, PathRejection>,
    b: Body,
) -> Handler {
    require(&ext, &[Role::Admin], "set quotas")?;
    let name = path(name)?;
    let req: QuotaBody = small_json(b).await?;
    let (u, q) = st
        .auth
        .set_quota(name.clone(), req.requests_per_minute, req.tokens_per_day)
        .await?;
    log::info!(
        "quota of user #{} changed by {}",
        u.id,
        principal(&ext)?.log_label()
    );
    let detail =
        json!({"requests_per_minute": q.rpm_override, "tokens_per_day": q.tokens_override});
    st.audit_admin(&ext, "admin.quota_changed", Some(u.id), detail)
        .await?;
    Ok(Json(quota_json(&u, &q)).into_response())
}

// ---- keys ----------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct KeyFilter {
    user: Option<String>,
}

pub(crate) async fn list_keys(
    State(st): State<Arc<ApiState>>,
    ext: Extensions,
    f: Result<Query<KeyFilter>, QueryRejection>,
) -> Handler {
    require(&ext, &[Role::Admin], "list keys")?;
    let f = query(f)?;
    let keys = st.auth.keys(f.user).await?;
    let list: Vec<Value> = keys.iter().map(key_json).collect();
    Ok(Json(json!({ "keys": list })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    user: String,
    name: Option<String>,
    model: Option<String>,
    expires_in_days: Option<u32>,
}

pub(crate) async fn create_key(
    State(st): State<Arc<ApiState>>,
    ext: Extensions,
    b: Body,
) -> Handler {
    require(&ext, &[Role::Admin], "create keys")?;
    let req: NewKey = small_json(b).await?;
    let req = KeyRequest {
        user: req.user,
        name: req.name,
        model: req.model,
        expires_in_days: req.expires_in_days,
    };
    let civia_auth::NewKey { key, info, owner } = st.auth.create_key(req, &st.model_ids()).await?;
    let detail =
        json!({"key_id": info.id, "model": info.model_scope, "expires_at": info.expires_at});
    st.audit_admin(&ext, "admin.key_created", Some(owner), detail)
        .await?;
    log::info!(
        "API key #{} for user #{owner} created by {}",
        info.id,
        principal(&ext)?.log_label()
    );
    created(json!({ "key": key, "info": key_json(&info) }))
}

pub(crate) async fn revoke_key(
    State(st): State<Arc<ApiState>>,
    ext: Extensions,
    id: Result<Path<i64>, PathRejection>,
) -> Handler {
    require(&ext, &[Role::Admin], "revoke keys")?;
    let id = path(id)?;
    st.auth.revoke_key(id).await?;
    log::info!("API key #{id} revoked by {}", principal(&ext)?.log_label());
    st.audit_admin(&ext, "admin.key_revoked", None, json!({"key_id": id}))
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---- reports and status --------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UsageQuery {
    days: Option<u32>,
    by: Option<String>,
}

pub(crate) async fn usage(
    State(st): State<Arc<ApiState>>,
    ext: Extensions,
    q: Result<Query<UsageQuery>, QueryRejection>,
) -> Handler {
    require(&ext, &[Role::Admin, Role::Dpo], "read usage reports")?;
    let q = query(q)?;
    let report = st.auth.usage_report(q.days, q.by.as_deref()).await?;
    let rows: Vec<Value> = report
        .rows
        .iter()
        .map(|r| {
            json!({
                "day": civia_base::time::date_of_day(r.day), "group": r.model, "requests": r.requests,
                "prompt_tokens": r.prompt_tokens, "completion_tokens": r.completion_tokens,
            })
        })
        .collect();
    let (by, from, to) = (report.group.as_str(), report.from, report.to);
    Ok(Json(json!({ "by": by, "from": from, "to": to, "rows": rows })).into_response())
}

pub(crate) async fn status(State(st): State<Arc<ApiState>>, ext: Extensions) -> Handler {
    require(
        &ext,
        &[Role::Admin, Role::Integrator],
        "read the system status",
    )?;
    let s = st.supervisor.status();
    let users = st.auth.user_count().await?;
    let host = crate::host::facts(&st).await?;
    let updates = st.updates.as_ref().map(|u| u.system.is_ok());
    Ok(Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "started_at": st.started_at,
        "uptime_secs": civia_auth::now().saturating_sub(st.started_at as i64),
        "model": {
            "id": st.model_id,
            "loaded": s.phase == Phase::Ready,
            "sha256": s.model.as_ref().map(|m| m.sha256.clone()),
            "gpu_layers": st.config.model.gpu_layers,
        },
        "worker": {"phase": s.phase.as_str(), "restarts": s.restarts, "last_error": s.last_error},
        "speech": st.speech_status(),
        "embeddings": st.embeddings_status(),
        "users": users,
        "pairing_pending": st.auth.pairing_code().is_some(),
        "host": host,
        "system_updates": updates,
    }))
    .into_response())
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates() {
        assert_eq!(civia_base::time::date_of_day(0), "1970-01-01");
        assert_eq!(civia_base::time::date_of_day(20_786), "2026-11-29");
        assert_eq!(civia_base::time::date_of_day(11_016), "2000-02-29");
    }
}
