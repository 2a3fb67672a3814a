//! `civiad`, the Civia supervisor daemon, as a library: its composition root ([`App`]), so
//! that the binary (`main.rs`) and the integration tests build the daemon the same way.
//!
//! Owns: turning the configuration into running parts and wiring them ([`app`]: the state
//! directory, the worker supervisors, TLS material, accounts and the trial admin behind
//! `CIVIA_DEV_API_KEY`, the pairing code's announcement, the audit trail, signed updates, the
//! backups and their daily run ([`backup`]), the API state), the listeners (API, optional admin listener, admin Unix socket; [`serve`]),
//! the boot step of an update and the trial boot's health check ([`boot`]), systemd
//! readiness, status and watchdog ([`systemd`]), logging (journald under systemd, stderr
//! otherwise; [`logging`]) and orderly shutdown.
//!
//! Must never: hold the model in this process (the worker does), serve a non-loopback
//! address without TLS, or accept a connection from outside `api.allowed_sources`.

pub mod app;
pub mod backup;
pub mod boot;
mod error;
pub mod knowledge;
pub mod logging;
pub mod secrets;
mod serve;
pub mod systemd;

pub use app::{App, AppBuilder, Listeners};
pub use boot::Stop;
pub use error::DaemonError;
