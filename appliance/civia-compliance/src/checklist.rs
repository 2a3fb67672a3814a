//! The AI Act deployer checklist, with the RGPD formalities attached to it.
//!
//! An item is `Fait` only when the snapshot proves it; `NonVerifie` when the box cannot
//! observe it; `AFaire` otherwise, and for what only the commune can carry out.

use crate::document::{field, para, CheckItem, CheckState, Document, DocumentKind, Item, Section};
use crate::measures::{self, all_users, charter_name};
use crate::snapshot::{Measure, Snapshot};
use crate::text;

fn check(id: &str, article: &str, title: &str, state: CheckState, evidence: String) -> Item {
    Item::Check(CheckItem {
        id: id.to_string(),
        article: article.to_string(),
        title: title.to_string(),
        state,
        evidence,
    })
}

/// A measure's state as a checklist state: only `Enabled` is done.
fn state_of(m: Measure) -> CheckState {
    match m {
        Measure::Enabled => CheckState::Fait,
        Measure::Disabled => CheckState::AFaire,
        Measure::Unknown => CheckState::NonVerifie,
    }
}

fn literacy(s: &Snapshot) -> Item {
    let c = measures::charter(s);
    let state = state_of(c.status);
    let mut evidence = c.detail;
    if state != CheckState::Fait {
        evidence.push_str(
            " Chaque utilisateur actif doit accepter la version en vigueur de la charte.",
        );
    }
    check(
        "art4_literacy",
        "AI Act, art. 4",
        "Maîtrise de l'IA par le personnel",
        state,
        evidence,
    )
}

fn instructions(s: &Snapshot) -> Item {
    let m = measures::model_dossiers(s);
    let mut evidence = m.detail;
    let present: Vec<String> = s
        .models
        .iter()
        .filter(|m| m.dossier_present)
        .map(|m| format!("« {} »", m.id))
        .collect();
    if m.status != Measure::Enabled && !present.is_empty() {
        evidence.push_str(&format!(" Présent pour : {}.", text::enumerate(&present)));
    }
    check(
        "art26_1_instructions",
        "AI Act, art. 26.1",
        "Utilisation conforme à la notice du fournisseur",
        state_of(m.status),
        evidence,
    )
}

fn oversight(s: &Snapshot) -> Item {
    let marking = s.guard.ai_marking;
    let charter = s.charter.fully_accepted();
    let state = if marking && charter {
        CheckState::Fait
    } else {
        CheckState::AFaire
    };
    let marking_text = if marking {
        "Chaque réponse est présentée comme un « Brouillon IA — à vérifier »."
    } else {
        "Le marquage des réponses (« Brouillon IA — à vérifier ») est désactivé."
    };
    let charter_text = format!(
        "La charte d'usage, qui impose la relecture humaine de tout texte avant usage, {}.",
        measures::acceptance(s)
    );
    check(
        "art26_2_oversight",
        "AI Act, art. 26.2",
        "Contrôle humain des textes produits",
        state,
        format!("{marking_text} {charter_text}"),
    )
}

fn monitoring(s: &Snapshot) -> Item {
    let a = &s.audit;
    let (state, evidence) = if !a.enabled {
        (
            CheckState::AFaire,
            "Le journal d'audit est désactivé : le fonctionnement de l'assistant ne peut pas \
             être surveillé."
                .to_string(),
        )
    } else if a.chain_verified == Some(false) {
        (
            CheckState::AFaire,
            "La dernière vérification de la chaîne du journal d'audit a relevé une anomalie ; \
             lancez « civia audit verify » et examinez l'entrée signalée."
                .to_string(),
        )
    } else {
        let mirror = if a.journald_mirror {
            ", copié dans le journal système"
        } else {
            ""
        };
        let chain = if a.chain_verified == Some(true) {
            "intégrité vérifiée"
        } else {
            "intégrité non vérifiée"
        };
        (
            CheckState::NonVerifie,
            format!(
                "Journal d'audit actif{mirror} ({chain}). La surveillance effective du \
                 fonctionnement et la procédure de signalement des incidents graves au \
                 fournisseur ne peuvent pas être constatées par la boîte : à confirmer par la \
                 commune."
            ),
        )
    };
    check(
        "art26_5_monitoring",
        "AI Act, art. 26.5",
        "Surveillance du fonctionnement et signalement des incidents",
        state,
        evidence,
    )
}

fn logs(s: &Snapshot) -> Item {
    let a = &s.audit;
    let months = text::count(u64::from(a.retention_months), "mois", "mois");
    let (state, evidence) = if !a.enabled {
        (
            CheckState::AFaire,
            "Le journal d'audit est désactivé : aucun journal n'est conservé.".to_string(),
        )
    } else if a.retention_months < 6 {
        (
            CheckState::AFaire,
            format!(
                "Le journal d'audit est conservé {months}, moins que les six mois requis : \
                 allongez la durée de conservation."
            ),
        )
    } else {
        (
            CheckState::Fait,
            format!("Le journal d'audit est actif et conservé {months}."),
        )
    };
    check(
        "art26_6_logs",
        "AI Act, art. 26.6",
        "Conservation des journaux pendant au moins six mois",
        state,
        evidence,
    )
}

fn workers(s: &Snapshot) -> Vec<Item> {
    let c = measures::charter(s);
    let evidence = if c.status == Measure::Enabled {
        format!(
            "Les agents sont informés de l'usage de l'assistant par la charte d'usage ({}), \
             acceptée par {}.",
            charter_name(s),
            all_users(s.charter.users_total)
        )
    } else {
        c.detail
    };
    vec![
        check(
            "art26_7_workers",
            "AI Act, art. 26.7",
            "Information des agents concernés",
            state_of(c.status),
            evidence,
        ),
        check(
            "art26_7_representatives",
            "AI Act, art. 26.7",
            "Information des représentants du personnel",
            CheckState::NonVerifie,
            "L'information préalable des représentants du personnel (comité social \
             territorial) ne peut pas être constatée par la boîte : à confirmer par la commune."
                .to_string(),
        ),
    ]
}

fn transparency(s: &Snapshot) -> Item {
    let (state, evidence) = if s.guard.ai_marking {
        (
            CheckState::Fait,
            "Chaque réponse est signalée comme générée par l'IA (en-tête \
             X-Civia-AI-Generated et mention « Brouillon IA — à vérifier »). Un texte publié \
             pour informer le public sans relecture humaine doit mentionner son origine \
             (art. 50.4).",
        )
    } else {
        (
            CheckState::AFaire,
            "Le marquage des contenus générés est désactivé : réactivez-le dans la \
             configuration de la boîte.",
        )
    };
    check(
        "art50_transparency",
        "AI Act, art. 50",
        "Transparence des contenus générés par l'IA",
        state,
        evidence.to_string(),
    )
}

fn security(s: &Snapshot) -> Item {
    let all = measures::security(s);
    let with = |st: Measure| -> Vec<String> {
        all.iter()
            .filter(|m| m.status == st)
            .map(|m| text::lower_first(&m.label))
            .collect()
    };
    let (disabled, unknown) = (with(Measure::Disabled), with(Measure::Unknown));
    let on = all.len() - disabled.len() - unknown.len();
    let mut evidence = format!(
        "{} sur {} en place.",
        text::count(on as u64, "mesure", "mesures"),
        all.len()
    );
    if !disabled.is_empty() {
        evidence.push_str(&format!(" À compléter : {}.", text::enumerate(&disabled)));
    }
    if !unknown.is_empty() {
        evidence.push_str(&format!(" Non vérifiées : {}.", text::enumerate(&unknown)));
    }
    let state = if !disabled.is_empty() {
        CheckState::AFaire
    } else if !unknown.is_empty() {
        CheckState::NonVerifie
    } else {
        CheckState::Fait
    };
    check(
        "rgpd_art32_security",
        "RGPD, art. 32",
        "Sécurité du traitement",
        state,
        evidence,
    )
}

/// Renders the deployer checklist.
pub fn deployer_checklist(s: &Snapshot) -> Document {
    let mut ai_act = vec![
        literacy(s),
        instructions(s),
        oversight(s),
        monitoring(s),
        logs(s),
    ];
    ai_act.extend(workers(s));
    ai_act.push(transparency(s));
    let rgpd = vec![
        check(
            "rgpd_art30_register",
            "RGPD, art. 30",
            "Inscription au registre des activités de traitement",
            CheckState::AFaire,
            "À réaliser par la commune : une fiche pré-remplie est disponible (document \
             « register ») ; relisez-la, complétez-la et inscrivez-la au registre."
                .to_string(),
        ),
        check(
            "rgpd_art35_dpia",
            "RGPD, art. 35",
            "Analyse d'impact relative à la protection des données",
            CheckState::AFaire,
            "À réaliser par la commune : une trame pré-remplie est disponible (document \
             « dpia ») ; l'analyse est à conduire avec l'avis du DPO."
                .to_string(),
        ),
        security(s),
    ];

    let tally = |st: CheckState| {
        ai_act
            .iter()
            .chain(&rgpd)
            .filter(|i| matches!(i, Item::Check(c) if c.state == st))
            .count() as u64
    };
    let summary = vec![
        field("Fait", text::int(tally(CheckState::Fait))),
        field("À faire", text::int(tally(CheckState::AFaire))),
        field("Non vérifié", text::int(tally(CheckState::NonVerifie))),
    ];

    let sections = vec![
        Section::new(
            "scope",
            "Portée",
            vec![
                para(
                    "Cette liste reprend les obligations du déployeur prévues par le règlement \
                     européen sur l'intelligence artificielle (règlement (UE) 2024/1689, dit \
                     « AI Act ») et les formalités du RGPD qui s'y rattachent. Un point est \
                     « Fait » seulement lorsque la configuration de la boîte en apporte la \
                     preuve, « Non vérifié » lorsque la boîte ne peut pas le constater.",
                ),
                para(
                    "Un assistant d'aide à la rédaction ne relève pas, en principe, des \
                     systèmes d'IA à haut risque (annexe III) : les points tirés de \
                     l'article 26 sont repris comme bonnes pratiques. La qualification du \
                     système reste à confirmer par la commune.",
                ),
            ],
        ),
        Section::new("summary", "Bilan", summary),
        Section::new("ai_act", "AI Act : obligations du déployeur", ai_act),
        Section::new("rgpd", "RGPD", rgpd),
    ];
    crate::document_for(
        DocumentKind::Checklist,
        "Liste de contrôle du déployeur (AI Act et RGPD)",
        s,
        sections,
    )
}
