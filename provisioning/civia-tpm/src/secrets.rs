//! The supervisor's sealed secrets: device identity, audit keyed-hash secret, TLS CA key.
//!
//! Each is a 32-byte seed (keys are derived from it by their owners, e.g. a P-256 scalar for
//! the CA), sealed in the TPM under the box's PCR policy and stored as `<name>.sealed`
//! (JSON). Unsealed values live only in memory, in [`Secret`], zeroized on drop. In trial mode
//! (a machine without TPM) each lives in `<name>.key`, mode 0600, and the status says they are
//! not protected by a TPM.

use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;
use zeroize::Zeroizing;

use crate::error::{io, Result, TpmError};
use crate::fsutil::{ensure_private_dir, read_private, write_atomic};
use crate::policy::SignedPolicies;
use crate::tpm::{SealPolicy, SealedBlob, Tpm};

/// Length of every secret seed.
pub const SEED_LEN: usize = 32;

/// The secrets the supervisor needs at start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SecretKind {
    DeviceIdentity,
    AuditHmac,
    TlsCa,
}

impl SecretKind {
    pub const ALL: [SecretKind; 3] = [Self::DeviceIdentity, Self::AuditHmac, Self::TlsCa];

    pub fn name(self) -> &'static str {
        match self {
            Self::DeviceIdentity => "device-identity",
            Self::AuditHmac => "audit-hmac",
            Self::TlsCa => "tls-ca",
        }
    }
}

/// A secret in memory, zeroized on drop, never printed.
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({} bytes, redacted)", self.0.len())
    }
}

/// Where the secrets are protected.
#[derive(Clone, Debug)]
pub enum Backend {
    /// Sealed in the TPM reached through `tcti`; `signed_policy` is the signature file for the
    /// authority's PCRs (systemd-measure format), read at each unseal.
    Tpm {
        tcti: String,
        policy: SealPolicy,
        signed_policy: Option<PathBuf>,
    },
    /// No TPM: plain files with mode 0600. For trial machines only.
    TrialFiles,
}

/// The three unsealed secrets, as the supervisor holds them.
#[derive(Debug)]
pub struct SupervisorSecrets {
    pub device_identity: Secret,
    pub audit_hmac: Secret,
    pub tls_ca: Secret,
}

/// State of one secret in [`StoreStatus`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SecretState {
    Sealed,
    PlainFile,
    Missing,
}

/// What the store says about itself.
#[derive(Clone, Debug, Serialize)]
pub struct StoreStatus {
    /// "tpm" or "trial-files".
    pub protection: &'static str,
    /// A sentence for the admin.
    pub message: String,
    pub secrets: Vec<(SecretKind, SecretState)>,
}

/// Creates, seals and unseals the supervisor's secrets in a directory.
#[derive(Clone, Debug)]
pub struct SecretStore {
    dir: PathBuf,
    backend: Backend,
}

impl SecretStore {
    pub fn new(dir: impl Into<PathBuf>, backend: Backend) -> Self {
        Self {
            dir: dir.into(),
            backend,
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, kind: SecretKind) -> PathBuf {
        match self.backend {
            Backend::Tpm { .. } => self.dir.join(format!("{}.sealed", kind.name())),
            Backend::TrialFiles => self.dir.join(format!("{}.key", kind.name())),
        }
    }

    /// Creates and stores `kind` unless it already exists. Returns whether it was created. An
    /// existing secret is never replaced: a rerun after a power cut keeps what was made.
    pub fn ensure(&self, kind: SecretKind) -> Result<bool> {
        let path = self.path(kind);
        if path.exists() {
            return Ok(false);
        }
        ensure_private_dir(&self.dir)?;
        match &self.backend {
            Backend::Tpm { tcti, policy, .. } => {
                let mut tpm = Tpm::open(tcti)?;
                let seed = mixed_random(Some(&mut tpm))?;
                let blob = tpm.seal(&seed, policy)?;
                write_atomic(&path, blob.to_json()?.as_bytes(), 0o600)?;
            }
            Backend::TrialFiles => {
                let seed = mixed_random(None)?;
                write_atomic(&path, &seed, 0o600)?;
            }
        }
        Ok(true)
    }

    /// Unseals (or reads) one secret.
    pub fn load(&self, kind: SecretKind) -> Result<Secret> {
        let path = self.path(kind);
        match &self.backend {
            Backend::Tpm {
                tcti,
                signed_policy,
                ..
            } => {
                let blob = SealedBlob::from_json(&fs::read_to_string(&path).map_err(io(&path))?)?;
                let signed = read_signed(signed_policy.as_deref())?;
                let mut tpm = Tpm::open(tcti)?;
                Ok(Secret(tpm.unseal(&blob, signed.as_ref())?))
            }
            Backend::TrialFiles => {
                let v = read_private(&path)?;
                if v.len() != SEED_LEN {
                    return Err(crate::error::format(
                        "secret file",
                        format!(
                            "{} holds {} bytes, expected {SEED_LEN}",
                            path.display(),
                            v.len()
                        ),
                    ));
                }
                Ok(Secret(v))
            }
        }
    }

    /// The three secrets, for the supervisor at start.
    pub fn load_all(&self) -> Result<SupervisorSecrets> {
        Ok(SupervisorSecrets {
            device_identity: self.load(SecretKind::DeviceIdentity)?,
            audit_hmac: self.load(SecretKind::AuditHmac)?,
            tls_ca: self.load(SecretKind::TlsCa)?,
        })
    }

    pub fn status(&self) -> StoreStatus {
        let secrets = SecretKind::ALL
            .iter()
            .map(|k| {
                let state = match (self.path(*k).exists(), &self.backend) {
                    (false, _) => SecretState::Missing,
                    (true, Backend::Tpm { .. }) => SecretState::Sealed,
                    (true, Backend::TrialFiles) => SecretState::PlainFile,
                };
                (*k, state)
            })
            .collect();
        let (protection, message) = match &self.backend {
            Backend::Tpm { tcti, .. } => (
                "tpm",
                format!("secrets sealed in the TPM ({tcti}) under the boot policy"),
            ),
            Backend::TrialFiles => (
                "trial-files",
                "trial mode: no TPM, secrets are plain files (mode 0600) readable by root and by anyone holding the disk".to_string(),
            ),
        };
        StoreStatus {
            protection,
            message,
            secrets,
        }
    }

    /// Deletes every secret file (factory reset).
    pub fn destroy(&self) -> Result<()> {
        for k in SecretKind::ALL {
            for ext in ["sealed", "key"] {
                let p = self.dir.join(format!("{}.{ext}", k.name()));
                match fs::remove_file(&p) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(TpmError::Io { path: p, source: e }),
                }
            }
        }
        Ok(())
    }
}

/// Seals `secret` in the TPM at `tcti` under the policy `like` was sealed with (its literal
/// PCRs, read now, and its policy authority with the PCRs it signs for): how a restore puts
/// the escrowed secrets of another box under this box's TPM, bound like this box's own.
pub fn seal_like(tcti: &str, like: &SealedBlob, secret: &[u8]) -> Result<SealedBlob> {
    let authority = match &like.authority_pem {
        Some(pem) => Some((
            crate::policy::PolicyAuthority::from_pem(pem)?,
            like.signed_pcrs.clone(),
        )),
        None => None,
    };
    let policy = SealPolicy {
        literal_pcrs: like.literal_pcrs.indices(),
        authority,
    };
    let blob = Tpm::open(tcti)?.seal(secret, &policy)?;
    // Bound to the values the model was sealed with, or the box's next boot could not
    // unseal what its own secrets unseal (a PCR read now, in another state, would differ).
    if blob.literal_pcrs != like.literal_pcrs {
        return Err(crate::error::format(
            "seal policy",
            "the PCR values differ from those this box's own secrets were sealed with",
        ));
    }
    Ok(blob)
}

fn read_signed(path: Option<&Path>) -> Result<Option<SignedPolicies>> {
    path.map(|p| SignedPolicies::from_json(&fs::read_to_string(p).map_err(io(p))?))
        .transpose()
}

/// 32 bytes from the OS generator, XORed with 32 from the TPM when there is one: the result is
/// as strong as the better of the two.
pub fn mixed_random(tpm: Option<&mut Tpm>) -> Result<Zeroizing<Vec<u8>>> {
    let mut out = Zeroizing::new(vec![0u8; SEED_LEN]);
    getrandom::getrandom(&mut out).map_err(|e| TpmError::Random(e.to_string()))?;
    if let Some(tpm) = tpm {
        let t = tpm.random(SEED_LEN)?;
        for (o, b) in out.iter_mut().zip(t.iter()) {
            *o ^= b;
        }
    }
    Ok(out)
}
