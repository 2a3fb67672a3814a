//! `POST /v1/embeddings`: OpenAI-compatible embeddings from the box's embedding worker.
//!
//! The request is read and checked here (`civia-openai` decides its shape, the embedding
//! service its limits), sent to the embedding service (`civia-supervisor`), and answered in
//! OpenAI's shape; the audit records the model, the token count and the hashes of the
//! request and of the vectors, never the text.

use crate::body::{parse_json, read_body};
use crate::error::Class;
use crate::{ApiError, ApiState};
use axum::body::Body;
use axum::extract::State;
use axum::http::Extensions;
use axum::response::{IntoResponse, Response};
use axum::Json;
use civia_metering::UsageTicket;
use civia_openai::embeddings::{response, EmbeddingLimits, EmbeddingsRequest};
use civia_supervisor::{EmbedError, Phase};
use std::sync::Arc;

pub async fn create(
    State(st): State<Arc<ApiState>>,
    ext: Extensions,
    body: Body,
) -> Result<Response, ApiError> {
    let (Some(service), Some(model_id)) = (st.embeddings.clone(), st.embeddings_model_id()) else {
        return Err(ApiError::of(
            Class::NotFound,
            "embeddings_disabled",
            "Embeddings are not enabled on this box (section [embeddings] of the configuration).",
        ));
    };
    let body = read_body(body, st.limits.max_body_bytes).await?;
    let ticket = ext.get::<Arc<UsageTicket>>().cloned();
    if let Some(t) = &ticket {
        t.set_prompt(&body);
    }
    let req: EmbeddingsRequest = parse_json(&body)?;
    if req.model != model_id {
        return Err(ApiError::model_not_found(&req.model, &model_id));
    }
    if let Some(p) = ext.get::<civia_auth::Principal>() {
        p.check_model(&model_id)?;
    }
    let format = req.encoding_format()?;
    let (max_inputs, max_input_chars) = service.limits();
    let inputs = req.inputs(&EmbeddingLimits {
        max_inputs,
        max_input_chars,
    })?;
    let status = service.status();
    let Some(model) = status.model.filter(|_| status.phase == Phase::Ready) else {
        return Err(EmbedError::Unavailable(
            status
                .last_error
                .unwrap_or_else(|| format!("embedding worker {}", status.phase.as_str())),
        )
        .into());
    };
    req.check_dimensions(model.dimension)?;
    let done = service.embed(inputs).await?;
    let tokens = done.total_tokens();
    if let Some(t) = &ticket {
        let bytes: Vec<u8> = done
            .vectors
            .iter()
            .flatten()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        t.finish(
            u32::try_from(tokens).unwrap_or(u32::MAX),
            0,
            200,
            Some(civia_base::hash::sha256_hex(&bytes)),
        )
        .await?;
    }
    Ok(Json(response(&model_id, done.vectors, format, tokens)).into_response())
}
