//! Civia's signed bundle format, shared by the integrator's tool (`civia-bundle`) and the
//! on-box agent (`civia-update`).
//!
//! This crate owns:
//! - ed25519 keys and their ids ([`keys`]);
//! - the signed metadata: root metadata (who may sign, with which threshold, signed by the
//!   previous root's threshold on rotation) and bundle manifests (kind, compatible string,
//!   version, signed version floor, creation time, expiry, payload sizes and SHA-256)
//!   ([`meta`]);
//! - the container layout (magic, header, payloads) and its parser ([`container`]);
//! - the trust-chain and policy checks that decide whether a bundle may be installed
//!   ([`verify`]).
//!
//! It must never: touch a disk other than through the readers and writers it is given, trust
//! anything in a bundle before its signatures are checked against a root the caller already
//! trusts, or read a clock (the reference time is always the caller's, see
//! [`verify::BoxState::reference_time`]). Parsing is bounded (header size, counts) and never
//! panics on hostile input (fuzzed by `fuzz/fuzz_targets/bundle_header.rs`).

pub mod container;
pub mod keys;
pub mod meta;
pub mod verify;
mod version;

pub use container::{Header, HEADER_MAX, MAGIC};
pub use keys::{KeyId, PublicKey, SecretKey};
pub use meta::{BundleKind, Envelope, Manifest, PayloadInfo, Role, RootMeta, SignatureEntry};
pub use verify::{BoxState, Verified};
pub use version::Version;

/// Everything that can be wrong with a key, a piece of metadata or a bundle.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("not a Civia bundle (bad magic)")]
    BadMagic,
    #[error("unsupported bundle format version {0} (this software reads version 1)")]
    UnsupportedFormat(u32),
    #[error("bundle header is {0} bytes, more than the {HEADER_MAX}-byte limit")]
    HeaderTooLarge(u64),
    #[error("bundle is truncated: {0}")]
    Truncated(String),
    #[error("bundle has {0} unexpected bytes after its last payload")]
    TrailingData(u64),
    #[error("malformed metadata: {0}")]
    Malformed(String),
    #[error("invalid key: {0}")]
    BadKey(String),
    #[error("{what} is not signed")]
    Unsigned { what: &'static str },
    #[error("{what} is signed only by keys this box does not trust ({keyids})")]
    UnknownKey { what: &'static str, keyids: String },
    #[error("{what} carries an invalid signature from trusted key {keyid} (tampered metadata?)")]
    BadSignature { what: &'static str, keyid: String },
    #[error("{what} has {valid} valid signature(s) from trusted keys, {needed} needed")]
    BelowThreshold {
        what: &'static str,
        valid: usize,
        needed: usize,
    },
    #[error("root metadata version {got} cannot follow trusted version {trusted} (rotation must go one version at a time)")]
    RootVersionGap { trusted: u64, got: u64 },
    #[error(
        "{what} expired at {expires} (unix seconds), before the box's reference time {reference}"
    )]
    Expired {
        what: &'static str,
        expires: i64,
        reference: i64,
    },
    #[error("bundle is for hardware '{got}', this box is '{expected}'")]
    Incompatible { expected: String, got: String },
    #[error("bundle is a {got} bundle, a {expected} bundle was expected")]
    WrongKind {
        expected: BundleKind,
        got: BundleKind,
    },
    #[error("bundle version {version} is not newer than the running version {running}")]
    NotNewer { version: Version, running: Version },
    #[error(
        "bundle version {version} is below this box's version floor {floor} (downgrade refused)"
    )]
    BelowFloor { version: Version, floor: Version },
    #[error("payload '{name}' does not match its signed SHA-256 (expected {expected}, got {got})")]
    HashMismatch {
        name: String,
        expected: String,
        got: String,
    },
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl FormatError {
    /// A short, stable code for audit events and API errors.
    pub fn code(&self) -> &'static str {
        match self {
            FormatError::BadMagic
            | FormatError::UnsupportedFormat(_)
            | FormatError::HeaderTooLarge(_)
            | FormatError::Malformed(_)
            | FormatError::BadKey(_) => "malformed",
            FormatError::Truncated(_) => "truncated",
            FormatError::TrailingData(_) => "trailing_data",
            FormatError::Unsigned { .. } => "unsigned",
            FormatError::UnknownKey { .. } => "unknown_key",
            FormatError::BadSignature { .. } => "bad_signature",
            FormatError::BelowThreshold { .. } => "below_threshold",
            FormatError::RootVersionGap { .. } => "root_version_gap",
            FormatError::Expired { .. } => "expired",
            FormatError::Incompatible { .. } => "incompatible",
            FormatError::WrongKind { .. } => "wrong_kind",
            FormatError::NotNewer { .. } => "not_newer",
            FormatError::BelowFloor { .. } => "below_floor",
            FormatError::HashMismatch { .. } => "hash_mismatch",
            FormatError::Io(_) => "io",
        }
    }
}

pub use civia_base::hash::sha256_hex;
