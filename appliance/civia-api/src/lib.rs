//! The HTTP layer of civiad's API listener: OpenAI-compatible `/v1/*`, the web session routes
//! (`/auth/*`), health, metrics, OpenAPI and the web app's files; and the HTTP plumbing the
//! admin plane (`civia-admin-api`, `/admin/*`) shares with it.
//!
//! Owns: transport only — extracting the caller ([`extract`], authentication middleware in
//! [`auth`]), reading and parsing bodies (bounded by `[api]` limits, clear OpenAI error objects
//! for every refusal: [`body`], [`error`]), what every handler is given ([`state`]), the JSON
//! shapes several handlers answer with ([`views`], [`user_data`]), finishing a listener's
//! router the same way for every listener ([`finish`]: fallbacks, panic guard, request log),
//! metering model requests (`metering`: the middleware in front of `civia-metering`, which
//! writes the audit events and the usage row), the pieces every generating handler shares
//! (`generation`, `history`), what the knowledge routes and a chat's `search` share
//! (`knowledge_search`), and one module per resource under `handlers`, each of which
//! extracts, calls a service of the crate that owns the data, and shapes the answer.
//!
//! Must never: panic on input, answer 500 for a client's mistake, silently change the meaning
//! of a request it cannot honour (n > 1, tools, logprobs: 400), log request or response
//! text, talk to the model other than through `civia-supervisor`, hold application logic
//! that belongs to a service crate, serve an `/admin/*` handler of its own (the admin plane
//! is given to [`router`] by the composition root), or let a handler import another handler:
//! what two handlers share lives in a module outside `handlers`.

pub mod auth;
pub mod body;
pub mod error;
pub mod extract;
mod generation;
mod handlers;
mod history;
mod knowledge_search;
mod metering;
mod routes;
pub mod state;
pub mod user_data;
pub mod views;

pub use civia_auth::{Auth, Principal};
pub use error::{ApiError, Class};
pub use extract::{CSRF_HEADER, SESSION_COOKIE};
pub use handlers::charter::get as get_charter;
pub use handlers::health::{ca_certificate, health, OPENAPI_JSON};
pub use routes::{finish, router};
pub use state::{ApiState, TrustFacts};
