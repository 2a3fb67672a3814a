use super::*;
use civia_auth::{Role, Store};
use serde_json::Value;
use std::time::{Duration, SystemTime};

#[test]
fn audit_labels_fit_the_audit_field_rules() {
    assert_eq!(super::audit_label("mistral-7b"), "mistral-7b");
    let long = "é".repeat(100);
    let l = super::audit_label(&long);
    assert!(l.len() <= 128 && l.chars().all(|c| c == 'é'));
    assert_eq!(super::audit_label("a\nb"), "ab");
}

/// A real store, auth and audit trail in a temp dir, with an agent and a DPO.
struct Box_ {
    _dir: tempfile::TempDir,
    auth: Arc<Auth>,
    audit: Arc<Audit>,
    agent: Principal,
    dpo: Principal,
}

fn open() -> Box_ {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("civia.db")).expect("store");
    let principal = |role: Role| {
        let user = store
            .add_user(
                &format!("user-{}", role.as_str()),
                role,
                "a long enough password",
            )
            .expect("user");
        Principal::User {
            user,
            key_id: None,
            model_scope: None,
            session: false,
            own: false,
        }
    };
    let (agent, dpo) = (principal(Role::Agent), principal(Role::Dpo));
    // The agent may send one request per minute (to see what counts against it).
    store.set_quota("user-agent", Some(1), None).expect("quota");
    let auth = Arc::new(
        Auth::new(
            store,
            civia_config::AuthConfig::default(),
            civia_config::QuotasConfig::default(),
        )
        .expect("auth"),
    );
    let audit = Arc::new(
        Audit::open(
            &dir.path().join("audit"),
            &dir.path().join("keys"),
            &civia_audit::RetentionPolicy::default(),
        )
        .expect("audit"),
    );
    Box_ {
        _dir: dir,
        auth,
        audit,
        agent,
        dpo,
    }
}

const SHA: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

impl Box_ {
    fn meter(&self) -> Meter {
        Meter::new(self.auth.clone(), Some(self.audit.clone()))
    }

    async fn admit(&self, who: &Principal, charter_required: bool) -> Admission {
        self.meter()
            .admit(
                ModelRequest {
                    who,
                    model: "mistral-7b\n".into(),
                    model_sha256: Some(SHA.into()),
                    charter_required,
                },
                |e| Refusal {
                    status: if matches!(e, AuthError::Quota { .. }) {
                        429
                    } else {
                        403
                    },
                    code: "refused_for_test",
                },
            )
            .await
            .expect("audit writable")
    }

    async fn admitted(&self, who: &Principal) -> Arc<UsageTicket> {
        match self.admit(who, false).await {
            Admission::Admitted(t) => t,
            Admission::Refused(e) => panic!("refused: {e}"),
        }
    }

    /// The audit trail as text (JSON lines).
    async fn trail(&self) -> String {
        let to = SystemTime::now() + Duration::from_secs(86_400);
        let bytes = self
            .audit
            .export(SystemTime::UNIX_EPOCH, to, civia_audit::ExportFormat::Json)
            .await
            .expect("export");
        String::from_utf8(bytes).expect("utf-8")
    }

    async fn events(&self) -> Vec<Value> {
        self.trail()
            .await
            .lines()
            .map(|l| serde_json::from_str(l).expect("json line"))
            .collect()
    }

    /// The `request.*` event names, in order, of each request id.
    async fn requests(&self) -> std::collections::BTreeMap<String, Vec<String>> {
        let mut by_id = std::collections::BTreeMap::<String, Vec<String>>::new();
        for e in self.events().await {
            if let Some(id) = e["request_id"].as_str() {
                by_id
                    .entry(id.to_string())
                    .or_default()
                    .push(e["event"].as_str().unwrap_or_default().to_string());
            }
        }
        by_id
    }

    /// Usage rows of a user (written in the background: waits for `at_least`, then a
    /// little longer for any extra).
    async fn usage_rows(&self, who: &Principal, at_least: u64) -> u64 {
        let uid = who.user().expect("user").id;
        let count = || async {
            self.auth
                .with_store(move |s| s.usage_of(uid))
                .await
                .expect("usage")
                .iter()
                .map(|d| d.requests)
                .sum::<u64>()
        };
        for _ in 0..200 {
            if count().await >= at_least {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        count().await
    }

    /// Waits until `n` requests have their outcome in the trail (detached writes).
    async fn settle(&self, n: usize) {
        for _ in 0..200 {
            let done = self
                .requests()
                .await
                .values()
                .filter(|evs| evs.len() > 2)
                .count();
            if done >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_outcome_per_ticket_even_when_finish_races_the_destructor() {
    let b = open();
    let admin = Principal::LocalAdmin;
    const N: usize = 16;
    for i in 0..N {
        let t = b.admitted(&admin).await;
        let (a, c) = (t.clone(), t.clone());
        let finish = tokio::spawn(async move {
            a.finish(3, 4, 200, Some(SHA.into())).await.expect("finish");
        });
        let detached = tokio::spawn(async move {
            if i % 2 == 0 {
                c.finish_detached(CLIENT_CLOSED);
            } else {
                drop(StreamGuard(Some(c)));
            }
        });
        finish.await.expect("task");
        detached.await.expect("task");
        // Late outcomes are no-ops.
        t.finish(0, 0, 500, None).await.expect("no-op");
        t.finish_detached(CLIENT_CLOSED);
    }
    b.settle(N).await;
    let requests = b.requests().await;
    assert_eq!(requests.len(), N);
    for evs in requests.values() {
        assert_eq!(evs.len(), 3, "{evs:?}");
        assert_eq!(evs[..2], ["request.received", "request.admitted"]);
        assert!(
            evs[2] == "request.completed" || evs[2] == "request.failed",
            "{evs:?}"
        );
    }
    // A detached outcome that won is a client that left: 499.
    for e in b.events().await {
        if e["event"] == "request.failed" {
            assert_eq!(e["status"], u64::from(CLIENT_CLOSED));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_rows_are_written_once() {
    let b = open();
    let agent = b.agent.clone();
    let t = b.admitted(&agent).await;
    let (a, c) = (t.clone(), t.clone());
    let h = tokio::spawn(async move { a.finish(1, 2, 200, None).await });
    drop(StreamGuard(Some(c)));
    h.await.expect("task").expect("finish");
    t.finish(0, 0, 500, None).await.expect("no-op");
    assert_eq!(b.usage_rows(&agent, 1).await, 1);
}

#[tokio::test]
async fn a_refusal_leaves_received_refused_and_a_usage_row_but_no_admitted() {
    let b = open();
    let dpo = b.dpo.clone();
    match b.admit(&dpo, false).await {
        Admission::Refused(AuthError::Forbidden { .. }) => {}
        other => panic!("{other:?}"),
    }
    let requests = b.requests().await;
    let evs: Vec<_> = requests.values().collect();
    assert_eq!(evs, [&vec!["request.received", "request.refused"]]);
    let refused = b
        .events()
        .await
        .into_iter()
        .find(|e| e["event"] == "request.refused")
        .expect("refused");
    assert_eq!(refused["status"], 403);
    assert_eq!(refused["detail"]["code"], "refused_for_test");
    assert_eq!(refused["role"], "dpo");
    assert_eq!(refused["model"], "mistral-7b");
    assert_eq!(refused["model_sha256"], SHA);
    assert!(refused["detail"]["duration_ms"].is_u64());
    assert_eq!(b.usage_rows(&dpo, 1).await, 1);
}

#[tokio::test]
async fn a_charter_refusal_does_not_count_against_the_quotas() {
    let b = open();
    let agent = b.agent.clone();
    for _ in 0..3 {
        match b.admit(&agent, true).await {
            Admission::Refused(AuthError::CharterNotAccepted { .. }) => {}
            other => panic!("{other:?}"),
        }
    }
    let uid = agent.user().expect("user").id;
    b.auth
        .with_store(move |s| {
            let v = s.charter()?.version;
            s.accept_charter(uid, v, "api")
        })
        .await
        .expect("accept");
    // One request per minute: the three refusals did not use it.
    let t = match b.admit(&agent, true).await {
        Admission::Admitted(t) => t,
        Admission::Refused(e) => panic!("refused: {e}"),
    };
    t.finish(1, 1, 200, None).await.expect("finish");
    match b.admit(&agent, true).await {
        Admission::Refused(AuthError::Quota { .. }) => {}
        other => panic!("{other:?}"),
    }
    let outcomes: Vec<_> = b.requests().await.into_values().collect();
    assert_eq!(outcomes.len(), 5);
    let refused = vec!["request.received", "request.refused"];
    assert_eq!(outcomes.iter().filter(|e| **e == refused).count(), 4);
    assert_eq!(b.usage_rows(&agent, 5).await, 5);
}

#[tokio::test]
async fn events_carry_digests_never_text() {
    let b = open();
    let agent = b.agent.clone();
    let t = b.admitted(&agent).await;
    let prompt = br#"{"messages":[{"role":"user","content":"Ecrire a jean.dupont@example.fr au sujet du permis"}]}"#;
    let answer = "Madame, Monsieur, votre permis de construire est accorde.";
    t.set_prompt(prompt);
    assert_eq!(t.pii(), [civia_guard::PiiKind::Email]);
    t.flag_output("system_prompt_leak");
    let out = civia_base::hash::sha256_hex(answer);
    t.finish(12, 34, 200, Some(out.clone()))
        .await
        .expect("finish");
    let trail = b.trail().await;
    for text in ["jean.dupont", "permis", "Madame", "Ecrire"] {
        assert!(!trail.contains(text), "{text} in {trail}");
    }
    assert!(!trail.contains("user-agent"), "names are pseudonymised");
    let done = b
        .events()
        .await
        .into_iter()
        .find(|e| e["event"] == "request.completed")
        .expect("completed");
    assert_eq!(done["prompt_sha256"], civia_base::hash::sha256_hex(prompt));
    assert_eq!(done["output_sha256"], out);
    assert_eq!(done["prompt_tokens"], 12);
    assert_eq!(done["completion_tokens"], 34);
    assert_eq!(done["status"], 200);
    assert_eq!(
        done["detail"]["personal_data"],
        serde_json::json!(["email"])
    );
    assert_eq!(
        done["detail"]["output_guard"],
        serde_json::json!(["system_prompt_leak"])
    );
    assert!(done["user"].is_string());
    assert_eq!(b.usage_rows(&agent, 1).await, 1);
}
