//! Conversation history: stored only when the agent asks for it, readable and erasable only
//! by its owner (every query here takes the owner's id: there is no read path by id alone),
//! expired by age. Deleted text is overwritten in the database file (`secure_delete`) and the
//! write-ahead log is truncated after each erasure, so erased words are found nowhere in the
//! state directory.

use crate::{now, random_bytes, Result, Store, StoreError};
use rusqlite::{params, OptionalExtension};
use std::time::Duration;

/// Longest conversation title kept (characters).
pub const MAX_TITLE_CHARS: usize = 80;

/// A conversation as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    pub id: String,
    pub title: String,
    pub created_at: i64,
    /// Time of the newest message.
    pub updated_at: i64,
    pub messages: u64,
}

/// One stored message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub ts: i64,
    /// `system`, `user` or `assistant`.
    pub role: String,
    pub content: String,
    /// The model that wrote an assistant message.
    pub model: Option<String>,
}

/// A message to append.
#[derive(Debug, Clone, Copy)]
pub struct NewMessage<'a> {
    pub role: &'a str,
    pub content: &'a str,
    pub model: Option<&'a str>,
}

/// A fresh conversation id: `conv-` and 128 random bits in hex.
pub fn new_conversation_id() -> Result<String> {
    Ok(format!("conv-{}", hex::encode(random_bytes::<16>()?)))
}

/// Whether `id` has the shape of a conversation id (anything else is unknown without a
/// database lookup).
pub fn valid_conversation_id(id: &str) -> bool {
    id.len() == 37
        && id.starts_with("conv-")
        && id[5..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A title from free text: the first line, control characters dropped, at most
/// [`MAX_TITLE_CHARS`] characters; "Conversation" when nothing is left.
pub fn title_from(text: &str) -> String {
    let line = text.trim().lines().next().unwrap_or("");
    let mut title: String = line
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_TITLE_CHARS)
        .collect();
    title = title.trim().to_string();
    if title.is_empty() {
        "Conversation".to_string()
    } else {
        title
    }
}

impl Store {
    /// Appends messages to the owner's conversation `id`, creating it (with `title`) if it
    /// does not exist. A conversation of another user is [`StoreError::NoConversation`], the
    /// same answer as one that does not exist.
    pub fn append_messages(
        &self,
        owner: i64,
        id: &str,
        title: &str,
        messages: &[NewMessage<'_>],
    ) -> Result<()> {
        if !valid_conversation_id(id) {
            return Err(StoreError::NoConversation(id.to_string()));
        }
        let ts = now();
        let tx = self.conn.unchecked_transaction()?;
        let found: Option<i64> = tx
            .query_row(
                "SELECT user_id FROM conversations WHERE id = ?1",
                [id],
                |r| r.get(0),
            )
            .optional()?;
        match found {
            Some(o) if o != owner => return Err(StoreError::NoConversation(id.to_string())),
            Some(_) => {
                tx.execute(
                    "UPDATE conversations SET updated_at = ?1 WHERE id = ?2",
                    params![ts, id],
                )?;
            }
            None => {
                tx.execute(
                    "INSERT INTO conversations (id, user_id, title, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?4)",
                    params![id, owner, title_from(title), ts],
                )?;
            }
        }
        for m in messages {
            tx.execute(
                "INSERT INTO messages (conversation_id, ts, role, content, model)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, ts, m.role, m.content, m.model],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Whether the owner has conversation `id` (to refuse an unknown id before generating).
    pub fn owns_conversation(&self, owner: i64, id: &str) -> Result<bool> {
        if !valid_conversation_id(id) {
            return Ok(false);
        }
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM conversations WHERE id = ?1 AND user_id = ?2",
                params![id, owner],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// The owner's conversations, newest first.
    pub fn conversations(&self, owner: i64) -> Result<Vec<Conversation>> {
        let mut st = self.conn.prepare(
            "SELECT c.id, c.title, c.created_at, c.updated_at,
                    (SELECT COUNT(*) FROM messages m WHERE m.conversation_id = c.id)
             FROM conversations c WHERE c.user_id = ?1
             ORDER BY c.updated_at DESC, c.id",
        )?;
        let rows = st.query_map([owner], row_conversation)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// One of the owner's conversations with its messages, oldest first.
    pub fn conversation(
        &self,
        owner: i64,
        id: &str,
    ) -> Result<Option<(Conversation, Vec<Message>)>> {
        if !valid_conversation_id(id) {
            return Ok(None);
        }
        let head = self
            .conn
            .query_row(
                "SELECT c.id, c.title, c.created_at, c.updated_at,
                        (SELECT COUNT(*) FROM messages m WHERE m.conversation_id = c.id)
                 FROM conversations c WHERE c.id = ?1 AND c.user_id = ?2",
                params![id, owner],
                row_conversation,
            )
            .optional()?;
        let Some(head) = head else {
            return Ok(None);
        };
        let mut st = self.conn.prepare(
            "SELECT ts, role, content, model FROM messages WHERE conversation_id = ?1
             ORDER BY id",
        )?;
        let rows = st.query_map([id], |r| {
            Ok(Message {
                ts: r.get(0)?,
                role: r.get(1)?,
                content: r.get(2)?,
                model: r.get(3)?,
            })
        })?;
        let messages = rows.collect::<rusqlite::Result<_>>()?;
        Ok(Some((head, messages)))
    }

    /// Erases one of the owner's conversations; false when there is none.
    pub fn delete_conversation(&self, owner: i64, id: &str) -> Result<bool> {
        if !valid_conversation_id(id) {
            return Ok(false);
        }
        let n = self.conn.execute(
            "DELETE FROM conversations WHERE id = ?1 AND user_id = ?2",
            params![id, owner],
        )?;
        if n > 0 {
            self.scrub()?;
        }
        Ok(n > 0)
    }

    /// Erases all of the owner's history; returns the number of conversations erased.
    pub fn delete_history(&self, owner: i64) -> Result<u64> {
        let n = self
            .conn
            .execute("DELETE FROM conversations WHERE user_id = ?1", [owner])?;
        self.scrub()?;
        Ok(n as u64)
    }

    /// Expiry: erases messages written before `before` and conversations left without a
    /// newer message. Returns (conversations, messages) erased.
    pub fn purge_history(&self, before: i64) -> Result<(u64, u64)> {
        let tx = self.conn.unchecked_transaction()?;
        let messages = tx.execute("DELETE FROM messages WHERE ts < ?1", [before])?;
        let conversations = tx.execute(
            "DELETE FROM conversations WHERE updated_at < ?1
               AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = conversations.id)",
            [before],
        )?;
        tx.commit()?;
        if messages + conversations > 0 {
            self.scrub()?;
        }
        Ok((conversations as u64, messages as u64))
    }

    /// Makes erased rows unrecoverable from the files: `secure_delete` already zeroed them in
    /// the pages written to the log; the checkpoint copies those pages into the database
    /// file and truncates the log, which still held the old copies. A reader (the CLI) can
    /// hold the log for a moment: retried for up to 5 s, then reported.
    pub(crate) fn scrub(&self) -> Result<()> {
        for _ in 0..100 {
            let busy: i64 = self
                .conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
            if busy == 0 {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(StoreError::ScrubBusy)
    }
}

fn row_conversation(r: &rusqlite::Row<'_>) -> rusqlite::Result<Conversation> {
    Ok(Conversation {
        id: r.get(0)?,
        title: r.get(1)?,
        created_at: r.get(2)?,
        updated_at: r.get(3)?,
        messages: r.get::<_, i64>(4)? as u64,
    })
}
