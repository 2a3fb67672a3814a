//! The embedding policy on the supervision engine, with shell scripts standing in for the
//! worker: they write canned frames on fd 3 and read exactly the bytes civiad sends.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions fail loudly

use civia_ipc::embed::{
    EmbedFailure, EmbedLoadSpec, EmbedModelInfo, EmbedRequest, FromEmbed, Pooling, ToEmbed,
    EMBED_PROTOCOL_VERSION,
};
use civia_supervisor::{EmbedError, EmbedSpec, EmbedSupervisor, Phase, TextKind};
use std::path::PathBuf;
use std::time::Duration;

fn frames<T: serde::Serialize>(msgs: &[T]) -> Vec<u8> {
    let mut buf = Vec::new();
    for m in msgs {
        civia_ipc::write_frame(&mut buf, m).unwrap();
    }
    buf
}

/// A worker program in steps: write these bytes on fd 3, then read that many from it...
/// then run `then`.
fn script(dir: &tempfile::TempDir, steps: &[(Vec<u8>, usize)], then: &str) -> Vec<String> {
    let mut sh = String::new();
    for (i, (out, wait_for)) in steps.iter().enumerate() {
        let file = dir.path().join(format!("frames{i}"));
        std::fs::write(&file, out).unwrap();
        sh.push_str(&format!(
            "cat '{}' >&3; head -c {wait_for} <&3 >/dev/null; ",
            file.display()
        ));
    }
    sh.push_str(then);
    vec!["-c".into(), sh]
}

fn load() -> EmbedLoadSpec {
    EmbedLoadSpec {
        path: "/models/fake-e5.gguf".into(),
        sha256: None,
        threads: 1,
        gpu_layers: 0,
        batch_size: 512,
        max_sequences: 8,
    }
}

fn info() -> EmbedModelInfo {
    EmbedModelInfo {
        sha256: "ab".repeat(32),
        size_bytes: 1,
        n_params: 1,
        dimension: 2,
        max_tokens: 512,
        pooling: Pooling::Mean,
        pooling_from_model: true,
        architecture: "bert".into(),
        name: None,
        batch_size: 512,
        max_sequences: 8,
        devices: Vec::new(),
        gpu_layers: 0,
    }
}

fn spec(program: &str, args: Vec<String>) -> EmbedSpec {
    EmbedSpec {
        program: PathBuf::from(program),
        args,
        load: load(),
        backoff_initial: Duration::from_millis(50),
        backoff_max: Duration::from_millis(200),
        backoff_reset_after: Duration::from_secs(60),
        load_timeout: Duration::from_secs(10),
        queue_depth: 1,
        max_inputs: 2,
        max_input_chars: 20,
        query_prefix: "query: ".into(),
        passage_prefix: "passage: ".into(),
        sandbox: None,
    }
}

fn hello_loaded() -> Vec<u8> {
    frames(&[
        FromEmbed::Hello {
            version: EMBED_PROTOCOL_VERSION,
            pid: 1,
        },
        FromEmbed::Loaded(info()),
    ])
}

/// What civiad sends before its first request.
fn setup() -> Vec<u8> {
    frames(&[
        ToEmbed::Hello {
            version: EMBED_PROTOCOL_VERSION,
        },
        ToEmbed::Load(load()),
    ])
}

fn request(id: u64, inputs: &[&str]) -> Vec<u8> {
    frames(&[ToEmbed::Embed(EmbedRequest {
        id,
        inputs: inputs.iter().map(|s| s.to_string()).collect(),
    })])
}

fn embedded(id: u64, n: usize) -> Vec<u8> {
    frames(&[FromEmbed::Embedded {
        id,
        vectors: (0..n).map(|i| vec![i as f32, 1.0]).collect(),
        tokens: vec![3; n],
    }])
}

fn strings(texts: &[&str]) -> Vec<String> {
    texts.iter().map(|s| s.to_string()).collect()
}

async fn wait(sup: &EmbedSupervisor, what: impl Fn(&civia_supervisor::EmbedStatus) -> bool) {
    let mut rx = sup.watch();
    tokio::time::timeout(Duration::from_secs(20), rx.wait_for(|s| what(s)))
        .await
        .expect("status never reached")
        .expect("supervisor gone");
}

#[tokio::test]
async fn requests_are_answered_in_order_and_the_service_adds_the_prefixes() {
    let dir = tempfile::tempdir().unwrap();
    let first = request(1, &["a", "b"]);
    let second = request(2, &["query: x", "query: y"]);
    let third = request(3, &["query: z"]);
    let args = script(
        &dir,
        &[
            (hello_loaded(), setup().len() + first.len()),
            (embedded(1, 2), second.len()),
            (embedded(2, 2), third.len()),
            (embedded(3, 1), 0),
        ],
        "sleep 30",
    );
    let sup = EmbedSupervisor::start(spec("/bin/sh", args));
    wait(&sup, |s| s.phase == Phase::Ready).await;
    assert_eq!(sup.model(), Some(info()));
    let done = sup.embed(strings(&["a", "b"])).await.unwrap();
    assert_eq!(done.vectors, vec![vec![0.0, 1.0], vec![1.0, 1.0]]);
    assert_eq!(
        (done.total_tokens(), done.model_sha256.clone()),
        (6, "ab".repeat(32))
    );
    // Three queries: two requests of at most two inputs, indexes and order kept.
    let done = sup
        .embed_texts(TextKind::Query, &strings(&["x", "y", "z"]))
        .await
        .unwrap();
    assert_eq!(done.vectors.len(), 3);
    assert_eq!(done.vectors[2], vec![0.0, 1.0]);
    let text = sup.metrics().render(&sup.status());
    assert!(
        text.contains("civia_embeddings_requests_total{outcome=\"ok\"} 3"),
        "{text}"
    );
    assert!(text.contains("civia_embeddings_inputs_total 5"), "{text}");
    assert!(text.contains("civia_embeddings_ready 1"), "{text}");
    sup.shutdown().await;
    assert_eq!(sup.status().phase, Phase::Stopped);
}

#[tokio::test]
async fn limits_are_checked_before_anything_queues() {
    // The worker never starts: limits do not need it.
    let sup = EmbedSupervisor::start(spec("/bin/false", Vec::new()));
    let err = sup.embed(strings(&["a", "b", "c"])).await.unwrap_err();
    assert_eq!(err, EmbedError::TooManyInputs { given: 3, max: 2 });
    let err = sup
        .embed(strings(&["ok", &"é".repeat(21)]))
        .await
        .unwrap_err();
    assert!(
        matches!(err, EmbedError::InputTooLong { input: 1, .. }),
        "{err:?}"
    );
    // Exactly the limit, counted in characters (not bytes), passes the check.
    sup.check(&strings(&[&"é".repeat(20)])).unwrap();
    let err = sup.embed(strings(&["ok", ""])).await.unwrap_err();
    assert!(
        matches!(err, EmbedError::InvalidInput { input: Some(1), .. }),
        "{err:?}"
    );
    assert!(sup.embed(Vec::new()).await.unwrap().vectors.is_empty());
    let err = sup.embed(strings(&["a"])).await.unwrap_err();
    assert!(matches!(err, EmbedError::Unavailable(_)), "{err:?}");
    sup.shutdown().await;
}

#[tokio::test]
async fn a_crash_fails_the_running_request_at_once_and_the_worker_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let first = request(1, &["poison"]);
    let args = script(
        &dir,
        &[(hello_loaded(), setup().len() + first.len())],
        "exit 3",
    );
    let sup = EmbedSupervisor::start(spec("/bin/sh", args));
    wait(&sup, |s| s.phase == Phase::Ready).await;
    let err = tokio::time::timeout(Duration::from_secs(10), sup.embed(strings(&["poison"])))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(
        err,
        EmbedError::WorkerCrashed("worker exited with status 3".into())
    );
    wait(&sup, |s| s.phase == Phase::Ready && s.restarts == 1).await;
    let text = sup.metrics().render(&sup.status());
    assert!(text.contains("outcome=\"worker_crash\"} 1"), "{text}");
    sup.shutdown().await;
}

#[tokio::test]
async fn a_full_queue_answers_busy_at_once_and_a_typed_failure_names_its_input() {
    let dir = tempfile::tempdir().unwrap();
    let first = request(1, &["a"]);
    let second = request(2, &["b", "c"]);
    let too_long = frames(&[FromEmbed::Failed {
        id: 1,
        kind: EmbedFailure::InputTooLong,
        input: Some(0),
        message: "input 0 is 600 tokens long".into(),
    }]);
    // The worker answers the first request only once the second was sent to it.
    let args = script(
        &dir,
        &[
            (hello_loaded(), setup().len() + first.len()),
            (Vec::new(), 0),
        ],
        &format!(
            "sleep 1; cat '{}' >&3; head -c {} <&3 >/dev/null; cat '{}' >&3; sleep 30",
            {
                let f = dir.path().join("failed");
                std::fs::write(&f, &too_long).unwrap();
                f.display().to_string()
            },
            second.len(),
            {
                let f = dir.path().join("second");
                std::fs::write(&f, embedded(2, 2)).unwrap();
                f.display().to_string()
            }
        ),
    );
    let sup = EmbedSupervisor::start(spec("/bin/sh", args));
    wait(&sup, |s| s.phase == Phase::Ready).await;
    let (a, b) = (sup.clone(), sup.clone());
    let running = tokio::spawn(async move { a.embed(strings(&["a"])).await });
    wait(&sup, |s| s.jobs == 1).await;
    let waiting = tokio::spawn(async move { b.embed(strings(&["b", "c"])).await });
    wait(&sup, |s| s.jobs == 2).await;
    // One running, one waiting (queue_depth 1): the third is refused without waiting.
    let err = sup.embed(strings(&["d"])).await.unwrap_err();
    assert_eq!(err, EmbedError::Busy(1));
    let err = running.await.unwrap().unwrap_err();
    assert!(
        matches!(err, EmbedError::InputTooLong { input: 0, .. }),
        "{err:?}"
    );
    assert_eq!(waiting.await.unwrap().unwrap().vectors.len(), 2);
    wait(&sup, |s| s.jobs == 0).await;
    sup.shutdown().await;
}
