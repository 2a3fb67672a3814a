//! The supervision engine: one worker process's life, written once for every kind of worker.
//!
//! The engine spawns the worker ([`spawn_child`]: its end of a socket pair on fd 3, a
//! parent-death signal, its jail from [`crate::jail`]: own uid, namespaces, hidden state,
//! minimal environment), shakes hands and has it load its model (the common part of every
//! worker protocol, [`civia_ipc::worker::Protocol`]), publishes the phase in a status watch,
//! restarts the worker with exponential backoff ([`Backoff`]) when it dies, says why
//! ([`describe_exit`], or the worker's last words), replaces it on request (a model switch)
//! and stops it on shutdown. What work the worker does, and how it is scheduled, is the
//! business of a [`Policy`]:
//!
//! - `Supervisor` (lib.rs): generations, several at once in the worker's slots, a fair
//!   bounded queue in front;
//! - `SpeechSupervisor` (speech.rs): one transcription at a time, the others waiting in order
//!   (even across a restart);
//! - `EmbedSupervisor` (embed.rs): one embedding request at a time, a bounded queue in order,
//!   requests checked against their limits before they queue.
//!
//! # Plugging in another worker (the embedding worker was plugged in this way)
//!
//! 1. In `civia-ipc`: its messages (`ToEmbed`/`FromEmbed`, with `Hello`, `Load`, `Loaded`,
//!    `LoadFailed`, `Shutdown` like the others), a load spec and model description, and a
//!    marker type implementing [`civia_ipc::worker::Protocol`].
//! 2. In its worker crate: `run_worker(stream)` = [`civia_ipc::worker::handshake`], load
//!    (refusing with `Link::refuse`), serve; its binary's `main` is
//!    [`civia_ipc::worker::worker_main`].
//! 3. Here: a status type implementing [`WorkerStatus`], a `Policy` (its `Job` commands,
//!    what to do with a job while no worker serves, when one is ready, on each message, on a
//!    crash or a failed load, on shutdown), and a handle that creates a [`Shared`] and a
//!    command channel and calls [`spawn`]. The engine does the rest.

use crate::Phase;
use civia_ipc::worker::{Protocol, Report, Setup};
use civia_ipc::{read_frame_async, write_frame_async, IpcError};
use std::future::Future;
use std::os::fd::AsRawFd;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::net::unix::OwnedWriteHalf;
use tokio::process::{Child, Command as Process};
use tokio::sync::{mpsc, oneshot, watch};

pub(crate) type Load<P> = <<P as Policy>::Protocol as Protocol>::Load;
pub(crate) type Info<P> = <<P as Policy>::Protocol as Protocol>::Info;
type FromWorker<P> = <<P as Policy>::Protocol as Protocol>::FromWorker;
type Frames<P> = mpsc::UnboundedReceiver<Result<FromWorker<P>, IpcError>>;

/// The answer to a model switch: the new model once loaded, or why it did not load.
pub(crate) type SwitchReply<I> = oneshot::Sender<Result<I, String>>;

/// What a handle asks of the engine.
pub(crate) enum Command<J, L, I> {
    /// Work for the policy.
    Job(J),
    /// Replace the worker by one loading `load`; the reply comes once it loaded or failed.
    Switch {
        load: L,
        reply: SwitchReply<I>,
    },
    Shutdown,
}

pub(crate) type Cmd<P> = Command<<P as Policy>::Job, Load<P>, Info<P>>;

/// Restart delays: `initial`, doubled after each failed start up to `max`; back to
/// `initial` once a worker lived `reset_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    pub reset_after: Duration,
}

/// The delay before the next restart.
#[derive(Debug)]
pub(crate) struct Retry {
    backoff: Backoff,
    next: Duration,
}

impl Retry {
    pub fn new(backoff: Backoff) -> Self {
        Self {
            backoff,
            next: backoff.initial,
        }
    }

    /// How long to wait after a worker that lived `lived` died.
    pub fn after_failure(&mut self, lived: Duration) -> Duration {
        if lived >= self.backoff.reset_after {
            self.next = self.backoff.initial;
        }
        let delay = self.next;
        self.next = (self.next * 2).min(self.backoff.max);
        delay
    }

    /// A deliberate replacement (model switch) is not a failure.
    pub fn reset(&mut self) {
        self.next = self.backoff.initial;
    }
}

/// How to start a worker.
pub(crate) struct Launch<L> {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub load: L,
    pub backoff: Backoff,
    pub load_timeout: Duration,
    /// The worker's jail; `None` only for stand-in workers in tests (the real worker
    /// programs refuse to run outside it).
    pub sandbox: Option<crate::SandboxPolicy>,
}

/// How the engine names the worker in the messages it writes (logs and `last_error`).
pub(crate) struct Wording {
    /// In logs: `runtime worker`.
    pub name: &'static str,
    /// As a subject: `worker`, `speech worker`.
    pub worker: &'static str,
    /// As an object: `worker`, `the speech worker`.
    pub the_worker: &'static str,
    /// `model`, `speech model`.
    pub model: &'static str,
    /// The supervisor, in the protocol mismatch message: `supervisor`, `civiad`.
    pub us: &'static str,
    /// `load request`, `the load request`.
    pub load_request: &'static str,
}

/// The fields every worker status has (`Status`, `SpeechStatus`).
pub(crate) struct Common<'a, I> {
    pub phase: &'a mut Phase,
    pub worker_pid: &'a mut Option<u32>,
    pub restarts: &'a mut u32,
    pub last_error: &'a mut Option<String>,
    pub model: &'a mut Option<I>,
}

/// A status the engine keeps up to date.
pub(crate) trait WorkerStatus: Send + Sync + 'static {
    type Info;
    fn common(&mut self) -> Common<'_, Self::Info>;
}

/// What the engine and the handles share.
pub(crate) struct Shared<S, L> {
    pub status: watch::Sender<S>,
    /// What the current (or next) worker loads.
    pub load: Mutex<L>,
}

impl<S: WorkerStatus, L: Clone> Shared<S, L> {
    pub fn new(status: S, load: L) -> Self {
        Self {
            status: watch::channel(status).0,
            load: Mutex::new(load),
        }
    }

    pub fn load(&self) -> L {
        self.load
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn update(&self, f: impl FnOnce(Common<'_, S::Info>)) {
        self.status.send_modify(|s| f(s.common()));
    }
}

/// Why no worker serves a job arriving now.
pub(crate) enum Held<'a> {
    /// A worker is starting and loading its model.
    Loading,
    /// The last one died (`why`); the next starts after the backoff.
    Restarting(&'a str),
}

/// Why every pending job must end now.
pub(crate) enum Stopping {
    /// civiad stops.
    Shutdown,
    /// The model is being replaced ([`Command::Switch`]).
    Replaced,
}

/// The worker's end of the socket, for the policy to send its messages on.
pub(crate) struct Link<P: Protocol> {
    wr: OwnedWriteHalf,
    protocol: std::marker::PhantomData<fn() -> P>,
}

impl<P: Protocol> Link<P> {
    pub async fn send(&mut self, msg: &P::ToWorker) -> Result<(), IpcError> {
        write_frame_async(&mut self.wr, msg).await
    }
}

/// One scheduling policy: what a worker's jobs are and how they reach it. Errors returned
/// (`Err(why)`) end the worker's life as a crash with `why`.
pub(crate) trait Policy: Send + 'static {
    type Protocol: Protocol;
    type Status: WorkerStatus<Info = Info<Self>>;
    /// Commands from the handle besides switch and shutdown.
    type Job: Send + 'static;
    const WORDING: Wording;
    /// Period of [`Policy::tick`] while a worker serves.
    const TICK: Option<Duration> = None;

    /// The log line once `info` is loaded.
    fn describe_loaded(load: &Load<Self>, info: &Info<Self>) -> String;
    /// A job arrives while no worker serves.
    fn hold(&mut self, job: Self::Job, held: Held<'_>);
    /// A worker just loaded `load` and serves from now on.
    fn ready(
        &mut self,
        load: &Load<Self>,
        link: &mut Link<Self::Protocol>,
    ) -> impl Future<Output = Result<(), String>> + Send;
    /// A job arrives while a worker serves.
    fn submit(
        &mut self,
        job: Self::Job,
        link: &mut Link<Self::Protocol>,
    ) -> impl Future<Output = Result<(), String>> + Send;
    /// A message from the serving worker.
    fn message(
        &mut self,
        msg: FromWorker<Self>,
        link: &mut Link<Self::Protocol>,
    ) -> impl Future<Output = Result<(), String>> + Send;
    /// Every [`Policy::TICK`] while a worker serves.
    fn tick(&mut self) {}
    /// The serving worker died (`why`); the phase already says `restarting`.
    fn crashed(&mut self, why: &str);
    /// A worker could not start or load its model.
    fn load_failed(&mut self, why: &str);
    /// Every pending job ends.
    fn stop_all(&mut self, why: Stopping);
}

/// Why one worker life ended.
enum End<L, I> {
    Shutdown,
    Switch(L, SwitchReply<I>),
    Failed {
        why: String,
        /// Whether it had loaded its model (then it crashed while serving).
        loaded: bool,
    },
}

/// Starts supervising on the current tokio runtime.
pub(crate) fn spawn<P: Policy>(
    policy: P,
    launch: Launch<Load<P>>,
    shared: Arc<Shared<P::Status, Load<P>>>,
    commands: mpsc::UnboundedReceiver<Cmd<P>>,
) {
    let engine = Engine {
        policy,
        launch,
        shared,
        commands,
        waiting: None,
    };
    tokio::spawn(engine.run());
}

struct Engine<P: Policy> {
    policy: P,
    launch: Launch<Load<P>>,
    shared: Arc<Shared<P::Status, Load<P>>>,
    commands: mpsc::UnboundedReceiver<Cmd<P>>,
    /// A switch waiting for its worker's load to succeed or fail.
    waiting: Option<SwitchReply<Info<P>>>,
}

impl<P: Policy> Engine<P> {
    async fn run(mut self) {
        let mut retry = Retry::new(self.launch.backoff);
        loop {
            self.shared.update(|s| {
                *s.phase = Phase::Starting;
                *s.worker_pid = None;
            });
            let started = Instant::now();
            let why = match self.life().await {
                End::Switch(load, reply) => {
                    self.switch_to(load, reply);
                    retry.reset();
                    continue;
                }
                End::Shutdown => {
                    self.shared.update(|s| {
                        *s.phase = Phase::Stopped;
                        *s.worker_pid = None;
                    });
                    return;
                }
                End::Failed { why, .. } => {
                    if let Some(reply) = self.waiting.take() {
                        let _ = reply.send(Err(why.clone()));
                    }
                    why
                }
            };
            let delay = retry.after_failure(started.elapsed());
            log::error!(
                "{}: {why}; restarting in {} ms",
                P::WORDING.name,
                delay.as_millis()
            );
            self.shared.update(|s| {
                *s.phase = Phase::Restarting;
                *s.worker_pid = None;
                *s.restarts += 1;
                *s.last_error = Some(why.clone());
            });
            let deadline = tokio::time::sleep(delay);
            tokio::pin!(deadline);
            loop {
                tokio::select! {
                    _ = &mut deadline => break,
                    cmd = self.commands.recv() => match cmd {
                        Some(Command::Job(job)) => self.policy.hold(job, Held::Restarting(&why)),
                        Some(Command::Switch { load, reply }) => {
                            self.switch_to(load, reply);
                            break;
                        }
                        Some(Command::Shutdown) | None => {
                            self.policy.stop_all(Stopping::Shutdown);
                            self.shared.update(|s| *s.phase = Phase::Stopped);
                            return;
                        }
                    },
                }
            }
        }
    }

    fn switch_to(&mut self, load: Load<P>, reply: SwitchReply<Info<P>>) {
        let path = P::Protocol::model_file(&load).path.to_string();
        log::info!("switching the {} to {path}", P::WORDING.name);
        *self
            .shared
            .load
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = load.clone();
        self.launch.load = load;
        if let Some(old) = self.waiting.replace(reply) {
            let _ = old.send(Err("superseded by another model switch".into()));
        }
    }

    /// One worker, from spawn to death (or replacement, or shutdown).
    async fn life(&mut self) -> End<Load<P>, Info<P>> {
        let mut exposed = vec![PathBuf::from(
            P::Protocol::model_file(&self.launch.load).path,
        )];
        if let Some(policy) = &self.launch.sandbox {
            exposed.extend(policy.expose.iter().cloned());
        }
        let spawned = spawn_child(
            &self.launch.program,
            &self.launch.args,
            self.launch.sandbox.as_ref(),
            &exposed,
        );
        let (mut child, sock) = match spawned {
            Ok(x) => x,
            Err(why) => {
                self.policy.load_failed(&why);
                return End::Failed { why, loaded: false };
            }
        };
        let pid = child.id();
        self.shared.update(|s| *s.worker_pid = pid);
        let (rd, wr) = sock.into_split();
        let (reader, mut frames) = read_frames::<FromWorker<P>>(rd);
        let mut link = Link {
            wr,
            protocol: std::marker::PhantomData,
        };
        let end = match self.load(&mut child, &mut link, &mut frames).await {
            Ok(()) => self.serve(&mut child, &mut link, &mut frames).await,
            Err(end) => end,
        };
        match &end {
            End::Failed { why, loaded: false } => self.policy.load_failed(why),
            // Refuse new work first, then answer everything in flight or waiting.
            End::Failed { why, loaded: true } => {
                self.shared.update(|s| *s.phase = Phase::Restarting);
                self.policy.crashed(why);
            }
            End::Shutdown | End::Switch(..) => {}
        }
        reader.abort();
        let _ = child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
        end
    }

    /// Handshake and load; jobs arriving meanwhile go to [`Policy::hold`].
    async fn load(
        &mut self,
        child: &mut Child,
        link: &mut Link<P::Protocol>,
        frames: &mut Frames<P>,
    ) -> Result<(), End<Load<P>, Info<P>>> {
        let w = &P::WORDING;
        let failed = |why: String| End::Failed { why, loaded: false };
        let version = <P::Protocol as Protocol>::VERSION;
        link.send(&P::Protocol::setup(Setup::Hello { version }))
            .await
            .map_err(|e| failed(format!("handshake failed: {e}")))?;
        let load_timeout = self.launch.load_timeout;
        let deadline = tokio::time::sleep(load_timeout);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut deadline => {
                    return Err(failed(format!(
                        "{} not loaded within {} s", w.model, load_timeout.as_secs())));
                }
                status = child.wait() => {
                    // A worker that refused the model says why before exiting: its last words.
                    let exit = describe_exit(status);
                    let words = last_words(frames, |f| match P::Protocol::as_report(f) {
                        Ok(Report::LoadFailed { message }) => Some(message),
                        _ => None,
                    });
                    return Err(failed(words.await.unwrap_or(exit)));
                }
                f = frames.recv() => match f.map(|f| f.map(P::Protocol::as_report)) {
                    Some(Ok(Ok(Report::Hello { version: theirs, pid }))) => {
                        if theirs != version {
                            return Err(failed(format!(
                                "{} speaks protocol {theirs}, {} {version}", w.worker, w.us)));
                        }
                        let load = self.launch.load.clone();
                        log::info!("{} {pid} started; loading {}", w.name,
                            P::Protocol::model_file(&load).path);
                        link.send(&P::Protocol::setup(Setup::Load(load))).await
                            .map_err(|e| failed(format!("cannot send {}: {e}", w.load_request)))?;
                    }
                    Some(Ok(Ok(Report::Loaded(info)))) => {
                        log::info!("{}", P::describe_loaded(&self.launch.load, &info));
                        if let Some(reply) = self.waiting.take() {
                            let _ = reply.send(Ok(info.clone()));
                        }
                        self.shared.update(|s| {
                            *s.phase = Phase::Ready;
                            *s.model = Some(info);
                            *s.last_error = None;
                        });
                        return Ok(());
                    }
                    Some(Ok(Ok(Report::LoadFailed { message }))) => return Err(failed(message)),
                    Some(Ok(Err(_))) => {
                        return Err(failed(format!("{} sent a message out of order", w.worker)));
                    }
                    Some(Err(e)) => {
                        return Err(failed(format!("{} connection lost during load: {e}", w.worker)));
                    }
                    None => return Err(failed(format!("{} connection lost during load", w.worker))),
                },
                cmd = self.commands.recv() => match cmd {
                    Some(Command::Job(job)) => self.policy.hold(job, Held::Loading),
                    Some(Command::Switch { load, reply }) => return Err(End::Switch(load, reply)),
                    Some(Command::Shutdown) | None => return Err(End::Shutdown),
                },
            }
        }
    }

    /// The loaded worker serves the policy's jobs until it dies or is stopped.
    async fn serve(
        &mut self,
        child: &mut Child,
        link: &mut Link<P::Protocol>,
        frames: &mut Frames<P>,
    ) -> End<Load<P>, Info<P>> {
        let w = &P::WORDING;
        let crashed = |why: String| End::Failed { why, loaded: true };
        if let Err(why) = self.policy.ready(&self.launch.load, link).await {
            return crashed(why);
        }
        let mut tick = P::TICK.map(tokio::time::interval);
        loop {
            tokio::select! {
                status = child.wait() => return crashed(describe_exit(status)),
                f = frames.recv() => match f {
                    Some(Ok(msg)) => {
                        if let Err(why) = self.policy.message(msg, link).await {
                            return crashed(why);
                        }
                    }
                    Some(Err(IpcError::Closed)) | None => {
                        // The exit status says more than the closed socket: wait for it briefly.
                        let why = match tokio::time::timeout(Duration::from_secs(2), child.wait()).await {
                            Ok(status) => describe_exit(status),
                            Err(_) => format!("{} closed its connection", w.worker),
                        };
                        return crashed(why);
                    }
                    Some(Err(e)) => return crashed(format!("bad message from {}: {e}", w.the_worker)),
                },
                cmd = self.commands.recv() => match cmd {
                    Some(Command::Job(job)) => {
                        if let Err(why) = self.policy.submit(job, link).await {
                            return crashed(why);
                        }
                    }
                    Some(Command::Switch { load, reply }) => {
                        stop_worker(child, link).await;
                        self.policy.stop_all(Stopping::Replaced);
                        self.shared.update(|s| *s.phase = Phase::Starting);
                        return End::Switch(load, reply);
                    }
                    Some(Command::Shutdown) | None => {
                        stop_worker(child, link).await;
                        self.policy.stop_all(Stopping::Shutdown);
                        return End::Shutdown;
                    }
                },
                _ = next_tick(&mut tick) => self.policy.tick(),
            }
        }
    }
}

/// Asks the worker to exit and waits for it (bounded).
async fn stop_worker<P: Protocol>(child: &mut Child, link: &mut Link<P>) {
    let _ = link.send(&P::setup(Setup::Shutdown)).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
}

async fn next_tick(tick: &mut Option<tokio::time::Interval>) {
    match tick {
        Some(t) => {
            t.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Starts `program` in its jail (when `sandbox` is given; `exposed` are the files it must
/// read) with one end of a fresh socket pair as its fd 3, a parent-death signal and a
/// minimal environment: never civiad's own (no `CIVIA_DEV_API_KEY`, no service manager
/// variables).
pub(crate) fn spawn_child(
    program: &std::path::Path,
    args: &[String],
    sandbox: Option<&crate::SandboxPolicy>,
    exposed: &[PathBuf],
) -> Result<(Child, tokio::net::UnixStream), String> {
    let jail = match sandbox {
        Some(policy) => Some(Arc::new(
            crate::jail::Jail::prepare(policy, exposed).map_err(|e| e.to_string())?,
        )),
        None => None,
    };
    let (ours, theirs) =
        std::os::unix::net::UnixStream::pair().map_err(|e| format!("socketpair failed: {e}"))?;
    let their_fd = theirs.as_raw_fd();
    let mut cmd = Process::new(program);
    cmd.args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .env_clear();
    match &jail {
        Some(jail) => {
            for (k, v) in &jail.env {
                cmd.env(k, v);
            }
        }
        None => {
            cmd.env("PATH", "/usr/bin:/bin");
            if let Ok(level) = std::env::var("CIVIA_LOG_LEVEL") {
                cmd.env("CIVIA_LOG_LEVEL", level);
            }
        }
    }
    let child_jail = jail.clone();
    // SAFETY: the closure runs in the forked child before exec: `Jail::apply` makes only
    // system calls on data prepared before the fork, then the async-signal-safe dup2, fcntl
    // and prctl on file descriptors the child owns. The parent-death signal is set last: a
    // change of credentials clears it.
    unsafe {
        cmd.pre_exec(move || {
            if let Some(jail) = &child_jail {
                jail.apply()?;
            }
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
    let started = Instant::now();
    let child = cmd
        .spawn()
        .map_err(|e| match jail.as_ref().and_then(|j| j.failed_step()) {
            Some(step) => format!(
                "cannot start {} in its sandbox: cannot {step}: {e}",
                program.display()
            ),
            None => format!("cannot start {}: {e}", program.display()),
        })?;
    if jail.is_some() {
        log::debug!(
            "{} started in its sandbox in {} µs (fork, jail, exec)",
            program.display(),
            started.elapsed().as_micros()
        );
    }
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
            (Some(code), _) if code == i32::from(civia_ipc::worker::EXIT_NOT_ISOLATED) => format!(
                "worker exited with status {code}: it refused to run outside its sandbox (its \
                 log says why)"
            ),
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

/// Frames from a worker, read by their own task (reading is not cancel-safe inside
/// `select!`); the channel ends after the first error.
fn read_frames<T: for<'de> serde::Deserialize<'de> + Send + 'static>(
    mut rd: tokio::net::unix::OwnedReadHalf,
) -> (
    tokio::task::JoinHandle<()>,
    mpsc::UnboundedReceiver<Result<T, IpcError>>,
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
async fn last_words<T>(
    frames: &mut mpsc::UnboundedReceiver<Result<T, IpcError>>,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_bound_and_resets_after_a_long_life() {
        let ms = Duration::from_millis;
        let mut r = Retry::new(Backoff {
            initial: ms(100),
            max: ms(500),
            reset_after: Duration::from_secs(60),
        });
        let short = ms(10);
        let delays: Vec<_> = (0..5).map(|_| r.after_failure(short)).collect();
        assert_eq!(delays, [ms(100), ms(200), ms(400), ms(500), ms(500)]);
        // A worker that served a long time starts the sequence again.
        assert_eq!(r.after_failure(Duration::from_secs(61)), ms(100));
        assert_eq!(r.after_failure(short), ms(200));
        // So does a model switch.
        r.reset();
        assert_eq!(r.after_failure(short), ms(100));
    }

    #[tokio::test]
    async fn exit_descriptions_name_the_status_or_the_signal() {
        let status = |script: &str| {
            let mut c = Process::new("/bin/sh");
            c.arg("-c").arg(script);
            async move { c.status().await }
        };
        assert_eq!(
            describe_exit(status("exit 3").await),
            "worker exited with status 3"
        );
        assert!(describe_exit(status("exit 78").await).contains("outside its sandbox"));
        assert_eq!(
            describe_exit(status("kill -9 $$").await),
            "worker killed by signal 9 (SIGKILL)"
        );
    }
}
