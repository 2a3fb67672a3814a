//! OpenAI's error object: `{"error": {"message", "type", "param", "code"}}`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use civia_supervisor::GenerationError;
use serde_json::json;

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub code: &'static str,
    pub message: String,
    pub param: Option<String>,
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
            retry_after_secs: None,
        }
    }

    pub fn bad_request(message: impl Into<String>, param: Option<String>) -> Self {
        let mut e = Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "invalid_value",
            message,
        );
        e.param = param;
        e
    }

    pub fn invalid_json(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "invalid_json",
            message,
        )
    }

    pub fn with_param(mut self, param: &str) -> Self {
        if self.param.is_none() {
            self.param = Some(param.to_string());
        }
        self
    }

    pub fn unsupported(param: &str, message: impl Into<String>) -> Self {
        let mut e = Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "unsupported_parameter",
            message,
        );
        e.param = Some(param.to_string());
        e
    }

    pub fn unauthorized(message: &str) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "invalid_api_key",
            message,
        )
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "internal_error",
            message,
        )
    }

    pub fn model_not_found(asked: &str, served: &str) -> Self {
        civia_openai::Error::model_not_found(asked, served).into()
    }

    /// The JSON body, also used as an SSE `data:` line.
    pub fn body(&self) -> serde_json::Value {
        json!({
            "error": {
                "message": self.message,
                "type": self.kind,
                "param": self.param,
                "code": self.code,
            }
        })
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
        let msg = e.to_string();
        let (status, kind, code, retry) = match e {
            GenerationError::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                "model_unavailable",
                Some(2),
            ),
            GenerationError::QueueFull(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                "queue_full",
                Some(5),
            ),
            GenerationError::QueueTimeout(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                "queue_timeout",
                Some(10),
            ),
            GenerationError::WorkerCrashed(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                "runtime_restarted",
                Some(2),
            ),
            GenerationError::ContextOverflow(_) => (
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "context_length_exceeded",
                None,
            ),
            GenerationError::InvalidPrompt(_) => (
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "invalid_prompt",
                None,
            ),
            GenerationError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "generation_failed",
                None,
            ),
        };
        let mut err = Self::new(status, kind, code, msg);
        err.retry_after_secs = retry;
        err
    }
}

impl From<civia_supervisor::SpeechError> for ApiError {
    fn from(e: civia_supervisor::SpeechError) -> Self {
        use civia_ipc::speech::SpeechFailure as F;
        use civia_supervisor::SpeechError as S;
        let bad = |code, message: String| {
            Self::new(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                code,
                message,
            )
        };
        let unavailable = |code, message: String, retry| {
            let mut e = Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                code,
                message,
            );
            e.retry_after_secs = Some(retry);
            e
        };
        match e {
            S::Unavailable(why) => unavailable(
                "speech_unavailable",
                format!("La transcription n'est pas disponible pour le moment ({why}). Réessayez dans un instant."),
                5,
            ),
            S::Busy(n) => unavailable(
                "speech_busy",
                format!("Le service de transcription est occupé ({n} enregistrement(s) en attente). Réessayez plus tard."),
                30,
            ),
            S::WorkerCrashed(why) => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "speech_failed",
                format!(
                    "Le service de transcription s'est arrêté pendant le traitement ({why}) ; il \
                     redémarre. Si cela se reproduit avec ce fichier, il est sans doute endommagé."
                ),
            ),
            S::Job { kind, message } => match kind {
                F::Unsupported => bad(
                    "audio_unsupported",
                    format!(
                        "Format audio non pris en charge ({message}). Formats acceptés : WAV, \
                         MP3, OGG (Vorbis ou Opus), FLAC, M4A/AAC."
                    ),
                ),
                F::Corrupt => bad(
                    "audio_corrupt",
                    format!("Le fichier audio est endommagé ou illisible ({message})."),
                ),
                F::Empty => bad("audio_empty", "Le fichier ne contient aucun son.".into()),
                F::TooLong => bad(
                    "audio_too_long",
                    format!("L'enregistrement est trop long : {message}."),
                ),
                F::InvalidRequest => bad("invalid_value", message),
                F::Cancelled => unavailable("speech_cancelled", message, 1),
                F::Internal => Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    "speech_failed",
                    format!("La transcription a échoué : {message}"),
                ),
            },
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

impl From<civia_audit::AuditUnavailable> for ApiError {
    fn from(_: civia_audit::AuditUnavailable) -> Self {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
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
        let msg = e.to_string();
        let retry = e.retry_after();
        if let A::UnknownModel { asked, served } = e {
            return Self::model_not_found(asked, served);
        }
        let (status, kind, code, param) = match e {
            A::MissingCredentials | A::InvalidKey => (
                StatusCode::UNAUTHORIZED,
                "invalid_request_error",
                "invalid_api_key",
                None,
            ),
            A::RevokedKey => (
                StatusCode::UNAUTHORIZED,
                "invalid_request_error",
                "revoked_api_key",
                None,
            ),
            A::ExpiredKey => (
                StatusCode::UNAUTHORIZED,
                "invalid_request_error",
                "expired_api_key",
                None,
            ),
            A::Disabled => (
                StatusCode::UNAUTHORIZED,
                "invalid_request_error",
                "account_disabled",
                None,
            ),
            A::BadLogin => (
                StatusCode::UNAUTHORIZED,
                "invalid_request_error",
                "invalid_credentials",
                None,
            ),
            A::BadSession => (
                StatusCode::UNAUTHORIZED,
                "invalid_request_error",
                "session_expired",
                None,
            ),
            A::Csrf => (
                StatusCode::FORBIDDEN,
                "permission_error",
                "csrf_failed",
                None,
            ),
            A::Forbidden { .. } => (
                StatusCode::FORBIDDEN,
                "permission_error",
                "permission_denied",
                None,
            ),
            A::ModelScope(_) => (
                StatusCode::FORBIDDEN,
                "permission_error",
                "model_not_allowed",
                Some("model"),
            ),
            A::CharterNotAccepted { .. } => (
                StatusCode::FORBIDDEN,
                "permission_error",
                "charter_not_accepted",
                None,
            ),
            A::BadPairing => (
                StatusCode::FORBIDDEN,
                "permission_error",
                "bad_pairing_code",
                Some("code"),
            ),
            A::AccountLocked { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                "account_locked",
                None,
            ),
            A::AddressBlocked { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                "address_blocked",
                None,
            ),
            A::Quota { what, .. } if what.contains("minute") => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                "rate_limit_exceeded",
                None,
            ),
            A::Quota { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                "daily_quota_exceeded",
                None,
            ),
            A::LastAdmin => (
                StatusCode::CONFLICT,
                "invalid_request_error",
                "last_admin",
                None,
            ),
            A::KeyNotFound(_) => (
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                "key_not_found",
                None,
            ),
            A::LocalAdminCharter => (
                StatusCode::FORBIDDEN,
                "permission_error",
                "permission_denied",
                None,
            ),
            A::Invalid { param, .. } => (
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "invalid_value",
                Some(*param),
            ),
            A::Store(S::NoUser(_)) => (
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                "user_not_found",
                None,
            ),
            A::Store(S::UserExists(_)) => (
                StatusCode::CONFLICT,
                "invalid_request_error",
                "user_exists",
                Some("name"),
            ),
            A::Store(S::BadName(_)) => (
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "invalid_value",
                Some("name"),
            ),
            A::Store(S::BadRole(_)) => (
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "invalid_value",
                Some("role"),
            ),
            A::Store(S::BadService(_)) => (
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "invalid_value",
                Some("service"),
            ),
            A::Store(S::BadKeyName) => (
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "invalid_value",
                Some("name"),
            ),
            A::Store(S::WeakPassword(_)) => (
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "weak_password",
                Some("password"),
            ),
            A::Store(S::NoConversation(_)) => (
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                "conversation_not_found",
                None,
            ),
            A::Store(S::BadCharter) => (
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "invalid_value",
                Some("text"),
            ),
            A::Store(S::StaleCharter { .. }) => (
                StatusCode::CONFLICT,
                "invalid_request_error",
                "charter_changed",
                Some("version"),
            ),
            A::Store(S::BadChannel(_)) => (
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "invalid_value",
                None,
            ),
            A::Store(S::ScrubBusy) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                "store_busy",
                None,
            ),
            A::Store(_) | A::Internal(_) | A::UnknownModel { .. } => {
                log::error!("{msg}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    "internal_error",
                    None,
                )
            }
        };
        let mut err = Self::new(status, kind, code, msg);
        err.param = param.map(str::to_string);
        err.retry_after_secs = retry;
        err
    }
}
