//! Supervision of the worker processes: the runtime worker (language model, [`Supervisor`]),
//! the speech worker ([`SpeechSupervisor`], whisper) and the embedding worker
//! ([`EmbedSupervisor`], which is also the embedding service other crates call).
//!
//! Owns: one supervision engine for every worker (`engine`: spawning a worker with one end of
//! a Unix socket pair as its fd 3 and a parent-death signal so it never outlives us, inside
//! its jail (`jail`, [`SandboxPolicy`]: its own uid without groups or capabilities, private
//! mount, network and IPC namespaces hiding the state directory and `/run/civia`, a minimal
//! environment; a jail that cannot be built means no worker, never an unjailed one), the
//! handshake and model load, restarting it with exponential backoff when it dies, model
//! switches, shutdown), and the scheduling policies plugged into it: here the runtime
//! worker's (generation slots behind a fair bounded queue, routing streamed events by id,
//! cancellation when a caller goes away; every request in flight when the worker dies gets
//! [`GenerationError::WorkerCrashed`] at once), in `speech` the speech worker's (one job at a
//! time, the others waiting in order), in `embed` the embedding worker's (one request at a
//! time, a bounded queue in order, requests checked against the limits before they queue).
//! Driving one transcription to its end (`transcription`: its recording in a private spool
//! file deleted once the job ends, the job's events as [`Step`]s, the segments collected
//! into the [`Transcribed`] result). Also the specs built from the configuration
//! ([`WorkerSpec::from_config`], [`SpeechSpec::from_config`], [`EmbedSpec::from_config`]).
//!
//! Must never: start a worker outside its jail (except the stand-in programs of tests, with
//! `sandbox: None`) or hand it civiad's environment, block on the worker from a caller's task (callers only see channels), let a
//! worker failure take down the supervisor, log prompts, recordings' content or outputs, keep
//! a recording past its transcription, log the texts it embeds or their vectors, or speak
//! HTTP or an API's formats.

mod admission;
mod embed;
mod engine;
mod jail;
mod speech;
mod transcription;

pub use admission::Metrics;
pub use embed::{
    EmbedError, EmbedMetrics, EmbedSpec, EmbedStatus, EmbedSupervisor, Embedded, TextKind,
};
pub use jail::{JailError, SandboxPolicy};
pub use speech::{SpeechError, SpeechEvent, SpeechJob, SpeechSpec, SpeechStatus, SpeechSupervisor};
pub use transcription::{SpoolFile, Step, Transcribed, Transcription};

use admission::{FairQueue, Queued};
use civia_config::Config;
use civia_ipc::{
    FailureKind, FinishReason, FromWorker, GenerateRequest, LoadSpec, ModelInfo, Prompt,
    RuntimeProtocol, SamplingParams, ToWorker, Usage,
};
use engine::{Cmd, Command, Common, Held, Link, Policy, Shared, Stopping, Wording, WorkerStatus};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};

/// How to start the worker and what to load.
#[derive(Debug, Clone)]
pub struct WorkerSpec {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub load: LoadSpec,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    pub backoff_reset_after: Duration,
    pub load_timeout: Duration,
    /// Most requests waiting for a slot (beyond: `QueueFull`).
    pub queue_depth: usize,
    /// Longest wait for a slot (beyond: `QueueTimeout`).
    pub queue_timeout: Duration,
    /// The worker's jail ([`SandboxPolicy::from_config`]); `None` only for stand-in workers
    /// in tests: the real worker programs refuse to run outside it.
    pub sandbox: Option<SandboxPolicy>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Spawning the worker and loading the model.
    Starting,
    /// Model loaded, accepting generations.
    Ready,
    /// The worker died or failed to load; waiting before the next start.
    Restarting,
    /// Shut down on request.
    Stopped,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::Ready => "ready",
            Phase::Restarting => "restarting",
            Phase::Stopped => "stopped",
        }
    }
}

/// What `/health` and `/ready` report.
#[derive(Debug, Clone)]
pub struct Status {
    pub phase: Phase,
    pub worker_pid: Option<u32>,
    pub restarts: u32,
    pub last_error: Option<String>,
    pub model: Option<ModelInfo>,
}

impl WorkerStatus for Status {
    type Info = ModelInfo;
    fn common(&mut self) -> Common<'_, ModelInfo> {
        Common {
            phase: &mut self.phase,
            worker_pid: &mut self.worker_pid,
            restarts: &mut self.restarts,
            last_error: &mut self.last_error,
            model: &mut self.model,
        }
    }
}

/// Events of one generation, in order: `Started`, `Delta`*, then `Finished` or `Failed`.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Started { prompt_tokens: u32 },
    Delta(String),
    Finished { reason: FinishReason, usage: Usage },
    Failed(GenerationError),
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GenerationError {
    #[error("the model is not available right now ({0}); retry in a few seconds")]
    Unavailable(String),
    #[error("the box is busy: {0} requests are already waiting; retry in a few seconds")]
    QueueFull(usize),
    #[error("no generation slot became free within {0} s; retry later")]
    QueueTimeout(u64),
    #[error("the runtime worker stopped while generating ({0}); it is being restarted, retry in a few seconds")]
    WorkerCrashed(String),
    #[error("{0}")]
    ContextOverflow(String),
    #[error("{0}")]
    InvalidPrompt(String),
    /// The worker could not turn the answer's JSON schema into a grammar.
    #[error("{0}")]
    InvalidGrammar(String),
    #[error("generation failed: {0}")]
    Internal(String),
}

/// The runtime worker's jobs.
enum Job {
    Generate {
        req: GenerateRequest,
        user: String,
        events: mpsc::UnboundedSender<Event>,
    },
    Cancel {
        id: u64,
    },
}

type Command_ = Cmd<Slots>;

struct Inner {
    shared: Arc<Shared<Status, LoadSpec>>,
    commands: mpsc::UnboundedSender<Command_>,
    next_id: AtomicU64,
    metrics: Arc<Metrics>,
}

/// Handle to the supervised worker; cheap to clone.
#[derive(Clone)]
pub struct Supervisor {
    inner: Arc<Inner>,
}

/// A running generation. Dropping it before the end cancels the generation in the worker.
pub struct Generation {
    id: u64,
    events: mpsc::UnboundedReceiver<Event>,
    commands: mpsc::UnboundedSender<Command_>,
    done: bool,
}

impl Generation {
    /// The next event; `None` only after the final event was returned.
    pub async fn next(&mut self) -> Option<Event> {
        if self.done {
            return None;
        }
        let ev = self.events.recv().await.unwrap_or_else(|| {
            Event::Failed(GenerationError::WorkerCrashed(
                "the supervisor dropped the request".into(),
            ))
        });
        if matches!(ev, Event::Finished { .. } | Event::Failed(_)) {
            self.done = true;
        }
        Some(ev)
    }

    /// Asks the worker to stop early; the final event (`Finished` with `Cancelled` and the
    /// usage so far) still comes through [`Generation::next`].
    pub fn cancel(&mut self) {
        if !self.done {
            let _ = self
                .commands
                .send(Command::Job(Job::Cancel { id: self.id }));
        }
    }
}

impl Drop for Generation {
    fn drop(&mut self) {
        if !self.done {
            let _ = self
                .commands
                .send(Command::Job(Job::Cancel { id: self.id }));
        }
    }
}

impl WorkerSpec {
    /// The runtime worker started as `program args`, loading `[model]` with the restart and
    /// queue settings of `[runtime]` (`model.threads = 0`: every core).
    pub fn from_config(cfg: &Config, program: PathBuf, args: Vec<String>) -> Self {
        let m = &cfg.model;
        let r = &cfg.runtime;
        Self {
            program,
            args,
            load: LoadSpec {
                path: m.path.to_string_lossy().into_owned(),
                sha256: m.sha256.clone(),
                context_length: m.context_length,
                batch_size: m.batch_size,
                threads: threads(m.threads),
                gpu_layers: m.gpu_layers,
                n_parallel: m.n_parallel,
                prefix_reuse: m.prefix_reuse,
            },
            backoff_initial: Duration::from_millis(r.restart_backoff_initial_ms),
            backoff_max: Duration::from_millis(r.restart_backoff_max_ms),
            backoff_reset_after: Duration::from_secs(r.restart_backoff_reset_secs),
            load_timeout: Duration::from_secs(r.load_timeout_secs),
            queue_depth: r.queue_depth,
            queue_timeout: Duration::from_secs(r.queue_timeout_secs),
            sandbox: Some(SandboxPolicy::from_config(cfg)),
        }
    }
}

/// A configured thread count, 0 meaning every core.
pub(crate) fn threads(configured: u32) -> u32 {
    match configured {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
        n => n,
    }
}

impl Supervisor {
    /// Starts supervising; the worker is spawned at once on the current tokio runtime.
    pub fn start(spec: WorkerSpec) -> Self {
        let (commands, rx) = mpsc::unbounded_channel();
        let status = Status {
            phase: Phase::Starting,
            worker_pid: None,
            restarts: 0,
            last_error: None,
            model: None,
        };
        let shared = Arc::new(Shared::new(status, spec.load.clone()));
        let metrics = Arc::new(Metrics::default());
        metrics
            .slots
            .store(u64::from(spec.load.n_parallel), Ordering::Relaxed);
        let policy = Slots {
            metrics: metrics.clone(),
            slots: spec.load.n_parallel as usize,
            queue_timeout: spec.queue_timeout,
            queue: FairQueue::new(spec.queue_depth),
            running: HashMap::new(),
            rate: RateWindow::default(),
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
        engine::spawn(policy, launch, shared.clone(), rx);
        Self {
            inner: Arc::new(Inner {
                shared,
                commands,
                next_id: AtomicU64::new(1),
                metrics,
            }),
        }
    }

    pub fn status(&self) -> Status {
        self.inner.shared.status.borrow().clone()
    }

    /// A receiver that sees every status change.
    pub fn watch(&self) -> watch::Receiver<Status> {
        self.inner.shared.status.subscribe()
    }

    pub fn metrics(&self) -> Arc<Metrics> {
        self.inner.metrics.clone()
    }

    /// Submits a generation on behalf of `user` (the fairness key). Fails at once with
    /// `Unavailable` unless the worker is ready; waits in the fair queue when every slot is
    /// busy (the first event then comes when it is admitted, or `QueueFull`/`QueueTimeout`).
    pub fn generate(
        &self,
        prompt: Prompt,
        params: SamplingParams,
        user: &str,
    ) -> Result<Generation, GenerationError> {
        let status = self.status();
        if status.phase != Phase::Ready {
            self.inner
                .metrics
                .rejected_unavailable
                .fetch_add(1, Ordering::Relaxed);
            let why = match status.last_error {
                Some(e) => format!("runtime worker {}: {e}", status.phase.as_str()),
                None => format!("runtime worker {}", status.phase.as_str()),
            };
            return Err(GenerationError::Unavailable(why));
        }
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::unbounded_channel();
        self.inner
            .commands
            .send(Command::Job(Job::Generate {
                req: GenerateRequest { id, prompt, params },
                user: user.to_string(),
                events: tx,
            }))
            .map_err(|_| GenerationError::Unavailable("supervisor stopped".into()))?;
        Ok(Generation {
            id,
            events: rx,
            commands: self.inner.commands.clone(),
            done: false,
        })
    }

    /// What the worker loads (the configured model, or the last one switched to).
    pub fn load_spec(&self) -> LoadSpec {
        self.inner.shared.load()
    }

    /// Replaces the worker by one that loads `load` (a model update): requests in flight
    /// get `Unavailable`, new ones wait for nothing (503 until loaded). Returns the new
    /// model's description once loaded, or why it failed to load; on failure the supervisor
    /// keeps retrying `load` with backoff, so the caller switches back to what worked.
    pub async fn switch_model(&self, load: LoadSpec) -> Result<ModelInfo, String> {
        let (reply, rx) = oneshot::channel();
        self.inner
            .commands
            .send(Command::Switch { load, reply })
            .map_err(|_| "the supervisor has stopped".to_string())?;
        rx.await
            .map_err(|_| "the supervisor has stopped".to_string())?
    }

    /// Asks the worker to exit and waits until it has (bounded).
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

/// The runtime worker's scheduling: `slots` generations at once in the worker, the others
/// in a fair bounded queue; nothing waits while no worker serves.
struct Slots {
    metrics: Arc<Metrics>,
    slots: usize,
    queue_timeout: Duration,
    queue: FairQueue,
    /// Generations in the worker, by id.
    running: HashMap<u64, mpsc::UnboundedSender<Event>>,
    rate: RateWindow,
}

impl Policy for Slots {
    type Protocol = RuntimeProtocol;
    type Status = Status;
    type Job = Job;
    const WORDING: Wording = Wording {
        name: "runtime worker",
        worker: "worker",
        the_worker: "worker",
        model: "model",
        us: "supervisor",
        load_request: "load request",
    };
    const TICK: Option<Duration> = Some(Duration::from_secs(1));

    fn describe_loaded(load: &LoadSpec, info: &ModelInfo) -> String {
        format!(
            "model ready: {} (sha256 {}, context {} tokens, template {:?})",
            load.path, info.sha256, info.n_ctx, info.template
        )
    }

    fn hold(&mut self, job: Job, held: Held<'_>) {
        let Job::Generate { events, .. } = job else {
            return;
        };
        let err = match held {
            Held::Loading => "runtime worker starting".to_string(),
            Held::Restarting(why) => {
                self.metrics
                    .rejected_unavailable
                    .fetch_add(1, Ordering::Relaxed);
                format!("runtime worker restarting: {why}")
            }
        };
        let _ = events.send(Event::Failed(GenerationError::Unavailable(err)));
    }

    async fn ready(
        &mut self,
        load: &LoadSpec,
        _link: &mut Link<RuntimeProtocol>,
    ) -> Result<(), String> {
        // The worker's slots (a model switch may bring another count).
        self.slots = load.n_parallel as usize;
        self.rate = RateWindow::default();
        Ok(())
    }

    async fn submit(&mut self, job: Job, link: &mut Link<RuntimeProtocol>) -> Result<(), String> {
        match job {
            Job::Generate { req, user, events } => {
                let q = Queued {
                    req,
                    user,
                    events,
                    since: Instant::now(),
                };
                if let Err(q) = self.queue.push(q) {
                    self.metrics
                        .rejected_queue_full
                        .fetch_add(1, Ordering::Relaxed);
                    let _ = q
                        .events
                        .send(Event::Failed(GenerationError::QueueFull(self.queue.len())));
                }
                self.admit(link).await
            }
            Job::Cancel { id } => {
                if self.queue.remove(id).is_none() && self.running.contains_key(&id) {
                    link.send(&ToWorker::Cancel { id })
                        .await
                        .map_err(|e| format!("cannot send cancel to worker: {e}"))?;
                }
                self.metrics
                    .queued
                    .store(self.queue.len() as u64, Ordering::Relaxed);
                Ok(())
            }
        }
    }

    async fn message(
        &mut self,
        msg: FromWorker,
        link: &mut Link<RuntimeProtocol>,
    ) -> Result<(), String> {
        dispatch(&mut self.running, msg, &self.metrics);
        self.admit(link).await
    }

    fn tick(&mut self) {
        let metrics = &self.metrics;
        if let Some(deadline) = Instant::now().checked_sub(self.queue_timeout) {
            for q in self.queue.expire(deadline) {
                metrics
                    .rejected_queue_timeout
                    .fetch_add(1, Ordering::Relaxed);
                let _ = q.events.send(Event::Failed(GenerationError::QueueTimeout(
                    self.queue_timeout.as_secs(),
                )));
            }
            metrics
                .queued
                .store(self.queue.len() as u64, Ordering::Relaxed);
        }
        let tps = self
            .rate
            .update(metrics.completion_tokens.load(Ordering::Relaxed));
        metrics
            .tokens_per_second
            .store(tps.to_bits(), Ordering::Relaxed);
    }

    fn crashed(&mut self, why: &str) {
        self.metrics
            .failed_worker_crash
            .fetch_add(self.running.len() as u64, Ordering::Relaxed);
        self.fail_all(&GenerationError::WorkerCrashed(why.to_string()));
    }

    fn load_failed(&mut self, _why: &str) {
        // Nothing waits for a worker that is not serving: requests were refused meanwhile.
    }

    fn stop_all(&mut self, why: Stopping) {
        let why = match why {
            Stopping::Shutdown => "civiad is shutting down",
            Stopping::Replaced => "the model is being replaced",
        };
        self.fail_all(&GenerationError::Unavailable(why.into()));
    }
}

impl Slots {
    /// Sends queued requests to the worker while it has free slots.
    async fn admit(&mut self, link: &mut Link<RuntimeProtocol>) -> Result<(), String> {
        while self.running.len() < self.slots {
            let Some(q) = self.queue.pop() else { break };
            if q.events.is_closed() {
                continue; // the client left while waiting
            }
            let id = q.req.id;
            self.running.insert(id, q.events);
            self.metrics.admitted.fetch_add(1, Ordering::Relaxed);
            link.send(&ToWorker::Generate(q.req))
                .await
                .map_err(|e| format!("cannot send request to worker: {e}"))?;
        }
        self.metrics
            .queued
            .store(self.queue.len() as u64, Ordering::Relaxed);
        self.metrics
            .active
            .store(self.running.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn fail_all(&mut self, err: &GenerationError) {
        for (_, tx) in self.running.drain() {
            let _ = tx.send(Event::Failed(err.clone()));
        }
        for q in self.queue.drain() {
            let _ = q.events.send(Event::Failed(err.clone()));
        }
        self.metrics.queued.store(0, Ordering::Relaxed);
        self.metrics.active.store(0, Ordering::Relaxed);
    }
}

/// Completion tokens per second over a sliding window of ten one-second samples.
#[derive(Default)]
struct RateWindow {
    samples: std::collections::VecDeque<(Instant, u64)>,
}

impl RateWindow {
    fn update(&mut self, total: u64) -> f64 {
        let now = Instant::now();
        self.samples.push_back((now, total));
        while self.samples.len() > 11 {
            self.samples.pop_front();
        }
        match self.samples.front() {
            Some((t0, n0)) if now > *t0 => (total - n0) as f64 / (now - *t0).as_secs_f64(),
            _ => 0.0,
        }
    }
}

fn dispatch(
    pending: &mut HashMap<u64, mpsc::UnboundedSender<Event>>,
    msg: FromWorker,
    metrics: &Metrics,
) {
    let (id, ev, last) = match msg {
        FromWorker::Started { id, prompt_tokens } => (id, Event::Started { prompt_tokens }, false),
        FromWorker::Delta { id, text } => (id, Event::Delta(text), false),
        FromWorker::Finished {
            id,
            finish_reason,
            usage,
        } => {
            metrics.count(&usage);
            (
                id,
                Event::Finished {
                    reason: finish_reason,
                    usage,
                },
                true,
            )
        }
        FromWorker::Failed { id, kind, message } => {
            let err = match kind {
                FailureKind::ContextOverflow => GenerationError::ContextOverflow(message),
                FailureKind::InvalidPrompt => GenerationError::InvalidPrompt(message),
                FailureKind::InvalidGrammar => GenerationError::InvalidGrammar(message),
                FailureKind::Internal => GenerationError::Internal(message),
            };
            (id, Event::Failed(err), true)
        }
        other => {
            log::warn!("unexpected message from worker ignored: {other:?}");
            return;
        }
    };
    if last {
        if let Some(tx) = pending.remove(&id) {
            let _ = tx.send(ev);
        }
        metrics
            .active
            .store(pending.len() as u64, Ordering::Relaxed);
    } else if let Some(tx) = pending.get(&id) {
        let _ = tx.send(ev);
    }
}
