//! What a handler learns from the request before parsing its body: who is calling (the
//! principal the authentication middleware put in the extensions, the credentials in the
//! headers, the client address) and the URL's path and query parameters, with rejections
//! shaped as OpenAI error objects rather than axum's plain text.

use crate::ApiError;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, Path, Query};
use axum::http::{header, Extensions, HeaderMap};
use civia_auth::{AuthError, Principal, Role};
use std::net::{IpAddr, SocketAddr};

/// Name of the web session cookie.
pub const SESSION_COOKIE: &str = "civia_session";

/// Header carrying the session's CSRF token on state-changing requests.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The authenticated caller (put there by [`crate::auth::require_auth`]); 401 when absent.
pub fn principal(ext: &Extensions) -> Result<&Principal, ApiError> {
    ext.get::<Principal>()
        .ok_or_else(|| AuthError::MissingCredentials.into())
}

/// Requires one of `roles` (the local admin socket passes every check); 403 naming `action`.
pub fn require(ext: &Extensions, roles: &[Role], action: &'static str) -> Result<(), ApiError> {
    Ok(principal(ext)?.require(roles, action)?)
}

/// Path and query rejections as OpenAI error objects, not axum's plain text.
pub fn path<T>(p: Result<Path<T>, PathRejection>) -> Result<T, ApiError> {
    p.map(|Path(v)| v)
        .map_err(|e| ApiError::bad_request(format!("Invalid URL: {}", e.body_text()), None))
}

pub fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(v)| v)
        .map_err(|e| ApiError::bad_request(format!("Invalid query: {}", e.body_text()), None))
}

/// The client's address (loopback when unknown, e.g. on the admin socket).
pub fn client_ip(ext: &Extensions) -> IpAddr {
    ext.get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([127, 0, 0, 1]), |c| c.0.ip())
}

/// The `Authorization: Bearer …` key, if the header is there (an error when it is malformed).
pub fn bearer(headers: &HeaderMap) -> Option<Result<String, AuthError>> {
    let v = headers.get(header::AUTHORIZATION)?;
    let token = v
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string());
    Some(token.filter(|t| !t.is_empty()).ok_or(AuthError::InvalidKey))
}

/// The web session's token, from its cookie.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.to_string())
}

/// Who a request counts against in the fair queue: the user at their workstation.
pub fn fairness_key(ext: &Extensions) -> String {
    let who = ext.get::<Principal>().map_or("anonymous", |p| p.name());
    format!("{who}@{}", client_ip(ext))
}
