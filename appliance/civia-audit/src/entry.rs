//! One audit entry: what callers pass ([`Event`]) and what is stored ([`Entry`], one JSON
//! line). Only metadata: there is deliberately no field for prompt or output text.

use crate::AuditError;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Largest serialized `detail` accepted, in bytes.
pub const MAX_DETAIL_BYTES: usize = 4096;
/// Largest accepted free-text field (`request_id`, `user`, `role`, `use_case`, `model`), in bytes.
pub const MAX_FIELD_BYTES: usize = 128;
/// `prev` of the very first entry: 64 zeros.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What a caller logs: everything of an [`Entry`] except `seq`, `ts` and `prev`, which the
/// log assigns.
///
/// Build it with [`Event::new`] and the setters, or with struct update syntax:
/// `Event { user: Some(p), ..Event::new("request.received") }`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Event {
    /// Event name, `[a-z0-9_.]{1,64}`: `request.received`, `request.admitted`,
    /// `request.refused`, `request.completed`, `request.failed`, `audit.read`, `update.*`,
    /// `admin.*`…
    pub event: String,
    /// Request identifier (correlates the entries of one request).
    pub request_id: Option<String>,
    /// The user's pseudonym (see [`Pseudonymizer`](crate::Pseudonymizer)), never a name.
    pub user: Option<String>,
    /// The user's role.
    pub role: Option<String>,
    /// Declared use case.
    pub use_case: Option<String>,
    /// Model name.
    pub model: Option<String>,
    /// SHA-256 of the model file, 64 lowercase hex digits.
    pub model_sha256: Option<String>,
    /// Prompt size in tokens.
    pub prompt_tokens: Option<u32>,
    /// Completion size in tokens.
    pub completion_tokens: Option<u32>,
    /// HTTP-like status of the outcome.
    pub status: Option<u16>,
    /// SHA-256 of the prompt (never the prompt), 64 lowercase hex digits.
    pub prompt_sha256: Option<String>,
    /// SHA-256 of the output (never the output), 64 lowercase hex digits.
    pub output_sha256: Option<String>,
    /// Small structured extra data: a JSON object of at most [`MAX_DETAIL_BYTES`] serialized.
    /// Never put prompt text, output text or secrets here.
    pub detail: Option<serde_json::Value>,
}

macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident: $ty:ty),* $(,)?) => {
        $(
            $(#[$doc])*
            #[must_use]
            pub fn $name(mut self, value: impl Into<$ty>) -> Self {
                self.$name = Some(value.into());
                self
            }
        )*
    };
}

impl Event {
    /// An event with only its name set.
    pub fn new(event: impl Into<String>) -> Event {
        Event {
            event: event.into(),
            ..Event::default()
        }
    }

    setters! {
        /// Sets `request_id`.
        request_id: String,
        /// Sets `user` (a pseudonym).
        user: String,
        /// Sets `role`.
        role: String,
        /// Sets `use_case`.
        use_case: String,
        /// Sets `model`.
        model: String,
        /// Sets `model_sha256`.
        model_sha256: String,
        /// Sets `prompt_tokens`.
        prompt_tokens: u32,
        /// Sets `completion_tokens`.
        completion_tokens: u32,
        /// Sets `status`.
        status: u16,
        /// Sets `prompt_sha256`.
        prompt_sha256: String,
        /// Sets `output_sha256`.
        output_sha256: String,
        /// Sets `detail` (a JSON object).
        detail: serde_json::Value,
    }

    /// Checks names, lengths, hash formats and the `detail` size cap.
    pub fn validate(&self) -> Result<(), AuditError> {
        validate_fields(&FieldsRef::from_event(self))
    }
}

/// One stored line. Field order is the serialization order; absent options are omitted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// 1, 2, 3… continuing across segments.
    pub seq: u64,
    /// RFC 3339 UTC with milliseconds.
    pub ts: String,
    /// Hex SHA-256 of the previous line's bytes (without the newline).
    pub prev: String,
    /// As in [`Event`].
    pub event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// As in [`Event`].
    pub request_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// As in [`Event`].
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// As in [`Event`].
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// As in [`Event`].
    pub use_case: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// As in [`Event`].
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// As in [`Event`].
    pub model_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// As in [`Event`].
    pub prompt_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// As in [`Event`].
    pub completion_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// As in [`Event`].
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// As in [`Event`].
    pub prompt_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// As in [`Event`].
    pub output_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// As in [`Event`].
    pub detail: Option<serde_json::Value>,
}

impl Entry {
    pub(crate) fn from_event(seq: u64, ts: String, prev: String, e: Event) -> Entry {
        Entry {
            seq,
            ts,
            prev,
            event: e.event,
            request_id: e.request_id,
            user: e.user,
            role: e.role,
            use_case: e.use_case,
            model: e.model,
            model_sha256: e.model_sha256,
            prompt_tokens: e.prompt_tokens,
            completion_tokens: e.completion_tokens,
            status: e.status,
            prompt_sha256: e.prompt_sha256,
            output_sha256: e.output_sha256,
            detail: e.detail,
        }
    }

    /// Field checks of a stored entry (as for [`Event::validate`], plus `ts` and `prev`).
    pub(crate) fn validate(&self) -> Result<(), AuditError> {
        if crate::time::parse_stored_ms(&self.ts).is_none() {
            return Err(AuditError::InvalidEvent(format!(
                "ts `{}` is not YYYY-MM-DDTHH:MM:SS.mmmZ",
                self.ts
            )));
        }
        if !is_sha256_hex(&self.prev) {
            return Err(AuditError::InvalidEvent(
                "prev is not 64 lowercase hex digits".into(),
            ));
        }
        validate_fields(&FieldsRef::from_entry(self))
    }

    /// The line as stored, without the newline.
    pub(crate) fn to_line(&self) -> Result<Vec<u8>, AuditError> {
        serde_json::to_vec(self).map_err(|e| AuditError::InvalidEvent(e.to_string()))
    }
}

/// Borrowed view of the caller-supplied fields, shared by [`Event`] and [`Entry`] checks.
struct FieldsRef<'a> {
    event: &'a str,
    texts: [(&'static str, &'a Option<String>); 5],
    hashes: [(&'static str, &'a Option<String>); 3],
    detail: &'a Option<serde_json::Value>,
}

/// The same borrowed view of an [`Event`] or an [`Entry`] (they share these fields).
macro_rules! fields_ref {
    ($e:expr) => {
        FieldsRef {
            event: &$e.event,
            texts: [
                ("request_id", &$e.request_id),
                ("user", &$e.user),
                ("role", &$e.role),
                ("use_case", &$e.use_case),
                ("model", &$e.model),
            ],
            hashes: [
                ("model_sha256", &$e.model_sha256),
                ("prompt_sha256", &$e.prompt_sha256),
                ("output_sha256", &$e.output_sha256),
            ],
            detail: &$e.detail,
        }
    };
}

impl<'a> FieldsRef<'a> {
    fn from_event(e: &'a Event) -> Self {
        fields_ref!(e)
    }

    fn from_entry(e: &'a Entry) -> Self {
        fields_ref!(e)
    }
}

fn validate_fields(f: &FieldsRef<'_>) -> Result<(), AuditError> {
    if !is_event_name(f.event) {
        return Err(AuditError::InvalidEvent(format!(
            "event name `{}` must match [a-z0-9_.]{{1,64}}",
            f.event.escape_default()
        )));
    }
    for (name, value) in f.texts {
        if let Some(v) = value {
            if v.is_empty() || v.len() > MAX_FIELD_BYTES || v.chars().any(char::is_control) {
                return Err(AuditError::InvalidEvent(format!(
                    "{name} must be 1 to {MAX_FIELD_BYTES} bytes without control characters"
                )));
            }
        }
    }
    for (name, value) in f.hashes {
        if let Some(v) = value {
            if !is_sha256_hex(v) {
                return Err(AuditError::InvalidEvent(format!(
                    "{name} must be 64 lowercase hex digits"
                )));
            }
        }
    }
    if let Some(detail) = f.detail {
        if !detail.is_object() {
            return Err(AuditError::InvalidEvent(
                "detail must be a JSON object".into(),
            ));
        }
        let size = serde_json::to_vec(detail)
            .map_err(|e| AuditError::InvalidEvent(e.to_string()))?
            .len();
        if size > MAX_DETAIL_BYTES {
            return Err(AuditError::DetailTooLarge { size });
        }
    }
    Ok(())
}

/// `[a-z0-9_.]{1,64}`.
pub fn is_event_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'.')
}

pub(crate) fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

/// Hex SHA-256 of a line's bytes (without the newline): the next entry's `prev`.
pub fn line_hash(line: &[u8]) -> String {
    hex::encode(Sha256::digest(line))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn event_names() {
        assert!(is_event_name("request.received"));
        assert!(is_event_name("update.model_installed.v2"));
        assert!(!is_event_name(""));
        assert!(!is_event_name("Request"));
        assert!(!is_event_name("a b"));
        assert!(!is_event_name(&"a".repeat(65)));
        assert!(Event::new("x").validate().is_ok());
        assert!(Event::new("request-received").validate().is_err());
    }

    #[test]
    fn detail_cap() {
        let ok = Event::new("admin.x").detail(json!({ "s": "a".repeat(MAX_DETAIL_BYTES - 8) }));
        assert_eq!(
            serde_json::to_vec(&ok.detail).unwrap().len(),
            MAX_DETAIL_BYTES
        );
        ok.validate().unwrap();
        let big = Event::new("admin.x").detail(json!({ "s": "a".repeat(MAX_DETAIL_BYTES) }));
        assert!(matches!(
            big.validate(),
            Err(AuditError::DetailTooLarge { size }) if size == MAX_DETAIL_BYTES + 8
        ));
        assert!(Event::new("admin.x")
            .detail(json!("text"))
            .validate()
            .is_err());
    }

    #[test]
    fn field_checks() {
        assert!(Event::new("a").model_sha256("ab").validate().is_err());
        assert!(Event::new("a")
            .prompt_sha256("A".repeat(64))
            .validate()
            .is_err());
        assert!(Event::new("a")
            .prompt_sha256("a".repeat(64))
            .validate()
            .is_ok());
        assert!(Event::new("a").role("x".repeat(129)).validate().is_err());
        assert!(Event::new("a").use_case("two\nlines").validate().is_err());
    }

    #[test]
    fn line_format_is_fixed() {
        let e = Entry::from_event(
            7,
            "2026-11-29T11:47:02.123Z".into(),
            GENESIS_HASH.into(),
            Event::new("request.completed")
                .user("u")
                .prompt_tokens(3u32)
                .status(200u16),
        );
        assert_eq!(
            String::from_utf8(e.to_line().unwrap()).unwrap(),
            format!(
                r#"{{"seq":7,"ts":"2026-11-29T11:47:02.123Z","prev":"{GENESIS_HASH}","event":"request.completed","user":"u","prompt_tokens":3,"status":200}}"#
            )
        );
        assert!(serde_json::from_str::<Entry>(
            r#"{"seq":1,"ts":"x","prev":"y","event":"e","prompt":"no"}"#
        )
        .is_err());
    }
}
