use super::*;

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&dir.path().join("civia.db")).unwrap();
    (dir, s)
}

#[test]
fn users_passwords_and_policy() {
    let (_d, s) = store();
    let u = s
        .add_user("marie.dupont", Role::Agent, "correct horse battery")
        .unwrap();
    assert_eq!(u.role, Role::Agent);
    assert!(matches!(
        s.add_user("marie.dupont", Role::Admin, "another good password"),
        Err(StoreError::UserExists(_))
    ));
    assert!(matches!(
        s.add_user("bad name!", Role::Agent, "long enough pw"),
        Err(StoreError::BadName(_))
    ));
    assert!(matches!(
        s.add_user("x", Role::Agent, "short"),
        Err(StoreError::WeakPassword(_))
    ));
    assert!(matches!(
        s.add_user("y", Role::Agent, &"a".repeat(20)),
        Err(StoreError::WeakPassword(_))
    ));
    assert!("wizard".parse::<Role>().is_err());
    assert_eq!(
        s.verify_password("marie.dupont", "correct horse battery")
            .unwrap(),
        Some(u.clone())
    );
    assert_eq!(
        s.verify_password("marie.dupont", "wrong password!!")
            .unwrap(),
        None
    );
    assert_eq!(
        s.verify_password("nobody", "correct horse battery")
            .unwrap(),
        None
    );
    s.set_password("marie.dupont", "a brand new passphrase")
        .unwrap();
    assert!(s
        .verify_password("marie.dupont", "a brand new passphrase")
        .unwrap()
        .is_some());
    s.set_disabled("marie.dupont", true).unwrap();
    assert_eq!(
        s.verify_password("marie.dupont", "a brand new passphrase")
            .unwrap(),
        None
    );
    // Only an Argon2id hash is stored.
    let stored: String = s
        .conn
        .query_row("SELECT password_hash FROM users", [], |r| r.get(0))
        .unwrap();
    assert!(stored.starts_with("$argon2id$") && !stored.contains("passphrase"));
}

#[test]
fn api_keys_are_hashed_expire_and_revoke() {
    let (_d, s) = store();
    s.add_user("jean", Role::Agent, "correct horse battery")
        .unwrap();
    let (key, info) = s
        .create_key("jean", "tableur", Some("mistral-7b"), None)
        .unwrap();
    assert!(key.starts_with("civia-") && key.len() == 6 + 64);
    assert!(key.starts_with(&info.prefix));
    let stored: String = s
        .conn
        .query_row("SELECT key_hash FROM api_keys", [], |r| r.get(0))
        .unwrap();
    assert_ne!(stored, key);
    match s.check_key(&key).unwrap() {
        KeyCheck::Valid {
            user, model_scope, ..
        } => {
            assert_eq!(user.name, "jean");
            assert_eq!(model_scope.as_deref(), Some("mistral-7b"));
        }
        other => panic!("{other:?}"),
    }
    assert!(s.keys(Some("jean")).unwrap()[0].last_used_at.is_some());
    assert_eq!(s.check_key("civia-00").unwrap(), KeyCheck::Unknown);
    assert!(s.revoke_key(info.id).unwrap());
    assert!(!s.revoke_key(info.id).unwrap());
    assert_eq!(s.check_key(&key).unwrap(), KeyCheck::Revoked);
    let (old, _) = s
        .create_key("jean", "ancienne", None, Some(now() - 1))
        .unwrap();
    assert_eq!(s.check_key(&old).unwrap(), KeyCheck::Expired);
    let (k3, _) = s.create_key("jean", "autre", None, None).unwrap();
    s.set_disabled("jean", true).unwrap();
    assert_eq!(s.check_key(&k3).unwrap(), KeyCheck::UserDisabled);
    assert_eq!(s.keys(None).unwrap().len(), 3);
}

#[test]
fn usage_is_metadata_aggregated_by_day_and_model() {
    let (_d, s) = store();
    let u = s
        .add_user("agent1", Role::Agent, "correct horse battery")
        .unwrap();
    for i in 0..3 {
        s.record_usage(&UsageRecord {
            user_id: Some(u.id),
            key_id: None,
            model: if i < 2 {
                "mistral".into()
            } else {
                "smollm".into()
            },
            prompt_tokens: 10,
            completion_tokens: 5,
            duration_ms: 120,
            status: 200,
        })
        .unwrap();
    }
    assert_eq!(s.tokens_since(u.id, now() - 60).unwrap(), 45);
    let days = s.usage_by_day(0, now() + 86400).unwrap();
    assert_eq!(days.len(), 2);
    assert_eq!(days[0].model, "mistral");
    assert_eq!(
        (
            days[0].requests,
            days[0].prompt_tokens,
            days[0].completion_tokens
        ),
        (2, 20, 10)
    );
    s.set_quota("agent1", Some(30), Some(100_000)).unwrap();
    assert_eq!(s.quota(u.id).unwrap(), (Some(30), Some(100_000)));
    s.set_quota("agent1", None, Some(5)).unwrap();
    assert_eq!(s.quota(u.id).unwrap(), (None, Some(5)));
}

#[test]
fn upgrade_from_version_1_keeps_data_and_newer_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("civia.db");
    {
        let mut conn = Connection::open(&path).unwrap();
        migrations::apply_up_to(&mut conn, "test", 1).unwrap();
        assert_eq!(migrations::version(&conn).unwrap(), 1);
        conn.execute(
            "INSERT INTO users (name, role, password_hash, created_at) VALUES ('ancien', 'admin', 'x', 1)",
            [],
        )
        .unwrap();
    }
    let s = Store::open(&path).unwrap();
    assert_eq!(
        s.schema_version().unwrap(),
        migrations::MIGRATIONS.len() as u32
    );
    assert_eq!(s.user("ancien").unwrap().role, Role::Admin);
    assert_eq!(
        s.user("ancien").unwrap().service,
        None,
        "v3 column added empty"
    );
    s.set_quota("ancien", Some(1), None).unwrap();
    let mode: String = s
        .conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    drop(s);
    // Reopening is idempotent.
    assert!(Store::open(&path).is_ok());
    // A file from newer software is not touched.
    let conn = Connection::open(&path).unwrap();
    conn.execute("UPDATE schema_version SET version = 99", [])
        .unwrap();
    drop(conn);
    assert!(matches!(
        Store::open(&path),
        Err(StoreError::TooNew { found: 99, .. })
    ));
}

#[test]
fn sessions_expire_and_check_csrf() {
    let (_d, s) = store();
    let u = s
        .add_user("agent2", Role::Agent, "correct horse battery")
        .unwrap();
    let (token, csrf) = s.create_session(u.id, 3600).unwrap();
    assert_eq!(
        s.check_session(&token, 600, None).unwrap().map(|u| u.name),
        Some("agent2".into())
    );
    assert_eq!(
        s.check_session(&token, 600, Some(&csrf))
            .unwrap()
            .map(|u| u.id),
        Some(u.id)
    );
    assert!(s
        .check_session(&token, 600, Some("forged"))
        .unwrap()
        .is_none());
    assert!(s.check_session("not-a-token", 600, None).unwrap().is_none());
    let stored: String = s
        .conn
        .query_row("SELECT token_hash FROM sessions", [], |r| r.get(0))
        .unwrap();
    assert_ne!(stored, token);
    // Idle too long: the session ends.
    s.conn
        .execute("UPDATE sessions SET last_seen_at = last_seen_at - 1000", [])
        .unwrap();
    assert!(s.check_session(&token, 600, None).unwrap().is_none());
    assert!(
        s.check_session(&token, 100_000, None).unwrap().is_none(),
        "ended sessions stay ended"
    );
    // Past the absolute expiry, however active.
    let (t2, _) = s.create_session(u.id, 0).unwrap();
    assert!(s.check_session(&t2, 600, None).unwrap().is_none());
    let (t3, _) = s.create_session(u.id, 3600).unwrap();
    s.end_session(&t3).unwrap();
    assert!(s.check_session(&t3, 600, None).unwrap().is_none());
}

#[test]
fn user_admin_operations_and_reports_per_service() {
    let (_d, s) = store();
    assert_eq!(s.user_count().unwrap(), 0);
    s.add_user("chef", Role::Admin, "correct horse battery")
        .unwrap();
    let a = s
        .add_user("agent.etat-civil", Role::Agent, "correct horse battery")
        .unwrap();
    assert_eq!(
        (s.user_count().unwrap(), s.active_admins().unwrap()),
        (2, 1)
    );
    s.set_service("agent.etat-civil", Some("État civil"))
        .unwrap();
    assert!(matches!(
        s.set_service("agent.etat-civil", Some("a\nb")),
        Err(StoreError::BadService(_))
    ));
    // Service peers follow the service as it is now.
    let b = s
        .add_user("agent.urbanisme", Role::Agent, "correct horse battery")
        .unwrap();
    assert_eq!(s.service_peers(a.id).unwrap(), vec![a.id]);
    assert!(s.service_peers(b.id).unwrap().is_empty());
    s.set_service("agent.urbanisme", Some("État civil"))
        .unwrap();
    assert_eq!(s.service_peers(b.id).unwrap(), vec![a.id, b.id]);
    s.set_service("agent.urbanisme", Some("Urbanisme")).unwrap();
    assert_eq!(s.service_peers(a.id).unwrap(), vec![a.id]);
    s.delete_user("agent.urbanisme").unwrap();
    s.set_role("agent.etat-civil", Role::Dpo).unwrap();
    let u = s.user("agent.etat-civil").unwrap();
    assert_eq!(
        (u.role, u.service.as_deref()),
        (Role::Dpo, Some("État civil"))
    );
    for (user, n) in [(Some(a.id), 3), (None, 1)] {
        for _ in 0..n {
            s.record_usage(&UsageRecord {
                user_id: user,
                key_id: None,
                model: "m".into(),
                prompt_tokens: 2,
                completion_tokens: 1,
                duration_ms: 5,
                status: 200,
            })
            .unwrap();
        }
    }
    let rows = s.usage_by_service(0, now() + 86400).unwrap();
    let got: Vec<_> = rows
        .iter()
        .map(|r| (r.model.as_str(), r.requests))
        .collect();
    assert_eq!(got, [("(sans service)", 1), ("État civil", 3)]);
    let (k, _) = s
        .create_key("agent.etat-civil", "prog", None, None)
        .unwrap();
    s.delete_user("agent.etat-civil").unwrap();
    assert_eq!(s.check_key(&k).unwrap(), KeyCheck::Unknown);
    assert!(matches!(
        s.delete_user("agent.etat-civil"),
        Err(StoreError::NoUser(_))
    ));
    // Usage rows outlive the user, anonymous.
    assert_eq!(s.usage_by_day(0, now() + 86400).unwrap()[0].requests, 4);
}

#[test]
fn imported_trial_key_replaces_the_previous_one() {
    let (_d, s) = store();
    s.add_user("essai", Role::Admin, "correct horse battery")
        .unwrap();
    let id1 = s
        .import_key("essai", "CIVIA_DEV_API_KEY", "premiere-cle")
        .unwrap();
    assert_eq!(
        s.import_key("essai", "CIVIA_DEV_API_KEY", "premiere-cle")
            .unwrap(),
        id1
    );
    assert!(
        matches!(s.check_key("premiere-cle").unwrap(), KeyCheck::Valid { key_id, .. } if key_id == id1)
    );
    s.import_key("essai", "CIVIA_DEV_API_KEY", "seconde-cle")
        .unwrap();
    assert_eq!(s.check_key("premiere-cle").unwrap(), KeyCheck::Revoked);
    assert!(matches!(
        s.check_key("seconde-cle").unwrap(),
        KeyCheck::Valid { .. }
    ));
    // Going back to the first key brings it back.
    s.import_key("essai", "CIVIA_DEV_API_KEY", "premiere-cle")
        .unwrap();
    assert!(matches!(
        s.check_key("premiere-cle").unwrap(),
        KeyCheck::Valid { .. }
    ));
    assert_eq!(s.check_key("seconde-cle").unwrap(), KeyCheck::Revoked);
    assert!(matches!(
        s.create_key("essai", "", None, None),
        Err(StoreError::BadKeyName)
    ));
    assert_eq!(csrf_token("t").len(), 64);
    assert_ne!(csrf_token("t"), csrf_token("u"));
}

fn grep_dir(dir: &std::path::Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let data = std::fs::read(&p).unwrap();
        if data.windows(needle.len()).any(|w| w == needle) {
            hits.push(p.display().to_string());
        }
    }
    hits
}

#[test]
fn history_is_owner_only_and_erased_for_good() {
    let (dir, s) = store();
    let a = s
        .add_user("agent.a", Role::Agent, "correct horse battery")
        .unwrap();
    let b = s
        .add_user("agent.b", Role::Agent, "correct horse battery")
        .unwrap();
    let canary = "CANARI-7f3a9c-ne-doit-pas-survivre";
    let long = format!("{} {}", canary, "x".repeat(20_000)); // overflow pages too
    let id = new_conversation_id().unwrap();
    assert!(valid_conversation_id(&id));
    s.append_messages(
        a.id,
        &id,
        "Courrier\nau maire",
        &[
            NewMessage {
                role: "user",
                content: canary,
                model: None,
            },
            NewMessage {
                role: "assistant",
                content: &long,
                model: Some("m"),
            },
        ],
    )
    .unwrap();
    let id2 = new_conversation_id().unwrap();
    s.append_messages(
        a.id,
        &id2,
        "",
        &[NewMessage {
            role: "user",
            content: canary,
            model: None,
        }],
    )
    .unwrap();
    // The owner sees both; the other agent sees nothing and cannot append to it.
    let list = s.conversations(a.id).unwrap();
    assert_eq!(list.len(), 2);
    let (head, msgs) = s.conversation(a.id, &id).unwrap().unwrap();
    assert_eq!(head.title, "Courrier");
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[1].model.as_deref(), Some("m"));
    assert_eq!(
        s.conversations(a.id)
            .unwrap()
            .iter()
            .find(|c| c.id == id2)
            .unwrap()
            .title,
        "Conversation"
    );
    assert!(s.conversations(b.id).unwrap().is_empty());
    assert!(s.conversation(b.id, &id).unwrap().is_none());
    assert!(!s.owns_conversation(b.id, &id).unwrap());
    assert!(matches!(
        s.append_messages(
            b.id,
            &id,
            "t",
            &[NewMessage {
                role: "user",
                content: "x",
                model: None
            }]
        ),
        Err(StoreError::NoConversation(_))
    ));
    assert!(!s.delete_conversation(b.id, &id).unwrap());
    assert!(s.conversation(a.id, "conv-../../etc").unwrap().is_none());
    // Before erasure the canary is in the files; after, nowhere in the directory.
    assert!(!grep_dir(dir.path(), canary.as_bytes()).is_empty());
    assert!(s.delete_conversation(a.id, &id).unwrap());
    assert_eq!(s.delete_history(a.id).unwrap(), 1);
    assert!(s.conversations(a.id).unwrap().is_empty());
    assert_eq!(
        grep_dir(dir.path(), canary.as_bytes()),
        Vec::<String>::new()
    );
}

#[test]
fn history_expires_by_age() {
    let (_d, s) = store();
    let a = s
        .add_user("agent.a", Role::Agent, "correct horse battery")
        .unwrap();
    let id = new_conversation_id().unwrap();
    s.append_messages(
        a.id,
        &id,
        "t",
        &[NewMessage {
            role: "user",
            content: "vieux",
            model: None,
        }],
    )
    .unwrap();
    // Age the first message and the conversation by 31 days, then add a fresh message to a
    // second conversation.
    s.conn
        .execute("UPDATE messages SET ts = ts - 31 * 86400", [])
        .unwrap();
    s.conn
        .execute(
            "UPDATE conversations SET updated_at = updated_at - 31 * 86400",
            [],
        )
        .unwrap();
    let id2 = new_conversation_id().unwrap();
    s.append_messages(
        a.id,
        &id2,
        "t",
        &[NewMessage {
            role: "user",
            content: "récent",
            model: None,
        }],
    )
    .unwrap();
    let (c, m) = s.purge_history(now() - 30 * 86400).unwrap();
    assert_eq!((c, m), (1, 1));
    let left = s.conversations(a.id).unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id, id2);
    assert_eq!(s.purge_history(now() - 30 * 86400).unwrap(), (0, 0));
}

#[test]
fn charter_versions_and_register() {
    let (_d, s) = store();
    let a = s
        .add_user("agent.a", Role::Agent, "correct horse battery")
        .unwrap();
    s.add_user("agent.b", Role::Agent, "correct horse battery")
        .unwrap();
    let c1 = s.charter().unwrap();
    assert_eq!((c1.version, c1.text.as_str()), (1, DEFAULT_CHARTER));
    assert_eq!(s.accepted_at(a.id, 1).unwrap(), None);
    s.accept_charter(a.id, 1, "web").unwrap();
    s.accept_charter(a.id, 1, "web").unwrap(); // idempotent
    assert!(s.accepted_at(a.id, 1).unwrap().is_some());
    assert_eq!(s.charter_coverage().unwrap(), (1, 2));
    assert!(matches!(
        s.accept_charter(a.id, 1, "pigeon"),
        Err(StoreError::BadChannel(_))
    ));
    assert!(matches!(
        s.set_charter("  ", "admin"),
        Err(StoreError::BadCharter)
    ));
    assert!(matches!(
        s.set_charter("a\u{0}b", "admin"),
        Err(StoreError::BadCharter)
    ));
    assert!(matches!(
        s.set_charter(&"é".repeat(MAX_CHARTER_CHARS + 1), "admin"),
        Err(StoreError::BadCharter)
    ));
    let c2 = s.set_charter("Nouvelle charte\nligne 2", "admin").unwrap();
    assert_eq!((c2.version, c2.created_by.as_str()), (2, "admin"));
    assert_eq!(s.charter_coverage().unwrap(), (0, 2));
    assert!(matches!(
        s.accept_charter(a.id, 1, "web"),
        Err(StoreError::StaleCharter {
            given: 1,
            current: 2
        })
    ));
    s.accept_charter(a.id, 2, "api").unwrap();
    let reg = s.charter_register(None).unwrap();
    assert_eq!(
        reg.iter()
            .map(|r| (r.user.as_str(), r.version, r.channel.as_str()))
            .collect::<Vec<_>>(),
        [("agent.a", 1, "web"), ("agent.a", 2, "api")]
    );
    assert_eq!(s.charter_register(Some(a.id + 1)).unwrap(), vec![]);
    // Reopening does not add another default version.
    drop(s);
}

/// Audit pseudonyms are keyed on the user id: a new account must never get the id of a
/// deleted one, or it would inherit the deleted person's pseudonym (and audit trail).
#[test]
fn user_ids_are_never_reused() {
    let (d, s) = store();
    s.add_user("premier", Role::Agent, "correct horse battery")
        .unwrap();
    let gone = s
        .add_user("parti", Role::Agent, "correct horse battery")
        .unwrap();
    s.delete_user("parti").unwrap();
    let next = s
        .add_user("nouveau", Role::Agent, "correct horse battery")
        .unwrap();
    assert_ne!(next.id, gone.id, "the deleted account's id was given again");
    assert!(next.id > gone.id);
    // Also after reopening the file, and for a deleted id that is not the largest.
    drop(s);
    let s = Store::open(&d.path().join("civia.db")).unwrap();
    s.delete_user("nouveau").unwrap();
    let again = s
        .add_user("encore", Role::Agent, "correct horse battery")
        .unwrap();
    assert!(again.id > next.id);
}
