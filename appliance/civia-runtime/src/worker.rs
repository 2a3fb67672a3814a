//! The worker process: handshake and model verification (`civia_ipc::worker`, shared with
//! the speech worker), llama.cpp load, then the batched engine.

use crate::engine::{Engine, EngineConfig};
use crate::template::ChatTemplate;
use civia_ipc::worker::{handshake, Link, Started};
use civia_ipc::{read_frame, IpcError, ModelInfo, RuntimeProtocol, ToWorker};
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use std::num::NonZeroU32;
use std::os::unix::net::UnixStream;
use std::sync::mpsc::channel;

pub use crate::error::WorkerError;

/// Runs the worker on an already connected socket until the supervisor says `Shutdown` or
/// closes the socket.
pub fn run_worker(stream: UnixStream) -> Result<(), WorkerError> {
    let Some(Started {
        load: spec,
        mut link,
    }) = handshake::<RuntimeProtocol>(stream)?
    else {
        return Ok(());
    };
    let sha256 = link.verify_model(&spec, |magic| {
        (&magic == b"GGUF").then_some(()).ok_or_else(|| {
            format!(
                "{} is not a GGUF model file (Civia serves GGUF only; convert the model with llama.cpp's tools)",
                spec.path
            )
        })
    })?;
    // llama.cpp logs go through `tracing` (its `log` feature) into our logger.
    llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
    let backend = LlamaBackend::init()
        .map_err(|e| link.refuse(format!("llama.cpp backend initialisation failed: {e}")))?;
    let model_params = LlamaModelParams::default().with_n_gpu_layers(spec.gpu_layers);
    let model = LlamaModel::load_from_file(&backend, &spec.path, &model_params)
        .map_err(|e| link.refuse(format!("llama.cpp could not load {}: {e}", spec.path)))?;
    let n_ctx_train = model.n_ctx_train();
    let n_ctx_seq = match spec.context_length {
        0 => n_ctx_train,
        n => n.min(n_ctx_train.max(1)),
    };
    let n_parallel = spec.n_parallel.clamp(1, 256);
    let threads = i32::try_from(spec.threads).unwrap_or(i32::MAX).max(1);
    // One KV stream per sequence: its attention never sees the others (batched outputs stay
    // close to solo ones); shared prefixes are copied between streams.
    let ctx_params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(n_ctx_seq.saturating_mul(n_parallel)))
        .with_n_batch(spec.batch_size)
        .with_n_ubatch(spec.batch_size)
        .with_n_seq_max(n_parallel)
        .with_kv_unified(false)
        .with_n_threads(threads)
        .with_n_threads_batch(threads);
    let ctx = model.new_context(&backend, ctx_params).map_err(|e| {
        link.refuse(format!(
            "cannot create a llama.cpp context of {n_ctx_seq} x {n_parallel} tokens: {e}"
        ))
    })?;
    // llama.cpp rounds the context up; each sequence gets an equal share.
    let n_ctx_seq = ctx.n_ctx() / n_parallel;

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
    let devices = crate::devices::compute_devices();
    let info = ModelInfo {
        sha256,
        size_bytes: model.size(),
        n_params: model.n_params(),
        n_ctx: n_ctx_seq,
        n_parallel,
        n_ctx_train,
        architecture: model
            .meta_val_str("general.architecture")
            .unwrap_or_else(|_| "unknown".into()),
        name: model.meta_val_str("general.name").ok(),
        template: template.source(),
        gpu_layers: crate::devices::offloaded_layers(
            &backend,
            &devices,
            spec.gpu_layers,
            model.n_layer(),
        ),
        devices,
    };
    log::info!(
        "worker {} loaded {} ({} parameters, context {} tokens, template {:?}, {} layers on a GPU, devices: {})",
        std::process::id(),
        spec.path,
        info.n_params,
        info.n_ctx,
        info.template,
        info.gpu_layers,
        info.devices
            .iter()
            .map(|d| format!("{} ({})", d.name, d.description))
            .collect::<Vec<_>>()
            .join(", ")
    );
    link.loaded(info)?;
    let Link {
        mut reader,
        writer: out,
        ..
    } = link;

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

    let cfg = EngineConfig {
        n_parallel: n_parallel as usize,
        n_ctx_seq: n_ctx_seq as usize,
        prefix_reuse: spec.prefix_reuse,
    };
    let mut engine = Engine::new(&model, ctx, template, out, rx, cfg);
    engine.serve()
}
