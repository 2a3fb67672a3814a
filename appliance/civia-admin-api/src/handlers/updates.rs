//! `/admin/updates*`: the integrator's signed bundles (uploaded, or read from a USB stick by
//! the local admin) handed to `civia-update`'s service; a model bundle is then loaded by a
//! fresh runtime worker and confirmed, or rolled back when it does not load.
//!
//! One install at a time. Every refusal is answered with the agent's stable code (400 for a
//! refused bundle, nothing written) and leaves an update event in the journal.

use axum::body::Body;
use axum::extract::State;
use axum::http::Extensions;
use axum::response::{IntoResponse, Response};
use axum::Json;
use civia_api::body::{body_reader, parse_json, read_body, BodyReader};
use civia_api::error::Class;
use civia_api::extract::require;
use civia_api::{ApiError, ApiState};
use civia_auth::{Principal, Role};
use civia_update::service::{blocking, detached};
use civia_update::{UpdateError, Updates};
use serde::Deserialize;
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;

fn updates(st: &ApiState) -> Result<&Updates, ApiError> {
    st.updates.as_deref().ok_or_else(|| {
        ApiError::of(
            Class::Conflict,
            "system_updates_off",
            "Updates are not configured on this daemon.",
        )
    })
}

/// The integrator installs; the local admin (root on the box, e.g. with a USB stick) too.
/// Returns the updater settings once the caller may install and updates are possible.
fn installer<'a>(st: &'a ApiState, ext: &Extensions) -> Result<&'a Updates, ApiError> {
    match ext.get::<Principal>() {
        Some(Principal::LocalAdmin) => {}
        Some(p) => p.require(&[Role::Integrator], "install updates")?,
        None => return Err(civia_auth::AuthError::MissingCredentials.into()),
    }
    let u = updates(st)?;
    u.check_trusted()?;
    Ok(u)
}

/// An install from an upload: past the size limit, a 413 rather than the reader's I/O error.
async fn install_upload<T: Send + 'static>(
    body: Body,
    limit: u64,
    f: impl FnOnce(BodyReader) -> Result<T, UpdateError> + Send + 'static,
) -> Result<T, ApiError> {
    let (reader, too_large) = body_reader(body, limit);
    blocking(move || f(reader)).await.map_err(|e| {
        if too_large.load(std::sync::atomic::Ordering::SeqCst) {
            ApiError::of(
                Class::TooLarge,
                "request_too_large",
                format!("The bundle exceeds update.max_upload_bytes ({limit} bytes)."),
            )
        } else {
            ApiError::from(e)
        }
    })
}

pub(crate) async fn status(
    State(st): State<Arc<ApiState>>,
    ext: Extensions,
) -> Result<Response, ApiError> {
    require(
        &ext,
        &[Role::Admin, Role::Integrator],
        "read the update status",
    )?;
    let u = updates(&st)?;
    let system = match &u.system {
        Ok(c) => {
            let state = u.system_updater()?.state().map_err(ApiError::from)?;
            json!({
                "enabled": true, "reason": null, "compatible": c.compatible,
                "booted_slot": c.booted.name(), "running_version": c.running.to_string(),
                "floor": state.floor.to_string(),
                "pending": state.pending.as_ref().map(|p| json!({"slot": p.slot, "version": p.version.to_string()})),
                "last_outcome": state.last_outcome.as_ref().map(|o| json!({"version": o.version.to_string(), "result": o.result, "message": o.message})),
            })
        }
        Err(why) => json!({"enabled": false, "reason": why, "compatible": u.compatible,
                           "booted_slot": null, "running_version": null, "floor": null,
                           "pending": null, "last_outcome": null}),
    };
    let store = u.models();
    let id = st.model_id.clone();
    let model = json!({
        "id": id,
        "current": store.current(&id).map(|v| v.to_string()),
        "previous": store.previous(&id).map(|v| v.to_string()),
        "path": st.supervisor.load_spec().path,
    });
    Ok(Json(json!({"system": system, "model": model})).into_response())
}

pub(crate) async fn upload_system(
    State(st): State<Arc<ApiState>>,
    ext: Extensions,
    body: Body,
) -> Result<Response, ApiError> {
    let u = installer(&st, &ext)?;
    let updater = u.system_updater()?;
    let guard = u.begin()?;
    let limit = u.max_upload_bytes;
    let done = detached(
        guard,
        install_upload(body, limit, move |r| updater.install_from_reader(r)),
    )
    .await?;
    Ok(system_installed(&done))
}

fn system_installed(done: &civia_update::system::Installed) -> Response {
    Json(json!({
        "kind": "system", "version": done.version.to_string(), "slot": done.slot.name(),
        "reboot_required": true,
    }))
    .into_response()
}

pub(crate) async fn upload_model(
    State(st): State<Arc<ApiState>>,
    ext: Extensions,
    body: Body,
) -> Result<Response, ApiError> {
    let u = installer(&st, &ext)?;
    let guard = u.begin()?;
    let (store, limit) = (u.models(), u.max_upload_bytes);
    let st = st.clone();
    detached(guard, async move {
        let installed = install_upload(body, limit, move |r| store.install_from_reader(r)).await?;
        switch_to_installed(&st, installed).await
    })
    .await
}

/// The runtime worker as the update service's model loader.
struct WorkerLoader<'a> {
    supervisor: &'a civia_supervisor::Supervisor,
    before: civia_ipc::LoadSpec,
}

impl civia_update::ModelLoader for WorkerLoader<'_> {
    async fn load(&self, path: &std::path::Path) -> Result<String, String> {
        let mut next = self.before.clone();
        next.path = path.to_string_lossy().into_owned();
        next.sha256 = None; // the bundle's signed hash was checked while installing
        self.supervisor
            .switch_model(next)
            .await
            .map(|info| info.sha256)
    }

    async fn restore(&self) -> Result<(), String> {
        self.supervisor
            .switch_model(self.before.clone())
            .await
            .map(|_| ())
    }
}

/// Puts a freshly installed model bundle into service (or back out).
async fn switch_to_installed(
    st: &ApiState,
    installed: civia_update::ModelInstalled,
) -> Result<Response, ApiError> {
    let u = updates(st)?;
    let loader = WorkerLoader {
        supervisor: &st.supervisor,
        before: st.supervisor.load_spec(),
    };
    let m = u.activate_model(installed, &st.model_id, &loader).await?;
    Ok(Json(json!({
        "kind": "model", "model": m.model_id, "version": m.version.to_string(),
        "previous": m.previous.map(|v| v.to_string()),
        "sha256": m.sha256, "floor": m.floor.to_string(),
    }))
    .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LocalInstall {
    kind: String,
    path: String,
}

/// A bundle file on the box (USB stick), for the local admin only.
pub(crate) async fn install_path(
    State(st): State<Arc<ApiState>>,
    ext: Extensions,
    body: Body,
) -> Result<Response, ApiError> {
    if !matches!(ext.get::<Principal>(), Some(Principal::LocalAdmin)) {
        return Err(civia_auth::AuthError::Forbidden {
            role: ext
                .get::<Principal>()
                .map_or("anonymous", |p| p.role().as_str()),
            action: "install from a path on the box (use the admin socket)",
        }
        .into());
    }
    let req: LocalInstall = parse_json(&read_body(body, 64 * 1024).await?)?;
    let path = PathBuf::from(&req.path);
    if !path.is_absolute() {
        return Err(ApiError::bad_request(
            "`path` must be absolute.",
            Some("path".into()),
        ));
    }
    let u = installer(&st, &ext)?;
    match req.kind.as_str() {
        "system" => {
            let updater = u.system_updater()?;
            let guard = u.begin()?;
            let install = async move {
                Ok::<_, ApiError>(blocking(move || updater.install_from_path(&path)).await?)
            };
            Ok(system_installed(&detached(guard, install).await?))
        }
        "model" => {
            let guard = u.begin()?;
            let store = u.models();
            let st = st.clone();
            detached(guard, async move {
                let installed = blocking(move || store.install_from_path(&path)).await?;
                switch_to_installed(&st, installed).await
            })
            .await
        }
        _ => Err(ApiError::bad_request(
            "`kind` must be `system` or `model`.",
            Some("kind".into()),
        )),
    }
}
