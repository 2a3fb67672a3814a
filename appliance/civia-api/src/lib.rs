//! The HTTP layer of civiad: OpenAI-compatible `/v1/*`, the web session routes (`/auth/*`),
//! the admin plane (`/admin/*`), health, metrics, OpenAPI and the web app's files.
//!
//! Owns: transport only — extracting the caller ([`extract`], authentication middleware in
//! `auth`), reading and parsing bodies (bounded by `[api]` limits, clear OpenAI error objects
//! for every refusal: [`body`], [`error`]), metering model requests (`metering`: the middleware
//! in front of `civia-metering`, which writes the audit events and the usage row), the pieces every generating handler shares (`generation`,
//! `history`), and one module per resource under `handlers`, each of which extracts, calls a
//! service of the crate that owns the data, and shapes the answer.
//!
//! Must never: panic on input, answer 500 for a client's mistake, silently change the meaning
//! of a request it cannot honour (n > 1, tools, logprobs: 400), log request or response
//! text, talk to the model other than through `civia-supervisor`, hold application logic
//! that belongs to a service crate, or let a handler import another handler: what two
//! handlers share lives in a module outside `handlers`.

mod auth;
mod body;
mod error;
mod extract;
mod generation;
mod handlers;
mod history;
mod metering;
mod routes;
mod state;
mod views;

pub use civia_auth::{Auth, Principal};
pub use error::ApiError;
pub use extract::{CSRF_HEADER, SESSION_COOKIE};
pub use handlers::health::OPENAPI_JSON;
pub use routes::{admin_router, router};
pub use state::ApiState;
