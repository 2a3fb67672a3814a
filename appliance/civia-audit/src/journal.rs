//! A mirror of the audit trail in the systemd journal, with structured fields, spoken in
//! journald's native protocol (<https://systemd.io/JOURNAL_NATIVE_PROTOCOL/>) without
//! libsystemd: one datagram per entry on journald's `AF_UNIX`/`SOCK_DGRAM` socket.
//!
//! Each field is `KEY=value\n`, or, when the value holds a newline, `KEY\n`, the value's
//! length as a 64-bit little-endian integer, the value, `\n`.
//!
//! The mirror is a convenience for operators (`journalctl -t civiad CIVIA_AUDIT_EVENT=…`),
//! not the trail: the signed, hash-chained segments stay the reference, and a mirrored entry
//! may be missing (journald stalled or absent). It carries the same metadata as the trail,
//! so the same rules hold: no prompt or output text, users as pseudonyms only.
//!
//! Large entries: the protocol passes entries too big for a datagram in a memfd (via
//! `SCM_RIGHTS`); this mirror does not. Audit entries are small (text fields of at most
//! [`MAX_FIELD_BYTES`](crate::MAX_FIELD_BYTES), `detail` of at most
//! [`MAX_DETAIL_BYTES`](crate::MAX_DETAIL_BYTES)), far below the datagram limit (the socket
//! send buffer, about 200 KiB by default). Should the kernel still refuse the size
//! (`EMSGSIZE`), the entry is sent again without `CIVIA_DETAIL`, with `CIVIA_DETAIL_OMITTED`
//! giving the detail's size in bytes instead.

use crate::{line_hash, Entry};
use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

/// journald's native protocol socket.
pub const DEFAULT_JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// `SYSLOG_IDENTIFIER` of the mirrored entries.
pub const JOURNAL_IDENTIFIER: &str = "civiad";

/// The field that replaces `CIVIA_DETAIL` in an entry too big for a datagram.
const DETAIL_OMITTED: &str = "CIVIA_DETAIL_OMITTED";

/// A failed send to journald; the entry is not in the journal (it is in the trail).
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// No socket could be created to send from.
    #[error("journal mirror {}: cannot create a socket: {source}", path.display())]
    Socket {
        /// The journald socket.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// journald is not reading fast enough (its queue is full): the entry was dropped rather
    /// than block the audit writer.
    #[error("journal mirror {}: journald is busy, entry dropped", path.display())]
    WouldBlock {
        /// The journald socket.
        path: PathBuf,
    },
    /// The send failed (no journald listening at that path, permission refused…).
    #[error("journal mirror {}: {source}", path.display())]
    Send {
        /// The journald socket.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// Sends audit entries to journald. `Send + Sync`; never blocks.
#[derive(Debug)]
pub struct JournalMirror {
    path: PathBuf,
    /// Unbound and non-blocking; `None` if it could not be created (then each send tries
    /// again with a fresh socket).
    socket: Option<UnixDatagram>,
}

impl JournalMirror {
    /// A mirror sending to the socket at `path` ([`DEFAULT_JOURNAL_SOCKET`] in production).
    /// Never fails: a missing journald or a socket error is reported by [`JournalMirror::send`].
    pub fn new(path: impl Into<PathBuf>) -> JournalMirror {
        JournalMirror {
            path: path.into(),
            socket: new_socket().ok(),
        }
    }

    /// The journal fields of an entry, in a fixed order, only those present: `MESSAGE` (`audit
    /// <seq> <event>`), `PRIORITY` (6, info), `SYSLOG_IDENTIFIER` ([`JOURNAL_IDENTIFIER`]), then
    /// `CIVIA_AUDIT_SEQ`, `CIVIA_AUDIT_EVENT`, `CIVIA_AUDIT_TS`, `CIVIA_AUDIT_PREV`,
    /// `CIVIA_AUDIT_HASH` (the SHA-256 of the entry's line, as the next entry's `prev`),
    /// `CIVIA_REQUEST_ID`, `CIVIA_USER` (pseudonym), `CIVIA_ROLE`, `CIVIA_USE_CASE`,
    /// `CIVIA_MODEL`, `CIVIA_MODEL_SHA256`, `CIVIA_PROMPT_SHA256`, `CIVIA_OUTPUT_SHA256`,
    /// `CIVIA_PROMPT_TOKENS`, `CIVIA_COMPLETION_TOKENS`, `CIVIA_STATUS`, `CIVIA_DETAIL` (compact
    /// JSON).
    pub fn fields(entry: &Entry) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::with_capacity(24);
        let mut put = |key: &str, value: String| out.push((key.to_owned(), value));
        // The event name is `[a-z0-9_.]{1,64}` in a valid entry: nothing user-written.
        put("MESSAGE", format!("audit {} {}", entry.seq, entry.event));
        put("PRIORITY", "6".to_owned());
        put("SYSLOG_IDENTIFIER", JOURNAL_IDENTIFIER.to_owned());
        put("CIVIA_AUDIT_SEQ", entry.seq.to_string());
        put("CIVIA_AUDIT_EVENT", entry.event.clone());
        put("CIVIA_AUDIT_TS", entry.ts.clone());
        put("CIVIA_AUDIT_PREV", entry.prev.clone());
        if let Ok(line) = entry.to_line() {
            put("CIVIA_AUDIT_HASH", line_hash(&line));
        }
        let texts = [
            ("CIVIA_REQUEST_ID", &entry.request_id),
            ("CIVIA_USER", &entry.user),
            ("CIVIA_ROLE", &entry.role),
            ("CIVIA_USE_CASE", &entry.use_case),
            ("CIVIA_MODEL", &entry.model),
            ("CIVIA_MODEL_SHA256", &entry.model_sha256),
            ("CIVIA_PROMPT_SHA256", &entry.prompt_sha256),
            ("CIVIA_OUTPUT_SHA256", &entry.output_sha256),
        ];
        for (key, value) in texts {
            if let Some(v) = value {
                put(key, v.clone());
            }
        }
        let numbers = [
            ("CIVIA_PROMPT_TOKENS", entry.prompt_tokens.map(u64::from)),
            (
                "CIVIA_COMPLETION_TOKENS",
                entry.completion_tokens.map(u64::from),
            ),
            ("CIVIA_STATUS", entry.status.map(u64::from)),
        ];
        for (key, value) in numbers {
            if let Some(v) = value {
                put(key, v.to_string());
            }
        }
        if let Some(detail) = &entry.detail {
            if let Ok(json) = serde_json::to_string(detail) {
                put("CIVIA_DETAIL", json);
            }
        }
        out
    }

    /// The journald socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sends one entry as one datagram, without waiting: if journald's queue is full the
    /// entry is dropped and [`JournalError::WouldBlock`] returned (count it and go on). Send the entry as it was
    /// appended, so that `CIVIA_AUDIT_HASH` is its line's hash.
    pub fn send(&self, entry: &Entry) -> Result<(), JournalError> {
        let fresh;
        let socket = match &self.socket {
            Some(s) => s,
            None => {
                fresh = new_socket().map_err(|source| JournalError::Socket {
                    path: self.path.clone(),
                    source,
                })?;
                &fresh
            }
        };
        let mut fields = JournalMirror::fields(entry);
        match self.send_fields(socket, &fields) {
            Err(e) if e.raw_os_error() == Some(libc::EMSGSIZE) => {
                let size = fields
                    .iter()
                    .find(|(k, _)| k == "CIVIA_DETAIL")
                    .map_or(0, |(_, v)| v.len());
                fields.retain(|(k, _)| k != "CIVIA_DETAIL");
                fields.push((DETAIL_OMITTED.to_owned(), size.to_string()));
                self.send_fields(socket, &fields)
            }
            other => other,
        }
        .map_err(|source| {
            if source.kind() == io::ErrorKind::WouldBlock {
                JournalError::WouldBlock {
                    path: self.path.clone(),
                }
            } else {
                JournalError::Send {
                    path: self.path.clone(),
                    source,
                }
            }
        })
    }

    fn send_fields(&self, socket: &UnixDatagram, fields: &[(String, String)]) -> io::Result<()> {
        let datagram = encode(fields);
        let sent = socket.send_to(&datagram, &self.path)?;
        if sent != datagram.len() {
            // Datagrams go whole or not at all; never seen, but do not claim success.
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("sent {sent} of {} bytes", datagram.len()),
            ));
        }
        Ok(())
    }
}

fn new_socket() -> io::Result<UnixDatagram> {
    let socket = UnixDatagram::unbound()?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// journald's rule for a field a client may send: 1 to 64 of `A-Z`, `0-9`, `_`, not starting
/// with a digit or `_` (`_` fields are journald's own, trusted ones).
fn is_field_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_')
        && !name.starts_with(|c: char| c == '_' || c.is_ascii_digit())
}

/// One datagram of the native protocol; fields with an invalid name are left out.
fn encode(fields: &[(String, String)]) -> Vec<u8> {
    let size = fields.iter().map(|(k, v)| k.len() + v.len() + 10).sum();
    let mut out = Vec::with_capacity(size);
    for (key, value) in fields {
        if !is_field_name(key) {
            continue;
        }
        out.extend_from_slice(key.as_bytes());
        if value.contains('\n') {
            out.push(b'\n');
            out.extend_from_slice(&(value.len() as u64).to_le_bytes());
        } else {
            out.push(b'=');
        }
        out.extend_from_slice(value.as_bytes());
        out.push(b'\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::GENESIS_HASH;
    use serde_json::json;
    use std::collections::HashMap;
    use std::time::Duration;

    /// Parses a datagram of the native protocol; also says which fields used the binary form.
    fn parse(mut d: &[u8]) -> (Vec<(String, String)>, Vec<String>) {
        let mut fields = Vec::new();
        let mut binary = Vec::new();
        while !d.is_empty() {
            let end = d
                .iter()
                .position(|&b| b == b'=' || b == b'\n')
                .expect("field name ends");
            let key = String::from_utf8(d[..end].to_vec()).unwrap();
            let value;
            if d[end] == b'=' {
                let rest = &d[end + 1..];
                let nl = rest.iter().position(|&b| b == b'\n').expect("newline");
                value = rest[..nl].to_vec();
                d = &rest[nl + 1..];
            } else {
                let rest = &d[end + 1..];
                let len = u64::from_le_bytes(rest[..8].try_into().unwrap()) as usize;
                value = rest[8..8 + len].to_vec();
                assert_eq!(rest[8 + len], b'\n', "binary value ends with a newline");
                d = &rest[8 + len + 1..];
                binary.push(key.clone());
            }
            fields.push((key, String::from_utf8(value).unwrap()));
        }
        (fields, binary)
    }

    fn journald() -> (tempfile::TempDir, PathBuf, UnixDatagram) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("socket");
        let rx = UnixDatagram::bind(&path).unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        (dir, path, rx)
    }

    fn receive(rx: &UnixDatagram) -> Vec<u8> {
        let mut buf = vec![0u8; 1 << 22];
        let n = rx.recv(&mut buf).unwrap();
        buf.truncate(n);
        buf
    }

    fn entry() -> Entry {
        Entry {
            seq: 42,
            ts: "2026-11-29T11:47:02.123Z".into(),
            prev: GENESIS_HASH.into(),
            event: "request.completed".into(),
            request_id: Some("req-7f3a".into()),
            user: Some("u-3b9c0d1e".into()),
            role: Some("agent".into()),
            use_case: None,
            model: Some("mistral-7b-instruct".into()),
            model_sha256: Some("a".repeat(64)),
            prompt_sha256: Some("b".repeat(64)),
            output_sha256: Some("c".repeat(64)),
            prompt_tokens: Some(120),
            completion_tokens: Some(480),
            status: Some(200),
            detail: Some(json!({ "pii": ["email"], "stream": true })),
        }
    }

    #[test]
    fn entry_arrives_as_structured_fields() {
        let (_dir, path, rx) = journald();
        let mirror = JournalMirror::new(&path);
        assert_eq!(mirror.path(), path);
        let e = entry();
        mirror.send(&e).unwrap();
        let (got, binary) = parse(&receive(&rx));
        assert!(binary.is_empty());
        assert_eq!(got, JournalMirror::fields(&e));
        let map: HashMap<_, _> = got.into_iter().collect();
        let line = e.to_line().unwrap();
        for (k, v) in [
            ("MESSAGE", "audit 42 request.completed"),
            ("PRIORITY", "6"),
            ("SYSLOG_IDENTIFIER", "civiad"),
            ("CIVIA_AUDIT_SEQ", "42"),
            ("CIVIA_AUDIT_EVENT", "request.completed"),
            ("CIVIA_AUDIT_TS", "2026-11-29T11:47:02.123Z"),
            ("CIVIA_AUDIT_PREV", GENESIS_HASH),
            ("CIVIA_AUDIT_HASH", &line_hash(&line)),
            ("CIVIA_REQUEST_ID", "req-7f3a"),
            ("CIVIA_USER", "u-3b9c0d1e"),
            ("CIVIA_ROLE", "agent"),
            ("CIVIA_MODEL", "mistral-7b-instruct"),
            ("CIVIA_MODEL_SHA256", &"a".repeat(64)),
            ("CIVIA_PROMPT_SHA256", &"b".repeat(64)),
            ("CIVIA_OUTPUT_SHA256", &"c".repeat(64)),
            ("CIVIA_PROMPT_TOKENS", "120"),
            ("CIVIA_COMPLETION_TOKENS", "480"),
            ("CIVIA_STATUS", "200"),
            ("CIVIA_DETAIL", r#"{"pii":["email"],"stream":true}"#),
        ] {
            assert_eq!(map.get(k).map(String::as_str), Some(v), "{k}");
        }
        assert_eq!(map.len(), 19, "no use case, nothing else");
    }

    #[test]
    fn only_present_fields() {
        let e = Entry {
            seq: 1,
            ts: "2026-01-01T00:00:00.000Z".into(),
            prev: GENESIS_HASH.into(),
            event: "admin.login".into(),
            request_id: None,
            user: None,
            role: None,
            use_case: None,
            model: None,
            model_sha256: None,
            prompt_sha256: None,
            output_sha256: None,
            prompt_tokens: None,
            completion_tokens: None,
            status: None,
            detail: None,
        };
        let keys: Vec<String> = JournalMirror::fields(&e)
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(
            keys,
            [
                "MESSAGE",
                "PRIORITY",
                "SYSLOG_IDENTIFIER",
                "CIVIA_AUDIT_SEQ",
                "CIVIA_AUDIT_EVENT",
                "CIVIA_AUDIT_TS",
                "CIVIA_AUDIT_PREV",
                "CIVIA_AUDIT_HASH"
            ]
        );
    }

    #[test]
    fn newlines_use_the_binary_form() {
        let (_dir, path, rx) = journald();
        let mirror = JournalMirror::new(&path);
        // In `detail`, a newline is escaped by the compact JSON: the plain form is kept.
        let mut e = entry();
        e.detail = Some(json!({ "note": "two\nlines" }));
        mirror.send(&e).unwrap();
        let (got, binary) = parse(&receive(&rx));
        assert!(binary.is_empty(), "{binary:?}");
        let map: HashMap<_, _> = got.into_iter().collect();
        assert_eq!(map["CIVIA_DETAIL"], r#"{"note":"two\nlines"}"#);
        // A raw newline (an entry built by hand, not validated) takes the binary form.
        e.role = Some("agent\nPRIORITY=0".into());
        mirror.send(&e).unwrap();
        let (got, binary) = parse(&receive(&rx));
        assert_eq!(binary, ["CIVIA_ROLE"]);
        let map: HashMap<_, _> = got.iter().cloned().collect();
        assert_eq!(map["CIVIA_ROLE"], "agent\nPRIORITY=0");
        assert_eq!(map["PRIORITY"], "6", "no field injection");
        assert_eq!(got.iter().filter(|(k, _)| k == "PRIORITY").count(), 1);
    }

    #[test]
    fn all_field_names_are_valid() {
        let mut e = entry();
        e.use_case = Some("courrier".into());
        let f = JournalMirror::fields(&e);
        assert_eq!(f.len(), 20);
        for (k, _) in &f {
            assert!(is_field_name(k), "{k}");
        }
        assert!(is_field_name(DETAIL_OMITTED));
        for bad in ["", "_PID", "1X", "message", "A-B", "A=B", &"A".repeat(65)] {
            assert!(!is_field_name(bad), "{bad}");
        }
        let d = encode(&[("bad key".into(), "x".into()), ("OK".into(), "y".into())]);
        assert_eq!(d, b"OK=y\n");
    }

    #[test]
    fn missing_socket_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nobody-listens");
        let mirror = JournalMirror::new(&path);
        let err = mirror.send(&entry()).unwrap_err();
        assert!(
            matches!(&err, JournalError::Send { path: p, source } if *p == path
                && source.kind() == io::ErrorKind::NotFound),
            "{err:?}"
        );
        assert!(err.to_string().contains("nobody-listens"), "{err}");
    }

    #[test]
    fn full_queue_drops_without_blocking() {
        let (_dir, path, _rx) = journald();
        let mirror = JournalMirror::new(&path);
        let e = entry();
        let mut sent = 0;
        let err = loop {
            match mirror.send(&e) {
                Ok(()) => sent += 1,
                Err(err) => break err,
            }
            assert!(sent < 1_000_000, "the queue never filled");
        };
        assert!(
            matches!(&err, JournalError::WouldBlock { path: p } if *p == path),
            "{err:?} after {sent}"
        );
    }

    #[test]
    fn oversized_entry_is_sent_without_detail() {
        let (_dir, path, rx) = journald();
        let mirror = JournalMirror::new(&path);
        let mut e = entry();
        // Far above any real detail (not validated here) and any default send buffer.
        let big = "x".repeat(4 << 20);
        e.detail = Some(json!({ "s": big }));
        mirror.send(&e).unwrap();
        let (got, _) = parse(&receive(&rx));
        let map: HashMap<_, _> = got.into_iter().collect();
        assert!(!map.contains_key("CIVIA_DETAIL"));
        assert_eq!(map[DETAIL_OMITTED], (big.len() + 8).to_string());
        assert_eq!(map["CIVIA_AUDIT_SEQ"], "42");
    }

    #[test]
    fn mirror_is_send_sync() {
        fn check<T: Send + Sync>() {}
        check::<JournalMirror>();
        check::<JournalError>();
    }

    #[test]
    fn the_writer_mirrors_durable_entries_and_counts_drops() {
        let (_jd, path, rx) = journald();
        let dir = tempfile::tempdir().unwrap();
        let key = crate::SigningKey::from_bytes(&[7u8; 32]);
        let log = crate::AuditLog::open(&dir.path().join("audit"), key, 6).unwrap();
        log.mirror_to(JournalMirror::new(&path));
        let a = log
            .append(crate::Event::new("request.received").role("agent"))
            .unwrap();
        let (got, _) = parse(&receive(&rx));
        let map: HashMap<_, _> = got.into_iter().collect();
        assert_eq!(map["CIVIA_AUDIT_SEQ"], a.seq.to_string());
        assert_eq!(map["CIVIA_AUDIT_EVENT"], "request.received");
        assert_eq!(map["CIVIA_AUDIT_HASH"], a.hash);
        assert_eq!(log.mirror_drops(), 0);
        // journald gone: appends still succeed, the misses are counted.
        drop(rx);
        log.append(crate::Event::new("request.admitted")).unwrap();
        assert_eq!(log.mirror_drops(), 1);
    }
}
