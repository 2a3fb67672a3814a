//! The admin plane's accounts (`/admin/users`, `/admin/keys`, quotas, usage, status, pairing).
//!
//! Users, roles, keys, quotas and usage reports (aggregates per day and model or service,
//! never per agent). Admin routes need the `admin` role, the usage report `admin` or `dpo`,
//! the status `admin` or `integrator`. The last active admin cannot be removed, disabled or
//! demoted, so the box never locks its commune out.

use crate::body::small_json;
use crate::extract::{client_ip, path, principal, query, require};
use crate::views::{key_json, user_json};
use crate::{ApiError, ApiState};
use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{Extensions, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use civia_auth::{AuthError, QuotaView, Role, User};
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

fn last_admin() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "invalid_request_error",
        "last_admin",
        "This is the last active administrator: create another one first.",
    )
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
    let users = st.auth.with_store(|s| s.users()).await?;
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
        "user `{}` ({}) created by {}",
        user.name,
        user.role.as_str(),
        principal(&ext)?.name()
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
    let u = st.auth.with_store(move |s| s.user(&name)).await?;
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
    let new_role = req.role.as_deref().map(role).transpose()?;
    let generated = if reset {
        Some(civia_auth::generate_password()?)
    } else {
        None
    };
    let password = req.password.clone().or_else(|| generated.clone());
    let (n, service, disabled) = (name.clone(), req.service.clone(), req.disabled);
    let user = st
        .auth
        .with_store(move |s| {
            let before = s.user(&n)?;
            let demoted = new_role.is_some_and(|r| r != Role::Admin) || disabled == Some(true);
            if before.role == Role::Admin && !before.disabled && demoted && s.active_admins()? <= 1
            {
                return Ok(None);
            }
            // Validate everything before changing anything.
            if let Some(p) = &password {
                civia_auth::check_password_policy(p)?;
            }
            if let Some(Some(svc)) = &service {
                civia_auth::check_service(svc)?;
            }
            if let Some(p) = &password {
                s.set_password(&n, p)?;
            }
            if let Some(svc) = &service {
                s.set_service(&n, svc.as_deref())?;
            }
            if let Some(r) = new_role {
                s.set_role(&n, r)?;
            }
            if let Some(d) = disabled {
                s.set_disabled(&n, d)?;
            }
            s.user(&n).map(Some)
        })
        .await?
        .ok_or_else(last_admin)?;
    log::info!("user `{name}` changed by {}", principal(&ext)?.name());
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
    let n = name.clone();
    let deleted = st
        .auth
        .with_store(move |s| {
            let u = s.user(&n)?;
            if u.role == Role::Admin && !u.disabled && s.active_admins()? <= 1 {
                return Ok(None);
            }
            s.delete_user(&n)?;
            Ok(Some(u.id))
        })
        .await?;
    let Some(id) = deleted else {
        return Err(last_admin());
    };
    st.audit_admin(&ext, "admin.user_deleted", Some(id), json!({}))
        .await?;
    log::info!("user `{name}` deleted by {}", principal(&ext)?.name());
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
    if req.tokens_per_day.is_some_and(|t| t > i64::MAX as u64) {
        return Err(ApiError::bad_request(
            "`tokens_per_day` is too large.",
            Some("tokens_per_day".into()),
        ));
    }
    let n = name.clone();
    st.auth
        .with_store(move |s| s.set_quota(&n, req.requests_per_minute, req.tokens_per_day))
        .await?;
    log::info!("quota of `{name}` changed by {}", principal(&ext)?.name());
    let (u, q) = st.auth.quota_view(name).await?;
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
    let keys = st
        .auth
        .with_store(move |s| {
            if let Some(u) = &f.user {
                s.user(u)?;
            }
            s.keys(f.user.as_deref())
        })
        .await?;
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

/// Longest key life: ten years.
const MAX_KEY_DAYS: u32 = 3650;

pub(crate) async fn create_key(
    State(st): State<Arc<ApiState>>,
    ext: Extensions,
    b: Body,
) -> Handler {
    require(&ext, &[Role::Admin], "create keys")?;
    let req: NewKey = small_json(b).await?;
    if let Some(m) = &req.model {
        if !st.model_ids().contains(m) {
            return Err(ApiError::model_not_found(m, &st.model_id));
        }
    }
    let expires_at = match req.expires_in_days {
        Some(0) | Some(MAX_KEY_DAYS..) => {
            return Err(ApiError::bad_request(
                format!(
                    "`expires_in_days` must be between 1 and {}.",
                    MAX_KEY_DAYS - 1
                ),
                Some("expires_in_days".into()),
            ))
        }
        Some(d) => Some(civia_auth::now() + i64::from(d) * 86_400),
        None => None,
    };
    let name = req.name.unwrap_or_else(|| "default".into());
    let (user, model) = (req.user.clone(), req.model.clone());
    let (key, info, owner) = st
        .auth
        .with_store(move |s| {
            let (key, info) = s.create_key(&user, &name, model.as_deref(), expires_at)?;
            Ok((key, info, s.user(&user)?.id))
        })
        .await?;
    let detail =
        json!({"key_id": info.id, "model": info.model_scope, "expires_at": info.expires_at});
    st.audit_admin(&ext, "admin.key_created", Some(owner), detail)
        .await?;
    log::info!(
        "API key #{} for `{}` created by {}",
        info.id,
        info.user,
        principal(&ext)?.name()
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
    if !st.auth.with_store(move |s| s.revoke_key(id)).await? {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "key_not_found",
            format!("No active API key #{id}."),
        ));
    }
    log::info!("API key #{id} revoked by {}", principal(&ext)?.name());
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
    let days = q.days.unwrap_or(30);
    if !(1..=3660).contains(&days) {
        return Err(ApiError::bad_request(
            "`days` must be between 1 and 3660.",
            Some("days".into()),
        ));
    }
    let by = q.by.unwrap_or_else(|| "model".into());
    let by_service = match by.as_str() {
        "model" => false,
        "service" => true,
        _ => {
            return Err(ApiError::bad_request(
                "`by` must be `model` or `service` (reports never rank agents).",
                Some("by".into()),
            ))
        }
    };
    let to = civia_auth::day_start() + 86_400;
    let from = to - i64::from(days) * 86_400;
    let rows = st
        .auth
        .with_store(move |s| {
            if by_service {
                s.usage_by_service(from, to)
            } else {
                s.usage_by_day(from, to)
            }
        })
        .await?;
    let rows: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "day": civia_base::time::date_of_day(r.day), "group": r.model, "requests": r.requests,
                "prompt_tokens": r.prompt_tokens, "completion_tokens": r.completion_tokens,
            })
        })
        .collect();
    Ok(Json(json!({ "by": by, "from": from, "to": to, "rows": rows })).into_response())
}

pub(crate) async fn status(State(st): State<Arc<ApiState>>, ext: Extensions) -> Handler {
    require(
        &ext,
        &[Role::Admin, Role::Integrator],
        "read the system status",
    )?;
    let s = st.supervisor.status();
    let users = st.auth.with_store(|s| s.user_count()).await?;
    let state_dir = st.config.state_dir.clone();
    let host =
        tokio::task::spawn_blocking(move || civia_system::Collector::new("/").host(&state_dir))
            .await
            .map_err(|e| ApiError::internal(format!("host task failed: {e}")))?;
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
        "users": users,
        "pairing_pending": st.auth.pairing_code().is_some(),
        "host": host,
        "system_updates": updates,
    }))
    .into_response())
}

// ---- web sessions --------------------------------------------------------------------

#[cfg(test)]
mod tests {
    #[test]
    fn dates() {
        assert_eq!(civia_base::time::date_of_day(0), "1970-01-01");
        assert_eq!(civia_base::time::date_of_day(20_786), "2026-11-29");
        assert_eq!(civia_base::time::date_of_day(11_016), "2000-02-29");
    }
}
