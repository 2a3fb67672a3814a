//! The commune's documents as knowledge: collections, background ingestion, French lexical
//! and vector indexes, hybrid search with need-to-know access.
//!
//! Owns: the knowledge database ([`store`]: collections, documents, chunks, FTS5 index
//! terms, vectors, one SQLite file on the data volume), the access rule (a collection is
//! seen by its owner, by the owner's service when `service`, by everyone when `public`,
//! applied inside every query: [`store::ACCESS`]), French lexical analysis ([`analyze`]),
//! chunking by pages and headings ([`chunk`]), search ([`search`]: BM25, exact cosine over
//! the allowed collections' vectors, reciprocal rank fusion) and the ingestion queue
//! ([`Knowledge`]: uploads wait in a private spool until a background task extracts,
//! chunks, embeds and indexes them in one transaction, then the spool file is deleted).
//!
//! Does not own: reading files (an [`Extractor`] given by civiad: `civia-documents` in a
//! limited child process, OCR included), embeddings (an [`Embedder`]: the embedding
//! worker), users and services (the caller resolves them into a [`Viewer`]), audit (the HTTP
//! layer records ids and hashes of what this crate returns).
//!
//! Must never: return a chunk, a document or a collection its viewer may not see (and never
//! say whether it exists), rank first and filter after, keep a document's text, terms or
//! vectors after its deletion (secure delete, FTS5 secure-delete, `VACUUM` and a truncated
//! log), keep an upload once indexed or failed, index half a document, or log text.

pub mod analyze;
pub mod chunk;
pub mod grounding;
pub mod search;
mod service;
pub mod store;

pub use chunk::{Chunking, PageText, Piece};
pub use search::{Hit, Method, SearchRequest};
pub use service::{
    EmbedFuture, EmbedRole, Embedder, Extraction, Extractor, Knowledge, KnowledgeSettings, Refusal,
    Upload,
};
pub use store::StoredChunk;

use serde::{Deserialize, Serialize};

/// Who is asking: the user, and the user ids of the user's service (empty without one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Viewer {
    pub user_id: i64,
    /// Administrators create and manage public collections.
    pub admin: bool,
    /// Users of the viewer's service, the viewer included; empty when the viewer has none.
    pub peers: Vec<i64>,
}

/// Who sees a collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// Its owner only.
    Private,
    /// Its owner's service (`civia user set-service`), as it is at the time of the query.
    Service,
    /// The whole commune; created and changed by administrators only.
    Public,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Private => "private",
            Visibility::Service => "service",
            Visibility::Public => "public",
        }
    }

    pub fn parse(s: &str) -> Option<Visibility> {
        match s {
            "private" => Some(Visibility::Private),
            "service" => Some(Visibility::Service),
            "public" => Some(Visibility::Public),
            _ => None,
        }
    }
}

/// A collection as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Collection {
    pub id: i64,
    pub name: String,
    pub description: Option<String>,
    pub visibility: Visibility,
    pub owner_id: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub documents: i64,
}

/// Where a document is in its indexing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DocumentStatus {
    Queued,
    Indexing,
    Indexed,
    Failed,
}

impl DocumentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentStatus::Queued => "queued",
            DocumentStatus::Indexing => "indexing",
            DocumentStatus::Indexed => "indexed",
            DocumentStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<DocumentStatus> {
        match s {
            "queued" => Some(DocumentStatus::Queued),
            "indexing" => Some(DocumentStatus::Indexing),
            "indexed" => Some(DocumentStatus::Indexed),
            "failed" => Some(DocumentStatus::Failed),
            _ => None,
        }
    }
}

/// A document as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Document {
    pub id: i64,
    pub collection_id: i64,
    /// The uploaded file's name.
    pub name: String,
    pub sha256: String,
    pub bytes: i64,
    /// Format found in the bytes, once read.
    pub format: Option<String>,
    pub pages: Option<u32>,
    /// Pages read by OCR.
    pub ocr_pages: u32,
    pub status: DocumentStatus,
    /// Why indexing failed, in English.
    pub error: Option<String>,
    /// Why indexing failed, for the agents' UI to word in French: `{"code", "reason", …}`
    /// (docs/errors.md).
    pub error_details: Option<serde_json::Value>,
    pub created_at: i64,
    pub updated_at: i64,
    pub chunks: i64,
    pub metadata: Option<serde_json::Value>,
    /// The document's date (`YYYY-MM-DD`), which searches filter on: the `date` of the
    /// upload's metadata (a délibération's or an arrêté's own date) when given, else the day
    /// it was uploaded (UTC).
    pub date: String,
}

/// What went wrong, for the HTTP layer to shape.
#[derive(Debug, thiserror::Error)]
pub enum KnowledgeError {
    #[error("knowledge database error: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("knowledge database schema version {found} is newer than this software ({known})")]
    TooNew { found: u32, known: u32 },
    #[error("collection {0} not found")]
    CollectionNotFound(i64),
    #[error("document {0} not found")]
    DocumentNotFound(i64),
    /// The same file is already in the collection (its id).
    #[error("the same file is already document {0} of this collection")]
    Duplicate(i64),
    #[error("{0}")]
    Forbidden(Denied),
    /// A request refused as invalid: the English sentence and `{"reason", …values}`.
    #[error("{message}")]
    Invalid {
        message: String,
        details: serde_json::Value,
    },
    #[error("the indexing queue is full ({0} documents waiting)")]
    QueueFull(usize),
    #[error("embedding model unavailable: {0}")]
    EmbeddingUnavailable(String),
    #[error("knowledge spool: {0}")]
    Spool(String),
    #[error("knowledge task failed: {0}")]
    Task(String),
}

/// Why a viewer may not change a collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error("only an administrator may publish a collection for the whole commune")]
    PublicIsAdmin,
    #[error("only the collection's owner may change who sees it")]
    OwnerSetsVisibility,
    #[error("this collection may be read, not changed")]
    ReadOnly,
}

impl Denied {
    /// The stable word in the error's `details`.
    pub fn reason(self) -> &'static str {
        match self {
            Denied::PublicIsAdmin => "public_is_admin",
            Denied::OwnerSetsVisibility => "owner_sets_visibility",
            Denied::ReadOnly => "read_only",
        }
    }
}

impl KnowledgeError {
    /// A refusal as invalid: `reason` and its values (an object) for the agents' UI, and the
    /// English sentence.
    pub(crate) fn invalid(reason: &str, values: serde_json::Value, message: String) -> Self {
        let mut details = serde_json::json!({ "reason": reason });
        if let (Some(d), serde_json::Value::Object(v)) = (details.as_object_mut(), values) {
            d.extend(v);
        }
        KnowledgeError::Invalid { message, details }
    }

    /// `{"reason", …values}` for the agents' UI to word this error in French, where the
    /// error's kind alone does not say enough (docs/errors.md).
    pub fn details(&self) -> Option<serde_json::Value> {
        use serde_json::json;
        match self {
            KnowledgeError::Forbidden(d) => Some(json!({ "reason": d.reason() })),
            KnowledgeError::Invalid { details, .. } => Some(details.clone()),
            KnowledgeError::Duplicate(id) => {
                Some(json!({"reason": "duplicate", "document_id": id}))
            }
            KnowledgeError::QueueFull(n) => Some(json!({"reason": "queue_full", "waiting": n})),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
