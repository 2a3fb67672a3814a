//! The HTTP API of civiad: OpenAI-compatible `/v1/*` routes and `/health`, `/ready`.
//!
//! Owns: request parsing and validation (bounded by `[api]` limits, clear OpenAI error
//! objects for every refusal), translation to runtime prompts and sampling parameters,
//! non-streaming and SSE streaming responses, authentication (API keys, session cookies with
//! CSRF tokens, the local admin socket) and quota admission through `civia-auth`, a usage row
//! per model request, the admin plane (`/admin/*`) and the web session routes (`/auth/*`).
//!
//! Must never: panic on input, answer 500 for a client's mistake, silently change the meaning
//! of a request it cannot honour (n > 1, tools, logprobs: 400), log request or response
//! text, or talk to the model other than through `civia-supervisor`.

mod admin;
mod audio;
pub mod audit;
mod auth;
mod charter;
mod compliance;
mod documents;
mod error;
mod host;
mod meetings;
mod openai;
pub mod privacy;
mod system;
mod updates;
mod web;

pub use auth::{CSRF_HEADER, SESSION_COOKIE};
pub use civia_auth::{Auth, Principal};
pub use error::ApiError;
pub use updates::{TrialOutcome, Updates};

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use civia_config::ApiConfig;
use civia_supervisor::{Phase, SpeechSupervisor, Supervisor};
use http_body_util::BodyExt;
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;

/// Everything the handlers need.
pub struct ApiState {
    pub supervisor: Supervisor,
    /// The speech worker (meeting transcription); None when `[speech] path` is not set.
    pub speech: Option<SpeechSupervisor>,
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
    pub updates: Option<Arc<Updates>>,
    /// The audit trail; None only in unit setups (civiad always opens it).
    pub audit: Option<Arc<audit::Audit>>,
    /// Unix time the daemon started (the model's `created`).
    pub started_at: u64,
    /// The box CA certificate (PEM), served at `/ca.crt`.
    pub ca_pem: String,
}

/// The API listener's router: `/v1`, `/auth`, health, metrics, and `/admin` unless the
/// admin plane has its own listener.
pub fn router(state: Arc<ApiState>) -> Router {
    let generate = Router::new()
        .route("/chat/completions", post(openai::chat_completions))
        .route("/completions", post(openai::completions))
        .route("/audio/transcriptions", post(audio::transcriptions))
        .route("/meetings/minutes", post(meetings::minutes))
        .route_layer(middleware::from_fn_with_state(state.clone(), auth::meter));
    let v1 = Router::new()
        .route("/models", get(list_models))
        .route("/models/{id}", get(get_model))
        .route("/models/{id}/dossier", get(model_dossier))
        .route(
            "/conversations",
            get(privacy::list_conversations).delete(privacy::delete_history),
        )
        .route(
            "/conversations/{id}",
            get(privacy::get_conversation).delete(privacy::delete_conversation),
        )
        .route("/me/export", get(privacy::export_mine))
        .route("/documents", post(documents::extract))
        .route("/exports/{format}", post(documents::export))
        .route("/charter", get(charter::get))
        .route("/charter/accept", post(charter::accept))
        .merge(generate)
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_auth,
        ));
    let session = Router::new()
        .route("/me", get(admin::me))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_auth,
        ))
        .route("/login", post(admin::login))
        .route("/logout", post(admin::logout));
    let mut app = Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/openapi.json", get(openapi))
        .route("/metrics", get(metrics))
        .route("/ca.crt", get(ca_certificate))
        .route("/", get(web::root))
        .route("/app/", get(web::index))
        .route("/app/{*path}", get(web::asset))
        .nest("/v1", v1)
        .nest("/auth", session);
    if state.admin_on_api {
        app = app.nest("/admin", admin_routes(&state));
    }
    finish(app, state)
}

/// The admin plane alone, for `[admin] listen` and the CLI's Unix socket.
pub fn admin_router(state: Arc<ApiState>) -> Router {
    let app = Router::new()
        .route("/health", get(health))
        .route("/ca.crt", get(ca_certificate))
        .nest("/admin", admin_routes(&state));
    finish(app, state)
}

fn admin_routes(state: &Arc<ApiState>) -> Router<Arc<ApiState>> {
    Router::new()
        .route("/users", get(admin::list_users).post(admin::add_user))
        .route(
            "/users/{name}",
            get(admin::get_user)
                .patch(admin::patch_user)
                .delete(admin::delete_user),
        )
        .route(
            "/users/{name}/quota",
            get(admin::get_quota).put(admin::put_quota),
        )
        .route("/keys", get(admin::list_keys).post(admin::create_key))
        .route("/keys/{id}", delete(admin::revoke_key))
        .route("/usage", get(admin::usage))
        .route("/status", get(admin::status))
        .route("/system", get(system::facts))
        .route("/system/egress-probe", post(system::egress_probe))
        .route("/system/memory-bandwidth", post(system::memory_bandwidth))
        .route("/users/{name}/data", get(privacy::dsr_export))
        .route("/users/{name}/erase", post(privacy::dsr_erase))
        .route("/charter", get(charter::get).put(charter::put))
        .route("/charter/register", get(charter::register))
        .route("/compliance/{kind}", get(compliance::document))
        .route("/audit/verify", get(audit::verify))
        .route("/audit/export", get(audit::export))
        .route("/updates", get(updates::status))
        .route("/updates/system", post(updates::upload_system))
        .route("/updates/model", post(updates::upload_model))
        .route("/updates/install-path", post(updates::install_path))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_auth,
        ))
        .route("/pair", post(admin::pair))
}

/// Fallbacks, body limit, panic guard and request log.
fn finish(app: Router<Arc<ApiState>>, state: Arc<ApiState>) -> Router {
    app.fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Bodies are limited by `read_body`, which answers 413 the way clients can read.
        .layer(DefaultBodyLimit::disable())
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(on_panic))
        .layer(middleware::from_fn(log_request))
        .with_state(state)
}

/// The OpenAPI description of this API, served at `/openapi.json`.
pub const OPENAPI_JSON: &str = include_str!("../openapi.json");

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON)
}

async fn log_request(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let t0 = Instant::now();
    let resp = next.run(req).await;
    log::info!(
        "{method} {path} -> {} ({} ms)",
        resp.status().as_u16(),
        t0.elapsed().as_millis()
    );
    resp
}

fn on_panic(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    log::error!("a request handler panicked; answered 500");
    ApiError::internal("internal error while handling the request").into_response()
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        "not_found",
        "Unknown URL.",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "invalid_request_error",
        "method_not_allowed",
        "This method is not allowed on this URL.",
    )
}

fn model_object(st: &ApiState, id: &str) -> serde_json::Value {
    json!({
        "id": id,
        "object": "model",
        "created": st.started_at,
        "owned_by": "civia",
    })
}

/// The language model, then the speech model when transcription is on.
pub(crate) fn model_ids(st: &ApiState) -> Vec<String> {
    let speech = st.speech.as_ref().and(st.config.speech_model_id());
    std::iter::once(st.model_id.clone()).chain(speech).collect()
}

async fn list_models(State(st): State<Arc<ApiState>>) -> Json<serde_json::Value> {
    let data: Vec<_> = model_ids(&st)
        .iter()
        .map(|id| model_object(&st, id))
        .collect();
    Json(json!({ "object": "list", "data": data }))
}

async fn get_model(State(st): State<Arc<ApiState>>, Path(id): Path<String>) -> Response {
    if model_ids(&st).contains(&id) {
        Json(model_object(&st, &id)).into_response()
    } else {
        ApiError::model_not_found(&id, &st.model_id).into_response()
    }
}

/// Largest dossier file read.
const MAX_DOSSIER_BYTES: u64 = 1 << 20;

/// The model's dossier (AI Act Annex XII): the description next to the weights
/// (`<stem>.dossier.json`, or `dossier.json` of a model bundle), checked against the hash of
/// the weights actually loaded, plus what the runtime measured.
async fn model_dossier(State(st): State<Arc<ApiState>>, Path(id): Path<String>) -> Response {
    if id != st.model_id {
        return ApiError::model_not_found(&id, &st.model_id).into_response();
    }
    let (dossier, info) = match verified_dossier(&st) {
        Ok(d) => d,
        Err(e) => return e.into_response(),
    };
    Json(json!({
        "object": "model.dossier",
        "model": st.model_id,
        "verified": true,
        "dossier": dossier,
        "measured": {
            "sha256": info.sha256,
            "size_bytes": info.size_bytes,
            "architecture": info.architecture,
            "parameters": info.n_params,
            "context_length_train": info.n_ctx_train,
            "context_length": info.n_ctx,
        },
    }))
    .into_response()
}

/// The loaded model's dossier (next to its file), checked against the loaded weights.
pub(crate) fn verified_dossier(
    st: &ApiState,
) -> Result<
    (
        serde_json::Map<String, serde_json::Value>,
        civia_ipc::ModelInfo,
    ),
    ApiError,
> {
    use std::io::Read;
    let status = st.supervisor.status();
    let Some(info) = status.model.filter(|_| status.phase == Phase::Ready) else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            "model_unavailable",
            "The model is not loaded yet: its dossier is checked against the loaded weights.",
        ));
    };
    let weights = std::path::PathBuf::from(st.supervisor.load_spec().path);
    let stem = weights
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let candidates = [
        weights.with_file_name(format!("{stem}.dossier.json")),
        weights.with_file_name("dossier.json"),
    ];
    let Some(path) = candidates.iter().find(|p| p.is_file()) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "dossier_not_found",
            format!(
                "No dossier next to the model file ({}).",
                candidates[0].display()
            ),
        ));
    };
    let mut text = String::new();
    let read =
        std::fs::File::open(path).and_then(|f| f.take(MAX_DOSSIER_BYTES).read_to_string(&mut text));
    let dossier = read
        .map_err(|e| e.to_string())
        .and_then(|_| {
            serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&text)
                .map_err(|e| e.to_string())
        })
        .map_err(|e| {
            log::error!("dossier {}: {e}", path.display());
            ApiError::new(
                StatusCode::CONFLICT,
                "invalid_request_error",
                "dossier_invalid",
                format!("The dossier {} is not a JSON object: {e}", path.display()),
            )
        })?;
    if dossier.get("sha256").and_then(|v| v.as_str()) != Some(info.sha256.as_str()) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "invalid_request_error",
            "dossier_mismatch",
            format!(
                "The dossier {} describes other weights than the loaded ones (sha256 {}).",
                path.display(),
                info.sha256
            ),
        ));
    }
    Ok((dossier, info))
}

/// The box CA, for agents' browsers and programs to trust the box (no authentication).
async fn ca_certificate(State(st): State<Arc<ApiState>>) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "application/x-pem-file"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"civia-ca.crt\"",
            ),
        ],
        st.ca_pem.clone(),
    )
}

async fn metrics(State(st): State<Arc<ApiState>>) -> impl IntoResponse {
    let s = st.supervisor.status();
    let text = st
        .supervisor
        .metrics()
        .render(s.restarts, s.phase == Phase::Ready);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
}

async fn health(State(st): State<Arc<ApiState>>) -> Json<serde_json::Value> {
    let s = st.supervisor.status();
    Json(json!({
        "status": "ok",
        "worker": {
            "phase": s.phase.as_str(),
            "restarts": s.restarts,
            "last_error": s.last_error,
        },
        "model": {
            "id": st.model_id,
            "loaded": s.phase == Phase::Ready,
            "sha256": s.model.as_ref().map(|m| m.sha256.clone()),
            "context_length": s.model.as_ref().map(|m| m.n_ctx),
            "chat_template": s.model.as_ref().map(|m| m.template),
        },
        "speech": audio::status_json(&st),
    }))
}

async fn ready(State(st): State<Arc<ApiState>>) -> Response {
    let s = st.supervisor.status();
    if s.phase == Phase::Ready {
        Json(json!({ "status": "ready", "model": st.model_id })).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "status": "not_ready",
                "phase": s.phase.as_str(),
                "last_error": s.last_error,
            })),
        )
            .into_response()
    }
}

/// How much of an oversized body is read and thrown away before answering 413, so that the
/// client finishes sending and reads the answer instead of a broken pipe (lingering close).
pub(crate) const OVERSIZE_DRAIN_BYTES: usize = 64 * 1024 * 1024;
pub(crate) const OVERSIZE_DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(10);

/// Reads a JSON request body with clear errors: 413 when larger than `limit`, 400 when empty
/// or not UTF-8.
async fn read_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let buf = read_bytes(body, limit).await?;
    if buf.is_empty() {
        return Err(ApiError::invalid_json(
            "The request body is empty: send a JSON object.",
        ));
    }
    if std::str::from_utf8(&buf).is_err() {
        return Err(ApiError::invalid_json(
            "The request body is not valid UTF-8.",
        ));
    }
    Ok(buf)
}

/// Reads a request body of any content: 413 when larger than `limit` (after draining a
/// bounded amount, so that the client reads the answer).
async fn read_bytes(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            "request_too_large",
            format!("The request body exceeds the limit of {limit} bytes."),
        )
    };
    let mut body = body;
    let mut buf = Vec::new();
    let mut total = 0usize;
    let drain_until = Instant::now() + OVERSIZE_DRAIN_TIME;
    loop {
        let frame = if total > limit {
            if total > OVERSIZE_DRAIN_BYTES {
                return Err(too_large());
            }
            match tokio::time::timeout_at(drain_until.into(), body.frame()).await {
                Ok(f) => f,
                Err(_) => return Err(too_large()),
            }
        } else {
            body.frame().await
        };
        let Some(frame) = frame else { break };
        let frame = frame.map_err(|e| {
            ApiError::bad_request(format!("Cannot read the request body: {e}"), None)
        })?;
        if let Ok(data) = frame.into_data() {
            total = total.saturating_add(data.len());
            if total <= limit {
                buf.extend_from_slice(&data);
            }
        }
    }
    if total > limit {
        return Err(too_large());
    }
    Ok(Bytes::from(buf))
}

/// Parses JSON into `T`, naming the offending field (400 `invalid_value`) or the syntax
/// error (400 `invalid_json`). Unknown fields are ignored.
fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_data() && path == "." {
            ApiError::bad_request(
                format!("The request body must be a JSON object: {inner}"),
                None,
            )
        } else if inner.is_data() {
            ApiError::bad_request(format!("Invalid value for `{path}`: {inner}"), Some(path))
        } else {
            ApiError::invalid_json(format!("The request body is not valid JSON: {inner}"))
        }
    })
}
