//! Messages between the supervisor and the speech worker (`civia-speech-worker`).
//!
//! Same framing as the runtime worker ([`crate::write_frame`] and friends); a recording is
//! never sent over the socket: the supervisor names a file in its spool directory and the
//! worker streams it from there, so frames stay small.

use crate::worker::{ModelFile, Protocol, Report, Setup};
use serde::{Deserialize, Serialize};

/// Bumped whenever a speech message changes shape.
pub const SPEECH_PROTOCOL_VERSION: u32 = 1;

/// From the supervisor to the speech worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToSpeech {
    Hello {
        version: u32,
    },
    /// Load the whisper model; answered by `Loaded` or `LoadFailed`.
    Load(SpeechLoadSpec),
    /// Transcribe one recording; one job at a time (the supervisor queues the others).
    Transcribe(TranscribeRequest),
    /// Stop the running job (answered by `Failed` with `Cancelled`).
    Cancel {
        id: u64,
    },
    Shutdown,
}

/// From the speech worker to the supervisor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FromSpeech {
    Hello {
        version: u32,
        pid: u32,
    },
    Loaded(SpeechModelInfo),
    LoadFailed {
        message: String,
    },
    /// The recording was opened: what it is and how long (when the container says).
    Probed {
        id: u64,
        format: AudioFormat,
    },
    /// Part of the recording done.
    Progress {
        id: u64,
        processed_secs: f64,
        duration_secs: Option<f64>,
    },
    /// One transcribed segment, times in seconds from the start of the recording.
    Segment {
        id: u64,
        segment: Segment,
    },
    Finished {
        id: u64,
        language: String,
        duration_secs: f64,
        /// Seconds of audio skipped as silence.
        silent_secs: f64,
    },
    Failed {
        id: u64,
        kind: SpeechFailure,
        message: String,
    },
}

/// The speech worker's protocol ([`ToSpeech`], [`FromSpeech`]).
pub struct SpeechProtocol;

impl Protocol for SpeechProtocol {
    const VERSION: u32 = SPEECH_PROTOCOL_VERSION;
    type ToWorker = ToSpeech;
    type FromWorker = FromSpeech;
    type Load = SpeechLoadSpec;
    type Info = SpeechModelInfo;

    fn setup(msg: Setup<SpeechLoadSpec>) -> ToSpeech {
        match msg {
            Setup::Hello { version } => ToSpeech::Hello { version },
            Setup::Load(l) => ToSpeech::Load(l),
            Setup::Shutdown => ToSpeech::Shutdown,
        }
    }

    fn as_setup(msg: ToSpeech) -> Result<Setup<SpeechLoadSpec>, ToSpeech> {
        match msg {
            ToSpeech::Hello { version } => Ok(Setup::Hello { version }),
            ToSpeech::Load(l) => Ok(Setup::Load(l)),
            ToSpeech::Shutdown => Ok(Setup::Shutdown),
            other => Err(other),
        }
    }

    fn report(msg: Report<SpeechModelInfo>) -> FromSpeech {
        match msg {
            Report::Hello { version, pid } => FromSpeech::Hello { version, pid },
            Report::Loaded(i) => FromSpeech::Loaded(i),
            Report::LoadFailed { message } => FromSpeech::LoadFailed { message },
        }
    }

    fn as_report(msg: FromSpeech) -> Result<Report<SpeechModelInfo>, FromSpeech> {
        match msg {
            FromSpeech::Hello { version, pid } => Ok(Report::Hello { version, pid }),
            FromSpeech::Loaded(i) => Ok(Report::Loaded(i)),
            FromSpeech::LoadFailed { message } => Ok(Report::LoadFailed { message }),
            other => Err(other),
        }
    }

    fn model_file(load: &SpeechLoadSpec) -> ModelFile<'_> {
        ModelFile {
            path: &load.path,
            sha256: load.sha256.as_deref(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpeechLoadSpec {
    pub path: String,
    /// Expected SHA-256 (lowercase hex); checked before loading when given.
    pub sha256: Option<String>,
    pub threads: u32,
    pub gpu: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpeechModelInfo {
    pub sha256: String,
    pub size_bytes: u64,
    /// `tiny`, `base`, `small`, `medium`, `large` (from the model's layer count).
    pub kind: String,
    pub multilingual: bool,
    /// Whether whisper runs on a GPU in this worker.
    pub gpu: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TranscribeRequest {
    pub id: u64,
    /// The recording, in the supervisor's spool directory.
    pub audio_path: String,
    /// The file name the client gave (a hint for the container format).
    pub filename_hint: Option<String>,
    /// ISO 639-1 code, or None to detect the language.
    pub language: Option<String>,
    /// Vocabulary and spelling hints (names of places and people).
    pub prompt: Option<String>,
    pub temperature: f32,
    pub max_duration_secs: u64,
    pub window_secs: u32,
}

/// What a recording is, from its headers (probed by `civia-audio`, which re-exports this
/// type, and reported by the speech worker).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AudioFormat {
    /// The file name's extension (the container is probed from the content).
    pub container: String,
    pub codec: String,
    pub sample_rate: u32,
    pub channels: u32,
    /// When the container says.
    pub duration_secs: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    pub start: f64,
    pub end: f64,
    pub text: String,
    /// Mean log-probability of the segment's tokens.
    pub avg_logprob: f64,
    /// whisper's probability that the segment holds no speech.
    pub no_speech_prob: f64,
    /// Token ids of the segment's text.
    pub tokens: Vec<i32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpeechFailure {
    /// Not a container or codec the worker decodes.
    Unsupported,
    /// The file is damaged or truncated beyond use.
    Corrupt,
    /// No audio at all (zero samples).
    Empty,
    /// Longer than the configured limit.
    TooLong,
    /// A parameter the worker cannot honour (unknown language).
    InvalidRequest,
    /// Stopped by the supervisor.
    Cancelled,
    /// whisper or the worker failed.
    Internal,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speech_messages_round_trip() {
        let msgs = [
            FromSpeech::Segment {
                id: 3,
                segment: Segment {
                    start: 1.5,
                    end: 3.25,
                    text: " Le conseil municipal, é€".into(),
                    avg_logprob: -0.3,
                    no_speech_prob: 0.01,
                    tokens: vec![50364, 1456],
                },
            },
            FromSpeech::Failed {
                id: 4,
                kind: SpeechFailure::TooLong,
                message: "x".into(),
            },
        ];
        let mut buf = Vec::new();
        for m in &msgs {
            crate::write_frame(&mut buf, m).unwrap();
        }
        let mut r = &buf[..];
        for m in &msgs {
            assert_eq!(&crate::read_frame::<FromSpeech>(&mut r).unwrap(), m);
        }
    }
}
