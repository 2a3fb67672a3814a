//! The audit trail as the API writes it (`civia-audit` underneath): linked events per model
//! request (`request.received`, `request.admitted` or `request.refused`, `request.completed`
//! or `request.failed`), written and fsynced before the answer completes, with the user's
//! pseudonym, role, model id and weights hash, token counts, status and SHA-256 of the prompt
//! and of the output — never their text. Reading the audit log is itself an event.
//!
//! When the audit log cannot be written, model requests fail closed (500 `audit_unavailable`).

use crate::{ApiError, ApiState};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, Extensions, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use civia_audit::{AuditLog, Event, ExportFormat, Pseudonymizer, VerifyingKey};
use civia_auth::{Principal, Role};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use civia_audit::{AuditError, RetentionPolicy};

pub struct Audit {
    log: Arc<AuditLog>,
    pseudonyms: Pseudonymizer,
    dir: PathBuf,
    public: VerifyingKey,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Audit {
    /// Opens `<dir>` with the device key and the pseudonym secret found (or created, 0600)
    /// under `keys_dir`. On a box with a TPM both come from the sealed secret store instead.
    pub fn open(dir: &Path, keys_dir: &Path, policy: &RetentionPolicy) -> Result<Self, AuditError> {
        policy.validate()?;
        std::fs::create_dir_all(keys_dir).map_err(|source| AuditError::Io {
            path: keys_dir.to_path_buf(),
            source,
        })?;
        let key = civia_audit::DeviceKey::load_or_create(&keys_dir.join("device-ed25519.key"))?;
        let secret = civia_audit::secret_load_or_create(&keys_dir.join("audit-pseudonym.secret"))?;
        let public = key.verifying_key();
        let log = AuditLog::open(dir, key, policy.months)?;
        if let Some(torn) = &log.open_report().torn {
            log::warn!(
                "audit: a torn last line ({} bytes) of {} was cut off at open (crash before its fsync)",
                torn.bytes.len(),
                torn.segment
            );
        }
        Ok(Self {
            log: Arc::new(log),
            pseudonyms: Pseudonymizer::new(secret),
            dir: dir.to_path_buf(),
            public,
        })
    }

    /// Mirrors every entry to journald through `socket` when it exists (a box runs journald;
    /// a trial on a workstation may not).
    pub fn mirror_to_journal(&self, socket: &Path) {
        if socket.exists() {
            self.log.mirror_to(civia_audit::JournalMirror::new(socket));
            log::info!("audit: entries mirrored to journald ({})", socket.display());
        } else {
            log::info!(
                "audit: no journald socket at {}: entries are not mirrored",
                socket.display()
            );
        }
    }

    /// Whether entries reach journald too.
    pub fn mirrored(&self) -> bool {
        self.log.mirrored()
    }

    /// Verifies the whole trail: Some(true) when it verifies, Some(false) when it shows
    /// tampering, None when it cannot be read.
    pub async fn chain_verifies(&self) -> Option<bool> {
        let (dir, key) = (self.dir.clone(), self.public);
        match tokio::task::spawn_blocking(move || civia_audit::verify(&dir, &key, None)).await {
            Ok(Ok(_)) => Some(true),
            Ok(Err(e)) if e.tamper().is_some() => Some(false),
            _ => None,
        }
    }

    /// The pseudonym of a caller (the local admin socket is `local-admin`).
    pub fn who(&self, p: &Principal) -> String {
        match p.user() {
            Some(u) => self.pseudonyms.pseudonym(u.id),
            None => "local-admin".into(),
        }
    }

    /// A user's pseudonym in the audit trail.
    pub fn pseudonym_of(&self, user_id: i64) -> String {
        self.pseudonyms.pseudonym(user_id)
    }

    /// Appends and fsyncs an event (on a blocking thread); a failure is a 500.
    pub async fn append(&self, ev: Event) -> Result<(), ApiError> {
        let log = self.log.clone();
        let name = ev.event.clone();
        let res = tokio::task::spawn_blocking(move || log.append(ev))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()));
        match res {
            Ok(entry) => {
                log::debug!(target: "civia::audit", "audit {name} seq {}", entry.seq);
                Ok(())
            }
            Err(e) => {
                log::error!("audit: cannot write `{name}`: {e}");
                Err(ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    "audit_unavailable",
                    "The audit log cannot be written: the request is refused (details in the journal).",
                ))
            }
        }
    }

    /// Appends from a blocking context (the update agent's observer); failures are logged.
    pub fn append_blocking(&self, ev: Event) {
        let name = ev.event.clone();
        if let Err(e) = self.log.append(ev) {
            log::error!("audit: cannot write `{name}`: {e}");
        }
    }

    /// An update agent event as `update.<event>`, its fields in `detail` (capped).
    pub fn record_update(&self, event: &civia_update::AuditEvent) {
        let mut detail = match serde_json::to_value(event) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        };
        let name = detail
            .remove("event")
            .and_then(|v| v.as_str().map(|s| format!("update.{s}")))
            .unwrap_or_else(|| "update.event".into());
        if let Some(serde_json::Value::String(m)) = detail.get_mut("message") {
            m.truncate(m.char_indices().nth(1000).map_or(m.len(), |(i, _)| i));
        }
        self.append_blocking(Event::new(name).detail(serde_json::Value::Object(detail)));
    }

    /// An administration event by `who` (`admin.*`, `auth.*`), the target named by
    /// pseudonym only.
    pub async fn record_admin(
        &self,
        name: &str,
        who: Option<&Principal>,
        target_user: Option<i64>,
        detail: serde_json::Value,
    ) -> Result<(), ApiError> {
        let mut ev = Event::new(name);
        if let Some(p) = who {
            ev = ev.user(self.who(p)).role(p.role().as_str());
        }
        let mut detail = match detail {
            serde_json::Value::Object(m) => m,
            _ => serde_json::Map::new(),
        };
        if let Some(id) = target_user {
            detail.insert("target".into(), self.pseudonyms.pseudonym(id).into());
        }
        ev.detail = Some(serde_json::Value::Object(detail));
        self.append(ev).await
    }

    /// Drops segments past retention (once a day).
    pub async fn purge_daily(self: Arc<Self>) {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(86_400));
        loop {
            tick.tick().await;
            let log = self.log.clone();
            match tokio::task::spawn_blocking(move || log.purge()).await {
                Ok(Ok(r)) if !r.purged.is_empty() => log::info!("audit: purged {:?}", r.purged),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => log::error!("audit: purge failed: {e}"),
                Err(e) => log::error!("audit: purge task failed: {e}"),
            }
        }
    }
}

fn audit(st: &ApiState) -> Result<&Audit, ApiError> {
    st.audit
        .as_deref()
        .ok_or_else(|| ApiError::internal("the audit log is not open"))
}

/// `audit.read` before any reading of the log.
async fn record_read(st: &ApiState, ext: &Extensions, what: &str) -> Result<(), ApiError> {
    let a = audit(st)?;
    let who = ext
        .get::<Principal>()
        .ok_or_else(|| ApiError::internal("no principal"))?;
    a.append(
        Event::new("audit.read")
            .user(a.who(who))
            .role(who.role().as_str())
            .detail(json!({ "what": what })),
    )
    .await
}

fn may_read(ext: &Extensions) -> Result<(), ApiError> {
    crate::admin::require(ext, &[Role::Admin, Role::Dpo], "read the audit log")
}

pub(crate) async fn verify(
    State(st): State<Arc<ApiState>>,
    ext: Extensions,
) -> Result<Response, ApiError> {
    may_read(&ext)?;
    record_read(&st, &ext, "verify").await?;
    let a = audit(&st)?;
    let (dir, key) = (a.dir.clone(), a.public);
    let result = tokio::task::spawn_blocking(move || civia_audit::verify(&dir, &key, None))
        .await
        .map_err(|e| ApiError::internal(format!("verify task failed: {e}")))?;
    let body = match result {
        Ok(r) => json!({
            "ok": true, "segments": r.segments, "entries": r.entries, "first_seq": r.first_seq,
            "last_seq": r.last_seq, "checkpoint": r.checkpoint,
            "warnings": r.warnings.iter().map(|w| format!("{w:?}")).collect::<Vec<_>>(),
            "first_bad": null,
        }),
        Err(e) => match e.tamper() {
            Some(t) => json!({
                "ok": false, "message": e.to_string(),
                "first_bad": {"segment": t.segment, "line": t.line, "seq": t.seq,
                              "kind": format!("{:?}", t.kind).to_lowercase()},
            }),
            None => {
                return Err(ApiError::internal(format!(
                    "the audit log cannot be read: {e}"
                )))
            }
        },
    };
    Ok(Json(body).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExportQuery {
    from: String,
    to: String,
    format: Option<String>,
}

pub(crate) async fn export(
    State(st): State<Arc<ApiState>>,
    ext: Extensions,
    q: Result<Query<ExportQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    may_read(&ext)?;
    let Query(q) =
        q.map_err(|e| ApiError::bad_request(format!("Invalid query: {}", e.body_text()), None))?;
    let time = |s: &str, p: &str| {
        civia_audit::parse_rfc3339(s).map_err(|e| {
            ApiError::bad_request(
                format!("`{p}` must be an RFC 3339 UTC time: {e}"),
                Some(p.into()),
            )
        })
    };
    let (from, to) = (time(&q.from, "from")?, time(&q.to, "to")?);
    let (format, ctype) = match q.format.as_deref().unwrap_or("jsonl") {
        "jsonl" => (ExportFormat::Json, "application/jsonl"),
        "csv" => (ExportFormat::Csv, "text/csv; charset=utf-8"),
        _ => {
            return Err(ApiError::bad_request(
                "`format` must be `jsonl` or `csv`.",
                Some("format".into()),
            ))
        }
    };
    record_read(&st, &ext, "export").await?;
    let dir = audit(&st)?.dir.clone();
    let out = tokio::task::spawn_blocking(move || {
        let mut buf = Vec::new();
        civia_audit::export(&dir, from, to, format, &mut buf).map(|_| buf)
    })
    .await
    .map_err(|e| ApiError::internal(format!("export task failed: {e}")))?
    .map_err(|e| ApiError::internal(format!("export failed: {e}")))?;
    Ok(([(header::CONTENT_TYPE, ctype)], out).into_response())
}
