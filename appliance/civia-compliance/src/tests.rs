use super::*;
use serde_json::Value;

/// A box with every measure enabled and every user having accepted the charter.
fn full() -> Snapshot {
    Snapshot {
        generated_at: "2025-03-04T09:30:00Z".to_string(),
        box_version: "0.1.0".to_string(),
        commune: Some("Saint-Malo-de-Guersac".to_string()),
        controller_contact: Some("dpo@mairie.example.fr".to_string()),
        models: vec![ModelInfo {
            id: "mistral-small-3.2".to_string(),
            sha256: "ab".repeat(32),
            licence: Some("Apache-2.0".to_string()),
            provider: Some("Mistral AI".to_string()),
            dossier_present: true,
        }],
        audit: AuditInfo {
            enabled: true,
            retention_months: 6,
            retention_justification: None,
            chain_verified: Some(true),
            signed_segments: true,
            journald_mirror: true,
        },
        history: HistoryInfo {
            enabled: true,
            retention_days: 30,
        },
        security: SecurityInfo {
            tls_lan: true,
            lan_only_sources: vec!["192.168.10.0/24".to_string()],
            egress_default_zero: true,
            disk_encryption: Measure::Enabled,
            tpm: Measure::Enabled,
            api_keys_hashed: true,
            login_throttling: true,
            signed_updates: true,
            admin_socket_local_only: true,
        },
        guard: GuardInfo {
            pii_detection: true,
            max_prompt_chars: 32_000,
            max_answer_tokens: 2_048,
            system_prompt_leak_filter: true,
            ai_marking: true,
        },
        charter: CharterInfo {
            version: 2,
            updated_at: Some("2025-02-01T00:00:00Z".to_string()),
            users_accepted_current: 14,
            users_total: 14,
        },
        users: UserCounts {
            agents: 12,
            admins: 1,
            dpos: 1,
            integrators: 0,
        },
    }
}

/// The items of the section `id` of a document's JSON.
fn section<'a>(doc: &'a Value, id: &str) -> &'a Value {
    let sections = doc["sections"].as_array().unwrap();
    &sections.iter().find(|s| s["id"] == id).unwrap()["items"]
}

/// The item (or measure) `id` in a JSON array.
fn find<'a>(items: &'a Value, id: &str) -> &'a Value {
    let items = items.as_array().unwrap();
    items.iter().find(|i| i["id"] == id).unwrap_or(&Value::Null)
}

/// The ids of the measures in a JSON array (items of any other type are skipped).
fn ids(items: &Value) -> Vec<&str> {
    let items = items.as_array().unwrap().iter();
    let measures = items.filter(|i| i.get("type").is_none_or(|t| t == "measure"));
    measures.map(|i| i["id"].as_str().unwrap()).collect()
}

/// The Markdown from the `## heading` line to the next `## ` heading.
fn md_section<'a>(md: &'a str, heading: &str) -> &'a str {
    let rest = &md[md.find(&format!("\n## {heading}\n")).unwrap() + 1..];
    &rest[..rest[3..].find("\n## ").map_or(rest.len(), |e| e + 4)]
}

fn state(s: &Snapshot, id: &str) -> CheckState {
    deployer_checklist(s).check(id).unwrap().state
}

const IN_PLACE: &str = "Mesures de sécurité en place";
const TO_COMPLETE: &str = "Mesures à compléter ou non vérifiées";
const ALL_MEASURES: &str = "tls_lan lan_only egress_default_zero disk_encryption tpm \
    admin_socket_local_only api_keys_hashed login_throttling signed_updates audit_log \
    audit_chain_verified audit_signed_segments audit_journald_mirror pii_detection \
    length_limits system_prompt_leak_filter ai_marking charter_accepted";

#[test]
fn register_lists_every_enabled_measure_and_nothing_to_complete() {
    let doc = register_entry(&full());
    let json = doc.to_json();
    let in_place = section(&json, "measures_in_place");
    assert_eq!(
        ids(in_place),
        ALL_MEASURES.split_whitespace().collect::<Vec<_>>()
    );
    let mut statuses = in_place
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "measure");
    assert!(statuses.clone().count() == 18 && statuses.all(|i| i["status"] == "enabled"));
    assert!(ids(section(&json, "measures_to_complete")).is_empty());

    let md = doc.to_markdown();
    assert!(!md_section(&md, TO_COMPLETE).contains("- **"));
    assert!(!md.contains("(non vérifiée)") && !md.contains("(à compléter)"));
    assert!(md_section(&md, IN_PLACE).contains("**Chiffrement du disque** (en place)"));
}

#[test]
fn an_unknown_measure_is_listed_as_unverified_never_as_in_place() {
    let mut s = full();
    s.security.disk_encryption = Measure::Unknown;
    let doc = register_entry(&s);
    let json = doc.to_json();
    assert!(!ids(section(&json, "measures_in_place")).contains(&"disk_encryption"));
    let disk = find(section(&json, "measures_to_complete"), "disk_encryption");
    assert_eq!(
        (&disk["type"], &disk["status"]),
        (&"measure".into(), &"unknown".into())
    );
    let md = doc.to_markdown();
    assert!(!md_section(&md, IN_PLACE).contains("Chiffrement du disque"));
    assert!(md_section(&md, TO_COMPLETE)
        .contains("**Chiffrement du disque** (non vérifiée) : L'état du chiffrement"));

    // The same holds in the DPIA: a gap, and a point to complete.
    let dpia = dpia_kit(&s).to_json();
    let risk = find(section(&dpia, "risks"), "illegitimate_access");
    assert!(!ids(&risk["measures"]).contains(&"disk_encryption"));
    assert!(ids(&risk["gaps"]).contains(&"disk_encryption"));
    assert!(section(&dpia, "to_complete")
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["text"]
            == "Mesure « Chiffrement du disque » à vérifier : l'état du chiffrement du disque \
            n'a pas pu être vérifié."));

    // And the security item of the checklist is not done.
    assert_eq!(state(&s, "rgpd_art32_security"), CheckState::NonVerifie);
    s.security.tpm = Measure::Disabled;
    assert_eq!(state(&s, "rgpd_art32_security"), CheckState::AFaire);
}

#[test]
fn audit_dependent_measures_fall_with_the_audit_log() {
    let mut s = full();
    s.audit.enabled = false;
    let json = register_entry(&s).to_json();
    let in_place = ids(section(&json, "measures_in_place"));
    assert!(
        in_place.iter().all(|id| !id.starts_with("audit_")),
        "{in_place:?}"
    );
    s.audit.enabled = true;
    s.audit.chain_verified = None;
    let json = register_entry(&s).to_json();
    let chain = find(
        section(&json, "measures_to_complete"),
        "audit_chain_verified",
    );
    assert_eq!(chain["status"], "unknown");
}

#[test]
fn empty_lan_sources_are_unverified_not_in_place() {
    let mut s = full();
    s.security.lan_only_sources.clear();
    let json = register_entry(&s).to_json();
    assert_eq!(
        find(section(&json, "measures_to_complete"), "lan_only")["status"],
        "unknown"
    );
}

#[test]
fn art4_is_done_only_when_every_active_user_accepted_the_current_charter() {
    let mut s = full();
    let charter_items = ["art4_literacy", "art26_7_workers", "art26_2_oversight"];
    for id in charter_items {
        assert_eq!(state(&s, id), CheckState::Fait, "{id}");
    }
    s.charter.users_accepted_current = 13;
    for id in charter_items {
        assert_eq!(state(&s, id), CheckState::AFaire, "{id}");
    }
    let doc = deployer_checklist(&s);
    let ev = &doc.check("art4_literacy").unwrap().evidence;
    assert!(ev.contains("13 utilisateurs sur 14"), "{ev}");

    s.charter.users_accepted_current = 0;
    s.charter.users_total = 0;
    assert_ne!(state(&s, "art4_literacy"), CheckState::Fait);
    // Inconsistent counts are not taken as done.
    s.charter.users_accepted_current = 15;
    s.charter.users_total = 14;
    assert_eq!(state(&s, "art4_literacy"), CheckState::NonVerifie);
}

#[test]
fn art26_6_needs_the_audit_log_and_six_months() {
    let mut s = full();
    assert_eq!(state(&s, "art26_6_logs"), CheckState::Fait);
    s.audit.retention_months = 5;
    assert_eq!(state(&s, "art26_6_logs"), CheckState::AFaire);
    s.audit.retention_months = 12;
    assert_eq!(state(&s, "art26_6_logs"), CheckState::Fait);
    s.audit.enabled = false;
    assert_eq!(state(&s, "art26_6_logs"), CheckState::AFaire);
    assert_eq!(state(&s, "art26_5_monitoring"), CheckState::AFaire);
}

#[test]
fn art50_follows_ai_marking() {
    let mut s = full();
    assert_eq!(state(&s, "art50_transparency"), CheckState::Fait);
    s.guard.ai_marking = false;
    assert_eq!(state(&s, "art50_transparency"), CheckState::AFaire);
    assert_eq!(state(&s, "art26_2_oversight"), CheckState::AFaire);
}

#[test]
fn what_the_box_cannot_see_is_never_done() {
    let s = full();
    assert_eq!(state(&s, "art26_5_monitoring"), CheckState::NonVerifie);
    assert_eq!(state(&s, "art26_7_representatives"), CheckState::NonVerifie);
    assert_eq!(state(&s, "rgpd_art30_register"), CheckState::AFaire);
    assert_eq!(state(&s, "rgpd_art35_dpia"), CheckState::AFaire);
    assert_eq!(state(&s, "rgpd_art32_security"), CheckState::Fait);
}

#[test]
fn art26_1_needs_a_dossier_for_every_model() {
    let mut s = full();
    assert_eq!(state(&s, "art26_1_instructions"), CheckState::Fait);
    let mut other = s.models[0].clone();
    other.dossier_present = false;
    s.models.push(other);
    assert_eq!(state(&s, "art26_1_instructions"), CheckState::AFaire);
    s.models.clear();
    assert_eq!(state(&s, "art26_1_instructions"), CheckState::AFaire);
}

#[test]
fn checklist_items_serialise_with_their_state_names() {
    let json = deployer_checklist(&full()).to_json();
    let art4 = find(section(&json, "ai_act"), "art4_literacy");
    assert_eq!(
        (&art4["type"], &art4["state"]),
        (&"check".into(), &"done".into())
    );
    assert_eq!(art4["article"], "AI Act, art. 4");
    assert!(art4["evidence"]
        .as_str()
        .unwrap()
        .contains("14 utilisateurs actifs"));
    let rep = find(section(&json, "ai_act"), "art26_7_representatives");
    assert_eq!(rep["state"], "unknown");
    assert_eq!(
        find(section(&json, "rgpd"), "rgpd_art35_dpia")["state"],
        "todo"
    );
    // The derived enum serialisations agree with the JSON renderer.
    for st in [CheckState::Fait, CheckState::AFaire, CheckState::NonVerifie] {
        assert_eq!(serde_json::to_value(st).unwrap(), st.as_str());
    }
    for m in [Measure::Enabled, Measure::Disabled, Measure::Unknown] {
        assert_eq!(serde_json::to_value(m).unwrap(), m.as_str());
    }
}

const HOSTILE: &str = "<script>alert(1)</script>\n# titre";

#[test]
fn hostile_strings_are_escaped_in_markdown_and_intact_in_json() {
    let mut s = full();
    s.commune = Some(HOSTILE.to_string());
    s.audit.retention_months = 14;
    s.audit.retention_justification = Some("**gras** | cellule\n- liste".to_string());
    s.models[0].id = "[lien](javascript:alert(1))".to_string();
    s.controller_contact = Some("<img src=x onerror=alert(1)>".to_string());
    for kind in DocumentKind::ALL {
        let doc = render(kind, &s);
        let md = doc.to_markdown();
        // No tag can open: every `<` is escaped.
        assert!(
            md.match_indices('<').all(|(i, _)| md[..i].ends_with('\\')),
            "{kind}"
        );
        assert!(
            !md.contains("\n# titre") && !md.contains("[lien]("),
            "{kind}"
        );
        assert!(
            md.contains(r"\<script\>alert(1)\</script\> \# titre"),
            "{kind}"
        );
        // The only level-1 heading is the title.
        assert_eq!(md.lines().filter(|l| l.starts_with("# ")).count(), 1);
        assert_eq!(doc.to_json()["commune"], HOSTILE);
    }
    let reg = register_entry(&s);
    let md = reg.to_markdown();
    assert!(md.contains(r"\*\*gras\*\* \| cellule - liste"));
    assert!(md.contains(r"Modèle « \[lien\](javascript:alert(1)) »"));
    let json = reg.to_json();
    let retention = section(&json, "retention")[0]["value"].as_str().unwrap();
    assert!(retention.ends_with("**gras** | cellule\n- liste"));
    let ident = section(&json, "identification").as_array().unwrap();
    assert!(ident
        .iter()
        .any(|i| i["label"] == "Modèle « [lien](javascript:alert(1)) »"));

    // A hostile model id cannot break a checklist table row.
    s.models[0].dossier_present = false;
    s.models[0].id = "a | b\n| x |".to_string();
    let md = deployer_checklist(&s).to_markdown();
    let row = md
        .lines()
        .find(|l| l.starts_with("| AI Act, art. 26.1 |"))
        .unwrap();
    // Four cells: three unescaped separators between them.
    assert_eq!(row.matches(" | ").count(), 3, "{row}");
}

#[test]
fn escape_markdown_covers_every_markup_character() {
    assert_eq!(escape_markdown("\\`*_[]<>#|"), r"\\\`\*\_\[\]\<\>\#\|");
    assert_eq!(escape_markdown("a\nb\r\nc\u{2028}d"), "a b  c d");
    let plain = "Données à caractère personnel (art. 9) : « aucune »";
    assert_eq!(escape_markdown(plain), plain);
}

#[test]
fn snapshot_round_trips_through_json() {
    let mut s = full();
    s.commune = None;
    s.security.tpm = Measure::Unknown;
    s.audit.chain_verified = None;
    let v = serde_json::to_value(&s).unwrap();
    assert_eq!(v["security"]["tpm"], "unknown");
    assert_eq!(v["security"]["disk_encryption"], "enabled");
    assert_eq!(v["commune"], Value::Null);
    assert_eq!(serde_json::from_value::<Snapshot>(v).unwrap(), s);
    let text = serde_json::to_string(&s).unwrap();
    assert_eq!(serde_json::from_str::<Snapshot>(&text).unwrap(), s);
}

#[test]
fn every_document_has_the_common_json_header_and_markdown_header() {
    let mut s = full();
    s.commune = None;
    s.controller_contact = None;
    for kind in DocumentKind::ALL {
        let doc = render(kind, &s);
        assert_eq!(doc.kind, kind);
        let json = doc.to_json();
        assert_eq!(json["kind"], kind.as_str());
        assert!(json["title"].as_str().is_some_and(|t| !t.is_empty()));
        assert_eq!(json["generated_at"], "2025-03-04T09:30:00Z");
        assert_eq!(json["box_version"], "0.1.0");
        assert_eq!(json["commune"], "[nom de la commune]");
        let sections = json["sections"].as_array().unwrap();
        assert!(!sections.is_empty());
        for sec in sections {
            assert!(sec["id"].is_string() && sec["heading"].is_string());
            let items = sec["items"].as_array().unwrap();
            assert!(!items.is_empty() && items.iter().all(|i| i["type"].is_string()));
        }

        let md = doc.to_markdown();
        assert!(md.starts_with("# "));
        assert!(md.contains("\n- **Commune :** \\[nom de la commune\\]\n"));
        assert!(md.contains("\n- **Date de génération :** 4 mars 2025 à 9 h 30 (UTC)\n"));
        assert!(md.contains("\n- **Version de Civia :** 0.1.0\n"));
        assert!(md.contains("\n> Ce document a été généré automatiquement à partir de la"));
    }
    let dpia = dpia_kit(&s).to_json();
    let todo = section(&dpia, "to_complete").as_array().unwrap();
    let first = "Indiquer le nom de la commune dans la configuration de la boîte.";
    assert_eq!(todo[0]["text"], first);
}

#[test]
fn document_kind_parses_its_three_names() {
    for kind in DocumentKind::ALL {
        assert_eq!(kind.as_str().parse::<DocumentKind>(), Ok(kind));
        assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
    }
    assert_eq!(
        "aipd".parse::<DocumentKind>(),
        Err(UnknownKind("aipd".to_string()))
    );
    assert!("Register".parse::<DocumentKind>().is_err());
}

#[test]
fn dpia_lists_the_five_risks_with_snapshot_measures() {
    let json = dpia_kit(&full()).to_json();
    let items = section(&json, "risks").as_array().unwrap();
    let risks: Vec<&Value> = items.iter().filter(|i| i["type"] == "risk").collect();
    let expected = [
        ("illegitimate_access", 11),
        ("unwanted_modification", 6),
        ("disappearance", 3),
        ("errors_and_bias", 3),
        ("individual_decisions", 3),
    ];
    assert_eq!(risks.len(), expected.len());
    for (r, (id, n)) in risks.iter().zip(expected) {
        assert_eq!(r["id"], id);
        // Every measure id of the risk exists, and all are enabled here.
        assert_eq!(ids(&r["measures"]).len(), n, "{id}");
        assert!(ids(&r["gaps"]).is_empty(), "{id}");
        assert_eq!(r["residual_risk"], "à évaluer par le DPO");
    }
    let flows = section(&json, "data_flows").as_array().unwrap();
    let no_egress = "Aucun flux sortant : la boîte n'établit aucune connexion vers l'extérieur.";
    assert!(flows.iter().any(|i| i["text"] == no_egress));
}

#[test]
fn without_egress_zero_no_absence_of_flows_is_claimed() {
    let mut s = full();
    s.security.egress_default_zero = false;
    for kind in DocumentKind::ALL {
        let md = render(kind, &s).to_markdown();
        assert!(!md.contains("aucune donnée ne quitte la boîte"), "{kind}");
        assert!(!md.contains("n'établit aucune connexion"), "{kind}");
    }
}

/// Prints the three documents for a reader to review (`cargo test -- --ignored --nocapture`).
#[test]
#[ignore]
fn print_documents() {
    let mut s = full();
    s.security.disk_encryption = Measure::Unknown;
    s.charter.users_accepted_current = 13;
    s.users.integrators = 1;
    for kind in DocumentKind::ALL {
        println!("{}\n", render(kind, &s).to_markdown());
    }
    let checklist = deployer_checklist(&s).to_json();
    println!("{}", serde_json::to_string_pretty(&checklist).unwrap());
}
