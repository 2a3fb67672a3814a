//! The usage charter's administration (AI Act art. 4: staff AI literacy): `PUT /admin/charter`
//! (admin) publishes a new version; `GET /admin/charter/register` (admin, dpo) exports the
//! attestation register as JSON or CSV. Reading the charter is `civia_api`'s
//! [`civia_api::get_charter`].

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, Extensions, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use civia_api::body::{parse_json, read_body};
use civia_api::extract::{principal, query, require};
use civia_api::{ApiError, ApiState};
use civia_auth::Role;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

type Handler = Result<Response, ApiError>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CharterBody {
    text: String,
}

pub(crate) async fn put(State(st): State<Arc<ApiState>>, ext: Extensions, b: Body) -> Handler {
    require(&ext, &[Role::Admin], "publish the charter")?;
    let req: CharterBody = parse_json(&read_body(b, 256 * 1024).await?)?;
    let by = principal(&ext)?.name().to_string();
    let c = st.auth.publish_charter(req.text, by).await?;
    st.audit_admin(
        &ext,
        "admin.charter_published",
        None,
        json!({"version": c.version}),
    )
    .await?;
    log::info!("charter version {} published", c.version);
    Ok((
        StatusCode::CREATED,
        Json(json!({"version": c.version, "text": c.text, "created_at": c.created_at})),
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RegisterQuery {
    format: Option<String>,
}

pub(crate) async fn register(
    State(st): State<Arc<ApiState>>,
    ext: Extensions,
    q: Result<Query<RegisterQuery>, QueryRejection>,
) -> Handler {
    require(&ext, &[Role::Admin, Role::Dpo], "read the charter register")?;
    let csv = match query(q)?.format.as_deref().unwrap_or("json") {
        "json" => false,
        "csv" => true,
        _ => {
            return Err(ApiError::bad_request(
                "`format` must be `json` or `csv`.",
                Some("format".into()),
            ))
        }
    };
    let reg = st.auth.charter_register().await?;
    if csv {
        let out = civia_auth::register_csv(&reg.rows);
        return Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], out).into_response());
    }
    let data: Vec<_> = reg
        .rows
        .iter()
        .map(|r| {
            json!({"user": r.user, "role": r.role.as_str(), "service": r.service,
                   "version": r.version, "accepted_at": r.accepted_at, "channel": r.channel})
        })
        .collect();
    Ok(Json(json!({
        "current_version": reg.current.version,
        "active_users": reg.active_users,
        "accepted_current": reg.accepted_current,
        "data": data,
    }))
    .into_response())
}
