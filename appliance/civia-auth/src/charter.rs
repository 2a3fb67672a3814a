//! The usage charter service (AI Act art. 4): reading, accepting and publishing it, and the
//! attestation register, also as CSV for a spreadsheet.

use crate::{Auth, AuthError, Principal, Result};
use civia_store::{Acceptance, Charter};

/// The attestation register: the current version, how many active users accepted it (of
/// how many), and every acceptance.
#[derive(Debug, Clone)]
pub struct Register {
    pub current: Charter,
    pub accepted_current: u64,
    pub active_users: u64,
    pub rows: Vec<Acceptance>,
}

/// A CSV field: quoted, quotes doubled, and a leading formula character neutralised (a
/// spreadsheet must not run a user name or service as a formula).
pub fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// The register as CSV (French headers, RFC 3339 dates).
pub fn register_csv(rows: &[Acceptance]) -> String {
    let mut out = String::from("utilisateur,role,service,version,acceptee_le,canal\n");
    for r in rows {
        out.push_str(&format!(
            "{},{},{},{},{},{}\n",
            csv_field(&r.user),
            r.role.as_str(),
            csv_field(r.service.as_deref().unwrap_or("")),
            r.version,
            civia_base::time::rfc3339(r.accepted_at),
            r.channel
        ));
    }
    out
}

/// Who accepts the charter and through which channel: a user, through the web UI (session)
/// or the API (key). The local admin socket is not a user and accepts nothing.
pub fn charter_signer(who: &Principal) -> Result<(i64, &'static str)> {
    match who {
        Principal::User { user, session, .. } => {
            Ok((user.id, if *session { "web" } else { "api" }))
        }
        Principal::LocalAdmin => Err(AuthError::LocalAdminCharter),
    }
}

impl Auth {
    /// The current charter and when `user` accepted it (None: not yet, or no user).
    pub async fn charter_for(&self, user: Option<i64>) -> Result<(Charter, Option<i64>)> {
        self.with_store(move |s| {
            let c = s.charter()?;
            let a = match user {
                Some(id) => s.accepted_at(id, c.version)?,
                None => None,
            };
            Ok((c, a))
        })
        .await
    }

    /// Records that user `uid` accepts charter `version` (the current one) through
    /// `channel`; returns when it was accepted.
    pub async fn accept_charter(
        &self,
        uid: i64,
        version: u32,
        channel: &'static str,
    ) -> Result<Option<i64>> {
        self.with_store(move |s| {
            s.accept_charter(uid, version, channel)?;
            s.accepted_at(uid, version)
        })
        .await
    }

    /// Publishes a new charter version written by `by`.
    pub async fn publish_charter(&self, text: String, by: String) -> Result<Charter> {
        self.with_store(move |s| s.set_charter(&text, &by)).await
    }

    pub async fn charter_register(&self) -> Result<Register> {
        self.with_store(|s| {
            let current = s.charter()?;
            let (accepted_current, active_users) = s.charter_coverage()?;
            let rows = s.charter_register(None)?;
            Ok(Register {
                current,
                accepted_current,
                active_users,
                rows,
            })
        })
        .await
    }
}
