//! Audio input for transcription: a recording file in, 16 kHz mono `f32` samples out.
//!
//! Owns: probing containers and decoding codecs (symphonia in Rust; Opus through libopus),
//! down-mixing, anti-aliased resampling to whisper's 16 kHz, finding pauses to cut long
//! recordings at, and telling silence from speech. Every file is treated as hostile: sizes
//! are bounded before allocating and parser panics become [`AudioError::Corrupt`]. What a
//! recording is ([`AudioFormat`]) is `civia-ipc`'s type, re-exported: the speech worker
//! reports it to civiad as is.
//!
//! Must never: write anything, keep samples beyond what the caller asks for, or touch the
//! network.

pub mod decode;
mod mp4;
pub mod resample;
pub mod window;

pub use decode::{AudioFormat, AudioStream, RATE};

/// Why a recording cannot be decoded (messages in French: they reach the agent).
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    #[error("format non pris en charge : {0}")]
    Unsupported(String),
    #[error("fichier audio endommagé : {0}")]
    Corrupt(String),
    #[error("le fichier ne contient aucun son")]
    Empty,
    #[error("lecture du fichier impossible : {0}")]
    Io(String),
}
