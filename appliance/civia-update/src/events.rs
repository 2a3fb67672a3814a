//! What the agent reports. `civiad` connects an [`Observer`] to its audit log (every
//! [`AuditEvent`]) and to the admin API's progress stream ([`Progress`]).

use std::sync::Mutex;

use civia_bundle_format::{BundleKind, Version};
use serde::Serialize;

/// Where a bundle came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// A file on local storage (USB stick).
    Path(String),
    /// A stream (admin API upload).
    Stream,
}

/// Events for the audit log. Each refusal emits exactly one [`AuditEvent::Refused`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum AuditEvent {
    /// A bundle was refused before anything was written. `code` is stable
    /// ([`crate::UpdateError::code`]); `version` is the claimed version when it could be read.
    Refused {
        kind: BundleKind,
        source: Source,
        code: String,
        message: String,
        version: Option<Version>,
    },
    /// Verification passed, writing starts.
    InstallStarted {
        kind: BundleKind,
        version: Version,
        target: String,
    },
    /// Writing failed after verification (I/O, read-back mismatch, interruption): the target
    /// slot is marked unusable; the active one is untouched.
    InstallFailed {
        kind: BundleKind,
        version: Version,
        code: String,
        message: String,
    },
    /// A system bundle is on the inactive slot with a boot counter; reboot to try it.
    SystemInstalled {
        version: Version,
        slot: String,
        tries: u32,
    },
    /// The trial boot passed its health check: slot blessed, floor raised.
    SystemBlessed {
        version: Version,
        slot: String,
        floor: Version,
    },
    /// The health check of a trial boot failed; the slot is marked bad, a reboot falls back.
    HealthCheckFailed {
        version: Version,
        slot: String,
        reason: String,
    },
    /// The box came back on the previous slot: the update to `version` failed.
    RolledBack {
        failed_version: Version,
        failed_slot: String,
        running: Version,
        reason: String,
    },
    /// Root metadata rotated to a new version (learned from a bundle).
    RootRotated { from: u64, to: u64 },
    /// A model bundle was installed and made current.
    ModelInstalled {
        model_id: String,
        version: Version,
        previous: Option<Version>,
    },
    /// The daemon confirmed the new model loads; its floor was raised.
    ModelConfirmed {
        model_id: String,
        version: Version,
        floor: Version,
    },
    /// The new model failed to load; the previous one is current again.
    ModelRolledBack {
        model_id: String,
        failed: Version,
        restored: Version,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Reading the bundle and checking payload hashes (nothing written yet).
    Verifying,
    /// Writing a payload to its target.
    Writing,
    /// Reading a payload back from its target.
    ReadingBack,
    Done,
}

/// Progress over the whole install: `done` of `total` bytes in the current phase.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Progress {
    pub phase: Phase,
    pub payload: String,
    pub done: u64,
    pub total: u64,
}

pub trait Observer: Send + Sync {
    fn audit(&self, event: AuditEvent);
    fn progress(&self, _progress: &Progress) {}
}

/// Drops everything.
pub struct NullObserver;

impl Observer for NullObserver {
    fn audit(&self, _event: AuditEvent) {}
}

/// Keeps the audit events in memory (tests, the CLI).
#[derive(Default)]
pub struct RecordingObserver {
    events: Mutex<Vec<AuditEvent>>,
}

impl RecordingObserver {
    pub fn take(&self) -> Vec<AuditEvent> {
        match self.events.lock() {
            Ok(mut v) => std::mem::take(&mut *v),
            Err(p) => std::mem::take(&mut *p.into_inner()),
        }
    }
}

impl Observer for RecordingObserver {
    fn audit(&self, event: AuditEvent) {
        match self.events.lock() {
            Ok(mut v) => v.push(event),
            Err(p) => p.into_inner().push(event),
        }
    }
}
