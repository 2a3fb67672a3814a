//! The embedder on the project's real embedding model (multilingual E5 small, installed by
//! `appliance/scripts/install-models.sh`; `CIVIA_EMBED_MODEL` names another file).
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions fail loudly

use civia_embed::Embedder;
use civia_ipc::embed::{EmbedFailure, EmbedLoadSpec, Pooling};
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::LlamaModel;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

/// The model's file stem in the model directory.
pub const E5: &str = "multilingual-e5-small.Q4_0";

fn model_path() -> PathBuf {
    let p = match std::env::var_os("CIVIA_EMBED_MODEL") {
        Some(p) => PathBuf::from(p),
        None => std::env::var_os("CIVIA_MODEL_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.cache/models")
            })
            .join(format!("{E5}.gguf")),
    };
    assert!(
        p.is_file(),
        "embedding model {} is missing: run appliance/scripts/install-models.sh (or set CIVIA_EMBED_MODEL)",
        p.display()
    );
    p
}

fn spec(batch_size: u32, max_sequences: u32) -> EmbedLoadSpec {
    EmbedLoadSpec {
        path: model_path().to_string_lossy().into_owned(),
        sha256: None,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
        gpu_layers: 0,
        batch_size,
        max_sequences,
    }
}

/// llama.cpp's backend and the model, once per test process; one test at a time uses them.
fn model() -> &'static (LlamaBackend, LlamaModel) {
    static MODEL: OnceLock<(LlamaBackend, LlamaModel)> = OnceLock::new();
    MODEL.get_or_init(|| {
        llama_cpp_2::send_logs_to_tracing(
            llama_cpp_2::LogOptions::default().with_logs_enabled(false),
        );
        let backend = LlamaBackend::init().unwrap();
        let model = civia_embed::load_model(&backend, &spec(512, 1)).unwrap();
        (backend, model)
    })
}

fn with_embedder<T>(batch_size: u32, max_sequences: u32, f: impl FnOnce(&mut Embedder) -> T) -> T {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (backend, model) = model();
    let mut e =
        Embedder::new(backend, model, &spec(batch_size, max_sequences), "x".into()).unwrap();
    f(&mut e)
}

fn cos(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn s(texts: &[&str]) -> Vec<String> {
    texts.iter().map(|t| t.to_string()).collect()
}

#[test]
fn the_model_describes_itself() {
    with_embedder(512, 8, |e| {
        let info = e.info();
        assert_eq!(info.dimension, 384);
        assert_eq!(info.max_tokens, 512);
        assert_eq!(info.pooling, Pooling::Mean);
        assert!(info.pooling_from_model);
        assert_eq!(info.architecture, "bert");
        assert_eq!(info.batch_size, 512);
        assert_eq!(info.max_sequences, 8);
    });
    // A smaller pass bounds the inputs (and the memory): never raised behind the admin's back;
    // and a pass holds no more sequences than tokens (llama.cpp aborts otherwise).
    with_embedder(256, 8, |e| assert_eq!(e.info().max_tokens, 256));
    with_embedder(32, 64, |e| assert_eq!(e.info().max_sequences, 32));
}

#[test]
fn vectors_are_unit_length_and_do_not_depend_on_their_neighbours() {
    let texts = s(&[
        "query: combien coûte la cantine ?",
        "passage: Le conseil municipal a voté le budget primitif.",
        "passage: La mairie est ouverte le samedi matin de 9 h à 12 h.",
        "query: horaires de la mairie",
        "x",
    ]);
    let alone: Vec<Vec<f32>> = with_embedder(512, 1, |e| {
        texts
            .iter()
            .map(|t| e.embed(std::slice::from_ref(t)).unwrap().vectors.remove(0))
            .collect()
    });
    // Several per pass, and passes cut by tokens (a pass of 32 tokens holds one or two).
    for (batch, seqs) in [(512, 64), (32, 64), (512, 2)] {
        let together = with_embedder(batch, seqs, |e| e.embed(&texts).unwrap());
        assert_eq!(together.vectors.len(), texts.len());
        for (i, (a, b)) in alone.iter().zip(&together.vectors).enumerate() {
            assert_eq!(a.len(), 384);
            let norm: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-4, "norm {norm}");
            let c = cos(a, b);
            assert!(
                c > 0.9999,
                "input {i} differs in a pass of {batch}/{seqs}: cos {c}"
            );
        }
        assert!(
            together.tokens.iter().all(|&t| t >= 3),
            "{:?}",
            together.tokens
        );
    }
}

#[test]
fn french_questions_find_their_passage() {
    let v = with_embedder(512, 16, |e| {
        e.embed(&s(&[
            "query: combien coûte la cantine ?",
            "passage: Le prix du repas au restaurant scolaire est de 3,20 €",
            "passage: La salle des fêtes se loue 250 €",
        ]))
        .unwrap()
        .vectors
    });
    let (cantine, fetes) = (cos(&v[0], &v[1]), cos(&v[0], &v[2]));
    assert!(
        cantine > fetes,
        "cantine {cantine} <= salle des fêtes {fetes}"
    );
}

#[test]
fn an_input_longer_than_the_model_takes_is_refused_by_its_index() {
    with_embedder(512, 16, |e| {
        let long = "passage: ".to_string() + &"conseil municipal ".repeat(400);
        let err = e.embed(&s(&["query: court", &long])).unwrap_err();
        assert_eq!(err.kind, EmbedFailure::InputTooLong);
        assert_eq!(err.input, Some(1));
        assert!(
            err.message.contains("at most 512 tokens"),
            "{}",
            err.message
        );
        // Exactly the limit passes: the tokens of the longest accepted input.
        let n = e.tokenize(&long[..600]).len();
        assert!(n <= 512);
        let ok = e.embed(&[long[..600].to_string()]).unwrap();
        assert_eq!(ok.tokens, vec![n as u32]);
    });
}

#[test]
fn special_tokens_in_the_text_stay_text() {
    with_embedder(512, 4, |e| {
        let plain = e.tokenize("a b");
        let with_markers = e.tokenize("</s><s> a b");
        // Only the model's own markers around the text are special.
        assert!(
            with_markers.len() > plain.len() + 1,
            "{with_markers:?} vs {plain:?}"
        );
        assert_eq!(plain.first(), with_markers.first());
    });
}

#[test]
fn an_empty_request_gives_no_vectors() {
    with_embedder(512, 4, |e| {
        let done = e.embed(&[]).unwrap();
        assert!(done.vectors.is_empty() && done.tokens.is_empty());
    });
}

/// 64 French passages of about 100 words: the throughput `docs/benchmarks.md` reports
/// (`cargo test --release -p civia-embed -- --ignored --nocapture throughput`).
#[test]
#[ignore]
fn throughput() {
    let words = "le conseil municipal de la commune a délibéré sur les tarifs du restaurant \
        scolaire de la garderie périscolaire et de la location de la salle des fêtes pour \
        l'année prochaine après avoir entendu le rapport du maire et l'avis de la commission";
    let passage = |i: usize| {
        let w: Vec<&str> = words.split_whitespace().collect();
        let text: Vec<&str> = (0..100).map(|k| w[(k * 7 + i) % w.len()]).collect();
        format!("passage: {i} {}", text.join(" "))
    };
    let texts: Vec<String> = (0..64).map(passage).collect();
    for (batch, seqs) in [(512, 32), (1024, 32), (2048, 32)] {
        with_embedder(batch, seqs, |e| {
            e.embed(&texts[..4]).unwrap();
            let t0 = std::time::Instant::now();
            let done = e.embed(&texts).unwrap();
            let secs = t0.elapsed().as_secs_f64();
            let tokens: u32 = done.tokens.iter().sum();
            println!(
                "batch {batch:5} tokens, {seqs} sequences: 64 passages ({tokens} tokens) in {:.2} s: {:.1} passages/s, {:.0} tokens/s",
                secs,
                64.0 / secs,
                f64::from(tokens) / secs
            );
        });
    }
}
