use super::*;
use civia_config::{AuthConfig, QuotasConfig};

const PW: &str = "correct horse battery";

fn auth_with(cfg: AuthConfig, quotas: QuotasConfig) -> (tempfile::TempDir, Auth) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("civia.db")).unwrap();
    (dir, Auth::new(store, cfg, quotas).unwrap())
}

fn auth() -> (tempfile::TempDir, Auth) {
    auth_with(AuthConfig::default(), QuotasConfig::default())
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn pairing_code_creates_the_first_admin_once() {
    let (_d, a) = auth();
    let code = a.pairing_code().expect("fresh box has a code");
    assert_eq!(code.len(), 9, "{code}");
    let here = ip("192.168.1.10");
    assert!(matches!(
        a.pair("WRONG-CODE", "maire".into(), None, here).await,
        Err(AuthError::BadPairing)
    ));
    let typed = code.to_lowercase().replace('-', " ");
    let (user, pw) = a.pair(&typed, "maire".into(), None, here).await.unwrap();
    assert_eq!(user.role, Role::Admin);
    let pw = pw.expect("generated password");
    assert!(civia_store::check_password_policy(&pw).is_ok());
    assert!(a.pairing_code().is_none());
    assert!(matches!(
        a.pair(&code, "intrus".into(), None, here).await,
        Err(AuthError::BadPairing)
    ));
    // A box with users has no code after a restart either.
    let dir = _d.path().join("civia.db");
    drop(a);
    let again = Auth::new(
        Store::open(&dir).unwrap(),
        AuthConfig::default(),
        QuotasConfig::default(),
    )
    .unwrap();
    assert!(again.pairing_code().is_none());
    assert!(again.login("maire".into(), pw, here).await.is_ok());
}

#[tokio::test(flavor = "multi_thread")]
async fn twenty_wrong_passwords_lock_the_account_not_the_others() {
    let (_d, a) = auth();
    a.add_user("cible".into(), Role::Agent, None, Some(PW.into()))
        .await
        .unwrap();
    a.add_user("collegue".into(), Role::Agent, None, Some(PW.into()))
        .await
        .unwrap();
    let attacker = ip("10.0.0.66");
    for i in 0..20 {
        let r = a
            .login("cible".into(), format!("wrong password {i}"), attacker)
            .await;
        assert!(
            matches!(r, Err(AuthError::BadLogin)),
            "attempt {i}: {r:?}",
            r = r.err()
        );
    }
    // Locked: even the right password, from anywhere, is refused without hashing.
    for from in ["10.0.0.66", "10.0.0.7"] {
        match a.login("cible".into(), PW.into(), ip(from)).await {
            Err(AuthError::AccountLocked { retry_after }) => assert!(retry_after > 800),
            other => panic!("expected a lock, got {:?}", other.err()),
        }
    }
    // Names are case-insensitive for the lock.
    assert!(matches!(
        a.login("CIBLE".into(), PW.into(), attacker).await,
        Err(AuthError::AccountLocked { .. })
    ));
    // Another user, even from the attacker's address, logs in.
    let s = a
        .login("collegue".into(), PW.into(), attacker)
        .await
        .unwrap();
    assert_eq!(s.csrf, csrf_token(&s.token));
    let p = a
        .session(s.token.clone(), Some(s.csrf.clone()))
        .await
        .unwrap();
    assert_eq!(p.name(), "collegue");
    assert!(matches!(
        a.session(s.token.clone(), Some("forged".into())).await,
        Err(AuthError::Csrf)
    ));
    a.logout(s.token.clone()).await.unwrap();
    assert!(matches!(
        a.session(s.token, None).await,
        Err(AuthError::BadSession)
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn locks_expire_and_addresses_get_blocked() {
    let cfg = AuthConfig {
        lockout_failures: 3,
        lockout_secs: 1,
        address_failures: 5,
        ..AuthConfig::default()
    };
    let (_d, a) = auth_with(cfg, QuotasConfig::default());
    a.add_user("agent".into(), Role::Agent, None, Some(PW.into()))
        .await
        .unwrap();
    let from = ip("192.168.0.5");
    for _ in 0..3 {
        let _ = a.login("agent".into(), "nope nope nope".into(), from).await;
    }
    assert!(matches!(
        a.login("agent".into(), PW.into(), from).await,
        Err(AuthError::AccountLocked { .. })
    ));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(
        a.login("agent".into(), PW.into(), from).await.is_ok(),
        "lock over"
    );
    // Spraying many names from one address blocks the address.
    let sprayer = ip("192.168.0.99");
    for i in 0..5 {
        let _ = a
            .login(format!("user{i}"), "nope nope nope".into(), sprayer)
            .await;
    }
    assert!(matches!(
        a.login("agent".into(), PW.into(), sprayer).await,
        Err(AuthError::AddressBlocked { .. })
    ));
    assert!(a.login("agent".into(), PW.into(), from).await.is_ok());
}

#[tokio::test(flavor = "multi_thread")]
async fn roles_keys_and_quotas() {
    let quotas = QuotasConfig {
        agent: RoleQuota {
            requests_per_minute: 3,
            tokens_per_day: 0,
            concurrent_requests: 0,
        },
        ..QuotasConfig::default()
    };
    let (_d, a) = auth_with(AuthConfig::default(), quotas);
    a.add_user(
        "agent".into(),
        Role::Agent,
        Some("Urbanisme".into()),
        Some(PW.into()),
    )
    .await
    .unwrap();
    a.add_user("dpo".into(), Role::Dpo, None, Some(PW.into()))
        .await
        .unwrap();
    assert!(matches!(
        a.add_user("bad".into(), Role::Agent, Some("x\ny".into()), None)
            .await,
        Err(AuthError::Store(StoreError::BadService(_)))
    ));
    assert!(matches!(
        a.with_store(|s| s.user("bad")).await,
        Err(AuthError::Store(StoreError::NoUser(_)))
    ));
    let (key, _) = a
        .with_store(|s| s.create_key("agent", "script", Some("m1"), None))
        .await
        .unwrap();
    let who = a.bearer(key.clone()).await.unwrap();
    assert_eq!(who.role(), Role::Agent);
    assert!(who.check_model("m1").is_ok());
    assert!(matches!(
        who.check_model("m2"),
        Err(AuthError::ModelScope(_))
    ));
    assert!(who.require(&[Role::Admin], "manage users").is_err());
    for _ in 0..3 {
        a.admit(&who).await.unwrap();
    }
    match a.admit(&who).await {
        Err(AuthError::Quota { retry_after, .. }) => assert!((1..=60).contains(&retry_after)),
        other => panic!("{:?}", other.err()),
    }
    // A per-user override beats the role default; tokens per day count usage rows.
    a.with_store(|s| s.set_quota("agent", Some(100), Some(50)))
        .await
        .unwrap();
    a.admit(&who).await.unwrap();
    let uid = who.user().unwrap().id;
    a.with_store(move |s| {
        s.record_usage(&UsageRecord {
            user_id: Some(uid),
            key_id: None,
            model: "m1".into(),
            prompt_tokens: 40,
            completion_tokens: 10,
            duration_ms: 1,
            status: 200,
        })
    })
    .await
    .unwrap();
    assert!(matches!(
        a.admit(&who).await,
        Err(AuthError::Quota {
            what: "tokens per day",
            ..
        })
    ));
    let (_, view) = a.quota_view("agent".into()).await.unwrap();
    assert_eq!(
        (view.rpm_override, view.tokens_override, view.tokens_today),
        (Some(100), Some(50), 50)
    );
    // DPO may not use the model.
    let (dkey, _) = a
        .with_store(|s| s.create_key("dpo", "k", None, None))
        .await
        .unwrap();
    let dpo = a.bearer(dkey).await.unwrap();
    assert!(matches!(
        a.admit(&dpo).await,
        Err(AuthError::Forbidden { .. })
    ));
    // Revoked, unknown, disabled.
    let id = who.key_id().unwrap();
    a.with_store(move |s| s.revoke_key(id)).await.unwrap();
    assert!(matches!(a.bearer(key).await, Err(AuthError::RevokedKey)));
    assert!(matches!(
        a.bearer("civia-nope".into()).await,
        Err(AuthError::InvalidKey)
    ));
    assert!(matches!(
        a.bearer("x".repeat(10_000)).await,
        Err(AuthError::InvalidKey)
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn trial_key_makes_a_trial_admin_and_ends_pairing() {
    let (_d, a) = auth();
    assert!(a.pairing_code().is_some());
    a.install_trial_key("cle-essai".into()).await.unwrap();
    assert!(a.pairing_code().is_none());
    let who = a.bearer("cle-essai".into()).await.unwrap();
    assert_eq!((who.name(), who.role()), (TRIAL_ADMIN, Role::Admin));
    a.install_trial_key("autre-cle".into()).await.unwrap();
    assert!(matches!(
        a.bearer("cle-essai".into()).await,
        Err(AuthError::RevokedKey)
    ));
    assert!(a.bearer("autre-cle".into()).await.is_ok());
}

/// One agent cannot fill the model's queue: at most `concurrent_requests` of their requests
/// are admitted at once; a place comes back when a request ends (its guard is dropped).
#[tokio::test(flavor = "multi_thread")]
async fn one_user_has_a_bounded_number_of_requests_in_flight() {
    let quotas = QuotasConfig {
        agent: RoleQuota {
            requests_per_minute: 0,
            tokens_per_day: 0,
            concurrent_requests: 2,
        },
        ..QuotasConfig::default()
    };
    let (_d, a) = auth_with(AuthConfig::default(), quotas);
    for name in ["agent", "other"] {
        a.add_user(name.into(), Role::Agent, None, Some(PW.into()))
            .await
            .unwrap();
    }
    let principal = |name: &'static str| {
        let a = &a;
        async move {
            let (key, _) = a
                .with_store(move |s| s.create_key(name, "k", None, None))
                .await
                .unwrap();
            a.bearer(key).await.unwrap()
        }
    };
    let (who, other) = (principal("agent").await, principal("other").await);
    let first = a.admit(&who).await.unwrap();
    let _second = a.admit(&who).await.unwrap();
    match a.admit(&who).await {
        Err(AuthError::Quota { what, retry_after }) => {
            assert_eq!(what, "concurrent requests");
            assert!(retry_after >= 1);
        }
        other => panic!(
            "a third request in flight was admitted: {:?}",
            other.is_ok()
        ),
    }
    // Another agent is not slowed down.
    let _o = a.admit(&other).await.unwrap();
    drop(first);
    assert!(a.admit(&who).await.is_ok(), "the place came back");
}
