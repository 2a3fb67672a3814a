//! The box's persistent store: one SQLite file (WAL mode) under the state directory.
//!
//! Owns: the schema and its versioned migrations (applied in a transaction at open, never
//! edited once released: a new version appends a migration), users and their roles, Argon2id
//! password hashes and the password policy, login throttling state, API keys (stored only as
//! SHA-256 hashes, shown once), web sessions (stored as hashes), per-user quota overrides and
//! the usage log (metadata only), the conversation history an agent chose to keep (owner-only,
//! expired by age, erased for good) and the usage charter with its acceptance register.
//!
//! Must never: store a password, an API key or a session token in clear, store prompt or
//! output text anywhere but in the owner's conversation history (the usage log holds counts,
//! never content), give a read path to a conversation without its owner's id, leave erased
//! text recoverable from the files (`secure_delete`, log truncated after erasure), or rank
//! agents by productivity (reports aggregate by model and day).

mod charter;
mod history;
mod migrations;

pub use charter::{Acceptance, Charter, CHANNELS, DEFAULT_CHARTER, MAX_CHARTER_CHARS};
pub use history::{
    new_conversation_id, title_from, valid_conversation_id, Conversation, Message, NewMessage,
    MAX_TITLE_CHARS,
};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use civia_base::hash::sha256_hex;
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store database error: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("store file {path}: schema version {found} is newer than this software ({known}); refusing to downgrade")]
    TooNew {
        path: String,
        found: u32,
        known: u32,
    },
    #[error("store file {0}: {1}")]
    File(String, std::io::Error),
    #[error("user `{0}` already exists")]
    UserExists(String),
    #[error("no user `{0}`")]
    NoUser(String),
    #[error("invalid user name `{0}`: 1 to 64 letters, digits, '.', '-' or '_'")]
    BadName(String),
    #[error("unknown role `{0}`: agent, admin, dpo or integrator")]
    BadRole(String),
    #[error("invalid service `{0}`: 1 to 64 printable characters")]
    BadService(String),
    #[error("invalid key name: 1 to 64 printable characters")]
    BadKeyName,
    #[error("password refused: {0}")]
    WeakPassword(&'static str),
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("the system's random generator failed: {0}")]
    Random(String),
    #[error("no conversation `{0}`")]
    NoConversation(String),
    #[error("the database log could not be truncated after an erasure (a reader held it for 5 s); retry")]
    ScrubBusy,
    #[error("invalid charter: 1 to 20000 characters of text")]
    BadCharter,
    #[error("charter version {given} is not the current one ({current}); read it again")]
    StaleCharter { given: u32, current: u32 },
    #[error("unknown acceptance channel `{0}`")]
    BadChannel(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

pub use civia_config::{Role, UnknownRole};

impl From<UnknownRole> for StoreError {
    fn from(e: UnknownRole) -> Self {
        StoreError::BadRole(e.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub role: Role,
    pub created_at: i64,
    pub disabled: bool,
    /// The town hall department the user works in (for usage reports per service).
    pub service: Option<String>,
    /// The user chose their password themselves (an administrator set none since): a web
    /// session opened with it reaches their history.
    pub own_password: bool,
}

/// A key as listed (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyInfo {
    pub id: i64,
    pub user: String,
    pub name: String,
    /// First characters of the key, to recognise it in lists.
    pub prefix: String,
    pub model_scope: Option<String>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub revoked: bool,
}

/// Outcome of presenting an API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyCheck {
    Valid {
        key_id: i64,
        user: User,
        model_scope: Option<String>,
        /// Made by its owner with a credential only they hold (not by an administrator for
        /// them): it reaches the owner's history.
        own: bool,
    },
    Unknown,
    Revoked,
    Expired,
    UserDisabled,
}

/// One request's metadata for the usage log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRecord {
    pub user_id: Option<i64>,
    pub key_id: Option<i64>,
    pub model: String,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub duration_ms: u64,
    /// HTTP status of the answer.
    pub status: u16,
}

/// Daily totals per model (no per-agent ranking).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageDay {
    /// Days since the Unix epoch (UTC).
    pub day: i64,
    pub model: String,
    pub requests: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

pub use civia_base::time::now_unix as now;

fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut b = [0u8; N];
    getrandom::getrandom(&mut b).map_err(|e| StoreError::Random(e.to_string()))?;
    Ok(b)
}

/// Minimum policy: 12 to 256 characters, not a single repeated character.
pub fn check_password_policy(password: &str) -> Result<()> {
    let n = password.chars().count();
    if n < 12 {
        return Err(StoreError::WeakPassword(
            "at least 12 characters are required",
        ));
    }
    if n > 256 {
        return Err(StoreError::WeakPassword("at most 256 characters"));
    }
    let mut chars = password.chars();
    let first = chars.next();
    if chars.all(|c| Some(c) == first) {
        return Err(StoreError::WeakPassword(
            "a single repeated character is not a password",
        ));
    }
    Ok(())
}

/// The CSRF token of a session: derived from the secret session token (so a page reload can
/// get it again from the session cookie) and useless without it.
pub fn csrf_token(session_token: &str) -> String {
    sha256_hex(format!("civia-csrf\0{session_token}"))
}

/// A service name must be a label.
pub fn check_service(service: &str) -> Result<()> {
    if valid_label(service) {
        Ok(())
    } else {
        Err(StoreError::BadService(service.to_string()))
    }
}

/// Free text labels (service, key name): 1 to 64 characters, no control characters.
fn valid_label(s: &str) -> bool {
    (1..=64).contains(&s.chars().count()) && !s.chars().any(char::is_control)
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

/// The store. One connection; the daemon serialises access (SQLite in WAL mode lets readers
/// of other processes, such as the CLI, proceed meanwhile).
pub struct Store {
    conn: Connection,
}

impl Store {
    /// Opens (creating if needed) the database and applies pending migrations.
    pub fn open(path: &Path) -> Result<Self> {
        // Created owner-only before SQLite opens it; SQLite gives its -wal and -shm files the
        // same mode.
        {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| StoreError::File(path.display().to_string(), e))?;
        }
        let mut conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        // Deleted rows (erased history) are overwritten, not just unlinked.
        conn.pragma_update(None, "secure_delete", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        migrations::apply(&mut conn, &path.display().to_string())?;
        let store = Self { conn };
        store.seed_charter()?;
        Ok(store)
    }

    pub fn schema_version(&self) -> Result<u32> {
        migrations::version(&self.conn)
    }

    /// Creates a user; `password` must meet the policy.
    pub fn add_user(&self, name: &str, role: Role, password: &str) -> Result<User> {
        if !valid_name(name) {
            return Err(StoreError::BadName(name.to_string()));
        }
        check_password_policy(password)?;
        let hash = hash_password(password)?;
        let created = now();
        // The id comes from the never-reused sequence (migration 5), in the same
        // transaction as the account.
        let insert = |tx: &rusqlite::Transaction| -> rusqlite::Result<()> {
            tx.execute("INSERT INTO user_ids DEFAULT VALUES", [])?;
            let id = tx.last_insert_rowid();
            tx.execute(
                "INSERT INTO users (id, name, role, password_hash, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, name, role.as_str(), hash, created],
            )?;
            Ok(())
        };
        let tx = self.conn.unchecked_transaction()?;
        let res = insert(&tx).and_then(|()| tx.commit());
        match res {
            Ok(()) => self.user(name),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Err(StoreError::UserExists(name.to_string()))
            }
            Err(e) => Err(e.into()),
        }
    }

    pub fn user(&self, name: &str) -> Result<User> {
        self.conn
            .query_row(
                "SELECT id, name, role, created_at, disabled, service, own_password FROM users WHERE name = ?1",
                [name],
                row_user,
            )
            .optional()?
            .ok_or_else(|| StoreError::NoUser(name.to_string()))
    }

    fn user_by_id(&self, id: i64) -> Result<User> {
        Ok(self.conn.query_row(
            "SELECT id, name, role, created_at, disabled, service, own_password FROM users WHERE id = ?1",
            [id],
            row_user,
        )?)
    }

    /// Runs an UPDATE of one user's row; no such user is an error.
    fn update_user(&self, name: &str, sql: &str, params: impl rusqlite::Params) -> Result<()> {
        if self.conn.execute(sql, params)? == 0 {
            return Err(StoreError::NoUser(name.to_string()));
        }
        Ok(())
    }

    pub fn users(&self) -> Result<Vec<User>> {
        let mut st = self.conn.prepare(
            "SELECT id, name, role, created_at, disabled, service, own_password FROM users ORDER BY name",
        )?;
        let rows = st.query_map([], row_user)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The ids of the users in the same service as `user_id` (that user included), as the
    /// service is now; empty when the user has no service. Disabled users are left out.
    pub fn service_peers(&self, user_id: i64) -> Result<Vec<i64>> {
        let mut st = self.conn.prepare(
            "SELECT u.id FROM users u JOIN users me ON me.id = ?1
             WHERE me.service IS NOT NULL AND u.service = me.service AND u.disabled = 0
             ORDER BY u.id",
        )?;
        let rows = st.query_map([user_id], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Number of users (0: a fresh box, waiting for its pairing).
    pub fn user_count(&self) -> Result<u64> {
        let n: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))?;
        Ok(n as u64)
    }

    /// Active admins (the last one cannot be demoted, disabled or deleted by the API).
    pub fn active_admins(&self) -> Result<u64> {
        let n: i64 = self.conn.query_row(
            "SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled = 0",
            [],
            |r| r.get(0),
        )?;
        Ok(n as u64)
    }

    pub fn set_role(&self, name: &str, role: Role) -> Result<()> {
        self.update_user(
            name,
            "UPDATE users SET role = ?1 WHERE name = ?2",
            params![role.as_str(), name],
        )
    }

    pub fn set_service(&self, name: &str, service: Option<&str>) -> Result<()> {
        if let Some(s) = service {
            check_service(s)?;
        }
        self.update_user(
            name,
            "UPDATE users SET service = ?1 WHERE name = ?2",
            params![service, name],
        )
    }

    /// Deletes a user with their keys, sessions and quota; their usage rows stay, anonymous.
    pub fn delete_user(&self, name: &str) -> Result<()> {
        self.update_user(name, "DELETE FROM users WHERE name = ?1", [name])
    }

    pub fn set_disabled(&self, name: &str, disabled: bool) -> Result<()> {
        self.update_user(
            name,
            "UPDATE users SET disabled = ?1 WHERE name = ?2",
            params![disabled, name],
        )
    }

    /// Checks a password. Unknown users cost the same hashing time as known ones.
    pub fn verify_password(&self, name: &str, password: &str) -> Result<Option<User>> {
        let row: Option<String> = self
            .conn
            .query_row(
                "SELECT password_hash FROM users WHERE name = ?1 AND disabled = 0",
                [name],
                |r| r.get(0),
            )
            .optional()?;
        let hash = row.unwrap_or_else(|| DUMMY_HASH.to_string());
        let ok = PasswordHash::new(&hash)
            .map(|h| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
            .unwrap_or(false);
        if ok && hash != DUMMY_HASH {
            self.user(name).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Sets a password for the user (an administrator's act: the password is not the user's
    /// own, see [`Store::set_own_password`]).
    pub fn set_password(&self, name: &str, password: &str) -> Result<()> {
        check_password_policy(password)?;
        let hash = hash_password(password)?;
        self.update_user(
            name,
            "UPDATE users SET password_hash = ?1, own_password = 0 WHERE name = ?2",
            params![hash, name],
        )
    }

    /// The user replaces their password with one of their own choosing (the caller checked
    /// the current one).
    pub fn set_own_password(&self, name: &str, password: &str) -> Result<()> {
        check_password_policy(password)?;
        let hash = hash_password(password)?;
        self.update_user(
            name,
            "UPDATE users SET password_hash = ?1, own_password = 1 WHERE name = ?2",
            params![hash, name],
        )
    }

    /// Ends every session of a user and revokes every key; returns how many keys.
    pub fn revoke_credentials(&self, user_id: i64) -> Result<usize> {
        self.conn
            .execute("DELETE FROM sessions WHERE user_id = ?1", [user_id])?;
        Ok(self.conn.execute(
            "UPDATE api_keys SET revoked_at = ?1 WHERE user_id = ?2 AND revoked_at IS NULL",
            params![now(), user_id],
        )?)
    }

    /// Creates an API key for `user`; the key is returned once and only its hash is kept.
    pub fn create_key(
        &self,
        user: &str,
        name: &str,
        model_scope: Option<&str>,
        expires_at: Option<i64>,
    ) -> Result<(String, ApiKeyInfo)> {
        self.new_key(user, name, model_scope, expires_at, false)
    }

    /// Creates a key for `user` made with a credential only they hold: it reaches their
    /// history (see [`KeyCheck::Valid::own`]).
    pub fn create_own_key(
        &self,
        user: &str,
        name: &str,
        model_scope: Option<&str>,
        expires_at: Option<i64>,
    ) -> Result<(String, ApiKeyInfo)> {
        self.new_key(user, name, model_scope, expires_at, true)
    }

    fn new_key(
        &self,
        user: &str,
        name: &str,
        model_scope: Option<&str>,
        expires_at: Option<i64>,
        own: bool,
    ) -> Result<(String, ApiKeyInfo)> {
        let key = format!("civia-{}", hex::encode(random_bytes::<32>()?));
        let info = self.insert_key(user, name, &key, model_scope, expires_at, own)?;
        Ok((key, info))
    }

    /// Registers a key chosen elsewhere (the trial key from `CIVIA_DEV_API_KEY`); keys of the
    /// same user and name that differ are revoked, so changing the variable retires the old
    /// key. Returns the key's id.
    pub fn import_key(&self, user: &str, name: &str, key: &str) -> Result<i64> {
        let owner = self.user(user)?;
        let hash = sha256_hex(key);
        self.conn.execute(
            "UPDATE api_keys SET revoked_at = ?1
             WHERE user_id = ?2 AND name = ?3 AND key_hash != ?4 AND revoked_at IS NULL",
            params![now(), owner.id, name, hash],
        )?;
        let existing: Option<(i64, bool)> = self
            .conn
            .query_row(
                "SELECT id, revoked_at IS NOT NULL FROM api_keys WHERE key_hash = ?1",
                [&hash],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        match existing {
            Some((id, _)) => {
                self.conn.execute(
                    "UPDATE api_keys SET revoked_at = NULL, user_id = ?1 WHERE id = ?2",
                    params![owner.id, id],
                )?;
                Ok(id)
            }
            // The trial key is the operator's own (they chose it, in the environment).
            None => Ok(self.insert_key(user, name, key, None, None, true)?.id),
        }
    }

    fn insert_key(
        &self,
        user: &str,
        name: &str,
        key: &str,
        model_scope: Option<&str>,
        expires_at: Option<i64>,
        own: bool,
    ) -> Result<ApiKeyInfo> {
        if !valid_label(name) {
            return Err(StoreError::BadKeyName);
        }
        let owner = self.user(user)?;
        let prefix: String = key.chars().take(12).collect();
        self.conn.execute(
            "INSERT INTO api_keys (user_id, name, prefix, key_hash, model_scope, created_at, expires_at, own)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![owner.id, name, prefix, sha256_hex(key), model_scope, now(), expires_at, own],
        )?;
        let id = self.conn.last_insert_rowid();
        self.keys(Some(user))?
            .into_iter()
            .find(|k| k.id == id)
            .ok_or_else(|| StoreError::NoUser(user.to_string()))
    }

    /// Lists keys (of one user, or all).
    pub fn keys(&self, user: Option<&str>) -> Result<Vec<ApiKeyInfo>> {
        let mut st = self.conn.prepare(
            "SELECT k.id, u.name, k.name, k.prefix, k.model_scope, k.created_at, k.expires_at,
                    k.last_used_at, k.revoked_at IS NOT NULL
             FROM api_keys k JOIN users u ON u.id = k.user_id
             WHERE ?1 IS NULL OR u.name = ?1 ORDER BY k.id",
        )?;
        let rows = st.query_map([user], |r| {
            Ok(ApiKeyInfo {
                id: r.get(0)?,
                user: r.get(1)?,
                name: r.get(2)?,
                prefix: r.get(3)?,
                model_scope: r.get(4)?,
                created_at: r.get(5)?,
                expires_at: r.get(6)?,
                last_used_at: r.get(7)?,
                revoked: r.get(8)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn revoke_key(&self, key_id: i64) -> Result<bool> {
        Ok(self.conn.execute(
            "UPDATE api_keys SET revoked_at = ?1 WHERE id = ?2 AND revoked_at IS NULL",
            params![now(), key_id],
        )? == 1)
    }

    /// Checks a presented key and records its use.
    pub fn check_key(&self, key: &str) -> Result<KeyCheck> {
        let row: Option<KeyRow> = self
            .conn
            .query_row(
                "SELECT id, user_id, model_scope, expires_at, revoked_at IS NOT NULL, own
                 FROM api_keys WHERE key_hash = ?1",
                [sha256_hex(key)],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                    ))
                },
            )
            .optional()?;
        let Some((key_id, user_id, model_scope, expires_at, revoked, own)) = row else {
            return Ok(KeyCheck::Unknown);
        };
        if revoked {
            return Ok(KeyCheck::Revoked);
        }
        let t = now();
        if expires_at.is_some_and(|e| e <= t) {
            return Ok(KeyCheck::Expired);
        }
        let user = self.user_by_id(user_id)?;
        if user.disabled {
            return Ok(KeyCheck::UserDisabled);
        }
        self.conn.execute(
            "UPDATE api_keys SET last_used_at = ?1 WHERE id = ?2",
            params![t, key_id],
        )?;
        Ok(KeyCheck::Valid {
            key_id,
            user,
            model_scope,
            own,
        })
    }

    /// Opens a web session; returns the session token and its CSRF token (stored as hashes;
    /// the CSRF token derives from the session token, see [`csrf_token`]). `absolute_secs` bounds its life whatever the activity.
    pub fn create_session(&self, user_id: i64, absolute_secs: i64) -> Result<(String, String)> {
        let token = hex::encode(random_bytes::<32>()?);
        let csrf = csrf_token(&token);
        let t = now();
        self.conn.execute(
            "INSERT INTO sessions (token_hash, user_id, csrf_hash, created_at, last_seen_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?4, ?5)",
            params![sha256_hex(&token), user_id, sha256_hex(&csrf), t, t + absolute_secs],
        )?;
        Ok((token, csrf))
    }

    /// The session's user when the token is valid, not idle longer than `idle_secs` and not
    /// past its absolute expiry; refreshes its idle clock. `csrf`, when given, must match.
    pub fn check_session(
        &self,
        token: &str,
        idle_secs: i64,
        csrf: Option<&str>,
    ) -> Result<Option<User>> {
        let t = now();
        let row: Option<(i64, String, i64, i64)> = self
            .conn
            .query_row(
                "SELECT user_id, csrf_hash, last_seen_at, expires_at FROM sessions WHERE token_hash = ?1",
                [sha256_hex(token)],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?;
        let Some((user_id, csrf_hash, last_seen, expires)) = row else {
            return Ok(None);
        };
        if t >= expires || t - last_seen > idle_secs {
            self.end_session(token)?;
            return Ok(None);
        }
        if csrf.is_some_and(|c| sha256_hex(c) != csrf_hash) {
            return Ok(None);
        }
        let user = self.user_by_id(user_id)?;
        if user.disabled {
            return Ok(None);
        }
        self.conn.execute(
            "UPDATE sessions SET last_seen_at = ?1 WHERE token_hash = ?2",
            params![t, sha256_hex(token)],
        )?;
        Ok(Some(user))
    }

    pub fn end_session(&self, token: &str) -> Result<()> {
        self.conn.execute(
            "DELETE FROM sessions WHERE token_hash = ?1",
            [sha256_hex(token)],
        )?;
        Ok(())
    }

    /// Per-user overrides of the role's quotas: requests per minute, tokens per day.
    pub fn set_quota(
        &self,
        user: &str,
        rpm: Option<u32>,
        tokens_per_day: Option<u64>,
    ) -> Result<()> {
        let u = self.user(user)?;
        self.conn.execute(
            "INSERT INTO quotas (user_id, requests_per_minute, tokens_per_day) VALUES (?1, ?2, ?3)
             ON CONFLICT(user_id) DO UPDATE SET requests_per_minute = ?2, tokens_per_day = ?3",
            params![u.id, rpm, tokens_per_day.map(|t| t as i64)],
        )?;
        Ok(())
    }

    pub fn quota(&self, user_id: i64) -> Result<(Option<u32>, Option<u64>)> {
        Ok(self
            .conn
            .query_row(
                "SELECT requests_per_minute, tokens_per_day FROM quotas WHERE user_id = ?1",
                [user_id],
                |r| {
                    Ok((
                        r.get::<_, Option<u32>>(0)?,
                        r.get::<_, Option<i64>>(1)?.map(|t| t as u64),
                    ))
                },
            )
            .optional()?
            .unwrap_or((None, None)))
    }

    pub fn record_usage(&self, u: &UsageRecord) -> Result<()> {
        self.conn.execute(
            "INSERT INTO usage (ts, user_id, key_id, model, prompt_tokens, completion_tokens, duration_ms, status)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                now(),
                u.user_id,
                u.key_id,
                u.model,
                u.prompt_tokens,
                u.completion_tokens,
                u.duration_ms as i64,
                u.status
            ],
        )?;
        Ok(())
    }

    /// Tokens a user consumed since `since` (for the daily quota).
    pub fn tokens_since(&self, user_id: i64, since: i64) -> Result<u64> {
        let n: i64 = self.conn.query_row(
            "SELECT COALESCE(SUM(prompt_tokens + completion_tokens), 0) FROM usage
             WHERE user_id = ?1 AND ts >= ?2",
            params![user_id, since],
            |r| r.get(0),
        )?;
        Ok(n as u64)
    }

    /// Totals per UTC day and model between two Unix times.
    pub fn usage_by_day(&self, from: i64, to: i64) -> Result<Vec<UsageDay>> {
        self.usage_report(
            "SELECT ts / 86400, model, COUNT(*), SUM(prompt_tokens), SUM(completion_tokens)
             FROM usage WHERE ts >= ?1 AND ts < ?2 GROUP BY 1, 2 ORDER BY 1, 2",
            from,
            to,
        )
    }

    /// Totals per UTC day and service (in `UsageDay::model`; users without a service count
    /// under "(sans service)"). Never per agent.
    pub fn usage_by_service(&self, from: i64, to: i64) -> Result<Vec<UsageDay>> {
        self.usage_report(
            "SELECT g.ts / 86400, COALESCE(u.service, '(sans service)'), COUNT(*),
                    SUM(g.prompt_tokens), SUM(g.completion_tokens)
             FROM usage g LEFT JOIN users u ON u.id = g.user_id
             WHERE g.ts >= ?1 AND g.ts < ?2 GROUP BY 1, 2 ORDER BY 1, 2",
            from,
            to,
        )
    }

    /// One user's own usage per UTC day and model (for their data export).
    pub fn usage_of(&self, user_id: i64) -> Result<Vec<UsageDay>> {
        let mut st = self.conn.prepare(
            "SELECT ts / 86400, model, COUNT(*), SUM(prompt_tokens), SUM(completion_tokens)
             FROM usage WHERE user_id = ?1 GROUP BY 1, 2 ORDER BY 1, 2",
        )?;
        let rows = st.query_map([user_id], row_usage_day)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn usage_report(&self, sql: &str, from: i64, to: i64) -> Result<Vec<UsageDay>> {
        let mut st = self.conn.prepare(sql)?;
        let rows = st.query_map(params![from, to], row_usage_day)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

fn row_usage_day(r: &rusqlite::Row<'_>) -> rusqlite::Result<UsageDay> {
    Ok(UsageDay {
        day: r.get(0)?,
        model: r.get(1)?,
        requests: r.get::<_, i64>(2)? as u64,
        prompt_tokens: r.get::<_, i64>(3)? as u64,
        completion_tokens: r.get::<_, i64>(4)? as u64,
    })
}

/// id, user id, model scope, expiry, revoked.
type KeyRow = (i64, i64, Option<String>, Option<i64>, bool, bool);

/// A valid Argon2id hash of a random password, checked for unknown users so that their
/// answer takes as long as a known user's.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$3ThwY5wl8c5K5yOO2C3uq5K3xcOvFtTc3J4aY8Lq9Yg";

fn hash_password(password: &str) -> Result<String> {
    let salt = SaltString::encode_b64(&random_bytes::<16>()?)
        .map_err(|e| StoreError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| StoreError::Hash(e.to_string()))
}

fn row_user(r: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    let role: String = r.get(2)?;
    let role = role.parse::<Role>().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, Box::new(e))
    })?;
    Ok(User {
        id: r.get(0)?,
        name: r.get(1)?,
        role,
        created_at: r.get(3)?,
        disabled: r.get(4)?,
        service: r.get(5)?,
        own_password: r.get(6)?,
    })
}

#[cfg(test)]
mod tests;
