//! What every handler is given: the services the daemon composed, and the few facts about
//! them that several handlers answer alike.

use crate::error::Class;
use crate::ApiError;
use axum::http::Extensions;
use civia_auth::{Auth, Principal};
use civia_config::ApiConfig;
use civia_supervisor::{EmbedSupervisor, Phase, SpeechSupervisor, Supervisor};
use serde_json::{json, Value};
use std::sync::Arc;

/// Everything the handlers need.
pub struct ApiState {
    pub supervisor: Supervisor,
    /// The speech worker (meeting transcription); None when `[speech] path` is not set.
    pub speech: Option<SpeechSupervisor>,
    /// The embedding worker and service (`/v1/embeddings`); None when `[embeddings] path`
    /// is not set.
    pub embeddings: Option<EmbedSupervisor>,
    /// The id clients name; from the configuration, known before the model loads.
    pub model_id: String,
    pub limits: ApiConfig,
    /// The whole configuration (history, charter, guard, commune; compliance documents).
    pub config: Arc<civia_config::Config>,
    /// Stops answers that repeat the configured system prompt; None: no prompt or filter off.
    pub leak_guard: Option<Arc<civia_guard::LeakGuard>>,
    /// Accounts, keys, sessions, quotas, usage.
    pub auth: Arc<Auth>,
    /// Whether `/admin/*` is served by the API listener (false when `[admin] listen` is set).
    pub admin_on_api: bool,
    /// Signed updates (system and model bundles); None: not configured.
    pub updates: Option<Arc<civia_update::Updates>>,
    /// The commune's documents as knowledge; None when `[knowledge] enabled = false`.
    pub knowledge: Option<Arc<civia_knowledge::Knowledge>>,
    /// The audit trail; None only in unit setups (civiad always opens it).
    pub audit: Option<Arc<civia_audit::Audit>>,
    /// The box's backups (`/admin/backup`); None only in unit setups.
    pub backups: Option<Arc<civia_backup::Backups>>,
    /// Unix time the daemon started (the model's `created`).
    pub started_at: u64,
    /// The box CA certificate (PEM), served at `/ca.crt`.
    pub ca_pem: String,
    /// The CA's fingerprint and how the box's secrets are protected, for `/admin/system`
    /// and the console.
    pub trust: TrustFacts,
}

/// What an administrator checks before trusting the box CA.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TrustFacts {
    /// SHA-256 of the CA certificate (`AB:CD:…`).
    pub ca_fingerprint_sha256: String,
    /// End of the CA's validity (RFC 3339).
    pub ca_not_after: String,
    /// `tpm` (sealed) or `trial-files` (plain files, no TPM).
    pub secrets_protection: String,
    /// A sentence for the administrator.
    pub secrets_message: String,
}

impl ApiState {
    /// The knowledge service, or the refusal of a box where it is off.
    pub fn knowledge(&self) -> Result<&Arc<civia_knowledge::Knowledge>, ApiError> {
        self.knowledge.as_ref().ok_or_else(|| {
            ApiError::of(
                Class::Unavailable,
                "knowledge_unavailable",
                "the knowledge base is not enabled on this box",
            )
        })
    }

    /// The language model, then the speech model when transcription is on, then the
    /// embedding model when embeddings are on.
    pub fn model_ids(&self) -> Vec<String> {
        let speech = self.speech.as_ref().and(self.config.speech_model_id());
        std::iter::once(self.model_id.clone())
            .chain(speech)
            .chain(self.embeddings_model_id())
            .collect()
    }

    /// The embedding model's id, when embeddings are on.
    pub fn embeddings_model_id(&self) -> Option<String> {
        self.embeddings
            .as_ref()
            .and(self.config.embeddings_model_id())
    }

    /// What `/health` and `/admin/status` say about embeddings (null when they are off).
    pub fn embeddings_status(&self) -> Value {
        let (Some(e), Some(id)) = (&self.embeddings, self.embeddings_model_id()) else {
            return Value::Null;
        };
        let s = e.status();
        let m = s.model.as_ref();
        json!({
            "id": id,
            "loaded": s.phase == Phase::Ready,
            "phase": s.phase.as_str(),
            "restarts": s.restarts,
            "last_error": s.last_error,
            "sha256": m.map(|m| m.sha256.clone()),
            "dimension": m.map(|m| m.dimension),
            "max_tokens": m.map(|m| m.max_tokens),
            "pooling": m.map(|m| m.pooling),
            "gpu_layers": m.map(|m| m.gpu_layers),
            "jobs": s.jobs,
            "queue_depth": self.config.embeddings.queue_depth,
        })
    }

    /// What `/health` and `/admin/status` say about transcription (null when it is off).
    pub fn speech_status(&self) -> Value {
        let (Some(speech), Some(id)) = (&self.speech, self.config.speech_model_id()) else {
            return Value::Null;
        };
        let s = speech.status();
        json!({
            "id": id,
            "loaded": s.phase == civia_supervisor::Phase::Ready,
            "phase": s.phase.as_str(),
            "restarts": s.restarts,
            "last_error": s.last_error,
            "sha256": s.model.as_ref().map(|m| m.sha256.clone()),
            "kind": s.model.as_ref().map(|m| m.kind.clone()),
            "gpu": s.model.as_ref().map(|m| m.gpu),
            "jobs": s.jobs,
            "queue_depth": self.config.speech.queue_depth,
        })
    }

    /// An administration event by the caller (`admin.*`, `auth.*`, `dsr.*`), the target user
    /// named by pseudonym only.
    pub async fn audit_admin(
        &self,
        ext: &Extensions,
        name: &str,
        target: Option<i64>,
        detail: Value,
    ) -> Result<(), ApiError> {
        match &self.audit {
            Some(a) => {
                let who = ext.get::<Principal>().map(actor);
                Ok(a.record_admin(name, who, target, detail).await?)
            }
            None => Ok(()),
        }
    }

    /// The loaded model's dossier, checked against the loaded weights (409 when it does not
    /// match, 503 before the model is loaded).
    pub async fn verified_dossier(
        &self,
    ) -> Result<(civia_compliance::dossier::Dossier, civia_ipc::ModelInfo), ApiError> {
        use civia_compliance::dossier::DossierError;
        let status = self.supervisor.status();
        let Some(info) = status.model.filter(|_| status.phase == Phase::Ready) else {
            return Err(ApiError::of(
                Class::Unavailable,
                "model_unavailable",
                "The model is not loaded yet: its dossier is checked against the loaded weights.",
            ));
        };
        // The dossier is a file (up to 1 MiB): read off the async executor.
        let weights = std::path::PathBuf::from(self.supervisor.load_spec().path);
        let sha256 = info.sha256.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            civia_compliance::dossier::load_verified(&weights, &sha256)
        })
        .await
        .map_err(|e| ApiError::internal(format!("dossier task failed: {e}")))?;
        let dossier = loaded.map_err(|e| {
            let (class, code) = match &e {
                DossierError::NotFound(_) => (Class::NotFound, "dossier_not_found"),
                DossierError::Invalid { path, message } => {
                    log::error!("dossier {}: {message}", path.display());
                    (Class::Conflict, "dossier_invalid")
                }
                DossierError::Mismatch { .. } => (Class::Conflict, "dossier_mismatch"),
            };
            ApiError::of(class, code, e.to_string())
        })?;
        Ok((dossier, info))
    }
}

/// A caller as the audit trail names it.
pub fn actor(p: &Principal) -> civia_audit::Actor<'_> {
    civia_audit::Actor {
        user_id: p.user().map(|u| u.id),
        role: p.role().as_str(),
    }
}
