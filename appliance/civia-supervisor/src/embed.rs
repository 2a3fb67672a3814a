//! Supervision of the embedding worker (`civiad embed-worker`, llama.cpp in embedding mode),
//! and the embedding service other crates call ([`EmbedSupervisor::embed`],
//! [`EmbedSupervisor::embed_texts`]).
//!
//! One request runs at a time in the worker (it evaluates the inputs of one request several
//! at a time already, on every core); up to `queue_depth` more wait in order, beyond that
//! callers get [`EmbedError::Busy`] at once. Requests are checked before they queue (inputs
//! per request, characters per input, the protocol's bounds), so that every frame stays
//! under the IPC limit. When the worker dies, the request it was running fails at once with
//! [`EmbedError::WorkerCrashed`]; the waiting ones run on the restarted worker (or fail if it
//! cannot load its model). The process itself is the engine's business ([`crate::engine`]).

use crate::engine::{
    self, Cmd, Command, Common, Held, Link, Policy, Shared, Stopping, Wording, WorkerStatus,
};
use crate::Phase;
use civia_config::Config;
use civia_ipc::embed::{
    EmbedFailure, EmbedLoadSpec, EmbedModelInfo, EmbedProtocol, EmbedRequest, FromEmbed, ToEmbed,
};
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

/// How to start the embedding worker, what it loads and what a request may hold.
#[derive(Debug, Clone)]
pub struct EmbedSpec {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub load: EmbedLoadSpec,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    pub backoff_reset_after: Duration,
    pub load_timeout: Duration,
    /// Requests waiting behind the running one (beyond: [`EmbedError::Busy`]).
    pub queue_depth: usize,
    /// Most inputs in one request.
    pub max_inputs: usize,
    /// Longest input, in characters.
    pub max_input_chars: usize,
    /// What [`EmbedSupervisor::embed_texts`] puts before a query and before a passage (the
    /// model's convention: E5 wants `query: ` and `passage: `).
    pub query_prefix: String,
    pub passage_prefix: String,
    /// The worker's jail; `None` only for stand-in workers in tests: the real worker
    /// program refuses to run outside it.
    pub sandbox: Option<crate::SandboxPolicy>,
}

impl EmbedSpec {
    /// The embedding worker started as `program args`, loading `[embeddings] path` (None
    /// when embeddings are off), with the limits of `[embeddings]` and the restart settings
    /// of `[runtime]` (`embeddings.threads = 0`: every core).
    pub fn from_config(cfg: &Config, program: PathBuf, args: Vec<String>) -> Option<Self> {
        let e = &cfg.embeddings;
        let path = e.path.as_ref()?;
        let r = &cfg.runtime;
        Some(Self {
            program,
            args,
            load: EmbedLoadSpec {
                path: path.to_string_lossy().into_owned(),
                sha256: e.sha256.clone(),
                threads: crate::threads(e.threads),
                gpu_layers: e.gpu_layers,
                batch_size: e.batch_size,
                max_sequences: e.max_sequences,
            },
            backoff_initial: Duration::from_millis(r.restart_backoff_initial_ms),
            backoff_max: Duration::from_millis(r.restart_backoff_max_ms),
            backoff_reset_after: Duration::from_secs(r.restart_backoff_reset_secs),
            load_timeout: Duration::from_secs(r.load_timeout_secs),
            queue_depth: e.queue_depth,
            max_inputs: e.max_inputs_per_request,
            max_input_chars: e.max_input_chars,
            query_prefix: e.query_prefix.clone(),
            passage_prefix: e.passage_prefix.clone(),
            sandbox: Some(crate::SandboxPolicy::from_config(cfg)),
        })
    }
}

/// What `/health` and `/admin/status` report about embeddings.
#[derive(Debug, Clone)]
pub struct EmbedStatus {
    pub phase: Phase,
    pub worker_pid: Option<u32>,
    pub restarts: u32,
    pub last_error: Option<String>,
    pub model: Option<EmbedModelInfo>,
    /// Requests running or waiting.
    pub jobs: usize,
}

impl WorkerStatus for EmbedStatus {
    type Info = EmbedModelInfo;
    fn common(&mut self) -> Common<'_, EmbedModelInfo> {
        Common {
            phase: &mut self.phase,
            worker_pid: &mut self.worker_pid,
            restarts: &mut self.restarts,
            last_error: &mut self.last_error,
            model: &mut self.model,
        }
    }
}

/// Why a request got no vectors.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EmbedError {
    #[error("embeddings are not available right now ({0}); retry in a moment")]
    Unavailable(String),
    #[error("the embedding worker is busy: {0} requests are already waiting; retry in a moment")]
    Busy(usize),
    #[error("the embedding worker stopped during the request ({0}); it is being restarted")]
    WorkerCrashed(String),
    #[error("{given} inputs in one request; at most {max}")]
    TooManyInputs { given: usize, max: usize },
    /// `input` (its index) is longer than the configured characters or the model's tokens.
    #[error("{message}")]
    InputTooLong { input: usize, message: String },
    /// Empty input, or beyond the protocol's bounds.
    #[error("{message}")]
    InvalidInput {
        input: Option<usize>,
        message: String,
    },
    #[error("embedding failed: {0}")]
    Internal(String),
}

/// The vectors of one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedded {
    /// One per input, in order, of unit length (L2): the dot product is the cosine.
    pub vectors: Vec<Vec<f32>>,
    /// Tokens each input took (special tokens included).
    pub tokens: Vec<u32>,
    /// SHA-256 of the model that made them (vectors of different models do not compare).
    pub model_sha256: String,
}

impl Embedded {
    /// Tokens of every input together (`usage.prompt_tokens`).
    pub fn total_tokens(&self) -> u64 {
        self.tokens.iter().map(|&t| u64::from(t)).sum()
    }
}

/// What a text is to the model: [`EmbedSupervisor::embed_texts`] prefixes it accordingly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextKind {
    /// A question or search terms.
    Query,
    /// A piece of a document to be found.
    Passage,
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct EmbedMetrics {
    requests_ok: AtomicU64,
    requests_failed: AtomicU64,
    rejected_busy: AtomicU64,
    rejected_unavailable: AtomicU64,
    failed_worker_crash: AtomicU64,
    inputs: AtomicU64,
    tokens: AtomicU64,
    /// Microseconds the worker spent on the requests that succeeded.
    busy_micros: AtomicU64,
}

impl EmbedMetrics {
    /// Prometheus text (the `civia_embeddings_*` family).
    pub fn render(&self, status: &EmbedStatus) -> String {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, values: &[(&str, String)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, v) in values {
                let _ = writeln!(out, "{name}{labels} {v}");
            }
        };
        let ready = status.phase == Phase::Ready;
        metric(
            "civia_embeddings_ready",
            "gauge",
            "1 while the embedding model is loaded and its worker healthy.",
            &[("", u8::from(ready).to_string())],
        );
        metric(
            "civia_embeddings_jobs",
            "gauge",
            "Embedding requests running or waiting.",
            &[("", status.jobs.to_string())],
        );
        metric(
            "civia_embeddings_requests_total",
            "counter",
            "Embedding requests answered, by outcome.",
            &[
                ("{outcome=\"ok\"}", g(&self.requests_ok).to_string()),
                ("{outcome=\"failed\"}", g(&self.requests_failed).to_string()),
                ("{outcome=\"busy\"}", g(&self.rejected_busy).to_string()),
                (
                    "{outcome=\"unavailable\"}",
                    g(&self.rejected_unavailable).to_string(),
                ),
                (
                    "{outcome=\"worker_crash\"}",
                    g(&self.failed_worker_crash).to_string(),
                ),
            ],
        );
        metric(
            "civia_embeddings_inputs_total",
            "counter",
            "Texts embedded.",
            &[("", g(&self.inputs).to_string())],
        );
        metric(
            "civia_embeddings_tokens_total",
            "counter",
            "Tokens of the texts embedded.",
            &[("", g(&self.tokens).to_string())],
        );
        metric(
            "civia_embeddings_busy_seconds_total",
            "counter",
            "Seconds the embedding worker spent on requests that succeeded.",
            &[("", format!("{:.3}", g(&self.busy_micros) as f64 / 1e6))],
        );
        metric(
            "civia_embeddings_worker_restarts_total",
            "counter",
            "Embedding worker restarts.",
            &[("", status.restarts.to_string())],
        );
        out
    }
}

type Reply = oneshot::Sender<Result<Embedded, EmbedError>>;

/// The embedding worker's jobs.
struct Job {
    req: EmbedRequest,
    reply: Reply,
}

struct Inner {
    shared: Arc<Shared<EmbedStatus, EmbedLoadSpec>>,
    commands: mpsc::UnboundedSender<Cmd<InOrder>>,
    next_id: AtomicU64,
    metrics: Arc<EmbedMetrics>,
    spec: EmbedSpec,
}

/// Handle to the supervised embedding worker, and the embedding service; cheap to clone.
#[derive(Clone)]
pub struct EmbedSupervisor {
    inner: Arc<Inner>,
}

impl EmbedSupervisor {
    /// Starts supervising (the worker starts at once, in the background).
    pub fn start(spec: EmbedSpec) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let status = EmbedStatus {
            phase: Phase::Starting,
            worker_pid: None,
            restarts: 0,
            last_error: None,
            model: None,
            jobs: 0,
        };
        let shared = Arc::new(Shared::new(status, spec.load.clone()));
        let metrics = Arc::new(EmbedMetrics::default());
        let policy = InOrder {
            shared: shared.clone(),
            metrics: metrics.clone(),
            queue: VecDeque::new(),
            current: None,
            queue_depth: spec.queue_depth,
        };
        let launch = engine::Launch {
            program: spec.program.clone(),
            args: spec.args.clone(),
            load: spec.load.clone(),
            backoff: engine::Backoff {
                initial: spec.backoff_initial,
                max: spec.backoff_max,
                reset_after: spec.backoff_reset_after,
            },
            load_timeout: spec.load_timeout,
            sandbox: spec.sandbox.clone(),
        };
        engine::spawn(policy, launch, shared.clone(), rx);
        Self {
            inner: Arc::new(Inner {
                shared,
                commands: tx,
                next_id: AtomicU64::new(1),
                metrics,
                spec,
            }),
        }
    }

    pub fn status(&self) -> EmbedStatus {
        self.inner.shared.status.borrow().clone()
    }

    pub fn watch(&self) -> watch::Receiver<EmbedStatus> {
        self.inner.shared.status.subscribe()
    }

    pub fn metrics(&self) -> Arc<EmbedMetrics> {
        self.inner.metrics.clone()
    }

    /// The limits a request is checked against: most inputs, longest input (characters).
    pub fn limits(&self) -> (usize, usize) {
        (self.inner.spec.max_inputs, self.inner.spec.max_input_chars)
    }

    /// The loaded model's description (None until it is loaded).
    pub fn model(&self) -> Option<EmbedModelInfo> {
        self.status().model
    }

    /// Checks a request against the limits without queuing it.
    pub fn check(&self, inputs: &[String]) -> Result<(), EmbedError> {
        let (max_inputs, max_chars) = self.limits();
        if inputs.len() > max_inputs {
            return Err(EmbedError::TooManyInputs {
                given: inputs.len(),
                max: max_inputs,
            });
        }
        for (i, text) in inputs.iter().enumerate() {
            if text.is_empty() {
                return Err(EmbedError::InvalidInput {
                    input: Some(i),
                    message: format!("input {i} is empty"),
                });
            }
            // Counting stops past the limit: a huge input costs no more than a long one.
            if text.chars().nth(max_chars).is_some() {
                return Err(EmbedError::InputTooLong {
                    input: i,
                    message: format!(
                        "input {i} is longer than {max_chars} characters (split the text into \
                         shorter passages)"
                    ),
                });
            }
        }
        civia_ipc::embed::check_request(inputs).map_err(|message| EmbedError::InvalidInput {
            input: None,
            message,
        })
    }

    /// One unit vector per input, in order: the texts as given (the caller adds whatever
    /// prefix its model needs). Refused at once when a limit is broken, the worker is not
    /// ready or `queue_depth` requests already wait; otherwise waits its turn.
    pub async fn embed(&self, inputs: Vec<String>) -> Result<Embedded, EmbedError> {
        self.check(&inputs)?;
        if inputs.is_empty() {
            return Ok(Embedded {
                vectors: Vec::new(),
                tokens: Vec::new(),
                model_sha256: self.model().map(|m| m.sha256).unwrap_or_default(),
            });
        }
        let status = self.status();
        if status.phase != Phase::Ready {
            self.inner
                .metrics
                .rejected_unavailable
                .fetch_add(1, Ordering::Relaxed);
            return Err(EmbedError::Unavailable(status.last_error.unwrap_or_else(
                || format!("embedding worker {}", status.phase.as_str()),
            )));
        }
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let (reply, rx) = oneshot::channel();
        self.inner
            .commands
            .send(Command::Job(Job {
                req: EmbedRequest { id, inputs },
                reply,
            }))
            .map_err(|_| EmbedError::Unavailable("the supervisor stopped".into()))?;
        rx.await
            .unwrap_or_else(|_| Err(EmbedError::Unavailable("the supervisor stopped".into())))
    }

    /// Vectors of `texts` as queries or passages: the model's prefix is added to each
    /// (`[embeddings] query_prefix` / `passage_prefix`), and texts beyond the inputs of one
    /// request are sent as several requests, one after the other (each waits its turn like
    /// any other). The call the knowledge service makes.
    pub async fn embed_texts(
        &self,
        kind: TextKind,
        texts: &[String],
    ) -> Result<Embedded, EmbedError> {
        let prefix = match kind {
            TextKind::Query => &self.inner.spec.query_prefix,
            TextKind::Passage => &self.inner.spec.passage_prefix,
        };
        let mut all = Embedded {
            vectors: Vec::with_capacity(texts.len()),
            tokens: Vec::with_capacity(texts.len()),
            model_sha256: String::new(),
        };
        let per = self.inner.spec.max_inputs.max(1);
        for (n, chunk) in texts.chunks(per).enumerate() {
            let inputs = chunk.iter().map(|t| format!("{prefix}{t}")).collect();
            let done = self.embed(inputs).await.map_err(|e| match e {
                // Indexes name the caller's texts, not the chunk's.
                EmbedError::InputTooLong { input, message } => EmbedError::InputTooLong {
                    input: input + n * per,
                    message,
                },
                other => other,
            })?;
            if !all.model_sha256.is_empty() && all.model_sha256 != done.model_sha256 {
                return Err(EmbedError::Unavailable(
                    "the embedding model changed during the request".into(),
                ));
            }
            all.model_sha256 = done.model_sha256;
            all.vectors.extend(done.vectors);
            all.tokens.extend(done.tokens);
        }
        Ok(all)
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

/// The embedding worker's scheduling: one request at a time in the worker, the others
/// waiting in order (bounded). The waiting queue outlives a worker, the running request
/// does not (its input may be what killed the worker).
struct InOrder {
    shared: Arc<Shared<EmbedStatus, EmbedLoadSpec>>,
    metrics: Arc<EmbedMetrics>,
    queue: VecDeque<Job>,
    current: Option<(u64, usize, std::time::Instant, Reply)>,
    queue_depth: usize,
}

impl Policy for InOrder {
    type Protocol = EmbedProtocol;
    type Status = EmbedStatus;
    type Job = Job;
    const WORDING: Wording = Wording {
        name: "embedding worker",
        worker: "embedding worker",
        the_worker: "the embedding worker",
        model: "embedding model",
        us: "civiad",
        load_request: "the load request",
    };

    fn describe_loaded(load: &EmbedLoadSpec, info: &EmbedModelInfo) -> String {
        format!(
            "embedding model ready: {} ({} dimensions, {} tokens per input, {:?} pooling, sha256 {})",
            load.path, info.dimension, info.max_tokens, info.pooling, info.sha256
        )
    }

    fn hold(&mut self, job: Job, held: Held<'_>) {
        let why = match held {
            Held::Loading => "embedding worker starting".to_string(),
            Held::Restarting(why) => format!("embedding worker restarting: {why}"),
        };
        self.metrics
            .rejected_unavailable
            .fetch_add(1, Ordering::Relaxed);
        let _ = job.reply.send(Err(EmbedError::Unavailable(why)));
    }

    async fn ready(
        &mut self,
        _load: &EmbedLoadSpec,
        link: &mut Link<EmbedProtocol>,
    ) -> Result<(), String> {
        self.start_next(link).await
    }

    async fn submit(&mut self, job: Job, link: &mut Link<EmbedProtocol>) -> Result<(), String> {
        if self.queue.len() >= self.queue_depth {
            self.metrics.rejected_busy.fetch_add(1, Ordering::Relaxed);
            let _ = job.reply.send(Err(EmbedError::Busy(self.queue.len())));
            return Ok(());
        }
        self.queue.push_back(job);
        self.publish();
        self.start_next(link).await
    }

    async fn message(
        &mut self,
        msg: FromEmbed,
        link: &mut Link<EmbedProtocol>,
    ) -> Result<(), String> {
        self.dispatch(msg);
        self.start_next(link).await
    }

    fn crashed(&mut self, why: &str) {
        if let Some((_, _, _, reply)) = self.current.take() {
            self.metrics
                .failed_worker_crash
                .fetch_add(1, Ordering::Relaxed);
            let _ = reply.send(Err(EmbedError::WorkerCrashed(why.to_string())));
        }
        self.publish();
    }

    fn load_failed(&mut self, why: &str) {
        // A worker that cannot load will not serve them soon.
        self.fail_all(&EmbedError::Unavailable(why.to_string()));
    }

    fn stop_all(&mut self, why: Stopping) {
        let why = match why {
            Stopping::Shutdown => "civiad is shutting down",
            Stopping::Replaced => "the embedding model is being replaced",
        };
        self.fail_all(&EmbedError::Unavailable(why.into()));
    }
}

impl InOrder {
    fn publish(&self) {
        let n = self.queue.len() + usize::from(self.current.is_some());
        self.shared.status.send_modify(|s| s.jobs = n);
    }

    fn fail_all(&mut self, err: &EmbedError) {
        if let Some((_, _, _, reply)) = self.current.take() {
            let _ = reply.send(Err(err.clone()));
        }
        while let Some(job) = self.queue.pop_front() {
            let _ = job.reply.send(Err(err.clone()));
        }
        self.publish();
    }

    /// Sends the next waiting request to an idle worker.
    async fn start_next(&mut self, link: &mut Link<EmbedProtocol>) -> Result<(), String> {
        while self.current.is_none() {
            let Some(job) = self.queue.pop_front() else {
                break;
            };
            if job.reply.is_closed() {
                continue; // the caller left while waiting
            }
            let (id, n) = (job.req.id, job.req.inputs.len());
            link.send(&ToEmbed::Embed(job.req))
                .await
                .map_err(|e| format!("cannot send a request to the embedding worker: {e}"))?;
            self.current = Some((id, n, std::time::Instant::now(), job.reply));
        }
        self.publish();
        Ok(())
    }

    /// Answers the running request.
    fn dispatch(&mut self, msg: FromEmbed) {
        let (id, result) = match msg {
            FromEmbed::Embedded {
                id,
                vectors,
                tokens,
            } => (id, Ok((vectors, tokens))),
            FromEmbed::Failed {
                id,
                kind,
                input,
                message,
            } => {
                let input = input.map(|i| i as usize);
                let err = match (kind, input) {
                    (EmbedFailure::InputTooLong, Some(input)) => {
                        EmbedError::InputTooLong { input, message }
                    }
                    (EmbedFailure::InputTooLong | EmbedFailure::InvalidRequest, input) => {
                        EmbedError::InvalidInput { input, message }
                    }
                    (EmbedFailure::Internal, _) => EmbedError::Internal(message),
                };
                (id, Err(err))
            }
            FromEmbed::Hello { .. } | FromEmbed::Loaded(_) | FromEmbed::LoadFailed { .. } => {
                log::warn!("embedding worker sent a message out of order; ignored");
                return;
            }
        };
        let Some((current, n, since, _)) = &self.current else {
            return;
        };
        if *current != id {
            log::warn!("embedding worker answered request {id}, not the running one; ignored");
            return;
        }
        let (n, since) = (*n, *since);
        let Some((_, _, _, reply)) = self.current.take() else {
            return;
        };
        let answer = match result {
            Ok((vectors, tokens)) if vectors.len() == n && tokens.len() == n => {
                let m = &self.metrics;
                m.requests_ok.fetch_add(1, Ordering::Relaxed);
                m.inputs.fetch_add(n as u64, Ordering::Relaxed);
                m.tokens.fetch_add(
                    tokens.iter().map(|&t| u64::from(t)).sum(),
                    Ordering::Relaxed,
                );
                m.busy_micros.fetch_add(
                    u64::try_from(since.elapsed().as_micros()).unwrap_or(u64::MAX),
                    Ordering::Relaxed,
                );
                let model_sha256 = self
                    .shared
                    .status
                    .borrow()
                    .model
                    .as_ref()
                    .map(|m| m.sha256.clone())
                    .unwrap_or_default();
                Ok(Embedded {
                    vectors,
                    tokens,
                    model_sha256,
                })
            }
            Ok((vectors, _)) => {
                self.metrics.requests_failed.fetch_add(1, Ordering::Relaxed);
                Err(EmbedError::Internal(format!(
                    "the worker answered {} vectors for {n} inputs",
                    vectors.len()
                )))
            }
            Err(e) => {
                self.metrics.requests_failed.fetch_add(1, Ordering::Relaxed);
                Err(e)
            }
        };
        let _ = reply.send(answer);
    }
}
