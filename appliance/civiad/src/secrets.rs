//! civiad's own secrets from `civia-tpm`'s `SecretStore`: the seeds of the TLS CA key, the
//! audit signing key and the audit pseudonym secret, unsealed into memory at start.
//!
//! `[secrets] protection`: `tpm` unseals what `civia-provision first-boot` sealed (civiad never
//! seals: the sealing policy is the provisioning's), and refuses to start without it; `files`
//! keeps 32-byte plain files (0600, created as needed); `auto` takes the TPM when its device
//! is there and the sealed files are in the directory, else the files, with a warning in the
//! log and "NON scellées" on the console.

use crate::DaemonError;
use civia_config::{Config, SecretProtection};
use civia_tpm::{Backend, SealPolicy, Secret, SecretKind, SecretStore, StoreStatus};
use sha2::{Digest, Sha256};
use std::path::Path;
use zeroize::Zeroizing;

/// The unsealed secrets (zeroized on drop) and how they are protected.
pub struct BoxSecrets {
    pub tls_ca: Secret,
    device_identity: Secret,
    audit_hmac: Secret,
    pub status: StoreStatus,
}

/// A 32-byte key for `purpose`, derived from a secret (one secret, several uses, never the
/// same key twice).
fn derive(purpose: &str, secret: &Secret) -> Zeroizing<[u8; 32]> {
    let mut h = Sha256::new();
    h.update(purpose.as_bytes());
    h.update([0]);
    h.update(secret.expose());
    Zeroizing::new(h.finalize().into())
}

impl BoxSecrets {
    /// The audit trail's Ed25519 seed, from the device identity.
    pub fn audit_signing_seed(&self) -> Zeroizing<[u8; 32]> {
        derive("civia-audit-ed25519-v1", &self.device_identity)
    }

    /// The key of the NAS password's file (`civia_backup::smb`): the password opens only on
    /// this box.
    pub fn backup_smb_key(&self) -> Zeroizing<[u8; 32]> {
        derive("civia-backup-smb-v1", &self.device_identity)
    }

    /// The secrets as a backup escrows them (named like their sealed files), when they are
    /// sealed by the TPM; None when they are files of the state (archived as they are).
    pub fn escrow(&self, cfg: &Config) -> Option<civia_backup::Escrow> {
        if self.status.protection != "tpm" {
            return None;
        }
        let dir = cfg.secrets_dir();
        let rel = dir.strip_prefix(&cfg.state_dir).ok()?.to_path_buf();
        let secrets = [
            (SecretKind::DeviceIdentity, &self.device_identity),
            (SecretKind::AuditHmac, &self.audit_hmac),
            (SecretKind::TlsCa, &self.tls_ca),
        ]
        .into_iter()
        .map(|(k, s)| (k.name().to_string(), Zeroizing::new(s.expose().to_vec())))
        .collect();
        Some(civia_backup::Escrow { dir: rel, secrets })
    }

    /// The audit pseudonym secret.
    pub fn audit_pseudonym_secret(&self) -> Zeroizing<[u8; 32]> {
        derive("civia-audit-pseudonym-v1", &self.audit_hmac)
    }
}

fn sealed_present(dir: &Path) -> bool {
    SecretKind::ALL
        .iter()
        .all(|k| dir.join(format!("{}.sealed", k.name())).exists())
}

/// Opens the store `[secrets]` describes and unseals (or reads, or creates) the secrets.
pub fn open(cfg: &Config) -> Result<BoxSecrets, DaemonError> {
    let dir = cfg.secrets_dir();
    let s = &cfg.secrets;
    let tpm = match s.protection {
        SecretProtection::Tpm => true,
        SecretProtection::Files => false,
        SecretProtection::Auto => s.tpm_present() && sealed_present(&dir),
    };
    let err = |source| DaemonError::Secrets {
        dir: dir.clone(),
        source,
    };
    let store = if tpm {
        if !sealed_present(&dir) {
            return Err(DaemonError::SecretsUnavailable {
                dir: dir.clone(),
                why: "secrets.protection = \"tpm\" but the sealed secrets are missing (run civia-provision first-boot)".into(),
            });
        }
        SecretStore::new(
            &dir,
            Backend::Tpm {
                tcti: s.tcti.clone(),
                // Only used to seal, which civiad never does.
                policy: SealPolicy {
                    literal_pcrs: Vec::new(),
                    authority: None,
                },
                signed_policy: s.signed_policy.clone(),
            },
        )
    } else {
        let store = SecretStore::new(&dir, Backend::TrialFiles);
        for kind in SecretKind::ALL {
            store.ensure(kind).map_err(err)?;
        }
        store
    };
    let loaded = store.load_all().map_err(err)?;
    let status = store.status();
    if tpm {
        log::info!("secrets: {} ({})", status.message, dir.display());
    } else {
        log::warn!(
            "secrets: NOT sealed by a TPM: {} ({}); the CA key and the audit keys are as safe as this disk",
            status.message,
            dir.display()
        );
    }
    Ok(BoxSecrets {
        tls_ca: loaded.tls_ca,
        device_identity: loaded.device_identity,
        audit_hmac: loaded.audit_hmac,
        status,
    })
}
