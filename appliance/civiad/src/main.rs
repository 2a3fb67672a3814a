//! `civiad`, the Civia supervisor daemon.
//!
//! Owns: reading the configuration, logging (journald under systemd, stderr otherwise), the
//! state directory, wiring the supervisor and the API together, systemd readiness and
//! watchdog, signals and orderly shutdown. Started as `civiad --config PATH`; the same binary
//! started as `civiad runtime-worker` (by itself, never by hand) is the runtime worker.
//!
//! Also owns opening the store, the pairing code's announcement, the trial admin behind
//! `CIVIA_DEV_API_KEY`, and the listeners (API, optional admin listener, admin Unix socket).
//!
//! Must never: hold the model in this process (the worker does), serve a non-loopback
//! address without TLS, or accept a connection from outside `api.allowed_sources`.

mod logging;
mod serve;

use civia_api::{admin_router, router, ApiState, Auth};
use civia_config::Config;
use civia_supervisor::{Phase, SpeechSpec, SpeechSupervisor, Supervisor, WorkerSpec};
use clap::{Parser, Subcommand};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Parser)]
#[command(name = "civiad", version, about = "Civia supervisor daemon")]
struct Cli {
    /// Configuration file (TOML); drop-ins are read from `<PATH>.d/*.toml`.
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Sub>,
}

#[derive(Subcommand)]
enum Sub {
    /// Internal: the runtime worker, started by civiad with its IPC socket on fd 3.
    #[command(hide = true)]
    RuntimeWorker,
    /// Checks the configuration file and prints the effective values.
    CheckConfig,
}

#[derive(Debug, thiserror::Error)]
enum DaemonError {
    #[error("{0}")]
    Config(#[from] civia_config::ConfigError),
    #[error("missing --config PATH")]
    NoConfig,
    #[error("model.path: {path} cannot be read: {source}")]
    Model {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("state_dir {path}: {source}")]
    StateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot find civiad's own executable to start the worker: {0}")]
    SelfExe(std::io::Error),
    #[error("speech.path: {path} cannot be read: {source}")]
    SpeechModel {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the speech worker program {0} is missing (build it with `cargo build --release -p civia-speech`, or set speech.worker)")]
    SpeechWorker(PathBuf),
    #[error("speech spool directory {path}: {source}")]
    Spool {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Tls(#[from] civia_tls::TlsError),
    #[error("{0}")]
    Store(#[from] civia_auth::StoreError),
    #[error("{0}")]
    Auth(#[from] civia_auth::AuthError),
    #[error("audit log: {0}")]
    Audit(#[from] civia_audit::AuditError),
    #[error("admin socket {path}: {source}")]
    AdminSocket {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Sub::RuntimeWorker) => worker_main(),
        Some(Sub::CheckConfig) => match cli.config.as_deref().map(Config::load) {
            Some(Ok(cfg)) => {
                println!("{cfg:#?}");
                ExitCode::SUCCESS
            }
            Some(Err(e)) => {
                eprintln!("civiad: {e}");
                ExitCode::from(2)
            }
            None => {
                eprintln!("civiad: {}", DaemonError::NoConfig);
                ExitCode::from(2)
            }
        },
        None => {
            let cfg = match cli.config.as_deref().map(Config::load) {
                Some(Ok(cfg)) => cfg,
                Some(Err(e)) => {
                    eprintln!("civiad: {e}");
                    return ExitCode::from(2);
                }
                None => {
                    eprintln!("civiad: {}", DaemonError::NoConfig);
                    return ExitCode::from(2);
                }
            };
            logging::init(&cfg.log.level);
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    log::error!("cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match rt.block_on(daemon(cfg)) {
                Ok(Stop::Signal) => ExitCode::SUCCESS,
                // The unit's ExecStopPost= reboots on this status: back to the previous slot.
                Ok(Stop::TrialUnhealthy) => ExitCode::from(civia_update::EXIT_TRIAL_UNHEALTHY),
                Err(e) => {
                    log::error!("{e}");
                    ExitCode::from(2)
                }
            }
        }
    }
}

fn worker_main() -> ExitCode {
    // Before anything starts a thread: the worker has no business on any network.
    let isolated = civia_ipc::isolate_network();
    logging::init(&std::env::var("CIVIA_LOG_LEVEL").unwrap_or_else(|_| "info".into()));
    if let Err(e) = isolated {
        log::warn!("runtime worker: cannot leave the network namespace ({e}); relying on the service manager's isolation");
    }
    let Some(stream) = civia_ipc::inherited_socket() else {
        eprintln!("civiad runtime-worker is started by civiad itself (IPC socket on fd 3)");
        return ExitCode::from(2);
    };
    match civia_runtime::run_worker(stream) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("runtime worker: {e}");
            ExitCode::FAILURE
        }
    }
}

fn prepare_state_dir(cfg: &Config) -> Result<(), DaemonError> {
    let err = |source| DaemonError::StateDir {
        path: cfg.state_dir.clone(),
        source,
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&cfg.state_dir)
        .map_err(err)?;
    let meta = std::fs::metadata(&cfg.state_dir).map_err(err)?;
    if meta.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(&cfg.state_dir, std::fs::Permissions::from_mode(0o700))
            .map_err(err)?;
    }
    Ok(())
}

/// Why the daemon stopped.
#[derive(Debug, PartialEq, Eq)]
enum Stop {
    /// SIGTERM or Ctrl-C: exit status 0.
    Signal,
    /// A trial boot failed its health check and its slot is marked bad: exit status
    /// [`civia_update::EXIT_TRIAL_UNHEALTHY`], on which the service unit reboots the box.
    TrialUnhealthy,
}

async fn daemon(cfg: Config) -> Result<Stop, DaemonError> {
    prepare_state_dir(&cfg)?;
    std::fs::File::open(&cfg.model.path).map_err(|source| DaemonError::Model {
        path: cfg.model.path.clone(),
        source,
    })?;
    let threads = match cfg.model.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
        n => n,
    };
    let spec = WorkerSpec {
        program: std::env::current_exe().map_err(DaemonError::SelfExe)?,
        args: vec!["runtime-worker".into()],
        load: civia_ipc::LoadSpec {
            path: cfg.model.path.to_string_lossy().into_owned(),
            sha256: cfg.model.sha256.clone(),
            context_length: cfg.model.context_length,
            batch_size: cfg.model.batch_size,
            threads,
            gpu_layers: cfg.model.gpu_layers,
            n_parallel: cfg.model.n_parallel,
            prefix_reuse: cfg.model.prefix_reuse,
        },
        backoff_initial: Duration::from_millis(cfg.runtime.restart_backoff_initial_ms),
        backoff_max: Duration::from_millis(cfg.runtime.restart_backoff_max_ms),
        backoff_reset_after: Duration::from_secs(cfg.runtime.restart_backoff_reset_secs),
        load_timeout: Duration::from_secs(cfg.runtime.load_timeout_secs),
        queue_depth: cfg.runtime.queue_depth,
        queue_timeout: Duration::from_secs(cfg.runtime.queue_timeout_secs),
    };
    // The worker reads its log level from the environment it inherits.
    std::env::set_var("CIVIA_LOG_LEVEL", &cfg.log.level);
    let supervisor = Supervisor::start(spec);
    let speech = start_speech(&cfg)?;

    // STATUS= from now on; READY=1 once the model is loaded and the listeners are bound.
    let (listening_tx, listening_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(systemd_notifier(supervisor.clone(), listening_rx));

    // The box's CA and server certificate (created at first start, renewed when needed).
    let mut names = cfg.api.tls_names.clone();
    names.push("localhost".into());
    names.dedup();
    let mut addrs = cfg.api.tls_addresses.clone();
    for addr in std::iter::once(cfg.api.listen).chain(cfg.admin.listen) {
        if !addr.ip().is_unspecified() && !addrs.contains(&addr.ip()) {
            addrs.push(addr.ip());
        }
    }
    let tls = civia_tls::load_or_create(&cfg.state_dir.join("tls"), &names, &addrs)?;
    if tls.renewed {
        log::info!("server certificate issued for {names:?} {addrs:?}");
    }
    let server_tls = match (&cfg.api.tls_certificate, &cfg.api.tls_key) {
        (Some(cert), Some(key)) => {
            log::info!("serving the commune's own certificate {}", cert.display());
            civia_tls::own_certificate(cert, key)?
        }
        _ => tls.server_config.clone(),
    };

    // Accounts: the store, the trial admin, or the pairing code of a fresh box.
    let store = civia_auth::Store::open(&cfg.state_dir.join("civia.db"))?;
    let auth = Arc::new(Auth::new(store, cfg.auth.clone(), cfg.quotas.clone())?);
    let dev_api_key = std::env::var("CIVIA_DEV_API_KEY")
        .ok()
        .filter(|k| !k.is_empty());
    if let Some(key) = &dev_api_key {
        auth.install_trial_key(key.clone()).await?;
        log::info!(
            "trial mode: CIVIA_DEV_API_KEY is the API key of the administrator `{}`",
            civia_auth::TRIAL_ADMIN
        );
    }
    if let Some(code) = auth.pairing_code() {
        log::warn!(
            "Code d'appairage / pairing code: {code} — no account yet: present it on \
             POST /admin/pair to create the first administrator (or run `civia user add NAME \
             --role admin` on the box); it dies once used"
        );
    }

    // The audit trail: model requests fail closed when it cannot be written.
    let audit = Arc::new(civia_audit::Audit::open(
        &cfg.state_dir.join("audit"),
        &cfg.state_dir.join("keys"),
        &civia_audit::RetentionPolicy {
            months: cfg.audit.retention_months,
            justification: cfg.audit.retention_justification.clone(),
        },
    )?);
    if cfg.audit.journald {
        audit.mirror_to_journal(&cfg.audit.journal_socket);
    }
    tokio::spawn(audit.clone().purge_daily());

    // Signed updates: the boot-counting state machine first, then the health check.
    let updates = Arc::new(civia_update::Updates::new(&cfg, Some(audit.clone())));
    match &updates.system {
        Ok(c) => log::info!(
            "system updates: booted slot {}, running {}",
            c.booted.name(),
            c.running
        ),
        Err(why) => log::info!("system updates off: {why}"),
    }
    // Fires only when a trial boot's slot was marked bad; dropped (never fires) otherwise.
    let (unhealthy_tx, mut unhealthy_rx) = tokio::sync::oneshot::channel::<String>();
    match updates.after_boot() {
        Some(civia_update::BootStatus::Trial { version }) => {
            log::warn!("trial boot of {version}: blessing it once the model is loaded");
            tokio::spawn(trial_health_check(
                updates.clone(),
                supervisor.clone(),
                Duration::from_secs(cfg.runtime.load_timeout_secs),
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

    let state = Arc::new(ApiState {
        supervisor: supervisor.clone(),
        speech: speech.clone(),
        model_id: cfg.model_id(),
        limits: cfg.api.clone(),
        config: Arc::new(cfg.clone()),
        leak_guard: leak_guard(&cfg.guard),
        auth,
        admin_on_api: cfg.admin.listen.is_none(),
        updates: Some(updates),
        audit: Some(audit),
        ca_pem: tls.ca_pem.clone(),
        started_at: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    });
    tokio::spawn(
        state
            .auth
            .clone()
            .expire_history_hourly(cfg.history.retention_days),
    );
    let bind = |addr: std::net::SocketAddr| async move {
        tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| DaemonError::Listen { addr, source })
    };
    let listener = bind(cfg.api.listen).await?;
    let admin_listener = match cfg.admin.listen {
        Some(a) => Some(bind(a).await?),
        None => None,
    };
    let socket_path = cfg.admin_socket();
    let socket =
        serve::bind_admin_socket(&socket_path, &cfg.admin.socket_group).map_err(|source| {
            DaemonError::AdminSocket {
                path: socket_path.clone(),
                source,
            }
        })?;
    let api_tls = cfg.api_tls();
    log::info!(
        "civiad {} listening on {}://{}{}; admin socket {}; model `{}`",
        env!("CARGO_PKG_VERSION"),
        if api_tls { "https" } else { "http" },
        cfg.api.listen,
        cfg.admin
            .listen
            .map(|a| format!(", admin plane on https://{a}"))
            .unwrap_or_default(),
        socket_path.display(),
        cfg.model_id()
    );
    let _ = listening_tx.send(());

    let gate = serve::Gate::new(&cfg.api);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(serve::serve_unix(
        socket,
        admin_router(state.clone()),
        stopped(),
    ));
    if let Some(l) = admin_listener {
        tasks.spawn(serve::serve_tcp(
            l,
            Some(server_tls.clone()),
            admin_router(state.clone()),
            gate.clone(),
            stopped(),
        ));
    }
    tasks.spawn(serve::serve_tcp(
        listener,
        api_tls.then_some(server_tls),
        router(state),
        gate,
        stopped(),
    ));
    let stop = tokio::select! {
        _ = shutdown_signal() => Stop::Signal,
        Ok(reason) = &mut unhealthy_rx => {
            log::error!(
                "the new system failed its health check after the update ({reason}); its slot \
                 is marked bad: exiting with status {} so that the box reboots into the \
                 previous slot",
                civia_update::EXIT_TRIAL_UNHEALTHY
            );
            Stop::TrialUnhealthy
        }
    };
    let _ = stop_tx.send(true);
    while tasks.join_next().await.is_some() {}
    let _ = std::fs::remove_file(&socket_path);
    log::info!("stopping");
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    supervisor.shutdown().await;
    if let Some(s) = speech {
        s.shutdown().await;
    }
    Ok(stop)
}

/// The speech worker, when `[speech] path` is set: its spool directory is created (0700)
/// and emptied of recordings a previous run left behind (a crash must not keep them).
fn start_speech(cfg: &Config) -> Result<Option<SpeechSupervisor>, DaemonError> {
    let Some(path) = &cfg.speech.path else {
        return Ok(None);
    };
    std::fs::File::open(path).map_err(|source| DaemonError::SpeechModel {
        path: path.clone(),
        source,
    })?;
    let program = match &cfg.speech.worker {
        Some(p) => p.clone(),
        None => std::env::current_exe()
            .map_err(DaemonError::SelfExe)?
            .with_file_name("civia-speech-worker"),
    };
    if !program.is_file() {
        return Err(DaemonError::SpeechWorker(program));
    }
    let spool = cfg.speech_spool_dir();
    let err = |source| DaemonError::Spool {
        path: spool.clone(),
        source,
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&spool)
        .map_err(err)?;
    std::fs::set_permissions(&spool, std::fs::Permissions::from_mode(0o700)).map_err(err)?;
    let mut purged = 0;
    for entry in std::fs::read_dir(&spool).map_err(err)? {
        let entry = entry.map_err(err)?;
        // Only what civiad itself put there (<uuid>.upload): a spool_dir pointed at a shared
        // directory by mistake loses nothing else.
        let name = entry.file_name();
        let ours = name
            .to_str()
            .and_then(|n| n.strip_suffix(".upload"))
            .is_some_and(|stem| stem.len() == 32 && stem.bytes().all(|b| b.is_ascii_hexdigit()));
        if ours && entry.file_type().map_err(err)?.is_file() {
            std::fs::remove_file(entry.path()).map_err(err)?;
            purged += 1;
        }
    }
    if purged > 0 {
        log::warn!(
            "deleted {purged} recording(s) left in {} by a previous run",
            spool.display()
        );
    }
    let threads = match cfg.speech.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
        n => n,
    };
    Ok(Some(SpeechSupervisor::start(SpeechSpec {
        program,
        args: Vec::new(),
        load: civia_ipc::speech::SpeechLoadSpec {
            path: path.to_string_lossy().into_owned(),
            sha256: cfg.speech.sha256.clone(),
            threads,
            gpu: cfg.speech.gpu,
        },
        backoff_initial: Duration::from_millis(cfg.runtime.restart_backoff_initial_ms),
        backoff_max: Duration::from_millis(cfg.runtime.restart_backoff_max_ms),
        backoff_reset_after: Duration::from_secs(cfg.runtime.restart_backoff_reset_secs),
        load_timeout: Duration::from_secs(cfg.runtime.load_timeout_secs),
        queue_depth: cfg.speech.queue_depth,
    })))
}

/// Failed starts of the runtime worker after which a trial boot is unhealthy at once: a model
/// that fails to load twice in a row (a corrupt file, a wrong hash) will not load on the third
/// try, and every minute spent waiting is a minute the box does not serve.
const TRIAL_MAX_FAILED_STARTS: u32 = 2;

/// A trial boot is healthy when the daemon runs and the model loads within the load
/// timeout (twice, for a slow first read from disk) before the worker failed
/// [`TRIAL_MAX_FAILED_STARTS`] times; then the slot is blessed, else marked bad and
/// `unhealthy` fires with the reason: the daemon then stops and exits with
/// [`civia_update::EXIT_TRIAL_UNHEALTHY`] so that the box reboots into the previous slot.
async fn trial_health_check(
    updates: Arc<civia_update::Updates>,
    supervisor: Supervisor,
    load_timeout: Duration,
    unhealthy: tokio::sync::oneshot::Sender<String>,
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
        Ok(civia_update::TrialOutcome::MarkedBad { reason }) => {
            let _ = unhealthy.send(reason);
        }
        Ok(civia_update::TrialOutcome::Blessed | civia_update::TrialOutcome::Unchanged) => {}
        Err(e) => log::error!("health check task failed: {e}"),
    }
}

/// READY=1 once the model is loaded and `listening` fired, STATUS= on every change, and
/// watchdog pings.
async fn systemd_notifier(supervisor: Supervisor, listening: tokio::sync::oneshot::Receiver<()>) {
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

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let term = async {
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                log::error!("cannot watch SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = term => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// The output guard against system-prompt leaks, when there is a prompt to protect.
fn leak_guard(cfg: &civia_config::GuardConfig) -> Option<Arc<civia_guard::LeakGuard>> {
    let prompt = cfg.system_prompt.trim();
    (cfg.leak_filter && !prompt.is_empty())
        .then(|| Arc::new(civia_guard::LeakGuard::new(&[prompt], cfg.leak_min_words)))
}
