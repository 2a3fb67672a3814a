//! Supervision of the speech worker (`civia-speech-worker`, whisper.cpp).
//!
//! One transcription runs at a time (whisper uses every core, or the GPU); up to
//! `queue_depth` more wait in order; beyond, callers get [`SpeechError::Busy`] at once — a
//! caller reserves its place ([`SpeechSupervisor::reserve`]) before it accepts an upload, so
//! uploads are bounded too. The worker is restarted with exponential backoff when it dies:
//! the job it was running fails with a clear error, the waiting ones run on the new worker
//! (or fail if it cannot load its model). The process itself is the engine's business
//! ([`crate::engine`]); this module is the speech worker's scheduling policy and its handle.

use crate::engine::{
    self, Cmd, Command, Common, Held, Link, Policy, Shared, Stopping, Wording, WorkerStatus,
};
use crate::Phase;
use civia_config::Config;
use civia_ipc::speech::{
    AudioFormat, FromSpeech, Segment, SpeechFailure, SpeechLoadSpec, SpeechModelInfo,
    SpeechProtocol, ToSpeech, TranscribeRequest,
};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// How to start the speech worker and what it loads.
#[derive(Debug, Clone)]
pub struct SpeechSpec {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub load: SpeechLoadSpec,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    pub backoff_reset_after: Duration,
    pub load_timeout: Duration,
    /// Transcriptions waiting behind the running one.
    pub queue_depth: usize,
    /// The worker's jail (with the spool directory exposed); `None` only for stand-in
    /// workers in tests: the real worker program refuses to run outside it.
    pub sandbox: Option<crate::SandboxPolicy>,
}

/// What `/health` and `/admin/status` report about transcription.
#[derive(Debug, Clone)]
pub struct SpeechStatus {
    pub phase: Phase,
    pub worker_pid: Option<u32>,
    pub restarts: u32,
    pub last_error: Option<String>,
    pub model: Option<SpeechModelInfo>,
    /// Jobs running or waiting.
    pub jobs: usize,
}

impl WorkerStatus for SpeechStatus {
    type Info = SpeechModelInfo;
    fn common(&mut self) -> Common<'_, SpeechModelInfo> {
        Common {
            phase: &mut self.phase,
            worker_pid: &mut self.worker_pid,
            restarts: &mut self.restarts,
            last_error: &mut self.last_error,
            model: &mut self.model,
        }
    }
}

impl SpeechSpec {
    /// The speech worker `program` loading `[speech] path` (None when transcription is off),
    /// with the queue of `[speech]` and the restart settings of `[runtime]`
    /// (`speech.threads = 0`: every core).
    pub fn from_config(cfg: &Config, program: PathBuf) -> Option<Self> {
        let path = cfg.speech.path.as_ref()?;
        let r = &cfg.runtime;
        Some(Self {
            program,
            args: Vec::new(),
            load: SpeechLoadSpec {
                path: path.to_string_lossy().into_owned(),
                sha256: cfg.speech.sha256.clone(),
                threads: crate::threads(cfg.speech.threads),
                gpu: cfg.speech.gpu,
            },
            backoff_initial: Duration::from_millis(r.restart_backoff_initial_ms),
            backoff_max: Duration::from_millis(r.restart_backoff_max_ms),
            backoff_reset_after: Duration::from_secs(r.restart_backoff_reset_secs),
            load_timeout: Duration::from_secs(r.load_timeout_secs),
            queue_depth: cfg.speech.queue_depth,
            sandbox: Some(crate::SandboxPolicy {
                expose: vec![cfg.speech_spool_dir()],
                ..crate::SandboxPolicy::from_config(cfg)
            }),
        })
    }
}

/// Events of one transcription, in order: `Probed`, then `Progress` and `Segment` mixed,
/// then `Finished` or `Failed`.
#[derive(Debug, Clone, PartialEq)]
pub enum SpeechEvent {
    Probed(AudioFormat),
    Progress {
        processed_secs: f64,
        duration_secs: Option<f64>,
    },
    Segment(Segment),
    Finished {
        language: String,
        duration_secs: f64,
        silent_secs: f64,
    },
    Failed(SpeechError),
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpeechError {
    #[error("transcription is not available right now ({0}); retry in a moment")]
    Unavailable(String),
    #[error("the speech worker is busy: {0} recordings are already waiting; retry later")]
    Busy(usize),
    #[error("the speech worker stopped during the transcription ({0}); it is being restarted")]
    WorkerCrashed(String),
    #[error("{message}")]
    Job {
        kind: SpeechFailure,
        message: String,
    },
}

/// The speech worker's jobs.
enum Job {
    Transcribe {
        req: TranscribeRequest,
        events: mpsc::UnboundedSender<SpeechEvent>,
    },
    Cancel {
        id: u64,
    },
}

struct Inner {
    shared: Arc<Shared<SpeechStatus, SpeechLoadSpec>>,
    commands: mpsc::UnboundedSender<Cmd<OneAtATime>>,
    next_id: AtomicU64,
    /// Jobs accepted and not yet ended (running + waiting).
    jobs: AtomicUsize,
    queue_depth: usize,
}

impl Inner {
    fn job_ended(&self) {
        let _ = self
            .jobs
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        let n = self.jobs.load(Ordering::SeqCst);
        self.shared.status.send_modify(|s| s.jobs = n);
    }
}

/// Handle to the supervised speech worker; cheap to clone.
#[derive(Clone)]
pub struct SpeechSupervisor {
    inner: Arc<Inner>,
}

/// A place in the speech queue, held while the recording uploads; given back when dropped
/// unless a transcription used it.
pub struct SpeechSlot {
    inner: Arc<Inner>,
    used: bool,
}

impl Drop for SpeechSlot {
    fn drop(&mut self) {
        if !self.used {
            self.inner.job_ended();
        }
    }
}

/// One transcription in progress. Dropping it before its end cancels it.
pub struct SpeechJob {
    id: u64,
    events: mpsc::UnboundedReceiver<SpeechEvent>,
    commands: mpsc::UnboundedSender<Cmd<OneAtATime>>,
    ended: bool,
}

impl SpeechJob {
    /// The next event; None after the last one.
    pub async fn next(&mut self) -> Option<SpeechEvent> {
        if self.ended {
            return None;
        }
        let ev = self.events.recv().await;
        if matches!(
            ev,
            None | Some(SpeechEvent::Finished { .. } | SpeechEvent::Failed(_))
        ) {
            self.ended = true;
        }
        ev
    }
}

impl Drop for SpeechJob {
    fn drop(&mut self) {
        if !self.ended {
            let _ = self
                .commands
                .send(Command::Job(Job::Cancel { id: self.id }));
        }
    }
}

impl SpeechSupervisor {
    /// Starts supervising (the worker starts at once, in the background).
    pub fn start(spec: SpeechSpec) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let status = SpeechStatus {
            phase: Phase::Starting,
            worker_pid: None,
            restarts: 0,
            last_error: None,
            model: None,
            jobs: 0,
        };
        let inner = Arc::new(Inner {
            shared: Arc::new(Shared::new(status, spec.load.clone())),
            commands: tx,
            next_id: AtomicU64::new(1),
            jobs: AtomicUsize::new(0),
            queue_depth: spec.queue_depth,
        });
        let policy = OneAtATime {
            inner: inner.clone(),
            queue: VecDeque::new(),
            current: None,
        };
        let launch = engine::Launch {
            program: spec.program,
            args: spec.args,
            load: spec.load,
            backoff: engine::Backoff {
                initial: spec.backoff_initial,
                max: spec.backoff_max,
                reset_after: spec.backoff_reset_after,
            },
            load_timeout: spec.load_timeout,
            sandbox: spec.sandbox,
        };
        engine::spawn(policy, launch, inner.shared.clone(), rx);
        Self { inner }
    }

    pub fn status(&self) -> SpeechStatus {
        self.inner.shared.status.borrow().clone()
    }

    pub fn watch(&self) -> watch::Receiver<SpeechStatus> {
        self.inner.shared.status.subscribe()
    }

    /// Refuses at once, without taking anything, when a transcription would be refused now
    /// (worker not ready, queue full): the API checks this before an upload, and reserves
    /// its place only once the recording is received, so that a slow upload holds no place.
    pub fn check_room(&self) -> Result<(), SpeechError> {
        let status = self.status();
        if status.phase != Phase::Ready {
            return Err(SpeechError::Unavailable(status.last_error.unwrap_or_else(
                || format!("speech worker {}", status.phase.as_str()),
            )));
        }
        let n = self.inner.jobs.load(Ordering::SeqCst);
        if n > self.inner.queue_depth {
            return Err(SpeechError::Busy(n.saturating_sub(1)));
        }
        Ok(())
    }

    /// Reserves a place for one transcription, or refuses at once when the worker is not
    /// ready or `queue_depth` jobs already wait behind the running one.
    pub fn reserve(&self) -> Result<SpeechSlot, SpeechError> {
        self.check_room()?;
        let limit = self.inner.queue_depth + 1;
        self.inner
            .jobs
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < limit).then_some(n + 1)
            })
            .map_err(|n| SpeechError::Busy(n.saturating_sub(1)))?;
        let n = self.inner.jobs.load(Ordering::SeqCst);
        self.inner.shared.status.send_modify(|s| s.jobs = n);
        Ok(SpeechSlot {
            inner: self.inner.clone(),
            used: false,
        })
    }

    /// Queues a transcription in its reserved place (its `id` is assigned here).
    pub fn transcribe(
        &self,
        mut slot: SpeechSlot,
        mut req: TranscribeRequest,
    ) -> Result<SpeechJob, SpeechError> {
        slot.used = true;
        req.id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::unbounded_channel();
        let id = req.id;
        if self
            .inner
            .commands
            .send(Command::Job(Job::Transcribe { req, events: tx }))
            .is_err()
        {
            self.inner.job_ended();
            return Err(SpeechError::Unavailable("the supervisor stopped".into()));
        }
        Ok(SpeechJob {
            id,
            events: rx,
            commands: self.inner.commands.clone(),
            ended: false,
        })
    }

    /// Stops the worker and waits (up to 10 s) for it to exit.
    pub async fn shutdown(&self) {
        let _ = self.inner.commands.send(Command::Shutdown);
        let mut rx = self.watch();
        let _ = tokio::time::timeout(
            Duration::from_secs(10),
            rx.wait_for(|s| s.phase == Phase::Stopped),
        )
        .await;
    }
}

type Waiting = (TranscribeRequest, mpsc::UnboundedSender<SpeechEvent>);

/// The speech worker's scheduling: one job at a time in the worker, the others waiting in
/// order. The waiting queue outlives a worker (jobs reserved before a restart run on the
/// next one), the running job does not (its recording may be what killed the worker).
struct OneAtATime {
    inner: Arc<Inner>,
    queue: VecDeque<Waiting>,
    current: Option<(u64, mpsc::UnboundedSender<SpeechEvent>)>,
}

impl Policy for OneAtATime {
    type Protocol = SpeechProtocol;
    type Status = SpeechStatus;
    type Job = Job;
    const WORDING: Wording = Wording {
        name: "speech worker",
        worker: "speech worker",
        the_worker: "the speech worker",
        model: "speech model",
        us: "civiad",
        load_request: "the load request",
    };

    fn describe_loaded(load: &SpeechLoadSpec, info: &SpeechModelInfo) -> String {
        format!(
            "speech model ready: {} (whisper {}, sha256 {})",
            load.path, info.kind, info.sha256
        )
    }

    fn hold(&mut self, job: Job, _held: Held<'_>) {
        match job {
            Job::Transcribe { req, events } => self.queue.push_back((req, events)),
            Job::Cancel { id } => self.cancel_waiting(id),
        }
    }

    async fn ready(
        &mut self,
        _load: &SpeechLoadSpec,
        link: &mut Link<SpeechProtocol>,
    ) -> Result<(), String> {
        self.start_next(link).await
    }

    async fn submit(&mut self, job: Job, link: &mut Link<SpeechProtocol>) -> Result<(), String> {
        match job {
            Job::Transcribe { req, events } => {
                self.queue.push_back((req, events));
                self.start_next(link).await
            }
            Job::Cancel { id } => {
                if self.current.as_ref().is_some_and(|(cur, _)| *cur == id) {
                    link.send(&ToSpeech::Cancel { id })
                        .await
                        .map_err(|e| format!("cannot send cancel to the speech worker: {e}"))?;
                } else {
                    self.cancel_waiting(id);
                }
                Ok(())
            }
        }
    }

    async fn message(
        &mut self,
        msg: FromSpeech,
        link: &mut Link<SpeechProtocol>,
    ) -> Result<(), String> {
        self.dispatch(msg);
        self.start_next(link).await
    }

    fn crashed(&mut self, why: &str) {
        // The running job fails; the others wait for the next worker.
        self.fail_current(&SpeechError::WorkerCrashed(why.to_string()));
    }

    fn load_failed(&mut self, why: &str) {
        // A worker that cannot load will not serve them soon.
        self.fail_all(&SpeechError::Unavailable(why.to_string()));
    }

    fn stop_all(&mut self, why: Stopping) {
        let why = match why {
            Stopping::Shutdown => "civiad is shutting down",
            Stopping::Replaced => "the speech model is being replaced",
        };
        self.fail_all(&SpeechError::Unavailable(why.into()));
    }
}

impl OneAtATime {
    fn fail(&self, events: &mpsc::UnboundedSender<SpeechEvent>, err: SpeechError) {
        let _ = events.send(SpeechEvent::Failed(err));
        self.inner.job_ended();
    }

    fn fail_current(&mut self, err: &SpeechError) {
        if let Some((_, tx)) = self.current.take() {
            self.fail(&tx, err.clone());
        }
    }

    fn fail_all(&mut self, err: &SpeechError) {
        self.fail_current(err);
        while let Some((_, tx)) = self.queue.pop_front() {
            self.fail(&tx, err.clone());
        }
    }

    /// A cancelled job leaves the queue (the running one is cancelled by the caller).
    fn cancel_waiting(&mut self, id: u64) {
        if let Some(pos) = self.queue.iter().position(|(r, _)| r.id == id) {
            if let Some((_, tx)) = self.queue.remove(pos) {
                self.fail(
                    &tx,
                    SpeechError::Job {
                        kind: SpeechFailure::Cancelled,
                        message: "transcription cancelled".into(),
                    },
                );
            }
        }
    }

    /// Sends the next waiting job to an idle worker.
    async fn start_next(&mut self, link: &mut Link<SpeechProtocol>) -> Result<(), String> {
        while self.current.is_none() {
            let Some((req, tx)) = self.queue.pop_front() else {
                return Ok(());
            };
            if tx.is_closed() {
                self.inner.job_ended(); // the client left while waiting
                continue;
            }
            let id = req.id;
            link.send(&ToSpeech::Transcribe(req))
                .await
                .map_err(|e| format!("cannot send a job to the speech worker: {e}"))?;
            self.current = Some((id, tx));
        }
        Ok(())
    }

    /// Routes a worker message to its job; the job ends on `Finished` or `Failed`.
    fn dispatch(&mut self, msg: FromSpeech) {
        let (id, ev) = match msg {
            FromSpeech::Probed { id, format } => (id, SpeechEvent::Probed(format)),
            FromSpeech::Progress {
                id,
                processed_secs,
                duration_secs,
            } => (
                id,
                SpeechEvent::Progress {
                    processed_secs,
                    duration_secs,
                },
            ),
            FromSpeech::Segment { id, segment } => (id, SpeechEvent::Segment(segment)),
            FromSpeech::Finished {
                id,
                language,
                duration_secs,
                silent_secs,
            } => (
                id,
                SpeechEvent::Finished {
                    language,
                    duration_secs,
                    silent_secs,
                },
            ),
            FromSpeech::Failed { id, kind, message } => {
                (id, SpeechEvent::Failed(SpeechError::Job { kind, message }))
            }
            FromSpeech::Hello { .. } | FromSpeech::Loaded(_) | FromSpeech::LoadFailed { .. } => {
                log::warn!("speech worker sent a message out of order; ignored");
                return;
            }
        };
        let Some((cur, tx)) = &self.current else {
            return;
        };
        if *cur != id {
            return;
        }
        let last = matches!(ev, SpeechEvent::Finished { .. } | SpeechEvent::Failed(_));
        let _ = tx.send(ev);
        if last {
            self.current = None;
            self.inner.job_ended();
        }
    }
}
