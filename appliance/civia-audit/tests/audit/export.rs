use super::*;
use civia_audit::{export, ExportFormat, CSV_COLUMNS};
use serde_json::{json, Value};

const TRICKY: &str = "a, b; \"quoted\"\nsecond line\r\nthird";

fn fixture(dir: &Path) {
    let clock = FakeClock::at("2026-01-20T10:00:00Z");
    let log = open(dir, &clock);
    for (ts, i) in [
        ("2026-01-20T10:00:00Z", 0),
        ("2026-01-31T23:59:59.999Z", 1),
        ("2026-02-01T00:00:00Z", 2),
        ("2026-02-14T08:30:00Z", 3),
        ("2026-02-28T23:59:59.999Z", 4),
        ("2026-03-01T00:00:00Z", 5),
    ] {
        clock.set(ts);
        let e = if i == 3 {
            Event::new("admin.user_created")
                .user("fedcba9876543210fedcba9876543210")
                .detail(json!({ "note": TRICKY, "n": 3 }))
        } else {
            event(i)
                .prompt_sha256("a".repeat(64))
                .output_sha256("b".repeat(64))
        };
        log.append(e).unwrap();
    }
}

/// Minimal RFC 4180 reader for the test.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let (mut rows, mut row, mut cell) = (Vec::new(), Vec::new(), String::new());
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => cell.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut cell)),
            (false, '\r') => assert_eq!(chars.next(), Some('\n')),
            (false, '\n') => panic!("bare LF outside quotes"),
            (false, c) => cell.push(c),
        }
        if !quoted && c == '\r' {
            row.push(std::mem::take(&mut cell));
            rows.push(std::mem::take(&mut row));
        }
    }
    assert!(row.is_empty() && cell.is_empty(), "unterminated record");
    rows
}

#[test]
fn json_lines_export_is_the_stored_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    fixture(tmp.path());
    let mut out = Vec::new();
    let n = export(
        tmp.path(),
        t("2026-02-01T00:00:00Z"),
        t("2026-03-01T00:00:00Z"),
        ExportFormat::Json,
        &mut out,
    )
    .unwrap();
    assert_eq!(n, 3);
    assert_eq!(out, fs::read(tmp.path().join("2026-02.jsonl")).unwrap());
    // Bounds across months, with an offset.
    let mut out = Vec::new();
    let n = export(
        tmp.path(),
        t("2026-02-01T00:59:59.999+01:00"),
        t("2026-02-14T08:30:00.001Z"),
        ExportFormat::Json,
        &mut out,
    )
    .unwrap();
    assert_eq!(n, 3);
    assert!(String::from_utf8(out).unwrap().starts_with("{\"seq\":2,"));
    let mut out = Vec::new();
    assert_eq!(
        export(
            tmp.path(),
            t("2026-03-02T00:00:00Z"),
            t("2026-03-01T00:00:00Z"),
            ExportFormat::Json,
            &mut out
        )
        .unwrap(),
        0
    );
}

#[test]
fn csv_export_quotes_properly() {
    let tmp = tempfile::tempdir().unwrap();
    fixture(tmp.path());
    let mut out = Vec::new();
    let n = export(
        tmp.path(),
        t("2026-02-01T00:00:00Z"),
        t("2026-03-01T00:00:00Z"),
        ExportFormat::Csv,
        &mut out,
    )
    .unwrap();
    assert_eq!(n, 3);
    let text = String::from_utf8(out).unwrap();
    let rows = parse_csv(&text);
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[0], CSV_COLUMNS);
    assert!(rows.iter().all(|r| r.len() == CSV_COLUMNS.len()));
    let stored: Vec<Value> = fs::read_to_string(tmp.path().join("2026-02.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for (row, entry) in rows[1..].iter().zip(&stored) {
        for (col, cell) in CSV_COLUMNS.iter().zip(row) {
            let expected = match &entry[*col] {
                Value::Null => String::new(),
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            assert_eq!(cell, &expected, "column {col}");
        }
    }
    let detail: Value = serde_json::from_str(&rows[2][15]).unwrap();
    assert_eq!(detail["note"], TRICKY);
    assert_eq!(rows[2][3], "admin.user_created");
    assert_eq!(rows[2][10], "", "absent prompt_tokens is an empty cell");
}

fn schema() -> jsonschema::Validator {
    let text = fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/audit-entry.schema.json"
    ))
    .unwrap();
    jsonschema::validator_for(&serde_json::from_str(&text).unwrap()).unwrap()
}

#[test]
fn exported_lines_validate_against_the_schema() {
    let tmp = tempfile::tempdir().unwrap();
    fixture(tmp.path());
    let mut out = Vec::new();
    let n = export(
        tmp.path(),
        t("2000-01-01T00:00:00Z"),
        t("2100-01-01T00:00:00Z"),
        ExportFormat::Json,
        &mut out,
    )
    .unwrap();
    assert_eq!(n, 6);
    let validator = schema();
    for line in String::from_utf8(out).unwrap().lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let errors: Vec<String> = validator.iter_errors(&v).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{line}: {errors:?}");
    }
}

#[test]
fn schema_rejects_what_the_writer_never_writes() {
    let validator = schema();
    let good = json!({
        "seq": 1, "ts": "2026-02-01T00:00:00.000Z", "prev": "0".repeat(64),
        "event": "request.completed", "prompt_tokens": 3
    });
    assert!(validator.is_valid(&good));
    let with = |k: &str, v: Value| {
        let mut x = good.clone();
        x[k] = v;
        x
    };
    for bad in [
        with("prompt", json!("Bonjour, pouvez-vous…")), // no text field exists
        with("ts", json!("2026-02-01T00:00:00Z")),
        with("prev", json!("abc")),
        with("event", json!("Request")),
        with("seq", json!(0)),
        with("prompt_tokens", json!(-1)),
        with("detail", json!("text")),
        with("role", json!("two\nlines")),
    ] {
        assert!(!validator.is_valid(&bad), "accepted {bad}");
    }
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("prev");
    assert!(!validator.is_valid(&missing));
}
