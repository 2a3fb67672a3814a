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

/// Why a recording cannot be decoded (English messages; the API gives the agents' UI a code).
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    #[error("unsupported format: {0}")]
    Unsupported(String),
    #[error("damaged audio file: {0}")]
    Corrupt(String),
    #[error("the file holds no sound")]
    Empty,
    #[error("the file cannot be read: {0}")]
    Io(String),
}
