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
    restore(&out, &key, &dst, false, V, None).unwrap();
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
    let e = restore(archive, key, &dst, false, V, None).unwrap_err();
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
            escrow: Vec::new(),
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
    restore(&p, &key, &tmp.path().join("ok"), false, V, None).unwrap();
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
    let e = restore(&out, &key, &dst, false, V, None).unwrap_err();
    assert!(matches!(e, BackupError::NotEmpty(_)), "{e}");
    assert_eq!(fs::read(dst.join("old")).unwrap(), b"old");

    // civiad holds the audit lock while it runs: neither a backup nor a restore touches it.
    let lock = File::create(dst.join("audit/.lock")).unwrap();
    lock.lock().unwrap();
    let e = restore(&out, &key, &dst, true, V, None).unwrap_err();
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
    restore(&out, &key, &dst, true, V, None).unwrap();
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
    let e = restore(&out, &key, &dst, true, V, None).unwrap_err();
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
    let s = restore(&tmp.path().join("c"), &key, &dst, false, V, None).unwrap();
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

// ---- a running box ----

/// A running box's state: a SQLite database in WAL mode and an audit trail, both written by
/// another thread for as long as the returned flag is false.
struct Busy {
    stop: Arc<std::sync::atomic::AtomicBool>,
    writer: Option<std::thread::JoinHandle<u64>>,
    audit: Arc<civia_audit::Audit>,
}

use std::sync::Arc;

fn open_db(path: &Path) -> rusqlite::Connection {
    let c = rusqlite::Connection::open(path).unwrap();
    c.pragma_update(None, "journal_mode", "WAL").unwrap();
    c.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
    c
}

fn running_box(state: &Path) -> Busy {
    fs::create_dir_all(state).unwrap();
    let audit = Arc::new(
        civia_audit::Audit::open(
            &state.join("audit"),
            &state.join("keys"),
            &civia_audit::RetentionPolicy {
                months: 6,
                justification: None,
            },
        )
        .unwrap(),
    );
    let db = open_db(&state.join("civia.db"));
    db.execute_batch("CREATE TABLE t (n INTEGER PRIMARY KEY, pad BLOB NOT NULL);")
        .unwrap();
    for n in 0..500 {
        db.execute("INSERT INTO t VALUES (?1, zeroblob(1000))", [n])
            .unwrap();
    }
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (stop2, audit2) = (stop.clone(), audit.clone());
    let writer = std::thread::spawn(move || {
        let mut n = 500u64;
        while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
            // A row and its audit entry, as a request writes its history then its entry.
            db.execute("INSERT INTO t VALUES (?1, zeroblob(1000))", [n])
                .unwrap();
            audit2
                .try_append_blocking(civia_audit::Event::new("request.completed"))
                .unwrap();
            n += 1;
        }
        n
    });
    Busy {
        stop,
        writer: Some(writer),
        audit,
    }
}

impl Busy {
    fn stop(&mut self) -> u64 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.writer.take().unwrap().join().unwrap()
    }
}

fn settings(dest: Option<PathBuf>, keep: u32) -> Settings {
    Settings {
        destination: dest,
        smb: None,
        hour_utc: 2,
        keep,
        max_age_hours: 48,
        kept_elsewhere: Vec::new(),
    }
}

#[test]
fn a_running_box_is_backed_up_consistently_while_it_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let dest = tmp.path().join("nas");
    fs::create_dir_all(&dest).unwrap();
    let mut busy = running_box(&state);
    let service = Arc::new(Backups::new(
        &state,
        V,
        settings(Some(dest.clone()), 2),
        busy.audit.clone(),
    ));
    // No key yet: refused, nothing written.
    assert!(matches!(
        service.begin(Target::Destination),
        Err(BackupError::NoKey)
    ));
    let key = parse_key(&service.create_key(&By::default()).unwrap()).unwrap();
    assert!(service.status().too_old, "never backed up is too old");
    // Another box's archive and a file that is no archive share the folder.
    let other = dest.join("civia-00000000-20200101T000000Z.civia-backup");
    fs::write(&other, b"age-encryption.org/v1\nsomeone else's").unwrap();
    fs::write(dest.join("notes.txt"), b"the mairie's notes").unwrap();
    // What a backup killed midway left: this box's is removed by the next one, another's kept.
    let recipient = fs::read_to_string(state.join(RECIPIENT_FILE)).unwrap();
    let killed = dest.join(format!(
        "{}20200101T000000Z{EXTENSION}.partial",
        archive_prefix(&recipient)
    ));
    fs::write(&killed, b"age-encryption.org/v1\nhalf").unwrap();
    let others = dest.join(format!(
        "civia-00000000-20200101T000000Z{EXTENSION}.partial"
    ));
    fs::write(&others, b"age-encryption.org/v1\nhalf").unwrap();

    let mut written = Vec::new();
    for _ in 0..3 {
        let job = service.begin(Target::Destination).unwrap();
        // One at a time.
        assert!(matches!(
            service.begin(Target::Download),
            Err(BackupError::Busy)
        ));
        written.push(job.file_name());
        job.to_destination(&By::default()).unwrap();
        // The names carry the second: two backups never share one.
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    let rows_at_stop = busy.stop();

    // Retention: this box's two newest, nothing of anyone else's.
    let status = service.status();
    let names: Vec<&str> = status.archives.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, [written[2].as_str(), written[1].as_str()]);
    assert!(other.exists() && dest.join("notes.txt").exists() && others.exists());
    assert!(!killed.exists());
    assert!(!status.too_old && status.running.is_none());
    let last = status.last_success.unwrap();
    assert_eq!(last.archive.as_deref(), Some(written[2].as_str()));
    assert!(service
        .metrics()
        .contains("civia_backups_succeeded_total 3"));
    // The SQLite copies are gone from the box.
    assert_eq!(
        fs::read_dir(state.join(STAGING_DIR)).unwrap().count(),
        0,
        "a snapshot copy stayed on disk"
    );

    // The newest archive restores into a box whose database is whole, whose trail verifies,
    // and where every row written before an entry of the trail is present (the trail was
    // pinned before the database was copied).
    let restored = tmp.path().join("restored");
    let summary = restore(&dest.join(&written[2]), &key, &restored, false, V, None).unwrap();
    assert!(!summary
        .manifest
        .files
        .iter()
        .any(|f| f.path.ends_with("-wal") || f.path.starts_with(STAGING_DIR)));
    let db = open_db(&restored.join("civia.db"));
    let ok: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    let rows: u64 = db
        .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert!((500..=rows_at_stop).contains(&rows), "{rows}");
    let public = civia_audit::DeviceKey::load_or_create(&restored.join("keys/device-ed25519.key"))
        .unwrap()
        .verifying_key();
    let report = civia_audit::verify(&restored.join("audit"), &public, None).unwrap();
    let completed = report.entries as u64;
    // Each audited request wrote its row first: the rows cover the entries.
    assert!(
        rows - 500 >= completed.saturating_sub(3),
        "{rows} rows, {completed} entries"
    );
    assert!(completed > 0);
}

#[test]
fn a_download_streams_and_a_failed_backup_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let mut busy = running_box(&state);
    let service = Arc::new(Backups::new(
        &state,
        V,
        settings(None, 14),
        busy.audit.clone(),
    ));
    let key = parse_key(&service.create_key(&By::default()).unwrap()).unwrap();
    assert!(matches!(
        service.create_key(&By::default()),
        Err(BackupError::KeyExists(_))
    ));
    assert!(matches!(
        service.begin(Target::Destination),
        Err(BackupError::NoDestination)
    ));
    // Streamed into any writer.
    let mut seen = Vec::new();
    let job = service.begin(Target::Download).unwrap();
    job.to_writer(&mut seen, &By::default()).unwrap();
    let archive = tmp.path().join("download.civia-backup");
    fs::write(&archive, &seen).unwrap();
    verify(&archive, &key, V).unwrap();
    // A sink that fails midway (the client went away): an error, counted and kept.
    struct Broken(usize);
    impl Write for Broken {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0 += buf.len();
            if self.0 > 100_000 {
                return Err(io::Error::new(io::ErrorKind::BrokenPipe, "gone"));
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let job = service.begin(Target::Download).unwrap();
    assert!(job.to_writer(Broken(0), &By::default()).is_err());
    busy.stop();
    let status = service.status();
    assert!(!status.last.as_ref().unwrap().ok);
    assert!(status.last_success.as_ref().unwrap().ok);
    assert!(service.metrics().contains("civia_backups_failed_total 1"));
    // Kept across a restart of the service.
    let again = Arc::new(Backups::new(
        &state,
        V,
        settings(None, 14),
        busy.audit.clone(),
    ));
    assert_eq!(again.status().last, status.last);
    // The trail has the key, the backup and the failure.
    let public = civia_audit::DeviceKey::load_or_create(&state.join("keys/device-ed25519.key"))
        .unwrap()
        .verifying_key();
    let report = civia_audit::verify(&state.join("audit"), &public, None).unwrap();
    assert!(report.entries > 3);
    let trail = fs::read_dir(state.join("audit"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".jsonl"))
        .map(|e| fs::read_to_string(e.path()).unwrap())
        .collect::<String>();
    for ev in ["backup.key_created", "backup.created", "backup.failed"] {
        assert!(trail.contains(&format!("\"{ev}\"")), "{ev}");
    }
}

#[test]
fn the_daily_run_is_the_next_hour_after_now() {
    let day = 20_000 * 86_400;
    assert_eq!(next_daily(day, 2), day + 2 * 3600);
    assert_eq!(next_daily(day + 2 * 3600, 2), day + 86_400 + 2 * 3600);
    assert_eq!(next_daily(day + 23 * 3600, 2), day + 86_400 + 2 * 3600);
}

#[test]
fn a_clock_set_back_never_makes_a_backup_delete_itself() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let dest = tmp.path().join("usb");
    fs::create_dir_all(&dest).unwrap();
    let mut busy = running_box(&state);
    let service = Arc::new(Backups::new(
        &state,
        V,
        settings(Some(dest.clone()), 1),
        busy.audit.clone(),
    ));
    service.create_key(&By::default()).unwrap();
    // Written when the clock was ahead: its name sorts after today's.
    let recipient = fs::read_to_string(state.join(RECIPIENT_FILE)).unwrap();
    let ahead = dest.join(format!(
        "{}20991231T000000Z{EXTENSION}",
        archive_prefix(&recipient)
    ));
    fs::write(&ahead, b"age-encryption.org/v1\nfrom the future").unwrap();
    let job = service.begin(Target::Destination).unwrap();
    let name = job.file_name();
    job.to_destination(&By::default()).unwrap();
    busy.stop();
    assert!(dest.join(&name).exists(), "the backup deleted itself");
    assert!(!ahead.exists());
    // A destination that leads back into the state directory is refused.
    let inside = tmp.path().join("inside");
    std::os::unix::fs::symlink(state.join("audit"), &inside).unwrap();
    let looping = Arc::new(Backups::new(
        &state,
        V,
        settings(Some(inside), 1),
        busy.audit.clone(),
    ));
    let job = looping.begin(Target::Destination).unwrap();
    assert!(matches!(
        job.to_destination(&By::default()),
        Err(BackupError::Outside { .. })
    ));
}

#[test]
fn a_panic_in_a_backup_is_a_recorded_failure() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let mut busy = running_box(&state);
    busy.stop();
    create_key(&state).unwrap();
    let service = Arc::new(Backups::new(
        &state,
        V,
        settings(None, 2),
        busy.audit.clone(),
    ));
    let job = service.begin(Target::Download).unwrap();
    struct Boom;
    impl std::io::Write for Boom {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            panic!("the sink exploded")
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let err = job.to_writer(Boom, &By::default()).unwrap_err();
    assert!(
        matches!(&err, BackupError::Internal(m) if m.contains("exploded")),
        "{err}"
    );
    let status = service.status();
    assert!(status.running.is_none(), "the backup slot is freed");
    let last = status.last.unwrap();
    assert!(!last.ok && last.error.unwrap().contains("exploded"));
    assert!(service.metrics().contains("civia_backups_failed_total 1"));
}

#[test]
fn escrowed_secrets_replace_their_sealed_files_and_need_a_place_to_restore() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    fs::create_dir_all(state.join("secrets")).unwrap();
    fs::write(
        state.join("secrets/device-identity.sealed"),
        b"{\"sealed by TPM A\":1}",
    )
    .unwrap();
    fs::write(state.join("notes.txt"), b"kept").unwrap();
    let key = parse_key(&create_key(&state).unwrap()).unwrap();
    let secret = vec![0x5a; 32];
    let escrow = Escrow {
        dir: PathBuf::from("secrets"),
        secrets: [(
            "device-identity".to_string(),
            zeroize::Zeroizing::new(secret.clone()),
        )]
        .into_iter()
        .collect(),
    };
    assert!(
        !format!("{escrow:?}").contains("5a"),
        "escrow's Debug shows no secret"
    );
    // Without an escrow, a sealed state is refused.
    assert!(matches!(
        Snapshot::online(&state, V, Vec::new(), None),
        Err(BackupError::Sealed(_))
    ));
    let snap = Snapshot::online(&state, V, Vec::new(), Some(escrow)).unwrap();
    let out = tmp.path().join("a.civia-backup");
    let s = snap
        .write_file(&recipient(&state).unwrap(), &out, &mut |_| {})
        .unwrap();
    assert_eq!(s.manifest.escrow, ["device-identity"]);
    assert!(!s.manifest.files.iter().any(|f| f.path.ends_with(".sealed")));

    // Restored without a way to place it: refused, nothing written.
    let dst = tmp.path().join("b");
    assert!(matches!(
        restore(&out, &key, &dst, false, V, None),
        Err(BackupError::Escrowed)
    ));
    assert!(!dst.exists());
    // A way that leaves the state directory: refused.
    let outside = |_: &str, s: &[u8]| Ok((PathBuf::from("../evil"), s.to_vec()));
    assert!(restore(&out, &key, &dst, false, V, Some(&outside)).is_err());
    assert!(!dst.exists() && !tmp.path().join("evil").exists());
    // Placed as the caller says (here: a file, as on a box without TPM).
    let place =
        |name: &str, s: &[u8]| Ok((PathBuf::from(format!("secrets/{name}.key")), s.to_vec()));
    restore(&out, &key, &dst, false, V, Some(&place)).unwrap();
    assert_eq!(
        fs::read(dst.join("secrets/device-identity.key")).unwrap(),
        secret
    );
    assert!(!dst.join("secrets/device-identity.sealed").exists());
    assert_eq!(fs::read(dst.join("notes.txt")).unwrap(), b"kept");
}
