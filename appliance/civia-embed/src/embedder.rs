//! The model in embedding mode: load, then texts in, unit vectors out.
//!
//! Inputs are packed into passes: as many whole inputs as fit in `batch_size` tokens and
//! `max_sequences` sequences, each input its own sequence (llama.cpp's attention mask keeps
//! them apart, and pools each one separately). Encoder models (BERT and friends) keep no
//! cache between passes; for decoder-based ones the cache is cleared before each pass.

use civia_ipc::embed::{normalize, EmbedFailure, EmbedLoadSpec, EmbedModelInfo, Pooling};
use llama_cpp_2::context::params::{LlamaContextParams, LlamaPoolingType};
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use std::num::NonZeroU32;

/// llama.cpp's bound on sequences in one context (`LLAMA_MAX_SEQ`).
const MAX_SEQUENCES: u32 = 256;

/// The vectors of one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedded {
    /// One per input, in order, of unit length.
    pub vectors: Vec<Vec<f32>>,
    /// Tokens of each input (special tokens included).
    pub tokens: Vec<u32>,
}

/// Why a request failed; the worker reports it as `Failed { kind, input, message }`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    pub kind: EmbedFailure,
    /// The input at fault, when one is.
    pub input: Option<u32>,
    pub message: String,
}

impl Failure {
    fn internal(message: String) -> Self {
        Self {
            kind: EmbedFailure::Internal,
            input: None,
            message,
        }
    }
}

/// Loads the model file `spec` names (on a GPU when `gpu_layers` and a GPU backend allow).
pub fn load_model(backend: &LlamaBackend, spec: &EmbedLoadSpec) -> Result<LlamaModel, String> {
    let params = LlamaModelParams::default().with_n_gpu_layers(spec.gpu_layers);
    LlamaModel::load_from_file(backend, &spec.path, &params)
        .map_err(|e| format!("llama.cpp could not load {}: {e}", spec.path))
}

/// The model's pooling from its GGUF metadata (`<arch>.pooling_type`): `Ok(None)` when it
/// names none (mean is used), an error for a reranking model.
fn model_pooling(model: &LlamaModel, arch: &str) -> Result<Option<Pooling>, String> {
    let raw = model
        .meta_val_str(&format!("{arch}.pooling_type"))
        .ok()
        .and_then(|v| v.trim().parse::<i32>().ok());
    match raw.map(LlamaPoolingType::from) {
        Some(LlamaPoolingType::Mean) => Ok(Some(Pooling::Mean)),
        Some(LlamaPoolingType::Cls) => Ok(Some(Pooling::Cls)),
        Some(LlamaPoolingType::Last) => Ok(Some(Pooling::Last)),
        Some(LlamaPoolingType::Rank) => Err(
            "this model is a reranker (rank pooling), not an embedding model: it gives a score \
             per pair of texts, not a vector per text"
                .into(),
        ),
        Some(LlamaPoolingType::None | LlamaPoolingType::Unspecified) | None => Ok(None),
    }
}

fn llama_pooling(p: Pooling) -> LlamaPoolingType {
    match p {
        Pooling::Mean => LlamaPoolingType::Mean,
        Pooling::Cls => LlamaPoolingType::Cls,
        Pooling::Last => LlamaPoolingType::Last,
    }
}

/// A loaded model with its embedding context.
pub struct Embedder<'m> {
    model: &'m LlamaModel,
    ctx: LlamaContext<'m>,
    info: EmbedModelInfo,
    batch: LlamaBatch<'static>,
}

impl<'m> Embedder<'m> {
    /// An embedding context on `model` as `spec` asks (`sha256`: the file's, for the model
    /// description). The error is the sentence the worker refuses the load with.
    pub fn new(
        backend: &LlamaBackend,
        model: &'m LlamaModel,
        spec: &EmbedLoadSpec,
        sha256: String,
    ) -> Result<Self, String> {
        let architecture = model
            .meta_val_str("general.architecture")
            .unwrap_or_else(|_| "unknown".into());
        let from_model = model_pooling(model, &architecture)?;
        let pooling = from_model.unwrap_or(Pooling::Mean);
        let dimension = u32::try_from(model.n_embd_out()).unwrap_or(0);
        if dimension == 0 || dimension > civia_ipc::embed::MAX_DIMENSION {
            return Err(format!(
                "{}: vectors of {dimension} dimensions (Civia takes 1 to {})",
                spec.path,
                civia_ipc::embed::MAX_DIMENSION
            ));
        }
        // An input is evaluated in one pass: it may have as many tokens as the model's
        // context and the pass allow. The pass is not raised to the context: llama.cpp keeps
        // an output buffer of (vocabulary x pass) floats even in embedding mode, 1 MiB per
        // token of the pass for E5's 250,000-token vocabulary, so the pass bounds the memory.
        let batch_size = spec.batch_size.max(1);
        let max_tokens = model.n_ctx_train().max(1).min(batch_size);
        // llama.cpp reserves an output per sequence within the pass's outputs (and aborts
        // otherwise): no more sequences than tokens in a pass.
        let max_sequences = spec.max_sequences.clamp(1, MAX_SEQUENCES).min(batch_size);
        let threads = i32::try_from(spec.threads).unwrap_or(i32::MAX).max(1);
        let params = LlamaContextParams::default()
            .with_embeddings(true)
            .with_pooling_type(llama_pooling(pooling))
            .with_n_ctx(NonZeroU32::new(batch_size))
            .with_n_batch(batch_size)
            // Encoder models evaluate a pass in one go (no micro-batches).
            .with_n_ubatch(batch_size)
            .with_n_seq_max(max_sequences)
            // Decoder-based models: every sequence may use the whole cache (cleared per pass).
            .with_kv_unified(true)
            .with_n_threads(threads)
            .with_n_threads_batch(threads);
        let ctx = model.new_context(backend, params).map_err(|e| {
            format!(
                "cannot create a llama.cpp embedding context of {batch_size} tokens and \
                 {max_sequences} sequences: {e}"
            )
        })?;
        // What llama.cpp granted is the pass (it asserts, aborting the process, on a pass
        // longer than its micro-batch).
        let granted = ctx.n_ubatch().min(ctx.n_batch());
        if granted < batch_size {
            return Err(format!(
                "llama.cpp gave an embedding context of {granted} tokens per pass, not {batch_size}"
            ));
        }
        let devices = civia_runtime::devices::compute_devices();
        let info = EmbedModelInfo {
            sha256,
            size_bytes: model.size(),
            n_params: model.n_params(),
            dimension,
            max_tokens,
            pooling,
            pooling_from_model: from_model.is_some(),
            name: model.meta_val_str("general.name").ok(),
            architecture,
            batch_size,
            max_sequences,
            gpu_layers: civia_runtime::devices::offloaded_layers(
                backend,
                &devices,
                spec.gpu_layers,
                model.n_layer(),
            ),
            devices,
        };
        Ok(Self {
            model,
            ctx,
            batch: LlamaBatch::new(batch_size as usize, max_sequences as i32),
            info,
        })
    }

    pub fn info(&self) -> &EmbedModelInfo {
        &self.info
    }

    /// Tokens of one input: the model's special tokens around it (`[CLS] … [SEP]`,
    /// `<s> … </s>`), none parsed out of the text itself.
    pub fn tokenize(&self, text: &str) -> Vec<LlamaToken> {
        self.model.vocab().tokenize(text.as_bytes(), true, false)
    }

    /// One unit vector per input, in order. Every input is tokenized and checked before any
    /// is evaluated: one too long (or empty) fails the request, naming it.
    pub fn embed(&mut self, inputs: &[String]) -> Result<Embedded, Failure> {
        civia_ipc::embed::check_request(inputs).map_err(|message| Failure {
            kind: EmbedFailure::InvalidRequest,
            input: None,
            message,
        })?;
        let max = self.info.max_tokens as usize;
        let mut all = Vec::with_capacity(inputs.len());
        for (i, text) in inputs.iter().enumerate() {
            let tokens = self.tokenize(text);
            let input = u32::try_from(i).ok();
            if tokens.is_empty() {
                return Err(Failure {
                    kind: EmbedFailure::InvalidRequest,
                    input,
                    message: format!("input {i} is empty"),
                });
            }
            if tokens.len() > max {
                return Err(Failure {
                    kind: EmbedFailure::InputTooLong,
                    input,
                    message: format!(
                        "input {i} is {} tokens long; the embedding model takes at most {max} \
                         tokens per input on this box (split the text into shorter passages)",
                        tokens.len()
                    ),
                });
            }
            all.push(tokens);
        }
        let mut vectors = Vec::with_capacity(inputs.len());
        let mut start = 0;
        while start < all.len() {
            let end = self.pass_end(&all, start);
            self.evaluate(&all[start..end], &mut vectors)?;
            start = end;
        }
        Ok(Embedded {
            vectors,
            tokens: all.iter().map(|t| t.len() as u32).collect(),
        })
    }

    /// The end of the pass that starts at `start`: whole inputs within the pass's tokens and
    /// sequences (always at least one: no input is longer than a pass).
    fn pass_end(&self, all: &[Vec<LlamaToken>], start: usize) -> usize {
        let (mut tokens, mut end) = (0usize, start);
        while end < all.len()
            && end - start < self.info.max_sequences as usize
            && tokens + all[end].len() <= self.info.batch_size as usize
        {
            tokens += all[end].len();
            end += 1;
        }
        end.max(start + 1)
    }

    /// Evaluates one pass and appends its pooled, normalised vectors.
    fn evaluate(
        &mut self,
        pass: &[Vec<LlamaToken>],
        out: &mut Vec<Vec<f32>>,
    ) -> Result<(), Failure> {
        self.ctx.clear_kv_cache();
        self.batch.clear();
        for (seq, tokens) in pass.iter().enumerate() {
            self.batch
                .add_sequence(tokens, seq as i32, true)
                .map_err(|e| Failure::internal(format!("cannot fill the batch: {e}")))?;
        }
        self.ctx
            .decode(&mut self.batch)
            .map_err(|e| Failure::internal(format!("llama.cpp failed to evaluate: {e}")))?;
        for seq in 0..pass.len() {
            let v = self.ctx.embeddings_seq_ith(seq as i32).map_err(|e| {
                Failure::internal(format!("llama.cpp gave no vector for a sequence: {e}"))
            })?;
            let mut v = v.to_vec();
            if v.iter().any(|x| !x.is_finite()) {
                return Err(Failure::internal(
                    "the model produced a vector that is not finite".into(),
                ));
            }
            normalize(&mut v);
            out.push(v);
        }
        Ok(())
    }
}
