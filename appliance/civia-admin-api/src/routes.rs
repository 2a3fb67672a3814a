//! The routes of the admin plane: which `/admin/*` URL reaches which handler, behind
//! authentication (all but `/admin/pair`, which pairs the CLI without credentials).

use crate::handlers::{admin, audit, backup, charter, compliance, dsr, knowledge, system, updates};
use axum::middleware;
use axum::routing::{delete, get, post, put};
use axum::Router;
use civia_api::{auth, ApiState};
use std::sync::Arc;

/// The admin plane alone, for `[admin] listen` and the CLI's Unix socket: `/health`,
/// `/ca.crt` and [`routes`] under `/admin`, finished like every listener's router.
pub fn admin_router(state: Arc<ApiState>) -> Router {
    let app = Router::new()
        .route("/health", get(civia_api::health))
        .route("/ca.crt", get(civia_api::ca_certificate))
        .nest("/admin", routes(&state));
    civia_api::finish(app, state)
}

/// Everything under `/admin` (to be nested there): authenticated routes, then the
/// unauthenticated `/pair`.
pub fn routes(state: &Arc<ApiState>) -> Router<Arc<ApiState>> {
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
        .route("/users/{name}/data", get(dsr::dsr_export))
        .route("/users/{name}/erase", post(dsr::dsr_erase))
        .route("/knowledge/collections", get(knowledge::collections))
        .route(
            "/knowledge/collections/{id}/documents",
            post(knowledge::import),
        )
        .route("/charter", get(civia_api::get_charter).put(charter::put))
        .route("/charter/register", get(charter::register))
        .route("/compliance/{kind}", get(compliance::document))
        .route("/audit/verify", get(audit::verify))
        .route("/audit/export", get(audit::export))
        .route("/backup", get(backup::status).post(backup::start))
        .route("/backup/key", post(backup::create_key))
        .route("/backup/smb-password", put(backup::set_smb_password))
        .route("/backup/download", get(backup::download))
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
