//! One module per resource of the API listener (the admin plane's are `civia-admin-api`'s). A handler extracts the caller and the request, calls a service,
//! and shapes the answer; it imports the shared plumbing of the crate root (`extract`,
//! `body`, `metering`, `generation`, `history`, `state`), never another handler.

pub(crate) mod audio;
pub(crate) mod charter;
pub(crate) mod documents;
pub(crate) mod embeddings;
pub(crate) mod health;
pub mod knowledge;
pub(crate) mod meetings;
pub(crate) mod models;
pub(crate) mod openai;
pub(crate) mod privacy;
pub(crate) mod session;
pub(crate) mod web;
