//! The worker's main loop: handshake, load, then one generation at a time with the queue and
//! cancellations read between decode steps.

use crate::stop::{StopMatcher, Utf8Assembler};
use crate::template::ChatTemplate;
use civia_ipc::{
    read_frame, write_frame, FailureKind, FinishReason, FromWorker, GenerateRequest, IpcError,
    LoadSpec, ModelInfo, Prompt, SamplingParams, ToWorker, PROTOCOL_VERSION,
};
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use sha2::{Digest, Sha256};
use std::collections::VecDeque;
use std::io::Read;
use std::num::NonZeroU32;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::mpsc::{channel, Receiver, TryRecvError};

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error(transparent)]
    Ipc(#[from] IpcError),
    #[error("protocol version mismatch: supervisor speaks {0}, worker speaks {PROTOCOL_VERSION}")]
    Version(u32),
    #[error("unexpected message from the supervisor: {0}")]
    Unexpected(&'static str),
    #[error("model load failed: {0}")]
    Load(String),
}

/// Runs the worker on an already connected socket until the supervisor says `Shutdown` or
/// closes the socket.
pub fn run_worker(stream: UnixStream) -> Result<(), WorkerError> {
    let mut reader = stream.try_clone().map_err(IpcError::Io)?;
    let mut out = stream;
    match read_frame::<ToWorker>(&mut reader)? {
        ToWorker::Hello { version } if version == PROTOCOL_VERSION => {}
        ToWorker::Hello { version } => return Err(WorkerError::Version(version)),
        _ => return Err(WorkerError::Unexpected("expected hello")),
    }
    write_frame(
        &mut out,
        &FromWorker::Hello {
            version: PROTOCOL_VERSION,
            pid: std::process::id(),
        },
    )?;
    let spec = match read_frame::<ToWorker>(&mut reader)? {
        ToWorker::Load(spec) => spec,
        ToWorker::Shutdown => return Ok(()),
        _ => return Err(WorkerError::Unexpected("expected load")),
    };

    let sha256 = match verify_file(&spec) {
        Ok(h) => h,
        Err(message) => {
            write_frame(
                &mut out,
                &FromWorker::LoadFailed {
                    message: message.clone(),
                },
            )?;
            return Err(WorkerError::Load(message));
        }
    };
    // llama.cpp logs go through `tracing` (its `log` feature) into our logger.
    llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
    let backend = match LlamaBackend::init() {
        Ok(b) => b,
        Err(e) => {
            let message = format!("llama.cpp backend initialisation failed: {e}");
            write_frame(
                &mut out,
                &FromWorker::LoadFailed {
                    message: message.clone(),
                },
            )?;
            return Err(WorkerError::Load(message));
        }
    };
    let model_params = LlamaModelParams::default().with_n_gpu_layers(spec.gpu_layers);
    let model = match LlamaModel::load_from_file(&backend, &spec.path, &model_params) {
        Ok(m) => m,
        Err(e) => {
            let message = format!("llama.cpp could not load {}: {e}", spec.path);
            write_frame(
                &mut out,
                &FromWorker::LoadFailed {
                    message: message.clone(),
                },
            )?;
            return Err(WorkerError::Load(message));
        }
    };
    let n_ctx_train = model.n_ctx_train();
    let n_ctx = match spec.context_length {
        0 => n_ctx_train,
        n => n.min(n_ctx_train.max(1)),
    };
    let threads = i32::try_from(spec.threads).unwrap_or(i32::MAX).max(1);
    let ctx_params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(n_ctx))
        .with_n_batch(spec.batch_size)
        .with_n_ubatch(spec.batch_size)
        .with_n_seq_max(1)
        .with_n_threads(threads)
        .with_n_threads_batch(threads);
    let ctx = match model.new_context(&backend, ctx_params) {
        Ok(c) => c,
        Err(e) => {
            let message = format!("cannot create a llama.cpp context of {n_ctx} tokens: {e}");
            write_frame(
                &mut out,
                &FromWorker::LoadFailed {
                    message: message.clone(),
                },
            )?;
            return Err(WorkerError::Load(message));
        }
    };

    let vocab = model.vocab();
    let piece =
        |t: LlamaToken| String::from_utf8_lossy(&vocab.token_to_piece(t, true, None)).into_owned();
    let gguf_template = model
        .chat_template(None)
        .ok()
        .and_then(|t| t.to_string().ok());
    let template = ChatTemplate::new(
        gguf_template.as_deref(),
        &piece(vocab.bos()),
        &piece(vocab.eos()),
    );
    let info = ModelInfo {
        sha256,
        size_bytes: model.size(),
        n_params: model.n_params(),
        n_ctx: ctx.n_ctx(),
        n_ctx_train,
        architecture: model
            .meta_val_str("general.architecture")
            .unwrap_or_else(|_| "unknown".into()),
        name: model.meta_val_str("general.name").ok(),
        template: template.source(),
    };
    log::info!(
        "worker {} loaded {} ({} parameters, context {} tokens, template {:?})",
        std::process::id(),
        spec.path,
        info.n_params,
        info.n_ctx,
        info.template
    );
    write_frame(&mut out, &FromWorker::Loaded(info))?;

    // A reader thread turns the socket into a channel the generation loop polls between steps.
    let (tx, rx) = channel::<Option<ToWorker>>();
    std::thread::Builder::new()
        .name("ipc-reader".into())
        .spawn(move || loop {
            match read_frame::<ToWorker>(&mut reader) {
                Ok(msg) => {
                    if tx.send(Some(msg)).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    if !matches!(e, IpcError::Closed) {
                        log::error!("worker IPC read failed: {e}");
                    }
                    let _ = tx.send(None);
                    return;
                }
            }
        })
        .map_err(IpcError::Io)?;

    let mut engine = Engine {
        model: &model,
        ctx,
        template,
        out,
        rx,
        queue: VecDeque::new(),
        shutdown: false,
    };
    engine.serve()
}

/// Checks the file is GGUF and hashes it (comparing with the expected hash when given).
fn verify_file(spec: &LoadSpec) -> Result<String, String> {
    let path = Path::new(&spec.path);
    let mut f = std::fs::File::open(path)
        .map_err(|e| format!("cannot open model file {}: {e}", spec.path))?;
    let mut magic = [0u8; 4];
    f.read_exact(&mut magic)
        .map_err(|_| format!("{} is not a GGUF model file (too short)", spec.path))?;
    if &magic != b"GGUF" {
        return Err(format!(
            "{} is not a GGUF model file (Civia serves GGUF only; convert the model with llama.cpp's tools)",
            spec.path
        ));
    }
    let mut hasher = Sha256::new();
    hasher.update(magic);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| format!("cannot read model file {}: {e}", spec.path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let digest: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if let Some(expected) = &spec.sha256 {
        if !expected.eq_ignore_ascii_case(&digest) {
            return Err(format!(
                "SHA-256 of {} is {digest}, the configuration expects {expected}: refusing to load",
                spec.path
            ));
        }
    }
    Ok(digest)
}

struct Engine<'m> {
    model: &'m LlamaModel,
    ctx: LlamaContext<'m>,
    template: ChatTemplate,
    out: UnixStream,
    rx: Receiver<Option<ToWorker>>,
    queue: VecDeque<GenerateRequest>,
    shutdown: bool,
}

/// Outcome of one generation, before it is reported.
enum Outcome {
    Finished(FinishReason, u32, u32),
    Failed(FailureKind, String),
}

impl Engine<'_> {
    fn send(&mut self, msg: &FromWorker) -> Result<(), WorkerError> {
        Ok(write_frame(&mut self.out, msg)?)
    }

    fn serve(&mut self) -> Result<(), WorkerError> {
        while !self.shutdown {
            let req = match self.queue.pop_front() {
                Some(r) => r,
                None => match self.rx.recv() {
                    Ok(Some(msg)) => {
                        self.handle(msg, None)?;
                        continue;
                    }
                    Ok(None) | Err(_) => return Ok(()),
                },
            };
            let id = req.id;
            let msg = match self.generate(req)? {
                Outcome::Finished(finish_reason, prompt_tokens, completion_tokens) => {
                    FromWorker::Finished {
                        id,
                        finish_reason,
                        prompt_tokens,
                        completion_tokens,
                    }
                }
                Outcome::Failed(kind, message) => FromWorker::Failed { id, kind, message },
            };
            self.send(&msg)?;
        }
        Ok(())
    }

    /// Handles one incoming message; returns true when it cancels `current`.
    fn handle(&mut self, msg: ToWorker, current: Option<u64>) -> Result<bool, WorkerError> {
        match msg {
            ToWorker::Generate(r) => self.queue.push_back(r),
            ToWorker::Cancel { id } => {
                if Some(id) == current {
                    return Ok(true);
                }
                if let Some(pos) = self.queue.iter().position(|r| r.id == id) {
                    self.queue.remove(pos);
                    self.send(&FromWorker::Finished {
                        id,
                        finish_reason: FinishReason::Cancelled,
                        prompt_tokens: 0,
                        completion_tokens: 0,
                    })?;
                }
            }
            ToWorker::Shutdown => {
                self.shutdown = true;
                return Ok(true);
            }
            ToWorker::Hello { .. } | ToWorker::Load(_) => {
                log::warn!("worker ignores a repeated hello/load");
            }
        }
        Ok(false)
    }

    /// Reads everything pending without blocking; true when `current` must stop.
    fn poll(&mut self, current: u64) -> Result<bool, WorkerError> {
        let mut stop = false;
        loop {
            match self.rx.try_recv() {
                Ok(Some(msg)) => stop |= self.handle(msg, Some(current))?,
                Ok(None) | Err(TryRecvError::Disconnected) => {
                    self.shutdown = true;
                    return Ok(true);
                }
                Err(TryRecvError::Empty) => return Ok(stop),
            }
        }
    }

    fn tokenize(&self, prompt: &Prompt) -> Result<Vec<LlamaToken>, (FailureKind, String)> {
        let vocab = self.model.vocab();
        let (text, parse_special) = match prompt {
            Prompt::Chat { messages } => (
                self.template
                    .render(messages)
                    .map_err(|e| (FailureKind::InvalidPrompt, e.to_string()))?,
                true,
            ),
            Prompt::Text { text } => (text.clone(), false),
        };
        let mut tokens = vocab.tokenize(text.as_bytes(), vocab.should_add_bos(), parse_special);
        // Templates that write the BOS text themselves would otherwise get two.
        let bos = vocab.bos();
        if tokens.len() >= 2 && tokens[0] == bos && tokens[1] == bos {
            tokens.remove(0);
        }
        if tokens.is_empty() {
            return Err((FailureKind::InvalidPrompt, "the prompt is empty".into()));
        }
        Ok(tokens)
    }

    fn sampler(&self, p: &SamplingParams) -> LlamaSampler {
        let mut chain = Vec::new();
        if p.frequency_penalty != 0.0 || p.presence_penalty != 0.0 {
            chain.push(LlamaSampler::penalties(
                self.model.n_vocab(),
                64,
                1.0,
                p.frequency_penalty,
                p.presence_penalty,
            ));
        }
        if p.temperature <= 0.0 {
            chain.push(LlamaSampler::greedy());
        } else {
            if p.top_p < 1.0 {
                chain.push(LlamaSampler::top_p(p.top_p, 1));
            }
            chain.push(LlamaSampler::temp(p.temperature));
            // u32::MAX asks llama.cpp for a random seed.
            chain.push(LlamaSampler::dist(p.seed.unwrap_or(u32::MAX)));
        }
        LlamaSampler::chain_simple(chain)
    }

    fn generate(&mut self, req: GenerateRequest) -> Result<Outcome, WorkerError> {
        let tokens = match self.tokenize(&req.prompt) {
            Ok(t) => t,
            Err((kind, message)) => return Ok(Outcome::Failed(kind, message)),
        };
        let n_ctx = self.ctx.n_ctx() as usize;
        if tokens.len() >= n_ctx {
            return Ok(Outcome::Failed(
                FailureKind::ContextOverflow,
                format!(
                    "the prompt is {} tokens long; this model's context window is {n_ctx} tokens",
                    tokens.len()
                ),
            ));
        }
        let prompt_tokens = tokens.len() as u32;
        let budget = (req.params.max_tokens as usize).min(n_ctx - tokens.len());
        self.ctx.clear_kv_cache();

        // Prompt evaluation, in batches, checking for cancellation between them.
        let n_batch = self.ctx.n_batch() as usize;
        let mut batch = LlamaBatch::new(n_batch.max(1), 1);
        for (chunk_no, chunk) in tokens.chunks(n_batch).enumerate() {
            batch.clear();
            let base = chunk_no * n_batch;
            for (i, t) in chunk.iter().enumerate() {
                let pos = (base + i) as i32;
                let last = base + i == tokens.len() - 1;
                if let Err(e) = batch.add(*t, pos, &[0], last) {
                    return Ok(Outcome::Failed(FailureKind::Internal, e.to_string()));
                }
            }
            if let Err(e) = self.ctx.decode(&mut batch) {
                return Ok(Outcome::Failed(
                    FailureKind::Internal,
                    format!("prompt evaluation failed: {e}"),
                ));
            }
            if self.poll(req.id)? {
                return Ok(Outcome::Finished(FinishReason::Cancelled, prompt_tokens, 0));
            }
        }
        self.send(&FromWorker::Started {
            id: req.id,
            prompt_tokens,
        })?;

        let mut sampler = self.sampler(&req.params);
        let mut utf8 = Utf8Assembler::default();
        let mut stops = StopMatcher::new(&req.params.stop);
        let vocab = self.model.vocab();
        let mut logits_idx = batch.n_tokens() - 1;
        let mut pos = tokens.len() as i32;
        let mut generated = 0u32;
        let mut piece = Vec::with_capacity(32);
        let reason = loop {
            if generated as usize >= budget {
                break FinishReason::Length;
            }
            let token = sampler.sample(&self.ctx, logits_idx);
            if vocab.is_eog(token) {
                break FinishReason::Stop;
            }
            generated += 1;
            piece.clear();
            vocab.token_to_piece_into(token, &mut piece, false, None);
            let text = utf8.push(&piece);
            let emitted = stops.push(&text);
            if !emitted.text.is_empty() {
                self.send(&FromWorker::Delta {
                    id: req.id,
                    text: emitted.text,
                })?;
            }
            if emitted.stopped {
                return Ok(Outcome::Finished(
                    FinishReason::Stop,
                    prompt_tokens,
                    generated,
                ));
            }
            if generated as usize >= budget {
                break FinishReason::Length;
            }
            batch.clear();
            if let Err(e) = batch.add(token, pos, &[0], true) {
                return Ok(Outcome::Failed(FailureKind::Internal, e.to_string()));
            }
            pos += 1;
            logits_idx = 0;
            if let Err(e) = self.ctx.decode(&mut batch) {
                return Ok(Outcome::Failed(
                    FailureKind::Internal,
                    format!("decoding failed: {e}"),
                ));
            }
            if self.poll(req.id)? {
                break FinishReason::Cancelled;
            }
        };
        let rest = stops.push(&utf8.finish());
        let mut tail = rest.text;
        if !rest.stopped {
            tail.push_str(&stops.finish());
        }
        if !tail.is_empty() && reason != FinishReason::Cancelled {
            self.send(&FromWorker::Delta {
                id: req.id,
                text: tail,
            })?;
        }
        let reason = if rest.stopped {
            FinishReason::Stop
        } else {
            reason
        };
        Ok(Outcome::Finished(reason, prompt_tokens, generated))
    }
}
