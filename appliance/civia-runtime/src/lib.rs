//! The runtime worker: the one process that holds the model and sees prompts in clear.
//!
//! Owns: checking that the model is GGUF (the start-up itself, handshake, hash check and
//! refusal, is `civia_ipc::worker`'s, shared with the speech worker) and loading it through
//! `llama-cpp-2`, rendering chat prompts with the model's own Jinja chat template
//! (minijinja; Civia's Mistral `[INST]` template as the fallback) and tokenizing them with
//! control tokens from the template only, never from message contents (`prompt`), sampling (temperature,
//! top_p, seed, penalties), answers constrained to a JSON schema (the schema civiad checked,
//! turned into a grammar by llama.cpp's converter here, cached, in the sequence's sampler
//! chain: `grammar`), stop sequences, token limits, streaming text back and honouring
//! cancellation, all over the `civia-ipc` protocol.
//!
//! Must never: let a message's content become a control token, open a network socket, write files, log prompt or output text, or outlive the
//! supervisor (it exits when its IPC socket closes). A llama.cpp abort kills only this process;
//! the supervisor answers the requests in flight and restarts it.

pub mod devices;
mod engine;
mod error;
mod grammar;
pub mod prompt;
pub mod stop;
pub mod template;
#[cfg(test)]
mod test_models;
pub mod worker;

pub use worker::{run_worker, WorkerError};
