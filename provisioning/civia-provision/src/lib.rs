//! # civia-provision — first boot, recovery key and factory reset of a Civia box
//!
//! What this crate owns:
//! - the first-boot flow: record the TPM (storage root key name, attestation key), create and
//!   seal the supervisor's secrets, format the LUKS2 data volume, enroll a recovery key and a
//!   TPM2 token (through `systemd-cryptenroll`, the tool whose token the boot unlocks), check
//!   the enrolled policy, drop the temporary initial key, emit the pairing code. Every step
//!   records its result in a state file written atomically, so a power cut at any point is
//!   followed by a rerun that completes without losing a secret or duplicating a keyslot;
//! - the recovery key (shown once; rotation invalidates the previous one) and where it waits
//!   until it is shown (see "Keys at rest" below);
//! - the status report (volume, keyslots and tokens, TPM presence and identity, secrets);
//! - offline verification of attestation quotes (`verify-quote`);
//! - the factory reset (explicit confirmation), which destroys keyslots and state.
//!
//! What it must never do:
//! - format a volume that is already provisioned without an explicit factory reset;
//! - pass a key on a command line or in the environment, or write a key in clear to
//!   persistent media (`/state` is not encrypted: a key written there stays in its freed
//!   blocks, and in an SSD's spare blocks, whatever is done to the file afterwards);
//! - remove the last way into the volume (the initial key goes only once the recovery key
//!   and the TPM2 token are both enrolled);
//! - talk to the supervisor: `civiad` calls into this crate (or runs the binary), not the
//!   reverse.
//!
//! ## Keys at rest
//!
//! Two keys must outlive the process that made them until first boot completes: the initial
//! key (the first keyslot, removed once the recovery key and the TPM2 token are in) and the
//! recovery key (until it is shown once, `recovery-key take`). A power cut may come between.
//! - With a TPM they wait **sealed by the TPM** under the volume's own policy (PCR 7 at its
//!   current value, PCR 11 signed by the integrator) in `<state_dir>/<name>.sealed`: the blob
//!   is useless off this TPM, and this TPM releases it only in a boot that could unlock `/var`
//!   through its TPM2 token anyway, so the blob (or a copy left in freed blocks) gives nothing
//!   the token does not. `take` unseals it, prints it and removes the blob.
//! - Without a TPM (trial mode) they wait in clear in `runtime_dir` (a RAM file system, `/run`),
//!   never on disk; a power cut before first boot completes loses them: a trial volume then
//!   needs a factory reset (or `recovery-key rotate --volume-key-file`).
//!
//! Keys go to cryptsetup on its standard input; a second key in the same command goes through
//! a [`luks::KeyFile`], which can only be created on a RAM file system.
//!
//! Failpoints: when `CIVIA_PROVISION_FAILPOINT` names one of [`FAILPOINTS`], the process
//! aborts right there (as a power cut would stop it). Tests use it; it changes nothing
//! otherwise.

pub mod error;
pub mod luks;
pub mod recovery;

use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine;
use civia_tpm::fsutil::{ensure_private_dir, read_private, write_atomic};
use civia_tpm::secrets::mixed_random;
use civia_tpm::{
    Backend, PolicyAuthority, SealPolicy, SealedBlob, SecretStore, SignedPolicies, StoreStatus, Tpm,
};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use error::io;
pub use error::{ProvisionError, Result};
use luks::{Auth, KeyFile, Volume};

/// Environment variable naming a failpoint to abort at.
pub const FAILPOINT_ENV: &str = "CIVIA_PROVISION_FAILPOINT";

/// Every failpoint of the first-boot flow, in the order they are reached.
pub const FAILPOINTS: &[&str] = &[
    "tpm-recorded",
    "secret-device-identity",
    "secret-audit-hmac",
    "secret-tls-ca",
    "initial-key-written",
    "formatted",
    "format-recorded",
    "recovery-key-written",
    "recovery-key-added",
    "recovery-token-added",
    "recovery-recorded",
    "tpm-enrolled",
    "tpm-slot-recorded",
    "initial-slot-killed",
    "initial-key-removed",
    "pairing-recorded",
];

fn failpoint(name: &str) {
    if std::env::var(FAILPOINT_ENV).is_ok_and(|v| v == name) {
        eprintln!("civia-provision: failpoint {name}: aborting");
        std::process::abort();
    }
}

/// Where things are and what the volume and secrets are bound to.
#[derive(Clone, Debug)]
pub struct Config {
    /// Provisioning state, sealed secrets (`secrets/`), TPM-sealed pending keys. Mode 0700.
    /// Persistent and not encrypted: no key is ever written here in clear.
    pub state_dir: PathBuf,
    /// A directory on a RAM file system (`/run/civia-provision`): the short-lived key files
    /// handed to cryptsetup, and the pending keys of trial mode. Mode 0700.
    pub runtime_dir: PathBuf,
    /// The LUKS2 data volume (block device or file); `None`: no volume (trial machine).
    pub volume: Option<PathBuf>,
    /// TCTI of the TPM; `None`: trial mode without TPM.
    pub tcti: Option<String>,
    /// PCRs bound to their values at enrolment (default 7: Secure Boot state).
    pub literal_pcrs: Vec<u8>,
    /// PCRs covered by the integrator's signed policies (default 11: the UKI).
    pub signed_pcrs: Vec<u8>,
    /// The integrator's PCR-policy signing public key (PEM); `None`: literal PCRs only.
    pub policy_key: Option<PathBuf>,
    /// Signed policies (systemd-measure JSON) for unsealing the secrets.
    pub signed_policy: Option<PathBuf>,
    /// File where the boot records how the volume was unlocked ("tpm2", "recovery-key").
    pub unlock_report: PathBuf,
}

impl Config {
    fn seal_policy(&self) -> Result<SealPolicy> {
        let authority = match &self.policy_key {
            Some(p) => Some((
                PolicyAuthority::from_pem(&fs::read_to_string(p).map_err(io(p))?)?,
                self.signed_pcrs.clone(),
            )),
            None => None,
        };
        Ok(SealPolicy {
            literal_pcrs: self.literal_pcrs.clone(),
            authority,
        })
    }

    pub fn secret_store(&self) -> Result<SecretStore> {
        let backend = match &self.tcti {
            Some(tcti) => Backend::Tpm {
                tcti: tcti.clone(),
                policy: self.seal_policy()?,
                signed_policy: self.signed_policy.clone(),
            },
            None => Backend::TrialFiles,
        };
        Ok(SecretStore::new(self.state_dir.join("secrets"), backend))
    }

    fn state_path(&self) -> PathBuf {
        self.state_dir.join("provision.json")
    }
    /// Where a pending key waits: sealed in the state directory with a TPM, in the runtime
    /// directory (memory) without.
    fn pending_path(&self, key: Pending) -> PathBuf {
        match self.tcti {
            Some(_) => self.state_dir.join(format!("{}.sealed", key.name())),
            None => self.runtime_dir.join(key.name()),
        }
    }
    pub fn pending_recovery_path(&self) -> PathBuf {
        self.pending_path(Pending::RecoveryKey)
    }
}

/// The keys that wait between two steps of first boot (see "Keys at rest").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pending {
    InitialKey,
    RecoveryKey,
}

impl Pending {
    fn name(self) -> &'static str {
        match self {
            Self::InitialKey => "initial-key",
            Self::RecoveryKey => "recovery-key.pending",
        }
    }
}

fn ensure_runtime_dir(cfg: &Config) -> Result<()> {
    ensure_private_dir(&cfg.runtime_dir)?;
    if !luks::is_in_memory(&cfg.runtime_dir)? {
        return Err(ProvisionError::Refused(format!(
            "runtime directory {} is not a RAM file system (tmpfs): keys would reach a disk",
            cfg.runtime_dir.display()
        )));
    }
    luks::sweep_key_files(&cfg.runtime_dir)
}

/// Keeps `key` until first boot needs it again: TPM-sealed on the state partition, or in
/// memory without a TPM.
fn store_pending(cfg: &Config, which: Pending, key: &[u8]) -> Result<()> {
    let path = cfg.pending_path(which);
    match &cfg.tcti {
        Some(tcti) => {
            let policy = cfg.seal_policy()?;
            let blob = Tpm::open(tcti)?.seal(key, &policy)?;
            write_atomic(&path, blob.to_json()?.as_bytes(), 0o600)?;
        }
        None => {
            ensure_runtime_dir(cfg)?;
            write_atomic(&path, key, 0o600)?;
        }
    }
    Ok(())
}

/// The pending key, if one waits (unsealed by the TPM, which checks the boot's policy).
fn load_pending(cfg: &Config, which: Pending) -> Result<Option<Zeroizing<Vec<u8>>>> {
    let path = cfg.pending_path(which);
    if !path.exists() {
        return Ok(None);
    }
    match &cfg.tcti {
        Some(tcti) => {
            let blob = SealedBlob::from_json(&fs::read_to_string(&path).map_err(io(&path))?)?;
            let signed = match &cfg.signed_policy {
                Some(p) => Some(SignedPolicies::from_json(
                    &fs::read_to_string(p).map_err(io(p))?,
                )?),
                None => None,
            };
            Ok(Some(Tpm::open(tcti)?.unseal(&blob, signed.as_ref())?))
        }
        None => Ok(Some(read_private(&path)?)),
    }
}

fn drop_pending(cfg: &Config, which: Pending) -> Result<()> {
    let path = cfg.pending_path(which);
    if cfg.tcti.is_none() && path.exists() {
        // In memory: overwriting the same pages is a real wipe.
        if let Ok(mut f) = fs::OpenOptions::new().write(true).open(&path) {
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            let _ =
                std::io::Write::write_all(&mut f, &vec![0u8; usize::try_from(len).unwrap_or(0)]);
        }
    }
    remove_if_exists(&path)
}

/// What provisioning has done so far (`provision.json`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub srk_name: Option<String>,
    pub ak_public: Option<String>,
    pub volume_uuid: Option<String>,
    pub formatted: bool,
    pub initial_slot: Option<u32>,
    pub initial_wiped: bool,
    pub recovery_slot: Option<u32>,
    pub tpm_slot: Option<u32>,
    pub pairing_code: Option<String>,
    pub completed: bool,
}

impl State {
    pub fn load(cfg: &Config) -> Result<Self> {
        let p = cfg.state_path();
        match fs::read_to_string(&p) {
            Ok(s) => serde_json::from_str(&s).map_err(|e| ProvisionError::Format {
                what: "provisioning state",
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(ProvisionError::Io { path: p, source: e }),
        }
    }

    fn save(&self, cfg: &Config) -> Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(|e| ProvisionError::Format {
            what: "provisioning state",
            reason: e.to_string(),
        })?;
        Ok(write_atomic(&cfg.state_path(), &json, 0o600)?)
    }
}

/// What first boot reports.
#[derive(Clone, Debug, Serialize)]
pub struct FirstBootReport {
    pub pairing_code: String,
    /// The recovery key waits to be shown once (`recovery-key take`).
    pub recovery_key_pending: bool,
    pub protection: &'static str,
    pub ak_public: Option<String>,
}

/// Runs (or resumes) the first-boot flow. Idempotent: on a provisioned box it only reports.
pub fn first_boot(cfg: &Config) -> Result<FirstBootReport> {
    ensure_private_dir(&cfg.state_dir)?;
    let mut st = State::load(cfg)?;

    if let Some(tcti) = &cfg.tcti {
        // Scoped: swtpm serves one connection at a time, and systemd-cryptenroll needs it later.
        let mut tpm = Tpm::open(tcti)?;
        let name = hex::encode(tpm.srk_name()?);
        match &st.srk_name {
            Some(n) if !n.eq_ignore_ascii_case(&name) => {
                return Err(ProvisionError::TpmChanged {
                    expected: n.clone(),
                    found: name,
                })
            }
            Some(_) => {}
            None => {
                st.srk_name = Some(name);
                st.ak_public = Some(hex::encode(tpm.attestation_key()?));
                st.save(cfg)?;
                failpoint("tpm-recorded");
            }
        }
    }

    let store = cfg.secret_store()?;
    for kind in civia_tpm::SecretKind::ALL {
        if store.ensure(kind)? {
            failpoint(&format!("secret-{}", kind.name()));
        }
    }

    if let Some(path) = &cfg.volume {
        provision_volume(cfg, &mut st, &Volume::new(path))?;
    }

    if st.pairing_code.is_none() {
        st.pairing_code = Some(pairing_code(&random32(cfg)?));
        st.save(cfg)?;
        failpoint("pairing-recorded");
    }
    if !st.completed {
        st.completed = true;
        st.save(cfg)?;
    }
    Ok(FirstBootReport {
        pairing_code: st.pairing_code.clone().unwrap_or_default(),
        recovery_key_pending: cfg.pending_path(Pending::RecoveryKey).exists(),
        protection: store.status().protection,
        ak_public: st.ak_public.clone(),
    })
}

fn provision_volume(cfg: &Config, st: &mut State, v: &Volume) -> Result<()> {
    ensure_runtime_dir(cfg)?;
    // The initial key: made once, kept (sealed, or in memory) until its keyslot is gone.
    let init = if st.initial_wiped {
        None
    } else {
        match load_pending(cfg, Pending::InitialKey)? {
            Some(k) => Some(k),
            None if !st.formatted => {
                if v.is_luks()? && !v.header()?.keyslots.is_empty() {
                    return Err(ProvisionError::VolumeAlreadyProvisioned(
                        v.path().to_path_buf(),
                    ));
                }
                let k = random32(cfg)?;
                store_pending(cfg, Pending::InitialKey, &k)?;
                failpoint("initial-key-written");
                Some(k)
            }
            None => None,
        }
    };
    let initial_key = || {
        init.as_deref().ok_or_else(|| {
            ProvisionError::Refused(format!(
                "first boot was interrupted and its initial key is lost (it was kept in {}): \
                 factory-reset the volume",
                cfg.pending_path(Pending::InitialKey).display()
            ))
        })
    };

    // 1. Format with a temporary random initial key.
    if !st.formatted {
        let init = initial_key()?;
        // A header our initial key opens was formatted by an interrupted run: keep it.
        if !(v.is_luks()? && v.test_key(init, Some(0))?.is_some()) {
            v.format(init)?;
            failpoint("formatted");
        }
        st.formatted = true;
        st.initial_slot = Some(0);
        st.volume_uuid = Some(v.uuid()?);
        st.save(cfg)?;
        failpoint("format-recorded");
    }

    // 2. Recovery key: generated once, kept pending (sealed, or in memory) until shown,
    // enrolled once.
    if st.recovery_slot.is_none() {
        let key = match load_pending(cfg, Pending::RecoveryKey)? {
            Some(k) => k,
            None => {
                let key = recovery::new_key(&random32(cfg)?);
                store_pending(cfg, Pending::RecoveryKey, key.as_bytes())?;
                failpoint("recovery-key-written");
                Zeroizing::new(key.as_bytes().to_vec())
            }
        };
        let slot = match v.test_key(&key, None)? {
            Some(s) => s,
            None => {
                let kf = KeyFile::new(&cfg.runtime_dir, "recovery", &key)?;
                let s = v.add_key(&Auth::Passphrase(initial_key()?), &kf)?;
                failpoint("recovery-key-added");
                s
            }
        };
        ensure_recovery_token(v, slot)?;
        failpoint("recovery-token-added");
        st.recovery_slot = Some(slot);
        st.save(cfg)?;
        failpoint("recovery-recorded");
    }

    // 3. TPM2 token, enrolled by systemd-cryptenroll and checked against our policy.
    if let (Some(tcti), None) = (&cfg.tcti, st.tpm_slot) {
        let header = v.header()?;
        let slot = match tpm2_token_slot(&header) {
            Some(s) => s,
            None => {
                // Keyslots no token or state names are leftovers of an enrolment cut short.
                let named = header.token_slots();
                for s in header.keyslots.iter().copied() {
                    if !named.contains(&s)
                        && Some(s) != st.initial_slot
                        && Some(s) != st.recovery_slot
                    {
                        v.kill_slot(s)?;
                    }
                }
                let signed = cfg
                    .policy_key
                    .as_deref()
                    .map(|k| (k, cfg.signed_pcrs.as_slice()));
                let kf = KeyFile::new(&cfg.runtime_dir, "initial", initial_key()?)?;
                v.enroll_tpm2(&kf, tcti, &cfg.literal_pcrs, signed)?;
                failpoint("tpm-enrolled");
                tpm2_token_slot(&v.header()?).ok_or_else(|| {
                    ProvisionError::Refused("systemd-cryptenroll left no systemd-tpm2 token".into())
                })?
            }
        };
        verify_tpm2_enrolment(cfg, v)?;
        st.tpm_slot = Some(slot);
        st.save(cfg)?;
        failpoint("tpm-slot-recorded");
    }

    // 4. Drop the initial key once the recovery key and (with a TPM) the token are in.
    if !st.initial_wiped {
        if st.recovery_slot.is_none() || (cfg.tcti.is_some() && st.tpm_slot.is_none()) {
            return Err(ProvisionError::Refused(
                "refusing to drop the initial key before the recovery key and TPM2 token are enrolled".into(),
            ));
        }
        if let (Some(init), Some(slot)) = (init.as_deref(), st.initial_slot) {
            if v.test_key(init, Some(slot))?.is_some() {
                v.kill_slot(slot)?;
                failpoint("initial-slot-killed");
            }
        }
        if cfg.pending_path(Pending::InitialKey).exists() {
            drop_pending(cfg, Pending::InitialKey)?;
            failpoint("initial-key-removed");
        }
        st.initial_wiped = true;
        st.save(cfg)?;
    }
    Ok(())
}

fn tpm2_token_slot(h: &luks::Header) -> Option<u32> {
    h.tokens_of("systemd-tpm2")
        .first()
        .and_then(|(_, t)| t.slots().first().copied())
}

fn ensure_recovery_token(v: &Volume, slot: u32) -> Result<()> {
    let h = v.header()?;
    if h.tokens_of("systemd-recovery")
        .iter()
        .any(|(_, t)| t.slots().contains(&slot))
    {
        return Ok(());
    }
    v.import_token(&serde_json::json!({"type": "systemd-recovery", "keyslots": [slot.to_string()]}))
}

/// Checks that the volume's TPM2 token requires exactly the policy this box's configuration
/// describes (literal PCRs at their current values, the integrator's key for signed PCRs).
pub fn verify_tpm2_enrolment(cfg: &Config, v: &Volume) -> Result<()> {
    let Some(tcti) = &cfg.tcti else {
        return Ok(());
    };
    let h = v.header()?;
    let token = h
        .tokens_of("systemd-tpm2")
        .first()
        .map(|(_, t)| (*t).clone())
        .ok_or_else(|| ProvisionError::Refused("no systemd-tpm2 token".into()))?;
    let found = token
        .rest
        .get("tpm2-policy-hash")
        .and_then(|x| x.as_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let expected = hex::encode(Tpm::open(tcti)?.policy_digest(&cfg.seal_policy()?)?);
    if found != expected {
        return Err(ProvisionError::EnrolmentMismatch { expected, found });
    }
    Ok(())
}

/// The TPM2 token's sealed blob (`tpm2-blob`, base64 in the header).
pub fn tpm2_token_blob(v: &Volume) -> Result<Vec<u8>> {
    let h = v.header()?;
    let blob = h
        .tokens_of("systemd-tpm2")
        .first()
        .and_then(|(_, t)| t.rest.get("tpm2-blob")?.as_str().map(str::to_string))
        .ok_or_else(|| ProvisionError::Refused("no systemd-tpm2 token".into()))?;
    base64::engine::general_purpose::STANDARD
        .decode(blob.as_bytes())
        .map_err(|e| ProvisionError::Format {
            what: "tpm2-blob",
            reason: e.to_string(),
        })
}

/// Returns the pending recovery key and forgets it: it is shown once.
pub fn take_recovery_key(cfg: &Config) -> Result<Option<Zeroizing<String>>> {
    let key = peek_recovery_key(cfg)?;
    if key.is_some() {
        drop_pending(cfg, Pending::RecoveryKey)?;
    }
    Ok(key)
}

/// The pending recovery key, left pending (tests, and a caller that must show it before
/// forgetting it).
pub fn peek_recovery_key(cfg: &Config) -> Result<Option<Zeroizing<String>>> {
    Ok(load_pending(cfg, Pending::RecoveryKey)?
        .map(|bytes| Zeroizing::new(String::from_utf8_lossy(&bytes).into_owned())))
}

/// Enrolls a new recovery key and removes every previous one; returns the new key (to show
/// once). `auth` opens the volume: the current recovery key, or the volume key of the open
/// mapping.
pub fn rotate_recovery_key(cfg: &Config, auth: &Auth<'_>) -> Result<Zeroizing<String>> {
    let path = cfg
        .volume
        .as_deref()
        .ok_or_else(|| ProvisionError::Refused("no volume configured".into()))?;
    ensure_runtime_dir(cfg)?;
    let v = Volume::new(path);
    let mut st = State::load(cfg)?;
    let key = recovery::new_key(&random32(cfg)?);
    let kf = KeyFile::new(&cfg.runtime_dir, "recovery", key.as_bytes())?;
    let slot = v.add_key(auth, &kf)?;
    drop(kf);
    ensure_recovery_token(&v, slot)?;
    let old = st.recovery_slot.replace(slot);
    st.save(cfg)?;
    let h = v.header()?;
    let mut kill: Vec<u32> = old.into_iter().filter(|s| *s != slot).collect();
    for (id, t) in h.tokens_of("systemd-recovery") {
        let slots = t.slots();
        kill.extend(slots.iter().copied().filter(|s| *s != slot));
        if !slots.contains(&slot) {
            v.remove_token(id)?;
        }
    }
    kill.sort_unstable();
    kill.dedup();
    for s in kill {
        if h.keyslots.contains(&s) {
            v.kill_slot(s)?;
        }
    }
    // An old key still waiting to be shown is void now (no need to unseal it to forget it).
    drop_pending(cfg, Pending::RecoveryKey)?;
    Ok(key)
}

/// Volume part of the status report.
#[derive(Clone, Debug, Serialize)]
pub struct VolumeStatus {
    pub path: PathBuf,
    pub encrypted: bool,
    pub uuid: Option<String>,
    pub keyslots: Vec<u32>,
    pub tokens: Vec<(u32, String, Vec<u32>)>,
    pub tpm2_enrolled: bool,
    pub recovery_key_enrolled: bool,
    /// "tpm2", "recovery-key" or "unknown" (as the boot reported it).
    pub unlocked_by: String,
}

/// TPM part of the status report.
#[derive(Clone, Debug, Serialize)]
pub struct TpmStatus {
    pub present: bool,
    pub healthy: bool,
    pub manufacturer: String,
    /// `Some(false)`: the TPM was replaced or cleared since provisioning.
    pub same_tpm_as_provisioned: Option<bool>,
    pub message: String,
}

/// The whole status report.
#[derive(Clone, Debug, Serialize)]
pub struct Status {
    pub mode: &'static str,
    pub tpm: Option<TpmStatus>,
    pub secrets: StoreStatus,
    pub volume: Option<VolumeStatus>,
    pub provisioned: bool,
    pub pairing_pending: bool,
    pub recovery_key_waiting_to_be_shown: bool,
}

pub fn status(cfg: &Config) -> Result<Status> {
    let st = State::load(cfg)?;
    let tpm = cfg.tcti.as_ref().map(|tcti| match Tpm::open(tcti) {
        Ok(mut tpm) => {
            let health = tpm.health();
            let name = tpm.srk_name().map(hex::encode);
            let same = match (&st.srk_name, &name) {
                (Some(rec), Ok(now)) => Some(rec.eq_ignore_ascii_case(now)),
                _ => None,
            };
            let healthy = health.as_ref().is_ok_and(|h| h.self_test_ok) && name.is_ok();
            let message = match (same, healthy) {
                (Some(false), _) => "TPM changed since provisioning (replaced or cleared): secrets and TPM unlock are lost, use the recovery key".to_string(),
                (_, false) => "TPM present but not healthy".to_string(),
                _ => "TPM present and healthy".to_string(),
            };
            TpmStatus {
                present: true,
                healthy,
                manufacturer: health.map(|h| h.manufacturer).unwrap_or_default(),
                same_tpm_as_provisioned: same,
                message,
            }
        }
        Err(e) => TpmStatus {
            present: false,
            healthy: false,
            manufacturer: String::new(),
            same_tpm_as_provisioned: None,
            message: e.to_string(),
        },
    });
    let volume = match &cfg.volume {
        Some(p) => {
            let v = Volume::new(p);
            let encrypted = v.is_luks()?;
            let (uuid, header) = if encrypted {
                (Some(v.uuid()?), v.header()?)
            } else {
                (None, luks::Header::default())
            };
            let unlocked_by = fs::read_to_string(&cfg.unlock_report)
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "unknown".into());
            Some(VolumeStatus {
                path: p.clone(),
                encrypted,
                uuid,
                keyslots: header.keyslots.clone(),
                tokens: header
                    .tokens
                    .iter()
                    .map(|(id, t)| (*id, t.kind.clone(), t.slots()))
                    .collect(),
                tpm2_enrolled: tpm2_token_slot(&header).is_some(),
                recovery_key_enrolled: !header.tokens_of("systemd-recovery").is_empty(),
                unlocked_by,
            })
        }
        None => None,
    };
    Ok(Status {
        mode: if cfg.tcti.is_some() { "tpm" } else { "trial" },
        tpm,
        secrets: cfg.secret_store()?.status(),
        volume,
        provisioned: st.completed,
        pairing_pending: st.pairing_code.is_some(),
        recovery_key_waiting_to_be_shown: cfg.pending_path(Pending::RecoveryKey).exists(),
    })
}

/// The confirmation a factory reset requires: the volume's LUKS UUID (read on the box's
/// status page), or `factory-reset` without a volume.
pub fn reset_confirmation(cfg: &Config) -> Result<String> {
    match &cfg.volume {
        Some(p) if Volume::new(p).is_luks()? => Volume::new(p).uuid(),
        _ => Ok("factory-reset".into()),
    }
}

/// Destroys the state, the secrets and every keyslot (and, with `clear_tpm`, the TPM's owner
/// hierarchy), then provisions anew.
pub fn factory_reset(cfg: &Config, confirm: &str, clear_tpm: bool) -> Result<FirstBootReport> {
    let expected = reset_confirmation(cfg)?;
    if confirm != expected {
        return Err(ProvisionError::NotConfirmed {
            given: confirm.to_string(),
            expected,
        });
    }
    // State first: a reset cut short leaves a volume first boot refuses to reuse silently.
    cfg.secret_store()?.destroy()?;
    remove_if_exists(&cfg.state_path())?;
    for which in [Pending::RecoveryKey, Pending::InitialKey] {
        drop_pending(cfg, which)?;
    }
    if let Some(p) = &cfg.volume {
        let v = Volume::new(p);
        if v.is_luks()? {
            v.erase()?;
        }
    }
    if let (true, Some(tcti)) = (clear_tpm, &cfg.tcti) {
        Tpm::open(tcti)?.clear_owner()?;
    }
    first_boot(cfg)
}

fn remove_if_exists(p: &Path) -> Result<()> {
    match fs::remove_file(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ProvisionError::Io {
            path: p.to_path_buf(),
            source: e,
        }),
    }
}

fn random32(cfg: &Config) -> Result<Zeroizing<Vec<u8>>> {
    match &cfg.tcti {
        Some(t) => Ok(mixed_random(Some(&mut Tpm::open(t)?))?),
        None => Ok(mixed_random(None)?),
    }
}

/// 12 digits in three groups, typed once by the IT person at pairing.
fn pairing_code(random: &[u8]) -> String {
    let n = random[..8]
        .iter()
        .fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
        % 1_000_000_000_000;
    let s = format!("{n:012}");
    format!("{}-{}-{}", &s[0..4], &s[4..8], &s[8..12])
}
