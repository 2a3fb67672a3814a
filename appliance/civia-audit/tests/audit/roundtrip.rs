use super::*;
use civia_audit::{line_hash, Entry, SegmentSeal, GENESIS_HASH, MAX_DETAIL_BYTES};
use serde_json::json;

fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn round_trip_across_three_months() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("audit");
    let clock = FakeClock::at("2026-01-31T23:59:59.998Z");
    let log = open(&dir, &clock);
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(log.head().unwrap(), None);
    let mut appended = Vec::new();
    for (ts, n) in [
        ("2026-01-31T23:59:59.998Z", 3),
        ("2026-02-01T00:00:00.000Z", 4),
        ("2026-03-15T12:00:00.000Z", 5),
    ] {
        clock.set(ts);
        for i in 0..n {
            appended.push(log.append(event(i)).unwrap());
        }
    }
    let seqs: Vec<u64> = appended.iter().map(|a| a.seq).collect();
    assert_eq!(seqs, (1..=12).collect::<Vec<_>>());

    // Files: two sealed months (0400 + .sig), one open (0600, no .sig).
    for m in ["2026-01", "2026-02"] {
        assert_eq!(mode(&dir.join(format!("{m}.jsonl"))), 0o400, "{m}");
        assert!(dir.join(format!("{m}.sig")).exists(), "{m}");
    }
    assert_eq!(mode(&dir.join("2026-03.jsonl")), 0o600);
    assert!(!dir.join("2026-03.sig").exists());

    // The chain: each line's hash is the next prev, across segments; the first prev is zeros.
    let all: Vec<String> = ["2026-01", "2026-02", "2026-03"]
        .iter()
        .flat_map(|m| lines(&dir.join(format!("{m}.jsonl"))))
        .collect();
    assert_eq!(all.len(), 12);
    let mut prev = GENESIS_HASH.to_string();
    for (line, a) in all.iter().zip(&appended) {
        let e: Entry = serde_json::from_str(line).unwrap();
        assert_eq!(e.prev, prev);
        assert_eq!(line_hash(line.as_bytes()), a.hash);
        prev = a.hash.clone();
    }
    let first_feb: Entry = serde_json::from_str(&lines(&dir.join("2026-02.jsonl"))[0]).unwrap();
    assert_eq!(
        first_feb.prev, appended[2].hash,
        "February chains to January"
    );
    assert_eq!(first_feb.ts, "2026-02-01T00:00:00.000Z");

    let seal: SegmentSeal =
        serde_json::from_slice(&fs::read(dir.join("2026-02.sig")).unwrap()).unwrap();
    assert_eq!((seal.first_seq, seal.last_seq), (4, 7));
    assert_eq!(seal.last_hash, appended[6].hash);
    assert_eq!(seal.segment, "2026-02.jsonl");

    let r = verify_ok(&dir);
    assert_eq!((r.segments, r.sealed_segments, r.entries), (3, 2, 12));
    assert_eq!((r.first_seq, r.last_seq), (Some(1), Some(12)));
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    assert_eq!(log.head().unwrap().unwrap(), appended[11]);

    // Reopen: the chain continues.
    drop(log);
    let log = open(&dir, &clock);
    assert_eq!(log.open_report().last_seq, 12);
    assert_eq!(
        log.open_report().open_segment.as_deref(),
        Some("2026-03.jsonl")
    );
    assert!(log.open_report().torn.is_none());
    clock.set("2026-04-01T00:00:00Z");
    assert_eq!(log.append(event(0)).unwrap().seq, 13);
    assert_eq!(verify_ok(&dir).entries, 13);
    assert!(dir.join("2026-03.sig").exists());
}

#[test]
fn timestamps_never_go_backwards() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = FakeClock::at("2026-05-10T10:00:00Z");
    let log = open(tmp.path(), &clock);
    log.append(event(1)).unwrap();
    clock.set("2026-04-01T10:00:00Z"); // the clock jumps back a month
    log.append(event(2)).unwrap();
    let text = fs::read_to_string(tmp.path().join("2026-05.jsonl")).unwrap();
    let ts: Vec<String> = text
        .lines()
        .map(|l| serde_json::from_str::<Entry>(l).unwrap().ts)
        .collect();
    assert_eq!(ts, ["2026-05-10T10:00:00.000Z", "2026-05-10T10:00:00.000Z"]);
    assert!(!tmp.path().join("2026-04.jsonl").exists());
    verify_ok(tmp.path());
}

#[test]
fn invalid_events_are_refused_and_not_written() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = FakeClock::at("2026-05-10T10:00:00Z");
    let log = open(tmp.path(), &clock);
    let big = Event::new("request.refused").detail(json!({ "x": "y".repeat(MAX_DETAIL_BYTES) }));
    let err = log.append(big).unwrap_err();
    assert!(matches!(err, AuditError::DetailTooLarge { .. }), "{err}");
    assert!(err.to_string().contains("4096"), "{err}");
    assert!(log.append(Event::new("Request Received")).is_err());
    assert!(log.append(event(1).prompt_sha256("not-a-hash")).is_err());
    assert_eq!(log.head().unwrap(), None);
    assert!(!tmp.path().join("2026-05.jsonl").exists());
    let ok = Event::new("request.refused").detail(json!({ "reason": "quota" }));
    assert_eq!(log.append(ok).unwrap().seq, 1);
}

#[test]
fn open_refuses_zero_retention() {
    let tmp = tempfile::tempdir().unwrap();
    assert!(AuditLog::open(tmp.path(), key(), 0).is_err());
    AuditLog::open(tmp.path(), key(), 6).unwrap();
}

#[test]
fn one_writer_per_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = FakeClock::at("2026-05-10T10:00:00Z");
    let log = open(tmp.path(), &clock);
    let second = AuditLog::open_with_clock(tmp.path(), key(), 6, clock.clock());
    assert!(matches!(second, Err(AuditError::Busy { .. })), "{second:?}");
    drop(log);
    open(tmp.path(), &clock);
}
