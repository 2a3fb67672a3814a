//! Integration tests of the audit trail on real files in temporary directories.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions fail loudly

mod concurrency;
mod export;
mod purge;
mod roundtrip;
mod tamper;
mod torn;

use civia_audit::{
    parse_rfc3339, verify, AuditError, AuditLog, Clock, Event, TamperError, TamperKind,
    VerifyReport,
};
use ed25519_dalek::SigningKey;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// A settable clock.
#[derive(Clone)]
pub struct FakeClock(Arc<Mutex<SystemTime>>);

impl FakeClock {
    pub fn at(ts: &str) -> FakeClock {
        FakeClock(Arc::new(Mutex::new(t(ts))))
    }
    pub fn set(&self, ts: &str) {
        *self.0.lock().unwrap() = t(ts);
    }
    pub fn clock(&self) -> Clock {
        let c = self.0.clone();
        Arc::new(move || *c.lock().unwrap())
    }
}

pub fn t(ts: &str) -> SystemTime {
    parse_rfc3339(ts).unwrap()
}

pub fn key() -> SigningKey {
    SigningKey::from_bytes(&[42u8; 32])
}

pub fn open(dir: &Path, clock: &FakeClock) -> AuditLog {
    AuditLog::open_with_clock(dir, key(), 6, clock.clock()).unwrap()
}

pub fn event(i: u32) -> Event {
    Event::new("request.completed")
        .request_id(format!("req-{i}"))
        .user("0123456789abcdef0123456789abcdef")
        .role("agent")
        .use_case("courrier")
        .model("mistral-7b-instruct")
        .prompt_tokens(100 + i)
        .completion_tokens(200 + i)
        .status(200u16)
}

pub fn verify_ok(dir: &Path) -> VerifyReport {
    match verify(dir, &key().verifying_key(), None) {
        Ok(r) => r,
        Err(e) => panic!("verify failed: {e}"),
    }
}

/// Runs verify, expects a tamper error of `kind` at `segment` / `line`.
pub fn verify_fails(dir: &Path, kind: TamperKind, segment: &str, line: Option<u64>) -> TamperError {
    match verify(dir, &key().verifying_key(), None) {
        Err(AuditError::Tampered(t)) => {
            assert_eq!(
                (t.kind, t.segment.as_str(), t.line),
                (kind, segment, line),
                "unexpected failure: {t}"
            );
            *t
        }
        Err(e) => panic!("unexpected error: {e}"),
        Ok(r) => panic!("verify passed: {r:?}"),
    }
}

/// Rewrites a (possibly read-only) file's lines; the newline structure is kept.
pub fn edit_lines(path: &Path, f: impl FnOnce(&mut Vec<Vec<u8>>)) {
    let bytes = fs::read(path).unwrap();
    let mut lines: Vec<Vec<u8>> = bytes
        .split_inclusive(|c| *c == b'\n')
        .map(|l| l.to_vec())
        .collect();
    f(&mut lines);
    write_anyway(path, &lines.concat());
}

/// Writes a file even if it was made read-only, restoring its mode.
pub fn write_anyway(path: &Path, bytes: &[u8]) {
    let mode = fs::metadata(path).unwrap().permissions().mode();
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(path, bytes).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Three months of 10 entries each: 2026-01 and 2026-02 sealed, 2026-03 open (seq 1..=30).
pub fn three_months(dir: &Path) -> FakeClock {
    let clock = FakeClock::at("2026-01-10T08:00:00Z");
    let log = open(dir, &clock);
    for (m, month) in ["01", "02", "03"].iter().enumerate() {
        for i in 0..10u32 {
            clock.set(&format!("2026-{month}-{:02}T09:{:02}:00.250Z", 10 + i, i));
            log.append(event(m as u32 * 10 + i)).unwrap();
        }
    }
    clock
}
