//! The worker over its IPC socket, as civiad drives it: handshake, load, requests, shutdown
//! (the real embedding model; `CIVIA_EMBED_MODEL` names another file).
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions fail loudly

use civia_ipc::embed::{
    EmbedFailure, EmbedLoadSpec, EmbedRequest, FromEmbed, Pooling, ToEmbed, EMBED_PROTOCOL_VERSION,
};
use civia_ipc::{read_frame, write_frame};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

fn model_path() -> PathBuf {
    let p = match std::env::var_os("CIVIA_EMBED_MODEL") {
        Some(p) => PathBuf::from(p),
        None => std::env::var_os("CIVIA_MODEL_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.cache/models")
            })
            .join("multilingual-e5-small.Q4_0.gguf"),
    };
    assert!(p.is_file(), "embedding model {} is missing", p.display());
    p
}

fn load(path: String) -> EmbedLoadSpec {
    EmbedLoadSpec {
        path,
        sha256: None,
        threads: 2,
        gpu_layers: 0,
        batch_size: 512,
        max_sequences: 16,
    }
}

/// Starts the worker on one end of a socket pair and shakes hands from the other.
fn start(spec: EmbedLoadSpec) -> (UnixStream, std::thread::JoinHandle<Result<(), String>>) {
    let (mut sup, worker) = UnixStream::pair().unwrap();
    let t = std::thread::spawn(move || civia_embed::run_worker(worker).map_err(|e| e.to_string()));
    write_frame(
        &mut sup,
        &ToEmbed::Hello {
            version: EMBED_PROTOCOL_VERSION,
        },
    )
    .unwrap();
    assert!(matches!(
        read_frame::<FromEmbed>(&mut sup).unwrap(),
        FromEmbed::Hello {
            version: EMBED_PROTOCOL_VERSION,
            ..
        }
    ));
    write_frame(&mut sup, &ToEmbed::Load(spec)).unwrap();
    (sup, t)
}

#[test]
fn the_worker_loads_embeds_refuses_what_is_too_long_and_stops() {
    let path = model_path();
    let (mut sup, t) = start(load(path.to_string_lossy().into_owned()));
    let info = match read_frame::<FromEmbed>(&mut sup).unwrap() {
        FromEmbed::Loaded(info) => info,
        other => panic!("{other:?}"),
    };
    assert_eq!((info.dimension, info.max_tokens), (384, 512));
    assert_eq!(info.pooling, Pooling::Mean);
    assert_eq!(info.sha256.len(), 64);
    let inputs: Vec<String> = (0..40)
        .map(|i| format!("passage: délibération numéro {i} du conseil municipal"))
        .collect();
    write_frame(
        &mut sup,
        &ToEmbed::Embed(EmbedRequest {
            id: 7,
            inputs: inputs.clone(),
        }),
    )
    .unwrap();
    match read_frame::<FromEmbed>(&mut sup).unwrap() {
        FromEmbed::Embedded {
            id,
            vectors,
            tokens,
        } => {
            assert_eq!(id, 7);
            assert_eq!(vectors.len(), 40);
            assert_eq!(tokens.len(), 40);
            assert!(vectors.iter().all(|v| v.len() == 384));
        }
        other => panic!("{other:?}"),
    }
    let mut long = inputs;
    long[3] = "mot ".repeat(2000);
    write_frame(
        &mut sup,
        &ToEmbed::Embed(EmbedRequest {
            id: 8,
            inputs: long,
        }),
    )
    .unwrap();
    match read_frame::<FromEmbed>(&mut sup).unwrap() {
        FromEmbed::Failed {
            id: 8,
            kind: EmbedFailure::InputTooLong,
            input: Some(3),
            message,
        } => assert!(message.contains("input 3 is"), "{message}"),
        other => panic!("{other:?}"),
    }
    write_frame(&mut sup, &ToEmbed::Shutdown).unwrap();
    t.join().unwrap().unwrap();
}

#[test]
fn a_file_that_is_not_gguf_is_refused_before_llama_cpp_reads_it() {
    let dir = std::env::temp_dir().join(format!("civia-embed-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("model.bin");
    std::fs::write(&bad, b"ggml not a gguf file").unwrap();
    let (mut sup, t) = start(load(bad.to_string_lossy().into_owned()));
    match read_frame::<FromEmbed>(&mut sup).unwrap() {
        FromEmbed::LoadFailed { message } => {
            assert!(message.contains("is not a GGUF model file"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    assert!(t.join().unwrap().is_err());
    std::fs::remove_dir_all(dir).unwrap();
}
