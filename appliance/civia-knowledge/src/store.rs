//! The knowledge database: one SQLite file (`knowledge.db`, WAL) on the data volume.
//!
//! Tables: `collections`, `documents` (one row per uploaded file, its status while indexed
//! in the background), `chunks` (text, page, heading, the passage's embedding as
//! little-endian `f32`s) and `chunks_fts`, a contentless FTS5 table holding only the French
//! index terms of each chunk (rowid = chunk id; `contentless_delete` and FTS5's
//! `secure-delete` so a deleted chunk leaves no term behind).
//!
//! Need-to-know is a SQL predicate ([`ACCESS`]) joined into every read: a collection is
//! visible to its owner, to the users of the owner's service when its visibility is
//! `service`, and to everyone when `public`. Lexical search applies it inside the FTS query;
//! vector search only loads the vectors of the collections the predicate returns. Nothing
//! is ranked first and filtered after.

use crate::analyze;
use crate::chunk::Piece;
use crate::{Collection, Document, DocumentStatus, KnowledgeError, Viewer, Visibility};
use civia_base::time::now_unix;
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use std::path::Path;

type Result<T> = std::result::Result<T, KnowledgeError>;

/// The visibility predicate on `col` for the viewer bound as `:me` and `:peers` (a JSON array
/// of the user ids of the viewer's service).
pub(crate) const ACCESS: &str = "(col.owner_id = :me OR col.visibility = 'public' \
     OR (col.visibility = 'service' AND col.owner_id IN (SELECT value FROM json_each(:peers))))";

const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE collections (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    description TEXT,
    visibility TEXT NOT NULL CHECK (visibility IN ('private', 'service', 'public')),
    owner_id INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX collections_by_owner ON collections(owner_id);
CREATE TABLE documents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    collection_id INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    format TEXT,
    pages INTEGER,
    ocr_pages INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL CHECK (status IN ('queued', 'indexing', 'indexed', 'failed')),
    error TEXT,
    metadata TEXT,
    embedding_model TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (collection_id, sha256)
);
CREATE TABLE chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    collection_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    page INTEGER,
    heading TEXT,
    content TEXT NOT NULL,
    embedding BLOB
);
CREATE INDEX chunks_by_document ON chunks(document_id, seq);
CREATE INDEX chunks_by_collection ON chunks(collection_id);
CREATE VIRTUAL TABLE chunks_fts USING fts5(
    terms, content = '', contentless_delete = 1, tokenize = 'unicode61 remove_diacritics 2'
);
INSERT INTO chunks_fts(chunks_fts, rank) VALUES ('secure-delete', 1);
"#,
    r#"
ALTER TABLE documents ADD COLUMN date TEXT;
UPDATE documents SET date = date(created_at, 'unixepoch');
CREATE INDEX documents_by_date ON documents(collection_id, date);
"#,
    // Why indexing failed, for the agents' UI (`{"code", "reason", …}`); `error` is English
    // from now on (older rows keep their French sentence and no details).
    r#"
ALTER TABLE documents ADD COLUMN error_details TEXT;
"#,
];

/// The database.
pub struct Db {
    conn: std::sync::Mutex<Connection>,
}

/// A chunk as stored, with what a search result or a citation shows of its document.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredChunk {
    pub id: i64,
    pub document_id: i64,
    pub document_name: String,
    pub collection_id: i64,
    pub seq: i64,
    pub page: Option<u32>,
    pub heading: Option<String>,
    pub content: String,
}

/// What a document's indexing produced, written in one transaction.
pub struct Indexed {
    pub format: String,
    pub pages: Option<u32>,
    pub ocr_pages: u32,
    pub pieces: Vec<Piece>,
    /// One vector per piece, or none when no embedding model is configured.
    pub vectors: Option<Vec<Vec<f32>>>,
    pub embedding_model: Option<String>,
}

fn viewer_params(v: &Viewer) -> (i64, String) {
    (
        v.user_id,
        serde_json::Value::from(v.peers.clone()).to_string(),
    )
}

fn collection_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Collection> {
    let visibility: String = r.get(3)?;
    Ok(Collection {
        id: r.get(0)?,
        name: r.get(1)?,
        description: r.get(2)?,
        visibility: Visibility::parse(&visibility).unwrap_or(Visibility::Private),
        owner_id: r.get(4)?,
        created_at: r.get(5)?,
        updated_at: r.get(6)?,
        documents: r.get(7)?,
    })
}

const COLLECTION_COLUMNS: &str =
    "col.id, col.name, col.description, col.visibility, col.owner_id, \
     col.created_at, col.updated_at, \
     (SELECT COUNT(*) FROM documents d WHERE d.collection_id = col.id)";

fn document_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Document> {
    let status: String = r.get(7)?;
    Ok(Document {
        id: r.get(0)?,
        collection_id: r.get(1)?,
        name: r.get(2)?,
        sha256: r.get(3)?,
        bytes: r.get(4)?,
        format: r.get(5)?,
        pages: r.get(6)?,
        status: DocumentStatus::parse(&status).unwrap_or(DocumentStatus::Failed),
        error: r.get(8)?,
        created_at: r.get(9)?,
        updated_at: r.get(10)?,
        chunks: r.get(11)?,
        ocr_pages: r.get(12)?,
        metadata: r
            .get::<_, Option<String>>(13)?
            .and_then(|m| serde_json::from_str(&m).ok()),
        date: r.get::<_, Option<String>>(14)?.unwrap_or_default(),
        error_details: r
            .get::<_, Option<String>>(15)?
            .and_then(|m| serde_json::from_str(&m).ok()),
    })
}

const DOCUMENT_COLUMNS: &str =
    "d.id, d.collection_id, d.name, d.sha256, d.bytes, d.format, d.pages, \
     d.status, d.error, d.created_at, d.updated_at, \
     (SELECT COUNT(*) FROM chunks c WHERE c.document_id = d.id), d.ocr_pages, d.metadata, d.date, \
     d.error_details";

impl Db {
    /// Opens (creating and migrating) the database at `path`.
    pub fn open(path: &Path) -> Result<Db> {
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        // Freed pages are overwritten: deleted text does not linger in the file.
        conn.pragma_update(None, "secure_delete", "ON")?;
        conn.pragma_update(None, "journal_size_limit", 0)?;
        // VACUUM's and sorts' temporary copies stay in memory, never in a file outside the
        // data volume.
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        let version: u32 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        let known = MIGRATIONS.len() as u32;
        if version > known {
            return Err(KnowledgeError::TooNew {
                found: version,
                known,
            });
        }
        let tx = conn.transaction()?;
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", i as u32 + 1)?;
        }
        tx.commit()?;
        // What a crash left in the write-ahead log (text of deleted documents included) goes
        // now, not at the next deletion.
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(Db {
            conn: std::sync::Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    // ---- collections ----

    pub fn create_collection(
        &self,
        owner: i64,
        name: &str,
        description: Option<&str>,
        visibility: Visibility,
    ) -> Result<i64> {
        let now = now_unix();
        let conn = self.conn();
        conn.execute(
            "INSERT INTO collections (name, description, visibility, owner_id, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
            params![name, description, visibility.as_str(), owner, now],
        )?;
        Ok(conn.last_insert_rowid())
    }

    /// The collections `viewer` may see, newest first.
    pub fn collections(&self, viewer: &Viewer) -> Result<Vec<Collection>> {
        let (me, peers) = viewer_params(viewer);
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLLECTION_COLUMNS} FROM collections col WHERE {ACCESS} ORDER BY col.id DESC"
        ))?;
        let rows = stmt.query_map(
            rusqlite::named_params! {":me": me, ":peers": peers},
            collection_row,
        )?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The collections shared with a service or the commune (the administration plane's view),
    /// newest first; only collection `only` when given.
    pub fn shared_collections(&self, only: Option<i64>) -> Result<Vec<Collection>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLLECTION_COLUMNS} FROM collections col
             WHERE col.visibility IN ('service', 'public') AND (?1 IS NULL OR col.id = ?1)
             ORDER BY col.id DESC"
        ))?;
        let rows = stmt.query_map([only], collection_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The collections `owner` created, whatever their visibility.
    pub fn owned_collections(&self, owner: i64) -> Result<Vec<Collection>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLLECTION_COLUMNS} FROM collections col WHERE col.owner_id = ?1
             ORDER BY col.id"
        ))?;
        let rows = stmt.query_map([owner], collection_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Gives collection `id` to another owner.
    pub fn set_owner(&self, id: i64, owner: i64) -> Result<()> {
        self.conn().execute(
            "UPDATE collections SET owner_id = ?1, updated_at = ?2 WHERE id = ?3",
            params![owner, now_unix(), id],
        )?;
        Ok(())
    }

    /// One collection, if `viewer` may see it (an invisible one is "not found").
    pub fn collection(&self, viewer: &Viewer, id: i64) -> Result<Collection> {
        let (me, peers) = viewer_params(viewer);
        let conn = self.conn();
        conn.query_row(
            &format!(
                "SELECT {COLLECTION_COLUMNS} FROM collections col WHERE col.id = :id AND {ACCESS}"
            ),
            rusqlite::named_params! {":id": id, ":me": me, ":peers": peers},
            collection_row,
        )
        .optional()?
        .ok_or(KnowledgeError::CollectionNotFound(id))
    }

    pub fn update_collection(
        &self,
        id: i64,
        name: Option<&str>,
        description: Option<Option<&str>>,
        visibility: Option<Visibility>,
    ) -> Result<()> {
        let conn = self.conn();
        let now = now_unix();
        if let Some(name) = name {
            conn.execute(
                "UPDATE collections SET name = ?1, updated_at = ?2 WHERE id = ?3",
                params![name, now, id],
            )?;
        }
        if let Some(description) = description {
            conn.execute(
                "UPDATE collections SET description = ?1, updated_at = ?2 WHERE id = ?3",
                params![description, now, id],
            )?;
        }
        if let Some(v) = visibility {
            conn.execute(
                "UPDATE collections SET visibility = ?1, updated_at = ?2 WHERE id = ?3",
                params![v.as_str(), now, id],
            )?;
        }
        Ok(())
    }

    /// Deletes a collection with its documents, chunks and index terms; returns the ids of
    /// the documents removed (their spool files go too).
    pub fn delete_collection(&self, id: i64) -> Result<Vec<i64>> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let docs: Vec<i64> = {
            let mut stmt = tx.prepare("SELECT id FROM documents WHERE collection_id = ?1")?;
            let rows = stmt.query_map([id], |r| r.get(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        tx.execute(
            "DELETE FROM chunks_fts WHERE rowid IN (SELECT id FROM chunks WHERE collection_id = ?1)",
            [id],
        )?;
        tx.execute("DELETE FROM chunks WHERE collection_id = ?1", [id])?;
        tx.execute("DELETE FROM documents WHERE collection_id = ?1", [id])?;
        tx.execute("DELETE FROM collections WHERE id = ?1", [id])?;
        tx.commit()?;
        Ok(docs)
    }

    // ---- documents ----

    /// Records an upload dated `date` (`YYYY-MM-DD`); `Err(Duplicate(id))` when the same
    /// bytes are already in the collection.
    pub fn add_document(
        &self,
        collection: i64,
        name: &str,
        sha256: &str,
        bytes: u64,
        metadata: Option<&serde_json::Value>,
        date: &str,
    ) -> Result<i64> {
        let conn = self.conn();
        if let Some(existing) = conn
            .query_row(
                "SELECT id FROM documents WHERE collection_id = ?1 AND sha256 = ?2",
                params![collection, sha256],
                |r| r.get::<_, i64>(0),
            )
            .optional()?
        {
            return Err(KnowledgeError::Duplicate(existing));
        }
        let now = now_unix();
        conn.execute(
            "INSERT INTO documents (collection_id, name, sha256, bytes, status, metadata, date, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, 'queued', ?5, ?6, ?7, ?7)",
            params![
                collection,
                name,
                sha256,
                i64::try_from(bytes).unwrap_or(i64::MAX),
                metadata.map(|m| m.to_string()),
                date,
                now
            ],
        )?;
        Ok(conn.last_insert_rowid())
    }

    /// One document, if `viewer` may see its collection.
    pub fn document(&self, viewer: &Viewer, id: i64) -> Result<Document> {
        let (me, peers) = viewer_params(viewer);
        let conn = self.conn();
        conn.query_row(
            &format!(
                "SELECT {DOCUMENT_COLUMNS} FROM documents d JOIN collections col ON col.id = d.collection_id
                 WHERE d.id = :id AND {ACCESS}"
            ),
            rusqlite::named_params! {":id": id, ":me": me, ":peers": peers},
            document_row,
        )
        .optional()?
        .ok_or(KnowledgeError::DocumentNotFound(id))
    }

    /// A document by id, without an access check (the ingestion queue's view).
    pub fn document_unchecked(&self, id: i64) -> Result<Option<Document>> {
        let conn = self.conn();
        Ok(conn
            .query_row(
                &format!("SELECT {DOCUMENT_COLUMNS} FROM documents d WHERE d.id = ?1"),
                [id],
                document_row,
            )
            .optional()?)
    }

    /// The documents `viewer` may see, in `collection` when given, newest first.
    pub fn documents(
        &self,
        viewer: &Viewer,
        collection: Option<i64>,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<Document>> {
        let (me, peers) = viewer_params(viewer);
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {DOCUMENT_COLUMNS} FROM documents d JOIN collections col ON col.id = d.collection_id
             WHERE {ACCESS} AND (:collection IS NULL OR d.collection_id = :collection)
             ORDER BY d.id DESC LIMIT :limit OFFSET :offset"
        ))?;
        let rows = stmt.query_map(
            rusqlite::named_params! {":me": me, ":peers": peers, ":collection": collection,
            ":limit": limit, ":offset": offset},
            document_row,
        )?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Documents left `queued` or `indexing` (by a stop), oldest first.
    pub fn unfinished(&self) -> Result<Vec<i64>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT id FROM documents WHERE status IN ('queued', 'indexing') ORDER BY id",
        )?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn set_status(&self, id: i64, status: DocumentStatus) -> Result<()> {
        self.conn().execute(
            "UPDATE documents SET status = ?1, error = NULL, error_details = NULL, \
             updated_at = ?2 WHERE id = ?3",
            params![status.as_str(), now_unix(), id],
        )?;
        Ok(())
    }

    /// Marks a document failed, with why (English) and its details for the agents' UI.
    pub fn set_failed(&self, id: i64, error: &str, details: &serde_json::Value) -> Result<()> {
        self.conn().execute(
            "UPDATE documents SET status = 'failed', error = ?1, error_details = ?2, \
             updated_at = ?3 WHERE id = ?4",
            params![error, details.to_string(), now_unix(), id],
        )?;
        Ok(())
    }

    /// Writes a document's chunks, vectors and index terms and marks it indexed, all or
    /// nothing. `Ok(false)` when the document was deleted meanwhile.
    pub fn store_indexed(&self, id: i64, collection: i64, x: &Indexed) -> Result<bool> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let exists: bool = tx
            .query_row("SELECT 1 FROM documents WHERE id = ?1", [id], |_| Ok(true))
            .optional()?
            .unwrap_or(false);
        if !exists {
            return Ok(false);
        }
        write_chunks(&tx, id, collection, x)?;
        tx.execute(
            "UPDATE documents SET status = 'indexed', error = NULL, error_details = NULL, format = ?1, pages = ?2, ocr_pages = ?3,
             embedding_model = ?4, updated_at = ?5 WHERE id = ?6",
            params![x.format, x.pages, x.ocr_pages, x.embedding_model, now_unix(), id],
        )?;
        tx.commit()?;
        Ok(true)
    }

    /// Deletes one document with its chunks and index terms.
    pub fn delete_document(&self, id: i64) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "DELETE FROM chunks_fts WHERE rowid IN (SELECT id FROM chunks WHERE document_id = ?1)",
            [id],
        )?;
        tx.execute("DELETE FROM chunks WHERE document_id = ?1", [id])?;
        tx.execute("DELETE FROM documents WHERE id = ?1", [id])?;
        tx.commit()?;
        Ok(())
    }

    /// Rewrites the file without free pages and empties the write-ahead log: after a
    /// deletion nothing of the deleted text stays in `knowledge.db` or its `-wal`.
    pub fn compact(&self) -> Result<()> {
        let conn = self.conn();
        conn.execute_batch("INSERT INTO chunks_fts(chunks_fts) VALUES ('optimize'); VACUUM;")?;
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }

    // ---- chunks and search ----

    /// The chunks of a document `viewer` may see, in order.
    pub fn chunks_of(
        &self,
        viewer: &Viewer,
        document: i64,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<StoredChunk>> {
        self.document(viewer, document)?;
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT c.id, c.document_id, d.name, c.collection_id, c.seq, c.page, c.heading, c.content
             FROM chunks c JOIN documents d ON d.id = c.document_id
             WHERE c.document_id = ?1 ORDER BY c.seq LIMIT ?2 OFFSET ?3",
        )?;
        let rows = stmt.query_map(params![document, limit, offset], chunk_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The ids of the collections `viewer` may see among `wanted` (all visible ones when
    /// `wanted` is empty). A wanted collection that is invisible or absent is an error.
    pub fn searchable(&self, viewer: &Viewer, wanted: &[i64]) -> Result<Vec<i64>> {
        let visible: Vec<i64> = self.collections(viewer)?.iter().map(|c| c.id).collect();
        if wanted.is_empty() {
            return Ok(visible);
        }
        for id in wanted {
            if !visible.contains(id) {
                return Err(KnowledgeError::CollectionNotFound(*id));
            }
        }
        let mut out = wanted.to_vec();
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// BM25 over the chunks of `viewer`'s visible collections among `collections` (and of
    /// `documents` when not empty), best first: `(chunk id, bm25)`, lower bm25 is better.
    pub fn lexical(
        &self,
        viewer: &Viewer,
        collections: &[i64],
        documents: &[i64],
        question: &str,
        limit: usize,
    ) -> Result<Vec<(i64, f64)>> {
        let Some(query) = analyze::match_query(question) else {
            return Ok(Vec::new());
        };
        let (me, peers) = viewer_params(viewer);
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT f.rowid, bm25(chunks_fts) AS score
             FROM chunks_fts f
             JOIN chunks c ON c.id = f.rowid
             JOIN collections col ON col.id = c.collection_id
             WHERE chunks_fts MATCH :query AND {ACCESS}
               AND c.collection_id IN (SELECT value FROM json_each(:collections))
               AND (json_array_length(:documents) = 0
                    OR c.document_id IN (SELECT value FROM json_each(:documents)))
             ORDER BY score LIMIT :limit"
        ))?;
        let rows = stmt.query_map(
            rusqlite::named_params! {
                ":query": query, ":me": me, ":peers": peers,
                ":collections": serde_json::Value::from(collections.to_vec()).to_string(),
                ":documents": serde_json::Value::from(documents.to_vec()).to_string(),
                ":limit": i64::try_from(limit).unwrap_or(i64::MAX),
            },
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The documents of `collections` dated from `from` to `to` (inclusive `YYYY-MM-DD`, either
    /// open), among those `viewer` may see.
    pub fn dated(
        &self,
        viewer: &Viewer,
        collections: &[i64],
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<Vec<i64>> {
        let (me, peers) = viewer_params(viewer);
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT d.id FROM documents d JOIN collections col ON col.id = d.collection_id
             WHERE {ACCESS} AND d.collection_id IN (SELECT value FROM json_each(:collections))
               AND (:from IS NULL OR d.date >= :from) AND (:to IS NULL OR d.date <= :to)
             ORDER BY d.id"
        ))?;
        let rows = stmt.query_map(
            rusqlite::named_params! {
                ":me": me, ":peers": peers,
                ":collections": serde_json::Value::from(collections.to_vec()).to_string(),
                ":from": from, ":to": to,
            },
            |r| r.get(0),
        )?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Every vector of `collection`, for the in-memory vector index: `(chunk id, document
    /// id, vector)`.
    pub fn vectors(&self, collection: i64) -> Result<Vec<(i64, i64, Vec<f32>)>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT c.id, c.document_id, c.embedding FROM chunks c
             WHERE c.collection_id = ?1 AND c.embedding IS NOT NULL ORDER BY c.id",
        )?;
        let rows = stmt.query_map([collection], |r| {
            let blob: Vec<u8> = r.get(2)?;
            Ok((r.get(0)?, r.get(1)?, from_blob(&blob)))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The chunks `ids`, in that order, restricted again to what `viewer` may see.
    pub fn chunks_by_id(&self, viewer: &Viewer, ids: &[i64]) -> Result<Vec<StoredChunk>> {
        let (me, peers) = viewer_params(viewer);
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT c.id, c.document_id, d.name, c.collection_id, c.seq, c.page, c.heading, c.content
             FROM chunks c JOIN documents d ON d.id = c.document_id
             JOIN collections col ON col.id = c.collection_id
             WHERE c.id = :id AND {ACCESS}"
        ))?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(c) = stmt
                .query_row(
                    rusqlite::named_params! {":id": id, ":me": me, ":peers": peers},
                    chunk_row,
                )
                .optional()?
            {
                out.push(c);
            }
        }
        Ok(out)
    }

    /// Counts for metrics: (collections, documents, chunks).
    pub fn counts(&self) -> Result<(i64, i64, i64)> {
        let conn = self.conn();
        Ok(conn.query_row(
            "SELECT (SELECT COUNT(*) FROM collections), (SELECT COUNT(*) FROM documents),
                    (SELECT COUNT(*) FROM chunks)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?)
    }
}

fn chunk_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredChunk> {
    Ok(StoredChunk {
        id: r.get(0)?,
        document_id: r.get(1)?,
        document_name: r.get(2)?,
        collection_id: r.get(3)?,
        seq: r.get(4)?,
        page: r.get(5)?,
        heading: r.get(6)?,
        content: r.get(7)?,
    })
}

fn write_chunks(tx: &Transaction<'_>, document: i64, collection: i64, x: &Indexed) -> Result<()> {
    // A retried indexing replaces what an interrupted one may have left.
    tx.execute(
        "DELETE FROM chunks_fts WHERE rowid IN (SELECT id FROM chunks WHERE document_id = ?1)",
        [document],
    )?;
    tx.execute("DELETE FROM chunks WHERE document_id = ?1", [document])?;
    let name: String = tx.query_row(
        "SELECT name FROM documents WHERE id = ?1",
        [document],
        |r| r.get(0),
    )?;
    let title = title_of(&name);
    let mut insert = tx.prepare(
        "INSERT INTO chunks (document_id, collection_id, seq, page, heading, content, embedding)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    let mut fts = tx.prepare("INSERT INTO chunks_fts (rowid, terms) VALUES (?1, ?2)")?;
    for (seq, piece) in x.pieces.iter().enumerate() {
        let vector = x
            .vectors
            .as_ref()
            .and_then(|v| v.get(seq))
            .map(|v| to_blob(v));
        insert.execute(params![
            document,
            collection,
            seq as i64,
            piece.page,
            piece.heading,
            piece.content,
            vector
        ])?;
        let id = tx.last_insert_rowid();
        fts.execute(params![
            id,
            analyze::index_text(&lexical_text(&title, piece))
        ])?;
    }
    Ok(())
}

/// The document's name without its extension, underscores and dashes as blanks.
pub(crate) fn title_of(name: &str) -> String {
    let stem = name.rsplit_once('.').map_or(name, |(s, _)| s);
    stem.replace(['_', '-'], " ")
}

/// What the lexical index and the embedding see of a chunk: the document's title, the
/// heading in force, then the text.
pub(crate) fn lexical_text(title: &str, piece: &Piece) -> String {
    match &piece.heading {
        Some(h) if !piece.content.starts_with(h.as_str()) => {
            format!("{title}\n{h}\n{}", piece.content)
        }
        _ => format!("{title}\n{}", piece.content),
    }
}

pub(crate) fn to_blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub(crate) fn from_blob(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}
