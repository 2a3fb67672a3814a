//! The boot of a new system after an update: a trial boot is blessed once the model loads,
//! or its slot is marked bad and civiad exits with [`civia_update::EXIT_TRIAL_UNHEALTHY`]
//! (the service unit's `ExecStopPost=` then reboots into the previous slot).

use civia_supervisor::{Phase, Supervisor};
use civia_update::{TrialOutcome, Updates};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// Why the daemon stopped.
#[derive(Debug, PartialEq, Eq)]
pub enum Stop {
    /// SIGTERM or Ctrl-C (or the caller's stop): exit status 0.
    Signal,
    /// A trial boot failed its health check and its slot is marked bad: exit status
    /// [`civia_update::EXIT_TRIAL_UNHEALTHY`], on which the service unit reboots the box.
    TrialUnhealthy,
}

/// Failed starts of the runtime worker after which a trial boot is unhealthy at once: a model
/// that fails to load twice in a row (a corrupt file, a wrong hash) will not load on the third
/// try, and every minute spent waiting is a minute the box does not serve.
const TRIAL_MAX_FAILED_STARTS: u32 = 2;

/// Runs the update state machine's boot step and reports it; on a trial boot, starts the
/// health check. The receiver fires only when a trial boot's slot was marked bad (with the
/// reason); it never fires otherwise.
pub fn after_boot(
    updates: &Arc<Updates>,
    supervisor: &Supervisor,
    load_timeout: Duration,
) -> oneshot::Receiver<String> {
    let (unhealthy_tx, unhealthy_rx) = oneshot::channel::<String>();
    match updates.after_boot() {
        Some(civia_update::BootStatus::Trial { version }) => {
            log::warn!("trial boot of {version}: blessing it once the model is loaded");
            tokio::spawn(trial_health_check(
                updates.clone(),
                supervisor.clone(),
                load_timeout,
                unhealthy_tx,
            ));
        }
        Some(civia_update::BootStatus::RolledBack {
            failed_version,
            reason,
        }) => log::error!("the update to {failed_version} failed and the box fell back: {reason}"),
        Some(civia_update::BootStatus::InstallInterrupted { version }) => {
            log::warn!("the install of {version} was interrupted; that slot is unusable until the next install")
        }
        Some(civia_update::BootStatus::Blessed { version }) => {
            log::info!("the blessing of {version} interrupted by a power loss is now complete")
        }
        Some(civia_update::BootStatus::Normal) | None => {}
    }
    unhealthy_rx
}

/// Logs why the daemon stops on an unhealthy trial boot.
pub fn log_unhealthy(reason: &str) {
    log::error!(
        "the new system failed its health check after the update ({reason}); its slot \
         is marked bad: exiting with status {} so that the box reboots into the \
         previous slot",
        civia_update::EXIT_TRIAL_UNHEALTHY
    );
}

/// A trial boot is healthy when the daemon runs and the model loads within the load
/// timeout (twice, for a slow first read from disk) before the worker failed
/// [`TRIAL_MAX_FAILED_STARTS`] times; then the slot is blessed, else marked bad and
/// `unhealthy` fires with the reason: the daemon then stops and exits with
/// [`civia_update::EXIT_TRIAL_UNHEALTHY`] so that the box reboots into the previous slot.
async fn trial_health_check(
    updates: Arc<Updates>,
    supervisor: Supervisor,
    load_timeout: Duration,
    unhealthy: oneshot::Sender<String>,
) {
    let mut rx = supervisor.watch();
    let settled = rx.wait_for(|s| s.phase == Phase::Ready || s.restarts >= TRIAL_MAX_FAILED_STARTS);
    let ready = match tokio::time::timeout(load_timeout * 2, settled).await {
        Ok(Ok(status)) => status.phase == Phase::Ready,
        Ok(Err(_)) | Err(_) => false,
    };
    let verdict = if ready {
        Ok(())
    } else {
        Err(supervisor
            .status()
            .last_error
            .unwrap_or_else(|| "the model did not load".into()))
    };
    match tokio::task::spawn_blocking(move || updates.health_check(verdict)).await {
        Ok(TrialOutcome::MarkedBad { reason }) => {
            let _ = unhealthy.send(reason);
        }
        Ok(TrialOutcome::Blessed | TrialOutcome::Unchanged) => {}
        Err(e) => log::error!("health check task failed: {e}"),
    }
}
