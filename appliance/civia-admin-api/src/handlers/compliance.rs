//! `GET /admin/compliance/{register|dpia|checklist}`: the commune's compliance documents
//! (RGPD art. 30 register entry, DPIA kit, AI Act deployer checklist), rendered in French by
//! `civia-compliance` from what this box is actually configured and running with. Admin and
//! DPO; Markdown (`format=md`, the default) or JSON.
//!
//! Every statement about a measure comes from the live state: disk encryption is read from
//! the kernel (is the state directory on dm-crypt?); the TPM's use for the box's secrets is
//! not observable here and stays "non vérifié" until provisioning reports it.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, Extensions};
use axum::response::{IntoResponse, Response};
use axum::Json;
use civia_api::extract::{path, query, require};
use civia_api::{ApiError, ApiState};
use civia_auth::Role;
use civia_compliance::{
    AuditState, Charter, DocumentKind, Live, LoadedModel, Snapshot, UserCounts,
};
use serde::Deserialize;
use std::sync::Arc;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FormatQuery {
    format: Option<String>,
}

/// The snapshot of the live configuration and state the documents are rendered from: this
/// reads; `Snapshot::from_live` decides what each fact says.
pub(crate) async fn snapshot(st: &ApiState) -> Result<Snapshot, ApiError> {
    let (charter, coverage, users) = st
        .auth
        .with_store(|s| Ok((s.charter()?, s.charter_coverage()?, s.users()?)))
        .await?;
    let count = |r: Role| users.iter().filter(|u| u.role == r && !u.disabled).count() as u64;
    let verified = st.verified_dossier().await.ok();
    let sha256 = match &verified {
        Some((_, info)) => info.sha256.clone(),
        None => st
            .supervisor
            .status()
            .model
            .map(|m| m.sha256)
            .unwrap_or_default(),
    };
    let host = crate::host::facts(st).await?;
    let audit = match &st.audit {
        Some(a) => Some(AuditState {
            chain_verified: a.chain_verifies().await,
            journald_mirror: a.mirrored(),
        }),
        None => None,
    };
    let live = Live {
        generated_at: civia_base::time::rfc3339(civia_auth::now()),
        box_version: env!("CARGO_PKG_VERSION").to_string(),
        model: LoadedModel {
            id: st.model_id.clone(),
            sha256,
            dossier: verified.as_ref().map(|(d, _)| d),
        },
        audit,
        state_encrypted: host.state_encrypted,
        leak_filter: st.leak_guard.is_some(),
        signed_updates: st.updates.is_some(),
        charter: Charter {
            version: charter.version,
            created_at: civia_base::time::rfc3339(charter.created_at),
            users_accepted_current: coverage.0,
            users_total: coverage.1,
        },
        users: UserCounts {
            agents: count(Role::Agent),
            admins: count(Role::Admin),
            dpos: count(Role::Dpo),
            integrators: count(Role::Integrator),
        },
    };
    Ok(Snapshot::from_live(&st.config, live))
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
