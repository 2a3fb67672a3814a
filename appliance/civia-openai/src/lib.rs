//! The OpenAI wire protocol of civiad as data: `/v1/chat/completions`, `/v1/completions`,
//! `/v1/audio/transcriptions` and `/v1/embeddings` requests validated and translated into
//! `civia-ipc` prompts and sampling parameters (or the texts to embed), and the JSON (and
//! SRT/WebVTT) shapes of their answers.
//!
//! Owns: the request types and their validation (ranges, unsupported OpenAI features, message
//! shapes, prompt length, `response_format`'s JSON Schema checked against the subset the
//! answer's grammar enforces and written in canonical form: `schema`; tools, tool calls and
//! their results in the prompt and the answer: `tools`), the completion and
//! chunk objects, the transcription formats, and
//! [`Error`], which carries everything the HTTP layer needs to answer OpenAI's error object
//! (status class, `type`, `code`, `param`, message). `civia-api` reads bodies, authorises,
//! meters, streams and keeps history; this crate only decides and shapes.
//!
//! Must never: do I/O (network, files, clocks, randomness: ids and times are given), panic
//! on input (it is fuzzed with hostile bodies), log anything — least of all request text.

pub mod embeddings;
mod error;
pub mod request;
pub mod response;
pub mod schema;
pub mod tools;
pub mod transcription;

pub use error::{Error, Status};
pub use request::{
    check_prompt_length, message_text, range, refuse_completion_history, system_prompt,
    ChatRequest, CiviaBody, CommonSampling, CompletionRequest, InMessage, Int, Limits,
    ResponseFormat, StreamOptions,
};
pub use response::{choice, finish_str, tool_calls_choice, usage, Envelope, Shape};
