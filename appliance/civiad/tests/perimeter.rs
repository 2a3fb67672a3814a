//! The security perimeter on the real daemon: pairing, the `civia` CLI over the admin socket,
//! roles, API keys, quotas, login throttling, the LAN guard and connection limits.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions fail loudly

mod common;

use common::*;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// A box without the trial key: the pairing code is its only way in.
fn fresh_box() -> Setup {
    let mut s = Setup::model(TINY);
    s.env = vec![("CIVIA_DEV_API_KEY".into(), String::new())];
    s
}

fn chat_body() -> Value {
    json!({"model": TINY, "max_tokens": 3, "messages": [{"role": "user", "content": "Bonjour"}]})
}

async fn send(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Option<Value>,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut req = http.request(method, url);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.expect("request");
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    let text = r.text().await.expect("body");
    let v = serde_json::from_str(&text).unwrap_or(json!({ "raw": text }));
    (status, v, headers)
}

async fn get(http: &reqwest::Client, d: &Daemon, path: &str) -> (u16, Value) {
    let (s, v, _) = send(
        http,
        reqwest::Method::GET,
        format!("{}{path}", d.base),
        None,
    )
    .await;
    (s, v)
}

async fn post(http: &reqwest::Client, d: &Daemon, path: &str, body: Value) -> (u16, Value) {
    let (s, v, _) = send(
        http,
        reqwest::Method::POST,
        format!("{}{path}", d.base),
        Some(body),
    )
    .await;
    (s, v)
}

/// Creates a user with `role` through the CLI and returns an API key for them.
fn user_with_key(d: &Daemon, name: &str, role: &str) -> String {
    let (code, out, err) = civia(d, &["user", "add", name, "--role", role]);
    assert_eq!(code, 0, "{out}{err}");
    let password = last_line(&out);
    assert!(
        password.len() >= 12,
        "generated password on the last line: {out}"
    );
    let (code, out, err) = civia(d, &["key", "create", "--user", name]);
    assert_eq!(code, 0, "{out}{err}");
    let key = last_line(&out);
    assert!(key.starts_with("civia-") && key.len() == 70, "{out}");
    key
}

/// The user reads the current charter and accepts it (required before using the model).
async fn accept_charter(http: &reqwest::Client, d: &Daemon) {
    let (s, b) = get(http, d, "/v1/charter").await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = post(
        http,
        d,
        "/v1/charter/accept",
        json!({"version": b["version"]}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
}

#[tokio::test]
async fn a_fresh_box_is_paired_then_admin_creates_agents_and_keys() {
    let d = Daemon::start(fresh_box()).await;
    let anon = reqwest::Client::new();
    let log = d.log();
    let code = log
        .split("pairing code: ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_else(|| panic!("no pairing code in the log:\n{log}"))
        .to_string();

    // Nothing works without credentials; a wrong code is refused.
    let (s, b) = post(&anon, &d, "/v1/chat/completions", chat_body()).await;
    assert_openai_error(s, &b, 401);
    let (s, b) = get(&anon, &d, "/admin/users").await;
    assert_openai_error(s, &b, 401);
    let (s, b) = post(
        &anon,
        &d,
        "/admin/pair",
        json!({"code": "0000-0000", "name": "maire"}),
    )
    .await;
    assert_openai_error(s, &b, 403);
    assert_eq!(b["error"]["code"], "bad_pairing_code");

    // The code (typed loosely) creates the first admin, once.
    let typed = code.to_lowercase().replace('-', " ");
    let (s, b) = post(
        &anon,
        &d,
        "/admin/pair",
        json!({"code": typed, "name": "maire"}),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["user"]["role"], "admin");
    let admin_password = b["password"]
        .as_str()
        .expect("generated password")
        .to_string();
    let (s, _) = post(
        &anon,
        &d,
        "/admin/pair",
        json!({"code": code, "name": "intrus"}),
    )
    .await;
    assert_eq!(s, 403, "the code dies once used");

    // The admin's own key, through the CLI on the admin socket.
    let (code_rc, out, err) = civia(&d, &["key", "create", "--user", "maire", "--name", "poste"]);
    assert_eq!(code_rc, 0, "{out}{err}");
    let admin = client_with_key(&last_line(&out));
    let agent_key = user_with_key(&d, "agent.urba", "agent");
    let agent = client_with_key(&agent_key);

    // The agent uses the model once the charter is accepted, not the admin plane.
    let (s, b) = post(&agent, &d, "/v1/chat/completions", chat_body()).await;
    assert_openai_error(s, &b, 403);
    assert_eq!(b["error"]["code"], "charter_not_accepted");
    accept_charter(&agent, &d).await;
    let (s, b) = post(&agent, &d, "/v1/chat/completions", chat_body()).await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = get(&agent, &d, "/admin/users").await;
    assert_openai_error(s, &b, 403);
    assert_eq!(b["error"]["code"], "permission_denied");
    let (s, b) = get(&admin, &d, "/admin/users").await;
    assert_eq!(s, 200, "{b}");
    let names: Vec<&str> = b["users"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|u| u["name"].as_str())
        .collect();
    assert_eq!(names, ["agent.urba", "maire"]);

    // dpo reads usage, nothing else; integrator reads status, nothing else.
    let dpo = client_with_key(&user_with_key(&d, "dpo", "dpo"));
    let integrator = client_with_key(&user_with_key(&d, "presta", "integrator"));
    for (who, path, want) in [
        (&dpo, "/admin/usage", 200),
        (&dpo, "/admin/users", 403),
        (&dpo, "/admin/status", 403),
        (&integrator, "/admin/status", 200),
        (&integrator, "/admin/usage", 403),
        (&integrator, "/admin/keys", 403),
    ] {
        let (s, b) = get(who, &d, path).await;
        assert_eq!(s, want, "{path}: {b}");
    }
    for who in [&dpo, &integrator] {
        let (s, b) = post(who, &d, "/v1/chat/completions", chat_body()).await;
        assert_openai_error(s, &b, 403);
    }

    // Revoked key: 401 with its own code.
    let (_, out, _) = civia(&d, &["--json", "key", "list", "--user", "agent.urba"]);
    let keys: Value = serde_json::from_str(&out).expect("key list JSON");
    let id = keys["keys"][0]["id"].as_i64().unwrap();
    assert!(
        keys["keys"][0].get("key").is_none(),
        "the key itself is never listed"
    );
    let (rc, out, err) = civia(&d, &["key", "revoke", &id.to_string()]);
    assert_eq!(rc, 0, "{out}{err}");
    let (s, b) = post(&agent, &d, "/v1/chat/completions", chat_body()).await;
    assert_openai_error(s, &b, 401);
    assert_eq!(b["error"]["code"], "revoked_api_key");

    // The CLI's refusals are clear, with exit code 1.
    let (rc, _, err) = civia(&d, &["user", "add", "maire", "--role", "agent"]);
    assert_eq!(rc, 1);
    assert!(err.contains("user_exists"), "{err}");
    let (rc, _, err) = civia(&d, &["user", "delete", "maire"]);
    assert_eq!(rc, 1, "the last admin cannot be deleted");
    assert!(err.contains("last_admin"), "{err}");

    // The paired admin's password opens a web session.
    let (s, b, h) = send(
        &anon,
        reqwest::Method::POST,
        format!("{}/auth/login", d.base),
        Some(json!({"username": "maire", "password": admin_password})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let cookie = h["set-cookie"].to_str().unwrap();
    for attr in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    assert!(
        !d.log().contains(&admin_password),
        "passwords never reach the log"
    );
    assert!(!d.log().contains(&agent_key), "keys never reach the log");
}

#[tokio::test]
async fn quotas_answer_429_with_retry_after_and_usage_is_recorded() {
    let d = Daemon::start(Setup::model(TINY)).await;
    let key = user_with_key(&d, "agent", "agent");
    let agent = client_with_key(&key);
    accept_charter(&agent, &d).await;
    let (rc, out, err) = civia(&d, &["quota", "set", "agent", "--rpm", "2"]);
    assert_eq!(rc, 0, "{out}{err}");
    for _ in 0..2 {
        let (s, b) = post(&agent, &d, "/v1/chat/completions", chat_body()).await;
        assert_eq!(s, 200, "{b}");
    }
    let (s, b, h) = send(
        &agent,
        reqwest::Method::POST,
        format!("{}/v1/chat/completions", d.base),
        Some(chat_body()),
    )
    .await;
    assert_openai_error(s, &b, 429);
    assert_eq!(b["error"]["code"], "rate_limit_exceeded");
    let retry: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // Tokens per day: the two answers used more than 10 tokens.
    let (rc, out, err) = civia(
        &d,
        &[
            "quota",
            "set",
            "agent",
            "--rpm",
            "0",
            "--tokens-per-day",
            "10",
        ],
    );
    assert_eq!(rc, 0, "{out}{err}");
    let (s, b) = post(&agent, &d, "/v1/chat/completions", chat_body()).await;
    assert_openai_error(s, &b, 429);
    assert_eq!(b["error"]["code"], "daily_quota_exceeded");
    // Every request left a usage row (refusals too), counted per model.
    let t0 = Instant::now();
    loop {
        let (s, b) = get(&d.http, &d, "/admin/usage?days=1").await;
        assert_eq!(s, 200, "{b}");
        let requests = b["rows"][0]["requests"].as_u64().unwrap_or(0);
        if requests >= 4 {
            assert_eq!(b["rows"][0]["group"], TINY);
            assert!(b["rows"][0]["prompt_tokens"].as_u64().unwrap() >= 2);
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "usage rows: {b}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // No ranking of agents.
    let (s, b) = get(&d.http, &d, "/admin/usage?by=user").await;
    assert_openai_error(s, &b, 400);
}

#[tokio::test]
async fn twenty_wrong_passwords_lock_the_account_and_not_the_others() {
    let d = Daemon::start(Setup::model(TINY)).await;
    let admin = &d.http;
    for name in ["cible", "collegue"] {
        let (s, b) = post(
            admin,
            &d,
            "/admin/users",
            json!({"name": name, "role": "agent", "password": "mot de passe correct"}),
        )
        .await;
        assert_eq!(s, 201, "{b}");
    }
    let anon = reqwest::Client::new();
    let login = |user: &'static str, pw: &'static str| {
        let (anon, url) = (anon.clone(), format!("{}/auth/login", d.base));
        async move {
            send(
                &anon,
                reqwest::Method::POST,
                url,
                Some(json!({"username": user, "password": pw})),
            )
            .await
        }
    };
    for _ in 0..20 {
        let (s, b, _) = login("cible", "mauvais mot de passe").await;
        assert_openai_error(s, &b, 401);
        assert_eq!(b["error"]["code"], "invalid_credentials");
    }
    let (s, b, h) = login("cible", "mot de passe correct").await;
    assert_openai_error(s, &b, 429);
    assert_eq!(b["error"]["code"], "account_locked");
    assert!(h["retry-after"].to_str().unwrap().parse::<u64>().unwrap() > 60);
    // The colleague is not affected, even while the attack goes on.
    let attack = tokio::spawn(login("cible", "encore faux encore"));
    let (s, b, _) = login("collegue", "mot de passe correct").await;
    assert_eq!(s, 200, "{b}");
    assert!(b["csrf_token"].as_str().is_some_and(|t| t.len() == 64));
    let (s, b, _) = attack.await.unwrap();
    assert_eq!((s, &b["error"]["code"]), (429, &json!("account_locked")));
    // Unknown users get the same answer as wrong passwords.
    let (s, b, _) = login("personne", "mauvais mot de passe").await;
    assert_openai_error(s, &b, 401);
    assert_eq!(b["error"]["code"], "invalid_credentials");
}

#[tokio::test]
async fn sources_outside_the_allowed_ranges_are_refused_before_anything() {
    let mut s = Setup::model(TINY);
    s.api_extra = "allowed_sources = [\"127.0.0.1/32\"]".into();
    let d = Daemon::start(s).await;
    let (st, _) = get(&d.http, &d, "/v1/models").await;
    assert_eq!(st, 200);
    let outsider = d.client_from([127, 0, 0, 2]);
    let r = outsider.get(format!("{}/health", d.base)).send().await;
    assert!(
        r.is_err(),
        "a source outside the ranges gets no answer: {r:?}"
    );
    assert!(
        d.log().contains("refused connection from 127.0.0.2"),
        "{}",
        d.log()
    );
}

fn slow_client(port: u16, from: [u8; 4]) -> std::io::Result<TcpStream> {
    let sock = socket2_free_connect(port, from)?;
    let mut s = sock;
    s.write_all(b"GET /health HTTP/1.1\r\nHost: civia\r\n")?;
    Ok(s)
}

/// Connects from a chosen loopback source address (std has no bind-before-connect).
fn socket2_free_connect(port: u16, from: [u8; 4]) -> std::io::Result<TcpStream> {
    use std::os::fd::FromRawFd;
    // SAFETY: plain socket/bind/connect calls on a descriptor we create and own; sockaddr_in
    // structs are fully initialised; the descriptor goes into a TcpStream that closes it.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let stream = TcpStream::from_raw_fd(fd);
        let mut local: libc::sockaddr_in = std::mem::zeroed();
        local.sin_family = libc::AF_INET as libc::sa_family_t;
        local.sin_addr.s_addr = u32::from_ne_bytes(from);
        if libc::bind(
            fd,
            &local as *const _ as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_in>() as u32,
        ) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
        let mut remote: libc::sockaddr_in = std::mem::zeroed();
        remote.sin_family = libc::AF_INET as libc::sa_family_t;
        remote.sin_port = port.to_be();
        remote.sin_addr.s_addr = u32::from_ne_bytes([127, 0, 0, 1]);
        if libc::connect(
            fd,
            &remote as *const _ as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_in>() as u32,
        ) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
        Ok(stream)
    }
}

/// Whether the server closed the connection within `limit` (read returns 0 or an error).
fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    s.set_read_timeout(Some(limit)).expect("timeout");
    let mut buf = [0u8; 512];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            // A 408 answer before closing is fine too.
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false
            }
            Err(_) => return true,
        }
    }
}

#[tokio::test]
async fn slow_headers_and_connection_floods_are_cut_off_without_hurting_others() {
    let mut s = Setup::model(TINY);
    s.api_extra = "header_timeout_secs = 2\nmax_connections_per_address = 6".into();
    let d = Daemon::start(s).await;
    let port = d.port;
    // Six half-sent requests from 127.0.0.3 take its whole allowance...
    let mut slow: Vec<TcpStream> = (0..6)
        .map(|_| slow_client(port, [127, 0, 0, 3]).expect("connect"))
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // ...so a seventh is closed at once,
    let mut seventh = slow_client(port, [127, 0, 0, 3]).expect("connect");
    assert!(
        closed_within(&mut seventh, Duration::from_secs(5)),
        "7th connection not refused"
    );
    // while another workstation is served normally.
    let (st, b) = post(
        &d.client_from([127, 0, 0, 4]),
        &d,
        "/v1/chat/completions",
        chat_body(),
    )
    .await;
    assert_eq!(st, 200, "{b}");
    // The slow clients are cut off by the header timeout.
    for s in &mut slow {
        assert!(
            closed_within(s, Duration::from_secs(15)),
            "slow header client not cut off"
        );
    }
    drop(slow);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (st, _) = get(&d.client_from([127, 0, 0, 3]), &d, "/health").await;
    assert_eq!(st, 200, "places are given back");
    assert!(
        d.log().contains("max_connections_per_address"),
        "{}",
        d.log()
    );
}

/// A client trickling a request body (no credentials needed on `/auth/login`) is cut off
/// with 408 once it falls behind `body_timeout_secs` + size at `min_body_bytes_per_sec`,
/// while a prompt one on the same daemon is served.
#[tokio::test]
async fn a_trickled_body_is_cut_off_with_408() {
    let mut s = Setup::model(TINY);
    s.api_extra = "body_timeout_secs = 2\nmin_body_bytes_per_sec = 1024".into();
    let d = Daemon::start(s).await;
    let mut slow = socket2_free_connect(d.port, [127, 0, 0, 5]).expect("connect");
    slow.write_all(
        b"POST /auth/login HTTP/1.1\r\nHost: civia\r\nContent-Type: application/json\r\n\
          Content-Length: 4000\r\n\r\n{\"username\": \"",
    )
    .expect("headers");
    // One byte a second, in a thread (the daemon may close the socket under it).
    let mut writer = slow.try_clone().expect("clone");
    let trickle = std::thread::spawn(move || {
        for _ in 0..40 {
            std::thread::sleep(Duration::from_secs(1));
            if writer.write_all(b"a").is_err() {
                return;
            }
        }
    });
    let t0 = Instant::now();
    slow.set_read_timeout(Some(Duration::from_secs(40)))
        .expect("timeout");
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match slow.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 408") && answer.contains("request_timeout"),
        "after {:?}: {answer:?}",
        t0.elapsed()
    );
    // A small body sent at once is served meanwhile and afterwards.
    let (st, _) = post(
        &d.client_from([127, 0, 0, 6]),
        &d,
        "/auth/login",
        json!({"username": "nobody", "password": "wrong password here"}),
    )
    .await;
    assert_eq!(st, 401);
    drop(slow);
    let _ = trickle.join();
}
