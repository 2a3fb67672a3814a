//! `/admin/backup*`: the box's encrypted backups (administrators only): their status and
//! progress, the backup key (shown once), a backup written to the configured destination,
//! and a backup streamed as a download. Each is an audit entry (the backups service writes
//! it).

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, Extensions, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use civia_api::body::small_json;
use civia_api::extract::require;
use civia_api::{ApiError, ApiState};
use civia_auth::{Principal, Role};
use civia_backup::{Backups, By, Target};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

fn backups(st: &ApiState) -> Result<Arc<Backups>, ApiError> {
    st.backups
        .clone()
        .ok_or_else(|| ApiError::internal("backups are not available"))
}

/// The administrator asking, for the audit entry.
fn by(ext: &Extensions, what: &'static str) -> Result<By, ApiError> {
    require(ext, &[Role::Admin], what)?;
    let who = ext
        .get::<Principal>()
        .ok_or_else(|| ApiError::internal("no principal"))?;
    Ok(By {
        user_id: who.user().map(|u| u.id),
        role: Some(who.role().as_str().to_owned()),
    })
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, civia_backup::BackupError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("backup task failed: {e}")))?
        .map_err(ApiError::from)
}

/// `GET /admin/backup`: the key's presence, the destination and its archives, the backup
/// running now with its progress, the last outcomes, and whether the last good one is too old.
pub(crate) async fn status(
    State(st): State<Arc<ApiState>>,
    ext: Extensions,
) -> Result<Response, ApiError> {
    by(&ext, "see the backups")?;
    let b = backups(&st)?;
    let status = blocking(move || Ok(b.status())).await?;
    Ok(Json(status).into_response())
}

/// `POST /admin/backup/key`: creates the backup key and answers its secret, once; 409 when
/// one exists.
pub(crate) async fn create_key(
    State(st): State<Arc<ApiState>>,
    ext: Extensions,
) -> Result<Response, ApiError> {
    let by = by(&ext, "create the backup key")?;
    let b = backups(&st)?;
    let key = blocking(move || b.create_key(&by)).await?;
    Ok((
        StatusCode::CREATED,
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({ "key": key })),
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SmbPassword {
    password: String,
}

/// `PUT /admin/backup/smb-password`: keeps the NAS password of `[backup] smb`, encrypted
/// under a key only this box has (204); 409 without a NAS share configured, 400 for an
/// empty or overlong password. It is never answered back.
pub(crate) async fn set_smb_password(
    State(st): State<Arc<ApiState>>,
    ext: Extensions,
    body: Body,
) -> Result<Response, ApiError> {
    let by = by(&ext, "set the NAS password")?;
    let req: SmbPassword = small_json(body).await?;
    let b = backups(&st)?;
    blocking(move || b.set_smb_password(&req.password, &by)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /admin/backup`: starts a backup to the configured destination and answers at once
/// (202); `GET /admin/backup` follows it. 409 without a key or a destination, or while
/// another backup runs.
pub(crate) async fn start(
    State(st): State<Arc<ApiState>>,
    ext: Extensions,
) -> Result<Response, ApiError> {
    let by = by(&ext, "start a backup")?;
    let b = backups(&st)?;
    let job = b.begin(Target::Destination)?;
    tokio::task::spawn_blocking(move || {
        // The outcome goes to the status, the audit trail and the logs.
        let _ = job.to_destination(&by);
    });
    let running = b.running_now();
    Ok((StatusCode::ACCEPTED, Json(json!({ "running": running }))).into_response())
}

/// `GET /admin/backup/download`: a backup of the box now, streamed as it is written
/// (`application/octet-stream`, never held whole on the box). 409 without a key or while
/// another backup runs; a failure midway aborts the connection, so that a partial download
/// never looks complete (and its decryption would refuse it).
pub(crate) async fn download(
    State(st): State<Arc<ApiState>>,
    method: Method,
    ext: Extensions,
) -> Result<Response, ApiError> {
    let by = by(&ext, "download a backup")?;
    // A HEAD would make a whole backup for nothing (axum answers HEAD with the GET handler).
    if method == Method::HEAD {
        return Ok((StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, "GET")]).into_response());
    }
    let b = backups(&st)?;
    let job = b.begin(Target::Download)?;
    let name = job.file_name();
    let body = civia_api::body::from_blocking_writer(move |sink| {
        job.to_writer(sink, &by)
            .map(|_| ())
            .map_err(|e| std::io::Error::other(e.to_string()))
    });
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        body,
    )
        .into_response())
}
