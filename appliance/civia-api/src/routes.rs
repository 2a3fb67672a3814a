//! The routes: which URL reaches which handler behind which middleware (authentication,
//! metering), and what every answer goes through (fallbacks, panic guard, request log).

use crate::error::Class;
use crate::handlers::{
    admin, audio, audit, charter, compliance, documents, health, meetings, models, openai, privacy,
    session, system, updates, web,
};
use crate::{auth, metering, ApiError, ApiState};
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use std::sync::Arc;
use std::time::Instant;

/// The API listener's router: `/v1`, `/auth`, health, metrics, and `/admin` unless the
/// admin plane has its own listener.
pub fn router(state: Arc<ApiState>) -> Router {
    let generate = Router::new()
        .route("/chat/completions", post(openai::chat_completions))
        .route("/completions", post(openai::completions))
        .route("/audio/transcriptions", post(audio::transcriptions))
        .route("/meetings/minutes", post(meetings::minutes))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            metering::meter,
        ));
    let v1 = Router::new()
        .route("/models", get(models::list_models))
        .route("/models/{id}", get(models::get_model))
        .route("/models/{id}/dossier", get(models::model_dossier))
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
        .route("/me", get(session::me))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_auth,
        ))
        .route("/login", post(session::login))
        .route("/logout", post(session::logout));
    let mut app = Router::new()
        .route("/health", get(health::health))
        .route("/ready", get(health::ready))
        .route("/openapi.json", get(health::openapi))
        .route("/metrics", get(health::metrics))
        .route("/ca.crt", get(health::ca_certificate))
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
        .route("/health", get(health::health))
        .route("/ca.crt", get(health::ca_certificate))
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
    ApiError::of(Class::NotFound, "not_found", "Unknown URL.")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "invalid_request_error",
        "method_not_allowed",
        "This method is not allowed on this URL.",
    )
}
