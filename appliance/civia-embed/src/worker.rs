//! The worker process: handshake and model verification (`civia_ipc::worker`, shared with
//! the other workers), llama.cpp load in embedding mode, then one request at a time.

use crate::embedder::{load_model, Embedder};
use crate::WorkerError;
use civia_ipc::embed::{EmbedProtocol, FromEmbed, ToEmbed};
use civia_ipc::worker::{handshake, Started};
use civia_ipc::IpcError;
use llama_cpp_2::llama_backend::LlamaBackend;
use std::os::unix::net::UnixStream;

/// Runs the worker on an already connected socket until the supervisor says `Shutdown` or
/// closes the socket.
pub fn run_worker(stream: UnixStream) -> Result<(), WorkerError> {
    let Some(Started {
        load: spec,
        mut link,
    }) = handshake::<EmbedProtocol>(stream)?
    else {
        return Ok(());
    };
    let sha256 = link.verify_model(&spec, |magic| {
        (&magic == b"GGUF").then_some(()).ok_or_else(|| {
            format!(
                "{} is not a GGUF model file (Civia's embedding worker serves GGUF only)",
                spec.path
            )
        })
    })?;
    // llama.cpp logs go through `tracing` (its `log` feature) into our logger.
    llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
    let backend = LlamaBackend::init()
        .map_err(|e| link.refuse(format!("llama.cpp backend initialisation failed: {e}")))?;
    let model = load_model(&backend, &spec).map_err(|m| link.refuse(m))?;
    let mut embedder =
        Embedder::new(&backend, &model, &spec, sha256).map_err(|m| link.refuse(m))?;
    let info = embedder.info().clone();
    log::info!(
        "embedding worker {} loaded {} ({} parameters, {} dimensions, {} tokens per input, \
         {:?} pooling{}, passes of {} tokens and {} inputs, {} layers on a GPU)",
        std::process::id(),
        spec.path,
        info.n_params,
        info.dimension,
        info.max_tokens,
        info.pooling,
        if info.pooling_from_model {
            ""
        } else {
            " (the model names none)"
        },
        info.batch_size,
        info.max_sequences,
        info.gpu_layers,
    );
    link.loaded(info)?;
    loop {
        let msg = match link.read() {
            Ok(m) => m,
            Err(IpcError::Closed) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        match msg {
            ToEmbed::Embed(req) => {
                let started = std::time::Instant::now();
                let answer = match embedder.embed(&req.inputs) {
                    Ok(done) => {
                        log::debug!(
                            "embedded {} inputs ({} tokens) in {} ms",
                            done.vectors.len(),
                            done.tokens.iter().sum::<u32>(),
                            started.elapsed().as_millis()
                        );
                        FromEmbed::Embedded {
                            id: req.id,
                            vectors: done.vectors,
                            tokens: done.tokens,
                        }
                    }
                    Err(f) => FromEmbed::Failed {
                        id: req.id,
                        kind: f.kind,
                        input: f.input,
                        message: f.message,
                    },
                };
                link.send(&answer)?;
            }
            ToEmbed::Shutdown => return Ok(()),
            ToEmbed::Hello { .. } | ToEmbed::Load(_) => {
                log::warn!("embedding worker: unexpected set-up message ignored");
            }
        }
    }
}
