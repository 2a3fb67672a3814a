//! Worker isolation on the real daemon (issue 19, item 3): a compromised model worker must not
//! become civiad. Its own uid without groups or capabilities, a mount namespace where the state
//! directory and `/run/civia` are empty, a seccomp filter, a minimal environment without
//! secrets; the admin socket refuses its credentials; a worker outside the sandbox never serves.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions fail loudly

mod common;

use common::*;
use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `/proc/<pid>/status` as key → value.
fn status(pid: i32) -> HashMap<String, String> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

fn first(field: &str) -> u32 {
    field.split_whitespace().next().unwrap().parse().unwrap()
}

/// The runtime worker's pid once it runs the worker program with its seccomp filter on.
fn sandboxed_worker(d: &Daemon) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(pid) = d.worker_pid() {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let st = status(pid);
            if cmd.windows(14).any(|w| w == b"runtime-worker")
                && st.get("Seccomp").map(String::as_str) == Some("2")
            {
                return pid;
            }
            if Instant::now() > deadline {
                panic!(
                    "worker {pid} never reached its sandbox (status {st:?}); log:\n{}",
                    d.log()
                );
            }
        } else if Instant::now() > deadline {
            panic!("no runtime worker; log:\n{}", d.log());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn assert_own_credentials(d: &Daemon, pid: i32) {
    let ours = status(d.child.id() as i32);
    let st = status(pid);
    let (uid, gid) = (first(&st["Uid"]), first(&st["Gid"]));
    assert_ne!(
        uid,
        first(&ours["Uid"]),
        "worker uid seen from the host: {st:?}"
    );
    assert_ne!(
        gid,
        first(&ours["Gid"]),
        "worker gid seen from the host: {st:?}"
    );
    assert_ne!(uid, 0);
    assert_eq!(
        st["Groups"], "",
        "no supplementary group (disk, civia-admin)"
    );
    for caps in ["CapInh", "CapPrm", "CapEff", "CapAmb"] {
        assert_eq!(st[caps], "0000000000000000", "{caps}: {st:?}");
    }
    assert_eq!(st["NoNewPrivs"], "1");
    assert_eq!(st["Seccomp"], "2", "a seccomp filter");
}

#[tokio::test]
async fn trial_mode_worker_runs_under_its_own_uid_without_secrets_or_state() {
    let d = Daemon::start(Setup::model(TINY)).await;
    let pid = sandboxed_worker(&d);
    assert_own_credentials(&d, pid);

    // The environment is the minimal one civiad writes: no trial key, nothing inherited.
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let names: Vec<String> = environ
        .split(|b| *b == 0)
        .filter(|v| !v.is_empty())
        .map(|v| {
            String::from_utf8_lossy(v)
                .split('=')
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(
        !names.iter().any(|n| n == "CIVIA_DEV_API_KEY"),
        "the trial key leaks into the worker: {names:?}"
    );
    for n in &names {
        assert!(
            civia_ipc::sandbox::WORKER_ENV.contains(&n.as_str()),
            "unexpected variable {n} in the worker's environment: {names:?}"
        );
    }

    // Seen from inside the worker's mount namespace, the state directory is empty: no
    // civia.db, no keys, no admin socket to connect to; /run/civia likewise.
    let state = d.dir.path().join("state");
    assert!(state.join("civia.db").is_file());
    let inside =
        |p: &Path| Path::new(&format!("/proc/{pid}/root")).join(p.strip_prefix("/").unwrap());
    let listing: Vec<_> = std::fs::read_dir(inside(&state))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        listing.is_empty(),
        "state dir seen by the worker: {listing:?}"
    );
    assert!(std::fs::File::open(inside(&state.join("civia.db"))).is_err());
    assert!(std::os::unix::net::UnixStream::connect(state.join("admin.sock")).is_ok());
    assert!(
        std::os::unix::net::UnixStream::connect(inside(&state.join("admin.sock"))).is_err(),
        "the admin socket is reachable from the worker's mount namespace"
    );
    if let Ok(run) = std::fs::read_dir(inside(Path::new("/run/civia"))) {
        assert_eq!(run.count(), 0, "/run/civia seen by the worker");
    }
    // Still serving through the sandbox.
    let (code, body) = d
        .chat(serde_json::json!({"model": TINY, "max_tokens": 3,
            "messages": [{"role": "user", "content": "Bonjour"}]}))
        .await;
    assert_eq!(code, 200, "{body}");
}

/// civiad's child running `civiad <sub>` once its seccomp filter is on.
fn sandboxed_child(d: &Daemon, sub: &str) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        for child in children(d.child.id()) {
            if cmdline(child).iter().any(|a| a == sub)
                && status(child).get("Seccomp").map(String::as_str) == Some("2")
            {
                return child;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no sandboxed `civiad {sub}`; log:\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn the_embedding_worker_runs_in_the_same_sandbox() {
    let mut s = Setup::model(TINY);
    let e5 = model_path("multilingual-e5-small.Q4_0");
    s.tail = format!("[embeddings]\npath = {e5:?}\n");
    let d = Daemon::start(s).await;
    let pid = sandboxed_child(&d, "embed-worker");
    assert_own_credentials(&d, pid);
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    for var in environ.split(|b| *b == 0).filter(|v| !v.is_empty()) {
        let name = String::from_utf8_lossy(var)
            .split('=')
            .next()
            .unwrap()
            .to_string();
        assert!(
            civia_ipc::sandbox::WORKER_ENV.contains(&name.as_str()),
            "unexpected variable {name} in the embedding worker's environment"
        );
    }
    let state = d.dir.path().join("state");
    let inside = Path::new(&format!("/proc/{pid}/root")).join(state.strip_prefix("/").unwrap());
    assert_eq!(
        std::fs::read_dir(inside).unwrap().count(),
        0,
        "state dir seen by the worker"
    );
    // Serving through the sandbox (the model loads beside the language model).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (code, body) = d
            .post(
                "/v1/embeddings",
                &serde_json::json!({"model": "multilingual-e5-small.Q4_0", "input": "query: mairie"}),
            )
            .await;
        if code == 200 {
            assert_eq!(body["data"][0]["embedding"].as_array().unwrap().len(), 384);
            break;
        }
        assert!(code == 503 && Instant::now() < deadline, "{code} {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn tls_mode_worker_runs_under_its_own_uid() {
    let mut s = Setup::model(TINY);
    s.api_extra = "tls = true".into();
    let d = Daemon::spawn(s);
    let pid = sandboxed_worker(&d);
    assert_own_credentials(&d, pid);
}

#[tokio::test]
async fn worker_credentials_are_refused_on_the_admin_socket() {
    let d = Daemon::start(Setup::model(TINY)).await;
    let pid = sandboxed_worker(&d);
    let st = status(pid);
    let (uid, gid) = (first(&st["Uid"]), first(&st["Gid"]));
    // Open the way on the file system so that only the peer check can refuse.
    let sock = d.dir.path().join("state/admin.sock");
    for p in [d.dir.path(), &d.dir.path().join("state")] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o711)).unwrap();
    }
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666)).unwrap();
    let as_worker = Command::new(cli_path())
        .arg("--socket")
        .arg(&sock)
        .args(["user", "list"])
        .uid(uid)
        .gid(gid)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_ne!(
        as_worker.status.code(),
        Some(0),
        "a process with the worker's credentials ({uid}:{gid}) used the admin socket: {}",
        String::from_utf8_lossy(&as_worker.stdout)
    );
    assert!(d.log().contains("admin socket: refused"), "{}", d.log());
    // Root still administers.
    let (code, out, err) = civia(&d, &["user", "list"]);
    assert_eq!(code, 0, "{out}{err}");
}

/// A worker program started outside civiad's sandbox (here: by hand, with a socket on fd 3
/// but none of the sandbox) refuses to serve instead of warning and going on.
#[test]
fn a_worker_outside_the_sandbox_never_serves() {
    for sub in ["runtime-worker", "embed-worker"] {
        outside_the_sandbox(sub);
    }
}

fn outside_the_sandbox(sub: &str) {
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&theirs);
    let mut cmd = civiad();
    cmd.arg(sub)
        .env_remove("CIVIA_WORKER_SANDBOX")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: dup2 and fcntl are async-signal-safe and touch only this child's descriptors.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(fd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let flags = libc::fcntl(3, libc::F_GETFD);
            libc::fcntl(3, libc::F_SETFD, flags & !libc::FD_CLOEXEC);
            Ok(())
        });
    }
    let child = cmd.spawn().unwrap();
    drop(theirs);
    let mut w = ours.try_clone().unwrap();
    let mut r = ours;
    r.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let _ = civia_ipc::write_frame(
        &mut w,
        &civia_ipc::ToWorker::Hello {
            version: civia_ipc::PROTOCOL_VERSION,
        },
    );
    let answer = civia_ipc::read_frame::<civia_ipc::FromWorker>(&mut r);
    drop((w, r)); // a worker that did answer exits on end of stream
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        answer.is_err(),
        "an unsandboxed {sub} answered {answer:?}; stderr: {err}"
    );
    assert!(!out.status.success());
    assert!(err.contains("sandbox"), "the refusal says why: {err}");
}

/// civiad as an unprivileged user cannot give its workers another uid: without the documented
/// development override it starts none, and says why (fail closed).
#[tokio::test]
async fn an_unprivileged_daemon_without_the_override_starts_no_worker() {
    let nobody = 65534;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = write_config(dir.path(), port, &Setup::model(TINY));
    std::os::unix::fs::chown(dir.path(), Some(nobody), Some(nobody)).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o644)).unwrap();
    let log_path = dir.path().join("civiad.log");
    let log = std::fs::File::create(&log_path).unwrap();
    std::os::unix::fs::chown(&log_path, Some(nobody), Some(nobody)).unwrap();
    let mut child = civiad()
        .arg("--config")
        .arg(&cfg)
        .env("CIVIA_DEV_API_KEY", DEV_KEY)
        .env_remove("JOURNAL_STREAM")
        .uid(nobody)
        .gid(nobody)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut text = String::new();
    let mut worker = None;
    while Instant::now() < deadline {
        text = std::fs::read_to_string(&log_path).unwrap_or_default();
        // A worker, not the OCR programs civiad checks at start-up.
        worker = worker_children(child.id()).first().copied();
        if text.contains("own uid") || worker.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        worker.is_none(),
        "a worker runs as civiad's own uid; log:\n{text}"
    );
    assert!(
        text.contains("own uid") && text.contains("allow_shared_uid"),
        "the log says why and names the override:\n{text}"
    );
}
