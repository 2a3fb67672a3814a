//! Supervision of the worker processes: the runtime worker (language model) and the speech
//! worker ([`SpeechSupervisor`], whisper).
//!
//! Owns: spawning a worker with one end of a Unix socket pair as its fd 3 (and a parent-death
//! signal so it never outlives us), the handshake and model load, routing generation requests
//! and their streamed events by id, cancellation when a caller goes away, and restarting the
//! worker with exponential backoff when it dies. Every request in flight when the worker dies
//! gets [`GenerationError::WorkerCrashed`] at once.
//!
//! Must never: block on the worker from a caller's task (callers only see channels), let a
//! worker failure take down the supervisor, or log prompts and outputs.

mod admission;
mod speech;

pub use admission::Metrics;
pub use speech::{SpeechError, SpeechEvent, SpeechJob, SpeechSpec, SpeechStatus, SpeechSupervisor};

use admission::{FairQueue, Queued};
use civia_ipc::{
    read_frame_async, write_frame_async, FailureKind, FinishReason, FromWorker, GenerateRequest,
    LoadSpec, ModelInfo, Prompt, SamplingParams, ToWorker, Usage, PROTOCOL_VERSION,
};
use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::unix::OwnedWriteHalf;
use tokio::process::{Child, Command};
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
    #[error("generation failed: {0}")]
    Internal(String),
}

enum Command_ {
    Generate {
        req: GenerateRequest,
        user: String,
        events: mpsc::UnboundedSender<Event>,
    },
    Cancel {
        id: u64,
    },
    /// Replace the worker by one loading `load`; the reply comes once it loaded or failed.
    Switch {
        load: LoadSpec,
        reply: SwitchReply,
    },
    Shutdown,
}

type SwitchReply = oneshot::Sender<Result<ModelInfo, String>>;

struct Inner {
    status: watch::Sender<Status>,
    commands: mpsc::UnboundedSender<Command_>,
    next_id: AtomicU64,
    metrics: Arc<Metrics>,
    /// What the current (or next) worker loads.
    load: std::sync::Mutex<LoadSpec>,
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
            let _ = self.commands.send(Command_::Cancel { id: self.id });
        }
    }
}

impl Drop for Generation {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.commands.send(Command_::Cancel { id: self.id });
        }
    }
}

impl Supervisor {
    /// Starts supervising; the worker is spawned at once on the current tokio runtime.
    pub fn start(spec: WorkerSpec) -> Self {
        let (commands, rx) = mpsc::unbounded_channel();
        let (status, _) = watch::channel(Status {
            phase: Phase::Starting,
            worker_pid: None,
            restarts: 0,
            last_error: None,
            model: None,
        });
        let metrics = Arc::new(Metrics::default());
        metrics
            .slots
            .store(u64::from(spec.load.n_parallel), Ordering::Relaxed);
        let inner = Arc::new(Inner {
            status,
            commands,
            next_id: AtomicU64::new(1),
            metrics,
            load: std::sync::Mutex::new(spec.load.clone()),
        });
        tokio::spawn(manage(inner.clone(), spec, rx));
        Self { inner }
    }

    pub fn status(&self) -> Status {
        self.inner.status.borrow().clone()
    }

    /// A receiver that sees every status change.
    pub fn watch(&self) -> watch::Receiver<Status> {
        self.inner.status.subscribe()
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
            .send(Command_::Generate {
                req: GenerateRequest { id, prompt, params },
                user: user.to_string(),
                events: tx,
            })
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
        self.inner
            .load
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Replaces the worker by one that loads `load` (a model update): requests in flight
    /// get `Unavailable`, new ones wait for nothing (503 until loaded). Returns the new
    /// model's description once loaded, or why it failed to load; on failure the supervisor
    /// keeps retrying `load` with backoff, so the caller switches back to what worked.
    pub async fn switch_model(&self, load: LoadSpec) -> Result<ModelInfo, String> {
        let (reply, rx) = oneshot::channel();
        self.inner
            .commands
            .send(Command_::Switch { load, reply })
            .map_err(|_| "the supervisor has stopped".to_string())?;
        rx.await
            .map_err(|_| "the supervisor has stopped".to_string())?
    }

    /// Asks the worker to exit and waits until it has (bounded).
    pub async fn shutdown(&self) {
        let _ = self.inner.commands.send(Command_::Shutdown);
        let mut rx = self.watch();
        let _ = tokio::time::timeout(
            Duration::from_secs(10),
            rx.wait_for(|s| s.phase == Phase::Stopped),
        )
        .await;
    }
}

/// Why one worker life ended.
enum End {
    Shutdown,
    Failed(String),
    Switch(LoadSpec, SwitchReply),
}

async fn manage(
    inner: Arc<Inner>,
    mut spec: WorkerSpec,
    mut commands: mpsc::UnboundedReceiver<Command_>,
) {
    let mut backoff = spec.backoff_initial;
    // A switch waiting for its worker's load to succeed or fail.
    let mut waiting: Option<SwitchReply> = None;
    let switch_to =
        |spec: &mut WorkerSpec, waiting: &mut Option<SwitchReply>, load: LoadSpec, reply| {
            log::info!("switching the runtime worker to {}", load.path);
            *inner
                .load
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = load.clone();
            spec.load = load;
            if let Some(old) = waiting.replace(reply) {
                let _ = old.send(Err("superseded by another model switch".into()));
            }
        };
    loop {
        inner.status.send_modify(|s| {
            s.phase = Phase::Starting;
            s.worker_pid = None;
        });
        let started = Instant::now();
        let why = match run_worker_once(&inner, &spec, &mut commands, &mut waiting).await {
            End::Switch(load, reply) => {
                switch_to(&mut spec, &mut waiting, load, reply);
                backoff = spec.backoff_initial;
                continue;
            }
            End::Shutdown => {
                inner.status.send_modify(|s| {
                    s.phase = Phase::Stopped;
                    s.worker_pid = None;
                });
                return;
            }
            End::Failed(why) => {
                if let Some(reply) = waiting.take() {
                    let _ = reply.send(Err(why.clone()));
                }
                why
            }
        };
        if started.elapsed() >= spec.backoff_reset_after {
            backoff = spec.backoff_initial;
        }
        log::error!(
            "runtime worker: {why}; restarting in {} ms",
            backoff.as_millis()
        );
        inner.status.send_modify(|s| {
            s.phase = Phase::Restarting;
            s.worker_pid = None;
            s.restarts += 1;
            s.last_error = Some(why.clone());
        });
        // Requests that arrive while waiting are refused at once.
        let deadline = tokio::time::sleep(backoff);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut deadline => break,
                cmd = commands.recv() => match cmd {
                    Some(Command_::Generate { events, .. }) => {
                        inner.metrics.rejected_unavailable.fetch_add(1, Ordering::Relaxed);
                        let _ = events.send(Event::Failed(GenerationError::Unavailable(
                            format!("runtime worker restarting: {why}"))));
                    }
                    Some(Command_::Cancel { .. }) => {}
                    Some(Command_::Switch { load, reply }) => {
                        switch_to(&mut spec, &mut waiting, load, reply);
                        break;
                    }
                    Some(Command_::Shutdown) | None => {
                        inner.status.send_modify(|s| s.phase = Phase::Stopped);
                        return;
                    }
                },
            }
        }
        backoff = (backoff * 2).min(spec.backoff_max);
    }
}

/// Starts `program` with one end of a fresh socket pair as its fd 3 and a parent-death signal.
pub(crate) fn spawn_child(
    program: &std::path::Path,
    args: &[String],
) -> Result<(Child, tokio::net::UnixStream), String> {
    let (ours, theirs) =
        std::os::unix::net::UnixStream::pair().map_err(|e| format!("socketpair failed: {e}"))?;
    let their_fd = theirs.as_raw_fd();
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    // The service manager's protocol is civiad's, not the worker's.
    for var in [
        "NOTIFY_SOCKET",
        "WATCHDOG_USEC",
        "WATCHDOG_PID",
        "LISTEN_FDS",
        "LISTEN_PID",
    ] {
        cmd.env_remove(var);
    }
    // SAFETY: the closure runs in the forked child before exec and only calls the
    // async-signal-safe functions dup2, fcntl and prctl on file descriptors it owns.
    unsafe {
        cmd.pre_exec(move || {
            if their_fd == 3 {
                let flags = libc::fcntl(3, libc::F_GETFD);
                if flags < 0 || libc::fcntl(3, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(their_fd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
    drop(theirs);
    ours.set_nonblocking(true)
        .map_err(|e| format!("socket setup failed: {e}"))?;
    let ours =
        tokio::net::UnixStream::from_std(ours).map_err(|e| format!("socket setup failed: {e}"))?;
    Ok((child, ours))
}

pub(crate) fn describe_exit(status: std::io::Result<std::process::ExitStatus>) -> String {
    match status {
        Ok(s) => match (s.code(), s.signal()) {
            (Some(code), _) => format!("worker exited with status {code}"),
            (None, Some(sig)) => format!("worker killed by signal {sig}{}", signal_name(sig)),
            _ => format!("worker ended: {s}"),
        },
        Err(e) => format!("cannot wait for worker: {e}"),
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGKILL => " (SIGKILL)",
        libc::SIGABRT => " (SIGABRT, llama.cpp abort)",
        libc::SIGSEGV => " (SIGSEGV)",
        libc::SIGBUS => " (SIGBUS)",
        libc::SIGTERM => " (SIGTERM)",
        _ => "",
    }
}

async fn run_worker_once(
    inner: &Inner,
    spec: &WorkerSpec,
    commands: &mut mpsc::UnboundedReceiver<Command_>,
    waiting: &mut Option<SwitchReply>,
) -> End {
    let (mut child, sock) = match spawn_child(&spec.program, &spec.args) {
        Ok(x) => x,
        Err(e) => return End::Failed(e),
    };
    let pid = child.id();
    inner.status.send_modify(|s| s.worker_pid = pid);
    let (rd, mut wr) = sock.into_split();
    let (reader, mut frames) = read_frames::<FromWorker>(rd);
    let end = drive(
        inner,
        spec,
        &mut child,
        &mut wr,
        &mut frames,
        commands,
        waiting,
    )
    .await;
    reader.abort();
    let _ = child.start_kill();
    let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
    end
}

async fn drive(
    inner: &Inner,
    spec: &WorkerSpec,
    child: &mut Child,
    wr: &mut OwnedWriteHalf,
    frames: &mut mpsc::UnboundedReceiver<Result<FromWorker, civia_ipc::IpcError>>,
    commands: &mut mpsc::UnboundedReceiver<Command_>,
    waiting: &mut Option<SwitchReply>,
) -> End {
    // Handshake and load, refusing generations meanwhile.
    if let Err(e) = write_frame_async(
        wr,
        &ToWorker::Hello {
            version: PROTOCOL_VERSION,
        },
    )
    .await
    {
        return End::Failed(format!("handshake failed: {e}"));
    }
    let mut loaded = false;
    let load_deadline = tokio::time::sleep(spec.load_timeout);
    tokio::pin!(load_deadline);
    while !loaded {
        tokio::select! {
            _ = &mut load_deadline => {
                return End::Failed(format!("model not loaded within {} s", spec.load_timeout.as_secs()));
            }
            status = child.wait() => {
                // A worker that refused the model says why before exiting: read its last words.
                let exit = describe_exit(status);
                return End::Failed(last_words(frames, |f| match f {
                    FromWorker::LoadFailed { message } => Some(message),
                    _ => None,
                })
                .await
                .unwrap_or(exit));
            }
            f = frames.recv() => match f {
                Some(Ok(FromWorker::Hello { version, pid })) => {
                    if version != PROTOCOL_VERSION {
                        return End::Failed(format!(
                            "worker speaks protocol {version}, supervisor {PROTOCOL_VERSION}"));
                    }
                    log::info!("runtime worker {pid} started; loading {}", spec.load.path);
                    if let Err(e) = write_frame_async(wr, &ToWorker::Load(spec.load.clone())).await {
                        return End::Failed(format!("cannot send load request: {e}"));
                    }
                }
                Some(Ok(FromWorker::Loaded(info))) => {
                    log::info!(
                        "model ready: {} (sha256 {}, context {} tokens, template {:?})",
                        spec.load.path, info.sha256, info.n_ctx, info.template
                    );
                    if let Some(reply) = waiting.take() {
                        let _ = reply.send(Ok(info.clone()));
                    }
                    inner.status.send_modify(|s| {
                        s.phase = Phase::Ready;
                        s.model = Some(info);
                        s.last_error = None;
                    });
                    loaded = true;
                }
                Some(Ok(FromWorker::LoadFailed { message })) => return End::Failed(message),
                Some(Ok(_)) => return End::Failed("worker sent a message out of order".into()),
                Some(Err(e)) => return End::Failed(format!("worker connection lost during load: {e}")),
                None => return End::Failed("worker connection lost during load".into()),
            },
            cmd = commands.recv() => match cmd {
                Some(Command_::Generate { events, .. }) => {
                    let _ = events.send(Event::Failed(GenerationError::Unavailable(
                        "runtime worker starting".into())));
                }
                Some(Command_::Cancel { .. }) => {}
                Some(Command_::Switch { load, reply }) => return End::Switch(load, reply),
                Some(Command_::Shutdown) | None => return End::Shutdown,
            },
        }
    }

    let metrics = inner.metrics.clone();
    let slots = spec.load.n_parallel.max(1) as usize;
    let mut running: HashMap<u64, mpsc::UnboundedSender<Event>> = HashMap::new();
    let mut queue = FairQueue::new(spec.queue_depth);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut rate = RateWindow::default();
    let end = loop {
        tokio::select! {
            status = child.wait() => break End::Failed(describe_exit(status)),
            f = frames.recv() => match f {
                Some(Ok(msg)) => {
                    dispatch(&mut running, msg, &metrics);
                    if let Err(e) = admit(wr, &mut queue, &mut running, slots, &metrics).await {
                        break End::Failed(e);
                    }
                }
                Some(Err(civia_ipc::IpcError::Closed)) | None => {
                    // The exit status says more than the closed socket: wait for it briefly.
                    let why = match tokio::time::timeout(Duration::from_secs(2), child.wait()).await {
                        Ok(status) => describe_exit(status),
                        Err(_) => "worker closed its connection".into(),
                    };
                    break End::Failed(why);
                }
                Some(Err(e)) => break End::Failed(format!("bad message from worker: {e}")),
            },
            cmd = commands.recv() => match cmd {
                Some(Command_::Generate { req, user, events }) => {
                    let q = Queued { req, user, events, since: Instant::now() };
                    if let Err(q) = queue.push(q) {
                        metrics.rejected_queue_full.fetch_add(1, Ordering::Relaxed);
                        let _ = q.events.send(Event::Failed(GenerationError::QueueFull(queue.len())));
                    }
                    if let Err(e) = admit(wr, &mut queue, &mut running, slots, &metrics).await {
                        break End::Failed(e);
                    }
                }
                Some(Command_::Cancel { id }) => {
                    if queue.remove(id).is_none() && running.contains_key(&id) {
                        if let Err(e) = write_frame_async(wr, &ToWorker::Cancel { id }).await {
                            break End::Failed(format!("cannot send cancel to worker: {e}"));
                        }
                    }
                    metrics.queued.store(queue.len() as u64, Ordering::Relaxed);
                }
                Some(Command_::Switch { load, reply }) => {
                    let _ = write_frame_async(wr, &ToWorker::Shutdown).await;
                    let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
                    let err = GenerationError::Unavailable("the model is being replaced".into());
                    fail_all(&mut running, &mut queue, &err, &metrics);
                    inner.status.send_modify(|s| s.phase = Phase::Starting);
                    return End::Switch(load, reply);
                }
                Some(Command_::Shutdown) | None => {
                    let _ = write_frame_async(wr, &ToWorker::Shutdown).await;
                    let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
                    let err = GenerationError::Unavailable("civiad is shutting down".into());
                    fail_all(&mut running, &mut queue, &err, &metrics);
                    return End::Shutdown;
                }
            },
            _ = tick.tick() => {
                if let Some(deadline) = Instant::now().checked_sub(spec.queue_timeout) {
                    for q in queue.expire(deadline) {
                        metrics.rejected_queue_timeout.fetch_add(1, Ordering::Relaxed);
                        let _ = q.events.send(Event::Failed(GenerationError::QueueTimeout(
                            spec.queue_timeout.as_secs())));
                    }
                    metrics.queued.store(queue.len() as u64, Ordering::Relaxed);
                }
                let tps = rate.update(metrics.completion_tokens.load(Ordering::Relaxed));
                metrics.tokens_per_second.store(tps.to_bits(), Ordering::Relaxed);
            }
        }
    };
    // Refuse new work first, then answer everything in flight or waiting.
    if let End::Failed(why) = &end {
        inner.status.send_modify(|s| s.phase = Phase::Restarting);
        metrics
            .failed_worker_crash
            .fetch_add(running.len() as u64, Ordering::Relaxed);
        fail_all(
            &mut running,
            &mut queue,
            &GenerationError::WorkerCrashed(why.clone()),
            &metrics,
        );
    }
    end
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

/// Sends queued requests to the worker while it has free slots.
async fn admit(
    wr: &mut OwnedWriteHalf,
    queue: &mut FairQueue,
    running: &mut HashMap<u64, mpsc::UnboundedSender<Event>>,
    slots: usize,
    metrics: &Metrics,
) -> Result<(), String> {
    while running.len() < slots {
        let Some(q) = queue.pop() else { break };
        if q.events.is_closed() {
            continue; // the client left while waiting
        }
        let id = q.req.id;
        running.insert(id, q.events);
        metrics.admitted.fetch_add(1, Ordering::Relaxed);
        write_frame_async(wr, &ToWorker::Generate(q.req))
            .await
            .map_err(|e| format!("cannot send request to worker: {e}"))?;
    }
    metrics.queued.store(queue.len() as u64, Ordering::Relaxed);
    metrics
        .active
        .store(running.len() as u64, Ordering::Relaxed);
    Ok(())
}

/// Frames from a worker, read by their own task (reading is not cancel-safe inside
/// `select!`); the channel ends after the first error.
pub(crate) fn read_frames<T: for<'de> serde::Deserialize<'de> + Send + 'static>(
    mut rd: tokio::net::unix::OwnedReadHalf,
) -> (
    tokio::task::JoinHandle<()>,
    mpsc::UnboundedReceiver<Result<T, civia_ipc::IpcError>>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        loop {
            let f = read_frame_async::<T>(&mut rd).await;
            let stop = f.is_err();
            if tx.send(f).is_err() || stop {
                return;
            }
        }
    });
    (task, rx)
}

/// The load failure reason (`pick`) still in flight from a worker that has exited, if any.
pub(crate) async fn last_words<T>(
    frames: &mut mpsc::UnboundedReceiver<Result<T, civia_ipc::IpcError>>,
    pick: impl Fn(T) -> Option<String>,
) -> Option<String> {
    let drain = async {
        while let Some(f) = frames.recv().await {
            if let Some(message) = f.ok().and_then(&pick) {
                return Some(message);
            }
        }
        None
    };
    tokio::time::timeout(Duration::from_secs(2), drain)
        .await
        .ok()
        .flatten()
}

fn fail_all(
    running: &mut HashMap<u64, mpsc::UnboundedSender<Event>>,
    queue: &mut FairQueue,
    err: &GenerationError,
    metrics: &Metrics,
) {
    for (_, tx) in running.drain() {
        let _ = tx.send(Event::Failed(err.clone()));
    }
    for q in queue.drain() {
        let _ = q.events.send(Event::Failed(err.clone()));
    }
    metrics.queued.store(0, Ordering::Relaxed);
    metrics.active.store(0, Ordering::Relaxed);
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
