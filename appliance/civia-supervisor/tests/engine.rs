//! The supervision engine with real processes standing in for the workers: `/bin/false`, and
//! shell scripts that write canned frames on fd 3 (hello, then loaded or refused), wait for
//! the first job and die.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions fail loudly

use civia_ipc::speech::{
    FromSpeech, SpeechLoadSpec, SpeechModelInfo, ToSpeech, TranscribeRequest,
    SPEECH_PROTOCOL_VERSION,
};
use civia_ipc::{
    FromWorker, GenerateRequest, LoadSpec, ModelInfo, Prompt, SamplingParams, TemplateSource,
    ToWorker, PROTOCOL_VERSION,
};
use civia_supervisor::{
    Event, GenerationError, Phase, SpeechError, SpeechEvent, SpeechSpec, SpeechSupervisor,
    Supervisor, WorkerSpec,
};
use std::path::PathBuf;
use std::time::Duration;

fn frames<T: serde::Serialize>(msgs: &[T]) -> Vec<u8> {
    let mut buf = Vec::new();
    for m in msgs {
        civia_ipc::write_frame(&mut buf, m).expect("frame");
    }
    buf
}

/// A shell worker: writes `out` on fd 3, reads `wait_for` bytes from it, then runs `then`.
fn script(dir: &tempfile::TempDir, out: &[u8], wait_for: usize, then: &str) -> Vec<String> {
    let file = dir.path().join("frames");
    std::fs::write(&file, out).expect("write frames");
    vec![
        "-c".into(),
        format!(
            "cat '{}' >&3; head -c {wait_for} <&3 >/dev/null; {then}",
            file.display()
        ),
    ]
}

fn load() -> LoadSpec {
    LoadSpec {
        path: "/models/fake.gguf".into(),
        sha256: None,
        context_length: 0,
        batch_size: 8,
        threads: 1,
        gpu_layers: 0,
        n_parallel: 2,
        prefix_reuse: false,
    }
}

fn spec(program: &str, args: Vec<String>) -> WorkerSpec {
    WorkerSpec {
        program: PathBuf::from(program),
        args,
        load: load(),
        backoff_initial: Duration::from_millis(50),
        backoff_max: Duration::from_millis(200),
        backoff_reset_after: Duration::from_secs(60),
        load_timeout: Duration::from_secs(10),
        queue_depth: 4,
        sandbox: None,
        queue_timeout: Duration::from_secs(10),
    }
}

fn info() -> ModelInfo {
    ModelInfo {
        sha256: "00".into(),
        size_bytes: 1,
        n_params: 1,
        n_ctx: 64,
        n_parallel: 2,
        n_ctx_train: 64,
        architecture: "fake".into(),
        name: None,
        template: TemplateSource::MistralFallback,
        devices: Vec::new(),
        gpu_layers: 0,
    }
}

fn params() -> SamplingParams {
    SamplingParams {
        temperature: 0.0,
        top_p: 1.0,
        seed: None,
        max_tokens: 4,
        stop: Vec::new(),
        frequency_penalty: 0.0,
        presence_penalty: 0.0,
        constraint: None,
    }
}

fn prompt() -> Prompt {
    Prompt::Text { text: "x".into() }
}

async fn wait(sup: &Supervisor, what: impl Fn(&civia_supervisor::Status) -> bool) {
    let mut rx = sup.watch();
    tokio::time::timeout(Duration::from_secs(20), rx.wait_for(|s| what(s)))
        .await
        .expect("status never reached")
        .expect("supervisor gone");
}

#[tokio::test]
async fn a_worker_that_dies_at_once_is_restarted_with_backoff_and_requests_get_unavailable() {
    let sup = Supervisor::start(spec("/bin/false", Vec::new()));
    wait(&sup, |s| s.restarts >= 3).await;
    let status = sup.status();
    assert_ne!(status.phase, Phase::Ready);
    let why = status.last_error.unwrap_or_default();
    // Depending on when it dies: before or after the supervisor's hello reached it.
    assert!(
        [
            "worker exited with status 1",
            "handshake failed",
            "worker connection lost during load"
        ]
        .iter()
        .any(|w| why.starts_with(w)),
        "{why}"
    );
    let err = sup.generate(prompt(), params(), "u").err();
    assert!(
        matches!(err, Some(GenerationError::Unavailable(_))),
        "{err:?}"
    );
    sup.shutdown().await;
    assert_eq!(sup.status().phase, Phase::Stopped);
}

#[tokio::test]
async fn a_refused_model_is_the_last_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = frames(&[
        FromWorker::Hello {
            version: PROTOCOL_VERSION,
            pid: 1,
        },
        FromWorker::LoadFailed {
            message: "SHA-256 of the model differs: refusing to load".into(),
        },
    ]);
    let sup = Supervisor::start(spec("/bin/sh", script(&dir, &out, 0, "sleep 30")));
    wait(&sup, |s| s.restarts >= 1).await;
    assert_eq!(
        sup.status().last_error.as_deref(),
        Some("SHA-256 of the model differs: refusing to load")
    );
    sup.shutdown().await;
}

#[tokio::test]
async fn a_crash_while_generating_fails_the_request_and_the_worker_comes_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = frames(&[
        FromWorker::Hello {
            version: PROTOCOL_VERSION,
            pid: 1,
        },
        FromWorker::Loaded(info()),
    ]);
    // Hello and Load from the supervisor, then the whole generation request (a worker that
    // dies with unread bytes resets the connection instead of closing it).
    let setup = frames(&[
        ToWorker::Hello {
            version: PROTOCOL_VERSION,
        },
        ToWorker::Load(load()),
        ToWorker::Generate(GenerateRequest {
            id: 1,
            prompt: prompt(),
            params: params(),
        }),
    ]);
    let args = script(&dir, &out, setup.len(), "exit 3");
    let sup = Supervisor::start(spec("/bin/sh", args));
    wait(&sup, |s| s.phase == Phase::Ready).await;
    assert_eq!(sup.status().model, Some(info()));
    let mut g = sup.generate(prompt(), params(), "u").expect("ready");
    let ev = tokio::time::timeout(Duration::from_secs(10), g.next())
        .await
        .expect("no event");
    assert_eq!(
        ev,
        Some(Event::Failed(GenerationError::WorkerCrashed(
            "worker exited with status 3".into()
        )))
    );
    wait(&sup, |s| s.phase == Phase::Ready && s.restarts == 1).await;
    sup.shutdown().await;
}

#[tokio::test]
async fn the_speech_policy_plugs_into_the_same_engine() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = SpeechModelInfo {
        sha256: "00".into(),
        size_bytes: 1,
        kind: "base".into(),
        multilingual: true,
        gpu: false,
    };
    let out = frames(&[
        FromSpeech::Hello {
            version: SPEECH_PROTOCOL_VERSION,
            pid: 1,
        },
        FromSpeech::Loaded(model.clone()),
    ]);
    let load = SpeechLoadSpec {
        path: "/models/fake.bin".into(),
        sha256: None,
        threads: 1,
        gpu: false,
    };
    let req = TranscribeRequest {
        id: 1,
        audio_path: "/spool/x.upload".into(),
        filename_hint: None,
        language: None,
        prompt: None,
        temperature: 0.0,
        max_duration_secs: 60,
        window_secs: 30,
    };
    let setup = frames(&[
        ToSpeech::Hello {
            version: SPEECH_PROTOCOL_VERSION,
        },
        ToSpeech::Load(load.clone()),
        ToSpeech::Transcribe(req.clone()),
    ]);
    let sup = SpeechSupervisor::start(SpeechSpec {
        program: "/bin/sh".into(),
        args: script(&dir, &out, setup.len(), "exit 3"),
        load,
        backoff_initial: Duration::from_millis(50),
        backoff_max: Duration::from_millis(200),
        backoff_reset_after: Duration::from_secs(60),
        load_timeout: Duration::from_secs(10),
        queue_depth: 1,
        sandbox: None,
    });
    let mut rx = sup.watch();
    tokio::time::timeout(
        Duration::from_secs(20),
        rx.wait_for(|s| s.phase == Phase::Ready),
    )
    .await
    .expect("never ready")
    .expect("supervisor gone");
    assert_eq!(sup.status().model, Some(model));
    let first = sup.reserve().expect("a place");
    let _second = sup.reserve().expect("a place in the queue");
    assert!(matches!(sup.reserve(), Err(SpeechError::Busy(1))));
    let mut job = sup.transcribe(first, req).expect("queued");
    let ev = tokio::time::timeout(Duration::from_secs(10), job.next())
        .await
        .expect("no event");
    assert_eq!(
        ev,
        Some(SpeechEvent::Failed(SpeechError::WorkerCrashed(
            "worker exited with status 3".into()
        )))
    );
    sup.shutdown().await;
    assert_eq!(sup.status().phase, Phase::Stopped);
}
