//! `GET /admin/compliance/{register|dpia|checklist}`: the commune's compliance documents
//! (RGPD art. 30 register entry, DPIA kit, AI Act deployer checklist), rendered in French by
//! `civia-compliance` from what this box is actually configured and running with. Admin and
//! DPO; Markdown (`format=md`, the default) or JSON.
//!
//! Every statement about a measure comes from the live state: disk encryption is read from
//! the kernel (is the state directory on dm-crypt?); the TPM's use for the box's secrets is
//! not observable here and stays "non vérifié" until provisioning reports it.

use crate::extract::{path, query, require};
use crate::{ApiError, ApiState};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, Extensions};
use axum::response::{IntoResponse, Response};
use axum::Json;
use civia_auth::Role;
use civia_compliance::{
    AuditInfo, CharterInfo, DocumentKind, GuardInfo, HistoryInfo, Measure, ModelInfo, SecurityInfo,
    Snapshot, UserCounts,
};
use serde::Deserialize;
use std::sync::Arc;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FormatQuery {
    format: Option<String>,
}

/// The snapshot of the live configuration and state the documents are rendered from.
pub(crate) async fn snapshot(st: &ApiState) -> Result<Snapshot, ApiError> {
    let cfg = &st.config;
    let (charter, coverage, users) = st
        .auth
        .with_store(|s| Ok((s.charter()?, s.charter_coverage()?, s.users()?)))
        .await?;
    let count = |r: Role| users.iter().filter(|u| u.role == r && !u.disabled).count() as u64;
    let model = match st.verified_dossier() {
        Ok((d, info)) => {
            let text = |k: &str| d.get(k).and_then(|v| v.as_str()).map(str::to_string);
            ModelInfo {
                id: st.model_id.clone(),
                sha256: info.sha256,
                licence: text("licence"),
                provider: text("provider"),
                dossier_present: true,
            }
        }
        Err(_) => ModelInfo {
            id: st.model_id.clone(),
            sha256: st
                .supervisor
                .status()
                .model
                .map(|m| m.sha256)
                .unwrap_or_default(),
            licence: None,
            provider: None,
            dossier_present: false,
        },
    };
    let state_dir = cfg.state_dir.clone();
    let host =
        tokio::task::spawn_blocking(move || civia_system::Collector::new("/").host(&state_dir))
            .await
            .map_err(|e| ApiError::internal(format!("host task failed: {e}")))?;
    let (chain_verified, journald) = match &st.audit {
        Some(a) => (a.chain_verifies().await, a.mirrored()),
        None => (None, false),
    };
    Ok(Snapshot {
        generated_at: civia_base::time::rfc3339(civia_auth::now()),
        box_version: env!("CARGO_PKG_VERSION").to_string(),
        commune: cfg.commune.name.clone(),
        controller_contact: cfg.commune.dpo_contact.clone(),
        models: vec![model],
        audit: AuditInfo {
            enabled: st.audit.is_some(),
            retention_months: cfg.audit.retention_months,
            retention_justification: cfg.audit.retention_justification.clone(),
            chain_verified,
            signed_segments: st.audit.is_some(),
            journald_mirror: journald,
        },
        history: HistoryInfo {
            enabled: cfg.history.enabled,
            retention_days: cfg.history.retention_days,
        },
        security: SecurityInfo {
            tls_lan: cfg.api_tls(),
            lan_only_sources: cfg
                .api
                .allowed_sources
                .iter()
                .map(ToString::to_string)
                .collect(),
            // civiad opens no outgoing connection; the image's firewall is not visible here.
            egress_default_zero: true,
            disk_encryption: match host.state_encrypted {
                Some(true) => Measure::Enabled,
                Some(false) => Measure::Disabled,
                None => Measure::Unknown,
            },
            // A TPM being present does not say that the box's secrets are sealed in it.
            tpm: Measure::Unknown,
            api_keys_hashed: true,
            login_throttling: true,
            signed_updates: st.updates.is_some(),
            admin_socket_local_only: true,
        },
        guard: GuardInfo {
            pii_detection: true,
            max_prompt_chars: u32::try_from(cfg.guard.max_prompt_chars).unwrap_or(u32::MAX),
            max_answer_tokens: cfg.api.max_tokens,
            system_prompt_leak_filter: st.leak_guard.is_some(),
            ai_marking: true,
        },
        charter: CharterInfo {
            version: charter.version,
            updated_at: Some(civia_base::time::rfc3339(charter.created_at)),
            users_accepted_current: coverage.0,
            users_total: coverage.1,
        },
        users: UserCounts {
            agents: count(Role::Agent),
            admins: count(Role::Admin),
            dpos: count(Role::Dpo),
            integrators: count(Role::Integrator),
        },
    })
}

pub(crate) async fn document(
    State(st): State<Arc<ApiState>>,
    ext: Extensions,
    kind: Result<Path<String>, PathRejection>,
    q: Result<Query<FormatQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    require(
        &ext,
        &[Role::Admin, Role::Dpo],
        "read the compliance documents",
    )?;
    let kind: DocumentKind = path(kind)?.parse().map_err(|_| {
        ApiError::bad_request(
            "The document is `register`, `dpia` or `checklist`.",
            Some("kind".into()),
        )
    })?;
    let markdown = match query(q)?.format.as_deref().unwrap_or("md") {
        "md" => true,
        "json" => false,
        _ => {
            return Err(ApiError::bad_request(
                "`format` must be `md` or `json`.",
                Some("format".into()),
            ))
        }
    };
    let doc = civia_compliance::render(kind, &snapshot(&st).await?);
    Ok(if markdown {
        (
            [(header::CONTENT_TYPE, "text/markdown; charset=utf-8")],
            doc.to_markdown(),
        )
            .into_response()
    } else {
        Json(doc.to_json()).into_response()
    })
}
