//! The routes: which URL reaches which handler behind which middleware (authentication,
//! metering), and what every answer goes through (fallbacks, panic guard, request log).

use crate::error::Class;
use crate::handlers::{
    audio, charter, documents, embeddings, health, knowledge, meetings, models, openai, privacy,
    session, web,
};
use crate::{auth, metering, ApiError, ApiState};
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use std::sync::Arc;
use std::time::Instant;

/// The API listener's router: `/v1`, `/auth`, health, metrics, OpenAPI, the web app, and
/// `admin` (the admin plane's routes, `civia_admin_api::routes`) nested under `/admin` when
/// given: the caller gives it when the admin plane has no listener of its own
/// ([`ApiState::admin_on_api`]).
pub fn router(state: Arc<ApiState>, admin: Option<Router<Arc<ApiState>>>) -> Router {
    let generate = Router::new()
        .route("/chat/completions", post(openai::chat_completions))
        .route("/completions", post(openai::completions))
        .route("/audio/transcriptions", post(audio::transcriptions))
        .route("/embeddings", post(embeddings::create))
        .route("/meetings/minutes", post(meetings::minutes))
        .route("/parse", post(documents::extract))
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
        .route("/me/keys", post(session::create_own_key))
        .route("/exports/{format}", post(documents::export))
        .route("/exports/tables/{format}", post(documents::export_table))
        .route(
            "/collections",
            get(knowledge::list_collections).post(knowledge::create_collection),
        )
        .route(
            "/collections/{id}",
            get(knowledge::get_collection)
                .patch(knowledge::update_collection)
                .delete(knowledge::delete_collection),
        )
        .route(
            "/documents",
            get(knowledge::list_documents).post(knowledge::upload_document),
        )
        .route(
            "/documents/{id}",
            get(knowledge::get_document).delete(knowledge::delete_document),
        )
        .route("/chunks/{document}", get(knowledge::list_chunks))
        .route("/search", post(knowledge::search))
        .route("/charter", get(charter::get))
        .route("/charter/accept", post(charter::accept))
        .merge(generate)
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_auth,
        ));
    let session = Router::new()
        .route("/me", get(session::me))
        .route("/password", post(session::change_password))
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
    if let Some(admin) = admin {
        app = app.nest("/admin", admin);
    }
    finish(app, state)
}

/// Finishes a router the way every listener's is: JSON 404 and 405 fallbacks, no default
/// body limit (bodies are bounded by [`crate::body`]), panic guard and request log, in that
/// order; then the state.
pub fn finish(app: Router<Arc<ApiState>>, state: Arc<ApiState>) -> Router {
    app.fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Bodies are limited by `read_body`, which answers 413 the way clients can read.
        .layer(DefaultBodyLimit::disable())
        // Every body keeps a pace (trickling clients are cut off with 408).
        .layer(middleware::from_fn_with_state(
            crate::body::Pace::of(&state.limits),
            crate::body::pace,
        ))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(on_panic))
        .layer(middleware::from_fn(log_request))
        .with_state(state)
}

/// The path as the journal keeps it: a user name in the URL (`/admin/users/{name}…`) is left
/// out, since the journal outlives an account's erasure.
fn journal_path(path: &str) -> String {
    match path.strip_prefix("/admin/users/") {
        Some(rest) if !rest.is_empty() => match rest.split_once('/') {
            Some((_, tail)) => format!("/admin/users/{{name}}/{tail}"),
            None => "/admin/users/{name}".into(),
        },
        _ => path.to_string(),
    }
}

async fn log_request(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = journal_path(req.uri().path());
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

#[cfg(test)]
mod tests {
    #[test]
    fn the_journal_keeps_no_user_name_from_the_url() {
        use super::journal_path as j;
        assert_eq!(j("/admin/users/jeanne.dupont"), "/admin/users/{name}");
        assert_eq!(j("/admin/users/jeanne/quota"), "/admin/users/{name}/quota");
        assert_eq!(j("/admin/users"), "/admin/users");
        assert_eq!(j("/v1/models"), "/v1/models");
    }
}
