//! The daemon's update service: what civiad knows about updates on this box (system
//! updates on or off and why, the model store), one install at a time, every agent event
//! to the journal and to the audit trail (`update.<event>`), and the health check that
//! blesses or marks bad a trial boot.

use crate::{
    partition, AuditEvent, ModelInstalled, ModelStore, Observer, Slot, SlotPaths, SystemConfig,
    SystemUpdater, UpdateError, Version,
};
use civia_audit::{Audit, Event};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why the service refused or failed an operation.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("Updates are off on this box: no root metadata at {} (update.image_root).", .0.display())]
    UpdatesOff(PathBuf),
    #[error("System updates are off on this box: {0}.")]
    SystemUpdatesOff(String),
    #[error("Another update is being installed: try again when it is done.")]
    Busy,
    #[error(transparent)]
    Update(#[from] UpdateError),
    #[error("update task failed: {0}")]
    Task(String),
    #[error(
        "The bundle carries the model `{bundle}` but this box serves `{served}` ([model] id)."
    )]
    ModelMismatch { bundle: String, served: String },
    #[error(
        "The model {version} of the bundle does not load ({why}); back to {}.",
        restored.as_ref().map_or_else(|| "the configured model".to_string(), |v| format!("version {v}"))
    )]
    ModelLoadFailed {
        version: Version,
        why: String,
        /// The version running again, when the previous one was restored.
        restored: Option<Version>,
    },
}

/// How the daemon puts a model into service: a fresh runtime worker loads the weights.
pub trait ModelLoader {
    /// Loads the weights at `path`; the SHA-256 of what was loaded, or why it failed.
    fn load(&self, path: &Path)
        -> impl std::future::Future<Output = Result<String, String>> + Send;
    /// Loads again what ran before [`ModelLoader::load`] was called.
    fn restore(&self) -> impl std::future::Future<Output = Result<(), String>> + Send;
}

/// A model bundle in service.
#[derive(Debug, Clone)]
pub struct ModelActivated {
    pub model_id: String,
    pub version: Version,
    pub previous: Option<Version>,
    /// SHA-256 of the weights loaded.
    pub sha256: String,
    /// The model's new downgrade floor.
    pub floor: Version,
}

/// Runs an agent operation (file and block-device I/O) on a blocking thread.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, UpdateError> + Send + 'static,
) -> Result<T, ServiceError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ServiceError::Task(e.to_string()))?
        .map_err(ServiceError::Update)
}

/// Runs an install (holding the guard from [`Updates::begin`]) in a task of its own and
/// waits for it. When the caller's future is dropped (the client hung up), the install still
/// goes to its end, activation and rollback included, and the lock is released only then.
pub async fn detached<T: Send + 'static, E: From<ServiceError> + Send + 'static>(
    guard: tokio::sync::OwnedMutexGuard<()>,
    work: impl std::future::Future<Output = Result<T, E>> + Send + 'static,
) -> Result<T, E> {
    let task = tokio::spawn(async move {
        let out = work.await;
        drop(guard);
        out
    });
    task.await
        .map_err(|e| E::from(ServiceError::Task(e.to_string())))?
}

/// What the daemon knows about updates on this box.
pub struct Updates {
    /// System updates, or why they are off on this machine.
    pub system: Result<SystemConfig, String>,
    pub compatible: String,
    pub image_root: PathBuf,
    pub state_dir: PathBuf,
    pub models_dir: PathBuf,
    pub max_upload_bytes: u64,
    busy: Arc<tokio::sync::Mutex<()>>,
    pub observer: &'static UpdateObserver,
}

/// Update events go to the journal and to the audit trail (`update.<event>`).
pub struct UpdateObserver {
    audit: Option<Arc<Audit>>,
}

impl Observer for UpdateObserver {
    fn audit(&self, event: AuditEvent) {
        let text = serde_json::to_string(&event).unwrap_or_else(|_| format!("{event:?}"));
        if let Some(audit) = &self.audit {
            record(audit, &event);
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
    pub fn new(cfg: &civia_config::Config, audit: Option<Arc<Audit>>) -> Self {
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
            busy: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// Without the image's root metadata nothing can be verified: no updates at all.
    pub fn check_trusted(&self) -> Result<(), ServiceError> {
        if self.image_root.is_file() {
            Ok(())
        } else {
            Err(ServiceError::UpdatesOff(self.image_root.clone()))
        }
    }

    /// One install at a time: the guard is held for the whole install. It is owned so that
    /// it moves into the task doing the work (see [`detached`]): a request's future is
    /// dropped when its client hangs up, the install and its lock must not be.
    pub fn begin(&self) -> Result<tokio::sync::OwnedMutexGuard<()>, ServiceError> {
        self.busy
            .clone()
            .try_lock_owned()
            .map_err(|_| ServiceError::Busy)
    }

    pub fn models(&self) -> ModelStore<'static> {
        ModelStore::new(
            self.compatible.clone(),
            self.image_root.clone(),
            self.state_dir.clone(),
            self.models_dir.clone(),
            None,
            self.observer,
        )
    }

    pub fn system_updater(&self) -> Result<SystemUpdater<'static>, ServiceError> {
        match &self.system {
            Ok(c) => Ok(SystemUpdater::new(c.clone(), self.observer)),
            Err(why) => Err(ServiceError::SystemUpdatesOff(why.clone())),
        }
    }

    /// After every boot, before serving: what the boot-counting state machine says. A trial
    /// boot must then pass the health check ([`Updates::health_check`]).
    pub fn after_boot(&self) -> Option<crate::BootStatus> {
        let u = self.system_updater().ok()?;
        match u.after_boot() {
            Ok(s) => Some(s),
            Err(e) => {
                log::error!("update state after boot: {e}");
                None
            }
        }
    }

    /// Puts a freshly installed model bundle into service: the bundle must carry the model
    /// this box serves (else it is rolled back); `loader` loads it; the store confirms it,
    /// or, when it does not load, rolls back and `loader` reloads the previous model.
    pub async fn activate_model(
        &self,
        installed: ModelInstalled,
        served_id: &str,
        loader: &impl ModelLoader,
    ) -> Result<ModelActivated, ServiceError> {
        let id = installed.model_id.clone();
        if id != served_id {
            let (store, rid) = (self.models(), id.clone());
            let _ = blocking(move || store.rollback(&rid)).await;
            return Err(ServiceError::ModelMismatch {
                bundle: id,
                served: served_id.to_string(),
            });
        }
        match loader.load(&installed.path).await {
            Ok(sha256) => {
                let (store, cid) = (self.models(), id.clone());
                let floor = blocking(move || store.confirm(&cid)).await?;
                Ok(ModelActivated {
                    model_id: id,
                    version: installed.version,
                    previous: installed.previous,
                    sha256,
                    floor,
                })
            }
            Err(why) => {
                log::error!(
                    "update: model {id} {} does not load: {why}",
                    installed.version
                );
                let (store, rid) = (self.models(), id.clone());
                let restored = blocking(move || store.rollback(&rid)).await.ok();
                if let Err(e) = loader.restore().await {
                    log::error!("update: the previous model does not load either: {e}");
                }
                Err(ServiceError::ModelLoadFailed {
                    version: installed.version,
                    why,
                    restored,
                })
            }
        }
    }

    /// Blesses the trial slot when `healthy`, else marks it bad. On
    /// [`TrialOutcome::MarkedBad`] the daemon must exit with
    /// [`crate::EXIT_TRIAL_UNHEALTHY`]: the service unit then reboots and systemd-boot
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

/// An update agent event as `update.<event>`, its fields in `detail` (capped).
fn record(audit: &Audit, event: &AuditEvent) {
    let mut detail = match serde_json::to_value(event) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    let name = detail
        .remove("event")
        .and_then(|v| v.as_str().map(|s| format!("update.{s}")))
        .unwrap_or_else(|| "update.event".into());
    if let Some(serde_json::Value::String(m)) = detail.get_mut("message") {
        m.truncate(m.char_indices().nth(1000).map_or(m.len(), |(i, _)| i));
    }
    audit.append_blocking(Event::new(name).detail(serde_json::Value::Object(detail)));
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
