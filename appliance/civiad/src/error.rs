//! Why the daemon cannot start (exit status 2, the message in the journal).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{0}")]
    Config(#[from] civia_config::ConfigError),
    #[error("CIVIA_DEV_API_KEY: {0}")]
    TrialKey(&'static str),
    #[error("missing --config PATH")]
    NoConfig,
    #[error("model.path: {path} cannot be read: {source}")]
    Model {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("state_dir {path}: {source}")]
    StateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("knowledge: {0}")]
    Knowledge(#[from] civia_knowledge::KnowledgeError),
    #[error("cannot find civiad's own executable to start the worker: {0}")]
    SelfExe(std::io::Error),
    #[error("speech.path: {path} cannot be read: {source}")]
    SpeechModel {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the speech worker program {0} is missing (build it with `cargo build --release -p civia-speech`, or set speech.worker)")]
    SpeechWorker(PathBuf),
    #[error("embeddings.path: {path} cannot be read: {source}")]
    EmbeddingsModel {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("speech spool directory {path}: {source}")]
    Spool {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Tls(#[from] civia_tls::TlsError),
    #[error("secrets ({dir}): {source}")]
    Secrets {
        dir: PathBuf,
        source: civia_tpm::TpmError,
    },
    #[error("secrets ({dir}): {why}")]
    SecretsUnavailable { dir: PathBuf, why: String },
    #[error("{0}")]
    Store(#[from] civia_auth::StoreError),
    #[error("{0}")]
    Auth(#[from] civia_auth::AuthError),
    #[error("audit log: {0}")]
    Audit(#[from] civia_audit::AuditError),
    #[error("admin socket {path}: {source}")]
    AdminSocket {
        path: PathBuf,
        source: std::io::Error,
    },
}
