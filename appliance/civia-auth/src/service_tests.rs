//! The application services against a real store: the last-admin guard, key rules, the
//! usage report's bounds, the DSR erasure and the register's CSV.

use super::*;
use civia_config::{AuthConfig, QuotasConfig};

const PW: &str = "correct horse battery";

fn auth() -> (tempfile::TempDir, Auth) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("civia.db")).unwrap();
    let a = Auth::new(store, AuthConfig::default(), QuotasConfig::default()).unwrap();
    (dir, a)
}

async fn add(a: &Auth, name: &str, role: Role, service: Option<&str>) -> User {
    let (u, _) = a
        .add_user(name.into(), role, service.map(Into::into), Some(PW.into()))
        .await
        .unwrap();
    u
}

fn change(f: impl FnOnce(&mut UserChange)) -> UserChange {
    let mut c = UserChange::default();
    f(&mut c);
    c
}

#[tokio::test(flavor = "multi_thread")]
async fn the_last_active_admin_is_never_removed_disabled_demoted_or_erased() {
    let (_d, a) = auth();
    add(&a, "maire", Role::Admin, None).await;
    add(&a, "agent", Role::Agent, None).await;
    let last = |r: Result<_>| matches!(r, Err(AuthError::LastAdmin));
    assert!(last(a.delete_user("maire".into()).await.map(|_| ())));
    let demote = change(|c| c.role = Some(Role::Agent));
    assert!(last(
        a.change_user("maire".into(), demote).await.map(|_| ())
    ));
    let disable = change(|c| c.disabled = Some(true));
    assert!(last(
        a.change_user("maire".into(), disable).await.map(|_| ())
    ));
    assert!(last(a.erase_user("maire".into(), true).await.map(|_| ())));
    // A refused change changes nothing, not even the fields checked before the guard.
    let both = change(|c| {
        c.role = Some(Role::Dpo);
        c.service = Some(Some("Accueil".into()));
    });
    assert!(last(a.change_user("maire".into(), both).await.map(|_| ())));
    let u = a.user("maire".into()).await.unwrap();
    assert_eq!((u.role, u.disabled, u.service), (Role::Admin, false, None));
    // Erasing the history alone is allowed; changes that keep the admin too.
    let e = a.erase_user("maire".into(), false).await.unwrap();
    assert!(!e.account_deleted && e.conversations == 0);
    let keep = change(|c| c.role = Some(Role::Admin));
    a.change_user("maire".into(), keep).await.unwrap();
    // Other users go freely; with a second admin, the first may go too.
    assert!(
        a.erase_user("agent".into(), true)
            .await
            .unwrap()
            .account_deleted
    );
    add(&a, "adjoint", Role::Admin, None).await;
    let demote = change(|c| c.role = Some(Role::Agent));
    let (u, pw) = a.change_user("maire".into(), demote).await.unwrap();
    assert_eq!((u.role, pw), (Role::Agent, None));
    assert!(last(a.delete_user("adjoint".into()).await.map(|_| ())));
    a.delete_user("maire".into()).await.unwrap();
    assert!(matches!(
        a.delete_user("maire".into()).await,
        Err(AuthError::Store(StoreError::NoUser(_)))
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reset_password_is_generated_and_checked_before_anything_changes() {
    let (_d, a) = auth();
    add(&a, "agent", Role::Agent, None).await;
    let reset = change(|c| c.reset_password = true);
    let (_, pw) = a.change_user("agent".into(), reset).await.unwrap();
    let pw = pw.expect("generated");
    assert!(a
        .with_store(move |s| s.verify_password("agent", &pw))
        .await
        .unwrap()
        .is_some());
    let weak = change(|c| {
        c.password = Some("court".into());
        c.role = Some(Role::Dpo);
    });
    assert!(matches!(
        a.change_user("agent".into(), weak).await,
        Err(AuthError::Store(StoreError::WeakPassword(_)))
    ));
    assert_eq!(a.user("agent".into()).await.unwrap().role, Role::Agent);
}

#[test]
fn key_expiry_bounds() {
    let t = 1_000_000;
    for bad in [0, MAX_KEY_DAYS, u32::MAX] {
        assert!(
            matches!(
                key_expiry(Some(bad), t),
                Err(AuthError::Invalid { param: "expires_in_days", ref message })
                    if message == "`expires_in_days` must be between 1 and 3649."
            ),
            "{bad}"
        );
    }
    assert_eq!(key_expiry(Some(1), t).unwrap(), Some(t + 86_400));
    assert_eq!(
        key_expiry(Some(MAX_KEY_DAYS - 1), t).unwrap(),
        Some(t + 3649 * 86_400)
    );
    assert_eq!(key_expiry(None, t).unwrap(), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_are_scoped_to_served_models_and_revoked_once() {
    let (_d, a) = auth();
    let agent = add(&a, "agent", Role::Agent, None).await;
    let served = vec!["civia-chat".to_string(), "civia-speech".to_string()];
    let req = |model: Option<&str>, days| KeyRequest {
        user: "agent".into(),
        name: None,
        model: model.map(Into::into),
        expires_in_days: days,
    };
    match a.create_key(req(Some("gpt-4"), None), &served).await {
        Err(AuthError::UnknownModel { asked, served }) => {
            assert_eq!((asked.as_str(), served.as_str()), ("gpt-4", "civia-chat"))
        }
        other => panic!("{:?}", other.map(|k| k.info)),
    }
    assert!(matches!(
        a.create_key(req(None, Some(0)), &served).await,
        Err(AuthError::Invalid {
            param: "expires_in_days",
            ..
        })
    ));
    assert!(
        a.keys(None).await.unwrap().is_empty(),
        "refusals create nothing"
    );
    let k = a
        .create_key(req(Some("civia-speech"), Some(30)), &served)
        .await
        .unwrap();
    assert_eq!(k.owner, agent.id);
    assert_eq!(k.info.name, "default");
    assert_eq!(k.info.model_scope.as_deref(), Some("civia-speech"));
    let exp = k.info.expires_at.unwrap() - now();
    assert!((30 * 86_400 - 5..=30 * 86_400).contains(&exp), "{exp}");
    assert_eq!(a.keys(Some("agent".into())).await.unwrap().len(), 1);
    assert!(matches!(
        a.keys(Some("nobody".into())).await,
        Err(AuthError::Store(StoreError::NoUser(_)))
    ));
    a.revoke_key(k.info.id).await.unwrap();
    assert!(matches!(
        a.revoke_key(k.info.id).await,
        Err(AuthError::KeyNotFound(id)) if id == k.info.id
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn quotas_and_usage_report_bounds() {
    let (_d, a) = auth();
    add(&a, "agent", Role::Agent, None).await;
    assert!(matches!(
        a.set_quota("agent".into(), None, Some(u64::MAX)).await,
        Err(AuthError::Invalid {
            param: "tokens_per_day",
            ..
        })
    ));
    let (_, q) = a.set_quota("agent".into(), Some(7), None).await.unwrap();
    assert_eq!(
        (q.rpm_override, q.effective.requests_per_minute),
        (Some(7), 7)
    );
    for days in [0, MAX_REPORT_DAYS + 1] {
        assert!(matches!(
            a.usage_report(Some(days), Some("agent")).await,
            Err(AuthError::Invalid { param: "days", .. })
        ));
    }
    assert!(matches!(
        a.usage_report(None, Some("agent")).await,
        Err(AuthError::Invalid { param: "by", .. })
    ));
    let r = a.usage_report(None, None).await.unwrap();
    assert_eq!((r.group, r.to - r.from), (UsageGroup::Model, 30 * 86_400));
    let r = a.usage_report(Some(1), Some("service")).await.unwrap();
    assert_eq!(r.group, UsageGroup::Service);
}

#[test]
fn dsr_reasons() {
    assert_eq!(
        dsr_reason(Some("  courrier 12 ".into())).unwrap(),
        "courrier 12"
    );
    for bad in [
        None,
        Some(" ".into()),
        Some("a\nb".into()),
        Some("x".repeat(201)),
    ] {
        assert!(matches!(
            dsr_reason(bad),
            Err(AuthError::Invalid {
                param: "reason",
                ..
            })
        ));
    }
}

#[test]
fn csv_fields_neutralise_formulas() {
    assert_eq!(csv_field("Dupont"), "\"Dupont\"");
    assert_eq!(csv_field("=SUM(A1)"), "\"'=SUM(A1)\"");
    assert_eq!(csv_field("+33"), "\"'+33\"");
    assert_eq!(csv_field("-1"), "\"'-1\"");
    assert_eq!(csv_field("@cmd"), "\"'@cmd\"");
    assert_eq!(csv_field("a \"b\""), "\"a \"\"b\"\"\"");
    assert_eq!(csv_field(""), "\"\"");
}

#[tokio::test(flavor = "multi_thread")]
async fn register_and_user_data_from_a_real_store() {
    let (_d, a) = auth();
    let formula = "=HYPERLINK(\"http://x\")";
    let u = add(&a, "-agent", Role::Agent, Some(formula)).await;
    let (c, at) = a.charter_for(Some(u.id)).await.unwrap();
    assert_eq!(at, None);
    let who = Principal::User {
        user: u.clone(),
        key_id: None,
        model_scope: None,
        session: true,
        own: false,
    };
    let (uid, channel) = charter_signer(&who).unwrap();
    assert_eq!((uid, channel), (u.id, "web"));
    assert!(matches!(
        charter_signer(&Principal::LocalAdmin),
        Err(AuthError::LocalAdminCharter)
    ));
    assert!(a
        .accept_charter(uid, c.version, channel)
        .await
        .unwrap()
        .is_some());
    let reg = a.charter_register().await.unwrap();
    assert_eq!((reg.accepted_current, reg.active_users), (1, 1));
    let csv = register_csv(&reg.rows);
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("utilisateur,role,service,version,acceptee_le,canal")
    );
    let row = lines.next().unwrap();
    assert!(
        row.starts_with("\"'-agent\",agent,\"'=HYPERLINK(\"\"http://x\"\")\",1,"),
        "{row}"
    );
    assert!(row.ends_with("Z,web"), "{row}");
    let d = a.user_data(u.clone()).await.unwrap();
    assert_eq!(d.user, u);
    assert_eq!(d.acceptances.len(), 1);
    assert!(d.keys.is_empty() && d.conversations.is_empty() && d.usage.is_empty());
    let e = a.erase_user("-agent".into(), true).await.unwrap();
    assert_eq!(e.user_id, u.id);
    assert!(a.user("-agent".into()).await.is_err());
}
