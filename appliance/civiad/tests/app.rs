//! The daemon built in-process through its composition root (`civiad::App`), the way
//! `main` builds it: the same configuration file as the other tests, the runtime worker
//! being the civiad binary.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions fail loudly

mod common;
use common::*;
use std::time::{Duration, Instant};

#[tokio::test]
async fn the_app_builds_serves_and_stops_in_process() {
    std::env::set_var("CIVIA_DEV_API_KEY", DEV_KEY);
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let cfg = civia_config::Config::load(&write_config(dir.path(), port, &Setup::model(TINY)))
        .expect("config");
    let app = civiad::App::builder(cfg)
        .runtime_worker(
            env!("CARGO_BIN_EXE_civiad").into(),
            vec!["runtime-worker".into()],
        )
        .build()
        .await
        .expect("build");
    let supervisor = app.supervisor.clone();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let daemon = tokio::spawn(app.run(async {
        let _ = stop_rx.await;
    }));
    let http = client_with_key(DEV_KEY);
    let t0 = Instant::now();
    loop {
        let ready = http
            .get(format!("http://127.0.0.1:{port}/ready"))
            .send()
            .await
            .map(|r| r.status() == 200);
        if ready.unwrap_or(false) {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(120), "never ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(supervisor.status().worker_pid.is_some());
    let _ = stop_tx.send(());
    let stop = daemon.await.expect("join").expect("run");
    assert_eq!(stop, civiad::Stop::Signal);
    assert_eq!(supervisor.status().phase, civia_supervisor::Phase::Stopped);
}

#[tokio::test]
async fn a_missing_model_stops_the_build_with_its_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = Setup::model(TINY);
    s.model_path = Some(dir.path().join("absent.gguf"));
    let cfg =
        civia_config::Config::load(&write_config(dir.path(), free_port(), &s)).expect("config");
    let err = civiad::App::builder(cfg)
        .build()
        .await
        .err()
        .expect("an error");
    assert!(matches!(err, civiad::DaemonError::Model { .. }), "{err}");
    assert!(err.to_string().contains("absent.gguf"), "{err}");
}
