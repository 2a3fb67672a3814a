//! The audit trail as the daemon uses it: one [`Audit`] opened at start with the device key
//! and the pseudonym secret, shared by every request. Appends run on blocking threads and
//! are fsynced before the caller goes on; a failed append is [`AuditUnavailable`], and the
//! caller refuses its request (model requests fail closed). Reading the trail (verify,
//! export) runs on blocking threads too.

use crate::{AuditError, AuditLog, Event, ExportFormat, Pseudonymizer, VerifyReport, VerifyingKey};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

pub use crate::RetentionPolicy;

/// The audit log could not be written (the cause is in the daemon's log).
#[derive(Debug, thiserror::Error)]
#[error("the audit log cannot be written")]
pub struct AuditUnavailable;

/// Reading the trail failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Audit(AuditError),
    #[error("audit task failed: {0}")]
    Task(String),
}

/// Who did an administration event: a user (pseudonymised) or the local admin socket.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    pub user_id: Option<i64>,
    pub role: &'a str,
}

pub struct Audit {
    log: Arc<AuditLog>,
    pseudonyms: Pseudonymizer,
    dir: PathBuf,
    public: VerifyingKey,
}

impl Audit {
    /// Opens `<dir>` with the device key and the pseudonym secret found (or created, 0600)
    /// under `keys_dir` (development and boxes set up before the sealed secret store).
    pub fn open(dir: &Path, keys_dir: &Path, policy: &RetentionPolicy) -> Result<Self, AuditError> {
        policy.validate()?;
        std::fs::create_dir_all(keys_dir).map_err(|source| AuditError::Io {
            path: keys_dir.to_path_buf(),
            source,
        })?;
        let key = crate::DeviceKey::load_or_create(&keys_dir.join("device-ed25519.key"))?;
        let secret = crate::secret_load_or_create(&keys_dir.join("audit-pseudonym.secret"))?;
        Self::open_keyed(dir, key, secret, policy)
    }

    /// Opens `<dir>` with the 32-byte Ed25519 seed of the signing key and the pseudonym
    /// secret the caller holds (unsealed from the TPM-sealed secret store): nothing about them
    /// is written.
    pub fn open_with_keys(
        dir: &Path,
        signing_seed: &[u8; 32],
        secret: [u8; 32],
        policy: &RetentionPolicy,
    ) -> Result<Self, AuditError> {
        Self::open_keyed(
            dir,
            ed25519_dalek::SigningKey::from_bytes(signing_seed),
            secret,
            policy,
        )
    }

    fn open_keyed(
        dir: &Path,
        key: ed25519_dalek::SigningKey,
        secret: [u8; 32],
        policy: &RetentionPolicy,
    ) -> Result<Self, AuditError> {
        policy.validate()?;
        let public = key.verifying_key();
        let log = AuditLog::open(dir, key, policy.months)?;
        if let Some(torn) = &log.open_report().torn {
            log::warn!(
                "audit: a torn last line ({} bytes) of {} was cut off at open (crash before its fsync)",
                torn.bytes.len(),
                torn.segment
            );
        }
        Ok(Self {
            log: Arc::new(log),
            pseudonyms: Pseudonymizer::new(secret),
            dir: dir.to_path_buf(),
            public,
        })
    }

    /// Mirrors every entry to journald through `socket` when it exists (a box runs journald;
    /// a trial on a workstation may not).
    pub fn mirror_to_journal(&self, socket: &Path) {
        if socket.exists() {
            self.log.mirror_to(crate::JournalMirror::new(socket));
            log::info!("audit: entries mirrored to journald ({})", socket.display());
        } else {
            log::info!(
                "audit: no journald socket at {}: entries are not mirrored",
                socket.display()
            );
        }
    }

    /// Whether entries reach journald too.
    pub fn mirrored(&self) -> bool {
        self.log.mirrored()
    }

    /// Verifies the whole trail: Some(true) when it verifies, Some(false) when it shows
    /// tampering, None when it cannot be read.
    pub async fn chain_verifies(&self) -> Option<bool> {
        match self.verify().await {
            Ok(_) => Some(true),
            Err(ServiceError::Audit(e)) if e.tamper().is_some() => Some(false),
            _ => None,
        }
    }

    /// The trail's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The trail's files pinned at its current head, for an online backup
    /// ([`AuditLog::pin_files`]); blocks appends for as long as it takes to open them.
    pub fn pin_files(&self) -> Result<Vec<civia_base::fs::PinnedFile>, AuditError> {
        self.log.pin_files()
    }

    /// The pseudonym of a caller: a user's, or `local-admin` for the local admin socket
    /// (which is not a user).
    pub fn who(&self, user_id: Option<i64>) -> String {
        match user_id {
            Some(id) => self.pseudonyms.pseudonym(id),
            None => "local-admin".into(),
        }
    }

    /// A user's pseudonym in the audit trail.
    pub fn pseudonym_of(&self, user_id: i64) -> String {
        self.pseudonyms.pseudonym(user_id)
    }

    /// Appends and fsyncs an event (on a blocking thread). A failure is logged with its
    /// cause and returned as [`AuditUnavailable`]: the caller refuses the request.
    pub async fn append(&self, ev: Event) -> Result<(), AuditUnavailable> {
        let log = self.log.clone();
        let name = ev.event.clone();
        let res = tokio::task::spawn_blocking(move || log.append(ev))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()));
        match res {
            Ok(entry) => {
                log::debug!(target: "civia::audit", "audit {name} seq {}", entry.seq);
                Ok(())
            }
            Err(e) => {
                log::error!("audit: cannot write `{name}`: {e}");
                Err(AuditUnavailable)
            }
        }
    }

    /// Appends from a blocking context (the update agent's observer); failures are logged.
    pub fn append_blocking(&self, ev: Event) {
        let _ = self.try_append_blocking(ev);
    }

    /// [`Audit::append_blocking`], saying whether the entry was written (for a caller that
    /// keeps what it could not write, to try again).
    pub fn try_append_blocking(&self, ev: Event) -> Result<(), AuditUnavailable> {
        let name = ev.event.clone();
        self.log.append(ev).map(|_| ()).map_err(|e| {
            log::error!("audit: cannot write `{name}`: {e}");
            AuditUnavailable
        })
    }

    /// An administration event by `who` (`admin.*`, `auth.*`), the target named by
    /// pseudonym only.
    pub async fn record_admin(
        &self,
        name: &str,
        who: Option<Actor<'_>>,
        target_user: Option<i64>,
        detail: serde_json::Value,
    ) -> Result<(), AuditUnavailable> {
        let mut ev = Event::new(name);
        if let Some(a) = who {
            ev = ev.user(self.who(a.user_id)).role(a.role);
        }
        let mut detail = match detail {
            serde_json::Value::Object(m) => m,
            _ => serde_json::Map::new(),
        };
        if let Some(id) = target_user {
            detail.insert("target".into(), self.pseudonyms.pseudonym(id).into());
        }
        ev.detail = Some(serde_json::Value::Object(detail));
        self.append(ev).await
    }

    /// Drops segments past retention (once a day).
    pub async fn purge_daily(self: Arc<Self>) {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(86_400));
        loop {
            tick.tick().await;
            let log = self.log.clone();
            match tokio::task::spawn_blocking(move || log.purge()).await {
                Ok(Ok(r)) if !r.purged.is_empty() => log::info!("audit: purged {:?}", r.purged),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => log::error!("audit: purge failed: {e}"),
                Err(e) => log::error!("audit: purge task failed: {e}"),
            }
        }
    }

    /// Verifies the whole trail on a blocking thread.
    pub async fn verify(&self) -> Result<VerifyReport, ServiceError> {
        let (dir, key) = (self.dir.clone(), self.public);
        tokio::task::spawn_blocking(move || crate::verify(&dir, &key, None))
            .await
            .map_err(|e| ServiceError::Task(e.to_string()))?
            .map_err(ServiceError::Audit)
    }

    /// The entries between two times, in `format`, on a blocking thread.
    pub async fn export(
        &self,
        from: SystemTime,
        to: SystemTime,
        format: ExportFormat,
    ) -> Result<Vec<u8>, ServiceError> {
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || {
            let mut buf = Vec::new();
            crate::export(&dir, from, to, format, &mut buf).map(|_| buf)
        })
        .await
        .map_err(|e| ServiceError::Task(e.to_string()))?
        .map_err(ServiceError::Audit)
    }
}
