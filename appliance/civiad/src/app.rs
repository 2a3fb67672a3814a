//! The composition root: from a checked configuration to a serving daemon.
//!
//! [`App::builder`] → [`AppBuilder::build`] makes every part, in this order: the state
//! directory, the runtime worker's supervisor ([`WorkerSpec::from_config`]), the speech
//! worker's ([`SpeechSpec::from_config`]), the embedding worker's
//! ([`EmbedSpec::from_config`]), the systemd notifier, the TLS material, accounts
//! ([`Auth`]), the audit trail and signed updates ([`audit_and_updates`]), the boot step of
//! the update state machine ([`crate::boot`]), and the API state. [`App::run`] binds the
//! listeners, serves until the stop future completes (or a trial boot is found unhealthy),
//! then stops the workers.

use crate::boot::{self, Stop};
use crate::{serve, systemd, DaemonError};
use civia_admin_api::admin_router;
use civia_api::{router, ApiState, Auth};
use civia_config::Config;
use civia_supervisor::{
    EmbedSpec, EmbedSupervisor, SpeechSpec, SpeechSupervisor, Supervisor, WorkerSpec,
};
use std::future::Future;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::oneshot;

/// A daemon built from its configuration, not yet listening.
pub struct App {
    cfg: Config,
    pub supervisor: Supervisor,
    pub speech: Option<SpeechSupervisor>,
    /// The embedding worker and service, when `[embeddings] path` is set (what the knowledge
    /// service embeds with).
    pub embeddings: Option<EmbedSupervisor>,
    pub state: Arc<ApiState>,
    server_tls: Arc<rustls::ServerConfig>,
    /// Tells the systemd notifier the listeners are bound.
    listening: oneshot::Sender<()>,
    /// Fires when a trial boot's slot was marked bad.
    unhealthy: oneshot::Receiver<String>,
}

/// How to build an [`App`]; by default the workers are civiad's own executable
/// (`civiad runtime-worker`, `civiad embed-worker`) and `civia-speech-worker` next to it (or
/// `speech.worker`).
pub struct AppBuilder {
    cfg: Config,
    runtime_worker: Option<(PathBuf, Vec<String>)>,
}

impl AppBuilder {
    /// Starts the runtime worker as `program args` instead of `civiad runtime-worker` (a
    /// test binary is not civiad).
    pub fn runtime_worker(mut self, program: PathBuf, args: Vec<String>) -> Self {
        self.runtime_worker = Some((program, args));
        self
    }

    /// Makes every part of the daemon; the workers start loading at once.
    pub async fn build(self) -> Result<App, DaemonError> {
        let cfg = self.cfg;
        prepare_state_dir(&cfg)?;
        std::fs::File::open(&cfg.model.path).map_err(|source| DaemonError::Model {
            path: cfg.model.path.clone(),
            source,
        })?;
        let (program, args) = match self.runtime_worker {
            Some(w) => w,
            None => (
                std::env::current_exe().map_err(DaemonError::SelfExe)?,
                vec!["runtime-worker".into()],
            ),
        };
        let supervisor = Supervisor::start(WorkerSpec::from_config(&cfg, program, args));
        let speech = start_speech(&cfg)?;
        let embeddings = start_embeddings(&cfg)?;

        // STATUS= from now on; READY=1 once the model is loaded and the listeners are bound.
        let (listening, listening_rx) = oneshot::channel();
        tokio::spawn(systemd::notifier(supervisor.clone(), listening_rx));

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
        // The seeds of the CA key and the audit keys, sealed by the TPM on a box.
        let secrets = crate::secrets::open(&cfg)?;
        let tls = civia_tls::load_or_create(
            &cfg.state_dir.join("tls"),
            secrets.tls_ca.expose(),
            &ca_policy(&cfg, &names, &addrs),
            &names,
            &addrs,
        )?;
        if tls.ca_rotated {
            log::warn!(
                "new box CA (generation {}), valid until {}: agents must install it again (GET /ca.crt); SHA-256 fingerprint {}",
                tls.ca_generation,
                civia_base::time::rfc3339(tls.ca_not_after),
                tls.ca_fingerprint
            );
        } else {
            log::info!("box CA SHA-256 fingerprint {}", tls.ca_fingerprint);
        }
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

        let auth = open_accounts(&cfg).await?;
        let (audit, updates) = audit_and_updates(&cfg, &secrets)?;
        let unhealthy = boot::after_boot(
            &updates,
            &supervisor,
            Duration::from_secs(cfg.runtime.load_timeout_secs),
        );

        let embedder =
            embeddings
                .clone()
                .zip(cfg.embeddings_model_id())
                .map(|(embeddings, model_id)| {
                    Arc::new(crate::knowledge::WorkerEmbedder {
                        embeddings,
                        model_id,
                    }) as Arc<dyn civia_knowledge::Embedder>
                });
        let knowledge = crate::knowledge::start(&cfg, embedder)?;
        let backups = crate::backup::service(
            &cfg,
            audit.clone(),
            secrets.backup_smb_key(),
            secrets.escrow(&cfg),
        );
        tokio::spawn(crate::backup::daily(backups.clone()));
        let state = Arc::new(ApiState {
            supervisor: supervisor.clone(),
            knowledge,
            speech: speech.clone(),
            embeddings: embeddings.clone(),
            model_id: cfg.model_id(),
            limits: cfg.api.clone(),
            config: Arc::new(cfg.clone()),
            leak_guard: leak_guard(&cfg.guard),
            auth,
            admin_on_api: cfg.admin.listen.is_none(),
            updates: Some(updates),
            backups: Some(backups),
            audit: Some(audit),
            ca_pem: tls.ca_pem.clone(),
            trust: civia_api::TrustFacts {
                ca_fingerprint_sha256: tls.ca_fingerprint.clone(),
                ca_not_after: civia_base::time::rfc3339(tls.ca_not_after),
                secrets_protection: secrets.status.protection.to_string(),
                secrets_message: secrets.status.message.clone(),
            },
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
        Ok(App {
            cfg,
            supervisor,
            speech,
            embeddings,
            state,
            server_tls,
            listening,
            unhealthy,
        })
    }
}

/// The listeners of a daemon, bound.
pub struct Listeners {
    api: TcpListener,
    admin: Option<TcpListener>,
    socket: UnixListener,
    socket_path: PathBuf,
}

impl App {
    pub fn builder(cfg: Config) -> AppBuilder {
        AppBuilder {
            cfg,
            runtime_worker: None,
        }
    }

    /// Binds the API listener, the admin listener when configured, and the admin socket.
    pub async fn bind(&self) -> Result<Listeners, DaemonError> {
        let cfg = &self.cfg;
        let bind = |addr: std::net::SocketAddr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| DaemonError::Listen { addr, source })
        };
        let api = bind(cfg.api.listen).await?;
        let admin = match cfg.admin.listen {
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
        Ok(Listeners {
            api,
            admin,
            socket,
            socket_path,
        })
    }

    /// Binds, serves until `stop` completes or a trial boot is found unhealthy, then stops
    /// the listeners and the workers.
    pub async fn run(self, stop: impl Future<Output = ()>) -> Result<Stop, DaemonError> {
        let listeners = self.bind().await?;
        Ok(self.serve(listeners, stop).await)
    }

    /// Serves on `listeners` until `stop` completes or a trial boot is found unhealthy.
    pub async fn serve(self, listeners: Listeners, stop: impl Future<Output = ()>) -> Stop {
        let App {
            cfg,
            supervisor,
            speech,
            embeddings,
            state,
            server_tls,
            listening,
            mut unhealthy,
        } = self;
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
            listeners.socket_path.display(),
            cfg.model_id()
        );
        let _ = listening.send(());

        let gate = serve::Gate::api(&cfg.api);
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let stopped = move || {
            let mut rx = stop_rx.clone();
            async move {
                let _ = rx.wait_for(|s| *s).await;
            }
        };
        let mut tasks = tokio::task::JoinSet::new();
        tasks.spawn(serve::serve_unix(
            listeners.socket,
            admin_router(state.clone()),
            serve::AdminPeers::from_config(&cfg),
            stopped(),
        ));
        if let Some(l) = listeners.admin {
            tasks.spawn(serve::serve_tcp(
                l,
                Some(server_tls.clone()),
                admin_router(state.clone()),
                serve::Gate::admin(&cfg),
                stopped(),
            ));
        }
        // The admin plane is nested in the API listener's router unless it has its own.
        let admin = state.admin_on_api.then(|| civia_admin_api::routes(&state));
        tasks.spawn(serve::serve_tcp(
            listeners.api,
            api_tls.then_some(server_tls),
            router(state, admin),
            gate,
            stopped(),
        ));
        let stop = tokio::select! {
            _ = stop => Stop::Signal,
            Ok(reason) = &mut unhealthy => {
                boot::log_unhealthy(&reason);
                Stop::TrialUnhealthy
            }
        };
        let _ = stop_tx.send(true);
        while tasks.join_next().await.is_some() {}
        let _ = std::fs::remove_file(&listeners.socket_path);
        log::info!("stopping");
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
        supervisor.shutdown().await;
        if let Some(s) = speech {
            s.shutdown().await;
        }
        if let Some(e) = embeddings {
            e.shutdown().await;
        }
        stop
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

/// Accounts: the store, the trial admin, or the pairing code of a fresh box.
async fn open_accounts(cfg: &Config) -> Result<Arc<Auth>, DaemonError> {
    let store = civia_auth::Store::open(&cfg.state_dir.join("civia.db"))?;
    let auth = Arc::new(Auth::new(store, cfg.auth.clone(), cfg.quotas.clone())?);
    let dev_api_key = std::env::var("CIVIA_DEV_API_KEY")
        .ok()
        .filter(|k| !k.is_empty());
    if let Some(key) = &dev_api_key {
        // An administrator's key from the environment is for trying the box on this machine:
        // never on a listener other machines reach, never a short guessable one.
        let loopback = cfg.api.listen.ip().is_loopback()
            && cfg.admin.listen.is_none_or(|a| a.ip().is_loopback());
        if !loopback {
            return Err(DaemonError::TrialKey(
                "the trial key is accepted only when every listener is on loopback (api.listen, admin.listen); unset it and pair the box",
            ));
        }
        if key.len() < 16 || key.len() > 256 || key.chars().any(|c| c.is_control()) {
            return Err(DaemonError::TrialKey(
                "the trial key must be 16 to 256 printable characters",
            ));
        }
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
    Ok(auth)
}

/// The audit trail (model requests fail closed when it cannot be written) and signed
/// updates (system and model bundles), which record into it.
/// What the box CA may certify: the box's names, and the LAN ranges (`api.allowed_sources`)
/// plus any certificate address outside them.
fn ca_policy(cfg: &Config, names: &[String], addrs: &[std::net::IpAddr]) -> civia_tls::CaPolicy {
    let mut ip_ranges: Vec<(std::net::IpAddr, u8)> = cfg
        .api
        .allowed_sources
        .iter()
        .map(|n| (n.network(), n.prefix_len()))
        .collect();
    for a in addrs {
        if !civia_config::source_allowed(&cfg.api.allowed_sources, *a) {
            ip_ranges.push((*a, if a.is_ipv4() { 32 } else { 128 }));
        }
    }
    civia_tls::CaPolicy {
        dns: names.to_vec(),
        ip_ranges,
        ca_days: cfg.api.tls_ca_days,
        rotate_before_days: cfg.api.tls_ca_rotate_days,
    }
}

fn audit_and_updates(
    cfg: &Config,
    secrets: &crate::secrets::BoxSecrets,
) -> Result<(Arc<civia_audit::Audit>, Arc<civia_update::Updates>), DaemonError> {
    let policy = civia_audit::RetentionPolicy {
        months: cfg.audit.retention_months,
        justification: cfg.audit.retention_justification.clone(),
    };
    let keys = cfg.state_dir.join("keys");
    // A trail begun with the key files of an older version stays with them: its seals name
    // that key. New trails take their keys from the secret store.
    let audit = if keys.join("device-ed25519.key").exists() {
        log::warn!(
            "audit: keys from the plain files in {} (a trail begun before the sealed secret store)",
            keys.display()
        );
        civia_audit::Audit::open(&cfg.state_dir.join("audit"), &keys, &policy)?
    } else {
        civia_audit::Audit::open_with_keys(
            &cfg.state_dir.join("audit"),
            &secrets.audit_signing_seed(),
            *secrets.audit_pseudonym_secret(),
            &policy,
        )?
    };
    let audit = Arc::new(audit);
    // Backups and restores done while civiad was stopped: into the trail now (a restored trail
    // goes on from its restored head); a note stays until its entry is written.
    for (note, ev) in civia_backup::take_events(&cfg.state_dir) {
        let mut entry = civia_audit::Event::new(ev.event.clone());
        entry.detail = Some(ev.detail());
        if audit.try_append_blocking(entry).is_ok() {
            if let Err(e) = std::fs::remove_file(&note) {
                log::warn!("backup: cannot remove {}: {e}", note.display());
            }
        }
    }
    if cfg.audit.journald {
        audit.mirror_to_journal(&cfg.audit.journal_socket);
    }
    tokio::spawn(audit.clone().purge_daily());
    let updates = Arc::new(civia_update::Updates::new(cfg, Some(audit.clone())));
    match &updates.system {
        Ok(c) => log::info!(
            "system updates: booted slot {}, running {}",
            c.booted.name(),
            c.running
        ),
        Err(why) => log::info!("system updates off: {why}"),
    }
    Ok((audit, updates))
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
    purge_spool(&cfg.speech_spool_dir())?;
    Ok(SpeechSpec::from_config(cfg, program).map(SpeechSupervisor::start))
}

/// The embedding worker, when `[embeddings] path` is set: civiad's own executable as
/// `civiad embed-worker` (it shares civiad's llama.cpp), in the workers' jail.
fn start_embeddings(cfg: &Config) -> Result<Option<EmbedSupervisor>, DaemonError> {
    let Some(path) = &cfg.embeddings.path else {
        return Ok(None);
    };
    std::fs::File::open(path).map_err(|source| DaemonError::EmbeddingsModel {
        path: path.clone(),
        source,
    })?;
    let program = std::env::current_exe().map_err(DaemonError::SelfExe)?;
    Ok(
        EmbedSpec::from_config(cfg, program, vec!["embed-worker".into()])
            .map(EmbedSupervisor::start),
    )
}

/// Creates the spool directory (0711: the speech worker, under its own uid, reads the
/// recordings it is named but cannot list them) and deletes the recordings civiad left there.
fn purge_spool(spool: &std::path::Path) -> Result<(), DaemonError> {
    let err = |source| DaemonError::Spool {
        path: spool.to_path_buf(),
        source,
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(spool)
        .map_err(err)?;
    std::fs::set_permissions(spool, std::fs::Permissions::from_mode(0o711)).map_err(err)?;
    let mut purged = 0;
    for entry in std::fs::read_dir(spool).map_err(err)? {
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
    Ok(())
}

/// The output guard against system-prompt leaks, when there is a prompt to protect.
fn leak_guard(cfg: &civia_config::GuardConfig) -> Option<Arc<civia_guard::LeakGuard>> {
    let prompt = cfg.system_prompt.trim();
    (cfg.leak_filter && !prompt.is_empty())
        .then(|| Arc::new(civia_guard::LeakGuard::new(&[prompt], cfg.leak_min_words)))
}
