use super::*;

/// Changes one digit of `prompt_tokens`: the line stays a valid entry.
fn bump_digit(line: &mut [u8]) {
    let key = b"\"prompt_tokens\":1";
    let at = line.windows(key.len()).position(|w| w == key).unwrap() + key.len();
    line[at] = if line[at] == b'9' { b'0' } else { line[at] + 1 };
}

fn fixture() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    three_months(&dir);
    let r = verify_ok(&dir);
    assert_eq!((r.entries, r.sealed_segments), (30, 2));
    (tmp, dir)
}

#[test]
fn edit_in_sealed_segment_is_edited_at_next_line_before_seal_check() {
    // Line-level checks come first: a changed byte in a sealed segment is `edited` at the
    // line whose prev no longer matches, not `bad_signature`.
    let (_tmp, dir) = fixture();
    edit_lines(&dir.join("2026-02.jsonl"), |l| bump_digit(&mut l[4]));
    let t = verify_fails(&dir, TamperKind::Edited, "2026-02.jsonl", Some(6));
    assert_eq!(t.seq, Some(16));
    assert_eq!(
        t.to_string(),
        "2026-02.jsonl line 6 (seq 16): edited: prev hash does not match line 5"
    );
}

#[test]
fn edit_making_a_line_unreadable_is_edited_at_that_line() {
    let (_tmp, dir) = fixture();
    edit_lines(&dir.join("2026-02.jsonl"), |l| l[4][0] = b'[');
    let t = verify_fails(&dir, TamperKind::Edited, "2026-02.jsonl", Some(5));
    assert!(t.detail.contains("not a valid entry"), "{t}");
    // A field rule broken by the edit is also caught at the line itself.
    let (_tmp, dir) = fixture();
    edit_lines(&dir.join("2026-01.jsonl"), |l| {
        let s = String::from_utf8(l[2].clone()).unwrap();
        l[2] = s
            .replace("request.completed", "request.Completed")
            .into_bytes();
    });
    verify_fails(&dir, TamperKind::Edited, "2026-01.jsonl", Some(3));
}

#[test]
fn edit_of_last_line_of_sealed_segment_is_caught_by_its_seal() {
    let (_tmp, dir) = fixture();
    edit_lines(&dir.join("2026-01.jsonl"), |l| bump_digit(&mut l[9]));
    let t = verify_fails(&dir, TamperKind::Edited, "2026-01.jsonl", Some(10));
    assert!(t.detail.contains("sealed last hash"), "{t}");
}

#[test]
fn edit_in_open_segment_is_edited() {
    let (_tmp, dir) = fixture();
    edit_lines(&dir.join("2026-03.jsonl"), |l| bump_digit(&mut l[3]));
    let t = verify_fails(&dir, TamperKind::Edited, "2026-03.jsonl", Some(5));
    assert_eq!(t.seq, Some(25));
}

#[test]
fn deleted_line_is_deleted() {
    let (_tmp, dir) = fixture();
    edit_lines(&dir.join("2026-02.jsonl"), |l| {
        l.remove(4);
    });
    let t = verify_fails(&dir, TamperKind::Deleted, "2026-02.jsonl", Some(5));
    assert_eq!(t.seq, Some(16));
    assert!(t.detail.contains("seq 15 is missing"), "{t}");
    // Same in the open segment.
    let (_tmp, dir) = fixture();
    edit_lines(&dir.join("2026-03.jsonl"), |l| {
        l.remove(0);
    });
    verify_fails(&dir, TamperKind::Deleted, "2026-03.jsonl", Some(1));
}

#[test]
fn swapped_lines_are_reordered() {
    let (_tmp, dir) = fixture();
    edit_lines(&dir.join("2026-03.jsonl"), |l| l.swap(3, 4));
    let t = verify_fails(&dir, TamperKind::Reordered, "2026-03.jsonl", Some(4));
    assert_eq!(t.seq, Some(25));
    assert!(t.detail.contains("at line 5"), "{t}");
    // Swapped far apart, in a sealed segment.
    let (_tmp, dir) = fixture();
    edit_lines(&dir.join("2026-01.jsonl"), |l| l.swap(1, 7));
    verify_fails(&dir, TamperKind::Reordered, "2026-01.jsonl", Some(2));
}

#[test]
fn truncated_sealed_segment_is_truncated() {
    let (_tmp, dir) = fixture();
    edit_lines(&dir.join("2026-01.jsonl"), |l| l.truncate(7));
    let t = verify_fails(&dir, TamperKind::Truncated, "2026-01.jsonl", Some(8));
    assert_eq!(t.seq, Some(8));
    assert!(t.detail.contains("sealed up to seq 10"), "{t}");
    // Cut in the middle of a line.
    let (_tmp, dir) = fixture();
    let path = dir.join("2026-02.jsonl");
    let bytes = fs::read(&path).unwrap();
    write_anyway(&path, &bytes[..bytes.len() - 30]);
    verify_fails(&dir, TamperKind::Truncated, "2026-02.jsonl", Some(10));
}

#[test]
fn missing_seal_is_missing_signature() {
    let (_tmp, dir) = fixture();
    fs::remove_file(dir.join("2026-01.sig")).unwrap();
    let t = verify_fails(&dir, TamperKind::MissingSignature, "2026-01.jsonl", None);
    assert!(
        t.to_string()
            .starts_with("2026-01.jsonl: missing_signature: "),
        "{t}"
    );
}

#[test]
fn wrong_public_key_is_bad_signature() {
    let (_tmp, dir) = fixture();
    let other = SigningKey::from_bytes(&[7u8; 32]).verifying_key();
    match verify(&dir, &other, None) {
        Err(AuditError::Tampered(t)) => {
            assert_eq!(
                (t.kind, t.segment.as_str()),
                (TamperKind::BadSignature, "2026-01.jsonl")
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn forged_seal_is_bad_signature() {
    let (_tmp, dir) = fixture();
    let path = dir.join("2026-02.sig");
    let text = fs::read_to_string(&path).unwrap();
    write_anyway(
        &path,
        text.replace("\"last_seq\": 20", "\"last_seq\": 19")
            .as_bytes(),
    );
    verify_fails(&dir, TamperKind::BadSignature, "2026-02.jsonl", None);
}

#[test]
fn deleted_segment_is_deleted() {
    let (_tmp, dir) = fixture();
    fs::remove_file(dir.join("2026-02.jsonl")).unwrap();
    fs::remove_file(dir.join("2026-02.sig")).unwrap();
    let t = verify_fails(&dir, TamperKind::Deleted, "2026-03.jsonl", Some(1));
    assert!(t.detail.contains("seq 11..=20 are missing"), "{t}");
    // Segment gone, seal left behind.
    let (_tmp, dir) = fixture();
    fs::remove_file(dir.join("2026-02.jsonl")).unwrap();
    verify_fails(&dir, TamperKind::Deleted, "2026-02.jsonl", None);
}

#[test]
fn range_verification() {
    let (_tmp, dir) = fixture();
    let pk = key().verifying_key();
    edit_lines(&dir.join("2026-01.jsonl"), |l| bump_digit(&mut l[2]));
    // January is outside the range; February links to January's seal.
    let r = verify(&dir, &pk, Some(("2026-02", "2026-03"))).unwrap();
    assert_eq!((r.segments, r.entries, r.first_seq), (2, 20, Some(11)));
    assert!(verify(&dir, &pk, Some(("2026-01", "2026-01"))).is_err());
    edit_lines(&dir.join("2026-02.jsonl"), |l| bump_digit(&mut l[2]));
    let err = verify(&dir, &pk, Some(("2026-02", "2026-02"))).unwrap_err();
    assert_eq!(err.tamper().unwrap().segment, "2026-02.jsonl");
    assert!(verify(&dir, &pk, Some(("2026-03", "2026-03"))).is_ok());
    assert!(verify(&dir, &pk, Some(("2026-3", "2026-03"))).is_err());
}
