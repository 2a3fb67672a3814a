//! systemd integration as a service manager sees it: the notify socket receives READY=1 only
//! once the model is loaded, STATUS= lines, and watchdog pings.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions fail loudly

mod common;
use common::*;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

#[tokio::test]
async fn notifies_ready_after_load_and_pings_the_watchdog() {
    let sock_dir = tempfile::tempdir().unwrap();
    let sock_path = sock_dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut s = Setup::model(TINY);
    s.env = vec![(
        "NOTIFY_SOCKET".into(),
        sock_path.to_string_lossy().into_owned(),
    )];
    s.watchdog_usec = Some(400_000);
    let d = Daemon::spawn(s);
    let t0 = Instant::now();
    let mut messages = Vec::new();
    let mut buf = [0u8; 4096];
    let mut ready_at = None;
    let mut watchdogs = 0;
    while t0.elapsed() < Duration::from_secs(60) && watchdogs < 3 {
        if let Ok(n) = sock.recv(&mut buf) {
            let m = String::from_utf8_lossy(&buf[..n]).into_owned();
            if m.contains("READY=1") {
                // The model must be loaded when READY=1 is sent.
                let r = d
                    .http
                    .get(format!("{}/ready", d.base))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200, "READY=1 before the model was loaded");
                ready_at = Some(messages.len());
            }
            if m.contains("WATCHDOG=1") {
                watchdogs += 1;
            }
            messages.push(m);
        }
    }
    let ready_at = ready_at.unwrap_or_else(|| panic!("no READY=1 in {messages:?}"));
    assert!(watchdogs >= 3, "watchdog not pinged: {messages:?}");
    assert!(
        messages[..ready_at]
            .iter()
            .any(|m| m.contains("STATUS=runtime worker starting")),
        "{messages:?}"
    );
    assert_eq!(messages.iter().filter(|m| m.contains("READY=1")).count(), 1);
}
