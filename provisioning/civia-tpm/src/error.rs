//! Typed errors of the crate.

use std::path::PathBuf;

/// Everything that can go wrong talking to the TPM, sealing or unsealing.
#[derive(Debug, thiserror::Error)]
pub enum TpmError {
    #[error("invalid TCTI {tcti:?}: {source}")]
    Tcti {
        tcti: String,
        #[source]
        source: tss_esapi::Error,
    },
    #[error("cannot open the TPM through {tcti:?}: {source}")]
    Open {
        tcti: String,
        #[source]
        source: tss_esapi::Error,
    },
    #[error("TPM command {op} failed: {source}")]
    Command {
        op: &'static str,
        #[source]
        source: tss_esapi::Error,
    },
    /// The storage root key differs from the one recorded when the secret was sealed: the TPM
    /// was replaced or cleared. The sealed secret can never be recovered from this TPM.
    #[error(
        "TPM changed: this is not the TPM the secret was sealed with (storage root key name \
         {found}, expected {expected}); the TPM was replaced or cleared, use the recovery key"
    )]
    TpmChanged { expected: String, found: String },
    /// Literal PCRs of the policy hold other values than at sealing time.
    #[error("PCR policy not satisfied: PCR {changed:?} changed since sealing (boot chain or Secure Boot state differ)")]
    PcrMismatch { changed: Vec<u8> },
    /// No signed policy covers the current values of the signed PCRs.
    #[error(
        "no signed PCR policy from key {fingerprint} matches the current values of PCR {pcrs:?} \
         (unsigned software or a missing signature for this image)"
    )]
    NoSignedPolicy { fingerprint: String, pcrs: Vec<u8> },
    /// The TPM itself refused the policy (a PCR changed between read and use, a bad signature...).
    #[error("the TPM refused the policy ({step}): {source}")]
    PolicyRefused {
        step: &'static str,
        #[source]
        source: tss_esapi::Error,
    },
    #[error("secret of {len} bytes is too large to seal (at most {max})")]
    SecretTooLarge { len: usize, max: usize },
    #[error("malformed {what}: {reason}")]
    Format { what: &'static str, reason: String },
    #[error("invalid key: {0}")]
    Key(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is readable by others (mode {mode:o}); secrets files must be 0600")]
    LoosePermissions { path: PathBuf, mode: u32 },
    #[error("random source: {0}")]
    Random(String),
}

pub type Result<T, E = TpmError> = std::result::Result<T, E>;

pub(crate) fn cmd(op: &'static str) -> impl FnOnce(tss_esapi::Error) -> TpmError {
    move |source| TpmError::Command { op, source }
}

pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> TpmError {
    let path = path.into();
    move |source| TpmError::Io { path, source }
}

pub(crate) fn format(what: &'static str, reason: impl ToString) -> TpmError {
    TpmError::Format {
        what,
        reason: reason.to_string(),
    }
}
