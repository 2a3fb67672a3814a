use super::*;
use civia_audit::VerifyWarning;
use std::io::Write;

fn append_raw(path: &Path, bytes: &[u8]) {
    fs::OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap()
        .write_all(bytes)
        .unwrap();
}

#[test]
fn torn_last_line_is_a_warning_then_cut_at_open() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let clock = three_months(dir);
    let seg = dir.join("2026-03.jsonl");
    let good_len = fs::metadata(&seg).unwrap().len();
    // Half a line, as a crash during a write leaves it.
    let half = br#"{"seq":31,"ts":"2026-03-25T10:00:00.000Z","prev":"ab"#;
    append_raw(&seg, half);

    let r = verify_ok(dir);
    assert_eq!(r.entries, 30);
    let torn: Vec<&VerifyWarning> = r.warnings.iter().collect();
    assert_eq!(torn.len(), 1, "{torn:?}");
    assert_eq!(torn[0].kind, civia_audit::WarningKind::Torn);
    assert_eq!(
        (torn[0].segment.as_str(), torn[0].line),
        ("2026-03.jsonl", Some(11))
    );

    let log = open(dir, &clock);
    let report = log.open_report().torn.clone().expect("torn line reported");
    assert_eq!(report.segment, "2026-03.jsonl");
    assert_eq!(report.offset, good_len);
    assert_eq!(report.bytes, half);
    assert_eq!(fs::metadata(&seg).unwrap().len(), good_len);
    assert_eq!(log.open_report().last_seq, 30);

    clock.set("2026-03-26T10:00:00Z");
    assert_eq!(log.append(event(31)).unwrap().seq, 31);
    clock.set("2026-04-02T10:00:00Z");
    assert_eq!(log.append(event(32)).unwrap().seq, 32);
    let r = verify_ok(dir);
    assert_eq!((r.entries, r.sealed_segments), (32, 3));
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
}

#[test]
fn unparsable_last_line_is_torn_too() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let clock = three_months(dir);
    let seg = dir.join("2026-03.jsonl");
    append_raw(&seg, b"\0\0\0\0\0\0\n");
    assert_eq!(verify_ok(dir).warnings.len(), 1);
    let log = open(dir, &clock);
    assert_eq!(
        log.open_report().torn.as_ref().unwrap().bytes,
        b"\0\0\0\0\0\0\n"
    );
    assert_eq!(log.append(event(0)).unwrap().seq, 31);
    assert!(verify_ok(dir).warnings.is_empty());
}

#[test]
fn torn_only_line_of_a_new_segment() {
    // The crash hit the very first line of a month: the chain resumes from the sealed month.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let clock = three_months(dir);
    clock.set("2026-04-01T00:00:00Z");
    let log = open(dir, &clock);
    log.append(event(0)).unwrap();
    drop(log);
    let seg = dir.join("2026-04.jsonl");
    let bytes = fs::read(&seg).unwrap();
    fs::write(&seg, &bytes[..bytes.len() / 2]).unwrap();
    let log = open(dir, &clock);
    assert!(log.open_report().torn.is_some());
    assert_eq!(log.open_report().last_seq, 30);
    assert_eq!(log.append(event(0)).unwrap().seq, 31);
    assert_eq!(verify_ok(dir).entries, 31);
}

#[test]
fn torn_line_in_sealed_segment_is_not_a_crash() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    three_months(dir);
    let path = dir.join("2026-01.jsonl");
    let mut bytes = fs::read(&path).unwrap();
    bytes.extend_from_slice(b"{\"seq\":11");
    write_anyway(&path, &bytes);
    verify_fails(dir, TamperKind::Edited, "2026-01.jsonl", Some(11));
}
