//! The admin plane of civiad (`/admin/*`): accounts, API keys, quotas, usage and status
//! (`handlers::admin`), the box's facts and network probes (`handlers::system`), signed
//! updates (`handlers::updates`), the audit trail's verification and export
//! (`handlers::audit`), the box's encrypted backups (`handlers::backup`), the compliance documents (`handlers::compliance`), the DPO's
//! data-subject requests (`handlers::dsr`), the usage charter's publication and register
//! (`handlers::charter`) and the bulk import of a folder into a shared collection of the
//! commune's documents (`handlers::knowledge`). It is a capability of its own: served on
//! `[admin] listen` and on the `civia` CLI's Unix socket ([`admin_router`]), or nested under
//! `/admin` on the API listener when the composition root gives [`routes`] to
//! `civia_api::router`.
//!
//! Owns: which `/admin/*` URL reaches which handler behind authentication, and one module per
//! resource under `handlers`, each of which checks the caller's role, calls a service of the
//! crate that owns the data, and shapes the answer. The HTTP plumbing (caller extraction,
//! bodies, errors, the state, finishing a router) is `civia_api`'s, shared with the API
//! listener so that both answer alike.
//!
//! Must never: serve a model route (`/v1/*`: generation is the API listener's), let a handler
//! skip its role check, show the pairing code to a network caller, let an administrator read
//! an agent's conversations (data-subject requests are the DPO's), log request or response
//! text, or let a handler import another handler.

mod handlers;
mod host;
mod routes;

pub use routes::{admin_router, routes};
