//! Backups of the running box: one at a time, to the console's download or to the configured
//! destination (the mairie's NAS share or a USB disk, mounted), with their progress, their
//! outcome kept across restarts (`backup/last.json`), the retention of the destination's
//! archives, the daily schedule, the "last good backup too old" warning, `/metrics`, and an
//! audit entry for each (`backup.created`, `backup.failed`, `backup.key_created`).

use crate::smb::{self, Smb};
use crate::{
    io_err, owner_of, recipient, BackupError, BackupEvent, Escrow, Progress, Result, Snapshot,
    Summary,
};
use civia_config::SmbShare;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use zeroize::Zeroizing;

/// Where the outcome of the last backups is kept, relative to the state directory.
const LAST_FILE: &str = "backup/last.json";
/// Archives written to a destination end with this.
pub const EXTENSION: &str = ".civia-backup";

/// How the daily backup runs (`[backup]` of the configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// A folder (a USB disk, a mounted share).
    pub destination: Option<PathBuf>,
    /// The mairie's NAS share (exclusive with `destination`).
    pub smb: Option<SmbShare>,
    pub hour_utc: u8,
    pub keep: u32,
    pub max_age_hours: u32,
    /// The directories the box keeps state in that may be configured elsewhere (the
    /// secrets, the knowledge base): a backup refuses when one lies outside the state
    /// directory ([`crate::check_covered`]).
    pub kept_elsewhere: Vec<(&'static str, PathBuf)>,
}

/// Who asked: a user id and role (None: the schedule, or the local admin socket).
#[derive(Debug, Clone, Default)]
pub struct By {
    pub user_id: Option<i64>,
    pub role: Option<String>,
}

/// Where a backup goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// The answer to an administrator's download.
    Download,
    /// The configured destination: a folder or the NAS share.
    Destination,
}

/// A backup being written.
#[derive(Debug, Clone, Serialize)]
pub struct Running {
    pub to: Target,
    pub started_at: String,
    pub progress: Progress,
}

/// How a backup ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub ok: bool,
    pub to: Target,
    /// When it ended (RFC 3339, UTC) and the same as Unix seconds.
    pub at: String,
    pub at_unix: i64,
    /// The archive's file name in the destination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<String>,
    pub files: usize,
    pub bytes: u64,
    /// Why it failed (English, for the administrator and the logs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Record {
    last: Option<Outcome>,
    last_success: Option<Outcome>,
}

/// One archive in the destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArchiveInfo {
    pub name: String,
    pub bytes: u64,
    /// When the file was written (RFC 3339, UTC).
    pub modified: String,
}

/// What the console and `GET /admin/backup` show.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// Whether the backup key exists (its public half is on the box).
    pub key: bool,
    /// The folder, or the NAS share as `//ADDRESS/SHARE/FOLDER`.
    pub destination: Option<String>,
    /// With a NAS share: its account and whether its password is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smb: Option<SmbStatus>,
    pub hour_utc: u8,
    pub keep: u32,
    pub max_age_hours: u32,
    /// The next scheduled backup (RFC 3339), when a destination and a key are set.
    pub next_run: Option<String>,
    pub running: Option<Running>,
    pub last: Option<Outcome>,
    pub last_success: Option<Outcome>,
    /// No good backup for `max_age_hours` (or never): the console warns.
    pub too_old: bool,
    /// This box's archives in the destination, newest first (empty without a destination,
    /// or with the destination's error in `destination_error`).
    pub archives: Vec<ArchiveInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination_error: Option<String>,
    /// The NAS folder is being listed: `archives` will change (ask again in a moment).
    pub listing_pending: bool,
}

/// The NAS account of the status.
#[derive(Debug, Clone, Serialize)]
pub struct SmbStatus {
    pub user: String,
    pub domain: Option<String>,
    pub encrypt: bool,
    pub password_set: bool,
}

/// The NAS folder's archives as last seen, and when ([`Backups::status`] answers from it).
#[derive(Clone)]
struct Listing {
    /// When the listing began: an older one never replaces a newer one.
    began: u64,
    at: std::time::Instant,
    archives: std::result::Result<Vec<ArchiveInfo>, String>,
}

/// How long a listing of the NAS is shown before the status asks the NAS again.
const LISTING_FRESH: std::time::Duration = std::time::Duration::from_secs(60);

/// Where the destination's archives are.
enum Place<'a> {
    Folder(&'a Path),
    Smb(&'a SmbShare),
}

/// The box's backups, shared by the admin API and the schedule.
pub struct Backups {
    state_dir: PathBuf,
    /// The key of the NAS password's file ([`smb::seal_password`]).
    smb_key: Option<Zeroizing<[u8; 32]>>,
    /// The NAS folder's listing: the status never waits for the NAS (a NAS that does not
    /// answer would hold the console), it shows this and asks for a new one in the
    /// background.
    listing: Mutex<Option<Listing>>,
    listing_now: AtomicBool,
    listings: AtomicU64,
    /// The TPM-sealed secrets, unsealed, that every archive escrows (None: the secrets are
    /// files of the state).
    escrow: Option<Escrow>,
    version: String,
    settings: Settings,
    audit: Arc<civia_audit::Audit>,
    running: Mutex<Option<Running>>,
    record: Mutex<Record>,
    failures: AtomicU64,
    successes: AtomicU64,
}

/// The archives of the box whose backup recipient is `recipient`, in `dir`, newest first
/// (their names begin with [`archive_prefix`]). Without a recipient: every age file.
pub fn list(dir: &Path, recipient: Option<&str>) -> Result<Vec<ArchiveInfo>> {
    let prefix = recipient.map(archive_prefix);
    let mut rows = Vec::new();
    for e in fs::read_dir(dir).map_err(io_err(dir))?.flatten() {
        let path = e.path();
        // Gone since the directory was read: not listed.
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        let name = e.file_name().to_string_lossy().into_owned();
        let ours = |p: &String| name.starts_with(p.as_str()) && name.ends_with(EXTENSION);
        if !meta.is_file()
            || name.ends_with(".partial")
            || prefix.as_ref().is_some_and(|p| !ours(p))
        {
            continue;
        }
        let head = fs::File::open(&path).and_then(|mut f| {
            let mut b = [0u8; 21];
            io::Read::read_exact(&mut f, &mut b).map(|()| b)
        });
        if head.is_ok_and(|b| &b == b"age-encryption.org/v1") {
            let modified = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| civia_base::time::rfc3339(d.as_secs() as i64))
                .unwrap_or_default();
            rows.push(ArchiveInfo {
                name,
                bytes: meta.len(),
                modified,
            });
        }
    }
    // The names end with the creation time: newest first.
    rows.sort_by(|a, b| b.name.cmp(&a.name));
    Ok(rows)
}

/// The start of this box's archive names: `civia-` and 8 hex digits of the SHA-256 of its
/// backup recipient, so that several boxes share a NAS folder without touching each other's.
pub fn archive_prefix(recipient: &str) -> String {
    let h = civia_base::hash::sha256_hex(recipient.trim());
    format!("civia-{}-", &h[..8])
}

/// The next run of a daily backup at `hour_utc` strictly after `now` (Unix seconds).
pub fn next_daily(now: i64, hour_utc: u8) -> i64 {
    let day = now.div_euclid(86_400) * 86_400;
    let at = day + i64::from(hour_utc) * 3600;
    if at > now {
        at
    } else {
        at + 86_400
    }
}

impl Backups {
    /// The service for `state_dir` (reads the last outcomes it kept there).
    pub fn new(
        state_dir: &Path,
        version: &str,
        settings: Settings,
        audit: Arc<civia_audit::Audit>,
    ) -> Backups {
        let record = fs::read(state_dir.join(LAST_FILE))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        if let Err(e) = crate::clear_staging(state_dir) {
            log::warn!("backup: cannot clear what an interrupted snapshot left: {e}");
        }
        Backups {
            state_dir: state_dir.to_path_buf(),
            smb_key: None,
            listing: Mutex::new(None),
            listing_now: AtomicBool::new(false),
            listings: AtomicU64::new(0),
            escrow: None,
            version: version.into(),
            settings,
            audit,
            running: Mutex::new(None),
            record: Mutex::new(record),
            failures: AtomicU64::new(0),
            successes: AtomicU64::new(0),
        }
    }

    /// Gives the key that encrypts the NAS password on this box (civiad derives it from the
    /// device identity, TPM-sealed on a box). Without it the NAS password cannot be set.
    pub fn with_smb_key(mut self, key: Zeroizing<[u8; 32]>) -> Backups {
        self.smb_key = Some(key);
        self
    }

    /// Gives the TPM-sealed secrets (unsealed by civiad) for every archive to escrow: a
    /// restore seals them again under the new box's TPM.
    pub fn with_escrow(mut self, escrow: Escrow) -> Backups {
        self.escrow = Some(escrow);
        self
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Keeps `password` for the configured NAS share, encrypted. Audited as
    /// `backup.smb_password_set` (never the password).
    pub fn set_smb_password(&self, password: &str, by: &By) -> Result<()> {
        let share = self
            .settings
            .smb
            .as_ref()
            .ok_or(BackupError::NoDestination)?;
        let key = self
            .smb_key
            .as_ref()
            .ok_or(BackupError::SmbPasswordUnreadable)?;
        let file = smb::seal_password(key, share, password)?;
        let path = self.state_dir.join(smb::CREDENTIAL_FILE);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(io_err(dir))?;
        }
        civia_base::fs::write_atomic(&path, &file, 0o600).map_err(|e| BackupError::Io {
            path: path.clone(),
            source: io::Error::other(e.to_string()),
        })?;
        if let Some((uid, gid)) = owner_of(&self.state_dir) {
            let _ = std::os::unix::fs::chown(&path, Some(uid), Some(gid));
        }
        // What the NAS said with the former password no longer holds.
        *self.listing() = None;
        let mut ev = self.event("backup.smb_password_set", by);
        ev.detail = Some(serde_json::json!({"share": share.display(), "user": share.user}));
        let _ = self.audit.try_append_blocking(ev);
        Ok(())
    }

    /// The NAS password kept on this box.
    fn smb_password(&self, share: &SmbShare) -> Result<Zeroizing<String>> {
        let path = self.state_dir.join(smb::CREDENTIAL_FILE);
        let file = match fs::read(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(BackupError::NoSmbPassword)
            }
            Err(e) => return Err(io_err(&path)(e)),
        };
        let key = self
            .smb_key
            .as_ref()
            .ok_or(BackupError::SmbPasswordUnreadable)?;
        smb::open_password(key, share, &file)
    }

    fn place(&self) -> Result<Place<'_>> {
        match (&self.settings.destination, &self.settings.smb) {
            (_, Some(share)) => Ok(Place::Smb(share)),
            (Some(dir), None) => Ok(Place::Folder(dir)),
            (None, None) => Err(BackupError::NoDestination),
        }
    }

    fn listing(&self) -> MutexGuard<'_, Option<Listing>> {
        self.listing.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A number for a listing that begins now.
    fn begin_listing(&self) -> u64 {
        self.listings.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Keeps what a listing begun at `began` saw of the NAS folder, unless a later one is
    /// already kept.
    fn seen(&self, began: u64, archives: std::result::Result<Vec<ArchiveInfo>, String>) {
        let mut listing = self.listing();
        if listing.as_ref().is_some_and(|l| l.began > began) {
            return;
        }
        *listing = Some(Listing {
            began,
            at: std::time::Instant::now(),
            archives,
        });
    }

    /// Lists the NAS folder now and keeps it.
    fn list_smb(&self, share: &SmbShare, recipient: &str) {
        let began = self.begin_listing();
        let listed = self
            .smb_password(share)
            .and_then(|password| Smb::new(share, password).list())
            .map(|entries| smb_archives(&entries, recipient))
            .map_err(|e| e.to_string());
        self.seen(began, listed);
    }

    /// This box's archives in the destination, newest first: a folder is read now; the NAS's
    /// last listing is answered (none yet: empty), and a new one is asked for in the
    /// background when it is older than a minute.
    fn archives(self: &Arc<Self>, recipient: &str) -> Result<Vec<ArchiveInfo>> {
        match self.place()? {
            Place::Folder(dir) => list(dir, Some(recipient)),
            Place::Smb(_) => {
                let last = self.listing().clone();
                if last.as_ref().is_none_or(|l| l.at.elapsed() > LISTING_FRESH)
                    && !self.listing_now.swap(true, Ordering::SeqCst)
                {
                    let me = self.clone();
                    let recipient = recipient.to_string();
                    let spawned = std::thread::Builder::new()
                        .name("backup-nas-list".into())
                        .spawn(move || {
                            if let Some(share) = &me.settings.smb {
                                me.list_smb(share, &recipient);
                            }
                            me.listing_now.store(false, Ordering::SeqCst);
                        });
                    if spawned.is_err() {
                        self.listing_now.store(false, Ordering::SeqCst);
                    }
                }
                match last {
                    Some(Listing {
                        archives: Err(e), ..
                    }) => Err(BackupError::Smb {
                        share: self
                            .settings
                            .smb
                            .as_ref()
                            .map(SmbShare::display)
                            .unwrap_or_default(),
                        step: "list",
                        message: e,
                    }),
                    Some(Listing {
                        archives: Ok(a), ..
                    }) => Ok(a),
                    None => Ok(Vec::new()),
                }
            }
        }
    }

    fn running(&self) -> MutexGuard<'_, Option<Running>> {
        // Plain data: a panic cannot leave it half-updated.
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn record(&self) -> MutexGuard<'_, Record> {
        self.record.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn event(&self, name: &str, by: &By) -> civia_audit::Event {
        let mut ev = civia_audit::Event::new(name);
        if let Some(role) = &by.role {
            ev = ev.user(self.audit.who(by.user_id)).role(role);
        }
        ev
    }

    /// Creates the backup key ([`crate::create_key`]): its secret is returned once, never
    /// kept. Audited as `backup.key_created`.
    pub fn create_key(&self, by: &By) -> Result<String> {
        let secret = crate::create_key(&self.state_dir)?;
        let _ = self
            .audit
            .try_append_blocking(self.event("backup.key_created", by));
        Ok(secret)
    }

    /// Whether the backup key exists.
    pub fn has_key(&self) -> bool {
        self.state_dir.join(crate::RECIPIENT_FILE).is_file()
    }

    /// Whether a destination (folder or NAS share) is configured.
    pub fn has_destination(&self) -> bool {
        self.place().is_ok()
    }

    /// Checks that a backup may start now (a key, no other backup running, a destination
    /// for [`Target::Destination`]) and marks it running. The returned guard clears the mark.
    pub fn begin(self: &Arc<Self>, to: Target) -> Result<Job> {
        crate::check_covered(&self.state_dir, &self.settings.kept_elsewhere)?;
        let recipient = recipient(&self.state_dir)?;
        if to == Target::Destination {
            if let Place::Smb(share) = self.place()? {
                self.smb_password(share)?;
            }
        }
        let mut running = self.running();
        if running.is_some() {
            return Err(BackupError::Busy);
        }
        let now = civia_base::time::now_unix();
        *running = Some(Running {
            to,
            started_at: civia_base::time::rfc3339(now),
            progress: Progress::default(),
        });
        Ok(Job {
            service: self.clone(),
            recipient,
            to,
            started_at: now,
        })
    }

    /// Whether the last good backup (in `record`) is older than `max_age_hours`, or missing.
    fn too_old(&self, record: &Record, now: i64) -> bool {
        let max_age = i64::from(self.settings.max_age_hours) * 3600;
        record
            .last_success
            .as_ref()
            .is_none_or(|o| now - o.at_unix > max_age)
    }

    /// The current state, for the console (lists the destination: call it off the async
    /// executor).
    pub fn status(self: &Arc<Self>) -> Status {
        // Running first: a backup ends by recording its outcome, then clearing its mark, so
        // no mark means the record read next holds its outcome.
        let running = self.running().clone();
        let record = self.record().clone();
        let now = civia_base::time::now_unix();
        let too_old = self.too_old(&record, now);
        let key = self.has_key();
        let recipient = fs::read_to_string(self.state_dir.join(crate::RECIPIENT_FILE)).ok();
        let listed = recipient.is_some();
        let (archives, destination_error) = match recipient {
            Some(r) if self.has_destination() => match self.archives(&r) {
                Ok(a) => (a, None),
                Err(e) => (Vec::new(), Some(e.to_string())),
            },
            _ => (Vec::new(), None),
        };
        let smb = self.settings.smb.as_ref().map(|s| SmbStatus {
            user: s.user.clone(),
            domain: s.domain.clone(),
            encrypt: s.encrypt,
            password_set: self.smb_password(s).is_ok(),
        });
        Status {
            key,
            destination: match self.place() {
                Ok(Place::Folder(d)) => Some(d.display().to_string()),
                Ok(Place::Smb(s)) => Some(s.display()),
                Err(_) => None,
            },
            smb,
            hour_utc: self.settings.hour_utc,
            keep: self.settings.keep,
            max_age_hours: self.settings.max_age_hours,
            next_run: self.next_run(now).map(civia_base::time::rfc3339),
            running,
            last: record.last,
            last_success: record.last_success,
            too_old,
            archives,
            destination_error,
            listing_pending: listed
                && self.settings.smb.is_some()
                && (self.listing_now.load(Ordering::SeqCst) || self.listing().is_none()),
        }
    }

    /// The backup being written now, with its progress.
    pub fn running_now(&self) -> Option<Running> {
        self.running().clone()
    }

    /// When the schedule runs next (None: no destination or no key).
    pub fn next_run(&self, now: i64) -> Option<i64> {
        (self.has_destination() && self.has_key()).then(|| next_daily(now, self.settings.hour_utc))
    }

    /// `civia_backup_*` in Prometheus' text format.
    pub fn metrics(&self) -> String {
        let record = self.record().clone();
        let too_old = self.too_old(&record, civia_base::time::now_unix());
        let running = self.running().is_some();
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: String| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        };
        metric(
            "civia_backup_last_success_timestamp_seconds",
            "gauge",
            "End of the last good backup, Unix time (0: never).",
            record
                .last_success
                .as_ref()
                .map_or(0, |o| o.at_unix)
                .to_string(),
        );
        metric(
            "civia_backup_last_success_bytes",
            "gauge",
            "State bytes in the last good backup.",
            record
                .last_success
                .as_ref()
                .map_or(0, |o| o.bytes)
                .to_string(),
        );
        metric(
            "civia_backup_too_old",
            "gauge",
            "1 when no good backup was made within backup.max_age_hours.",
            u8::from(too_old).to_string(),
        );
        metric(
            "civia_backup_running",
            "gauge",
            "1 while a backup is being written.",
            u8::from(running).to_string(),
        );
        metric(
            "civia_backups_succeeded_total",
            "counter",
            "Backups written since start.",
            self.successes.load(Ordering::Relaxed).to_string(),
        );
        metric(
            "civia_backups_failed_total",
            "counter",
            "Backups that failed since start.",
            self.failures.load(Ordering::Relaxed).to_string(),
        );
        out
    }

    /// Records a backup that could not even start (the schedule's: no one else hears of
    /// it): in the status, `/metrics`, the audit trail and the logs.
    pub fn record_refusal(&self, to: Target, by: &By, error: BackupError) {
        self.finish(to, by, &Err(error));
    }

    fn finish(&self, to: Target, by: &By, result: &Result<(Summary, Option<String>)>) {
        let now = civia_base::time::now_unix();
        let outcome = match result {
            Ok((summary, archive)) => Outcome {
                ok: true,
                to,
                at: civia_base::time::rfc3339(now),
                at_unix: now,
                archive: archive.clone(),
                files: summary.manifest.files.len(),
                bytes: summary.bytes(),
                error: None,
            },
            Err(e) => Outcome {
                ok: false,
                to,
                at: civia_base::time::rfc3339(now),
                at_unix: now,
                archive: None,
                files: 0,
                bytes: 0,
                error: Some(e.to_string()),
            },
        };
        let mut ev = match result {
            Ok((summary, _)) => {
                self.successes.fetch_add(1, Ordering::Relaxed);
                let mut ev = self.event("backup.created", by);
                let mut detail = BackupEvent::of("backup.created", summary).detail();
                detail["to"] = serde_json::json!(to);
                ev.detail = Some(detail);
                ev
            }
            Err(e) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                log::error!("backup to {to:?} failed: {e}");
                let mut ev = self.event("backup.failed", by);
                ev.detail = Some(serde_json::json!({"to": to, "reason": e.reason()}));
                ev
            }
        };
        ev.status = Some(if outcome.ok { 200 } else { 500 });
        let _ = self.audit.try_append_blocking(ev);
        let mut record = self.record();
        if outcome.ok {
            record.last_success = Some(outcome.clone());
        }
        record.last = Some(outcome);
        let body = serde_json::to_vec(&*record).unwrap_or_default();
        let path = self.state_dir.join(LAST_FILE);
        if let Err(e) = civia_base::fs::write_atomic(&path, &body, 0o600) {
            log::warn!("backup: cannot keep the last outcome: {e}");
        } else if let Some((uid, gid)) = owner_of(&self.state_dir) {
            let _ = std::os::unix::fs::chown(&path, Some(uid), Some(gid));
        }
    }
}

/// A backup marked running ([`Backups::begin`]); write it with [`Job::to_destination`] or
/// [`Job::to_writer`].
pub struct Job {
    service: Arc<Backups>,
    recipient: age::x25519::Recipient,
    to: Target,
    started_at: i64,
}

impl Drop for Job {
    fn drop(&mut self) {
        *self.service.running() = None;
    }
}

impl Job {
    /// The archive's file name: this box's [`archive_prefix`], the UTC time the backup
    /// began (`20261207T220501Z`) and [`EXTENSION`].
    pub fn file_name(&self) -> String {
        let stamp = civia_base::time::rfc3339(self.started_at)
            .replace(['-', ':'], "")
            .replace(".000", "");
        format!(
            "{}{stamp}{EXTENSION}",
            archive_prefix(&self.recipient.to_string())
        )
    }

    fn snapshot(&self) -> Result<Snapshot> {
        let s = &self.service;
        let audit_dir = s.audit.dir();
        let rel = audit_dir
            .strip_prefix(&s.state_dir)
            .map_err(|_| BackupError::Outside {
                key: "audit",
                path: audit_dir.to_path_buf(),
            })?
            .to_path_buf();
        let pinned = s.audit.pin_files().map_err(|e| BackupError::Io {
            path: audit_dir.to_path_buf(),
            source: io::Error::other(e.to_string()),
        })?;
        Snapshot::online(
            &s.state_dir,
            &s.version,
            vec![(rel, pinned)],
            s.escrow.clone(),
        )
    }

    fn progress(&self) -> impl FnMut(Progress) + '_ {
        move |p| {
            if let Some(r) = self.service.running().as_mut() {
                r.progress = p;
            }
        }
    }

    /// Writes the archive into `sink` (the download's body), streamed.
    pub fn to_writer<W: Write>(self, sink: W, by: &By) -> Result<Summary> {
        let result = contained(|| {
            let snap = self.snapshot()?;
            if let Some(r) = self.service.running().as_mut() {
                r.progress = snap.progress();
            }
            snap.write_to(
                &self.recipient,
                sink,
                Path::new("download"),
                &mut self.progress(),
            )
            .map(|(summary, _)| (summary, None))
        });
        self.service.finish(self.to, by, &result);
        result.map(|(s, _)| s)
    }

    /// Writes the archive into the destination, then removes this box's archives beyond
    /// `keep` there (never another box's, never anything that is not an archive).
    pub fn to_destination(self, by: &By) -> Result<Summary> {
        let result = contained(|| self.write_destination());
        self.service.finish(self.to, by, &result);
        result.map(|(s, _)| s)
    }

    fn write_destination(&self) -> Result<(Summary, Option<String>)> {
        match self.service.place()? {
            Place::Folder(dir) => self.write_folder(dir),
            Place::Smb(share) => {
                let written = self.write_smb(share);
                if let Err(e) = &written {
                    // What the NAS said is what the console shows of it.
                    if matches!(
                        e,
                        BackupError::Smb { .. }
                            | BackupError::NoSmbPassword
                            | BackupError::SmbPasswordUnreadable
                    ) {
                        let began = self.service.begin_listing();
                        self.service.seen(began, Err(e.to_string()));
                    }
                }
                written
            }
        }
    }

    fn write_folder(&self, dir: &Path) -> Result<(Summary, Option<String>)> {
        let s = &self.service;
        if !dir.is_dir() {
            return Err(BackupError::Io {
                path: dir.to_path_buf(),
                source: io::Error::new(io::ErrorKind::NotFound, "the destination is not mounted"),
            });
        }
        // Through links too: archives inside the state directory would hold their elders.
        let real = fs::canonicalize(dir).map_err(io_err(dir))?;
        if fs::canonicalize(&s.state_dir).is_ok_and(|state| real.starts_with(state)) {
            return Err(BackupError::Outside {
                key: "backup.destination",
                path: dir.to_path_buf(),
            });
        }
        let recipient = self.recipient.to_string();
        let name = self.file_name();
        // What a backup of this box killed midway left (never another box's files).
        for e in fs::read_dir(dir).map_err(io_err(dir))?.flatten() {
            if self.stale(&e.file_name().to_string_lossy()) {
                let path = e.path();
                fs::remove_file(&path).map_err(io_err(&path))?;
            }
        }
        let snap = self.snapshot()?;
        if let Some((_, free)) = civia_base::fs::disk_space(dir) {
            enough_space(&dir.display().to_string(), snap.archive_size(), free)?;
        }
        if let Some(r) = s.running().as_mut() {
            r.progress = snap.progress();
        }
        let summary = snap.write_file(&self.recipient, &dir.join(&name), &mut self.progress())?;
        match list(dir, Some(&recipient)) {
            Ok(archives) => {
                for old in self.beyond_keep(archives, &name) {
                    let path = dir.join(&old.name);
                    if let Err(e) = fs::remove_file(&path) {
                        log::warn!(
                            "backup: cannot remove the old archive {}: {e}",
                            path.display()
                        );
                    }
                }
            }
            Err(e) => log::warn!("backup: old archives not pruned: {e}"),
        }
        Ok((summary, Some(name)))
    }

    /// Written as `NAME.partial`, its size checked on the NAS, then renamed; this box's
    /// `.partial` left by a kill removed first, its archives beyond `keep` removed after.
    fn write_smb(&self, share: &SmbShare) -> Result<(Summary, Option<String>)> {
        let s = &self.service;
        let smb = Smb::new(share, s.smb_password(share)?);
        let recipient = self.recipient.to_string();
        let name = self.file_name();
        let partial = format!("{name}.partial");
        let (entries, free) = smb.list_with_space()?;
        for e in entries {
            if self.stale(&e.name) {
                smb.delete(&e.name)?;
            }
        }
        let snap = self.snapshot()?;
        if let Some(free) = free {
            enough_space(&share.display(), snap.archive_size(), free)?;
        }
        if let Some(r) = s.running().as_mut() {
            r.progress = snap.progress();
        }
        let put = smb.put(&partial, |pipe| {
            let (summary, pipe) = snap.write_to(
                &self.recipient,
                pipe,
                Path::new(&partial),
                &mut self.progress(),
            )?;
            pipe.flush().map_err(io_err(Path::new(&partial)))?;
            Ok(summary)
        });
        let (summary, sent) = match put {
            Ok(done) => done,
            Err(e) => {
                // What the NAS got of it is no archive (the next backup would remove it).
                let _ = smb.delete(&partial);
                return Err(e);
            }
        };
        // The NAS holds every byte, or the archive is not named.
        let on_nas = smb.list()?.into_iter().find(|e| e.name == partial);
        if on_nas.as_ref().map(|e| e.bytes) != Some(sent) {
            let _ = smb.delete(&partial);
            return Err(BackupError::Smb {
                share: share.display(),
                step: "write",
                message: format!(
                    "the NAS holds {} bytes of the {sent} sent",
                    on_nas.map_or(0, |e| e.bytes)
                ),
            });
        }
        smb.rename(&partial, &name)?;
        match smb.list() {
            Ok(entries) => {
                for old in self.beyond_keep(smb_archives(&entries, &recipient), &name) {
                    if let Err(e) = smb.delete(&old.name) {
                        log::warn!("backup: cannot remove the old archive {}: {e}", old.name);
                    }
                }
            }
            Err(e) => log::warn!("backup: old archives not pruned: {e}"),
        }
        s.list_smb(share, &recipient);
        Ok((summary, Some(name)))
    }

    /// Whether `name` is what a backup of this box killed midway left (never another box's).
    fn stale(&self, name: &str) -> bool {
        name.starts_with(&archive_prefix(&self.recipient.to_string()))
            && name.ends_with(&format!("{EXTENSION}.partial"))
    }

    /// The archives to remove: beyond the newest `keep` by name (their creation time), the
    /// one just written always among those kept (a clock set back must not make a backup
    /// delete itself).
    fn beyond_keep(&self, archives: Vec<ArchiveInfo>, written: &str) -> Vec<ArchiveInfo> {
        let keep = (self.service.settings.keep as usize).saturating_sub(1);
        archives
            .into_iter()
            .filter(|a| a.name != written)
            .skip(keep)
            .collect()
    }
}

/// Refuses before writing when the destination has less room than the archive needs: a
/// half-written archive would be removed anyway, after filling the NAS or the disk.
fn enough_space(place: &str, needed: u64, free: u64) -> Result<()> {
    if free < needed {
        return Err(BackupError::NoSpace {
            place: place.to_string(),
            needed,
            free,
        });
    }
    Ok(())
}

/// Runs a backup's work so that a panic in it is a failure recorded like any other (status,
/// `/metrics`, audit entry), not a silent end.
fn contained<T>(work: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).unwrap_or_else(|panic| {
        let why = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".into());
        Err(BackupError::Internal(why))
    })
}

/// This box's archives among the NAS folder's files, newest first; their time is the one
/// their name carries.
fn smb_archives(entries: &[smb::Entry], recipient: &str) -> Vec<ArchiveInfo> {
    let prefix = archive_prefix(recipient);
    let mut rows: Vec<ArchiveInfo> = entries
        .iter()
        .filter_map(|e| {
            let stamp = e.name.strip_prefix(&prefix)?.strip_suffix(EXTENSION)?;
            Some(ArchiveInfo {
                name: e.name.clone(),
                bytes: e.bytes,
                modified: stamp_rfc3339(stamp)?,
            })
        })
        .collect();
    rows.sort_by(|a, b| b.name.cmp(&a.name));
    rows
}

/// `20261207T220501Z` → `2026-12-07T22:05:01Z`.
fn stamp_rfc3339(stamp: &str) -> Option<String> {
    let b = stamp.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    if b.len() != 16 || !digits(0..8) || b[8] != b'T' || !digits(9..15) || b[15] != b'Z' {
        return None;
    }
    Some(format!(
        "{}-{}-{}T{}:{}:{}Z",
        &stamp[0..4],
        &stamp[4..6],
        &stamp[6..8],
        &stamp[9..11],
        &stamp[11..13],
        &stamp[13..15]
    ))
}
