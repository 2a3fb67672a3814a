//! The box's backup archive: its key, its creation from a stopped or a running box, its
//! verification and its restore onto a fresh one.
//!
//! Owns: the archive format (below), the backup key (an age X25519 identity generated here,
//! shown once; the box keeps only its public recipient, `backup/recipient` in the state
//! directory), [`create`], [`verify`] and [`restore`], and the notes they leave for civiad to
//! write into the audit trail at its next start ([`take_events`]); the consistent snapshot of
//! a running box ([`Snapshot::online`]: SQLite's online backup API, the audit trail pinned at
//! its head) and the running box's backups service ([`Backups`]: download or destination,
//! progress, retention, schedule, staleness, metrics, audit entries); the mairie's NAS as a
//! destination ([`smb`]: Samba's client, the NAS password kept encrypted, the firewall's
//! opening) and the escrow of TPM-sealed secrets ([`Escrow`]).
//!
//! Must never: write anything of a restore before the whole archive has been decrypted and
//! checked; leave a half-restored state directory (the restore is written beside it and
//! renamed into place); keep the backup key's secret on the box; follow a path out of the
//! state directory; run an offline command while civiad holds the state (the audit trail's
//! lock says); keep a snapshot's database copies on disk once they are opened; write an
//! archive into the state directory; put an escrowed secret anywhere but inside the
//! encrypted archive or where the restore's `place` says; print a secret (`Escrow`'s Debug
//! is redacted); pass the NAS password on a command line, in an environment or to disk
//! other than encrypted.
//!
//! Format `civia-backup/1`: one file, [age](https://age-encryption.org/v1) (X25519 recipient:
//! encrypted and authenticated by chunks, a truncation is detected) over a tar stream of
//! `civia-backup.json` (the [`Header`]: format, software version, date), then `state/<path>`
//! for every regular file of the state directory except what is rebuilt or belongs to the
//! machine (the models, named with their hashes instead, and the update state, both kept
//! from the target by a restore; spools, sockets, SQLite's shared-memory files and locks),
//! then, from a running box whose secrets are TPM-sealed, `escrow.json` (the [`Escrow`]: those
//! secrets in clear, their sealed files left out; a restore seals them again through its
//! `place`), then `manifest.json` (every file's size and SHA-256, the models, the escrowed
//! names). The
//! SQLite databases are copied with their write-ahead logs: the box is stopped, so they are
//! quiescent and SQLite replays the log when the restored box opens them.
//!
//! Why hand-written: the tar and age layers are the `tar` and `age` crates; what is ours is
//! the choice of files, the checks and the atomic placement.

mod service;
pub mod smb;

pub use service::{
    archive_prefix, list, next_daily, ArchiveInfo, Backups, By, Job, Outcome, Running, Settings,
    Status, Target, EXTENSION,
};

use age::secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

/// The backup key's secret half, as [`parse_key`] reads it.
pub use age::x25519::Identity;

/// The archive format this crate writes and reads.
pub const FORMAT: &str = "civia-backup/1";
/// Where the backup key's public recipient is kept, relative to the state directory.
pub const RECIPIENT_FILE: &str = "backup/recipient";
/// Backups and restores done while civiad was stopped, for civiad to write into the audit
/// trail at its next start ([`take_events`]), relative to the state directory.
pub const EVENTS_DIR: &str = "backup/events";
const HEADER: &str = "civia-backup.json";
const MANIFEST: &str = "manifest.json";
const ESCROW: &str = "escrow.json";
const STATE: &str = "state/";

/// What can go wrong; the CLI prints it as is.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("civiad is running on {0} (its audit trail is locked): stop it first")]
    Running(PathBuf),
    #[error("a backup key already exists ({0}); it was shown once and is not shown again")]
    KeyExists(PathBuf),
    #[error("no backup key on this box: create one with `civia backup key`")]
    NoKey,
    #[error("this is not a backup key (expected AGE-SECRET-KEY-1…)")]
    BadKey,
    #[error("this archive was not encrypted to this backup key")]
    WrongKey,
    #[error("the archive is damaged, truncated or was tampered with: {0}")]
    Damaged(String),
    #[error("the archive comes from Civia {archive}, newer than this software ({ours}): update the box first")]
    Newer { archive: String, ours: String },
    #[error("{0} is not empty: restore into an empty state directory, or pass --force")]
    NotEmpty(PathBuf),
    #[error("the state directory holds TPM-sealed secrets ({0}): only civiad, which has them unsealed, can escrow them; make the backup from the console (Sauvegardes) or the admin API")]
    Sealed(PathBuf),
    #[error("the archive holds TPM-sealed secrets in escrow: they can only be restored onto a box whose secrets are set up ([secrets] of the configuration)")]
    Escrowed,
    #[error("sealing the escrowed secrets under this box's TPM failed: {0}")]
    Reseal(String),
    #[error("the backup key's public half in {0} is unreadable: restore it from a copy, or remove it and create a new key")]
    BadRecipient(PathBuf),
    #[error("`{key}` ({path}) is outside the state directory: backups do not cover it yet")]
    Outside { key: &'static str, path: PathBuf },
    #[error(
        "an earlier restore was interrupted: {0} holds what was there before; move it away first"
    )]
    Interrupted(PathBuf),
    #[error("a backup is already being written; wait for it to finish")]
    Busy,
    #[error("no backup destination is configured (`[backup] destination` or `smb`)")]
    NoDestination,
    #[error("the NAS password is not set: give it in the console (Sauvegardes)")]
    NoSmbPassword,
    #[error("the NAS password kept on this box cannot be read (it was given on another box or for another share): give it again in the console")]
    SmbPasswordUnreadable,
    #[error("the NAS password must be 1 to 256 characters, without NUL")]
    BadSmbPassword,
    #[error(
        "not enough space in {place}: the archive needs about {needed} bytes, {free} are free"
    )]
    NoSpace {
        place: String,
        needed: u64,
        free: u64,
    },
    #[error("the backup stopped on an internal error: {0}")]
    Internal(String),
    #[error("the NAS share {share} refused to {step}: {message}")]
    Smb {
        share: String,
        step: &'static str,
        message: String,
    },
}

impl BackupError {
    /// One stable word for the case (an audit entry's `reason`, the API's `details`).
    pub fn reason(&self) -> &'static str {
        match self {
            BackupError::Io { .. } => "io",
            BackupError::Running(_) => "running",
            BackupError::KeyExists(_) => "key_exists",
            BackupError::NoKey => "no_key",
            BackupError::BadKey => "bad_key",
            BackupError::WrongKey => "wrong_key",
            BackupError::Damaged(_) => "damaged",
            BackupError::Newer { .. } => "newer",
            BackupError::NotEmpty(_) => "not_empty",
            BackupError::Sealed(_) => "sealed",
            BackupError::Escrowed => "escrowed",
            BackupError::Reseal(_) => "reseal",
            BackupError::BadRecipient(_) => "bad_recipient",
            BackupError::Outside { .. } => "outside",
            BackupError::Interrupted(_) => "interrupted",
            BackupError::Busy => "busy",
            BackupError::NoDestination => "no_destination",
            BackupError::NoSmbPassword => "no_smb_password",
            BackupError::SmbPasswordUnreadable => "smb_password_unreadable",
            BackupError::BadSmbPassword => "bad_smb_password",
            BackupError::Smb { .. } => "smb",
            BackupError::Internal(_) => "internal",
            BackupError::NoSpace { .. } => "no_space",
        }
    }
}

type Result<T> = std::result::Result<T, BackupError>;

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Who owns the state directory (civiad's user on a box): what the commands write there is
/// given to it, so that civiad can read it when the commands run as root.
fn owner_of(state_dir: &Path) -> Option<(u32, u32)> {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(state_dir).ok().map(|m| (m.uid(), m.gid()))
}

fn give(path: &Path, owner: Option<(u32, u32)>) -> Result<()> {
    match owner {
        Some((uid, gid)) => {
            std::os::unix::fs::chown(path, Some(uid), Some(gid)).map_err(io_err(path))
        }
        None => Ok(()),
    }
}

/// Creates `path` for writing, 0600, never replacing nor following anything already there.
fn open_new(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .open(path)
        .map_err(io_err(path))
}

/// Creates `path` ([`open_new`]) with `bytes`, synced.
fn write_new(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = open_new(path)?;
    f.write_all(bytes).map_err(io_err(path))?;
    f.sync_all().map_err(io_err(path))
}

/// Refuses when a directory the box keeps state in lies outside the state directory: an
/// archive of the state directory would silently miss it.
pub fn check_covered(state_dir: &Path, dirs: &[(&'static str, PathBuf)]) -> Result<()> {
    // A link inside the state directory points out of it: archives skip links.
    let linked = |d: &Path| fs::symlink_metadata(d).is_ok_and(|m| m.file_type().is_symlink());
    match dirs
        .iter()
        .find(|(_, d)| !d.starts_with(state_dir) || linked(d))
    {
        Some((key, path)) => Err(BackupError::Outside {
            key,
            path: path.clone(),
        }),
        None => Ok(()),
    }
}

/// The first entry: what the archive is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub format: String,
    /// The software version that wrote it.
    pub version: String,
    /// RFC 3339, UTC.
    pub created_at: String,
}

/// One file of the state directory in the archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
}

/// The last entry: every file and the models the box had (not in the archive).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub files: Vec<FileEntry>,
    /// `models/<id>/<version>` directories and the SHA-256 of their files, re-installed from
    /// their bundles after a restore.
    pub models: Vec<FileEntry>,
    /// The names of the TPM-sealed secrets escrowed in `escrow.json` (none: the box's secrets
    /// are files of the state, or there is no escrow).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub escrow: Vec<String>,
}

/// The box's TPM-sealed secrets in clear, for the archive (encrypted to the backup key like
/// everything in it): a restore seals them again under the new box's TPM ([`restore`]'s
/// `place`). Their sealed files (`<dir>/<name>.sealed`, useless on another TPM) are left out.
#[derive(Clone, Default)]
pub struct Escrow {
    /// The secrets' directory, relative to the state directory.
    pub dir: PathBuf,
    pub secrets: BTreeMap<String, zeroize::Zeroizing<Vec<u8>>>,
}

impl std::fmt::Debug for Escrow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&String> = self.secrets.keys().collect();
        write!(f, "Escrow({}, {names:?}, redacted)", self.dir.display())
    }
}

#[derive(Serialize, Deserialize)]
struct EscrowFile {
    dir: String,
    secrets: BTreeMap<String, String>,
}

impl Escrow {
    fn to_json(&self) -> zeroize::Zeroizing<Vec<u8>> {
        let file = EscrowFile {
            dir: self.dir.display().to_string(),
            secrets: self
                .secrets
                .iter()
                .map(|(k, v)| (k.clone(), hex::encode(v.as_slice())))
                .collect(),
        };
        let json = zeroize::Zeroizing::new(serde_json::to_vec(&file).unwrap_or_default());
        let EscrowFile { secrets, .. } = file;
        for (_, mut v) in secrets {
            zeroize::Zeroize::zeroize(&mut v);
        }
        json
    }

    fn from_json(bytes: &[u8]) -> Result<Escrow> {
        let bad = |why: &str| BackupError::Damaged(format!("escrow: {why}"));
        let file: EscrowFile = serde_json::from_slice(bytes).map_err(|e| bad(&e.to_string()))?;
        let dir = PathBuf::from(&file.dir);
        if dir.as_os_str().is_empty()
            || !dir.components().all(|c| matches!(c, Component::Normal(_)))
        {
            return Err(bad("its directory is not inside the state directory"));
        }
        let mut secrets = BTreeMap::new();
        for (name, value) in file.secrets {
            let plain = name.len() <= 64
                && !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            let bytes = hex::decode(&value).map_err(|_| bad("a secret is not hex"))?;
            if !plain || bytes.is_empty() || bytes.len() > 4096 || secrets.len() >= 16 {
                return Err(bad("unexpected secret"));
            }
            secrets.insert(name, zeroize::Zeroizing::new(bytes));
        }
        Ok(Escrow { dir, secrets })
    }

    /// Whether `rel` is one of the sealed files this escrow stands for.
    fn covers(&self, rel: &Path) -> bool {
        rel.parent() == Some(self.dir.as_path())
            && rel
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".sealed"))
                .is_some_and(|name| self.secrets.contains_key(name))
    }
}

/// What [`create`], [`verify`] or [`restore`] saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub header: Header,
    pub manifest: Manifest,
}

impl Summary {
    /// Total bytes of the state files.
    pub fn bytes(&self) -> u64 {
        self.manifest.files.iter().map(|f| f.bytes).sum()
    }
}

// ---- the key ----

/// Creates the backup key: keeps its public recipient in the state directory and returns
/// the secret (`AGE-SECRET-KEY-1…`), to be shown once. Refuses when one exists.
pub fn create_key(state_dir: &Path) -> Result<String> {
    let path = state_dir.join(RECIPIENT_FILE);
    if path.exists() {
        return Err(BackupError::KeyExists(path));
    }
    let dir = state_dir.join("backup");
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(io_err(&dir))?;
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    // create_new: of two commands at once, one gets the key, the other KeyExists.
    write_new(&path, format!("{recipient}\n").as_bytes()).map_err(|e| match e {
        BackupError::Io { source, .. } if source.kind() == io::ErrorKind::AlreadyExists => {
            BackupError::KeyExists(path.clone())
        }
        other => other,
    })?;
    let owner = owner_of(state_dir);
    give(&dir, owner)?;
    give(&path, owner)?;
    Ok(identity.to_string().expose_secret().to_owned())
}

/// The box's backup recipient.
pub fn recipient(state_dir: &Path) -> Result<age::x25519::Recipient> {
    let path = state_dir.join(RECIPIENT_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(BackupError::NoKey),
        Err(e) => return Err(io_err(&path)(e)),
    };
    age::x25519::Recipient::from_str(text.trim()).map_err(|_| BackupError::BadRecipient(path))
}

/// Reads a backup key from its text (comment lines, as age writes them, are skipped).
pub fn parse_key(text: &str) -> Result<age::x25519::Identity> {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .and_then(|l| age::x25519::Identity::from_str(l).ok())
        .ok_or(BackupError::BadKey)
}

// ---- the audit events ----

/// A backup or a restore, as the audit trail records it (civiad writes it at its next start:
/// the audit trail's keys are civiad's, and a restored trail goes on from its restored head).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupEvent {
    /// `backup.created` or `backup.restored`.
    pub event: String,
    /// When it was done (RFC 3339, UTC).
    pub at: String,
    /// The archive's header: the version that wrote it and when.
    pub archive_version: String,
    pub archive_created_at: String,
    /// The state files and their total size.
    pub files: usize,
    pub bytes: u64,
}

impl BackupEvent {
    /// The event `event` (`backup.created`, `backup.restored`) of the archive `s`, now.
    pub fn of(event: &str, s: &Summary) -> BackupEvent {
        BackupEvent {
            event: event.into(),
            at: civia_base::time::rfc3339(civia_base::time::now_unix()),
            archive_version: s.header.version.clone(),
            archive_created_at: s.header.created_at.clone(),
            files: s.manifest.files.len(),
            bytes: s.bytes(),
        }
    }

    /// The audit entry's `detail`: this event as a JSON object.
    pub fn detail(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

fn note(state_dir: &Path, event: &str, s: &Summary) -> Result<()> {
    let dir = state_dir.join(EVENTS_DIR);
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(io_err(&dir))?;
    let now = civia_base::time::now_unix();
    let ev = BackupEvent::of(event, s);
    let path = dir.join(format!("{now}-{}-{event}.json", std::process::id()));
    let body = serde_json::to_vec(&ev).unwrap_or_default();
    civia_base::fs::write_atomic(&path, &body, 0o600).map_err(|e| BackupError::Io {
        path: path.clone(),
        source: io::Error::other(e.to_string()),
    })?;
    let owner = owner_of(state_dir);
    give(&state_dir.join("backup"), owner)?;
    give(&dir, owner)?;
    give(&path, owner)
}

/// The backups and restores not yet in the audit trail, oldest first, with their files:
/// remove each file once its event is written. Unreadable notes are skipped (and logged).
pub fn take_events(state_dir: &Path) -> Vec<(PathBuf, BackupEvent)> {
    let dir = state_dir.join(EVENTS_DIR);
    let Ok(entries) = fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out: Vec<(PathBuf, BackupEvent)> = entries
        .flatten()
        .filter_map(|e| {
            let path = e.path();
            let ev = fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice::<BackupEvent>(&b).ok())
                .filter(|ev| ev.event == "backup.created" || ev.event == "backup.restored");
            if ev.is_none() {
                log::warn!("backup: unreadable event note {}", path.display());
            }
            ev.map(|ev| (path, ev))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

// ---- creating ----

/// What belongs to the machine, not to the commune's data: the installed models (named in
/// the manifest, re-installed from their bundles) and the update state (A/B slots, the
/// anti-downgrade floor, the trust roots). Never archived; a restore over a used state
/// directory keeps the target's own.
const KEPT_BY_THE_BOX: [&str; 2] = ["models", "update"];

/// Whether a path of the state directory (relative) stays out of the archive.
fn excluded(rel: &Path) -> bool {
    let s = rel.to_string_lossy();
    let first = rel.components().next();
    matches!(first, Some(Component::Normal(c)) if c == "spool" || KEPT_BY_THE_BOX.iter().any(|k| c == *k))
        || s.starts_with(EVENTS_DIR)
        || s.starts_with(STAGING_DIR)
        || s.ends_with("-shm")
        || s.ends_with(".lock")
        || s.ends_with(".partial")
        || rel
            .file_name()
            .is_some_and(|n| civia_base::fs::is_temporary(&n.to_string_lossy()))
}

/// The regular files under `dir`, relative, sorted; sockets and links skipped.
fn files_under(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .map_err(io_err(dir))?
        .collect::<io::Result<_>>()
        .map_err(io_err(dir))?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let kind = e.file_type().map_err(io_err(&path))?;
        let rel = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
        if kind.is_dir() {
            files_under(root, &path, out)?;
        } else if kind.is_file() && !excluded(&rel) {
            out.push(rel);
        }
    }
    Ok(())
}

/// The models' files and hashes (`models/<id>/<version>/…`), for the manifest.
fn models(state_dir: &Path) -> Result<Vec<FileEntry>> {
    let root = state_dir.join("models");
    let mut out = Vec::new();
    if !root.is_dir() {
        return Ok(out);
    }
    let mut all = Vec::new();
    files_under(&root, &root, &mut all)?;
    for rel in all {
        let path = root.join(&rel);
        let (bytes, sha256) = hash_file(&path)?;
        out.push(FileEntry {
            path: format!("models/{}", rel.display()),
            bytes,
            sha256,
        });
    }
    Ok(out)
}

fn hash_file(path: &Path) -> Result<(u64, String)> {
    let mut f = File::open(path).map_err(io_err(path))?;
    let mut h = Sha256::new();
    let n = io::copy(&mut f, &mut h).map_err(io_err(path))?;
    Ok((n, hex::encode(h.finalize())))
}

/// Takes the audit trail's lock (the one civiad holds while it runs), so that the state is
/// quiescent for as long as the returned file is open.
fn lock_state(state_dir: &Path) -> Result<Option<File>> {
    let audit = state_dir.join("audit");
    if !audit.is_dir() {
        return Ok(None);
    }
    match civia_audit::lock_trail(&audit) {
        Ok(f) => Ok(Some(f)),
        Err(civia_audit::AuditError::Busy { .. }) => {
            Err(BackupError::Running(state_dir.to_path_buf()))
        }
        Err(e) => Err(BackupError::Io {
            path: audit,
            source: io::Error::other(e.to_string()),
        }),
    }
}

fn append(
    tar: &mut tar::Builder<impl Write>,
    name: &str,
    bytes: u64,
    data: impl Read,
) -> io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_size(bytes);
    h.set_mode(0o600);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mtime(0);
    tar.append_data(&mut h, name, data)
}

/// Refuses a state whose secrets are sealed by this machine's TPM: their escrow is not built.
fn refuse_sealed(state_dir: &Path) -> Result<()> {
    let secrets = state_dir.join("secrets");
    if fs::read_dir(&secrets).is_ok_and(|mut d| {
        d.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".sealed")))
    }) {
        return Err(BackupError::Sealed(secrets));
    }
    Ok(())
}

/// One file going into the archive: its path in the state directory and the bytes to read,
/// opened when the snapshot was taken.
struct Source {
    rel: PathBuf,
    file: File,
    len: u64,
}

/// Opens a file listed a moment ago; None when it is gone meanwhile (a spooled upload
/// indexed and removed, a file replaced by rename): a running box is not frozen.
fn open_live(state_dir: &Path, rel: PathBuf) -> Result<Option<Source>> {
    let path = state_dir.join(&rel);
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(&path)(e)),
    };
    let len = file.metadata().map_err(io_err(&path))?.len();
    Ok(Some(Source { rel, file, len }))
}

/// How far the writing of an archive got.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Progress {
    pub files_done: usize,
    pub files_total: usize,
    pub bytes_done: u64,
    pub bytes_total: u64,
}

/// The state of a box at one moment, every file opened, ready to be written as an archive
/// ([`Snapshot::write_file`], [`Snapshot::write_to`]). Taken from a stopped box by [`create`],
/// from a running one by [`Snapshot::online`].
pub struct Snapshot {
    header: Header,
    models: Vec<FileEntry>,
    sources: Vec<Source>,
    escrow: Option<Escrow>,
}

/// Where an online snapshot keeps its copies of the SQLite databases while it is written,
/// relative to the state directory (emptied at every snapshot, never archived).
pub const STAGING_DIR: &str = "backup/snapshot";

impl Snapshot {
    fn header(version: &str) -> Header {
        Header {
            format: FORMAT.into(),
            version: version.into(),
            created_at: civia_base::time::rfc3339(civia_base::time::now_unix()),
        }
    }

    /// A stopped box's state: every file as it is (the caller holds the audit lock).
    fn offline(state_dir: &Path, version: &str) -> Result<Snapshot> {
        let mut files = Vec::new();
        files_under(state_dir, state_dir, &mut files)?;
        let mut sources = Vec::new();
        for rel in files {
            sources.extend(open_live(state_dir, rel)?);
        }
        Ok(Snapshot {
            header: Self::header(version),
            models: models(state_dir)?,
            sources,
            escrow: None,
        })
    }

    /// A running box's state, consistent without stopping it:
    /// - the directories another component appends to come from `pinned` only (the audit
    ///   trail, pinned by its writer at its head: `(directory relative to the state
    ///   directory, its files)`); the caller pins them first, so that everything below is at
    ///   least as new as the trail's head;
    /// - every SQLite database (`*.db`) is copied with SQLite's online backup API, in one
    ///   step under one read transaction (writers go on meanwhile: the databases are in WAL
    ///   mode), into [`STAGING_DIR`]; the copy is opened then unlinked, so nothing of it
    ///   stays on disk once the snapshot is dropped, even after a crash's next snapshot;
    /// - every other file is opened as it is (the box replaces them atomically);
    /// - TPM-sealed secrets go in clear in `escrow` (their sealed files stay out); without
    ///   an escrow, a state holding sealed secrets is refused.
    pub fn online(
        state_dir: &Path,
        version: &str,
        pinned: Vec<(PathBuf, Vec<civia_base::fs::PinnedFile>)>,
        escrow: Option<Escrow>,
    ) -> Result<Snapshot> {
        if escrow.is_none() {
            refuse_sealed(state_dir)?;
        }
        clear_staging(state_dir)?;
        let staging = state_dir.join(STAGING_DIR);
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&staging)
            .map_err(io_err(&staging))?;
        let mut sources = Vec::new();
        for (dir, files) in &pinned {
            if !dir.components().all(|c| matches!(c, Component::Normal(_))) {
                return Err(BackupError::Damaged(format!(
                    "pinned directory {} is not inside the state directory",
                    dir.display()
                )));
            }
            for f in files {
                sources.push(Source {
                    rel: dir.join(&f.name),
                    file: f.file.try_clone().map_err(io_err(&state_dir.join(dir)))?,
                    len: f.len,
                });
            }
        }
        let mut files = Vec::new();
        files_under(state_dir, state_dir, &mut files)?;
        let databases: Vec<&PathBuf> = files
            .iter()
            .filter(|rel| rel.extension().is_some_and(|e| e == "db"))
            .collect();
        let of_a_database = |rel: &Path| {
            let s = rel.to_string_lossy();
            databases.iter().any(|db| {
                let db = db.to_string_lossy();
                s == format!("{db}-wal") || s == format!("{db}-journal")
            })
        };
        for (n, rel) in files.iter().enumerate() {
            if pinned.iter().any(|(dir, _)| rel.starts_with(dir))
                || of_a_database(rel)
                || escrow.as_ref().is_some_and(|e| e.covers(rel))
            {
                continue;
            }
            if databases.contains(&rel) {
                let copy = staging.join(format!("{n}.db"));
                let opened = sqlite_snapshot(&state_dir.join(rel), &copy).and_then(|()| {
                    let file = File::open(&copy).map_err(io_err(&copy))?;
                    let len = file.metadata().map_err(io_err(&copy))?.len();
                    Ok((file, len))
                });
                // Never left on disk: it may hold what an agent erases later.
                let removed = fs::remove_file(&copy).map_err(io_err(&copy));
                let (file, len) = opened?;
                removed?;
                sources.push(Source {
                    rel: rel.clone(),
                    file,
                    len,
                });
            } else {
                sources.extend(open_live(state_dir, rel.clone())?);
            }
        }
        sources.sort_by(|a, b| a.rel.cmp(&b.rel));
        Ok(Snapshot {
            header: Self::header(version),
            models: models(state_dir)?,
            sources,
            escrow,
        })
    }

    /// About how many bytes its archive takes: the files, a tar header and padding each,
    /// the header and manifest, age's 16 bytes a 64 KiB chunk.
    pub fn archive_size(&self) -> u64 {
        let files: u64 = self
            .sources
            .iter()
            .map(|s| s.len.div_ceil(512) * 512 + 1024)
            .sum();
        let with_tar =
            files + (self.sources.len() as u64 + self.models.len() as u64) * 200 + 64 * 1024;
        with_tar + with_tar / 4096 + 1024
    }

    /// What writing it will go through: files and bytes.
    pub fn progress(&self) -> Progress {
        Progress {
            files_total: self.sources.len(),
            bytes_total: self.sources.iter().map(|s| s.len).sum(),
            ..Progress::default()
        }
    }

    /// Writes the archive, encrypted to `recipient`, into `sink` (a file, or a download's
    /// body: it is streamed, never held whole); `progress` hears about every MiB and every
    /// file. An error of `sink` is reported as one of `name`.
    pub fn write_to<W: Write>(
        self,
        recipient: &age::x25519::Recipient,
        sink: W,
        name: &Path,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<(Summary, W)> {
        let encryptor =
            age::Encryptor::with_recipients(std::iter::once(recipient as &dyn age::Recipient))
                .map_err(|e| BackupError::Damaged(e.to_string()))?;
        let sink = encryptor.wrap_output(sink).map_err(io_err(name))?;
        let mut tar = tar::Builder::new(sink);
        let head = serde_json::to_vec(&self.header).unwrap_or_default();
        append(&mut tar, HEADER, head.len() as u64, &head[..]).map_err(io_err(name))?;
        let mut state = self.progress();
        let mut manifest = Manifest {
            models: self.models,
            ..Manifest::default()
        };
        for source in self.sources {
            let path = source.rel;
            let mut hashing = HashingReader::new(source.file.take(source.len));
            let mut counting = CountingReader {
                inner: &mut hashing,
                done: state.bytes_done,
                reported: state.bytes_done,
                report: &mut |bytes| {
                    progress(Progress {
                        bytes_done: bytes,
                        ..state
                    })
                },
            };
            append(
                &mut tar,
                &format!("{STATE}{}", path.display()),
                source.len,
                &mut counting,
            )
            .map_err(io_err(&path))?;
            // `append` pads what it could not read: a file that shrank since it was opened
            // would desynchronise the tar stream, so it is an error here.
            if counting.done - state.bytes_done != source.len {
                return Err(BackupError::Damaged(format!(
                    "{} changed while it was being read",
                    path.display()
                )));
            }
            state.bytes_done = counting.done;
            state.files_done += 1;
            progress(state);
            manifest.files.push(FileEntry {
                path: path.display().to_string(),
                bytes: source.len,
                sha256: hashing.hex(),
            });
        }
        if let Some(escrow) = &self.escrow {
            let body = escrow.to_json();
            append(&mut tar, ESCROW, body.len() as u64, &body[..]).map_err(io_err(name))?;
            manifest.escrow = escrow.secrets.keys().cloned().collect();
        }
        let body = serde_json::to_vec(&manifest).unwrap_or_default();
        append(&mut tar, MANIFEST, body.len() as u64, &body[..]).map_err(io_err(name))?;
        let sink = tar.into_inner().map_err(io_err(name))?;
        let mut inner = sink.finish().map_err(io_err(name))?;
        inner.flush().map_err(io_err(name))?;
        Ok((
            Summary {
                header: self.header,
                manifest,
            },
            inner,
        ))
    }

    /// Writes the archive to `output`: as `output.partial` (created new, never following
    /// what is there), synced, then renamed, so that an interrupted backup leaves no archive.
    pub fn write_file(
        self,
        recipient: &age::x25519::Recipient,
        output: &Path,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Summary> {
        let partial = PathBuf::from(format!("{}.partial", output.display()));
        // What an interrupted backup left (or a link someone planted): removed, never followed.
        remove_if_present(&partial, |p| fs::remove_file(p))?;
        let out = open_new(&partial)?;
        let result = self
            .write_to(recipient, BufWriter::new(&out), &partial, progress)
            .and_then(|(summary, buffered)| {
                drop(buffered);
                out.sync_all().map_err(io_err(&partial))?;
                Ok(summary)
            });
        let summary = match result {
            Ok(s) => s,
            Err(e) => {
                let _ = fs::remove_file(&partial);
                return Err(e);
            }
        };
        fs::rename(&partial, output).map_err(io_err(output))?;
        if let Some(parent) = output.parent().filter(|p| !p.as_os_str().is_empty()) {
            let _ = civia_base::fs::sync_dir(parent);
        }
        Ok(summary)
    }
}

/// Removes what an online snapshot interrupted by a crash left in [`STAGING_DIR`] (copies
/// of databases: they may hold what agents erased since).
pub fn clear_staging(state_dir: &Path) -> Result<()> {
    remove_if_present(&state_dir.join(STAGING_DIR), |p| fs::remove_dir_all(p))
}

/// `remove(path)`, where a path already gone is no error.
fn remove_if_present(path: &Path, remove: impl FnOnce(&Path) -> io::Result<()>) -> Result<()> {
    match remove(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err(path)(e)),
        _ => Ok(()),
    }
}

/// Copies the SQLite database `src` into the new file `dst` with SQLite's online backup API,
/// in one step: one read transaction, so the copy is the database at one commit.
fn sqlite_snapshot(src: &Path, dst: &Path) -> Result<()> {
    use rusqlite::backup::{Backup, StepResult};
    use rusqlite::{Connection, OpenFlags};
    let sqlite = |e: rusqlite::Error| BackupError::Io {
        path: src.to_path_buf(),
        source: io::Error::other(e.to_string()),
    };
    // Created 0600 before SQLite opens it.
    drop(open_new(dst)?);
    let from = Connection::open_with_flags(
        src,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite)?;
    from.busy_timeout(std::time::Duration::from_secs(30))
        .map_err(sqlite)?;
    let mut to = Connection::open(dst).map_err(sqlite)?;
    {
        let backup = Backup::new(&from, &mut to).map_err(sqlite)?;
        // -1: every page in one step (rusqlite's run_to_completion takes positive steps
        // only). Busy or Locked: a writer holds the database for a moment; try again.
        let mut tries = 0;
        loop {
            match backup.step(-1).map_err(sqlite)? {
                StepResult::Done => break,
                StepResult::More | StepResult::Busy | StepResult::Locked if tries < 600 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                _ => {
                    return Err(BackupError::Io {
                        path: src.to_path_buf(),
                        source: io::Error::other("the database stayed busy for 30 seconds"),
                    })
                }
            }
        }
    }
    to.close().map_err(|(_, e)| sqlite(e))?;
    Ok(())
}

/// Counts what goes through it and reports every MiB.
struct CountingReader<'a, R> {
    inner: R,
    done: u64,
    reported: u64,
    report: &'a mut dyn FnMut(u64),
}

impl<R: Read> Read for CountingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        if self.done - self.reported >= 1 << 20 {
            self.reported = self.done;
            (self.report)(self.done);
        }
        Ok(n)
    }
}

/// Writes the archive of a stopped box's `state_dir` to `output` (written as
/// `output.partial`, renamed when complete: an interrupted backup leaves no archive).
pub fn create(state_dir: &Path, output: &Path, version: &str) -> Result<Summary> {
    let _lock = lock_state(state_dir)?;
    let recipient = recipient(state_dir)?;
    refuse_sealed(state_dir)?;
    let summary =
        Snapshot::offline(state_dir, version)?.write_file(&recipient, output, &mut |_| {})?;
    note(state_dir, "backup.created", &summary)?;
    Ok(summary)
}

/// A reader that hashes what goes through it.
struct HashingReader<R> {
    inner: R,
    hash: Sha256,
}

impl<R: Read> HashingReader<R> {
    fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hash: Sha256::new(),
        }
    }

    fn hex(&self) -> String {
        hex::encode(self.hash.clone().finalize())
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

// ---- reading ----

/// `a.b.c` newer than `b.b.c`, numerically (pre-release suffixes ignored).
fn newer(a: &str, b: &str) -> bool {
    let parts = |v: &str| -> Vec<u64> {
        v.split(['-', '+'])
            .next()
            .unwrap_or("")
            .split('.')
            .map(|p| p.parse().unwrap_or(0))
            .collect()
    };
    parts(a) > parts(b)
}

/// A state file's path inside the archive, checked: relative, no `..`, no root.
fn safe_path(name: &str) -> Option<PathBuf> {
    let rel = Path::new(name.strip_prefix(STATE)?);
    let ok = !rel.as_os_str().is_empty()
        && rel.components().all(|c| matches!(c, Component::Normal(_)))
        && !excluded(rel);
    // One spelling per file (`a//b` and `a/./b` are `a/b`).
    ok.then(|| rel.components().collect())
}

/// Reads the whole archive; `sink` gets each state file (its relative path and a reader of
/// its bytes) and must read it all. Checks the header first, every file against the
/// manifest at the end, and age's authentication throughout.
fn read_archive(
    archive: &Path,
    identity: &age::x25519::Identity,
    ours: &str,
    sink: impl FnMut(&Path, &mut dyn Read) -> Result<()>,
) -> Result<Summary> {
    read_archive_escrow(archive, identity, ours, sink).map(|(s, _)| s)
}

/// [`read_archive`], with the archive's escrow.
fn read_archive_escrow(
    archive: &Path,
    identity: &age::x25519::Identity,
    ours: &str,
    mut sink: impl FnMut(&Path, &mut dyn Read) -> Result<()>,
) -> Result<(Summary, Option<Escrow>)> {
    let file = File::open(archive).map_err(io_err(archive))?;
    let damaged = |e: &dyn std::fmt::Display| BackupError::Damaged(e.to_string());
    let decryptor = age::Decryptor::new(BufReader::new(file)).map_err(|e| damaged(&e))?;
    let reader = decryptor
        .decrypt(std::iter::once(identity as &dyn age::Identity))
        .map_err(|e| match e {
            age::DecryptError::NoMatchingKeys => BackupError::WrongKey,
            other => damaged(&other),
        })?;
    let mut tar = tar::Archive::new(reader);
    let mut header: Option<Header> = None;
    let mut manifest: Option<Manifest> = None;
    let mut escrow: Option<Escrow> = None;
    let mut seen: BTreeMap<String, (u64, String)> = BTreeMap::new();
    for entry in tar.entries().map_err(|e| damaged(&e))? {
        let mut entry = entry.map_err(|e| damaged(&e))?;
        if manifest.is_some() {
            return Err(BackupError::Damaged("an entry after the manifest".into()));
        }
        if entry.header().entry_type() != tar::EntryType::Regular {
            return Err(BackupError::Damaged("an entry that is not a file".into()));
        }
        let name = entry
            .path()
            .map_err(|e| damaged(&e))?
            .to_string_lossy()
            .into_owned();
        let small = |entry: &mut tar::Entry<_>| -> Result<Vec<u8>> {
            let mut v = Vec::new();
            entry
                .take(16 * 1024 * 1024)
                .read_to_end(&mut v)
                .map_err(|e| damaged(&e))?;
            Ok(v)
        };
        match (&header, name.as_str()) {
            (None, HEADER) => {
                let h: Header =
                    serde_json::from_slice(&small(&mut entry)?).map_err(|e| damaged(&e))?;
                if h.format != FORMAT {
                    return Err(BackupError::Damaged(format!(
                        "unknown format {:?}",
                        h.format
                    )));
                }
                if newer(&h.version, ours) {
                    return Err(BackupError::Newer {
                        archive: h.version,
                        ours: ours.into(),
                    });
                }
                header = Some(h);
            }
            (None, _) => return Err(BackupError::Damaged("no header first".into())),
            (Some(_), MANIFEST) => {
                manifest =
                    Some(serde_json::from_slice(&small(&mut entry)?).map_err(|e| damaged(&e))?);
            }
            (Some(_), ESCROW) if escrow.is_none() => {
                let bytes = zeroize::Zeroizing::new(small(&mut entry)?);
                escrow = Some(Escrow::from_json(&bytes)?);
            }
            (Some(_), _) => {
                let rel = safe_path(&name)
                    .ok_or_else(|| BackupError::Damaged(format!("unexpected entry {name:?}")))?;
                let key = rel.display().to_string();
                if seen.contains_key(&key) {
                    return Err(BackupError::Damaged(format!("{key} twice")));
                }
                let size = entry.header().size().map_err(|e| damaged(&e))?;
                let hex = {
                    let mut hashing = HashingReader::new(&mut entry);
                    sink(&rel, &mut hashing)?;
                    // What the sink left unread still counts (and is still authenticated).
                    io::copy(&mut hashing, &mut io::sink()).map_err(|e| damaged(&e))?;
                    hashing.hex()
                };
                seen.insert(key, (size, hex));
            }
        }
    }
    // The tar's end is read; age checks its final chunk only when read to the end.
    let mut rest = tar.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(|e| damaged(&e))?;
    let header = header.ok_or_else(|| BackupError::Damaged("empty archive".into()))?;
    let manifest = manifest.ok_or_else(|| BackupError::Damaged("no manifest".into()))?;
    let listed: BTreeMap<String, (u64, String)> = manifest
        .files
        .iter()
        .map(|f| (f.path.clone(), (f.bytes, f.sha256.clone())))
        .collect();
    if listed != seen {
        return Err(BackupError::Damaged(
            "the files differ from the manifest".into(),
        ));
    }
    let escrowed: Vec<String> = escrow
        .as_ref()
        .map(|e| e.secrets.keys().cloned().collect())
        .unwrap_or_default();
    if escrowed != manifest.escrow {
        return Err(BackupError::Damaged(
            "the escrowed secrets differ from the manifest".into(),
        ));
    }
    Ok((Summary { header, manifest }, escrow))
}

/// Decrypts and checks the whole archive, writing nothing.
pub fn verify(archive: &Path, identity: &age::x25519::Identity, ours: &str) -> Result<Summary> {
    read_archive(archive, identity, ours, |_, r| {
        io::copy(r, &mut io::sink())
            .map(|_| ())
            .map_err(|e| BackupError::Damaged(e.to_string()))
    })
}

fn empty_or_absent(dir: &Path) -> Result<bool> {
    match fs::read_dir(dir) {
        Ok(mut d) => Ok(d.next().is_none()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(io_err(dir)(e)),
    }
}

/// How a restore puts an escrowed secret on this box: `(name, secret)` → the file to write
/// (relative to the state directory) and its bytes — sealed by this box's TPM, or a plain
/// file on a box without one. Called before the former state is replaced (its own sealed
/// files can serve as the model of the policy).
pub type PlaceSecret<'a> = &'a dyn Fn(&str, &[u8]) -> Result<(PathBuf, Vec<u8>)>;

/// Restores the archive into `state_dir`: checks it whole first ([`verify`]), then writes
/// it beside `state_dir` and renames it into place; `state_dir` must be empty or absent
/// unless `force` (then the old one is removed once the new one is in place). An archive
/// with escrowed secrets needs `place` (refused without it, before anything is written).
pub fn restore(
    archive: &Path,
    identity: &age::x25519::Identity,
    state_dir: &Path,
    force: bool,
    ours: &str,
    place: Option<PlaceSecret<'_>>,
) -> Result<Summary> {
    if !force && !empty_or_absent(state_dir)? {
        return Err(BackupError::NotEmpty(state_dir.to_path_buf()));
    }
    let name = state_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "state".into());
    let parent = state_dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let old = parent.join(format!(".{name}.replaced"));
    if fs::symlink_metadata(&old).is_ok() {
        return Err(BackupError::Interrupted(old));
    }
    // Held until the new state is in place: civiad cannot start on it meanwhile.
    let _lock = if state_dir.is_dir() {
        lock_state(state_dir)?
    } else {
        None
    };
    let summary = verify(archive, identity, ours)?;
    if !summary.manifest.escrow.is_empty() && place.is_none() {
        return Err(BackupError::Escrowed);
    }
    let owner = owner_of(state_dir);
    let staging = parent.join(format!(".{name}.restoring"));
    if fs::symlink_metadata(&staging).is_ok() {
        fs::remove_dir_all(&staging).map_err(io_err(&staging))?;
    }
    let written = (|| -> Result<Summary> {
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&staging)
            .map_err(io_err(&staging))?;
        give(&staging, owner)?;
        // Read again (the archive is checked as it is written out: a file changed between
        // the two reads fails here, before anything is in place).
        let (summary, escrow) = read_archive_escrow(archive, identity, ours, |rel, r| {
            let path = staging.join(rel);
            let mut dir = staging.clone();
            for part in rel.parent().into_iter().flat_map(Path::components) {
                dir.push(part);
                match fs::DirBuilder::new().mode(0o700).create(&dir) {
                    Ok(()) => give(&dir, owner)?,
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(io_err(&dir)(e)),
                }
            }
            let mut f = open_new(&path)?;
            io::copy(r, &mut f).map_err(|e| BackupError::Damaged(e.to_string()))?;
            f.sync_all().map_err(io_err(&path))?;
            give(&path, owner)
        })?;
        if let (Some(escrow), Some(place)) = (escrow, place) {
            for (name, secret) in &escrow.secrets {
                let (rel, bytes) = place(name, secret)?;
                if !rel.components().all(|c| matches!(c, Component::Normal(_))) {
                    return Err(BackupError::Outside {
                        key: "secrets.dir",
                        path: rel,
                    });
                }
                let path = staging.join(&rel);
                if let Some(dir) = path.parent() {
                    fs::DirBuilder::new()
                        .recursive(true)
                        .mode(0o700)
                        .create(dir)
                        .map_err(io_err(dir))?;
                    give(dir, owner)?;
                }
                // A plain file of the archive with the same name would be stale.
                remove_if_present(&path, |p| fs::remove_file(p))?;
                write_new(&path, &bytes)?;
                give(&path, owner)?;
            }
        }
        sync_tree(&staging)?;
        Ok(summary)
    })();
    let summary = match written {
        Ok(s) => s,
        Err(e) => {
            let _ = fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    // The machine's own parts of a used state stay with it.
    let mut moved = Vec::new();
    for kept in KEPT_BY_THE_BOX {
        let from = state_dir.join(kept);
        if fs::symlink_metadata(&from).is_ok() {
            if let Err(e) = fs::rename(&from, staging.join(kept)) {
                for k in moved {
                    let _ = fs::rename(staging.join(k), state_dir.join(k));
                }
                let _ = fs::remove_dir_all(&staging);
                return Err(io_err(&from)(e));
            }
            moved.push(kept);
        }
    }
    if state_dir.exists() {
        fs::rename(state_dir, &old).map_err(io_err(state_dir))?;
    }
    if let Err(e) = fs::rename(&staging, state_dir) {
        // Put the former state back as it was.
        if old.exists() {
            let _ = fs::rename(&old, state_dir);
            for k in moved {
                let _ = fs::rename(staging.join(k), state_dir.join(k));
            }
        }
        return Err(io_err(state_dir)(e));
    }
    let _ = civia_base::fs::sync_dir(parent);
    if old.exists() {
        fs::remove_dir_all(&old).map_err(io_err(&old))?;
    }
    note(state_dir, "backup.restored", &summary)?;
    Ok(summary)
}

/// fsyncs every directory under `dir` (the files were synced as written).
fn sync_tree(dir: &Path) -> Result<()> {
    for e in fs::read_dir(dir).map_err(io_err(dir))? {
        let e = e.map_err(io_err(dir))?;
        if e.file_type().map_err(io_err(dir))?.is_dir() {
            sync_tree(&e.path())?;
        }
    }
    civia_base::fs::sync_dir(dir).map_err(|e| BackupError::Io {
        path: dir.to_path_buf(),
        source: io::Error::other(e.to_string()),
    })
}

#[cfg(test)]
mod tests;
