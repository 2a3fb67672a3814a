//! The box's facts about itself on the real daemon: `GET /admin/system`, the egress probe,
//! the memory-bandwidth measurement, who may use them, and `civia console-status` with the pairing code on the admin socket
//! only.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions fail loudly

mod common;

use common::*;
use serde_json::{json, Value};

async fn send(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Option<Vec<u8>>,
) -> (u16, Value) {
    let mut req = http.request(method, url);
    if let Some(b) = body {
        req = req.header("content-type", "application/json").body(b);
    }
    let r = req.send().await.expect("request");
    let status = r.status().as_u16();
    let text = r.text().await.expect("body");
    let v = serde_json::from_str(&text).unwrap_or(json!({ "raw": text }));
    (status, v)
}

async fn facts(http: &reqwest::Client, d: &Daemon) -> (u16, Value) {
    send(
        http,
        reqwest::Method::GET,
        format!("{}/admin/system", d.base),
        None,
    )
    .await
}

async fn probe(http: &reqwest::Client, d: &Daemon, body: &[u8]) -> (u16, Value) {
    send(
        http,
        reqwest::Method::POST,
        format!("{}/admin/system/egress-probe", d.base),
        Some(body.to_vec()),
    )
    .await
}

/// A port on loopback that refuses connections (nothing listens there any more).
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

#[tokio::test]
async fn facts_and_egress_probe_for_admins_only() {
    let d = Daemon::start(Setup::model(TINY)).await;
    let admin = &d.http;

    // The facts: what this machine says, the daemon's own listener among the sockets.
    let (s, f) = facts(admin, &d).await;
    assert_eq!(s, 200, "{f}");
    for key in [
        "civiad_version",
        "booted_slot",
        "running_version",
        "listening",
        "addresses",
        "root",
        "usr",
        "var",
        "tpm",
        "secure_boot",
        "kernel",
        "gpu",
        "image",
    ] {
        assert!(f.get(key).is_some(), "no `{key}` in {f}");
    }
    assert!(f.get("pairing_code").is_none(), "never on the network: {f}");
    assert!(
        f["listening"]
            .as_array()
            .expect("listening")
            .contains(&json!({"protocol": "tcp", "address": "127.0.0.1", "port": d.port})),
        "{}",
        f["listening"]
    );
    assert!(f["kernel"]["release"].is_string(), "{f}");
    assert!(f["tpm"]["present"].is_boolean(), "{f}");
    let state = std::fs::canonicalize(d.dir.path().join("state")).expect("state dir");
    assert_eq!(f["var"]["path"], json!(state.to_string_lossy()));
    assert!(f["var"]["mount_point"].is_string(), "{f}");

    // The probe: a connection to the daemon's own port works, a closed port refuses.
    let body = json!({"address": format!("127.0.0.1:{}", d.port), "timeout_ms": 1000});
    let (s, b) = probe(admin, &d, body.to_string().as_bytes()).await;
    assert_eq!((s, &b), (200, &json!({"connected": true, "error": null})));
    let closed = closed_port();
    let body = json!({"address": format!("127.0.0.1:{closed}")});
    let (s, b) = probe(admin, &d, body.to_string().as_bytes()).await;
    assert_eq!(
        (s, &b),
        (
            200,
            &json!({"connected": false, "error": "connection_refused"})
        )
    );

    // Malformed bodies: 400 with the error object, in French, naming the field.
    for (body, code, param) in [
        (&b""[..], "invalid_json", Value::Null),
        (b"{bad", "invalid_json", Value::Null),
        (b"[1]", "invalid_value", Value::Null),
        (b"{}", "invalid_value", json!("address")),
        (
            br#"{"address": "example.org:443"}"#,
            "invalid_value",
            json!("address"),
        ),
        (
            br#"{"address": "255.255.255.255:80"}"#,
            "invalid_value",
            json!("address"),
        ),
        (
            br#"{"address": "127.0.0.1:80", "timeout_ms": 60000}"#,
            "invalid_value",
            json!("timeout_ms"),
        ),
        (
            br#"{"address": "127.0.0.1:80", "data": "GET /"}"#,
            "invalid_value",
            json!("data"),
        ),
    ] {
        let (s, b) = probe(admin, &d, body).await;
        assert_openai_error(s, &b, 400);
        assert_eq!(b["error"]["code"], code, "{b}");
        assert_eq!(b["error"]["param"], param, "{b}");
    }
    let (_, b) = probe(admin, &d, br#"{"address": "example.org:443"}"#).await;
    let message = b["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("an IP address"), "{message}");
    let big = vec![b' '; 64 * 1024];
    let (s, b) = probe(admin, &d, &big).await;
    assert_openai_error(s, &b, 413);

    // Without credentials: 401; an agent or a DPO: 403.
    let anon = reqwest::Client::new();
    let ok_probe = json!({"address": format!("127.0.0.1:{}", d.port)}).to_string();
    let (s, b) = facts(&anon, &d).await;
    assert_openai_error(s, &b, 401);
    let (s, b) = probe(&anon, &d, ok_probe.as_bytes()).await;
    assert_openai_error(s, &b, 401);
    for role in ["agent", "dpo", "integrator"] {
        let name = format!("sys.{role}");
        let (code, out, err) = civia(&d, &["user", "add", &name, "--role", role]);
        assert_eq!(code, 0, "{out}{err}");
        let (code, out, err) = civia(&d, &["key", "create", "--user", &name]);
        assert_eq!(code, 0, "{out}{err}");
        let user = client_with_key(&last_line(&out));
        let (s, b) = facts(&user, &d).await;
        assert_openai_error(s, &b, 403);
        assert_eq!(b["error"]["code"], "permission_denied");
        let (s, b) = probe(&user, &d, ok_probe.as_bytes()).await;
        assert_openai_error(s, &b, 403);
    }

    // Every probe the admin made is in the audit trail, with its target and outcome.
    let audit = d.dir.path().join("state/audit");
    let trail: String = std::fs::read_dir(&audit)
        .expect("audit dir")
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .collect();
    assert_eq!(
        trail.matches("\"admin.egress_probe\"").count(),
        2,
        "{trail}"
    );
    assert!(trail.contains("connection_refused"), "{trail}");
}

#[tokio::test]
async fn memory_bandwidth_bounds_the_decoding_speed() {
    let d = Daemon::start(Setup::model(TINY)).await;
    let url = format!("{}/admin/system/memory-bandwidth", d.base);
    let (s, b) = send(&d.http, reqwest::Method::POST, url.clone(), None).await;
    assert_eq!(s, 200, "{b}");
    let rate = b["memory"]["bytes_per_second"].as_f64().expect("rate");
    let weights = b["model"]["weights_bytes"].as_f64().expect("weights");
    let bound = b["decode_tokens_per_second_bound"].as_f64().expect("bound");
    assert!(rate > 0.0 && weights > 0.0, "{b}");
    // The bound is the rate over the weights the worker loaded (llama.cpp's model size).
    assert!((bound - rate / weights).abs() <= 1e-6 * bound, "{b}");
    // The worker says where it computes: this build has no GPU backend, all layers on the CPU.
    assert_eq!(b["device"], "cpu", "{b}");
    assert_eq!(b["model"]["gpu_layers"], 0, "{b}");
    let devices = b["model"]["devices"].as_array().expect("devices");
    assert!(
        devices
            .iter()
            .any(|d| d["kind"] == "cpu" && d["name"] == "CPU"),
        "{b}"
    );
    assert_eq!(b["memory"]["buffer_bytes"], json!(256u64 << 20), "{b}");
    let h = &d.http;
    let (health_status, health) =
        send(h, reqwest::Method::GET, format!("{}/health", d.base), None).await;
    assert_eq!(health_status, 200, "{health}");

    // Three at once: one measures, the others are told one is running (never two at once).
    let (a, b2, c) = tokio::join!(
        send(h, reqwest::Method::POST, url.clone(), None),
        send(h, reqwest::Method::POST, url.clone(), None),
        send(h, reqwest::Method::POST, url.clone(), None),
    );
    let codes: Vec<u16> = [&a, &b2, &c].iter().map(|r| r.0).collect();
    assert!(codes.contains(&200), "{codes:?}");
    for r in [&a, &b2, &c] {
        if r.0 != 200 {
            assert_openai_error(r.0, &r.1, 409);
            assert_eq!(r.1["error"]["code"], "measurement_running", "{}", r.1);
        }
    }

    // Admins only.
    let anon = reqwest::Client::new();
    let (s, b) = send(&anon, reqwest::Method::POST, url.clone(), None).await;
    assert_openai_error(s, &b, 401);
    let (code, out, err) = civia(&d, &["user", "add", "bw.agent", "--role", "agent"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = civia(&d, &["key", "create", "--user", "bw.agent"]);
    assert_eq!(code, 0, "{out}{err}");
    let agent = client_with_key(&last_line(&out));
    let (s, b) = send(&agent, reqwest::Method::POST, url, None).await;
    assert_openai_error(s, &b, 403);
}

#[tokio::test]
async fn console_status_shows_the_pairing_code_on_the_admin_socket_only() {
    // A fresh box (no trial key): the pairing code is its only way in.
    let mut setup = Setup::model(TINY);
    setup.env = vec![("CIVIA_DEV_API_KEY".into(), String::new())];
    let d = Daemon::start(setup).await;
    let log = d.log();
    let code = log
        .split("pairing code: ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_else(|| panic!("no pairing code in the log:\n{log}"))
        .to_string();

    let (rc, out, err) = civia(&d, &["console-status"]);
    assert_eq!(rc, 0, "{out}{err}");
    assert!(
        out.starts_with("Civia — état de la box\nVersion : "),
        "{out}"
    );
    for line in [
        "Emplacement démarré : ",
        "Adresse IP : ",
        "Chiffrement /var : ",
        "Déverrouillage /var : ",
        "TPM : ",
        "Démarrage sécurisé : ",
    ] {
        assert!(out.lines().any(|l| l.starts_with(line)), "{line}: {out}");
    }
    assert!(
        out.lines()
            .any(|l| l == format!("Code d'appairage : {code}")),
        "{out}"
    );
    let (rc, out, _) = civia(&d, &["--json", "console-status"]);
    assert_eq!(rc, 0);
    let v: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["pairing_code"], json!(code));

    // The network never gets it: no credentials, no facts; the new admin's facts lack it.
    let anon = reqwest::Client::new();
    let (s, b) = facts(&anon, &d).await;
    assert_openai_error(s, &b, 401);
    let (s, b) = send(
        &anon,
        reqwest::Method::POST,
        format!("{}/admin/pair", d.base),
        Some(
            json!({"code": code, "name": "maire"})
                .to_string()
                .into_bytes(),
        ),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let (rc, out, err) = civia(&d, &["key", "create", "--user", "maire"]);
    assert_eq!(rc, 0, "{out}{err}");
    let admin = client_with_key(&last_line(&out));
    let (s, f) = facts(&admin, &d).await;
    assert_eq!(s, 200, "{f}");
    assert!(f.get("pairing_code").is_none(), "{f}");

    // Paired: the console says so.
    let (rc, out, err) = civia(&d, &["console-status"]);
    assert_eq!(rc, 0, "{out}{err}");
    assert!(
        out.lines()
            .any(|l| l == "Code d'appairage : aucun (box déjà appairée)"),
        "{out}"
    );
}
