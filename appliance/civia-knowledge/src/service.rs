//! The knowledge service: the operations the HTTP layer calls, each checked against its
//! [`Viewer`], and the background indexing task.

use crate::chunk::{chunk, Chunking, PageText};
use crate::search::{fuse, nearest, Hit, Method, SearchRequest};
use crate::store::{lexical_text, title_of, Db, Indexed, StoredChunk};
use crate::{Collection, Denied, Document, DocumentStatus, KnowledgeError, Viewer, Visibility};
use civia_base::hash::sha256_hex;
use serde_json::json;
use std::collections::HashMap;
use std::future::Future;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::mpsc;

type Result<T> = std::result::Result<T, KnowledgeError>;

/// Whether a text is a question or a passage (e5 models embed them with different prefixes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbedRole {
    Query,
    Passage,
}

/// The answer of an [`Embedder`]: one L2-normalised vector per text, or why not.
pub type EmbedFuture<'a> =
    Pin<Box<dyn Future<Output = std::result::Result<Vec<Vec<f32>>, String>> + Send + 'a>>;

/// What an embedding model is given of a text: NFC (the model's tokenizer does not compose
/// accents itself) and at most [`MAX_EMBED_CHARS`] characters (well inside E5's 512 tokens:
/// a longer chunk or question is embedded by its beginning).
pub fn embed_text(text: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    text.nfc().take(MAX_EMBED_CHARS).collect()
}

/// See [`embed_text`].
pub const MAX_EMBED_CHARS: usize = 1500;

/// Turns texts into vectors (civiad plugs the embedding worker in).
pub trait Embedder: Send + Sync {
    /// The model's id, recorded with each indexed document.
    fn model(&self) -> String;
    fn embed(&self, texts: Vec<String>, role: EmbedRole) -> EmbedFuture<'_>;
}

/// A document's text, page by page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extraction {
    /// The format found in the bytes (`PDF`, `DOCX`, `PNG`…).
    pub format: String,
    pub pages: Vec<PageText>,
    /// The document's page count, when the format has pages.
    pub page_count: Option<u32>,
    /// Pages read by OCR.
    pub ocr_pages: u32,
}

/// Why a document cannot be read: the English sentence stored as its `error`, and the
/// `{"code", "reason", …}` stored as its `error_details` for the agents' UI.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub message: String,
    pub details: serde_json::Value,
}

/// A failure of the indexing itself (not of the document's reading), as a [`Refusal`].
fn indexing_failed(reason: &str, values: serde_json::Value, message: String) -> Refusal {
    let mut details = json!({"code": "indexing_failed", "reason": reason});
    if let (Some(d), serde_json::Value::Object(v)) = (details.as_object_mut(), values) {
        d.extend(v);
    }
    Refusal { message, details }
}

/// Reads documents (blocking; civiad runs `civia-documents` in a limited child, OCR
/// included).
pub trait Extractor: Send + Sync {
    fn extract(&self, bytes: &[u8], name: &str) -> std::result::Result<Extraction, Refusal>;
}

/// An uploaded file.
#[derive(Debug, Clone)]
pub struct Upload {
    pub name: String,
    pub bytes: Vec<u8>,
    pub metadata: Option<serde_json::Value>,
}

/// Bounds and sizes (`[knowledge]` in the configuration).
#[derive(Debug, Clone)]
pub struct KnowledgeSettings {
    pub chunking: Chunking,
    pub max_file_bytes: usize,
    /// Documents waiting for indexing at most; more uploads are refused.
    pub max_queued: usize,
    pub max_chunks_per_document: usize,
    /// Texts per embedding request.
    pub embed_batch: usize,
}

impl Default for KnowledgeSettings {
    fn default() -> Self {
        KnowledgeSettings {
            chunking: Chunking::default(),
            max_file_bytes: 50 * 1024 * 1024,
            max_queued: 1000,
            max_chunks_per_document: 20_000,
            embed_batch: 32,
        }
    }
}

type Vectors = Arc<Vec<(i64, i64, Vec<f32>)>>;

/// The vectors of the collections searched lately, and a count of the changes made to any
/// collection since the service opened (a load that raced a change is not kept).
#[derive(Default)]
struct VectorCache {
    vectors: HashMap<i64, Vectors>,
    generation: u64,
}

/// The service (one per box).
pub struct Knowledge {
    db: Arc<Db>,
    spool: PathBuf,
    settings: KnowledgeSettings,
    extractor: Arc<dyn Extractor>,
    embedder: Option<Arc<dyn Embedder>>,
    queue: mpsc::Sender<i64>,
    /// The queue's receiving end and the documents a stop interrupted, listed when the
    /// service opened (before any upload could add a row whose file is still being written).
    receiver: Mutex<Option<(mpsc::Receiver<i64>, Vec<i64>)>>,
    vectors: Mutex<VectorCache>,
    /// A compaction is wanted (set by deletions, done by the background task).
    compact: tokio::sync::Notify,
}

const MAX_NAME_CHARS: usize = 128;
const MAX_DESCRIPTION_CHARS: usize = 2000;
const MAX_PROMPT_CHARS: usize = 4000;
const MAX_K: usize = 100;
/// Collections or documents named in one search at most.
const MAX_LISTED: usize = 1000;

fn valid_name(name: &str, max: usize) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > max || name.chars().any(invisible) {
        return Err(KnowledgeError::invalid(
            "name_length",
            json!({ "max": max }),
            format!("a name has 1 to {max} characters, none of them a control character"),
        ));
    }
    Ok(name.to_owned())
}

/// Control characters, and the format characters that reorder or hide text (a name shown
/// `cod.exe` that is `exe.doc` read backwards).
fn invisible(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

fn valid_description(d: &str) -> Result<()> {
    if d.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(KnowledgeError::invalid(
            "description_length",
            json!({ "max": MAX_DESCRIPTION_CHARS }),
            format!("the description is longer than {MAX_DESCRIPTION_CHARS} characters"),
        ));
    }
    Ok(())
}

/// Whether `viewer` may change `c` (add or delete documents, rename, delete it).
/// A public collection is the administrators' (its owner's too only while an administrator).
fn may_write(viewer: &Viewer, c: &Collection) -> bool {
    match c.visibility {
        Visibility::Private => c.owner_id == viewer.user_id,
        Visibility::Service => c.owner_id == viewer.user_id || viewer.peers.contains(&c.owner_id),
        Visibility::Public => viewer.admin,
    }
}

/// Removes from the spool what no unfinished document needs: files of documents a stop left
/// half-deleted, temporary files of a write a stop or a full disk interrupted.
fn sweep_spool(spool: &Path, keep: &[i64]) {
    let Ok(entries) = std::fs::read_dir(spool) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let needed = name
            .to_str()
            .and_then(|n| n.strip_suffix(".upload"))
            .and_then(|id| id.parse::<i64>().ok())
            .is_some_and(|id| keep.contains(&id));
        if !needed {
            if let Err(e) = std::fs::remove_file(entry.path()) {
                log::warn!("knowledge: cannot remove {}: {e}", entry.path().display());
            }
        }
    }
}

/// A document's date: its metadata's `date` (`YYYY-MM-DD`) when given, else today (UTC).
fn document_date(metadata: Option<&serde_json::Value>) -> Result<String> {
    match metadata.and_then(|m| m.get("date")) {
        None => Ok(civia_base::time::date(civia_base::time::now_unix())),
        Some(serde_json::Value::String(d)) if civia_base::time::parse_date(d).is_some() => {
            Ok(d.clone())
        }
        Some(_) => Err(KnowledgeError::invalid(
            "date_format",
            json!({}),
            "the document's date (metadata `date`) must be YYYY-MM-DD".into(),
        )),
    }
}

/// A search's date bound, checked.
fn date_bound(d: Option<&String>) -> Result<Option<String>> {
    match d {
        None => Ok(None),
        Some(d) if civia_base::time::parse_date(d).is_some() => Ok(Some(d.clone())),
        Some(_) => Err(KnowledgeError::invalid(
            "search_dates_format",
            json!({}),
            "search dates must be YYYY-MM-DD".into(),
        )),
    }
}

impl Knowledge {
    /// Opens the database in `dir` (created 0700, with its `spool`). Call [`Knowledge::run`]
    /// on a runtime to index.
    pub fn open(
        dir: &Path,
        settings: KnowledgeSettings,
        extractor: Arc<dyn Extractor>,
        embedder: Option<Arc<dyn Embedder>>,
    ) -> Result<Arc<Knowledge>> {
        let spool = dir.join("spool");
        for d in [dir, spool.as_path()] {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(d)
                .map_err(|e| KnowledgeError::Spool(format!("{}: {e}", d.display())))?;
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| KnowledgeError::Spool(format!("{}: {e}", d.display())))?;
        }
        let db = Arc::new(Db::open(&dir.join("knowledge.db"))?);
        let interrupted = db.unfinished()?;
        sweep_spool(&spool, &interrupted);
        let (queue, receiver) = mpsc::channel(settings.max_queued.max(1));
        Ok(Arc::new(Knowledge {
            db,
            spool,
            settings,
            extractor,
            embedder,
            queue,
            receiver: Mutex::new(Some((receiver, interrupted))),
            vectors: Mutex::new(VectorCache::default()),
            compact: tokio::sync::Notify::new(),
        }))
    }

    /// The embedding model's id, when one is configured.
    pub fn embedding_model(&self) -> Option<String> {
        self.embedder.as_ref().map(|e| e.model())
    }

    async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Db) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(|e| KnowledgeError::Task(e.to_string()))?
    }

    // ---- collections ----

    pub async fn create_collection(
        &self,
        viewer: &Viewer,
        name: &str,
        description: Option<String>,
        visibility: Visibility,
    ) -> Result<Collection> {
        let name = valid_name(name, MAX_NAME_CHARS)?;
        if let Some(d) = &description {
            valid_description(d)?;
        }
        if visibility == Visibility::Public && !viewer.admin {
            return Err(KnowledgeError::Forbidden(Denied::PublicIsAdmin));
        }
        let (v, owner) = (viewer.clone(), viewer.user_id);
        self.db(move |db| {
            let id = db.create_collection(owner, &name, description.as_deref(), visibility)?;
            db.collection(&v, id)
        })
        .await
    }

    pub async fn collections(&self, viewer: &Viewer) -> Result<Vec<Collection>> {
        let v = viewer.clone();
        self.db(move |db| db.collections(&v)).await
    }

    pub async fn collection(&self, viewer: &Viewer, id: i64) -> Result<Collection> {
        let v = viewer.clone();
        self.db(move |db| db.collection(&v, id)).await
    }

    /// Renames, describes or changes the visibility of a collection the viewer may write.
    pub async fn update_collection(
        &self,
        viewer: &Viewer,
        id: i64,
        name: Option<String>,
        description: Option<Option<String>>,
        visibility: Option<Visibility>,
    ) -> Result<Collection> {
        let c = self.collection(viewer, id).await?;
        if !may_write(viewer, &c) {
            return Err(KnowledgeError::Forbidden(Denied::ReadOnly));
        }
        let name = name.map(|n| valid_name(&n, MAX_NAME_CHARS)).transpose()?;
        if let Some(Some(d)) = &description {
            valid_description(d)?;
        }
        if visibility == Some(Visibility::Public) && !viewer.admin {
            return Err(KnowledgeError::Forbidden(Denied::PublicIsAdmin));
        }
        // Who sees a collection is its owner's choice (an administrator's for a public one):
        // a colleague of the service may add documents, not hide it from the service.
        if visibility.is_some_and(|v| v != c.visibility)
            && c.owner_id != viewer.user_id
            && c.visibility != Visibility::Public
        {
            return Err(KnowledgeError::Forbidden(Denied::OwnerSetsVisibility));
        }
        let v = viewer.clone();
        self.db(move |db| {
            db.update_collection(
                id,
                name.as_deref(),
                description.as_ref().map(|d| d.as_deref()),
                visibility,
            )?;
            db.collection(&v, id)
        })
        .await
    }

    /// Deletes a collection the viewer may write, with everything in it.
    pub async fn delete_collection(&self, viewer: &Viewer, id: i64) -> Result<Collection> {
        let c = self.collection(viewer, id).await?;
        if !may_write(viewer, &c) {
            return Err(KnowledgeError::Forbidden(Denied::ReadOnly));
        }
        self.remove_collection(id).await?;
        Ok(c)
    }

    /// Deletes collection `id` and everything in it, whoever asks (the callers check).
    async fn remove_collection(&self, id: i64) -> Result<()> {
        let docs = self.db(move |db| db.delete_collection(id)).await?;
        for d in docs {
            self.drop_spool(d);
        }
        self.forget_vectors(id);
        self.compact.notify_one();
        Ok(())
    }

    // ---- a user's collections (data-subject requests, accounts deleted) ----

    /// The collections `owner` created, with their documents (for a data-subject export).
    pub async fn owned_by(&self, owner: i64) -> Result<Vec<(Collection, Vec<Document>)>> {
        let v = Viewer {
            user_id: owner,
            admin: false,
            peers: Vec::new(),
        };
        let mut out = Vec::new();
        for c in self.db(move |db| db.owned_collections(owner)).await? {
            let (v, id) = (v.clone(), c.id);
            let docs = self
                .db(move |db| db.documents(&v, Some(id), u32::MAX, 0))
                .await?;
            out.push((c, docs));
        }
        Ok(out)
    }

    /// Erases `owner`'s private collections; when the account goes, also hands its service
    /// collections to `heir` (another member of the service), or erases them when the
    /// service has nobody left. Public collections stay: they are the commune's and its
    /// administrators'. Gives the ids erased and handed over.
    pub async fn owner_leaves(
        &self,
        owner: i64,
        account_deleted: bool,
        heir: Option<i64>,
    ) -> Result<(Vec<i64>, Vec<i64>)> {
        let (mut erased, mut handed) = (Vec::new(), Vec::new());
        for c in self.db(move |db| db.owned_collections(owner)).await? {
            match (c.visibility, account_deleted, heir) {
                (Visibility::Private, _, _) | (Visibility::Service, true, None) => {
                    self.remove_collection(c.id).await?;
                    erased.push(c.id);
                }
                (Visibility::Service, true, Some(heir)) => {
                    let id = c.id;
                    self.db(move |db| db.set_owner(id, heir)).await?;
                    handed.push(c.id);
                }
                _ => {}
            }
        }
        Ok((erased, handed))
    }

    // ---- documents ----

    /// Takes an upload into a collection the viewer may write: checked, spooled, queued.
    pub async fn upload(
        &self,
        viewer: &Viewer,
        collection: i64,
        upload: Upload,
    ) -> Result<Document> {
        let c = self.collection(viewer, collection).await?;
        if !may_write(viewer, &c) {
            return Err(KnowledgeError::Forbidden(Denied::ReadOnly));
        }
        let (id, permit) = self.spool(collection, upload).await?;
        // Read before queueing, so the answer says `queued` whatever the indexer does next.
        let v = viewer.clone();
        let document = self.db(move |db| db.document(&v, id)).await;
        permit.send(id);
        document
    }

    /// The collections shared with a service or the whole commune, for the administration
    /// plane's bulk import (an administrator never sees nor fills an agent's private ones).
    pub async fn shared_collections(&self) -> Result<Vec<Collection>> {
        self.db(|db| db.shared_collections(None)).await
    }

    /// Takes an upload from the administration plane (a folder imported by `civia knowledge
    /// import`) into a shared collection, checked, spooled and queued like any other.
    pub async fn import(&self, collection: i64, upload: Upload) -> Result<Document> {
        // One lookup, not the list of every shared collection per imported file.
        if self
            .db(move |db| db.shared_collections(Some(collection)))
            .await?
            .is_empty()
        {
            return Err(KnowledgeError::CollectionNotFound(collection));
        }
        let (id, permit) = self.spool(collection, upload).await?;
        let document = self
            .db(move |db| db.document_unchecked(id))
            .await
            .and_then(|d| d.ok_or(KnowledgeError::DocumentNotFound(id)));
        permit.send(id);
        document
    }

    /// Checks an upload, records it and writes its bytes to the spool; gives its id and its
    /// reserved place in the indexer's queue, for the caller to send once it has read the
    /// document back.
    async fn spool(
        &self,
        collection: i64,
        upload: Upload,
    ) -> Result<(i64, mpsc::OwnedPermit<i64>)> {
        let name = valid_name(upload.name.rsplit(['/', '\\']).next().unwrap_or(""), 255)?;
        if upload.bytes.is_empty() {
            return Err(KnowledgeError::invalid(
                "empty_file",
                json!({}),
                "the file is empty".into(),
            ));
        }
        if upload.bytes.len() > self.settings.max_file_bytes {
            let max = self.settings.max_file_bytes;
            return Err(KnowledgeError::invalid(
                "file_too_large",
                json!({ "max_bytes": max }),
                format!("the file is larger than the limit of {max} bytes"),
            ));
        }
        let date = document_date(upload.metadata.as_ref())?;
        let permit = self
            .queue
            .clone()
            .try_reserve_owned()
            .map_err(|_| KnowledgeError::QueueFull(self.settings.max_queued))?;
        let sha = sha256_hex(&upload.bytes);
        let size = upload.bytes.len() as u64;
        let metadata = upload.metadata.clone();
        let id = self
            .db(move |db| db.add_document(collection, &name, &sha, size, metadata.as_ref(), &date))
            .await?;
        let path = self.spool_path(id);
        let bytes = upload.bytes;
        let written =
            tokio::task::spawn_blocking(move || civia_base::fs::write_atomic(&path, &bytes, 0o600))
                .await
                .map_err(|e| KnowledgeError::Task(e.to_string()))?;
        if let Err(e) = written {
            self.drop_spool(id);
            self.db(move |db| db.delete_document(id)).await?;
            return Err(KnowledgeError::Spool(e.to_string()));
        }
        Ok((id, permit))
    }

    pub async fn document(&self, viewer: &Viewer, id: i64) -> Result<Document> {
        let v = viewer.clone();
        self.db(move |db| db.document(&v, id)).await
    }

    pub async fn documents(
        &self,
        viewer: &Viewer,
        collection: Option<i64>,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<Document>> {
        if let Some(c) = collection {
            self.collection(viewer, c).await?;
        }
        let v = viewer.clone();
        self.db(move |db| db.documents(&v, collection, limit.clamp(1, 1000), offset))
            .await
    }

    /// Deletes a document of a collection the viewer may write.
    pub async fn delete_document(&self, viewer: &Viewer, id: i64) -> Result<Document> {
        let d = self.document(viewer, id).await?;
        let c = self.collection(viewer, d.collection_id).await?;
        if !may_write(viewer, &c) {
            return Err(KnowledgeError::Forbidden(Denied::ReadOnly));
        }
        self.db(move |db| db.delete_document(id)).await?;
        self.drop_spool(id);
        self.forget_vectors(d.collection_id);
        self.compact.notify_one();
        Ok(d)
    }

    pub async fn chunks(
        &self,
        viewer: &Viewer,
        document: i64,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<StoredChunk>> {
        let v = viewer.clone();
        self.db(move |db| db.chunks_of(&v, document, limit.clamp(1, 1000), offset))
            .await
    }

    // ---- search ----

    /// Searches what the viewer may see: `(score, chunk)` best first.
    pub async fn search(
        &self,
        viewer: &Viewer,
        req: &SearchRequest,
    ) -> Result<Vec<(f64, StoredChunk)>> {
        let prompt = req.prompt.trim().to_owned();
        if prompt.is_empty() || prompt.chars().count() > MAX_PROMPT_CHARS {
            return Err(KnowledgeError::invalid(
                "prompt_length",
                json!({ "max": MAX_PROMPT_CHARS }),
                format!("the question has 1 to {MAX_PROMPT_CHARS} characters"),
            ));
        }
        if req.collections.len() > MAX_LISTED || req.documents.len() > MAX_LISTED {
            return Err(KnowledgeError::invalid(
                "too_many_listed",
                json!({ "max": MAX_LISTED }),
                format!(
                    "a search names at most {MAX_LISTED} collections and {MAX_LISTED} documents"
                ),
            ));
        }
        if req.k == 0 || req.k > MAX_K {
            return Err(KnowledgeError::invalid(
                "k_range",
                json!({ "max": MAX_K }),
                format!("k, the number of results, is between 1 and {MAX_K}"),
            ));
        }
        let (from, to) = (
            date_bound(req.date_from.as_ref())?,
            date_bound(req.date_to.as_ref())?,
        );
        // A period that ends before it starts holds no document.
        if matches!((&from, &to), (Some(f), Some(t)) if f > t) {
            return Ok(Vec::new());
        }
        let (v, wanted) = (viewer.clone(), req.collections.clone());
        let allowed = self.db(move |db| db.searchable(&v, &wanted)).await?;
        if allowed.is_empty() {
            return Ok(Vec::new());
        }
        // A date range narrows the documents before anything is ranked.
        let mut documents = req.documents.clone();
        if from.is_some() || to.is_some() {
            let (v, cols) = (viewer.clone(), allowed.clone());
            let dated = self
                .db(move |db| db.dated(&v, &cols, from.as_deref(), to.as_deref()))
                .await?;
            if !documents.is_empty() {
                let dated: std::collections::HashSet<i64> = dated.into_iter().collect();
                documents.retain(|d| dated.contains(d));
            } else {
                documents = dated;
            }
            if documents.is_empty() {
                return Ok(Vec::new());
            }
        }
        let pool = (req.k * 5).max(50);
        let lexical = match req.method {
            Method::Lexical | Method::Hybrid => {
                let (v, cols, docs, p) = (
                    viewer.clone(),
                    allowed.clone(),
                    documents.clone(),
                    prompt.clone(),
                );
                let limit = if req.method == Method::Lexical {
                    req.k
                } else {
                    pool
                };
                self.db(move |db| db.lexical(&v, &cols, &docs, &p, limit))
                    .await?
                    .into_iter()
                    // FTS5's bm25() uses statistics of the whole index, other users'
                    // documents included: its value would tell whether they hold a word. The
                    // score shown is the rank's (1, 1/2, 1/3...), which depends on nothing the
                    // caller may not see.
                    .enumerate()
                    .map(|(rank, (chunk_id, _bm25))| Hit {
                        chunk_id,
                        score: 1.0 / (rank as f64 + 1.0),
                    })
                    .collect()
            }
            Method::Semantic => Vec::new(),
        };
        let semantic = match (req.method, &self.embedder) {
            (Method::Lexical, _) => Vec::new(),
            (Method::Semantic, None) => {
                return Err(KnowledgeError::EmbeddingUnavailable(
                    "no embedding model configured".into(),
                ))
            }
            // Without a model, hybrid is lexical.
            (Method::Hybrid, None) => Vec::new(),
            (_, Some(embedder)) => {
                let q = embedder
                    .embed(vec![embed_text(&prompt)], crate::EmbedRole::Query)
                    .await
                    .map_err(KnowledgeError::EmbeddingUnavailable)?
                    .into_iter()
                    .next()
                    .ok_or_else(|| {
                        KnowledgeError::EmbeddingUnavailable("no vector returned".into())
                    })?;
                let limit = if req.method == Method::Semantic {
                    req.k
                } else {
                    pool
                };
                let mut all = Vec::new();
                for c in &allowed {
                    all.push(self.vectors_of(*c).await?);
                }
                // A scan of every vector: off the async workers.
                let wanted = documents.clone();
                let mut hits = tokio::task::spawn_blocking(move || {
                    nearest(&q, all.iter().flat_map(|v| v.iter()), &wanted, limit)
                })
                .await
                .map_err(|e| KnowledgeError::Task(e.to_string()))?;
                if let Some(t) = req.score_threshold {
                    hits.retain(|h| h.score >= f64::from(t));
                }
                hits
            }
        };
        let hits = match req.method {
            Method::Lexical => lexical,
            Method::Semantic => semantic,
            Method::Hybrid => fuse(&[lexical, semantic], req.rrf_k, req.k),
        };
        let ids: Vec<i64> = hits.iter().map(|h| h.chunk_id).collect();
        let v = viewer.clone();
        let chunks = self.db(move |db| db.chunks_by_id(&v, &ids)).await?;
        let scores: HashMap<i64, f64> = hits.iter().map(|h| (h.chunk_id, h.score)).collect();
        Ok(chunks
            .into_iter()
            .map(|c| (scores.get(&c.id).copied().unwrap_or(0.0), c))
            .collect())
    }

    async fn vectors_of(&self, collection: i64) -> Result<Vectors> {
        let generation = {
            let cache = self.vectors.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(v) = cache.vectors.get(&collection) {
                return Ok(v.clone());
            }
            cache.generation
        };
        let loaded = Arc::new(self.db(move |db| db.vectors(collection)).await?);
        let mut cache = self.vectors.lock().unwrap_or_else(PoisonError::into_inner);
        // A change committed while loading makes what was read stale: used once, not kept.
        if cache.generation == generation {
            cache.vectors.insert(collection, loaded.clone());
        }
        Ok(loaded)
    }

    fn forget_vectors(&self, collection: i64) {
        let mut cache = self.vectors.lock().unwrap_or_else(PoisonError::into_inner);
        cache.vectors.remove(&collection);
        cache.generation += 1;
    }

    /// Counts for metrics and health: (collections, documents, chunks).
    pub async fn counts(&self) -> Result<(i64, i64, i64)> {
        self.db(|db| db.counts()).await
    }

    // ---- indexing ----

    fn spool_path(&self, id: i64) -> PathBuf {
        self.spool.join(format!("{id}.upload"))
    }

    fn drop_spool(&self, id: i64) {
        let path = self.spool_path(id);
        if let Err(e) = std::fs::remove_file(&path) {
            if e.kind() != std::io::ErrorKind::NotFound {
                log::warn!(
                    "knowledge: cannot remove spool file {}: {e}",
                    path.display()
                );
            }
        }
    }

    /// The background tasks: requeues what a stop interrupted, then indexes uploads one at a
    /// time; compacts the database after deletions (a task of its own). Runs for the life of
    /// the process.
    pub async fn run(self: Arc<Self>) {
        let Some((mut receiver, interrupted)) = self
            .receiver
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        else {
            return;
        };
        // Compaction is its own task: a long OCR never delays the erasure of deleted text.
        // (A deletion while it runs leaves a permit: the next one is not lost.)
        let compactor = self.clone();
        tokio::spawn(async move {
            loop {
                compactor.compact.notified().await;
                if let Err(e) = compactor.db(|db| db.compact()).await {
                    log::error!("knowledge: compaction failed: {e}");
                }
            }
        });
        for id in interrupted {
            if let Err(e) = self.index(id).await {
                log::error!("knowledge: indexing document {id} failed: {e}");
            }
        }
        while let Some(id) = receiver.recv().await {
            if let Err(e) = self.index(id).await {
                log::error!("knowledge: indexing document {id} failed: {e}");
            }
        }
    }

    /// Compacts now (tests and the admin console; the background task does it after
    /// deletions).
    pub async fn compact_now(&self) -> Result<()> {
        self.db(|db| db.compact()).await
    }

    async fn fail(&self, id: i64, refusal: Refusal, log: &str) -> Result<()> {
        log::warn!(
            "knowledge: document {id} not indexed: {}: {log}",
            refusal.message
        );
        self.drop_spool(id);
        self.db(move |db| db.set_failed(id, &refusal.message, &refusal.details))
            .await
    }

    async fn index(&self, id: i64) -> Result<()> {
        let Some(doc) = self.db(move |db| db.document_unchecked(id)).await? else {
            self.drop_spool(id);
            return Ok(());
        };
        let path = self.spool_path(id);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                let lost = indexing_failed(
                    "lost",
                    json!({}),
                    "the uploaded file was lost before its indexing: upload it again".into(),
                );
                return self
                    .fail(id, lost, &format!("spool {}: {e}", path.display()))
                    .await;
            }
        };
        self.db(move |db| db.set_status(id, DocumentStatus::Indexing))
            .await?;
        let extractor = self.extractor.clone();
        let name = doc.name.clone();
        let extraction =
            match tokio::task::spawn_blocking(move || extractor.extract(&bytes, &name)).await {
                Ok(Ok(x)) => x,
                Ok(Err(r)) => return self.fail(id, r, "refused by the reader").await,
                // A reader that panicked: the document fails like any unreadable one, its upload
                // is not kept nor retried at every start.
                Err(e) => {
                    let unreadable = indexing_failed(
                        "unreadable",
                        json!({}),
                        "the document could not be read".into(),
                    );
                    return self.fail(id, unreadable, &format!("reader: {e}")).await;
                }
            };
        let pieces = chunk(&extraction.pages, self.settings.chunking);
        if pieces.is_empty() {
            let none = indexing_failed(
                "no_text",
                json!({}),
                "no text could be read in the document".into(),
            );
            return self.fail(id, none, "no text").await;
        }
        if pieces.len() > self.settings.max_chunks_per_document {
            let max = self.settings.max_chunks_per_document;
            let long = indexing_failed(
                "too_many_chunks",
                json!({ "max": max }),
                format!("the document is too long: more than {max} passages to index"),
            );
            return self.fail(id, long, "too many chunks").await;
        }
        let (vectors, model) = match &self.embedder {
            None => (None, None),
            Some(embedder) => {
                let title = title_of(&doc.name);
                let texts: Vec<String> = pieces
                    .iter()
                    .map(|p| embed_text(&lexical_text(&title, p)))
                    .collect();
                match self.embed_all(embedder.as_ref(), texts).await {
                    Ok(v) => (Some(v), Some(embedder.model())),
                    Err(e) => {
                        let unavailable = indexing_failed(
                            "embedding_unavailable",
                            json!({}),
                            "the embedding model is unavailable: upload the document again later"
                                .into(),
                        );
                        return self.fail(id, unavailable, &e).await;
                    }
                }
            }
        };
        let indexed = Indexed {
            format: extraction.format,
            pages: extraction.page_count,
            ocr_pages: extraction.ocr_pages,
            pieces,
            vectors,
            embedding_model: model,
        };
        let collection = doc.collection_id;
        let stored = self
            .db(move |db| db.store_indexed(id, collection, &indexed))
            .await;
        self.drop_spool(id);
        self.forget_vectors(collection);
        match stored {
            Ok(_) => Ok(()),
            Err(e) => {
                let internal = indexing_failed(
                    "internal",
                    json!({}),
                    "internal error during the indexing".into(),
                );
                let _ = self
                    .db(move |db| db.set_failed(id, &internal.message, &internal.details))
                    .await;
                Err(e)
            }
        }
    }

    /// Embeds `texts` in batches; a worker restarting gets three tries a few seconds apart.
    async fn embed_all(
        &self,
        embedder: &dyn Embedder,
        texts: Vec<String>,
    ) -> std::result::Result<Vec<Vec<f32>>, String> {
        let mut out = Vec::with_capacity(texts.len());
        for batch in texts.chunks(self.settings.embed_batch.max(1)) {
            let mut tries = 0;
            loop {
                match embedder
                    .embed(batch.to_vec(), crate::EmbedRole::Passage)
                    .await
                {
                    Ok(v) if v.len() == batch.len() => {
                        out.extend(v);
                        break;
                    }
                    Ok(v) => return Err(format!("{} vectors for {} texts", v.len(), batch.len())),
                    Err(e) if tries < 2 => {
                        tries += 1;
                        log::warn!("knowledge: embedding failed ({e}), retrying");
                        tokio::time::sleep(Duration::from_secs(3)).await;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(out)
    }
}
