//! First boot, LUKS2 enrolment, recovery key, failpoints, factory reset and quotes, against a
//! fresh swtpm and a LUKS2 volume in a file (no device-mapper needed: keys are checked with
//! `cryptsetup open --test-passphrase`, and the TPM2 token by unsealing its blob with the
//! same swtpm and testing the passphrase it yields).
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions fail loudly

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine;
use civia_provision::luks::{KeyFile, Volume};
use civia_provision::{Config, FAILPOINTS, FAILPOINT_ENV};
use civia_tpm::swtpm::Swtpm;
use civia_tpm::{PolicyAuthority, SignedPolicies, Tpm, TpmError};

struct Env {
    sw: Swtpm,
    dir: tempfile::TempDir,
    /// The runtime directory, on a RAM file system as on the box (`/run`).
    run: tempfile::TempDir,
    priv_pem: String,
    /// The data volume: `var.img`, or a loop device over it.
    var: PathBuf,
}

impl Env {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let priv_path = dir.path().join("policy.key.pem");
        let pub_path = dir.path().join("policy.pub.pem");
        assert!(Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out"
            ])
            .arg(&priv_path)
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap()
            .success());
        assert!(Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(&priv_path)
            .arg("-out")
            .arg(&pub_path)
            .status()
            .unwrap()
            .success());
        let f = std::fs::File::create(dir.path().join("var.img")).unwrap();
        f.set_len(32 << 20).unwrap();
        let env = Env {
            sw: Swtpm::start().unwrap(),
            priv_pem: std::fs::read_to_string(&priv_path).unwrap(),
            var: dir.path().join("var.img"),
            run: tempfile::tempdir_in("/dev/shm").unwrap(),
            dir,
        };
        // What firmware and systemd-stub would have measured.
        let mut tpm = env.tpm();
        tpm.extend_pcr(7, b"secure boot: enabled, db, dbx").unwrap();
        tpm.extend_pcr(11, b"uki: civia 1.0").unwrap();
        drop(tpm);
        env.sign_current_pcr11();
        env
    }

    fn tpm(&self) -> Tpm {
        Tpm::open(&self.sw.tcti()).unwrap()
    }

    fn p(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Adds the integrator's signature of the current PCR 11 to the signature file.
    fn sign_current_pcr11(&self) {
        let values = self.tpm().read_pcrs(&[11]).unwrap();
        let path = self.p("pcrsig.json");
        let mut signed = std::fs::read_to_string(&path)
            .map(|s| SignedPolicies::from_json(&s).unwrap())
            .unwrap_or_default();
        signed.sign(&self.priv_pem, &values).unwrap();
        std::fs::write(path, signed.to_json().unwrap()).unwrap();
    }

    fn args(&self) -> Vec<String> {
        vec![
            "--state-dir".into(),
            self.p("state").display().to_string(),
            "--runtime-dir".into(),
            self.run.path().display().to_string(),
            "--volume".into(),
            self.var.display().to_string(),
            "--tcti".into(),
            self.sw.tcti(),
            "--policy-key".into(),
            self.p("policy.pub.pem").display().to_string(),
            "--signed-policy".into(),
            self.p("pcrsig.json").display().to_string(),
            "--unlock-report".into(),
            self.p("unlock-method").display().to_string(),
        ]
    }

    fn cfg(&self) -> Config {
        Config {
            state_dir: self.p("state"),
            runtime_dir: self.run.path().to_path_buf(),
            volume: Some(self.var.clone()),
            tcti: Some(self.sw.tcti()),
            literal_pcrs: vec![7],
            signed_pcrs: vec![11],
            policy_key: Some(self.p("policy.pub.pem")),
            signed_policy: Some(self.p("pcrsig.json")),
            unlock_report: self.p("unlock-method"),
        }
    }

    fn run(&self, extra: &[&str], failpoint: Option<&str>) -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_civia-provision"));
        c.args(self.args()).args(extra);
        match failpoint {
            Some(f) => c.env(FAILPOINT_ENV, f),
            None => c.env_remove(FAILPOINT_ENV),
        };
        c.output().unwrap()
    }

    fn ok(&self, extra: &[&str]) -> String {
        let out = self.run(extra, None);
        assert!(
            out.status.success(),
            "civia-provision {extra:?}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn volume(&self) -> Volume {
        Volume::new(&self.var)
    }

    /// The slot `key` opens (`cryptsetup open --test-passphrase`).
    fn opens(&self, key: &[u8]) -> Option<u32> {
        self.volume().test_key(key, None).unwrap()
    }

    /// Unseals the systemd-tpm2 token through swtpm and returns the slot its passphrase opens.
    fn tpm_token_opens(&self) -> Result<Option<u32>, TpmError> {
        let blob = civia_provision::tpm2_token_blob(&self.volume()).unwrap();
        let authority =
            PolicyAuthority::from_pem(&std::fs::read_to_string(self.p("policy.pub.pem")).unwrap())
                .unwrap();
        let signed =
            SignedPolicies::from_json(&std::fs::read_to_string(self.p("pcrsig.json")).unwrap())
                .unwrap();
        let secret =
            self.tpm()
                .unseal_systemd_token(&blob, &[7], Some((&authority, &[11], &signed)))?;
        // systemd 252 uses the base64 of the unsealed secret as the LUKS passphrase.
        let pass = base64::engine::general_purpose::STANDARD.encode(&secret[..]);
        Ok(self.opens(pass.as_bytes()))
    }

    fn token_kinds(&self) -> Vec<String> {
        let mut k: Vec<String> = self
            .volume()
            .header()
            .unwrap()
            .tokens
            .values()
            .map(|t| t.kind.clone())
            .collect();
        k.sort();
        k
    }

    fn secret_files(&self) -> Vec<(String, Vec<u8>)> {
        let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(self.p("state/secrets"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".sealed"))
                    .map(|e| {
                        (
                            e.file_name().to_string_lossy().into_owned(),
                            std::fs::read(e.path()).unwrap(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// The recovery key waiting to be shown (unsealed through the TPM, left pending).
    fn pending_recovery_key(&self) -> String {
        self.try_pending_recovery_key().unwrap()
    }

    fn try_pending_recovery_key(&self) -> Option<String> {
        civia_provision::peek_recovery_key(&self.cfg())
            .unwrap()
            .map(|k| k.as_str().to_string())
    }

    /// The invariants of a completed first boot.
    fn assert_provisioned(&self) {
        let h = self.volume().header().unwrap();
        assert_eq!(
            h.keyslots.len(),
            2,
            "exactly recovery + TPM2 keyslots: {:?}",
            h.keyslots
        );
        assert_eq!(self.token_kinds(), vec!["systemd-recovery", "systemd-tpm2"]);
        let rec = self.opens(self.pending_recovery_key().as_bytes());
        let tpm = self.tpm_token_opens().unwrap();
        assert!(
            rec.is_some() && tpm.is_some() && rec != tpm,
            "recovery {rec:?}, tpm {tpm:?}"
        );
        assert!(!self.p("state/initial-key.sealed").exists());
        // Nothing left in clear: no key file in the state directory or in memory.
        for dir in [self.p("state"), self.run.path().to_path_buf()] {
            for e in std::fs::read_dir(&dir).unwrap() {
                let name = e.unwrap().file_name().to_string_lossy().into_owned();
                assert!(
                    !name.ends_with(".tmpkey") && !name.ends_with(".key"),
                    "{name} left in {}",
                    dir.display()
                );
            }
        }
        let secrets = self.cfg().secret_store().unwrap().load_all().unwrap();
        assert_eq!(secrets.tls_ca.expose().len(), 32);
        let status: serde_json::Value = serde_json::from_str(&self.ok(&["status"])).unwrap();
        assert_eq!(status["provisioned"], true);
    }
}

#[test]
fn first_boot_enrolls_tpm_and_recovery_key_and_rotation_invalidates_old_key() {
    let env = Env::new();
    let t0 = std::time::Instant::now();
    let report: serde_json::Value = serde_json::from_str(&env.ok(&["first-boot"])).unwrap();
    eprintln!("first boot: {:?}", t0.elapsed());
    let code = report["pairing_code"].as_str().unwrap();
    assert_eq!(code.len(), 14, "{code}");
    assert_eq!(report["recovery_key_pending"], true);
    env.assert_provisioned();

    // Idempotent: a second run changes nothing.
    let before = (env.volume().header().unwrap().keyslots, env.secret_files());
    let again: serde_json::Value = serde_json::from_str(&env.ok(&["first-boot"])).unwrap();
    assert_eq!(again["pairing_code"], report["pairing_code"]);
    assert_eq!(
        (env.volume().header().unwrap().keyslots, env.secret_files()),
        before
    );

    // A signed update: PCR 11 changes. Without a signature for it the TPM refuses...
    env.tpm().extend_pcr(11, b"uki: civia 1.1").unwrap();
    assert!(matches!(
        env.tpm_token_opens(),
        Err(TpmError::NoSignedPolicy { .. })
    ));
    assert!(env.cfg().secret_store().unwrap().load_all().is_err());
    // ...with the integrator's signature of the new value both unlock, nothing re-enrolled.
    env.sign_current_pcr11();
    assert!(env.tpm_token_opens().unwrap().is_some());
    env.cfg().secret_store().unwrap().load_all().unwrap();

    // The recovery key is shown once.
    let key = env.ok(&["recovery-key", "take"]).trim().to_string();
    assert_eq!(key.len(), 71);
    assert!(env.run(&["recovery-key", "take"], None).status.code() == Some(1));
    let old_slot = env
        .opens(key.as_bytes())
        .expect("recovery key opens the volume");

    // Rotation with the current key (typed in capitals without dashes: normalized).
    std::fs::write(env.p("typed"), key.to_uppercase().replace('-', " ")).unwrap();
    let new = env.ok(&[
        "recovery-key",
        "rotate",
        "--key-file",
        env.p("typed").to_str().unwrap(),
    ]);
    let new = new.trim();
    assert_ne!(new, key);
    assert_eq!(
        env.opens(key.as_bytes()),
        None,
        "the old recovery key must fail"
    );
    assert!(env.opens(new.as_bytes()).is_some());
    assert!(
        env.tpm_token_opens().unwrap().is_some(),
        "the TPM2 slot is untouched"
    );
    assert_eq!(env.volume().header().unwrap().keyslots.len(), 2);
    assert_eq!(env.token_kinds(), vec!["systemd-recovery", "systemd-tpm2"]);
    let _ = old_slot;

    // Rotation with the volume key (what the running box holds, not the old recovery key).
    env.volume()
        .dump_volume_key(new.as_bytes(), &env.p("vk"))
        .unwrap();
    let newer = env.ok(&[
        "recovery-key",
        "rotate",
        "--volume-key-file",
        env.p("vk").to_str().unwrap(),
    ]);
    assert_eq!(env.opens(new.as_bytes()), None);
    assert!(env.opens(newer.trim().as_bytes()).is_some());
    assert_eq!(env.volume().header().unwrap().keyslots.len(), 2);

    // Status.
    std::fs::write(env.p("unlock-method"), "tpm2\n").unwrap();
    let s: serde_json::Value = serde_json::from_str(&env.ok(&["status"])).unwrap();
    assert_eq!(s["mode"], "tpm");
    assert_eq!(s["tpm"]["healthy"], true);
    assert_eq!(s["tpm"]["same_tpm_as_provisioned"], true);
    assert_eq!(s["volume"]["encrypted"], true);
    assert_eq!(s["volume"]["tpm2_enrolled"], true);
    assert_eq!(s["volume"]["recovery_key_enrolled"], true);
    assert_eq!(s["volume"]["unlocked_by"], "tpm2");
    assert_eq!(s["secrets"]["protection"], "tpm");
    assert_eq!(s["recovery_key_waiting_to_be_shown"], false);
}

#[test]
fn killed_at_every_step_a_rerun_completes_without_loss_or_duplicate() {
    let t0 = std::time::Instant::now();
    for fp in FAILPOINTS {
        let env = Env::new();
        let out = env.run(&["first-boot"], Some(fp));
        assert_eq!(
            out.status.signal(),
            Some(6),
            "failpoint {fp} not reached: {out:?}"
        );
        let secrets_at_kill = env.secret_files();
        let pending_at_kill = env.try_pending_recovery_key();

        env.ok(&["first-boot"]);
        env.assert_provisioned();
        // No secret lost: what existed at the kill is what the box keeps.
        let after = env.secret_files();
        for (name, bytes) in &secrets_at_kill {
            assert!(
                after.contains(&(name.clone(), bytes.clone())),
                "{fp}: {name} replaced"
            );
        }
        if let Some(k) = pending_at_kill {
            assert_eq!(env.pending_recovery_key(), k, "{fp}: recovery key replaced");
        }
    }
    eprintln!("{} failpoints: {:?}", FAILPOINTS.len(), t0.elapsed());
}

#[test]
fn leftover_keyslot_of_an_interrupted_enrolment_is_removed() {
    let env = Env::new();
    // Stop just before TPM enrolment, then leave a keyslot no token names, as a
    // systemd-cryptenroll cut between its keyslot and its token would.
    let out = env.run(&["first-boot"], Some("recovery-recorded"));
    assert_eq!(out.status.signal(), Some(6));
    let blob = civia_tpm::SealedBlob::from_json(
        &std::fs::read_to_string(env.p("state/initial-key.sealed")).unwrap(),
    )
    .unwrap();
    let signed =
        SignedPolicies::from_json(&std::fs::read_to_string(env.p("pcrsig.json")).unwrap()).unwrap();
    let init = env.tpm().unseal(&blob, Some(&signed)).unwrap();
    let orphan = KeyFile::new(env.run.path(), "orphan", b"half-enrolled").unwrap();
    env.volume()
        .add_key(&civia_provision::luks::Auth::Passphrase(&init), &orphan)
        .unwrap();
    drop(orphan);
    assert_eq!(env.volume().header().unwrap().keyslots.len(), 3);
    env.ok(&["first-boot"]);
    env.assert_provisioned();
    assert_eq!(env.opens(b"half-enrolled"), None);
}

#[test]
fn replaced_tpm_is_reported_and_provisioned_volume_is_never_reformatted() {
    let mut env = Env::new();
    env.ok(&["first-boot"]);
    // Another TPM (new swtpm state).
    env.sw = Swtpm::start().unwrap();
    let s: serde_json::Value = serde_json::from_str(&env.ok(&["status"])).unwrap();
    assert_eq!(s["tpm"]["same_tpm_as_provisioned"], false);
    assert!(s["tpm"]["message"]
        .as_str()
        .unwrap()
        .contains("replaced or cleared"));
    let out = env.run(&["first-boot"], None);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("TPM changed"),
        "{out:?}"
    );

    // Lost state on a provisioned volume: refuse to format.
    std::fs::remove_dir_all(env.p("state")).unwrap();
    let out = env.run(&["first-boot"], None);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("refusing to format"),
        "{out:?}"
    );
}

#[test]
fn factory_reset_needs_confirmation_and_destroys_keys_and_secrets() {
    let env = Env::new();
    env.ok(&["first-boot"]);
    let old_key = env.pending_recovery_key();
    let old_secrets = env.secret_files();
    let uuid = env.volume().uuid().unwrap();
    let srk = env.tpm().srk_name().unwrap();

    let out = env.run(&["factory-reset", "--confirm", "yes"], None);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&uuid),
        "{out:?}"
    );
    assert!(
        env.opens(old_key.as_bytes()).is_some(),
        "nothing destroyed without confirmation"
    );

    env.ok(&["factory-reset", "--confirm", &uuid, "--clear-tpm"]);
    assert_eq!(
        env.opens(old_key.as_bytes()),
        None,
        "old recovery key destroyed"
    );
    assert_ne!(env.volume().uuid().unwrap(), uuid, "a new volume");
    assert_ne!(
        env.tpm().srk_name().unwrap(),
        srk,
        "TPM owner hierarchy cleared"
    );
    let new_secrets = env.secret_files();
    assert_eq!(new_secrets.len(), 3);
    assert!(new_secrets.iter().all(|s| !old_secrets.contains(s)));
    env.assert_provisioned();
}

#[test]
fn verify_quote_offline() {
    let env = Env::new();
    let report: serde_json::Value = serde_json::from_str(&env.ok(&["first-boot"])).unwrap();
    let ak = report["ak_public"].as_str().unwrap().to_string();
    let nonce = "00112233445566778899aabbccddeeff";
    std::fs::write(env.p("quote.json"), env.ok(&["quote", "--nonce", nonce])).unwrap();
    let published = env.tpm().read_pcrs(&[7, 11]).unwrap();
    std::fs::write(
        env.p("published.json"),
        serde_json::to_string(&published).unwrap(),
    )
    .unwrap();

    let verify = |ak: &str, nonce: &str, published: &Path| {
        Command::new(env!("CARGO_BIN_EXE_civia-provision"))
            .args([
                "verify-quote",
                "--quote",
                env.p("quote.json").to_str().unwrap(),
                "--ak",
                ak,
                "--nonce",
                nonce,
                "--published",
            ])
            .arg(published)
            .output()
            .unwrap()
    };
    let good = verify(&ak, nonce, &env.p("published.json"));
    assert!(good.status.success(), "{good:?}");
    assert!(String::from_utf8_lossy(&good.stdout).starts_with("quote OK"));

    let bad_nonce = verify(&ak, "ffff", &env.p("published.json"));
    assert!(
        String::from_utf8_lossy(&bad_nonce.stderr).contains("nonce"),
        "{bad_nonce:?}"
    );
    let mut wrong = published.clone();
    wrong.0.insert(11, [0x42; 32]);
    std::fs::write(env.p("wrong.json"), serde_json::to_string(&wrong).unwrap()).unwrap();
    let bad_pcr = verify(&ak, nonce, &env.p("wrong.json"));
    assert!(
        String::from_utf8_lossy(&bad_pcr.stderr).contains("PCR [11]"),
        "{bad_pcr:?}"
    );
    let other = Swtpm::start().unwrap();
    let other_ak = hex::encode(Tpm::open(&other.tcti()).unwrap().attestation_key().unwrap());
    let bad_key = verify(&other_ak, nonce, &env.p("published.json"));
    assert!(
        String::from_utf8_lossy(&bad_key.stderr).contains("signature"),
        "{bad_key:?}"
    );
    for o in [bad_nonce, bad_pcr, bad_key] {
        assert_eq!(o.status.code(), Some(1));
    }
}

#[test]
fn trial_mode_without_tpm_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_civia-provision"))
            .args(["--trial", "--state-dir", state.to_str().unwrap()])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let r = run(&["first-boot"]);
    assert_eq!(r["protection"], "trial-files");
    let s = run(&["status"]);
    assert_eq!(s["mode"], "trial");
    assert!(s["secrets"]["message"].as_str().unwrap().contains("no TPM"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(state.join("secrets/tls-ca.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

/// Runs a command that must succeed; returns its standard output.
fn must(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(out.status.success(), "{program} {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// Undoes a mount and a loop device on drop (a failed assertion leaves nothing behind).
struct Attached {
    mount: Option<PathBuf>,
    loops: Vec<String>,
}

impl Attached {
    fn release(&mut self) {
        if let Some(m) = self.mount.take() {
            let _ = Command::new("umount").arg(&m).status();
        }
        for l in self.loops.drain(..) {
            let _ = Command::new("losetup").args(["-d", &l]).status();
        }
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        self.release();
    }
}

/// Issue 19, item 1: the recovery key must never reach the unencrypted `/state` partition,
/// not even in freed blocks. `/state` is an ext4 file system in a file (loop-mounted), the
/// volume a loop device; after first boot, `take` and a rotation, the raw image of `/state`
/// is scanned for every recovery key the box produced.
#[test]
fn recovery_keys_never_reach_the_state_disk() {
    let root = Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
    if !root || Command::new("losetup").arg("--version").output().is_err() {
        eprintln!("SKIPPED: needs root and losetup (loop devices, mount)");
        return;
    }
    let mut env = Env::new();
    let state_img = env.p("state.img");
    let f = std::fs::File::create(&state_img).unwrap();
    f.set_len(32 << 20).unwrap();
    drop(f);
    must(
        "mkfs.ext4",
        &["-q", "-F", "-L", "civia-state", state_img.to_str().unwrap()],
    );
    std::fs::create_dir(env.p("state")).unwrap();
    let mut att = Attached {
        mount: None,
        loops: Vec::new(),
    };
    let var_loop = must(
        "losetup",
        &["--find", "--show", env.p("var.img").to_str().unwrap()],
    )
    .trim()
    .to_string();
    att.loops.push(var_loop.clone());
    env.var = PathBuf::from(&var_loop);
    must(
        "mount",
        &[
            "-o",
            "loop",
            state_img.to_str().unwrap(),
            env.p("state").to_str().unwrap(),
        ],
    );
    att.mount = Some(env.p("state"));

    env.ok(&["first-boot"]);
    env.assert_provisioned();
    // The key waits sealed by the TPM (the only form it takes on /state) until shown.
    let sealed = env.p("state/recovery-key.pending.sealed");
    assert!(sealed.exists());
    let shown = env.ok(&["recovery-key", "take"]).trim().to_string();
    assert!(!sealed.exists());
    assert_eq!(shown.len(), 71);
    // A rotation authorized by the shown key (typed into a file in memory, not on /state).
    let typed = tempfile::tempdir_in("/dev/shm").unwrap();
    let typed_key = typed.path().join("typed");
    std::fs::write(&typed_key, &shown).unwrap();
    let rotated = env
        .ok(&[
            "recovery-key",
            "rotate",
            "--key-file",
            typed_key.to_str().unwrap(),
        ])
        .trim()
        .to_string();
    assert!(env.opens(rotated.as_bytes()).is_some());
    att.release();

    let raw = std::fs::read(&state_img).unwrap();
    for (what, key) in [("first-boot", &shown), ("rotated", &rotated)] {
        let found = raw.windows(key.len()).position(|w| w == key.as_bytes());
        assert!(
            found.is_none(),
            "the {what} recovery key is in clear in the /state image at byte {found:?}"
        );
    }
}

#[test]
fn key_files_are_refused_outside_memory() {
    let disk = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    if civia_provision::luks::is_in_memory(disk.path()).unwrap() {
        eprintln!("SKIPPED: the target directory is itself on tmpfs");
        return;
    }
    let err = KeyFile::new(disk.path(), "k", b"secret").err().unwrap();
    assert!(err.to_string().contains("not a RAM file system"), "{err}");
    assert_eq!(std::fs::read_dir(disk.path()).unwrap().count(), 0);
    let mem = tempfile::tempdir_in("/dev/shm").unwrap();
    let kf = KeyFile::new(mem.path(), "k", b"secret").unwrap();
    assert_eq!(std::fs::read(kf.path()).unwrap(), b"secret");
    let path = kf.path().to_path_buf();
    drop(kf);
    assert!(!path.exists());
}
