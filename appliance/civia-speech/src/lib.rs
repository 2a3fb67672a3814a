//! The speech worker: one process, started by civiad, that owns the whisper.cpp model.
//!
//! Owns: loading the whisper.cpp model (the start-up, handshake, hash check and refusal, is
//! `civia_ipc::worker`'s, shared with the runtime worker), reading a recording from the
//! spool file civiad names (decoded by `civia-audio`), cutting long recordings into windows
//! at pauses, skipping silent windows, transcription with whisper.cpp (`whisper-rs`), and
//! reporting progress, segments and typed failures over the IPC socket.
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
    /// The recording cannot be read (the message from `civia-audio`).
    #[error(transparent)]
    Audio(#[from] civia_audio::AudioError),
    #[error("the recording is longer than the limit of {0} s")]
    TooLong(u64),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("transcription interrupted")]
    Cancelled,
    #[error("{0}")]
    Internal(String),
    #[error(transparent)]
    Ipc(#[from] civia_ipc::IpcError),
    /// The worker stopped before serving (handshake, refused model).
    #[error(transparent)]
    Start(#[from] civia_ipc::worker::StartError),
}

impl SpeechError {
    /// The message for civiad, which puts it after its own sentence for the kind
    /// ("the audio file is damaged or unreadable (…)"): the decoder's detail alone.
    pub fn detail(&self) -> String {
        use civia_audio::AudioError as A;
        match self {
            SpeechError::Audio(A::Unsupported(d) | A::Corrupt(d)) => d.clone(),
            other => other.to_string(),
        }
    }

    pub fn failure(&self) -> SpeechFailure {
        use civia_audio::AudioError as A;
        match self {
            SpeechError::Audio(A::Unsupported(_)) => SpeechFailure::Unsupported,
            SpeechError::Audio(A::Corrupt(_)) => SpeechFailure::Corrupt,
            SpeechError::Audio(A::Empty) => SpeechFailure::Empty,
            SpeechError::TooLong(_) => SpeechFailure::TooLong,
            SpeechError::InvalidRequest(_) => SpeechFailure::InvalidRequest,
            SpeechError::Cancelled => SpeechFailure::Cancelled,
            SpeechError::Audio(A::Io(_))
            | SpeechError::Internal(_)
            | SpeechError::Ipc(_)
            | SpeechError::Start(_) => SpeechFailure::Internal,
        }
    }
}
