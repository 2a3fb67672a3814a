//! The embedding worker: the process that holds the embedding model and turns texts (the
//! commune's documents, agents' questions) into vectors.
//!
//! Owns: checking that the model is GGUF (the start-up itself, handshake, hash check and
//! refusal, is `civia_ipc::worker`'s, shared with the other workers), loading it through
//! `llama-cpp-2` in embedding mode with the model's own pooling (mean when the file names
//! none; a reranking model is refused), tokenizing each input with its special tokens but
//! never parsing special tokens out of the text, refusing an input longer than the model
//! takes (a typed failure naming the input: nothing is truncated), evaluating several inputs
//! in one pass (one sequence each, [`Embedder`]), normalising every vector to unit length,
//! and answering over the `civia-ipc` embedding protocol ([`run_worker`]). Its process is
//! `civiad embed-worker`, so that it shares civiad's one link of llama.cpp and its jail.
//!
//! Must never: open a network socket, write files, log input text or vectors (they are the
//! commune's documents), silently truncate an input, or outlive the supervisor (it exits when
//! its IPC socket closes). A llama.cpp abort kills only this process; the supervisor answers
//! the requests in flight and restarts it.

mod embedder;
mod worker;

pub use embedder::{load_model, Embedded, Embedder, Failure};
pub use worker::run_worker;

/// Why the worker stopped.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error(transparent)]
    Ipc(#[from] civia_ipc::IpcError),
    /// The worker stopped before serving: handshake, or a model refused (already reported
    /// to the supervisor).
    #[error(transparent)]
    Start(#[from] civia_ipc::worker::StartError),
}
