//! Authentication middleware: who is calling (API key, session cookie, or the local admin
//! socket); the principal goes into the request's extensions for [`crate::extract`].

use crate::extract::{bearer, client_ip, session_cookie, CSRF_HEADER};
use crate::{ApiError, ApiState};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use civia_auth::{AuthError, Principal};
use std::sync::Arc;

/// Who is calling: the local admin socket, else a bearer key, else a session cookie (with
/// its CSRF token on anything but GET/HEAD).
pub async fn authenticate(
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
pub async fn require_auth(
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
