//! OpenAI's error object: `{"error": {"message", "type", "param", "code"}}`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use civia_supervisor::GenerationError;
use civia_update::{ServiceError, UpdateError};
use serde_json::json;

/// The HTTP status and OpenAI error `type` that go together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// 400 `invalid_request_error`
    Invalid,
    /// 401 `invalid_request_error`
    Unauthorized,
    /// 403 `permission_error`
    Forbidden,
    /// 404 `invalid_request_error`
    NotFound,
    /// 409 `invalid_request_error`
    Conflict,
    /// 413 `invalid_request_error`
    TooLarge,
    /// 422 `invalid_request_error`: well-formed, but the box cannot go through with it
    Unprocessable,
    /// 429 `rate_limit_error`
    RateLimited,
    /// 503 `server_error`
    Unavailable,
    /// 500 `server_error`
    Internal,
}

impl Class {
    fn status_and_kind(self) -> (StatusCode, &'static str) {
        match self {
            Class::Invalid => (StatusCode::BAD_REQUEST, "invalid_request_error"),
            Class::Unauthorized => (StatusCode::UNAUTHORIZED, "invalid_request_error"),
            Class::Forbidden => (StatusCode::FORBIDDEN, "permission_error"),
            Class::NotFound => (StatusCode::NOT_FOUND, "invalid_request_error"),
            Class::Conflict => (StatusCode::CONFLICT, "invalid_request_error"),
            Class::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "invalid_request_error"),
            Class::Unprocessable => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_request_error"),
            Class::RateLimited => (StatusCode::TOO_MANY_REQUESTS, "rate_limit_error"),
            Class::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "server_error"),
            Class::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "server_error"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub code: &'static str,
    pub message: String,
    pub param: Option<String>,
    /// Civia's extension: `{"reason", …values}` where a code covers several cases or the
    /// agent's French sentence needs a number (docs/errors.md).
    pub details: Option<Box<serde_json::Value>>,
    pub retry_after_secs: Option<u64>,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        kind: &'static str,
        code: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            kind,
            code,
            message: message.into(),
            param: None,
            details: None,
            retry_after_secs: None,
        }
    }

    /// An error of a [`Class`] (its status and `type`) with a stable `code`.
    pub fn of(class: Class, code: &'static str, message: impl Into<String>) -> Self {
        let (status, kind) = class.status_and_kind();
        Self::new(status, kind, code, message)
    }

    pub fn bad_request(message: impl Into<String>, param: Option<String>) -> Self {
        let mut e = Self::of(Class::Invalid, "invalid_value", message);
        e.param = param;
        e
    }

    pub fn invalid_json(message: impl Into<String>) -> Self {
        Self::of(Class::Invalid, "invalid_json", message)
    }

    pub fn with_param(mut self, param: &str) -> Self {
        if self.param.is_none() {
            self.param = Some(param.to_string());
        }
        self
    }

    /// Adds the `details` object (see docs/errors.md).
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(Box::new(details));
        self
    }

    pub fn unsupported(param: &str, message: impl Into<String>) -> Self {
        let mut e = Self::of(Class::Invalid, "unsupported_parameter", message);
        e.param = Some(param.to_string());
        e
    }

    pub fn unauthorized(message: &str) -> Self {
        Self::of(Class::Unauthorized, "invalid_api_key", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::of(Class::Internal, "internal_error", message)
    }

    pub fn model_not_found(asked: &str, served: &str) -> Self {
        civia_openai::Error::model_not_found(asked, served).into()
    }

    /// The JSON body, also used as an SSE `data:` line.
    pub fn body(&self) -> serde_json::Value {
        let mut body = json!({
            "error": {
                "message": self.message,
                "type": self.kind,
                "param": self.param,
                "code": self.code,
            }
        });
        if let Some(d) = &self.details {
            body["error"]["details"] = (**d).clone();
        }
        body
    }
}

/// A request the OpenAI protocol refuses: same status, `type`, `code`, `param` and message.
impl From<civia_openai::Error> for ApiError {
    fn from(e: civia_openai::Error) -> Self {
        let status = match e.status() {
            civia_openai::Status::BadRequest => StatusCode::BAD_REQUEST,
            civia_openai::Status::NotFound => StatusCode::NOT_FOUND,
        };
        Self::new(status, e.kind(), e.code(), e.to_string()).with_param(e.param())
    }
}

impl From<GenerationError> for ApiError {
    fn from(e: GenerationError) -> Self {
        use GenerationError as G;
        let (class, code, retry) = match e {
            G::Unavailable(_) => (Class::Unavailable, "model_unavailable", Some(2)),
            G::QueueFull(_) => (Class::RateLimited, "queue_full", Some(5)),
            G::QueueTimeout(_) => (Class::Unavailable, "queue_timeout", Some(10)),
            G::WorkerCrashed(_) => (Class::Unavailable, "runtime_restarted", Some(2)),
            G::ContextOverflow(_) => (Class::Invalid, "context_length_exceeded", None),
            G::InvalidPrompt(_) => (Class::Invalid, "invalid_prompt", None),
            G::InvalidGrammar(_) => (Class::Invalid, "invalid_value", None),
            G::Internal(_) => (Class::Internal, "generation_failed", None),
        };
        let grammar = matches!(e, G::InvalidGrammar(_));
        let mut err = Self::of(class, code, e.to_string());
        err.retry_after_secs = retry;
        if grammar {
            err.param = Some("response_format".into());
        }
        err
    }
}

impl From<civia_supervisor::SpeechError> for ApiError {
    fn from(e: civia_supervisor::SpeechError) -> Self {
        use civia_ipc::speech::SpeechFailure as F;
        use civia_supervisor::SpeechError as S;
        let bad = |code, message: String| Self::of(Class::Invalid, code, message);
        let unavailable = |code, message: String, retry| {
            let mut e = Self::of(Class::Unavailable, code, message);
            e.retry_after_secs = Some(retry);
            e
        };
        match e {
            S::Unavailable(why) => unavailable(
                "speech_unavailable",
                format!("transcription is unavailable for now ({why})"),
                5,
            ),
            S::Busy(n) => unavailable(
                "speech_busy",
                format!("the transcription service is busy ({n} recordings waiting)"),
                30,
            )
            .with_details(serde_json::json!({"reason": "busy", "waiting": n})),
            S::WorkerCrashed(why) => Self::of(
                Class::Internal,
                "speech_failed",
                format!(
                    "the transcription service stopped during the work ({why}) and restarts; \
                     if this happens again with this file, it is probably damaged"
                ),
            ),
            S::Job { kind, message } => match kind {
                F::Unsupported => bad(
                    "audio_unsupported",
                    format!(
                        "unsupported audio format ({message}); accepted: WAV, MP3, OGG (Vorbis \
                         or Opus), FLAC, M4A/AAC"
                    ),
                ),
                F::Corrupt => bad(
                    "audio_corrupt",
                    format!("the audio file is damaged or unreadable ({message})"),
                ),
                F::Empty => bad("audio_empty", "the file holds no sound".into()),
                F::TooLong => bad(
                    "audio_too_long",
                    format!("the recording is too long: {message}"),
                ),
                F::InvalidRequest => bad("invalid_value", message),
                F::Cancelled => unavailable("speech_cancelled", message, 1),
                F::Internal => Self::of(
                    Class::Internal,
                    "speech_failed",
                    format!("the transcription failed: {message}"),
                ),
            },
        }
    }
}

impl From<civia_supervisor::EmbedError> for ApiError {
    fn from(e: civia_supervisor::EmbedError) -> Self {
        use civia_supervisor::EmbedError as E;
        let message = e.to_string();
        let unavailable = |code, retry| {
            let mut err = Self::of(Class::Unavailable, code, message.clone());
            err.retry_after_secs = Some(retry);
            err
        };
        match e {
            E::Unavailable(_) => unavailable("embeddings_unavailable", 5),
            E::Busy(_) => unavailable("embeddings_busy", 5),
            E::WorkerCrashed(_) => unavailable("embeddings_restarted", 2),
            E::TooManyInputs { .. } | E::InvalidInput { .. } => {
                Self::bad_request(message, Some("input".into()))
            }
            E::InputTooLong { .. } => {
                Self::of(Class::Invalid, "context_length_exceeded", message).with_param("input")
            }
            E::Internal(_) => Self::of(Class::Internal, "embeddings_failed", message),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, Json(self.body())).into_response();
        if let Some(secs) = self.retry_after_secs {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        resp
    }
}

/// An update refused (400) or failed (500), with the updater's code.
impl From<UpdateError> for ApiError {
    fn from(e: UpdateError) -> Self {
        let (status, kind) = if e.is_refusal() {
            (StatusCode::BAD_REQUEST, "invalid_request_error")
        } else {
            (StatusCode::INTERNAL_SERVER_ERROR, "server_error")
        };
        ApiError::new(status, kind, e.code(), e.to_string())
    }
}

/// The update service's refusals: 409 with their code (updates off, one in progress, the
/// model does not match), 422 when the new model fails to load.
impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        let code = match e {
            ServiceError::Update(u) => return u.into(),
            ServiceError::Task(_) => return ApiError::internal(e.to_string()),
            ServiceError::UpdatesOff(_) => "updates_off",
            ServiceError::SystemUpdatesOff(_) => "system_updates_off",
            ServiceError::Busy => "update_in_progress",
            ServiceError::ModelMismatch { .. } => "model_mismatch",
            ServiceError::ModelLoadFailed { .. } => {
                return ApiError::of(Class::Unprocessable, "model_load_failed", e.to_string())
            }
        };
        ApiError::of(Class::Conflict, code, e.to_string())
    }
}

/// The backups' refusals (admin plane): what the administrator must do first is a 409, a
/// failure of the box a 500; `details.reason` names the case.
impl From<civia_backup::BackupError> for ApiError {
    fn from(e: civia_backup::BackupError) -> Self {
        use civia_backup::BackupError as B;
        let (class, code) = match &e {
            B::Busy => (Class::Conflict, "backup_running"),
            B::NoKey => (Class::Conflict, "backup_no_key"),
            B::KeyExists(_) => (Class::Conflict, "backup_key_exists"),
            B::NoDestination => (Class::Conflict, "backup_no_destination"),
            B::Sealed(_) | B::Outside { .. } => (Class::Conflict, "backup_not_covered"),
            B::BadRecipient(_) => (Class::Conflict, "backup_no_key"),
            B::NoSmbPassword | B::SmbPasswordUnreadable => {
                (Class::Conflict, "backup_no_smb_password")
            }
            B::BadSmbPassword => (Class::Invalid, "invalid_value"),
            _ => (Class::Internal, "backup_failed"),
        };
        Self::of(class, code, e.to_string()).with_details(json!({"reason": e.reason()}))
    }
}

impl From<civia_audit::AuditUnavailable> for ApiError {
    fn from(_: civia_audit::AuditUnavailable) -> Self {
        ApiError::of(
            Class::Internal,
            "audit_unavailable",
            "The audit log cannot be written: the request is refused (details in the journal).",
        )
    }
}

impl From<civia_auth::AuthError> for ApiError {
    fn from(e: civia_auth::AuthError) -> Self {
        Self::from(&e)
    }
}

/// The knowledge service's refusals: the class, a stable code, the English message and,
/// where the code alone does not say enough, the details.
impl From<civia_knowledge::KnowledgeError> for ApiError {
    fn from(e: civia_knowledge::KnowledgeError) -> Self {
        use civia_knowledge::KnowledgeError as K;
        let (message, details) = (e.to_string(), e.details());
        let mut err = match e {
            K::CollectionNotFound(_) => Self::of(Class::NotFound, "collection_not_found", message),
            K::DocumentNotFound(_) => Self::of(Class::NotFound, "document_not_found", message),
            K::Forbidden(_) => Self::of(Class::Forbidden, "permission_denied", message),
            K::Invalid { .. } => Self::of(Class::Invalid, "invalid_value", message),
            K::Duplicate(_) => Self::of(Class::Conflict, "duplicate_document", message),
            K::QueueFull(_) => {
                let mut e = Self::of(Class::Unavailable, "knowledge_busy", message);
                e.retry_after_secs = Some(30);
                e
            }
            K::EmbeddingUnavailable(why) => {
                log::warn!("knowledge: embeddings unavailable: {why}");
                let mut e = Self::of(
                    Class::Unavailable,
                    "embedding_unavailable",
                    "the embedding model is not loaded: search by meaning is unavailable",
                );
                e.retry_after_secs = Some(10);
                e
            }
            other => {
                log::error!("knowledge: {other}");
                Self::internal("internal error of the knowledge service (details in the journal)")
            }
        };
        err.details = details.map(Box::new);
        err
    }
}

/// What a metering failure answers: the audit log cannot be written.
impl From<civia_metering::Error> for ApiError {
    fn from(e: civia_metering::Error) -> Self {
        match e {
            civia_metering::Error::Audit(e) => e.into(),
        }
    }
}

impl From<&civia_auth::AuthError> for ApiError {
    fn from(e: &civia_auth::AuthError) -> Self {
        use civia_auth::{AuthError as A, StoreError as S};
        use Class::*;
        if let A::UnknownModel { asked, served } = e {
            return Self::model_not_found(asked, served);
        }
        let (class, code, param) = match e {
            A::MissingCredentials | A::InvalidKey => (Unauthorized, "invalid_api_key", None),
            A::RevokedKey => (Unauthorized, "revoked_api_key", None),
            A::ExpiredKey => (Unauthorized, "expired_api_key", None),
            A::Disabled => (Unauthorized, "account_disabled", None),
            A::BadLogin => (Unauthorized, "invalid_credentials", None),
            A::BadSession => (Unauthorized, "session_expired", None),
            A::Csrf => (Forbidden, "csrf_failed", None),
            A::Forbidden { .. } | A::LocalAdminCharter => (Forbidden, "permission_denied", None),
            A::ModelScope(_) => (Forbidden, "model_not_allowed", Some("model")),
            A::CharterNotAccepted { .. } => (Forbidden, "charter_not_accepted", None),
            A::NotOwnCredential => (Forbidden, "own_credentials_required", None),
            A::WrongPassword => (Unauthorized, "wrong_password", None),
            A::BadPairing => (Forbidden, "bad_pairing_code", Some("code")),
            A::AccountLocked { .. } => (RateLimited, "account_locked", None),
            A::AddressBlocked { .. } => (RateLimited, "address_blocked", None),
            A::Quota { what, .. } if what.contains("minute") => {
                (RateLimited, "rate_limit_exceeded", None)
            }
            A::Quota { what, .. } if what.contains("concurrent") => {
                (RateLimited, "too_many_requests_in_flight", None)
            }
            A::Quota { .. } => (RateLimited, "daily_quota_exceeded", None),
            A::LastAdmin => (Conflict, "last_admin", None),
            A::KeyNotFound(_) => (NotFound, "key_not_found", None),
            A::Invalid { param, .. } => (Invalid, "invalid_value", Some(*param)),
            A::Store(S::NoUser(_)) => (NotFound, "user_not_found", None),
            A::Store(S::UserExists(_)) => (Conflict, "user_exists", Some("name")),
            A::Store(S::BadName(_) | S::BadKeyName) => (Invalid, "invalid_value", Some("name")),
            A::Store(S::BadRole(_)) => (Invalid, "invalid_value", Some("role")),
            A::Store(S::BadService(_)) => (Invalid, "invalid_value", Some("service")),
            A::Store(S::WeakPassword(_)) => (Invalid, "weak_password", Some("password")),
            A::Store(S::NoConversation(_)) => (NotFound, "conversation_not_found", None),
            A::Store(S::BadCharter) => (Invalid, "invalid_value", Some("text")),
            A::Store(S::StaleCharter { .. }) => (Conflict, "charter_changed", Some("version")),
            A::Store(S::BadChannel(_)) => (Invalid, "invalid_value", None),
            A::Store(S::ScrubBusy) => (Unavailable, "store_busy", None),
            A::Store(_) | A::Internal(_) | A::UnknownModel { .. } => {
                log::error!("{e}");
                (Internal, "internal_error", None)
            }
        };
        let mut err = Self::of(class, code, e.to_string());
        err.param = param.map(str::to_string);
        err.retry_after_secs = e.retry_after();
        err
    }
}
