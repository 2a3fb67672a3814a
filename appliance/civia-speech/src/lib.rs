//! The speech worker: one process, started by civiad, that owns the whisper.cpp model.
//!
//! Owns: reading a recording from the spool file civiad names (decoded by `civia-audio`),
//! cutting long recordings into windows at pauses, skipping silent windows, transcription
//! with whisper.cpp (`whisper-rs`), and reporting progress, segments and typed failures over
//! the IPC socket.
//!
//! Must never: open a network socket, write anywhere (the recording is only read; civiad
//! deletes it), keep audio or text after a job, log transcript text (recordings of people are
//! personal data), or profile speakers (no diarisation, emotion or identity inference).

mod worker;

pub use worker::run_worker;

use civia_ipc::speech::SpeechFailure;

/// Why a job (or the worker) failed; job failures travel to civiad as [`SpeechFailure`].
#[derive(Debug, thiserror::Error)]
pub enum SpeechError {
    #[error("format non pris en charge : {0}")]
    Unsupported(String),
    #[error("fichier audio endommagé : {0}")]
    Corrupt(String),
    #[error("le fichier ne contient aucun son")]
    Empty,
    #[error("enregistrement plus long que la limite de {0} s")]
    TooLong(u64),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("transcription interrompue")]
    Cancelled,
    #[error("{0}")]
    Internal(String),
    #[error(transparent)]
    Ipc(#[from] civia_ipc::IpcError),
}

impl From<civia_audio::AudioError> for SpeechError {
    fn from(e: civia_audio::AudioError) -> Self {
        use civia_audio::AudioError as A;
        match e {
            A::Unsupported(m) => SpeechError::Unsupported(m),
            A::Corrupt(m) => SpeechError::Corrupt(m),
            A::Empty => SpeechError::Empty,
            A::Io(m) => SpeechError::Internal(format!("lecture de l'enregistrement : {m}")),
        }
    }
}

impl SpeechError {
    pub fn failure(&self) -> SpeechFailure {
        match self {
            SpeechError::Unsupported(_) => SpeechFailure::Unsupported,
            SpeechError::Corrupt(_) => SpeechFailure::Corrupt,
            SpeechError::Empty => SpeechFailure::Empty,
            SpeechError::TooLong(_) => SpeechFailure::TooLong,
            SpeechError::InvalidRequest(_) => SpeechFailure::InvalidRequest,
            SpeechError::Cancelled => SpeechFailure::Cancelled,
            SpeechError::Internal(_) | SpeechError::Ipc(_) => SpeechFailure::Internal,
        }
    }
}
