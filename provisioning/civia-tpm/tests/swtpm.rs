//! TPM tests against a fresh swtpm each (they need `swtpm`; appliance/scripts/deps.sh).
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions fail loudly

mod common;

use civia_tpm::policy::PcrValues;
use civia_tpm::secrets::SecretState;
use civia_tpm::swtpm::Swtpm;
use civia_tpm::{
    verify_quote, Backend, PolicyAuthority, QuoteError, SealPolicy, SecretKind, SecretStore,
    SignedPolicies, Tpm, TpmError,
};

fn open(sw: &Swtpm) -> Tpm {
    Tpm::open(&sw.tcti()).expect("open swtpm")
}

fn literal(pcrs: &[u8]) -> SealPolicy {
    SealPolicy {
        literal_pcrs: pcrs.to_vec(),
        authority: None,
    }
}

#[test]
fn random_and_pcr_reads() {
    let sw = Swtpm::start().unwrap();
    let mut tpm = open(&sw);
    let a = tpm.random(100).unwrap();
    let b = tpm.random(100).unwrap();
    assert_eq!(a.len(), 100);
    assert_ne!(*a, *b);
    let pcrs: Vec<u8> = (0..=23).collect();
    let v = tpm.read_pcrs(&pcrs).unwrap();
    assert_eq!(v.indices(), pcrs);
    assert_eq!(v.0[&7], [0u8; 32]);
    tpm.extend_pcr(7, b"secure boot db").unwrap();
    let after = tpm.read_pcrs(&[7]).unwrap();
    // PCR_new = SHA-256(PCR_old || SHA-256(data))
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update([0u8; 32]);
    h.update(Sha256::digest(b"secure boot db"));
    assert_eq!(after.0[&7], <[u8; 32]>::from(h.finalize()));
}

#[test]
fn seal_unseal_and_pcr_change_refused() {
    let sw = Swtpm::start().unwrap();
    let mut tpm = open(&sw);
    tpm.extend_pcr(7, b"secure boot on").unwrap();
    let blob = tpm.seal(b"audit hmac secret", &literal(&[7])).unwrap();
    assert!(
        !blob.user_with_auth().unwrap(),
        "sealed object must be policy-only"
    );
    assert_eq!(&tpm.unseal(&blob, None).unwrap()[..], b"audit hmac secret");

    // The blob survives a round trip through its JSON file form.
    let blob = civia_tpm::SealedBlob::from_json(&blob.to_json().unwrap()).unwrap();
    tpm.extend_pcr(7, b"secure boot db changed").unwrap();
    let err = tpm.unseal(&blob, None).unwrap_err();
    assert!(
        matches!(err, TpmError::PcrMismatch { ref changed } if changed == &vec![7]),
        "{err}"
    );
    assert!(err.to_string().contains("PCR [7] changed"), "{err}");
    let h = tpm.health().unwrap();
    assert_eq!(
        (h.transient_objects_loaded, h.sessions_loaded),
        (0, 0),
        "handles leaked"
    );
}

#[test]
fn signed_policy_survives_pcr_update_without_resealing() {
    let sw = Swtpm::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (priv_pem, pub_pem) = common::rsa_keypair(dir.path(), "integrator");
    let (other_priv, _) = common::rsa_keypair(dir.path(), "attacker");
    let authority = PolicyAuthority::from_pem(&pub_pem).unwrap();
    let mut tpm = open(&sw);
    tpm.extend_pcr(7, b"secure boot on").unwrap();
    tpm.extend_pcr(11, b"uki v1").unwrap();
    let policy = SealPolicy {
        literal_pcrs: vec![7],
        authority: Some((authority, vec![11])),
    };
    let blob = tpm.seal(b"device identity seed", &policy).unwrap();
    assert!(!blob.user_with_auth().unwrap());

    let mut signed = SignedPolicies::default();
    signed
        .sign(&priv_pem, &tpm.read_pcrs(&[11]).unwrap())
        .unwrap();
    assert_eq!(
        &tpm.unseal(&blob, Some(&signed)).unwrap()[..],
        b"device identity seed"
    );
    // No signature file at all: refused with a clear error.
    assert!(matches!(
        tpm.unseal(&blob, None),
        Err(TpmError::NoSignedPolicy { .. })
    ));

    // An update changes PCR 11: the old signature no longer matches...
    tpm.extend_pcr(11, b"uki v2").unwrap();
    let err = tpm.unseal(&blob, Some(&signed)).unwrap_err();
    assert!(
        matches!(err, TpmError::NoSignedPolicy { ref pcrs, .. } if pcrs == &vec![11]),
        "{err}"
    );
    // ...a signature by another key for the new values is refused...
    let mut forged = SignedPolicies::default();
    forged
        .sign(&other_priv, &tpm.read_pcrs(&[11]).unwrap())
        .unwrap();
    assert!(tpm.unseal(&blob, Some(&forged)).is_err());
    // ...and so is a forged entry that claims the right key's fingerprint.
    let mut claimed = forged.clone();
    claimed.sha256[0].pkfp = signed.sha256[0].pkfp.clone();
    let err = tpm.unseal(&blob, Some(&claimed)).unwrap_err();
    assert!(matches!(err, TpmError::PolicyRefused { .. }), "{err}");
    // ...while the integrator's signature of the new values unseals, without re-sealing.
    signed
        .sign(&priv_pem, &tpm.read_pcrs(&[11]).unwrap())
        .unwrap();
    assert_eq!(
        &tpm.unseal(&blob, Some(&signed)).unwrap()[..],
        b"device identity seed"
    );

    // The literal PCR still binds: Secure Boot state changes → refused.
    tpm.extend_pcr(7, b"secure boot off").unwrap();
    assert!(matches!(
        tpm.unseal(&blob, Some(&signed)),
        Err(TpmError::PcrMismatch { .. })
    ));
    let h = tpm.health().unwrap();
    assert_eq!(
        (h.transient_objects_loaded, h.sessions_loaded),
        (0, 0),
        "handles leaked"
    );
}

#[test]
fn replaced_or_cleared_tpm_is_reported_as_such() {
    let sw = Swtpm::start().unwrap();
    let blob = open(&sw).seal(b"tls ca seed", &literal(&[7])).unwrap();

    // Another TPM (fresh swtpm state) with identical PCR values: refused as a TPM change.
    let other = Swtpm::start().unwrap();
    let err = open(&other).unseal(&blob, None).unwrap_err();
    assert!(matches!(err, TpmError::TpmChanged { .. }), "{err}");
    assert!(err.to_string().contains("replaced or cleared"), "{err}");

    // The same TPM, cleared (factory reset): also a TPM change.
    let mut tpm = open(&sw);
    assert_eq!(&tpm.unseal(&blob, None).unwrap()[..], b"tls ca seed");
    let before = tpm.srk_name().unwrap();
    tpm.clear_owner().unwrap();
    assert_ne!(tpm.srk_name().unwrap(), before);
    assert!(matches!(
        tpm.unseal(&blob, None),
        Err(TpmError::TpmChanged { .. })
    ));
}

#[test]
fn many_operations_leak_no_handle() {
    // swtpm has no resource manager: a leaked object or session fails within a few calls.
    let sw = Swtpm::start().unwrap();
    let mut tpm = open(&sw);
    for i in 0..30u8 {
        let blob = tpm.seal(&[i; 32], &literal(&[7, 11])).unwrap();
        assert_eq!(&tpm.unseal(&blob, None).unwrap()[..], &[i; 32]);
        // Failing paths must flush too.
        let mut bad = blob.clone();
        bad.literal_pcrs.0.insert(7, [1; 32]);
        assert!(tpm.unseal(&bad, None).is_err());
    }
    let h = tpm.health().unwrap();
    assert!(h.self_test_ok);
    assert_eq!((h.transient_objects_loaded, h.sessions_loaded), (0, 0));
}

#[test]
fn secret_store_tpm_backend() {
    let sw = Swtpm::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = SecretStore::new(
        dir.path().join("secrets"),
        Backend::Tpm {
            tcti: sw.tcti(),
            policy: literal(&[7]),
            signed_policy: None,
        },
    );
    assert!(store
        .status()
        .secrets
        .iter()
        .all(|(_, s)| *s == SecretState::Missing));
    for k in SecretKind::ALL {
        assert!(store.ensure(k).unwrap());
        assert!(
            !store.ensure(k).unwrap(),
            "an existing secret is never replaced"
        );
    }
    let a = store.load_all().unwrap();
    let b = store.load_all().unwrap();
    assert_eq!(a.device_identity.expose(), b.device_identity.expose());
    assert_eq!(a.audit_hmac.expose().len(), 32);
    assert_ne!(a.audit_hmac.expose(), a.tls_ca.expose());
    assert!(
        !format!("{a:?}").contains(&format!("{:?}", a.tls_ca.expose())),
        "Debug redacts"
    );
    let st = store.status();
    assert_eq!(st.protection, "tpm");
    assert!(st.secrets.iter().all(|(_, s)| *s == SecretState::Sealed));
    // The files hold only sealed blobs: the seed is nowhere in them.
    let raw = std::fs::read(dir.path().join("secrets/tls-ca.sealed")).unwrap();
    let seed_hex = hex::encode(a.tls_ca.expose());
    assert!(!String::from_utf8_lossy(&raw).contains(&seed_hex));
}

#[test]
fn secret_store_trial_files_are_0600_and_status_says_so() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let store = SecretStore::new(dir.path().join("secrets"), Backend::TrialFiles);
    for k in SecretKind::ALL {
        store.ensure(k).unwrap();
    }
    let p = dir.path().join("secrets/device-identity.key");
    assert_eq!(
        std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let st = store.status();
    assert_eq!(st.protection, "trial-files");
    assert!(st.message.contains("no TPM"), "{}", st.message);
    assert_eq!(
        store
            .load(SecretKind::DeviceIdentity)
            .unwrap()
            .expose()
            .len(),
        32
    );
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(matches!(
        store.load(SecretKind::DeviceIdentity),
        Err(TpmError::LoosePermissions { .. })
    ));
}

#[test]
fn quote_verification() {
    let sw = Swtpm::start().unwrap();
    let mut tpm = open(&sw);
    tpm.extend_pcr(7, b"secure boot on").unwrap();
    tpm.extend_pcr(11, b"uki v1").unwrap();
    let ak = tpm.attestation_key().unwrap();
    assert_eq!(ak, tpm.attestation_key().unwrap(), "the AK is stable");
    let published: PcrValues = tpm.read_pcrs(&[7, 11]).unwrap();
    let nonce = b"integrator-nonce-0123456789";
    let quote = tpm.quote(&[7, 11], nonce).unwrap();
    // JSON round trip, as handed over.
    let quote: civia_tpm::Quote =
        serde_json::from_str(&serde_json::to_string(&quote).unwrap()).unwrap();

    let info = verify_quote(&quote, &ak, nonce, &published).unwrap();
    assert_eq!(info.pcrs, vec![7, 11]);

    assert_eq!(
        verify_quote(&quote, &ak, b"another nonce", &published),
        Err(QuoteError::NonceMismatch)
    );
    let mut wrong = published.clone();
    wrong.0.insert(11, [0x11; 32]);
    assert!(matches!(
        verify_quote(&quote, &ak, nonce, &wrong),
        Err(QuoteError::PcrMismatch(ref m)) if m.contains("11")
    ));
    let mut fewer = published.clone();
    fewer.0.remove(&7);
    assert!(matches!(
        verify_quote(&quote, &ak, nonce, &fewer),
        Err(QuoteError::SelectionMismatch { .. })
    ));
    // Another TPM's key: signature refused.
    let other = Swtpm::start().unwrap();
    let other_ak = open(&other).attestation_key().unwrap();
    assert_eq!(
        verify_quote(&quote, &other_ak, nonce, &published),
        Err(QuoteError::BadSignature)
    );
    // A tampered attest (nonce rewritten to the one the verifier wants) breaks the signature.
    let mut tampered = quote.clone();
    tampered.attest = tampered.attest.replace(
        &hex::encode(nonce),
        &hex::encode(b"integrator-nonce-9999999999"),
    );
    assert_eq!(
        verify_quote(&tampered, &ak, b"integrator-nonce-9999999999", &published),
        Err(QuoteError::BadSignature)
    );
}
