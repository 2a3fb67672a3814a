//! Crash isolation and supervision: the worker dies, civiad answers, restarts it, keeps serving.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions fail loudly

mod common;
use common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn long_story(stream: bool) -> Value {
    json!({"model": SMOL, "stream": stream, "max_tokens": 3000, "temperature": 0.8, "seed": 11,
           "messages": [{"role": "user", "content": "Write a very long story about a cat in Paris."}]})
}

fn kill(pid: i32, sig: i32) {
    // SAFETY: sending a signal to the test's own grandchild (the worker).
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0, "kill {pid}");
}

async fn wait_new_worker(d: &mut Daemon, old: i32) -> i32 {
    let t0 = Instant::now();
    d.wait_ready(Duration::from_secs(60)).await;
    loop {
        if let Some(p) = d.worker_pid() {
            if p != old {
                return p;
            }
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "no new worker");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn sigkill_during_a_stream_errors_at_once_and_the_worker_comes_back() {
    let mut d = Daemon::start(Setup::model(SMOL)).await;
    let pid = d.worker_pid().expect("worker pid");
    let resp = d
        .http
        .post(format!("{}/v1/chat/completions", d.base))
        .json(&long_story(true))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut sse = SseReader::new(resp);
    for _ in 0..3 {
        sse.next().await.expect("first chunks");
    }
    kill(pid, libc::SIGKILL);
    let killed = Instant::now();
    // The client sees an error event (or the end of the stream) within seconds, no [DONE].
    let mut last = None;
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(data) = sse.next().await {
            assert_ne!(
                data, "[DONE]",
                "stream completed although the worker was killed"
            );
            last = Some(data);
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "stream still open 10 s after the worker was killed"
    );
    let err: Value = serde_json::from_str(last.as_deref().unwrap_or("{}")).unwrap();
    assert_eq!(err["error"]["code"], "runtime_restarted", "{err}");

    // A new worker is started and serves; /health and the API stayed up throughout.
    let new_pid = wait_new_worker(&mut d, pid).await;
    assert_ne!(new_pid, pid);
    let (s, b) = d
        .chat(json!({"model": SMOL, "temperature": 0, "max_tokens": 8,
                     "messages": [{"role": "user", "content": "What is the capital of France?"}]}))
        .await;
    assert_eq!(s, 200, "{b}");
    eprintln!(
        "worker back and serving {:?} after SIGKILL",
        killed.elapsed()
    );
    let h = d.health().await;
    assert_eq!(h["worker"]["restarts"], 1, "{h}");
    assert!(d.log().contains("SIGKILL"), "{}", d.log());
}

#[tokio::test]
async fn abort_during_a_blocking_request_gives_503_and_recovers() {
    let mut d = Daemon::start(Setup::model(SMOL)).await;
    let pid = d.worker_pid().expect("worker pid");
    let http = d.http.clone();
    let url = format!("{}/v1/chat/completions", d.base);
    let pending = tokio::spawn(async move {
        let r = http
            .post(url)
            .json(&long_story(false))
            .send()
            .await
            .unwrap();
        (
            r.status().as_u16(),
            r.headers().get("retry-after").is_some(),
            r.json::<Value>().await.unwrap(),
        )
    });
    // Let the generation start, then abort the worker as llama.cpp would on a failed assert.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    kill(pid, libc::SIGABRT);
    let (status, retry_after, body) = tokio::time::timeout(Duration::from_secs(10), pending)
        .await
        .expect("request hung after the worker died")
        .unwrap();
    assert_openai_error(status, &body, 503);
    assert!(retry_after);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("SIGABRT"),
        "{body}"
    );
    wait_new_worker(&mut d, pid).await;
}

#[tokio::test]
async fn requests_while_restarting_get_503_not_a_hang() {
    let mut s = Setup::model(SMOL);
    // A long backoff keeps the worker down long enough to observe.
    s.tail = "restart_backoff_max_ms = 3000".into();
    s.model_extra = String::new();
    let mut d = Daemon::spawn(Setup {
        tail: String::new(),
        ..s
    });
    d.wait_ready(Duration::from_secs(60)).await;
    let pid = d.worker_pid().unwrap();
    kill(pid, libc::SIGKILL);
    // Until the worker is back: /ready 503, /health 200, generations 503 at once.
    let t0 = Instant::now();
    let mut saw_unready = false;
    while t0.elapsed() < Duration::from_secs(30) {
        let r = d
            .http
            .get(format!("{}/ready", d.base))
            .send()
            .await
            .unwrap();
        if r.status() == 503 {
            saw_unready = true;
            let (s, b) = d
                .chat(json!({"model": SMOL, "max_tokens": 2, "messages": [{"role": "user", "content": "x"}]}))
                .await;
            if s != 200 {
                assert_openai_error(s, &b, 503);
            }
            let h = d
                .http
                .get(format!("{}/health", d.base))
                .send()
                .await
                .unwrap();
            assert_eq!(h.status(), 200);
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(saw_unready, "/ready never reported the dead worker");
    wait_new_worker(&mut d, pid).await;
}

#[tokio::test]
async fn wrong_sha256_and_non_gguf_files_are_refused_with_a_clear_reason() {
    let mut s = Setup::model(TINY);
    s.model_extra = format!("sha256 = \"{}\"", "0".repeat(64));
    let d = Daemon::spawn(s);
    let h = d.wait_health().await;
    assert_eq!(h["status"], "ok");
    let t0 = Instant::now();
    let err = loop {
        let h = d.health().await;
        if let Some(e) = h["worker"]["last_error"].as_str() {
            break e.to_string();
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "{h}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(err.contains("SHA-256") && err.contains("refusing"), "{err}");
    let r = d
        .http
        .get(format!("{}/ready", d.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let (s, b) = d
        .chat(json!({"model": TINY, "messages": [{"role": "user", "content": "x"}]}))
        .await;
    assert_openai_error(s, &b, 503);
    assert!(
        b["error"]["message"].as_str().unwrap().contains("SHA-256"),
        "{b}"
    );

    // A file that is not GGUF (here: a safetensors-like header) is named as such.
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("model.safetensors");
    std::fs::write(&fake, b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ").unwrap();
    let d = Daemon::spawn(Setup {
        model_path: Some(fake),
        ..Setup::model("model")
    });
    d.wait_health().await;
    let t0 = Instant::now();
    loop {
        let h = d.health().await;
        if let Some(e) = h["worker"]["last_error"].as_str() {
            assert!(e.contains("not a GGUF model file"), "{e}");
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "{h}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn bad_configuration_is_refused_before_starting() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), free_port(), &Setup::model(TINY));
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("[model]", "[model]\ntemprature = 0.2");
    std::fs::write(&cfg, text).unwrap();
    let out = civiad().arg("--config").arg(&cfg).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("temprature"), "{err}");

    let cfg = write_config(
        dir.path(),
        free_port(),
        &Setup {
            model_path: Some(dir.path().join("absent.gguf")),
            ..Setup::model("absent")
        },
    );
    let out = civiad().arg("--config").arg(&cfg).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("absent.gguf"), "{err}");

    let out = civiad().output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--config"));

    // The worker entry point refuses to run without its socket.
    let out = civiad().arg("runtime-worker").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test]
async fn sigterm_stops_civiad_and_its_worker() {
    let mut d = Daemon::start(Setup::model(TINY)).await;
    let pid = d.worker_pid().unwrap();
    let status = d.stop();
    assert!(status.success(), "{status}");
    let t0 = Instant::now();
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        // A zombie reaped by init still shows briefly; a live worker would stay.
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if stat.contains(") Z ") || stat.is_empty() {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "worker {pid} outlived civiad"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn killing_civiad_takes_the_worker_with_it() {
    let mut d = Daemon::start(Setup::model(TINY)).await;
    let pid = d.worker_pid().unwrap();
    d.child.kill().unwrap();
    d.child.wait().unwrap();
    let t0 = Instant::now();
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if stat.is_empty() || stat.contains(") Z ") {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "orphaned worker {pid}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
