//! `civia-update`: the on-box update agent, a library that `civiad` drives.
//!
//! It owns:
//! - judging a bundle (signatures, threshold, root rotation, compatible string, expiry against
//!   the box's reference time, version floor, version newer than the running one) and checking
//!   every payload's size and SHA-256 **before writing a byte** anywhere ([`system`], [`model`]);
//! - streaming a system bundle to the *inactive* A/B slot (`/usr` partition and its dm-verity
//!   hash tree), reading it back and checking hashes, then installing the UKI on the ESP with a
//!   systemd-boot boot counter (`+3`, Automatic Boot Assessment) ([`system`], [`esp`]);
//! - the boot-counting state machine after a reboot: trial boot, blessing (what
//!   `systemd-bless-boot good` does) and raising the floor, marking bad, and noticing a
//!   rollback from the fallback slot ([`system::SystemUpdater::after_boot`]);
//! - model bundles installed atomically under the models directory, with the previous model
//!   kept for rollback ([`model`]);
//! - the agent's persistent state (floor, reference time, slot status, root rotations) under
//!   its state directory, written atomically ([`state`]);
//! - the events it emits for the audit log and for progress ([`events`]);
//! - the GPT partition UUIDs of a written slot, derived from its dm-verity root hash so that
//!   `systemd-veritysetup-generator` finds the slot from `roothash=` alone, and the booted slot
//!   from the kernel command line ([`partition`]);
//! - the daemon's update service ([`service::Updates`]): updates on or off and why, one install
//!   at a time, every event to the journal and the audit trail (`update.<event>`), a model
//!   bundle put into service through the daemon's [`service::ModelLoader`] (confirmed, or rolled
//!   back and the previous model reloaded), and the outcome of a trial boot's health check.
//!
//! It must never: write to the running (active) slot or its UKI; write a byte of a payload
//! anywhere before the whole bundle verified; lower the floor or the reference time; trust a
//! root that the previous root's threshold did not sign; open a network connection (updates
//! work with no network at all). It does not reboot the machine nor judge the box's health:
//! the daemon does, and hands the verdict to [`service::Updates::health_check`], which
//! blesses the slot or marks it bad.

pub mod esp;
pub mod events;
pub mod failpoint;
pub mod model;
pub mod partition;
pub mod service;
pub mod slot;
pub mod state;
pub mod system;
pub mod trust;

use std::path::PathBuf;

pub use civia_bundle_format as format;
pub use civia_bundle_format::{FormatError, Version};
pub use events::{AuditEvent, NullObserver, Observer, Phase, Progress, RecordingObserver};
pub use model::{ModelInstalled, ModelStore};
pub use service::{ModelActivated, ModelLoader, ServiceError, TrialOutcome, Updates};
pub use system::{BootStatus, Slot, SlotPaths, SystemConfig, SystemUpdater};
pub use trust::TrustStore;

/// The exit status of `civiad` once a trial boot failed its health check and its slot was
/// marked bad ([`SystemUpdater::mark_bad`]): the image's service unit reboots when the daemon
/// exits with it, and systemd-boot then falls back to the previous slot. Nothing else in
/// `civiad` exits with this status (76 is `EX_PROTOCOL` in sysexits.h, otherwise unused here).
pub const EXIT_TRIAL_UNHEALTHY: u8 = 76;

/// Everything the agent can fail with.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    /// The bundle was refused: nothing was written.
    #[error("bundle refused: {0}")]
    Refused(#[from] FormatError),
    #[error("target {target} holds {have} bytes, payload '{payload}' needs {need}")]
    TargetTooSmall {
        target: PathBuf,
        payload: String,
        need: u64,
        have: u64,
    },
    #[error("read-back of '{payload}' from {target} does not match its signed hash (expected {expected}, got {got})")]
    Readback {
        target: PathBuf,
        payload: String,
        expected: String,
        got: String,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("trusted root: {0}")]
    Trust(String),
    #[error("update state: {0}")]
    State(String),
    /// Setting (or reading back) the GPT partition UUID of a slot's partition failed; the
    /// message carries `sfdisk`'s standard error.
    #[error("partition UUID of {device}: {message}")]
    PartUuid { device: PathBuf, message: String },
    /// `booted_slot = auto` could not tell the booted slot from the kernel command line.
    #[error("booted slot: {0}")]
    BootedSlot(String),
    #[error("failpoint '{0}' fired")]
    Injected(String),
}

impl UpdateError {
    /// A short stable code for audit events and API errors.
    pub fn code(&self) -> &'static str {
        match self {
            UpdateError::Refused(e) => e.code(),
            UpdateError::TargetTooSmall { .. } => "target_too_small",
            UpdateError::Readback { .. } => "readback_mismatch",
            UpdateError::Io { .. } => "io",
            UpdateError::Trust(_) => "trust",
            UpdateError::State(_) => "state",
            UpdateError::PartUuid { .. } => "partuuid",
            UpdateError::BootedSlot(_) => "booted_slot",
            UpdateError::Injected(_) => "injected",
        }
    }

    /// Whether the bundle itself was refused (as opposed to a failure while installing it).
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            UpdateError::Refused(_) | UpdateError::TargetTooSmall { .. }
        )
    }
}

pub(crate) fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> UpdateError {
    let context = context.into();
    move |source| UpdateError::Io { context, source }
}
