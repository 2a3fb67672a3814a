//! # civia-tpm — the box's TPM 2.0, for Civia's own secrets and attestation
//!
//! What this crate owns:
//! - opening the TPM from a TCTI string (`device:/dev/tpmrm0` on the box,
//!   `swtpm:host=…,port=…` in tests), random bytes, PCR reads and extends;
//! - sealing and unsealing small secrets (≤ 128 bytes) under PolicyPCR over literal PCRs and/or
//!   PolicyAuthorize against the integrator's PCR-policy signing key, whose signatures
//!   (systemd-measure's JSON format) let a signed update keep unsealing without re-sealing;
//!   sealed objects are usable only through their policy (`user_with_auth` off), over salted
//!   sessions that encrypt the secret on the wire;
//! - detecting a replaced or cleared TPM (the storage root key's name is recorded in every
//!   sealed blob and compared before use);
//! - the supervisor's secrets ([`secrets::SecretStore`]): device identity, audit keyed-hash
//!   secret, TLS CA key, unsealed into memory only and zeroized on drop; plain 0600 files in
//!   trial mode, and a status that says so;
//! - attestation quotes over PCRs with a caller's nonce, and their offline verification.
//!
//! What it must never do:
//! - write an unsealed secret to disk, log it or print it (`Secret`'s `Debug` is redacted);
//! - leave a transient object or session loaded in the TPM (there is no resource manager on
//!   swtpm, and a leaked handle starves the box's other TPM users);
//! - create a sealed object usable with a password, or unseal under a TPM whose storage root
//!   key differs from the one recorded;
//! - touch the LUKS volume (that is `civia-provision`'s) or depend on the supervisor.

pub mod error;
pub mod fsutil;
pub mod policy;
pub mod quote;
pub mod secrets;
pub mod swtpm;
pub mod tpm;

pub use error::{Result, TpmError};
pub use policy::{PcrValues, PolicyAuthority, SignedPolicies};
pub use quote::{verify_quote, Quote, QuoteError, QuoteInfo};
pub use secrets::{
    seal_like, Backend, Secret, SecretKind, SecretStore, StoreStatus, SupervisorSecrets,
};
pub use tpm::{Health, SealPolicy, SealedBlob, Tpm};
