//! The service manager's protocol: readiness, status lines, watchdog pings.

use civia_supervisor::{Phase, Supervisor};
use std::time::Duration;

/// READY=1 once the model is loaded and `listening` fired, STATUS= on every change, and
/// watchdog pings.
pub async fn notifier(supervisor: Supervisor, listening: tokio::sync::oneshot::Receiver<()>) {
    let mut listening = Some(listening);
    let mut usec = 0u64;
    if sd_notify::watchdog_enabled(false, &mut usec) {
        let period = Duration::from_micros(usec / 2).max(Duration::from_millis(100));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            loop {
                tick.tick().await;
                let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Watchdog]);
            }
        });
    }
    let mut rx = supervisor.watch();
    let mut announced = false;
    loop {
        let status = rx.borrow_and_update().clone();
        let text = match (&status.phase, &status.last_error) {
            (Phase::Ready, _) => "model loaded, serving".to_string(),
            (p, Some(e)) => format!("runtime worker {}: {e}", p.as_str()),
            (p, None) => format!("runtime worker {}", p.as_str()),
        };
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Status(&text)]);
        if status.phase == Phase::Ready && !announced {
            if let Some(l) = listening.take() {
                // An error means the daemon is failing to start: then no READY=1 at all.
                if l.await.is_err() {
                    return;
                }
            }
            announced = true;
            let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// SIGTERM or Ctrl-C (SIGINT). The handlers are installed when this is called (inside the
/// runtime), not when the future is first polled: a SIGTERM that comes while the daemon
/// starts (after `/ready` answers, before the serving loop first polls its stop future) is
/// not lost to the default action, which would kill the daemon and leave its worker.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let watch = |kind: SignalKind, name: &str| match signal(kind) {
        Ok(s) => Some(s),
        Err(e) => {
            log::error!("cannot watch {name}: {e}");
            None
        }
    };
    let term = watch(SignalKind::terminate(), "SIGTERM");
    let int = watch(SignalKind::interrupt(), "SIGINT");
    async move {
        let wait = |s: Option<tokio::signal::unix::Signal>| async move {
            match s {
                Some(mut s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = wait(term) => {}
            _ = wait(int) => {}
        }
    }
}
