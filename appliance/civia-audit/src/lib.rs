//! The box's audit trail: the automatic logs the EU AI Act (art. 12 and 26(6)) and the CNIL's
//! logging recommendation ask of a deployed AI system, kept at least six months.
//!
//! Owns: the audit directory (0700) and its files — monthly segments `YYYY-MM.jsonl` (0600
//! while open, 0400 once sealed) of one JSON [`Entry`] per line, hash-chained (`prev` is the
//! SHA-256 of the previous line) and numbered (`seq`); the seal `YYYY-MM.sig` of each closed
//! segment, signed with the device's Ed25519 key; the signed `checkpoint.json` that lets the
//! chain verify after old segments were purged. Also: crash recovery at open, group-committed
//! durable appends ([`AuditLog`]), verification that names the first bad entry ([`verify`]),
//! retention ([`RetentionPolicy`], [`AuditLog::purge`]), export as JSON lines or CSV
//! ([`export`]), user pseudonyms ([`Pseudonymizer`]), development key files ([`DeviceKey`],
//! [`secret_load_or_create`]) and the mirror of entries in the systemd journal, as structured
//! fields over journald's native protocol ([`JournalMirror`]; best effort, never blocking).
//! And the service the daemon shares between requests ([`Audit`]): appends fsynced on blocking
//! threads, a failure typed as [`AuditUnavailable`] so that the caller refuses its request,
//! callers named by pseudonym ([`Actor`]), verification and export off the async executor.
//!
//! Must never:
//! - store prompt or output text: entries hold metadata, token counts and SHA-256 digests
//!   only — there is no field for text, free-text fields are capped at
//!   [`MAX_FIELD_BYTES`] and `detail` at [`MAX_DETAIL_BYTES`];
//! - rewrite or delete a line, except whole sealed segments past retention (after a signed
//!   checkpoint) and, at open, a torn last line that a crash left half-written (reported);
//! - log secrets: keys, passwords, tokens or the pseudonym secret never enter an entry or a
//!   log message; users appear only as pseudonyms.
//!
//! Limits: the chain and seals show edits, deletions and reordering inside the trail, but not
//! the removal of the newest lines of the open segment; publish [`AuditLog::head`] elsewhere
//! to anchor it.

mod entry;
mod export;
mod fsutil;
mod journal;
mod keys;
mod pseudonym;
mod retention;
mod seal;
mod service;
mod time;
mod verify;
mod writer;

pub use ed25519_dalek::{SigningKey, VerifyingKey};
pub use entry::{
    is_event_name, line_hash, Entry, Event, GENESIS_HASH, MAX_DETAIL_BYTES, MAX_FIELD_BYTES,
};
pub use export::{export, ExportFormat, CSV_COLUMNS};
pub use journal::{JournalError, JournalMirror, DEFAULT_JOURNAL_SOCKET, JOURNAL_IDENTIFIER};
pub use keys::{secret_load_or_create, DeviceKey};
pub use pseudonym::Pseudonymizer;
pub use retention::{PurgeReport, RetentionPolicy};
pub use seal::{Checkpoint, SegmentSeal};

/// Takes the trail's writer lock in `dir`, the one civiad holds while it runs: another program
/// (the backup) learns that civiad is stopped and keeps it stopped while the returned file
/// stays open. [`AuditError::Busy`] while civiad runs.
pub fn lock_trail(dir: &std::path::Path) -> Result<std::fs::File, AuditError> {
    fsutil::lock_dir(dir)
}
pub use service::{Actor, Audit, AuditUnavailable, ServiceError};
pub use time::{format_rfc3339, parse_rfc3339, system_clock, Clock, Month};
pub use verify::{verify, TamperError, TamperKind, VerifyReport, VerifyWarning, WarningKind};
pub use writer::{AppendedEntry, AuditLog, OpenReport, TornLine};

use std::path::PathBuf;

/// Everything that can go wrong, with the file concerned where there is one.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// A file operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Another [`AuditLog`] (in this process or another) has the directory open.
    #[error("{}: the audit log is already open for writing elsewhere", dir.display())]
    Busy {
        /// The audit directory.
        dir: PathBuf,
    },
    /// An event (or a stored entry) breaks a field rule.
    #[error("invalid audit event: {0}")]
    InvalidEvent(String),
    /// `detail` is over [`MAX_DETAIL_BYTES`] serialized.
    #[error("audit detail is {size} bytes serialized; at most {MAX_DETAIL_BYTES} are accepted")]
    DetailTooLarge {
        /// Its serialized size.
        size: usize,
    },
    /// A retention policy is refused.
    #[error("{0}")]
    Retention(String),
    /// A file of the trail cannot be used as it is (found at open, purge or export).
    #[error("{}: corrupt audit file: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// [`verify`] found the trail altered; names the first bad entry.
    #[error(transparent)]
    Tampered(Box<TamperError>),
    /// A key file is unusable.
    #[error("key file {}: {reason}", path.display())]
    Key {
        /// The key file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The clock gives a time this crate cannot store.
    #[error("clock: {0}")]
    Clock(String),
    /// A caller-supplied argument is malformed.
    #[error("{0}")]
    InvalidArgument(String),
    /// An entry falls in a month whose segment is already sealed (the clock went back across
    /// a month boundary just after a crash).
    #[error("cannot append to {segment}: it is sealed (is the clock behind?)")]
    SegmentSealed {
        /// The sealed segment.
        segment: String,
    },
    /// The write of this entry's group failed; the entry is not in the trail.
    #[error("audit log write failed: {0}")]
    WriteFailed(String),
    /// A previous failure left the log unusable until it is reopened.
    #[error("audit log unusable until reopened: {0}")]
    Poisoned(String),
}

impl AuditError {
    /// A copy for the other appenders of a failed group (I/O errors are not `Clone`).
    pub(crate) fn duplicate(&self) -> AuditError {
        match self {
            AuditError::Poisoned(s) => AuditError::Poisoned(s.clone()),
            other => AuditError::WriteFailed(other.to_string()),
        }
    }

    /// The verification failure, if this is one.
    pub fn tamper(&self) -> Option<&TamperError> {
        match self {
            AuditError::Tampered(t) => Some(t),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn audit_log_is_send_sync() {
        fn check<T: Send + Sync>() {}
        check::<super::AuditLog>();
        check::<super::AuditError>();
    }
}
