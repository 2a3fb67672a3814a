use super::*;

const SEED: [u8; 32] = [7; 32];

fn policy() -> CaPolicy {
    CaPolicy {
        dns: vec!["civia.local".into(), "localhost".into()],
        ip_ranges: vec![
            ("192.168.0.0".parse().unwrap(), 16),
            ("127.0.0.0".parse().unwrap(), 8),
            ("fc00::".parse().unwrap(), 7),
        ],
        ca_days: 1095,
        rotate_before_days: 90,
    }
}

fn hosts() -> Vec<String> {
    vec!["civia.local".into(), "localhost".into()]
}

fn addrs() -> Vec<IpAddr> {
    vec!["192.168.1.10".parse().unwrap()]
}

/// `openssl verify` of `leaf` against `ca` alone.
fn openssl_verify(dir: &Path, ca: &str, leaf: &str) -> (bool, String) {
    std::fs::write(dir.join("v-ca.pem"), ca).unwrap();
    std::fs::write(dir.join("v-leaf.pem"), leaf).unwrap();
    let out = std::process::Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(dir.join("v-ca.pem"))
        .arg(dir.join("v-leaf.pem"))
        .output()
        .expect("openssl runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn openssl_text(dir: &Path, pem: &str) -> String {
    std::fs::write(dir.join("x.pem"), pem).unwrap();
    let out = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(dir.join("x.pem"))
        .output()
        .expect("openssl runs");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn created_once_reused_then_renewed_when_names_change() {
    let dir = tempfile::tempdir().unwrap();
    let tls = dir.path().join("tls");
    let a = load_or_create(&tls, &SEED, &policy(), &hosts(), &addrs()).unwrap();
    assert!(a.renewed && a.ca_rotated && a.ca_pem.contains("BEGIN CERTIFICATE"));
    assert_eq!(a.ca_generation, 0);
    let mode = |f: &str| std::fs::metadata(tls.join(f)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode("server.key"), 0o600);
    assert_eq!(
        std::fs::metadata(&tls).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let b = load_or_create(&tls, &SEED, &policy(), &hosts(), &addrs()).unwrap();
    assert!(!b.renewed && !b.ca_rotated);
    assert_eq!(a.ca_pem, b.ca_pem);
    assert_eq!(a.ca_fingerprint, b.ca_fingerprint);
    let mut more = policy();
    more.dns.push("mairie.example".into());
    let c = load_or_create(&tls, &SEED, &more, &["mairie.example".into()], &addrs()).unwrap();
    assert!(c.renewed, "new names need a new certificate");
    assert!(
        c.ca_rotated,
        "a CA whose constraints do not cover the names is replaced"
    );
    assert_eq!(c.ca_generation, 1);
    let (ok, text) = openssl_verify(
        dir.path(),
        &c.ca_pem,
        &std::fs::read_to_string(tls.join("server.crt")).unwrap(),
    );
    assert!(ok, "{text}");
}

#[test]
fn garbage_files_are_reported_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let tls = dir.path().join("tls");
    load_or_create(&tls, &SEED, &policy(), &hosts(), &[]).unwrap();
    std::fs::write(tls.join("server.crt"), "not a certificate").unwrap();
    let err = load_or_create(&tls, &SEED, &policy(), &hosts(), &[])
        .err()
        .unwrap();
    assert!(err.to_string().contains("server.crt"), "{err}");
}

#[test]
fn the_ca_has_critical_name_constraints_for_the_box_names_and_lan_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let m = load_or_create(
        &dir.path().join("tls"),
        &SEED,
        &policy(),
        &hosts(),
        &addrs(),
    )
    .unwrap();
    let text = openssl_text(dir.path(), &m.ca_pem);
    assert!(text.contains("X509v3 Name Constraints: critical"), "{text}");
    for want in [
        "DNS:civia.local",
        "DNS:localhost",
        "IP:192.168.0.0/255.255.0.0",
        "IP:127.0.0.0/255.0.0.0",
    ] {
        assert!(text.contains(want), "{want} missing: {text}");
    }
    // About three years, not ten.
    let f = ca_facts(Path::new("ca.crt"), &m.ca_pem).unwrap();
    assert!(f.lifetime_days <= 1096, "{}", f.lifetime_days);
    // The fingerprint is the SHA-256 of the DER certificate.
    assert_eq!(m.ca_fingerprint.len(), 32 * 3 - 1);
    assert!(text.contains("Name Constraints"));
}

#[test]
fn a_leaf_outside_the_box_names_does_not_verify() {
    let dir = tempfile::tempdir().unwrap();
    let m = load_or_create(
        &dir.path().join("tls"),
        &SEED,
        &policy(),
        &hosts(),
        &addrs(),
    )
    .unwrap();
    // Whoever holds the CA key signs a certificate for another site.
    let key = derive_ca_key(&SEED, 0).unwrap();
    let (evil, _) = new_server_cert(
        &m.ca_pem,
        &key,
        &["www.impots.gouv.fr".into()],
        &["8.8.8.8".parse().unwrap()],
    )
    .unwrap();
    let (ok, text) = openssl_verify(dir.path(), &m.ca_pem, &evil);
    assert!(!ok, "a leaf for another site verified: {text}");
    assert!(text.contains("permitted subtree violation"), "{text}");
    let (evil_ip, _) =
        new_server_cert(&m.ca_pem, &key, &[], &["8.8.8.8".parse().unwrap()]).unwrap();
    assert!(
        !openssl_verify(dir.path(), &m.ca_pem, &evil_ip).0,
        "an address outside the LAN verified"
    );
    // The box's own certificate verifies.
    let own = std::fs::read_to_string(dir.path().join("tls/server.crt")).unwrap();
    let (ok, text) = openssl_verify(dir.path(), &m.ca_pem, &own);
    assert!(ok, "{text}");
}

#[test]
fn the_ca_key_is_never_on_disk_and_an_old_key_file_is_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let tls = dir.path().join("tls");
    std::fs::create_dir_all(&tls).unwrap();
    std::fs::write(tls.join("ca.key"), "-----BEGIN PRIVATE KEY-----\nold\n").unwrap();
    let m = load_or_create(&tls, &SEED, &policy(), &hosts(), &addrs()).unwrap();
    assert!(!tls.join("ca.key").exists());
    // The only private key on disk is the server's, and it is not the CA's.
    let ca_public = derive_ca_key(&SEED, m.ca_generation)
        .unwrap()
        .public_key_raw()
        .to_vec();
    let mut keys = 0;
    for entry in std::fs::read_dir(&tls).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        if let Ok(k) = KeyPair::from_pem(&text) {
            keys += 1;
            assert_ne!(k.public_key_raw(), &ca_public[..]);
        }
    }
    assert_eq!(keys, 1);
    let _ = m;
}

#[test]
fn the_ca_rotates_before_its_end_and_when_unconstrained_or_foreign() {
    let dir = tempfile::tempdir().unwrap();
    let tls = dir.path().join("tls");
    let mut short = policy();
    short.ca_days = 60;
    short.rotate_before_days = 30;
    let a = load_or_create(&tls, &SEED, &short, &hosts(), &addrs()).unwrap();
    // 60 days left, rotation at 61: replaced, with the next generation's key.
    short.rotate_before_days = 61;
    short.ca_days = 120;
    let b = load_or_create(&tls, &SEED, &short, &hosts(), &addrs()).unwrap();
    assert!(b.ca_rotated && b.renewed);
    assert_eq!(b.ca_generation, a.ca_generation + 1);
    assert_ne!(a.ca_fingerprint, b.ca_fingerprint);
    let server = std::fs::read_to_string(tls.join("server.crt")).unwrap();
    assert!(
        openssl_verify(dir.path(), &b.ca_pem, &server).0,
        "server cert re-issued by the new CA"
    );
    assert!(!openssl_verify(dir.path(), &a.ca_pem, &server).0);

    // An unconstrained ten-year CA made by an older version, with this seed's key.
    let key = derive_ca_key(&SEED, 5).unwrap();
    let mut p = CertificateParams::default();
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.not_after = OffsetDateTime::now_utc() + Duration::days(3650);
    std::fs::write(tls.join("ca.crt"), p.self_signed(&key).unwrap().pem()).unwrap();
    let c = load_or_create(&tls, &SEED, &policy(), &hosts(), &addrs()).unwrap();
    assert!(c.ca_rotated);
    assert_eq!(c.ca_generation, 6);

    // Another seed (a new TPM secret): a new CA.
    let d = load_or_create(&tls, &[9; 32], &policy(), &hosts(), &addrs()).unwrap();
    assert!(d.ca_rotated && d.renewed);
    assert_eq!(d.ca_generation, 0);
}

#[test]
fn policies_that_would_leave_the_ca_unconstrained_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = policy();
    p.dns.clear();
    p.ip_ranges.clear();
    assert!(load_or_create(dir.path(), &SEED, &p, &hosts(), &[]).is_err());
    assert!(load_or_create(dir.path(), &[1; 16], &policy(), &hosts(), &[]).is_err());
}
