//! Unauthenticated facts: health and readiness, Prometheus metrics, the OpenAPI description
//! and the box CA certificate.

use crate::ApiState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use civia_supervisor::Phase;
use serde_json::json;
use std::sync::Arc;

/// The OpenAPI description of this API, served at `/openapi.json`.
pub const OPENAPI_JSON: &str = include_str!("../../openapi.json");

pub(crate) async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON)
}

/// The box CA, for agents' browsers and programs to trust the box (no authentication).
pub async fn ca_certificate(State(st): State<Arc<ApiState>>) -> impl IntoResponse {
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

pub(crate) async fn metrics(State(st): State<Arc<ApiState>>) -> impl IntoResponse {
    let s = st.supervisor.status();
    let mut text = st
        .supervisor
        .metrics()
        .render(s.restarts, s.phase == Phase::Ready);
    if let Some(e) = &st.embeddings {
        text.push_str(&e.metrics().render(&e.status()));
    }
    if let Some(b) = &st.backups {
        text.push_str(&b.metrics());
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
}

/// An error message for anonymous readers: every absolute path is cut to its file name (the
/// box's layout — state directory, model store, spool — is the administrator's business;
/// `/admin/status` gives it whole).
fn without_paths(message: &str) -> String {
    message
        .split(' ')
        .map(|word| match word.find('/') {
            Some(i) if word[i..].len() > 1 && word[i + 1..].contains('/') || i == 0 => {
                let (head, path) = word.split_at(i);
                let tail = path.trim_end_matches([':', ',', ')', '.', ';']);
                let rest = &path[tail.len()..];
                let name = tail.rsplit('/').next().unwrap_or("");
                format!("{head}…/{name}{rest}")
            }
            _ => word.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Liveness and the model's phase (no authentication; `/health` on every listener). Error
/// messages name files without their paths.
pub async fn health(State(st): State<Arc<ApiState>>) -> Json<serde_json::Value> {
    let s = st.supervisor.status();
    let mut speech = st.speech_status();
    let mut embeddings = st.embeddings_status();
    for worker in [&mut speech, &mut embeddings] {
        if let Some(e) = worker.get_mut("last_error") {
            if let Some(text) = e.as_str() {
                *e = json!(without_paths(text));
            }
        }
    }
    Json(json!({
        "status": "ok",
        "worker": {
            "phase": s.phase.as_str(),
            "restarts": s.restarts,
            "last_error": s.last_error.as_deref().map(without_paths),
        },
        "model": {
            "id": st.model_id,
            "loaded": s.phase == Phase::Ready,
            "sha256": s.model.as_ref().map(|m| m.sha256.clone()),
            "context_length": s.model.as_ref().map(|m| m.n_ctx),
            "chat_template": s.model.as_ref().map(|m| m.template),
        },
        "speech": speech,
        "embeddings": embeddings,
    }))
}

pub(crate) async fn ready(State(st): State<Arc<ApiState>>) -> Response {
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

#[cfg(test)]
mod tests {
    use super::without_paths;

    #[test]
    fn anonymous_errors_name_files_not_paths() {
        assert_eq!(
            without_paths("cannot open /var/lib/civia/models/x.gguf: not a GGUF file"),
            "cannot open …/x.gguf: not a GGUF file"
        );
        assert_eq!(
            without_paths("worker (/usr/bin/civiad) exited; see /run/civia/a"),
            "worker (…/civiad) exited; see …/a"
        );
        assert_eq!(without_paths("ok and/or fine"), "ok and/or fine");
        assert!(!without_paths("spool /var/lib/civia/spool/speech/1.upload").contains("/var"));
    }
}
