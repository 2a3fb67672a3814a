//! The knowledge service as civiad composes it: `civia-knowledge` with its document reader
//! (`civia-documents` in a limited child process, `civiad extract-document`) and, when the
//! embedding worker runs, its embedder.

use crate::DaemonError;
use civia_config::Config;
use civia_documents::isolated::Sandbox;
use civia_documents::{Limits, Ocr};
use civia_knowledge::{
    Chunking, EmbedFuture, EmbedRole, Embedder, Extraction, Extractor, Knowledge,
    KnowledgeSettings, PageText, Refusal,
};
use civia_supervisor::{EmbedSupervisor, TextKind};
use std::sync::Arc;
use std::time::Duration;

/// Reads an uploaded document in a child process under the `[documents]` memory budget and
/// the `[knowledge]` wall clock.
pub struct DocumentReader {
    sandbox: Sandbox,
    limits: Limits,
    /// OCR of scans (`[knowledge] ocr`); None: scans fail with a French reason.
    ocr: Option<Ocr>,
}

impl DocumentReader {
    pub fn from_config(cfg: &Config) -> Result<Self, DaemonError> {
        let (program, args) = match &cfg.documents.extractor {
            Some(p) => (p.clone(), Vec::new()),
            None => (
                std::env::current_exe().map_err(DaemonError::SelfExe)?,
                vec!["extract-document".to_owned()],
            ),
        };
        Ok(DocumentReader {
            sandbox: Sandbox {
                program,
                args,
                wall: Duration::from_secs(cfg.knowledge.extract_timeout_secs),
                memory_bytes: cfg.documents.memory_mb.saturating_mul(1024 * 1024),
            },
            limits: Limits {
                max_bytes: cfg.knowledge.max_file_bytes(),
                ..Limits::default()
            },
            ocr: cfg.knowledge.ocr.then(|| Ocr {
                language: cfg.knowledge.ocr_language.clone(),
                page_timeout: Duration::from_secs(cfg.knowledge.ocr_page_timeout_secs),
                max_pages: cfg.knowledge.ocr_max_pages,
                memory_bytes: cfg.documents.memory_mb.saturating_mul(1024 * 1024),
                ..Ocr::default()
            }),
        })
    }
}

impl Extractor for DocumentReader {
    fn extract(&self, bytes: &[u8], name: &str) -> Result<Extraction, Refusal> {
        match civia_documents::isolated::extract_paged(
            &self.sandbox,
            bytes,
            Some(name),
            &self.limits,
            self.ocr.as_ref(),
        ) {
            Ok(x) => Ok(Extraction {
                format: x.format.to_string(),
                page_count: x.page_count,
                pages: x
                    .pages
                    .into_iter()
                    .map(|p| PageText {
                        page: p.number,
                        text: p.text,
                    })
                    .collect(),
                ocr_pages: x.ocr_pages,
            }),
            Err(e) => {
                let mut details = e.details();
                details["code"] = e.code().into();
                Err(Refusal {
                    message: e.to_string(),
                    details,
                })
            }
        }
    }
}

/// The embedding worker as the knowledge service's embedder (the model's query and passage
/// prefixes are the supervisor's).
pub struct WorkerEmbedder {
    pub embeddings: EmbedSupervisor,
    pub model_id: String,
}

impl Embedder for WorkerEmbedder {
    fn model(&self) -> String {
        self.model_id.clone()
    }

    fn embed(&self, texts: Vec<String>, role: EmbedRole) -> EmbedFuture<'_> {
        let kind = match role {
            EmbedRole::Query => TextKind::Query,
            EmbedRole::Passage => TextKind::Passage,
        };
        Box::pin(async move {
            self.embeddings
                .embed_texts(kind, &texts)
                .await
                .map(|e| e.vectors)
                .map_err(|e| e.to_string())
        })
    }
}

/// Opens the knowledge service when `[knowledge] enabled` and starts its indexing task.
pub fn start(
    cfg: &Config,
    embedder: Option<Arc<dyn Embedder>>,
) -> Result<Option<Arc<Knowledge>>, DaemonError> {
    if !cfg.knowledge.enabled {
        return Ok(None);
    }
    let k = &cfg.knowledge;
    let settings = KnowledgeSettings {
        chunking: Chunking {
            target_chars: k.chunk_chars,
            overlap_chars: k.chunk_overlap_chars,
        },
        max_file_bytes: k.max_file_bytes(),
        max_queued: k.max_queued,
        max_chunks_per_document: k.max_chunks_per_document,
        ..KnowledgeSettings::default()
    };
    let reader = DocumentReader::from_config(cfg)?;
    match &reader.ocr {
        Some(ocr) => match ocr.check() {
            Ok(()) => log::info!("knowledge: OCR of scans in `{}`", ocr.language),
            Err(e) => log::warn!("knowledge: scans will fail until OCR works: {e}"),
        },
        None => log::info!("knowledge: OCR off ([knowledge] ocr = false)"),
    }
    let service = Knowledge::open(&cfg.knowledge_dir(), settings, Arc::new(reader), embedder)?;
    tokio::spawn(service.clone().run());
    Ok(Some(service))
}
