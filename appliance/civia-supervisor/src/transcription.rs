//! One transcription driven to its end: the recording in a private spool file, the speech
//! job's events as steps, the segments collected for the result, and the recording deleted
//! as soon as the job ends, fails, or is dropped.

use crate::speech::{SpeechError, SpeechEvent, SpeechJob};
use civia_ipc::speech::Segment;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// A recording in the speech spool directory (mode 0600, a fresh random name), deleted when
/// dropped.
#[derive(Debug)]
pub struct SpoolFile {
    path: PathBuf,
}

impl SpoolFile {
    /// Creates an empty recording in `dir`, with the file to write it through. It is
    /// readable by all (0644, whatever the umask) so that the speech worker, under its own
    /// uid, can read it; the spool directory is 0711 (not listable) under the 0700 state
    /// directory, which keeps everyone else out, and the worker sees it bound read-only.
    pub fn create(dir: &Path) -> std::io::Result<(Self, std::fs::File)> {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join(format!("{}.upload", uuid::Uuid::new_v4().simple()));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        file.set_permissions(std::fs::Permissions::from_mode(0o644))?;
        Ok((Self { path }, file))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Deletes the recording now; true when it is gone.
    pub fn remove(&self) -> bool {
        match std::fs::remove_file(&self.path) {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
            Err(e) => {
                log::error!("cannot delete the recording {}: {e}", self.path.display());
                false
            }
        }
    }
}

impl Drop for SpoolFile {
    fn drop(&mut self) {
        self.remove();
    }
}

/// What a transcription has to say next.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Seconds of audio processed, of `duration` when known (`Probed` is progress 0).
    Progress {
        processed: f64,
        duration: Option<f64>,
    },
    Segment(Segment),
    /// The end: every segment, in order.
    Done(Transcribed),
}

/// A finished transcription.
#[derive(Debug, Clone, PartialEq)]
pub struct Transcribed {
    pub segments: Vec<Segment>,
    pub language: String,
    pub duration_secs: f64,
    /// Whether the recording is gone from the disk.
    pub audio_deleted: bool,
}

/// One transcription in progress with its recording. Dropping it cancels the job and
/// deletes the recording.
pub struct Transcription {
    job: SpeechJob,
    recording: SpoolFile,
    segments: Vec<Segment>,
    started: Instant,
}

impl Transcription {
    /// Follows `job`, which transcribes `recording`.
    pub fn new(job: SpeechJob, recording: SpoolFile) -> Self {
        Self {
            job,
            recording,
            segments: Vec::new(),
            started: Instant::now(),
        }
    }

    /// The next step, with the recording deleted once the job has ended (done or failed).
    /// None: no more steps (after the last one, or when the supervisor went away without
    /// ending the job).
    pub async fn step(&mut self) -> Option<Result<Step, SpeechError>> {
        let ev = self.job.next().await?;
        Some(match ev {
            SpeechEvent::Probed(format) => {
                let known = [
                    "wav", "mp3", "ogg", "opus", "oga", "flac", "m4a", "mp4", "aac",
                ];
                log::info!(
                    "transcribing a {} recording ({}, {} Hz, {} channel(s), {})",
                    if known.contains(&format.container.as_str()) {
                        format.container.as_str()
                    } else {
                        "other"
                    },
                    format.codec,
                    format.sample_rate,
                    format.channels,
                    format
                        .duration_secs
                        .map_or("duration unknown".into(), |d| format!("{d:.0} s"))
                );
                Ok(Step::Progress {
                    processed: 0.0,
                    duration: format.duration_secs,
                })
            }
            SpeechEvent::Progress {
                processed_secs,
                duration_secs,
            } => Ok(Step::Progress {
                processed: processed_secs,
                duration: duration_secs,
            }),
            SpeechEvent::Segment(s) => {
                self.segments.push(s.clone());
                Ok(Step::Segment(s))
            }
            SpeechEvent::Finished {
                language,
                duration_secs,
                silent_secs,
            } => {
                let audio_deleted = self.recording.remove();
                let secs = self.started.elapsed().as_secs_f64();
                log::info!(
                    "transcribed {duration_secs:.1} s of audio in {secs:.1} s (real-time factor {:.2}; {silent_secs:.0} s of silence skipped)",
                    secs / duration_secs.max(0.001)
                );
                Ok(Step::Done(Transcribed {
                    segments: std::mem::take(&mut self.segments),
                    language,
                    duration_secs,
                    audio_deleted,
                }))
            }
            SpeechEvent::Failed(e) => {
                self.recording.remove();
                Err(e)
            }
        })
    }

    /// Runs the transcription to its end. Ok(None): it ended without a result (the
    /// supervisor went away).
    pub async fn collect(mut self) -> Result<Option<Transcribed>, SpeechError> {
        while let Some(step) = self.step().await {
            if let Step::Done(d) = step? {
                return Ok(Some(d));
            }
        }
        Ok(None)
    }
}
