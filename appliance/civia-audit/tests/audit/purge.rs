use super::*;
use civia_audit::{Checkpoint, RetentionPolicy, WarningKind};

/// 14 months (2026-01 … 2027-02) of 3 entries each, clock left in 2027-02.
fn fourteen_months(dir: &Path) -> (FakeClock, AuditLog) {
    let clock = FakeClock::at("2026-01-05T10:00:00Z");
    let log = open(dir, &clock);
    for i in 0..14u32 {
        let (y, m) = (2026 + i / 12, i % 12 + 1);
        for d in 0..3u32 {
            clock.set(&format!("{y}-{m:02}-{:02}T10:00:00Z", 5 + d));
            log.append(event(i * 3 + d)).unwrap();
        }
    }
    (clock, log)
}

#[test]
fn purge_keeps_retention_and_chain_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (clock, log) = fourteen_months(dir);
    assert_eq!(verify_ok(dir).segments, 14);
    clock.set("2027-02-20T00:00:00Z");
    let report = log.purge().unwrap();
    // Retention 6 in February 2027: months before August 2026 go.
    assert_eq!(report.cutoff, "2026-08");
    let expected: Vec<String> = (1..=7).map(|m| format!("2026-{m:02}.jsonl")).collect();
    assert_eq!(report.purged, expected);
    assert_eq!(report.first_segment.as_deref(), Some("2026-08.jsonl"));
    for m in 1..=7 {
        assert!(!dir.join(format!("2026-{m:02}.jsonl")).exists());
        assert!(!dir.join(format!("2026-{m:02}.sig")).exists());
    }
    assert!(dir.join("2026-08.jsonl").exists());
    let cp: Checkpoint =
        serde_json::from_slice(&fs::read(dir.join("checkpoint.json")).unwrap()).unwrap();
    assert_eq!(
        (cp.first_segment.as_str(), cp.first_seq),
        ("2026-08.jsonl", 22)
    );
    let r = verify_ok(dir);
    assert!(r.checkpoint);
    assert_eq!(
        (r.segments, r.entries, r.first_seq, r.last_seq),
        (7, 21, Some(22), Some(42))
    );

    // Nothing more to purge; appends continue; reopen works.
    assert!(log.purge().unwrap().purged.is_empty());
    log.append(event(0)).unwrap();
    drop(log);
    let log = open(dir, &clock);
    assert_eq!(log.append(event(0)).unwrap().seq, 44);

    // Two months later: August and September go; the checkpoint lists every purge.
    clock.set("2027-04-01T00:00:00Z");
    log.append(event(0)).unwrap();
    let report = log.purge().unwrap();
    assert_eq!(report.purged, ["2026-08.jsonl", "2026-09.jsonl"]);
    let cp: Checkpoint =
        serde_json::from_slice(&fs::read(dir.join("checkpoint.json")).unwrap()).unwrap();
    assert_eq!(cp.purged.len(), 9);
    assert_eq!(cp.first_seq, 28);
    assert_eq!(verify_ok(dir).first_seq, Some(28));
}

#[test]
fn tampered_checkpoint_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (clock, log) = fourteen_months(dir);
    clock.set("2027-02-20T00:00:00Z");
    log.purge().unwrap();
    let path = dir.join("checkpoint.json");
    let good = fs::read_to_string(&path).unwrap();
    write_anyway(
        &path,
        good.replace("\"first_seq\": 22", "\"first_seq\": 25")
            .as_bytes(),
    );
    verify_fails(dir, TamperKind::BadSignature, "checkpoint.json", None);
    write_anyway(
        &path,
        good.replace("2026-08.jsonl", "2026-09.jsonl").as_bytes(),
    );
    verify_fails(dir, TamperKind::BadSignature, "checkpoint.json", None);
    write_anyway(&path, b"{}");
    verify_fails(dir, TamperKind::Edited, "checkpoint.json", None);
    write_anyway(&path, good.as_bytes());
    verify_ok(dir);
    // The first kept segment removed with its seal: its entries are missing.
    fs::remove_file(dir.join("2026-08.jsonl")).unwrap();
    fs::remove_file(dir.join("2026-08.sig")).unwrap();
    verify_fails(dir, TamperKind::Deleted, "2026-09.jsonl", Some(1));
}

#[test]
fn interrupted_purge_leftovers() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (clock, log) = fourteen_months(dir);
    let saved = fs::read(dir.join("2026-03.jsonl")).unwrap();
    clock.set("2027-02-20T00:00:00Z");
    log.purge().unwrap();
    // As if the purge had stopped before removing March.
    fs::write(dir.join("2026-03.jsonl"), saved).unwrap();
    let r = verify_ok(dir);
    assert_eq!(r.warnings.len(), 1);
    assert_eq!(r.warnings[0].kind, WarningKind::PurgedSegmentPresent);
    let report = log.purge().unwrap();
    assert_eq!(report.leftovers, ["2026-03.jsonl"]);
    assert!(verify_ok(dir).warnings.is_empty());
}

#[test]
fn purge_never_takes_unsealed_or_last_segments() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let clock = FakeClock::at("2026-01-05T10:00:00Z");
    let log = open(dir, &clock);
    log.append(event(0)).unwrap();
    clock.set("2026-02-05T10:00:00Z");
    log.append(event(1)).unwrap();
    // A year of silence: February is the open (last) segment and stays.
    clock.set("2027-06-01T00:00:00Z");
    let report = log.purge().unwrap();
    assert_eq!(report.purged, ["2026-01.jsonl"]);
    assert!(dir.join("2026-02.jsonl").exists());
    verify_ok(dir);
    assert!(log.purge().unwrap().purged.is_empty());
}

#[test]
fn retention_policy_rule() {
    let p = |months, j: Option<&str>| RetentionPolicy {
        months,
        justification: j.map(String::from),
    };
    assert!(p(5, None).validate().is_err());
    assert!(p(13, None).validate().is_err());
    p(5, Some("archives départementales: convention 2026-3"))
        .validate()
        .unwrap();
    p(13, Some("contentieux en cours")).validate().unwrap();
    p(6, None).validate().unwrap();
    p(12, None).validate().unwrap();
}
