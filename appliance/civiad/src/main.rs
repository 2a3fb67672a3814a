//! `civiad`, the Civia supervisor daemon.
//!
//! Owns: reading the configuration, logging (journald under systemd, stderr otherwise), the
//! state directory, wiring the supervisor and the API together, systemd readiness and
//! watchdog, signals and orderly shutdown. Started as `civiad --config PATH`; the same binary
//! started as `civiad runtime-worker` (by itself, never by hand) is the runtime worker.
//!
//! Must never: hold the model in this process (the worker does), or start serving a
//! non-loopback address without TLS.

mod logging;
mod serve;

use civia_api::{router, ApiState};
use civia_config::Config;
use civia_supervisor::{Phase, Supervisor, WorkerSpec};
use clap::{Parser, Subcommand};
use std::os::fd::FromRawFd;
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
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Tls(#[from] civia_tls::TlsError),
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
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    log::error!("{e}");
                    ExitCode::from(2)
                }
            }
        }
    }
}

fn worker_main() -> ExitCode {
    logging::init(&std::env::var("CIVIA_LOG_LEVEL").unwrap_or_else(|_| "info".into()));
    // SAFETY: fstat only reads metadata of fd 3 into a zeroed, properly sized struct.
    let is_socket = unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        libc::fstat(3, &mut st) == 0 && (st.st_mode & libc::S_IFMT) == libc::S_IFSOCK
    };
    if !is_socket {
        eprintln!("civiad runtime-worker is started by civiad itself (IPC socket on fd 3)");
        return ExitCode::from(2);
    }
    // SAFETY: fd 3 is a socket (checked above) handed to us by the supervisor, and nothing
    // else in this process owns it.
    let stream = unsafe { std::os::unix::net::UnixStream::from_raw_fd(3) };
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

async fn daemon(cfg: Config) -> Result<(), DaemonError> {
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

    // The box's CA and server certificate (created at first start, renewed when needed).
    let mut names = cfg.api.tls_names.clone();
    names.push("localhost".into());
    names.dedup();
    let mut addrs = cfg.api.tls_addresses.clone();
    if !cfg.api.listen.ip().is_unspecified() {
        addrs.push(cfg.api.listen.ip());
    }
    addrs.dedup();
    let tls = civia_tls::load_or_create(&cfg.state_dir.join("tls"), &names, &addrs)?;
    if tls.renewed {
        log::info!("server certificate issued for {names:?} {addrs:?}");
    }

    let dev_api_key = std::env::var("CIVIA_DEV_API_KEY")
        .ok()
        .filter(|k| !k.is_empty());
    let state = Arc::new(ApiState {
        supervisor: supervisor.clone(),
        model_id: cfg.model_id(),
        limits: cfg.api.clone(),
        dev_api_key: dev_api_key.clone(),
        ca_pem: tls.ca_pem.clone(),
        started_at: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    });
    let listener = tokio::net::TcpListener::bind(cfg.api.listen)
        .await
        .map_err(|source| DaemonError::Listen {
            addr: cfg.api.listen,
            source,
        })?;
    log::info!(
        "civiad {} listening on {}://{} (trial mode: loopback{}); model `{}`",
        env!("CARGO_PKG_VERSION"),
        if cfg.api.tls { "https" } else { "http" },
        cfg.api.listen,
        if dev_api_key.is_some() {
            ", API key required"
        } else {
            ""
        },
        cfg.model_id()
    );
    tokio::spawn(systemd_notifier(supervisor.clone()));

    if cfg.api.tls {
        serve::serve_tls(
            listener,
            tls.server_config,
            router(state),
            shutdown_signal(),
        )
        .await?;
    } else {
        let app = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown_signal())
            .await?;
    }
    log::info!("stopping");
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    supervisor.shutdown().await;
    Ok(())
}

/// READY=1 once the model is loaded, STATUS= on every change, and watchdog pings.
async fn systemd_notifier(supervisor: Supervisor) {
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
