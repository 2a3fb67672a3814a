//! The admin plane and the API listener tested in-process: the real routers over a real
//! store, audit trail and configuration in a temporary directory, requests sent with `tower::ServiceExt::oneshot`
//! (no listener, no daemon). The runtime worker is a program that exits at once, so the
//! model is never loaded: these tests cover who may call what, and the shape of every
//! refusal, not generation (the daemon's tests and the Python suites cover that).
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions fail loudly

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use civia_api::{ApiState, Auth};
use civia_auth::{Role, Store};
use civia_supervisor::{Supervisor, WorkerSpec};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

struct Box_ {
    _dir: tempfile::TempDir,
    app: Router,
    admin_only: Router,
    keys: Vec<(Role, String)>,
}

fn worker_spec(model: &std::path::Path) -> WorkerSpec {
    WorkerSpec {
        // A worker that dies at once: the supervisor keeps restarting it with backoff.
        program: "/bin/false".into(),
        args: Vec::new(),
        load: civia_ipc::LoadSpec {
            path: model.to_string_lossy().into_owned(),
            sha256: None,
            context_length: 512,
            batch_size: 64,
            threads: 1,
            gpu_layers: 0,
            n_parallel: 1,
            prefix_reuse: false,
        },
        backoff_initial: Duration::from_secs(5),
        backoff_max: Duration::from_secs(60),
        backoff_reset_after: Duration::from_secs(60),
        load_timeout: Duration::from_secs(5),
        queue_depth: 4,
        sandbox: None,
        queue_timeout: Duration::from_secs(1),
    }
}

/// A box with one user (and one API key) per role.
async fn start() -> Box_ {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = dir.path().join("model.gguf");
    std::fs::write(&model, b"GGUF").expect("model file");
    let cfg = civia_config::Config::from_toml(&format!(
        "state_dir = {:?}\n[api]\nlisten = \"127.0.0.1:1\"\nmax_body_bytes = 4096\n[model]\npath = {:?}\n",
        dir.path(),
        model
    ))
    .expect("config");
    let store = Store::open(&dir.path().join("civia.db")).expect("store");
    let mut keys = Vec::new();
    for role in [Role::Admin, Role::Agent, Role::Dpo, Role::Integrator] {
        let name = format!("user-{}", role.as_str());
        store
            .add_user(&name, role, "a long enough password")
            .expect("user");
        // Each user's own key (made by them: it reaches their history).
        let (key, _) = store
            .create_own_key(&name, "test", None, None)
            .expect("key");
        keys.push((role, key));
    }
    let auth = Arc::new(Auth::new(store, cfg.auth.clone(), cfg.quotas.clone()).expect("auth"));
    let audit = Arc::new(
        civia_audit::Audit::open(
            &dir.path().join("audit"),
            &dir.path().join("keys"),
            &civia_audit::RetentionPolicy {
                months: cfg.audit.retention_months,
                justification: cfg.audit.retention_justification.clone(),
            },
        )
        .expect("audit"),
    );
    let state = Arc::new(ApiState {
        supervisor: Supervisor::start(worker_spec(&model)),
        speech: None,
        knowledge: None,
        embeddings: None,
        model_id: cfg.model_id(),
        limits: cfg.api.clone(),
        config: Arc::new(cfg.clone()),
        leak_guard: None,
        auth,
        admin_on_api: true,
        updates: Some(Arc::new(civia_update::Updates::new(
            &cfg,
            Some(audit.clone()),
        ))),
        backups: None,
        audit: Some(audit),
        started_at: 0,
        ca_pem: "-----BEGIN CERTIFICATE-----\n".into(),
        trust: Default::default(),
    });
    Box_ {
        _dir: dir,
        // Built as civiad builds them: the admin plane nested in the API listener's router
        // (`admin_on_api`), and alone for its own listener.
        app: civia_api::router(state.clone(), Some(civia_admin_api::routes(&state))),
        admin_only: civia_admin_api::admin_router(state),
        keys,
    }
}

impl Box_ {
    fn key(&self, role: Role) -> &str {
        &self.keys.iter().find(|(r, _)| *r == role).expect("role").1
    }

    async fn accept_charter(&self, role: Role) {
        let (s, c) = self
            .call(Method::GET, "/v1/charter", Some(role), None)
            .await;
        assert_eq!(s, StatusCode::OK, "{c}");
        let body = serde_json::to_vec(&json!({ "version": c["version"] })).expect("json");
        let (s, v) = self
            .call(Method::POST, "/v1/charter/accept", Some(role), Some(body))
            .await;
        assert!(s.is_success(), "{s} {v}");
    }

    async fn call(
        &self,
        method: Method,
        uri: &str,
        who: Option<Role>,
        body: Option<Vec<u8>>,
    ) -> (StatusCode, Value) {
        call(&self.app, method, uri, who.map(|r| self.key(r)), body).await
    }
}

async fn call(
    app: &Router,
    method: Method,
    uri: &str,
    key: Option<&str>,
    body: Option<Vec<u8>>,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(k) = key {
        req = req.header(header::AUTHORIZATION, format!("Bearer {k}"));
    }
    if body.is_some() {
        req = req.header(header::CONTENT_TYPE, "application/json");
    }
    let req = req
        .body(body.map_or_else(Body::empty, Body::from))
        .expect("request");
    let resp = app.clone().oneshot(req).await.expect("infallible");
    let status = resp.status();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    let v = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, v)
}

/// Every refusal is an OpenAI error object with a stable code.
fn assert_error(status: StatusCode, body: &Value, want: StatusCode, code: &str) {
    assert_eq!(status, want, "{body}");
    let e = &body["error"];
    assert!(
        e["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(e["type"].is_string(), "{body}");
    assert!(
        e.as_object().is_some_and(|o| o.contains_key("param")),
        "{body}"
    );
    assert_eq!(e["code"], code, "{body}");
}

#[tokio::test]
async fn who_may_call_what() {
    let b = start().await;
    use Role::*;
    let g = Method::GET;
    // (method, path, roles allowed); every other role gets 403, no credentials 401.
    let matrix: &[(Method, &str, &[Role])] = &[
        (g.clone(), "/v1/models", &[Admin, Agent, Dpo, Integrator]),
        (g.clone(), "/v1/charter", &[Admin, Agent, Dpo, Integrator]),
        (g.clone(), "/admin/users", &[Admin]),
        (g.clone(), "/admin/keys", &[Admin]),
        (g.clone(), "/admin/usage", &[Admin, Dpo]),
        (g.clone(), "/admin/status", &[Admin, Integrator]),
        (g.clone(), "/admin/audit/verify", &[Admin, Dpo]),
        (g.clone(), "/admin/charter/register", &[Admin, Dpo]),
        (g.clone(), "/admin/updates", &[Admin, Integrator]),
        // Not the admin: an administrator never reads an agent's conversations.
        (
            g.clone(),
            "/admin/users/user-agent/data?reason=courrier%2012",
            &[Dpo],
        ),
    ];
    for (method, path, allowed) in matrix {
        let (s, body) = b.call(method.clone(), path, None, None).await;
        assert_error(s, &body, StatusCode::UNAUTHORIZED, "invalid_api_key");
        for role in [Admin, Agent, Dpo, Integrator] {
            let (s, body) = b.call(method.clone(), path, Some(role), None).await;
            if allowed.contains(&role) {
                assert!(
                    s.is_success(),
                    "{} {path} as {}: {s} {body}",
                    method,
                    role.as_str()
                );
            } else {
                assert_error(s, &body, StatusCode::FORBIDDEN, "permission_denied");
            }
        }
    }
    // A wrong key is not a missing one, and says nothing about which users exist.
    let (s, body) = call(
        &b.app,
        Method::GET,
        "/admin/users",
        Some("civia-0000"),
        None,
    )
    .await;
    assert_error(s, &body, StatusCode::UNAUTHORIZED, "invalid_api_key");
}

#[tokio::test]
async fn model_requests_are_refused_before_the_model_for_roles_without_access() {
    let b = start().await;
    let chat = serde_json::to_vec(&json!({
        "model": "x", "messages": [{"role": "user", "content": "Bonjour"}]
    }))
    .expect("json");
    for role in [Role::Dpo, Role::Integrator] {
        let (s, body) = b
            .call(
                Method::POST,
                "/v1/chat/completions",
                Some(role),
                Some(chat.clone()),
            )
            .await;
        assert_error(s, &body, StatusCode::FORBIDDEN, "permission_denied");
    }
    // An agent who has not accepted the usage charter is stopped there, before the model.
    let (s, body) = b
        .call(
            Method::POST,
            "/v1/chat/completions",
            Some(Role::Agent),
            Some(chat.clone()),
        )
        .await;
    assert_error(s, &body, StatusCode::FORBIDDEN, "charter_not_accepted");
    b.accept_charter(Role::Agent).await;
    // Then the request reaches validation: the model named is not the one served.
    let (s, body) = b
        .call(
            Method::POST,
            "/v1/chat/completions",
            Some(Role::Agent),
            Some(chat),
        )
        .await;
    assert_error(s, &body, StatusCode::NOT_FOUND, "model_not_found");
    // Every one of those requests left its trail, and the trail verifies.
    let (s, v) = b
        .call(Method::GET, "/admin/audit/verify", Some(Role::Dpo), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["ok"], true, "{v}");
    assert!(v["entries"].as_u64().unwrap_or(0) >= 6, "{v}");
}

#[tokio::test]
async fn refusals_have_one_shape() {
    let b = start().await;
    let admin = Some(Role::Admin);
    let (s, body) = b.call(Method::GET, "/nowhere", admin, None).await;
    assert_error(s, &body, StatusCode::NOT_FOUND, "not_found");
    let (s, body) = b.call(Method::DELETE, "/v1/models", admin, None).await;
    assert_error(
        s,
        &body,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );
    let (s, body) = b
        .call(
            Method::POST,
            "/admin/users",
            admin,
            Some(b"{not json".to_vec()),
        )
        .await;
    assert_error(s, &body, StatusCode::BAD_REQUEST, "invalid_json");
    let (s, body) = b
        .call(Method::POST, "/admin/users", admin, Some(Vec::new()))
        .await;
    assert_error(s, &body, StatusCode::BAD_REQUEST, "invalid_json");
    let (s, body) = b
        .call(
            Method::POST,
            "/admin/users",
            admin,
            Some(br#"{"name": "x", "role": 7, "password": "p"}"#.to_vec()),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["param"], "role", "{body}");
    // A body over the limit is answered 413 (after draining), not a broken pipe.
    b.accept_charter(Role::Agent).await;
    let big = vec![b'x'; 5000];
    let (s, body) = b
        .call(
            Method::POST,
            "/v1/chat/completions",
            Some(Role::Agent),
            Some(big),
        )
        .await;
    assert_error(s, &body, StatusCode::PAYLOAD_TOO_LARGE, "request_too_large");
    // History refusals come before the model is asked (`civia` is the request's extension).
    let chat = |civia: &str| {
        format!(r#"{{"model": "model", "messages": [{{"role": "user", "content": "x"}}], "civia": {civia}}}"#)
            .into_bytes()
    };
    let agent = Some(Role::Agent);
    let url = "/v1/chat/completions";
    let (s, body) = b
        .call(
            Method::POST,
            url,
            agent,
            Some(chat(r#"{"conversation_id": "conv-nope"}"#)),
        )
        .await;
    assert_error(s, &body, StatusCode::NOT_FOUND, "conversation_not_found");
    assert_eq!(body["error"]["param"], "civia.conversation_id", "{body}");
    assert_eq!(
        body["error"]["message"], "No conversation `conv-nope` in your history.",
        "{body}"
    );
    let (s, body) = b
        .call(
            Method::POST,
            url,
            agent,
            Some(chat(r#"{"save": true, "folder": 1}"#)),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    // Bad query and path parameters are OpenAI errors too, not axum's plain text.
    let (s, body) = b
        .call(Method::GET, "/admin/usage?days=-1", admin, None)
        .await;
    assert_error(s, &body, StatusCode::BAD_REQUEST, "invalid_value");
    let (s, body) = b
        .call(Method::DELETE, "/admin/keys/not-a-number", admin, None)
        .await;
    assert_error(s, &body, StatusCode::BAD_REQUEST, "invalid_value");
    // The model is not loaded: its dossier cannot be checked against it.
    let (s, body) = b
        .call(
            Method::GET,
            "/v1/models/model/dossier",
            Some(Role::Agent),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{body}");
}

#[tokio::test]
async fn the_last_admin_stays_and_admin_events_are_audited() {
    let b = start().await;
    let (s, body) = b
        .call(
            Method::DELETE,
            "/admin/users/user-admin",
            Some(Role::Admin),
            None,
        )
        .await;
    assert_error(s, &body, StatusCode::CONFLICT, "last_admin");
    let (s, body) = b
        .call(
            Method::POST,
            "/admin/users",
            Some(Role::Admin),
            Some(
                serde_json::to_vec(&json!({
                    "name": "marie", "role": "agent", "password": "un mot de passe assez long"
                }))
                .expect("json"),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let (s, v) = b
        .call(
            Method::GET,
            "/admin/audit/export?from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z",
            Some(Role::Dpo),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let text = v
        .as_str()
        .expect("jsonl export is not one JSON value")
        .to_string();
    assert!(text.contains("admin.user_created"), "{text}");
    // Pseudonyms only: the new user's name is nowhere in the trail.
    assert!(!text.contains("marie"), "{text}");
}

#[tokio::test]
async fn the_admin_plane_alone_serves_no_model_routes() {
    let b = start().await;
    let key = b.key(Role::Admin).to_string();
    let (s, _) = call(&b.admin_only, Method::GET, "/admin/users", Some(&key), None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, body) = call(&b.admin_only, Method::GET, "/v1/models", Some(&key), None).await;
    assert_error(s, &body, StatusCode::NOT_FOUND, "not_found");
    let (s, v) = call(&b.admin_only, Method::GET, "/health", None, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["status"], "ok");
}
