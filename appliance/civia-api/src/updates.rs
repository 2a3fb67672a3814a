//! The admin plane's side of signed updates: bundles uploaded by the integrator (or read
//! from a USB stick by the local admin) go to `civia-update`; a model bundle is then loaded by
//! a fresh runtime worker and confirmed, or rolled back when it does not load.
//!
//! One install at a time. Every refusal is answered with the agent's stable code (400 for a
//! refused bundle, nothing written) and leaves an update event in the journal.

use crate::{parse_json, read_body, ApiError, ApiState};
use axum::body::Body;
use axum::extract::State;
use axum::http::{Extensions, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use civia_auth::{Principal, Role};
use civia_update::{
    partition, AuditEvent, ModelStore, Observer, Slot, SlotPaths, SystemConfig, SystemUpdater,
    UpdateError, Version,
};
use http_body_util::BodyExt;
use serde::Deserialize;
use serde_json::json;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

/// What the daemon knows about updates on this box.
pub struct Updates {
    /// System updates, or why they are off on this machine.
    pub system: Result<SystemConfig, String>,
    pub compatible: String,
    pub image_root: PathBuf,
    pub state_dir: PathBuf,
    pub models_dir: PathBuf,
    pub max_upload_bytes: u64,
    busy: tokio::sync::Mutex<()>,
    observer: &'static UpdateObserver,
}

/// Update events go to the journal and to the audit trail (`update.<event>`).
struct UpdateObserver {
    audit: Option<Arc<crate::audit::Audit>>,
}

impl Observer for UpdateObserver {
    fn audit(&self, event: AuditEvent) {
        let text = serde_json::to_string(&event).unwrap_or_else(|_| format!("{event:?}"));
        if let Some(audit) = &self.audit {
            audit.record_update(&event);
        }
        match event {
            AuditEvent::Refused { .. }
            | AuditEvent::InstallFailed { .. }
            | AuditEvent::HealthCheckFailed { .. }
            | AuditEvent::RolledBack { .. }
            | AuditEvent::ModelRolledBack { .. } => log::warn!("update: {text}"),
            _ => log::info!("update: {text}"),
        }
    }
}

/// `IMAGE_VERSION=` of an os-release file.
fn image_version(os_release: &str) -> Option<String> {
    os_release.lines().find_map(|l| {
        l.strip_prefix("IMAGE_VERSION=")
            .map(|v| v.trim_matches('"').to_string())
    })
}

fn system_config(cfg: &civia_config::Config) -> Result<SystemConfig, String> {
    let u = &cfg.update;
    if !u.image_root.is_file() {
        return Err(format!(
            "no update root metadata at {} (update.image_root)",
            u.image_root.display()
        ));
    }
    let booted = match u.booted_slot.as_str() {
        // `civia.slot=`, else the slot whose /usr partition matches `roothash=`
        "auto" => {
            let cmdline = std::fs::read_to_string("/proc/cmdline")
                .map_err(|e| format!("reading /proc/cmdline: {e}"))?;
            partition::booted_slot(
                &cmdline,
                &u.slot_a_usr,
                &u.slot_b_usr,
                &partition::SystemLookup,
            )
            .map_err(|e| e.to_string())?
        }
        "a" => Slot::A,
        "b" => Slot::B,
        other => return Err(format!("unknown booted slot `{other}`")),
    };
    let version = match u.running_version.as_str() {
        "auto" => std::fs::read_to_string("/usr/lib/os-release")
            .ok()
            .and_then(|t| image_version(&t))
            .ok_or("/usr/lib/os-release has no IMAGE_VERSION (update.running_version = auto)")?,
        v => v.to_string(),
    };
    let running: Version = version
        .parse()
        .map_err(|e| format!("running version `{version}`: {e}"))?;
    Ok(SystemConfig {
        compatible: u.compatible.clone(),
        image_root: u.image_root.clone(),
        state_dir: cfg.update_state_dir(),
        esp: u.esp.clone(),
        slot_a: SlotPaths {
            usr: u.slot_a_usr.clone(),
            verity: u.slot_a_verity.clone(),
        },
        slot_b: SlotPaths {
            usr: u.slot_b_usr.clone(),
            verity: u.slot_b_verity.clone(),
        },
        booted,
        running,
        tries: u.tries,
        trusted_clock: None,
    })
}

impl Updates {
    pub fn new(cfg: &civia_config::Config, audit: Option<Arc<crate::audit::Audit>>) -> Self {
        // One observer for the daemon's whole life: the agent's types borrow it for 'static.
        let observer: &'static UpdateObserver = Box::leak(Box::new(UpdateObserver { audit }));
        Self {
            observer,
            system: system_config(cfg),
            compatible: cfg.update.compatible.clone(),
            image_root: cfg.update.image_root.clone(),
            state_dir: cfg.update_state_dir(),
            models_dir: cfg.models_dir(),
            max_upload_bytes: cfg.update.max_upload_bytes,
            busy: tokio::sync::Mutex::new(()),
        }
    }

    /// Without the image's root metadata nothing can be verified: no updates at all.
    fn trusted(&self) -> Result<(), ApiError> {
        if self.image_root.is_file() {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::CONFLICT,
                "invalid_request_error",
                "updates_off",
                format!(
                    "Updates are off on this box: no root metadata at {} (update.image_root).",
                    self.image_root.display()
                ),
            ))
        }
    }

    fn models(&self) -> ModelStore<'static> {
        ModelStore::new(
            self.compatible.clone(),
            self.image_root.clone(),
            self.state_dir.clone(),
            self.models_dir.clone(),
            None,
            self.observer,
        )
    }

    fn system_updater(&self) -> Result<SystemUpdater<'static>, ApiError> {
        match &self.system {
            Ok(c) => Ok(SystemUpdater::new(c.clone(), self.observer)),
            Err(why) => Err(ApiError::new(
                StatusCode::CONFLICT,
                "invalid_request_error",
                "system_updates_off",
                format!("System updates are off on this box: {why}."),
            )),
        }
    }

    /// After every boot, before serving: what the boot-counting state machine says. A trial
    /// boot must then pass the health check ([`Updates::health_check`]).
    pub fn after_boot(&self) -> Option<civia_update::BootStatus> {
        let u = self.system_updater().ok()?;
        match u.after_boot() {
            Ok(s) => Some(s),
            Err(e) => {
                log::error!("update state after boot: {e}");
                None
            }
        }
    }

    /// Blesses the trial slot when `healthy`, else marks it bad. On
    /// [`TrialOutcome::MarkedBad`] the daemon must exit with
    /// [`civia_update::EXIT_TRIAL_UNHEALTHY`]: the service unit then reboots and systemd-boot
    /// falls back to the previous slot.
    pub fn health_check(&self, healthy: Result<(), String>) -> TrialOutcome {
        let Ok(u) = self.system_updater() else {
            return TrialOutcome::Unchanged;
        };
        match healthy {
            Ok(()) => match u.bless() {
                Ok(v) => {
                    log::info!("update: trial boot of {v} healthy, slot blessed");
                    TrialOutcome::Blessed
                }
                Err(e) => {
                    log::error!("update: blessing the slot failed: {e}");
                    TrialOutcome::Unchanged
                }
            },
            Err(why) => match u.mark_bad(&why) {
                Ok(()) => TrialOutcome::MarkedBad { reason: why },
                Err(e) => {
                    log::error!(
                        "update: trial boot unhealthy ({why}), and marking the slot bad failed: {e}"
                    );
                    TrialOutcome::Unchanged
                }
            },
        }
    }
}

/// What the health check after a trial boot did ([`Updates::health_check`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrialOutcome {
    /// Healthy: the slot is blessed.
    Blessed,
    /// Unhealthy: the slot is marked bad (no tries left); the box must reboot to fall back.
    MarkedBad { reason: String },
    /// Nothing changed: system updates are off, or blessing or marking failed (logged).
    Unchanged,
}

fn update_error(e: UpdateError) -> ApiError {
    let (status, kind) = if e.is_refusal() {
        (StatusCode::BAD_REQUEST, "invalid_request_error")
    } else {
        (StatusCode::INTERNAL_SERVER_ERROR, "server_error")
    };
    ApiError::new(status, kind, e.code(), e.to_string())
}

fn updates(st: &ApiState) -> Result<&Updates, ApiError> {
    st.updates.as_deref().ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "invalid_request_error",
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
    u.trusted()?;
    Ok(u)
}

fn busy() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "invalid_request_error",
        "update_in_progress",
        "Another update is being installed: try again when it is done.",
    )
}

/// A blocking reader over the request body, fed by an async task, bounded in size.
struct BodyReader {
    rx: tokio::sync::mpsc::Receiver<Result<axum::body::Bytes, String>>,
    buf: axum::body::Bytes,
}

/// Set when the upload went past `update.max_upload_bytes`.
type TooLarge = Arc<std::sync::atomic::AtomicBool>;

impl Read for BodyReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.buf.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.buf = b,
                Some(Err(e)) => return Err(std::io::Error::other(e)),
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf.split_to(n));
        Ok(n)
    }
}

fn body_reader(body: Body, limit: u64) -> (BodyReader, TooLarge) {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let too_large = TooLarge::default();
    let flag = too_large.clone();
    tokio::spawn(async move {
        let mut body = body;
        let mut total = 0u64;
        while let Some(frame) = body.frame().await {
            let item = match frame {
                Ok(f) => match f.into_data() {
                    Ok(d) => {
                        total += d.len() as u64;
                        if total > limit {
                            flag.store(true, std::sync::atomic::Ordering::SeqCst);
                            Err(format!(
                                "the bundle exceeds update.max_upload_bytes ({limit} bytes)"
                            ))
                        } else {
                            Ok(d)
                        }
                    }
                    Err(_) => continue,
                },
                Err(e) => Err(format!("upload interrupted: {e}")),
            };
            let stop = item.is_err();
            // The installer stopped reading (refused bundle): stop too.
            if tx.send(item).await.is_err() || stop {
                return;
            }
        }
    });
    let reader = BodyReader {
        rx,
        buf: axum::body::Bytes::new(),
    };
    (reader, too_large)
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
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request_error",
                "request_too_large",
                format!("The bundle exceeds update.max_upload_bytes ({limit} bytes)."),
            )
        } else {
            e
        }
    })
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, UpdateError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("update task failed: {e}")))?
        .map_err(update_error)
}

pub(crate) async fn status(
    State(st): State<Arc<ApiState>>,
    ext: Extensions,
) -> Result<Response, ApiError> {
    crate::admin::require(
        &ext,
        &[Role::Admin, Role::Integrator],
        "read the update status",
    )?;
    let u = updates(&st)?;
    let system = match &u.system {
        Ok(c) => {
            let state = SystemUpdater::new(c.clone(), u.observer)
                .state()
                .map_err(update_error)?;
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
    let _guard = u.busy.try_lock().map_err(|_| busy())?;
    let done = install_upload(body, u.max_upload_bytes, move |r| {
        updater.install_from_reader(r)
    })
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
    let _guard = u.busy.try_lock().map_err(|_| busy())?;
    let store = u.models();
    let installed = install_upload(body, u.max_upload_bytes, move |r| {
        store.install_from_reader(r)
    })
    .await?;
    switch_to_installed(&st, u, installed).await
}

/// Loads a freshly installed model bundle; confirms it, or rolls back and reloads the
/// previous model when it does not load.
async fn switch_to_installed(
    st: &ApiState,
    u: &Updates,
    installed: civia_update::ModelInstalled,
) -> Result<Response, ApiError> {
    let id = installed.model_id.clone();
    if id != st.model_id {
        let store = u.models();
        let rid = id.clone();
        let _ = blocking(move || store.rollback(&rid)).await;
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "invalid_request_error",
            "model_mismatch",
            format!(
                "The bundle carries the model `{id}` but this box serves `{}` ([model] id).",
                st.model_id
            ),
        ));
    }
    let before = st.supervisor.load_spec();
    let mut next = before.clone();
    next.path = installed.path.to_string_lossy().into_owned();
    next.sha256 = None; // the bundle's signed hash was checked while installing
    match st.supervisor.switch_model(next).await {
        Ok(info) => {
            let store = u.models();
            let cid = id.clone();
            let floor = blocking(move || store.confirm(&cid)).await?;
            Ok(Json(json!({
                "kind": "model", "model": id, "version": installed.version.to_string(),
                "previous": installed.previous.map(|v| v.to_string()),
                "sha256": info.sha256, "floor": floor.to_string(),
            }))
            .into_response())
        }
        Err(why) => {
            log::error!(
                "update: model {id} {} does not load: {why}",
                installed.version
            );
            let store = u.models();
            let rid = id.clone();
            let restored = blocking(move || store.rollback(&rid)).await.ok();
            if let Err(e) = st.supervisor.switch_model(before).await {
                log::error!("update: the previous model does not load either: {e}");
            }
            Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request_error",
                "model_load_failed",
                format!(
                    "The model {} of the bundle does not load ({why}); back to {}.",
                    installed.version,
                    restored.map_or_else(
                        || "the configured model".to_string(),
                        |v| format!("version {v}")
                    )
                ),
            ))
        }
    }
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
            let _guard = u.busy.try_lock().map_err(|_| busy())?;
            let done = blocking(move || updater.install_from_path(&path)).await?;
            Ok(system_installed(&done))
        }
        "model" => {
            let _guard = u.busy.try_lock().map_err(|_| busy())?;
            let store = u.models();
            let installed = blocking(move || store.install_from_path(&path)).await?;
            switch_to_installed(&st, u, installed).await
        }
        _ => Err(ApiError::bad_request(
            "`kind` must be `system` or `model`.",
            Some("kind".into()),
        )),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn os_release() {
        assert_eq!(
            super::image_version("NAME=Civia\nIMAGE_VERSION=\"2.1.0\"\n").as_deref(),
            Some("2.1.0")
        );
        assert_eq!(super::image_version("NAME=Civia\n"), None);
        // the kernel command line (civia.slot=, roothash=): civia_update::partition's tests
    }
}
