//! Typed errors of the crate.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error(transparent)]
    Tpm(#[from] civia_tpm::TpmError),
    #[error("{program} {args}: {message}")]
    Command {
        program: &'static str,
        args: String,
        message: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("malformed {what}: {reason}")]
    Format { what: &'static str, reason: String },
    #[error(
        "{0} is already a provisioned LUKS volume but this box has no provisioning state for it; \
         refusing to format it (use factory-reset to start over)"
    )]
    VolumeAlreadyProvisioned(PathBuf),
    #[error("the TPM changed since provisioning (storage root key {found}, recorded {expected}): it was replaced or cleared; unlock with the recovery key, then factory-reset or re-enroll")]
    TpmChanged { expected: String, found: String },
    #[error("the enrolled TPM2 token's policy {found} is not the expected {expected}")]
    EnrolmentMismatch { expected: String, found: String },
    #[error(
        "confirmation {given:?} does not match: type {expected:?} to confirm the factory reset"
    )]
    NotConfirmed { given: String, expected: String },
    #[error("{0}")]
    Refused(String),
}

pub type Result<T, E = ProvisionError> = std::result::Result<T, E>;

pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> ProvisionError {
    let path = path.into();
    move |source| ProvisionError::Io { path, source }
}
