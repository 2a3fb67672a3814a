//! The RGPD Art. 30 record of processing entry.

use crate::document::{bullet, field, para, Document, DocumentKind, Item, Section};
use crate::measures;
use crate::snapshot::{Measure, Snapshot};
use crate::text::{self, PROCESSING_NAME};

/// The purposes, as bullets (shared with the DPIA).
pub(crate) fn purposes() -> Vec<Item> {
    vec![
        para(
            "Mettre à la disposition des agents de la commune un assistant d'aide à la \
             rédaction, exécuté localement, pour :",
        ),
        bullet("la rédaction de courriers ;"),
        bullet("la synthèse de documents ;"),
        bullet("la rédaction de comptes rendus ;"),
        bullet("la préparation de réponses aux administrés ;"),
        bullet("la rédaction de publications (bulletin municipal, site internet)."),
        para(
            "Les textes produits sont des brouillons, relus et validés par un agent avant tout \
             usage. L'assistant n'est jamais utilisé pour prendre une décision individuelle \
             concernant une personne, ni pour évaluer sa situation (attribution d'une aide, \
             d'un logement ou d'une place, sanction, etc.).",
        ),
    ]
}

/// One field per installed model (shared with the DPIA).
pub(crate) fn model_fields(s: &Snapshot) -> Vec<Item> {
    if s.models.is_empty() {
        return vec![bullet("Aucun modèle d'IA n'est installé sur la boîte.")];
    }
    s.models
        .iter()
        .map(|m| {
            let provider = text::non_blank(m.provider.as_deref())
                .unwrap_or_else(|| "non renseigné".to_string());
            let licence = text::non_blank(m.licence.as_deref())
                .unwrap_or_else(|| "non renseignée".to_string());
            let dossier = if m.dossier_present {
                "présent"
            } else {
                "absent"
            };
            field(
                &format!("Modèle « {} »", m.id),
                format!(
                    "Fournisseur : {provider} ; licence : {licence} ; empreinte SHA-256 des \
                     poids : {} ; dossier du modèle : {dossier}",
                    m.sha256
                ),
            )
        })
        .collect()
}

/// The categories of data subjects (shared with the DPIA).
pub(crate) fn data_subjects(s: &Snapshot) -> Vec<Item> {
    let u = &s.users;
    vec![
        bullet(format!(
            "Utilisateurs de l'assistant : agents de la commune et, le cas échéant, prestataire \
             chargé des mises à jour (comptes déclarés : {}, {}, {} DPO, {}).",
            text::count(u.agents, "agent", "agents"),
            text::count(u.admins, "administrateur", "administrateurs"),
            text::int(u.dpos),
            text::count(u.integrators, "intégrateur", "intégrateurs"),
        )),
        bullet(
            "Administrés et autres personnes mentionnées dans les documents et les demandes \
             soumis à l'assistant (usagers, élus, correspondants de la commune).",
        ),
    ]
}

/// What is kept of the submitted texts and answers.
pub(crate) fn contents_retention(s: &Snapshot) -> String {
    if !s.history.enabled {
        "Les demandes et les réponses ne sont pas conservées par la boîte, l'historique des \
         conversations étant désactivé."
            .to_string()
    } else if s.history.retention_days == 0 {
        "Les demandes et les réponses sont conservées dans l'historique de chaque agent, sans \
         durée de conservation configurée ; cette durée est à définir."
            .to_string()
    } else {
        format!(
            "Les demandes et les réponses sont conservées dans l'historique de chaque agent \
             pendant {}.",
            text::count(u64::from(s.history.retention_days), "jour", "jours")
        )
    }
}

/// Retention of the audit log, with its justification.
pub(crate) fn audit_retention(s: &Snapshot) -> String {
    let a = &s.audit;
    if !a.enabled {
        return "Journal d'audit désactivé ; aucune conservation.".to_string();
    }
    let mut t = format!(
        "{}, puis suppression par segments mensuels entiers.",
        text::count(u64::from(a.retention_months), "mois", "mois")
    );
    match text::non_blank(a.retention_justification.as_deref()) {
        Some(j) => t.push_str(&format!(" Justification de la durée : {j}")),
        None if !(6..=12).contains(&a.retention_months) => t.push_str(
            " Cette durée sort de la plage de 6 à 12 mois recommandée par la CNIL : \
             justification à documenter.",
        ),
        None => {}
    }
    t
}

/// Renders the Art. 30 register entry.
pub fn register_entry(s: &Snapshot) -> Document {
    let all = measures::security(s);
    let (enabled, pending): (Vec<_>, Vec<_>) =
        all.into_iter().partition(|m| m.status == Measure::Enabled);

    let mut data = vec![
        field(
            "Comptes des utilisateurs",
            "Données d'identification et d'authentification, rôle, acceptation de la charte \
             d'usage.",
        ),
        field(
            "Demandes soumises et réponses générées",
            format!(
                "Textes saisis par les agents et réponses de l'assistant, susceptibles de \
                 contenir des données personnelles d'administrés. {}",
                contents_retention(s)
            ),
        ),
    ];
    if s.audit.enabled {
        data.push(field(
            "Journaux d'audit",
            "Métadonnées des demandes (date, modèle, volume, résultat) et empreintes SHA-256 \
             des demandes et des réponses ; jamais le texte des demandes ni des réponses.",
        ));
        data.push(field(
            "Pseudonymes",
            "Dans les journaux, chaque agent est désigné par un pseudonyme calculé avec un \
             secret propre à la boîte.",
        ));
    } else {
        data.push(field(
            "Journaux d'audit",
            "Journal désactivé ; aucune donnée journalisée.",
        ));
    }
    let mut sensitive = "Non nécessaires aux finalités ; les agents sont invités, par la charte \
                         d'usage, à ne pas en saisir."
        .to_string();
    if s.guard.pii_detection {
        sensitive.push_str(
            " La boîte avertit l'agent lorsqu'une demande contient un numéro de sécurité \
             sociale, un IBAN, un numéro de téléphone ou une adresse électronique.",
        );
    }
    data.push(field(
        "Données sensibles (art. 9) et numéro de sécurité sociale",
        sensitive,
    ));

    let mut recipients = vec![field(
        "Destinataires",
        "Les agents de la commune pour leurs propres demandes ; l'administrateur et le délégué \
         à la protection des données pour les journaux d'audit. Aucun destinataire extérieur \
         à la commune.",
    )];
    if s.users.integrators > 0 {
        recipients.push(field(
            "Prestataire",
            format!(
                "{} (mises à jour uniquement). Lorsqu'un tel compte est détenu par un \
                 prestataire, celui-ci est à mentionner comme sous-traitant (art. 28).",
                text::count(
                    s.users.integrators,
                    "compte intégrateur déclaré",
                    "comptes intégrateur déclarés"
                )
            ),
        ));
    }
    let (egress, transfers) = if s.security.egress_default_zero {
        (
            "Aucun. La boîte n'établit aucune connexion vers l'extérieur.",
            "Aucun. Le modèle d'IA est exécuté sur la boîte ; aucune donnée n'est transmise à \
             un service extérieur.",
        )
    } else {
        (
            "Des connexions sortantes sont autorisées par la configuration ; leurs \
             destinataires sont à identifier par la commune.",
            "Aucun transfert n'est prévu par Civia. Des connexions sortantes étant autorisées \
             par la configuration, l'absence de transfert est à vérifier par la commune.",
        )
    };
    recipients.push(field("Flux sortants", egress));

    let mut in_place = vec![para(
        "Mesures constatées comme actives dans la configuration de la boîte au moment de la \
         génération :",
    )];
    if enabled.is_empty() {
        in_place.push(bullet("Aucune mesure n'est constatée comme active."));
    }
    in_place.extend(enabled.into_iter().map(Item::Measure));
    let mut to_complete = Vec::new();
    if pending.is_empty() {
        to_complete.push(para(
            "Aucune : toutes les mesures suivies par la boîte sont actives.",
        ));
    } else {
        to_complete.push(para(
            "Mesures absentes, désactivées ou dont l'état n'a pas pu être vérifié. Elles ne \
             doivent pas être déclarées comme en place avant d'avoir été mises en œuvre ou \
             vérifiées :",
        ));
        to_complete.extend(pending.into_iter().map(Item::Measure));
    }

    let mut identification = vec![
        field("Nom du traitement", PROCESSING_NAME),
        field("Outil", format!("Boîte Civia, version {}", s.box_version)),
        field("Date de la fiche", text::date(&s.generated_at)),
    ];
    identification.extend(model_fields(s));

    let sections = vec![
        Section::new(
            "identification",
            "Identification du traitement",
            identification,
        ),
        Section::new(
            "controller",
            "Responsable du traitement",
            vec![
                field(
                    "Responsable de traitement",
                    format!("{}, représentée par son maire", text::commune(s)),
                ),
                field(
                    "Contact du responsable de traitement et du délégué à la protection des \
                     données",
                    text::contact(s),
                ),
            ],
        ),
        Section::new("purposes", "Finalités du traitement", purposes()),
        Section::new(
            "legal_basis",
            "Base légale",
            vec![
                field(
                    "Base légale",
                    "Exécution d'une mission d'intérêt public dont est investie la commune \
                     (RGPD, art. 6.1.e).",
                ),
                para("Base légale à confirmer par le délégué à la protection des données."),
            ],
        ),
        Section::new(
            "data_subjects",
            "Catégories de personnes concernées",
            data_subjects(s),
        ),
        Section::new("data_categories", "Catégories de données traitées", data),
        Section::new("recipients", "Destinataires", recipients),
        Section::new(
            "transfers",
            "Transferts hors de l'Union européenne",
            vec![field("Transferts", transfers)],
        ),
        Section::new(
            "retention",
            "Durées de conservation",
            vec![
                field("Journaux d'audit", audit_retention(s)),
                field("Demandes et réponses", contents_retention(s)),
                field(
                    "Comptes des utilisateurs",
                    "Pendant la durée d'emploi ou de mission de l'agent ; le compte est à \
                     supprimer à son départ.",
                ),
            ],
        ),
        Section::new(
            "measures_in_place",
            "Mesures de sécurité en place",
            in_place,
        ),
        Section::new(
            "measures_to_complete",
            "Mesures à compléter ou non vérifiées",
            to_complete,
        ),
    ];
    crate::document_for(
        DocumentKind::Register,
        "Fiche du registre des activités de traitement (RGPD, art. 30)",
        s,
        sections,
    )
}
