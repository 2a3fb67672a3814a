#![allow(clippy::unwrap_used)]

use super::*;

const V: &str = "0.1.0";

/// A state directory shaped like civiad's, with what is kept and what is not.
fn state(dir: &Path) {
    let put = |rel: &str, bytes: &[u8]| {
        let p = dir.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, bytes).unwrap();
    };
    put("civia.db", &vec![7u8; 300_000]);
    put("civia.db-wal", b"wal frames");
    put("civia.db-shm", b"shared memory");
    put("audit/2026-12.jsonl", b"{\"seq\":1}\n");
    put("audit/2026-12.sig", b"sig");
    put("audit/.lock", b"");
    put("secrets/device-identity.key", &[1u8; 32]);
    put("knowledge/knowledge.db", b"knowledge");
    put("tls/ca.crt", b"-----BEGIN CERTIFICATE-----");
    put("models/civia-7b/1/model.gguf", b"weights");
    put("spool/speech/x.wav", b"audio");
    put("update/spool/bundle", b"bundle");
    put("update/update-state.json", b"{}");
}

fn setup() -> (tempfile::TempDir, PathBuf, age::x25519::Identity) {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("state");
    state(&src);
    let key = parse_key(&create_key(&src).unwrap()).unwrap();
    (tmp, src, key)
}

fn listing(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut all = Vec::new();
    files_under(dir, dir, &mut all).unwrap();
    all.into_iter()
        .map(|rel| {
            let bytes = fs::read(dir.join(&rel)).unwrap();
            (rel.display().to_string(), bytes)
        })
        .collect()
}

#[test]
fn a_backup_restores_the_same_state_without_models_or_spools() {
    let (tmp, src, key) = setup();
    let out = tmp.path().join("box.civia-backup");
    let made = create(&src, &out, V).unwrap();
    assert!(!tmp.path().join("box.civia-backup.partial").exists());
    let names: Vec<&str> = made
        .manifest
        .files
        .iter()
        .map(|f| f.path.as_str())
        .collect();
    assert!(names.contains(&"civia.db") && names.contains(&"civia.db-wal"));
    assert!(names.contains(&"backup/recipient"));
    for gone in [
        "civia.db-shm",
        "audit/.lock",
        "spool/speech/x.wav",
        "update/update-state.json",
        "update/spool/bundle",
    ] {
        assert!(!names.contains(&gone), "{gone}");
    }
    assert!(!names.iter().any(|n| n.starts_with("models/")));
    assert_eq!(made.manifest.models.len(), 1);
    assert_eq!(
        made.manifest.models[0].sha256,
        civia_base::hash::sha256_hex(b"weights")
    );
    // Encrypted: none of the content is readable in the archive.
    let raw = fs::read(&out).unwrap();
    assert!(raw.starts_with(b"age-encryption.org/v1"));
    assert!(!raw.windows(10).any(|w| w == b"wal frames"));

    assert_eq!(verify(&out, &key, V).unwrap(), made);
    let dst = tmp.path().join("restored");
    restore(&out, &key, &dst, false, V).unwrap();
    let want: Vec<_> = listing(&src)
        .into_iter()
        .filter(|(n, _)| names.contains(&n.as_str()))
        .collect();
    assert_eq!(listing(&dst), want);
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(dst.join("civia.db"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let mode = fs::metadata(&dst).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
}

#[test]
fn the_key_is_shown_once_and_never_kept() {
    let (tmp, src, _) = setup();
    assert!(matches!(create_key(&src), Err(BackupError::KeyExists(_))));
    let out = tmp.path().join("b");
    create(&src, &out, V).unwrap();
    // The box keeps the public half only: no file under the state holds a secret key.
    for (name, bytes) in listing(&src) {
        assert!(
            !bytes.windows(14).any(|w| w == b"AGE-SECRET-KEY"),
            "{name} holds the secret"
        );
    }
    assert!(matches!(parse_key("age1notakey"), Err(BackupError::BadKey)));
    let other = tempfile::tempdir().unwrap();
    assert!(matches!(
        create(other.path(), &out, V),
        Err(BackupError::NoKey)
    ));
}

/// Nothing of a refused restore is written: not the target, not the staging directory.
fn refused(tmp: &Path, archive: &Path, key: &age::x25519::Identity) -> BackupError {
    let dst = tmp.join("target");
    let e = restore(archive, key, &dst, false, V).unwrap_err();
    assert!(!dst.exists(), "{e}");
    assert!(!tmp.join(".target.restoring").exists(), "{e}");
    e
}

#[test]
fn wrong_keys_tampering_and_truncation_are_refused_with_nothing_written() {
    let (tmp, src, key) = setup();
    let out = tmp.path().join("b");
    create(&src, &out, V).unwrap();
    let raw = fs::read(&out).unwrap();

    let stranger = age::x25519::Identity::generate();
    let e = refused(tmp.path(), &out, &stranger);
    assert!(matches!(e, BackupError::WrongKey), "{e}");

    for at in [raw.len() / 2, raw.len() - 5, 200] {
        let mut bad = raw.clone();
        bad[at] ^= 0x40;
        let p = tmp.path().join("tampered");
        fs::write(&p, &bad).unwrap();
        let e = refused(tmp.path(), &p, &key);
        assert!(matches!(e, BackupError::Damaged(_)), "byte {at}: {e}");
    }
    for len in [raw.len() - 1, raw.len() - 70_000, raw.len() / 3, 40] {
        let p = tmp.path().join("truncated");
        fs::write(&p, &raw[..len]).unwrap();
        let e = refused(tmp.path(), &p, &key);
        assert!(matches!(e, BackupError::Damaged(_)), "{len} bytes: {e}");
    }
}

/// An archive written by hand (with the right key) from `entries`.
fn forged(path: &Path, key: &age::x25519::Identity, entries: &[(&str, &[u8])]) {
    let r = key.to_public();
    let enc = age::Encryptor::with_recipients(std::iter::once(&r as &dyn age::Recipient)).unwrap();
    let sink = enc.wrap_output(File::create(path).unwrap()).unwrap();
    let mut tar = tar::Builder::new(sink);
    for (name, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o600);
        h.set_entry_type(tar::EntryType::Regular);
        // set_path refuses `..`: write the name bytes directly, as a hostile tool would.
        let bytes = h.as_old_mut();
        bytes.name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
        tar.append(&h, *data).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap();
}

#[test]
fn hostile_archives_are_refused_before_anything_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let key = age::x25519::Identity::generate();
    let header = |v: &str| {
        serde_json::to_vec(&Header {
            format: FORMAT.into(),
            version: v.into(),
            created_at: "2026-12-07T00:00:00Z".into(),
        })
        .unwrap()
    };
    let h = header(V);
    let manifest = |files: &[(&str, &[u8])]| {
        serde_json::to_vec(&Manifest {
            files: files
                .iter()
                .map(|(p, b)| FileEntry {
                    path: p.to_string(),
                    bytes: b.len() as u64,
                    sha256: civia_base::hash::sha256_hex(b),
                })
                .collect(),
            models: Vec::new(),
        })
        .unwrap()
    };
    let p = tmp.path().join("forged");
    let escape = manifest(&[("../escaped", b"x")]);
    let lying = manifest(&[("a", b"other")]);
    let none = manifest(&[]);
    let model = manifest(&[("models/m", b"x")]);
    type Entries<'a> = Vec<(&'a str, &'a [u8])>;
    let cases: Vec<(&str, Entries)> = vec![
        (
            "path out of the state",
            vec![
                (HEADER, &h),
                ("state/../escaped", b"x"),
                (MANIFEST, &escape),
            ],
        ),
        (
            "absolute path",
            vec![(HEADER, &h), ("state//etc/x", b"x"), (MANIFEST, &escape)],
        ),
        ("no header", vec![("state/a", b"x"), (MANIFEST, &lying)]),
        ("no manifest", vec![(HEADER, &h), ("state/a", b"x")]),
        (
            "manifest lies",
            vec![(HEADER, &h), ("state/a", b"x"), (MANIFEST, &lying)],
        ),
        (
            "entry after the manifest",
            vec![(HEADER, &h), (MANIFEST, &none), ("state/a", b"x")],
        ),
        (
            "a model smuggled in",
            vec![(HEADER, &h), ("state/models/m", b"x"), (MANIFEST, &model)],
        ),
    ];
    for (what, entries) in cases {
        forged(&p, &key, &entries);
        let e = refused(tmp.path(), &p, &key);
        assert!(matches!(e, BackupError::Damaged(_)), "{what}: {e}");
        assert!(!tmp.path().join("escaped").exists());
    }
    let newer = header("99.0.0");
    forged(&p, &key, &[(HEADER, &newer), (MANIFEST, &manifest(&[]))]);
    let e = refused(tmp.path(), &p, &key);
    assert!(matches!(e, BackupError::Newer { .. }), "{e}");
    // A well-formed forged archive restores (the check is the format, not who wrote it).
    forged(
        &p,
        &key,
        &[
            (HEADER, &h),
            ("state/a", b"x"),
            (MANIFEST, &manifest(&[("a", b"x")])),
        ],
    );
    restore(&p, &key, &tmp.path().join("ok"), false, V).unwrap();
    assert_eq!(fs::read(tmp.path().join("ok/a")).unwrap(), b"x");
}

#[test]
fn a_used_target_needs_force_and_a_running_box_is_left_alone() {
    let (tmp, src, key) = setup();
    let out = tmp.path().join("b");
    create(&src, &out, V).unwrap();
    let dst = tmp.path().join("used");
    fs::create_dir_all(dst.join("audit")).unwrap();
    fs::write(dst.join("old"), b"old").unwrap();
    let e = restore(&out, &key, &dst, false, V).unwrap_err();
    assert!(matches!(e, BackupError::NotEmpty(_)), "{e}");
    assert_eq!(fs::read(dst.join("old")).unwrap(), b"old");

    // civiad holds the audit lock while it runs: neither a backup nor a restore touches it.
    let lock = File::create(dst.join("audit/.lock")).unwrap();
    lock.lock().unwrap();
    let e = restore(&out, &key, &dst, true, V).unwrap_err();
    assert!(matches!(e, BackupError::Running(_)), "{e}");
    let held = File::create(src.join("audit/.lock")).unwrap();
    held.lock().unwrap();
    let e = create(&src, &tmp.path().join("c"), V).unwrap_err();
    assert!(matches!(e, BackupError::Running(_)), "{e}");
    assert!(!tmp.path().join("c.partial").exists() && !tmp.path().join("c").exists());
    drop((lock, held));

    // The machine's own parts of the used state stay: its models and its update state.
    fs::create_dir_all(dst.join("models/m/1")).unwrap();
    fs::write(dst.join("models/m/1/w.gguf"), b"target weights").unwrap();
    fs::create_dir_all(dst.join("update")).unwrap();
    fs::write(
        dst.join("update/update-state.json"),
        b"{\"floor\":\"9.0.0\"}",
    )
    .unwrap();
    restore(&out, &key, &dst, true, V).unwrap();
    assert!(!dst.join("old").exists());
    assert_eq!(
        fs::read(dst.join("models/m/1/w.gguf")).unwrap(),
        b"target weights"
    );
    assert_eq!(
        fs::read(dst.join("update/update-state.json")).unwrap(),
        b"{\"floor\":\"9.0.0\"}"
    );
    assert!(!dst.join("models/civia-7b").exists());
    assert!(!tmp.path().join(".used.replaced").exists());
    // An interrupted restore's leftover is never deleted blindly.
    fs::create_dir(tmp.path().join(".used.replaced")).unwrap();
    let e = restore(&out, &key, &dst, true, V).unwrap_err();
    assert!(matches!(e, BackupError::Interrupted(_)), "{e}");
    assert_eq!(fs::read(dst.join("civia.db-wal")).unwrap(), b"wal frames");
}

#[test]
fn versions_compare_by_number() {
    assert!(newer("0.10.0", "0.9.9"));
    assert!(newer("1.0.0", "0.99.0"));
    assert!(!newer("0.1.0", "0.1.0"));
    assert!(!newer("0.1.0-rc1", "0.1.0"));
}

#[test]
fn backups_and_restores_leave_a_note_for_the_audit_trail_that_is_not_archived() {
    let (tmp, src, key) = setup();
    let out = tmp.path().join("b");
    create(&src, &out, V).unwrap();
    let created = take_events(&src);
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].1.event, "backup.created");
    assert_eq!(created[0].1.archive_version, V);
    // A second backup does not carry the first one's note.
    let again = create(&src, &tmp.path().join("c"), V).unwrap();
    assert!(!again
        .manifest
        .files
        .iter()
        .any(|f| f.path.starts_with(EVENTS_DIR)));
    let dst = tmp.path().join("restored");
    let s = restore(&tmp.path().join("c"), &key, &dst, false, V).unwrap();
    let restored = take_events(&dst);
    assert_eq!(restored.len(), 1, "{restored:?}");
    assert_eq!(restored[0].1.event, "backup.restored");
    assert_eq!(restored[0].1.files, s.manifest.files.len());
    fs::write(dst.join(EVENTS_DIR).join("junk.json"), b"{").unwrap();
    assert_eq!(take_events(&dst).len(), 1);
}

#[test]
fn a_planted_partial_link_is_never_followed_and_a_damaged_recipient_says_so() {
    let (tmp, src, _) = setup();
    let victim = tmp.path().join("victim");
    fs::write(&victim, b"precious").unwrap();
    let out = tmp.path().join("b");
    std::os::unix::fs::symlink(&victim, tmp.path().join("b.partial")).unwrap();
    create(&src, &out, V).unwrap();
    assert_eq!(fs::read(&victim).unwrap(), b"precious");
    fs::write(src.join(RECIPIENT_FILE), b"garbage").unwrap();
    let e = create(&src, &tmp.path().join("c"), V).unwrap_err();
    assert!(matches!(e, BackupError::BadRecipient(_)), "{e}");
    assert!(matches!(
        check_covered(
            &src,
            &[("secrets.dir", PathBuf::from("/state/provision/secrets"))]
        ),
        Err(BackupError::Outside { .. })
    ));
    check_covered(&src, &[("knowledge.dir", src.join("knowledge"))]).unwrap();
}
