//! Versioned schema migrations. A released migration is never edited: changes append a new
//! one. Each is applied in its own transaction together with the version bump.

use crate::{Result, StoreError};
use rusqlite::Connection;

/// Migration `i` brings the schema from version `i` to `i + 1`.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: accounts, keys, sessions, usage.
    "CREATE TABLE users (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        role TEXT NOT NULL CHECK (role IN ('agent', 'admin', 'dpo', 'integrator')),
        password_hash TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        disabled INTEGER NOT NULL DEFAULT 0
     );
     CREATE TABLE api_keys (
        id INTEGER PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        prefix TEXT NOT NULL,
        key_hash TEXT NOT NULL UNIQUE,
        model_scope TEXT,
        created_at INTEGER NOT NULL,
        expires_at INTEGER,
        last_used_at INTEGER,
        revoked_at INTEGER
     );
     CREATE TABLE sessions (
        token_hash TEXT PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        csrf_hash TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        last_seen_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
     );
     CREATE TABLE usage (
        id INTEGER PRIMARY KEY,
        ts INTEGER NOT NULL,
        user_id INTEGER REFERENCES users(id) ON DELETE SET NULL,
        key_id INTEGER REFERENCES api_keys(id) ON DELETE SET NULL,
        model TEXT NOT NULL,
        prompt_tokens INTEGER NOT NULL,
        completion_tokens INTEGER NOT NULL,
        duration_ms INTEGER NOT NULL,
        status INTEGER NOT NULL
     );",
    // 2: per-user quota overrides; indexes for quota and report queries.
    "CREATE TABLE quotas (
        user_id INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
        requests_per_minute INTEGER,
        tokens_per_day INTEGER
     );
     CREATE INDEX usage_by_time ON usage (ts);
     CREATE INDEX usage_by_user ON usage (user_id, ts);",
    // 3: the user's service (mairie department) for usage reports per service.
    "ALTER TABLE users ADD COLUMN service TEXT;",
    // 4: conversation history (owner-only, expired by age), the usage charter and who
    // accepted which version (the AI Act art. 4 attestation register).
    "CREATE TABLE conversations (
        id TEXT PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        title TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
     );
     CREATE INDEX conversations_by_user ON conversations (user_id, updated_at);
     CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
        ts INTEGER NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
        content TEXT NOT NULL,
        model TEXT
     );
     CREATE INDEX messages_by_conversation ON messages (conversation_id, id);
     CREATE INDEX messages_by_time ON messages (ts);
     CREATE TABLE charters (
        version INTEGER PRIMARY KEY,
        text TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        created_by TEXT NOT NULL
     );
     CREATE TABLE charter_acceptances (
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        version INTEGER NOT NULL,
        accepted_at INTEGER NOT NULL,
        channel TEXT NOT NULL,
        PRIMARY KEY (user_id, version)
     );",
    // 5: user ids are never reused (the audit pseudonym is keyed on the id: a new account
    // must not inherit a deleted person's). `users.id` has no AUTOINCREMENT, so ids come
    // from this sequence (AUTOINCREMENT: SQLite never hands out a value again), seeded with
    // the ids in use.
    "CREATE TABLE user_ids (id INTEGER PRIMARY KEY AUTOINCREMENT);
     INSERT INTO user_ids (id) SELECT id FROM users;",
    // 6: credentials only the owner holds. A key is `own` when its owner made it with such a
    // credential (else an administrator made it for them: it cannot reach their history); a
    // password is `own_password` once the owner chose it (an administrator set every earlier
    // one). Every key and password from before is taken as set by an administrator.
    "ALTER TABLE api_keys ADD COLUMN own INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE users ADD COLUMN own_password INTEGER NOT NULL DEFAULT 0;",
];

pub(crate) fn version(conn: &Connection) -> Result<u32> {
    Ok(conn.query_row("SELECT version FROM schema_version", [], |r| r.get(0))?)
}

/// Applies the migrations up to `target` (all of them in production).
pub(crate) fn apply_up_to(conn: &mut Connection, path: &str, target: usize) -> Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
         INSERT INTO schema_version (version)
           SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM schema_version);",
    )?;
    let found = version(conn)?;
    let known = MIGRATIONS.len() as u32;
    if found > known {
        return Err(StoreError::TooNew {
            path: path.to_string(),
            found,
            known,
        });
    }
    for (i, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .take(target)
        .skip(found as usize)
    {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.execute("UPDATE schema_version SET version = ?1", [i as u32 + 1])?;
        tx.commit()?;
    }
    Ok(())
}

pub(crate) fn apply(conn: &mut Connection, path: &str) -> Result<()> {
    apply_up_to(conn, path, MIGRATIONS.len())
}
