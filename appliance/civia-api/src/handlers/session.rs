//! The session routes (`/auth/*`): log in, log out, who am I, change my password; and the
//! caller's own API keys (`/v1/me/keys`).

use crate::body::small_json;
use crate::error::Class;
use crate::extract::{client_ip, principal, session_cookie, CSRF_HEADER, SESSION_COOKIE};
use crate::state::actor;
use crate::views::user_json;
use crate::{ApiError, ApiState};
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, Extensions, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use civia_auth::{AuthError, Principal};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

type Handler = Result<Response, ApiError>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    username: String,
    password: String,
}

fn session_cookie_header(value: &str, max_age: u64) -> String {
    format!(
        "{SESSION_COOKIE}={value}; Path=/; Max-Age={max_age}; HttpOnly; Secure; SameSite=Strict"
    )
}

/// Login CSRF: another site's page must not log the agent's browser into an account of the
/// attacker's. A cross-site form can only send `text/plain`, url-encoded or multipart bodies
/// (a JSON content type needs a CORS preflight, which the box never grants), and a browser
/// names the page's origin: it must be the box's own.
fn same_site_login(headers: &HeaderMap) -> Result<(), ApiError> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| {
            t.trim()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
    if !json {
        return Err(ApiError::of(
            Class::Invalid,
            "invalid_content_type",
            "POST /auth/login takes `Content-Type: application/json`.",
        ));
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
        let origin_host = origin
            .to_str()
            .ok()
            .and_then(|o| o.split_once("://"))
            .map(|(_, rest)| rest.trim_end_matches('/'));
        if host.is_none() || origin_host != host {
            return Err(AuthError::Csrf.into());
        }
    }
    Ok(())
}

pub(crate) async fn login(
    State(st): State<Arc<ApiState>>,
    ext: Extensions,
    headers: HeaderMap,
    b: Body,
) -> Handler {
    same_site_login(&headers)?;
    let req: LoginBody = small_json(b).await?;
    let ip = client_ip(&ext);
    let s = match st.auth.login(req.username.clone(), req.password, ip).await {
        Ok(s) => s,
        Err(e) => {
            // No user name in the journal (it outlives an account's erasure).
            log::info!("a login from {ip} was refused: {e}");
            let e = ApiError::from(e);
            // Attempts refused by the throttle are not audited one by one: an attacker
            // must not be able to fill the disk (the lock itself was audited).
            if e.code != "account_locked" && e.code != "address_blocked" {
                st.audit_admin(&ext, "auth.login_failed", None, json!({"code": e.code}))
                    .await?;
            }
            return Err(e);
        }
    };
    log::info!("user #{} logged in from {ip}", s.user.id);
    if let Some(a) = &st.audit {
        let me = Principal::User {
            own: s.user.own_password,
            user: s.user.clone(),
            key_id: None,
            model_scope: None,
            session: true,
        };
        a.record_admin("auth.login", Some(actor(&me)), None, json!({}))
            .await?;
    }
    let cookie = session_cookie_header(&s.token, st.auth.session_absolute_secs());
    Ok((
        [(header::SET_COOKIE, cookie)],
        Json(json!({ "user": user_json(&s.user), "csrf_token": s.csrf })),
    )
        .into_response())
}

/// Ends the session. Like every state-changing request made with the session cookie, it
/// needs the session's CSRF token (a third-party page cannot log the agent out).
pub(crate) async fn logout(
    State(st): State<Arc<ApiState>>,
    headers: axum::http::HeaderMap,
) -> Handler {
    if let Some(token) = session_cookie(&headers) {
        let sent = headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !civia_auth::same_secret(sent.as_bytes(), civia_auth::csrf_token(&token).as_bytes()) {
            return Err(AuthError::Csrf.into());
        }
        st.auth.logout(token).await?;
    }
    Ok((
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, session_cookie_header("", 0))],
    )
        .into_response())
}

pub(crate) async fn me(
    State(st): State<Arc<ApiState>>,
    ext: Extensions,
    headers: axum::http::HeaderMap,
) -> Handler {
    let p = principal(&ext)?;
    let context = st.supervisor.status().model.map(|m| m.n_ctx);
    let mut v = json!({
        "user": p.user().map(user_json),
        "role": p.role().as_str(),
        "csrf_token": null,
        "limits": {
            "model": st.model_id,
            "context_tokens": context,
            "max_tokens": st.limits.max_tokens,
            "max_prompt_chars": st.config.guard.max_prompt_chars,
            "max_document_bytes": crate::body::MAX_DOCUMENT_BYTES,
            "history_enabled": st.config.history.enabled,
            "history_retention_days": st.config.history.retention_days,
            "speech_model": st.speech.as_ref().and(st.config.speech_model_id()),
            "max_audio_bytes": st.config.speech.max_upload_bytes,
            "max_audio_seconds": st.config.speech.max_duration_secs,
        },
    });
    if let (Principal::User { session: true, .. }, Some(token)) = (p, session_cookie(&headers)) {
        v["csrf_token"] = json!(civia_auth::csrf_token(&token));
    }
    Ok(Json(v).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordBody {
    current_password: String,
    new_password: String,
}

/// `POST /auth/password`: the caller replaces their password with one of their own; from
/// then on their sessions reach their history (an administrator never knows this password).
pub(crate) async fn change_password(
    State(st): State<Arc<ApiState>>,
    ext: Extensions,
    b: Body,
) -> Handler {
    let who = principal(&ext)?;
    let req: PasswordBody = small_json(b).await?;
    st.auth
        .change_own_password(who, req.current_password, req.new_password)
        .await?;
    st.audit_admin(&ext, "auth.password_changed", None, json!({}))
        .await?;
    Ok(Json(json!({"changed": true, "history_reachable": true})).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OwnKeyBody {
    name: Option<String>,
    model: Option<String>,
    expires_in_days: Option<u32>,
}

/// `POST /v1/me/keys`: the caller makes an API key for themselves (for the official client
/// or a script of theirs). Made with a credential only they hold, it reaches their history.
pub(crate) async fn create_own_key(
    State(st): State<Arc<ApiState>>,
    ext: Extensions,
    b: Body,
) -> Handler {
    let who = principal(&ext)?;
    let req: OwnKeyBody = small_json(b).await?;
    let civia_auth::NewKey { key, info, owner } = st
        .auth
        .create_own_key(
            who,
            req.name,
            req.model,
            req.expires_in_days,
            &st.model_ids(),
        )
        .await?;
    let own = who.owner().is_ok();
    let detail = json!({"key_id": info.id, "own": own, "expires_at": info.expires_at});
    st.audit_admin(&ext, "auth.own_key_created", Some(owner), detail)
        .await?;
    let mut v = json!({ "key": key, "info": crate::views::key_json(&info) });
    v["info"]["own"] = json!(own);
    Ok((StatusCode::CREATED, Json(v)).into_response())
}
