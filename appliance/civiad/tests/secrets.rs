//! civiad's secrets through `civia-tpm`'s `SecretStore` (a fresh swtpm per test): the box CA
//! key is sealed by the TPM, never on disk in a usable form, and the same CA comes back
//! after a restart; without a TPM the store says so.
#![allow(clippy::unwrap_used)]

use civia_config::Config;
use civia_tpm::swtpm::Swtpm;
use civia_tpm::{Backend, SealPolicy, SecretKind, SecretStore};
use std::path::Path;

fn config(state: &Path, extra: &str) -> Config {
    Config::from_toml(&format!(
        "state_dir = {state:?}\n[model]\npath = \"/nonexistent.gguf\"\n{extra}"
    ))
    .unwrap()
}

fn policy() -> civia_tls::CaPolicy {
    civia_tls::CaPolicy {
        dns: vec!["civia.local".into()],
        ip_ranges: vec![("192.168.0.0".parse().unwrap(), 16)],
        ca_days: 1095,
        rotate_before_days: 90,
    }
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn the_ca_key_is_sealed_by_the_tpm_and_survives_a_restart() {
    let tpm_state = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let secrets_dir = state.path().join("secrets");
    let hosts = vec!["civia.local".to_string()];

    let first = {
        let sw = Swtpm::start_in(tpm_state.path()).unwrap();
        first_boot(&secrets_dir, sw.tcti());
        let cfg = config(
            state.path(),
            &format!("[secrets]\nprotection = \"tpm\"\ntcti = {:?}\n", sw.tcti()),
        );
        let s = civiad::secrets::open(&cfg).unwrap();
        assert_eq!(s.status.protection, "tpm");
        let m = civia_tls::load_or_create(
            &state.path().join("tls"),
            s.tls_ca.expose(),
            &policy(),
            &hosts,
            &[],
        )
        .unwrap();
        assert!(m.ca_rotated);

        // On disk: no usable CA private key, and the seed in no readable form.
        let seed = s.tls_ca.expose().to_vec();
        let hex_seed: String = seed.iter().map(|b| format!("{b:02x}")).collect();
        let ca_public = {
            let (_, der) = x509_parser::pem::parse_x509_pem(m.ca_pem.as_bytes()).unwrap();
            let cert = der.parse_x509().unwrap();
            cert.public_key().subject_public_key.data.to_vec()
        };
        assert!(!state.path().join("tls/ca.key").exists());
        let mut private_keys = 0;
        for f in files(state.path()) {
            let bytes = std::fs::read(&f).unwrap();
            assert!(
                !bytes.windows(seed.len()).any(|w| w == seed.as_slice()),
                "{} holds the CA seed",
                f.display()
            );
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                !text.contains(&hex_seed),
                "{} holds the seed in hex",
                f.display()
            );
            if let Ok(k) = rcgen::KeyPair::from_pem(&text) {
                private_keys += 1;
                assert_ne!(
                    k.public_key_raw(),
                    &ca_public[..],
                    "{} is the CA key",
                    f.display()
                );
            }
        }
        assert_eq!(private_keys, 1, "only the server key");
        m.ca_fingerprint
    };

    // civiad and the TPM restart (the swtpm keeps its state, as a real TPM does).
    let sw = Swtpm::start_in(tpm_state.path()).unwrap();
    let cfg = config(
        state.path(),
        &format!("[secrets]\nprotection = \"auto\"\ntcti = {:?}\n", sw.tcti()),
    );
    let s = civiad::secrets::open(&cfg).unwrap();
    assert_eq!(
        s.status.protection, "tpm",
        "auto takes the TPM when sealed files are there"
    );
    let m = civia_tls::load_or_create(
        &state.path().join("tls"),
        s.tls_ca.expose(),
        &policy(),
        &hosts,
        &[],
    )
    .unwrap();
    assert!(!m.ca_rotated);
    assert_eq!(m.ca_fingerprint, first, "the same CA after a restart");
    drop(sw);

    // Another TPM (the disk moved to another machine): nothing unseals, civiad does not start.
    let other = Swtpm::start().unwrap();
    let cfg = config(
        state.path(),
        &format!(
            "[secrets]\nprotection = \"tpm\"\ntcti = {:?}\n",
            other.tcti()
        ),
    );
    assert!(civiad::secrets::open(&cfg).is_err());
}

#[test]
fn without_a_tpm_the_secrets_are_plain_files_and_the_status_says_so() {
    let state = tempfile::tempdir().unwrap();
    let cfg = config(
        state.path(),
        "[secrets]\nprotection = \"auto\"\ntcti = \"device:/nonexistent/tpmrm0\"\n",
    );
    let s = civiad::secrets::open(&cfg).unwrap();
    assert_eq!(s.status.protection, "trial-files");
    assert!(s.status.message.contains("no TPM"), "{}", s.status.message);
    let again = civiad::secrets::open(&cfg).unwrap();
    assert_eq!(s.tls_ca.expose(), again.tls_ca.expose());
    // Asking for the TPM without sealed secrets is an error, not a silent fallback.
    let cfg = config(state.path(), "[secrets]\nprotection = \"tpm\"\n");
    let err = civiad::secrets::open(&cfg).err().unwrap().to_string();
    assert!(err.contains("civia-provision"), "{err}");
}

/// What `civia-provision first-boot` does: the three secrets sealed by `tcti`'s TPM.
fn first_boot(secrets: &Path, tcti: String) {
    let store = SecretStore::new(
        secrets,
        Backend::Tpm {
            tcti,
            policy: SealPolicy {
                literal_pcrs: vec![7],
                authority: None,
            },
            signed_policy: None,
        },
    );
    for k in SecretKind::ALL {
        store.ensure(k).unwrap();
    }
}

#[test]
fn sealed_secrets_are_escrowed_and_sealed_again_under_a_new_tpm() {
    use clap::Parser;
    let root = tempfile::tempdir().unwrap();
    let (tpm_a, tpm_b) = (root.path().join("tpm-a"), root.path().join("tpm-b"));
    std::fs::create_dir_all(&tpm_a).unwrap();
    std::fs::create_dir_all(&tpm_b).unwrap();
    let (state_a, state_b) = (root.path().join("a"), root.path().join("b"));

    // Box A: its secrets sealed by its TPM; civiad (running) has them unsealed.
    let sw_a = Swtpm::start_in(&tpm_a).unwrap();
    first_boot(&state_a.join("secrets"), sw_a.tcti());
    let cfg_a = config(
        &state_a,
        &format!(
            "[secrets]\nprotection = \"tpm\"\ntcti = {:?}\n",
            sw_a.tcti()
        ),
    );
    let a = civiad::secrets::open(&cfg_a).unwrap();
    let escrow = a.escrow(&cfg_a).expect("sealed secrets are escrowed");
    let raw: Vec<Vec<u8>> = escrow.secrets.values().map(|v| v.to_vec()).collect();
    let key = civia_backup::create_key(&state_a).unwrap();
    let audit = std::sync::Arc::new(
        civia_audit::Audit::open(
            &state_a.join("audit"),
            &state_a.join("keys"),
            &civia_audit::RetentionPolicy {
                months: 6,
                justification: None,
            },
        )
        .unwrap(),
    );
    let backups = civiad::backup::service(&cfg_a, audit, a.backup_smb_key(), Some(escrow.clone()));
    let archive = root.path().join("a.civia-backup");
    let job = backups.begin(civia_backup::Target::Download).unwrap();
    job.to_writer(
        std::fs::File::create(&archive).unwrap(),
        &civia_backup::By::default(),
    )
    .unwrap();
    let identity = civia_backup::parse_key(&key).unwrap();
    let seen = civia_backup::verify(&archive, &identity, env!("CARGO_PKG_VERSION")).unwrap();
    assert_eq!(
        seen.manifest.escrow,
        ["audit-hmac", "device-identity", "tls-ca"]
    );
    assert!(
        !seen
            .manifest
            .files
            .iter()
            .any(|f| f.path.ends_with(".sealed")),
        "sealed files are useless on another TPM"
    );
    // A stopped box's own backup cannot escrow them: refused, not silently incomplete.
    drop(backups);
    assert!(matches!(
        civia_backup::create(&state_a, &root.path().join("x"), "0.1.0"),
        Err(civia_backup::BackupError::Sealed(_))
    ));

    // Box B: another TPM, its own first boot; the archive restored with `civia`.
    let sw_b = Swtpm::start_in(&tpm_b).unwrap();
    first_boot(&state_b.join("secrets"), sw_b.tcti());
    let own_b = std::fs::read(state_b.join("secrets/device-identity.sealed")).unwrap();
    let toml_b = root.path().join("b.toml");
    std::fs::write(
        &toml_b,
        format!(
            "state_dir = {state_b:?}\n[model]\npath = \"/nonexistent.gguf\"\n[secrets]\nprotection = \"tpm\"\ntcti = {:?}\n",
            sw_b.tcti()
        ),
    )
    .unwrap();
    let key_file = root.path().join("cle.txt");
    std::fs::write(&key_file, format!("{key}\n")).unwrap();
    let cli = civia_cli::Cli::try_parse_from([
        "civia",
        "--config",
        toml_b.to_str().unwrap(),
        "backup",
        "restore",
        archive.to_str().unwrap(),
        "--key-file",
        key_file.to_str().unwrap(),
        "--force",
    ])
    .unwrap();
    let mut out = Vec::new();
    civia_cli::run(&cli, &mut std::io::empty(), &mut out).unwrap();

    // B unseals A's secrets with its own TPM: the same audit keys and CA.
    let cfg_b = config(
        &state_b,
        &format!(
            "[secrets]\nprotection = \"tpm\"\ntcti = {:?}\n",
            sw_b.tcti()
        ),
    );
    let b = civiad::secrets::open(&cfg_b).unwrap();
    assert_eq!(b.status.protection, "tpm");
    assert_eq!(*b.audit_signing_seed(), *a.audit_signing_seed());
    assert_eq!(*b.audit_pseudonym_secret(), *a.audit_pseudonym_secret());
    assert_eq!(b.tls_ca.expose(), a.tls_ca.expose());
    let resealed = std::fs::read(state_b.join("secrets/device-identity.sealed")).unwrap();
    assert_ne!(
        resealed, own_b,
        "B's own secret was replaced by A's, sealed again"
    );
    // Bound exactly like B's own first-boot secret: the same PCRs and values, the same policy.
    let (resealed, own_b) = (
        civia_tpm::SealedBlob::from_json(std::str::from_utf8(&resealed).unwrap()).unwrap(),
        civia_tpm::SealedBlob::from_json(std::str::from_utf8(&own_b).unwrap()).unwrap(),
    );
    assert_eq!(resealed.literal_pcrs, own_b.literal_pcrs);
    assert_eq!(resealed.policy_digest, own_b.policy_digest);
    assert!(!resealed.literal_pcrs.indices().is_empty());
    // Sealed by B's TPM: A's TPM cannot open it; and no secret lies in clear on B's disk.
    let by_a = SecretStore::new(
        state_b.join("secrets"),
        Backend::Tpm {
            tcti: sw_a.tcti(),
            policy: SealPolicy {
                literal_pcrs: Vec::new(),
                authority: None,
            },
            signed_policy: None,
        },
    );
    assert!(by_a.load(SecretKind::DeviceIdentity).is_err());
    for path in files(&state_b) {
        let bytes = std::fs::read(&path).unwrap();
        for secret in &raw {
            let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_slice())
                    && !bytes.windows(hex.len()).any(|w| w == hex.as_bytes()),
                "a secret in clear in {}",
                path.display()
            );
        }
    }
}
