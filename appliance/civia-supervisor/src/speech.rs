//! Supervision of the speech worker (`civia-speech-worker`, whisper.cpp).
//!
//! One transcription runs at a time (whisper uses every core, or the GPU); up to
//! `queue_depth` more wait in order; beyond, callers get [`SpeechError::Busy`] at once — a
//! caller reserves its place ([`SpeechSupervisor::reserve`]) before it accepts an upload, so
//! uploads are bounded too. The worker is restarted with exponential backoff when it dies:
//! the job it was running fails with a clear error, the waiting ones run on the new worker
//! (or fail if it cannot load its model).

use crate::{describe_exit, last_words, read_frames, spawn_child, Phase};
use civia_ipc::speech::{
    AudioFormat, FromSpeech, Segment, SpeechFailure, SpeechLoadSpec, SpeechModelInfo, ToSpeech,
    TranscribeRequest, SPEECH_PROTOCOL_VERSION,
};
use civia_ipc::{write_frame_async, IpcError};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::unix::OwnedWriteHalf;
use tokio::process::Child;
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

enum Cmd {
    Transcribe {
        req: TranscribeRequest,
        events: mpsc::UnboundedSender<SpeechEvent>,
    },
    Cancel {
        id: u64,
    },
    Shutdown,
}

struct Inner {
    status: watch::Sender<SpeechStatus>,
    commands: mpsc::UnboundedSender<Cmd>,
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
        self.status.send_modify(|s| s.jobs = n);
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
    commands: mpsc::UnboundedSender<Cmd>,
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
            let _ = self.commands.send(Cmd::Cancel { id: self.id });
        }
    }
}

impl SpeechSupervisor {
    /// Starts supervising (the worker starts at once, in the background).
    pub fn start(spec: SpeechSpec) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let (status, _) = watch::channel(SpeechStatus {
            phase: Phase::Starting,
            worker_pid: None,
            restarts: 0,
            last_error: None,
            model: None,
            jobs: 0,
        });
        let inner = Arc::new(Inner {
            status,
            commands: tx,
            next_id: AtomicU64::new(1),
            jobs: AtomicUsize::new(0),
            queue_depth: spec.queue_depth,
        });
        tokio::spawn(manage(inner.clone(), spec, rx));
        Self { inner }
    }

    pub fn status(&self) -> SpeechStatus {
        self.inner.status.borrow().clone()
    }

    pub fn watch(&self) -> watch::Receiver<SpeechStatus> {
        self.inner.status.subscribe()
    }

    /// Reserves a place for one transcription, or refuses at once when the worker is not
    /// ready or `queue_depth` jobs already wait behind the running one.
    pub fn reserve(&self) -> Result<SpeechSlot, SpeechError> {
        let status = self.status();
        if status.phase != Phase::Ready {
            return Err(SpeechError::Unavailable(status.last_error.unwrap_or_else(
                || format!("speech worker {}", status.phase.as_str()),
            )));
        }
        let limit = self.inner.queue_depth + 1;
        self.inner
            .jobs
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < limit).then_some(n + 1)
            })
            .map_err(|n| SpeechError::Busy(n.saturating_sub(1)))?;
        let n = self.inner.jobs.load(Ordering::SeqCst);
        self.inner.status.send_modify(|s| s.jobs = n);
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
            .send(Cmd::Transcribe { req, events: tx })
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
        let _ = self.inner.commands.send(Cmd::Shutdown);
        let mut rx = self.watch();
        let _ = tokio::time::timeout(
            Duration::from_secs(10),
            rx.wait_for(|s| s.phase == Phase::Stopped),
        )
        .await;
    }
}

type Waiting = (TranscribeRequest, mpsc::UnboundedSender<SpeechEvent>);

/// The jobs: the waiting queue outlives a worker, the running job does not.
struct Jobs<'a> {
    inner: &'a Inner,
    queue: &'a mut VecDeque<Waiting>,
    current: Option<(u64, mpsc::UnboundedSender<SpeechEvent>)>,
}

impl Jobs<'_> {
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
                        message: "transcription annulée".into(),
                    },
                );
            }
        }
    }

    /// Sends the next waiting job to an idle worker.
    async fn start_next(&mut self, wr: &mut OwnedWriteHalf) -> Result<(), IpcError> {
        while self.current.is_none() {
            let Some((req, tx)) = self.queue.pop_front() else {
                return Ok(());
            };
            if tx.is_closed() {
                self.inner.job_ended(); // the client left while waiting
                continue;
            }
            let id = req.id;
            write_frame_async(wr, &ToSpeech::Transcribe(req)).await?;
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

enum End {
    Shutdown,
    /// The worker died or broke the protocol while serving.
    Failed(String),
    /// The worker could not start or load its model.
    LoadFailed(String),
}

async fn manage(inner: Arc<Inner>, spec: SpeechSpec, mut commands: mpsc::UnboundedReceiver<Cmd>) {
    let mut backoff = spec.backoff_initial;
    let mut queue = VecDeque::new();
    loop {
        inner.status.send_modify(|s| {
            s.phase = Phase::Starting;
            s.worker_pid = None;
        });
        let started = Instant::now();
        let why = match run_once(&inner, &spec, &mut commands, &mut queue).await {
            End::Shutdown => {
                inner.status.send_modify(|s| {
                    s.phase = Phase::Stopped;
                    s.worker_pid = None;
                });
                return;
            }
            End::Failed(why) | End::LoadFailed(why) => why,
        };
        if started.elapsed() >= spec.backoff_reset_after {
            backoff = spec.backoff_initial;
        }
        log::error!(
            "speech worker: {why}; restarting in {} ms",
            backoff.as_millis()
        );
        inner.status.send_modify(|s| {
            s.phase = Phase::Restarting;
            s.worker_pid = None;
            s.restarts += 1;
            s.last_error = Some(why.clone());
        });
        // Jobs reserved before the crash may still arrive: they wait for the next worker.
        let deadline = tokio::time::sleep(backoff);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut deadline => break,
                cmd = commands.recv() => match cmd {
                    Some(Cmd::Transcribe { req, events }) => queue.push_back((req, events)),
                    Some(Cmd::Cancel { id }) => Jobs { inner: &inner, queue: &mut queue, current: None }
                        .cancel_waiting(id),
                    Some(Cmd::Shutdown) | None => {
                        Jobs { inner: &inner, queue: &mut queue, current: None }
                            .fail_all(&SpeechError::Unavailable("civiad is shutting down".into()));
                        inner.status.send_modify(|s| s.phase = Phase::Stopped);
                        return;
                    }
                },
            }
        }
        backoff = (backoff * 2).min(spec.backoff_max);
    }
}

async fn run_once(
    inner: &Inner,
    spec: &SpeechSpec,
    commands: &mut mpsc::UnboundedReceiver<Cmd>,
    queue: &mut VecDeque<Waiting>,
) -> End {
    let mut jobs = Jobs {
        inner,
        queue,
        current: None,
    };
    let (mut child, sock) = match spawn_child(&spec.program, &spec.args) {
        Ok(x) => x,
        Err(e) => {
            jobs.fail_all(&SpeechError::Unavailable(e.clone()));
            return End::LoadFailed(e);
        }
    };
    inner.status.send_modify(|s| s.worker_pid = child.id());
    let (rd, mut wr) = sock.into_split();
    let (reader, mut frames) = read_frames::<FromSpeech>(rd);
    let end = drive(
        inner,
        spec,
        &mut child,
        &mut wr,
        &mut frames,
        commands,
        &mut jobs,
    )
    .await;
    match &end {
        // The running job's recording may be what killed the worker: it fails; the others
        // wait for the next worker.
        End::Failed(why) => jobs.fail_current(&SpeechError::WorkerCrashed(why.clone())),
        // A worker that cannot load will not serve them soon.
        End::LoadFailed(why) => jobs.fail_all(&SpeechError::Unavailable(why.clone())),
        End::Shutdown => {}
    }
    reader.abort();
    let _ = child.start_kill();
    let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
    end
}

type Frames = mpsc::UnboundedReceiver<Result<FromSpeech, IpcError>>;

async fn drive(
    inner: &Inner,
    spec: &SpeechSpec,
    child: &mut Child,
    wr: &mut OwnedWriteHalf,
    frames: &mut Frames,
    commands: &mut mpsc::UnboundedReceiver<Cmd>,
    jobs: &mut Jobs<'_>,
) -> End {
    let hello = ToSpeech::Hello {
        version: SPEECH_PROTOCOL_VERSION,
    };
    if let Err(e) = write_frame_async(wr, &hello).await {
        return End::LoadFailed(format!("handshake failed: {e}"));
    }
    let load_deadline = tokio::time::sleep(spec.load_timeout);
    tokio::pin!(load_deadline);
    // Handshake and load; jobs reserved before a restart wait in the queue meanwhile.
    loop {
        tokio::select! {
            _ = &mut load_deadline => {
                return End::LoadFailed(format!(
                    "speech model not loaded within {} s", spec.load_timeout.as_secs()));
            }
            status = child.wait() => {
                let exit = describe_exit(status);
                return End::LoadFailed(last_words(frames, |f| match f {
                    FromSpeech::LoadFailed { message } => Some(message),
                    _ => None,
                })
                .await
                .unwrap_or(exit));
            }
            f = frames.recv() => match f {
                Some(Ok(FromSpeech::Hello { version, pid })) => {
                    if version != SPEECH_PROTOCOL_VERSION {
                        return End::LoadFailed(format!(
                            "speech worker speaks protocol {version}, civiad {SPEECH_PROTOCOL_VERSION}"));
                    }
                    log::info!("speech worker {pid} started; loading {}", spec.load.path);
                    if let Err(e) = write_frame_async(wr, &ToSpeech::Load(spec.load.clone())).await {
                        return End::LoadFailed(format!("cannot send the load request: {e}"));
                    }
                }
                Some(Ok(FromSpeech::Loaded(info))) => {
                    log::info!("speech model ready: {} (whisper {}, sha256 {})",
                        spec.load.path, info.kind, info.sha256);
                    inner.status.send_modify(|s| {
                        s.phase = Phase::Ready;
                        s.model = Some(info);
                        s.last_error = None;
                    });
                    break;
                }
                Some(Ok(FromSpeech::LoadFailed { message })) => return End::LoadFailed(message),
                Some(Ok(_)) => return End::LoadFailed("speech worker sent a message out of order".into()),
                Some(Err(e)) => return End::LoadFailed(format!("speech worker connection lost during load: {e}")),
                None => return End::LoadFailed("speech worker connection lost during load".into()),
            },
            cmd = commands.recv() => match cmd {
                Some(Cmd::Transcribe { req, events }) => jobs.queue.push_back((req, events)),
                Some(Cmd::Cancel { id }) => jobs.cancel_waiting(id),
                Some(Cmd::Shutdown) | None => return End::Shutdown,
            },
        }
    }
    if let Err(e) = jobs.start_next(wr).await {
        return End::Failed(format!("cannot send a job to the speech worker: {e}"));
    }
    loop {
        tokio::select! {
            status = child.wait() => return End::Failed(describe_exit(status)),
            f = frames.recv() => match f {
                Some(Ok(msg)) => {
                    jobs.dispatch(msg);
                    if let Err(e) = jobs.start_next(wr).await {
                        return End::Failed(format!("cannot send a job to the speech worker: {e}"));
                    }
                }
                Some(Err(IpcError::Closed)) | None => {
                    let why = match tokio::time::timeout(Duration::from_secs(2), child.wait()).await {
                        Ok(status) => describe_exit(status),
                        Err(_) => "speech worker closed its connection".into(),
                    };
                    return End::Failed(why);
                }
                Some(Err(e)) => return End::Failed(format!("bad message from the speech worker: {e}")),
            },
            cmd = commands.recv() => match cmd {
                Some(Cmd::Transcribe { req, events }) => {
                    jobs.queue.push_back((req, events));
                    if let Err(e) = jobs.start_next(wr).await {
                        return End::Failed(format!("cannot send a job to the speech worker: {e}"));
                    }
                }
                Some(Cmd::Cancel { id }) => {
                    if jobs.current.as_ref().is_some_and(|(cur, _)| *cur == id) {
                        if let Err(e) = write_frame_async(wr, &ToSpeech::Cancel { id }).await {
                            return End::Failed(format!("cannot send cancel to the speech worker: {e}"));
                        }
                    } else {
                        jobs.cancel_waiting(id);
                    }
                }
                Some(Cmd::Shutdown) | None => {
                    let _ = write_frame_async(wr, &ToSpeech::Shutdown).await;
                    let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
                    jobs.fail_all(&SpeechError::Unavailable("civiad is shutting down".into()));
                    return End::Shutdown;
                }
            },
        }
    }
}
