//! The models served (`/v1/models`) and the language model's dossier (AI Act Annex XII).

use crate::{ApiError, ApiState};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use std::sync::Arc;

fn model_object(st: &ApiState, id: &str) -> serde_json::Value {
    json!({
        "id": id,
        "object": "model",
        "created": st.started_at,
        "owned_by": "civia",
    })
}

pub(crate) async fn list_models(State(st): State<Arc<ApiState>>) -> Json<serde_json::Value> {
    let data: Vec<_> = st
        .model_ids()
        .iter()
        .map(|id| model_object(&st, id))
        .collect();
    Json(json!({ "object": "list", "data": data }))
}

pub(crate) async fn get_model(State(st): State<Arc<ApiState>>, Path(id): Path<String>) -> Response {
    if st.model_ids().contains(&id) {
        Json(model_object(&st, &id)).into_response()
    } else {
        ApiError::model_not_found(&id, &st.model_id).into_response()
    }
}

/// The model's dossier (AI Act Annex XII): the description next to the weights
/// (`<stem>.dossier.json`, or `dossier.json` of a model bundle), checked against the hash of
/// the weights actually loaded, plus what the runtime measured.
pub(crate) async fn model_dossier(
    State(st): State<Arc<ApiState>>,
    Path(id): Path<String>,
) -> Response {
    if id != st.model_id {
        return ApiError::model_not_found(&id, &st.model_id).into_response();
    }
    let (dossier, info) = match st.verified_dossier().await {
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
