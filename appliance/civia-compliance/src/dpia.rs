//! The RGPD Art. 35 data protection impact assessment (AIPD) kit, pre-filled.

use crate::document::{bullet, field, para, Document, DocumentKind, Item, Risk, Section};
use crate::measures::{self, pick};
use crate::register::{audit_retention, contents_retention, data_subjects, model_fields, purposes};
use crate::snapshot::{Measure, Snapshot};
use crate::text::{self, PROCESSING_NAME, TO_BE_ASSESSED};

/// A risk: id, title, description, mitigating measure ids, organisational measures.
struct RiskSpec {
    id: &'static str,
    title: &'static str,
    description: &'static str,
    /// Ids of the mitigating measures, space-separated.
    measures: &'static str,
    organisational: &'static [&'static str],
}

const RISKS: [RiskSpec; 5] = [
    RiskSpec {
        id: "illegitimate_access",
        title: "Accès illégitime aux données",
        description: "Une personne non autorisée (agent d'un autre service, tiers présent sur \
                      le réseau local, voleur du matériel) prend connaissance des demandes, des \
                      réponses ou des journaux, qui peuvent contenir des données personnelles \
                      d'administrés.",
        measures:
            "tls_lan lan_only egress_default_zero disk_encryption tpm admin_socket_local_only \
                   api_keys_hashed login_throttling pii_detection system_prompt_leak_filter \
                   audit_log",
        organisational: &[
            "Attribuer des comptes nominatifs et les supprimer au départ des agents.",
            "Installer la boîte dans un local fermé, accessible aux seules personnes habilitées.",
        ],
    },
    RiskSpec {
        id: "unwanted_modification",
        title: "Modification non désirée des données",
        description: "Les journaux d'audit ou le logiciel de la boîte sont altérés, par erreur \
                      ou par malveillance, ce qui fausse la traçabilité des usages ou le \
                      fonctionnement de l'assistant.",
        measures:
            "audit_chain_verified audit_signed_segments audit_journald_mirror signed_updates \
                   admin_socket_local_only tpm",
        organisational: &[
            "Vérifier périodiquement l'intégrité du journal (commande « civia audit verify »).",
        ],
    },
    RiskSpec {
        id: "disappearance",
        title: "Disparition des données",
        description: "Les journaux d'audit sont perdus (panne, sinistre, suppression), ce qui \
                      empêche la commune de justifier des usages pendant la durée de \
                      conservation requise.",
        measures: "audit_log audit_journald_mirror audit_signed_segments",
        organisational: &[
            "Exporter régulièrement les journaux d'audit vers un support de sauvegarde de la \
             commune, conservé hors de la boîte.",
        ],
    },
    RiskSpec {
        id: "errors_and_bias",
        title: "Erreurs, inventions et biais du modèle",
        description: "L'assistant produit un texte inexact (faits, références juridiques ou \
                      chiffres inventés), incomplet ou biaisé, repris sans vérification dans un \
                      courrier ou une publication.",
        measures: "ai_marking charter_accepted model_dossiers",
        organisational: &[
            "Relire et valider chaque texte avant envoi ou publication.",
            "Former les agents aux limites de l'IA générative (AI Act, art. 4).",
        ],
    },
    RiskSpec {
        id: "individual_decisions",
        title: "Usage pour des décisions concernant des personnes",
        description: "Un agent utilise l'assistant pour évaluer la situation d'un administré ou \
                      préparer une décision individuelle (aide, logement, sanction), en dehors \
                      des finalités déclarées, au risque d'un traitement inéquitable.",
        measures: "charter_accepted ai_marking audit_log",
        organisational: &[
            "Rappeler cette interdiction dans la charte d'usage et dans les consignes de \
             service.",
            "Vérifier, sans surveillance individuelle des agents, que l'usage reste conforme \
             aux finalités déclarées.",
        ],
    },
];

fn data_flows(s: &Snapshot) -> Vec<Item> {
    let sec = &s.security;
    let mut v = vec![para(
        "Parcours d'une demande, tel que la configuration le décrit :",
    )];
    v.push(bullet(
        "L'agent saisit sa demande dans son navigateur, sur un poste de la commune.",
    ));
    v.push(bullet(if sec.tls_lan {
        "La demande est transmise à la boîte par le réseau local, chiffrée par TLS."
    } else {
        "La demande est transmise à la boîte par le réseau local, sans chiffrement TLS \
         (mesure désactivée)."
    }));
    if s.guard.pii_detection {
        v.push(bullet(
            "La boîte recherche dans la demande les données personnelles (numéro de sécurité \
             sociale, IBAN, téléphone, courriel) et avertit l'agent s'il en trouve.",
        ));
    }
    v.push(bullet(if sec.egress_default_zero {
        "Le modèle d'IA, exécuté sur la boîte, produit la réponse ; aucune donnée ne quitte \
         la boîte."
    } else {
        "Le modèle d'IA, exécuté sur la boîte, produit la réponse."
    }));
    v.push(bullet(if s.guard.ai_marking {
        "La réponse revient au navigateur de l'agent, signalée comme un « Brouillon IA — à \
         vérifier »."
    } else {
        "La réponse revient au navigateur de l'agent."
    }));
    v.push(bullet(if s.audit.enabled {
        let mirror = if s.audit.journald_mirror {
            " et copié dans le journal système"
        } else {
            ""
        };
        format!(
            "Un événement est écrit dans le journal d'audit local{mirror} : métadonnées, \
             empreintes SHA-256 de la demande et de la réponse, pseudonyme de l'agent ; jamais \
             le texte."
        )
    } else {
        "Aucun événement n'est journalisé : le journal d'audit est désactivé.".to_string()
    }));
    v.push(bullet(contents_retention(s)));
    v.push(bullet(if sec.egress_default_zero {
        "Aucun flux sortant : la boîte n'établit aucune connexion vers l'extérieur."
    } else {
        "Des flux sortants sont autorisés par la configuration : ils sont à décrire par la \
         commune."
    }));
    v
}

fn necessity(s: &Snapshot) -> Vec<Item> {
    let logs = if s.audit.enabled {
        "Les journaux d'audit ne contiennent ni les demandes ni les réponses, seulement leurs \
         empreintes SHA-256 et un pseudonyme de l'agent."
    } else {
        "Journal d'audit désactivé."
    };
    let pii = if s.guard.pii_detection {
        "Les données personnelles détectées dans une demande déclenchent un avertissement à \
         l'agent, qui peut les retirer ; seule la catégorie est journalisée."
    } else {
        "Détection des données personnelles dans les demandes désactivée."
    };
    let c = measures::charter(s);
    let mut v = vec![
        field(
            "Finalités",
            "Déterminées, explicites et légitimes (aide à la rédaction des agents, sans \
             décision individuelle).",
        ),
        field(
            "Base légale",
            "Mission d'intérêt public (RGPD, art. 6.1.e), à confirmer par le DPO.",
        ),
        field("Historique des conversations", contents_retention(s)),
        field("Contenu des journaux", logs),
        field("Données personnelles dans les demandes", pii),
        field("Conservation des journaux d'audit", audit_retention(s)),
        field("Information des agents", c.detail),
        field(
            "Information des administrés",
            "Mentions d'information (art. 13 et 14) à prévoir par la commune.",
        ),
        field(
            "Exercice des droits",
            "Modalités d'accès, de rectification, d'effacement et d'opposition (art. 15 à 21) \
             à décrire par la commune.",
        ),
    ];
    if s.users.integrators > 0 {
        v.push(field(
            "Sous-traitance",
            format!(
                "{}. Lorsqu'un tel compte est détenu par un prestataire, un contrat de \
                 sous-traitance (art. 28) est nécessaire.",
                text::count(
                    s.users.integrators,
                    "compte intégrateur déclaré",
                    "comptes intégrateur déclarés"
                )
            ),
        ));
    }
    v.push(field(
        "Transferts hors de l'Union européenne",
        if s.security.egress_default_zero {
            "Aucun. Aucune donnée ne quitte la boîte."
        } else {
            "Aucun prévu par Civia ; les flux sortants autorisés sont à vérifier."
        },
    ));
    v
}

fn to_complete(s: &Snapshot, all: &[crate::document::MeasureItem]) -> Vec<Item> {
    let mut v = Vec::new();
    if text::non_blank(s.commune.as_deref()).is_none() {
        v.push(bullet(
            "Indiquer le nom de la commune dans la configuration de la boîte.",
        ));
    }
    if text::non_blank(s.controller_contact.as_deref()).is_none() {
        v.push(bullet(
            "Indiquer les coordonnées du responsable de traitement et du délégué à la \
             protection des données.",
        ));
    }
    v.push(bullet(
        "Confirmer la base légale (mission d'intérêt public, art. 6.1.e) avec le DPO.",
    ));
    for m in all {
        let detail = text::lower_first(&m.detail);
        match m.status {
            Measure::Enabled => {}
            Measure::Disabled => v.push(bullet(format!(
                "Mesure « {} » à mettre en place ou absence à justifier : {detail}",
                m.label
            ))),
            Measure::Unknown => v.push(bullet(format!(
                "Mesure « {} » à vérifier : {detail}",
                m.label
            ))),
        }
    }
    if !s.security.egress_default_zero {
        v.push(bullet(
            "Décrire les flux sortants autorisés et leurs destinataires.",
        ));
    }
    if s.users.integrators > 0 {
        v.push(bullet(
            "Identifier le titulaire de chaque compte intégrateur et, s'il s'agit d'un \
             prestataire, vérifier le contrat de sous-traitance (art. 28).",
        ));
    }
    v.extend(
        [
            "Rédiger les mentions d'information des administrés (art. 13 et 14) et décrire les \
             modalités d'exercice de leurs droits (art. 15 à 21).",
            "Évaluer, pour chaque risque, la gravité et la vraisemblance du risque résiduel, et \
             arrêter le plan d'action.",
            "Recueillir l'avis du DPO (art. 35.2) et, le cas échéant, celui des personnes \
             concernées ou de leurs représentants (art. 35.9).",
            "Faire valider l'analyse par le responsable de traitement, la dater et prévoir son \
             réexamen (art. 35.11), notamment à chaque changement de modèle.",
        ]
        .map(bullet),
    );
    v
}

/// Renders the DPIA kit.
pub fn dpia_kit(s: &Snapshot) -> Document {
    let mut all = measures::security(s);
    all.push(measures::model_dossiers(s));

    let risks = RISKS.iter().map(|r| {
        let ids: Vec<&str> = r.measures.split_whitespace().collect();
        let (measures, gaps) = pick(&all, &ids);
        Item::Risk(Risk {
            id: r.id.to_string(),
            title: r.title.to_string(),
            description: r.description.to_string(),
            measures,
            gaps,
            organisational: r.organisational.iter().map(|o| o.to_string()).collect(),
            residual_risk: TO_BE_ASSESSED.to_string(),
        })
    });
    let mut risk_items = vec![para(
        "Pour chaque risque, les mesures indiquées comme en place sont celles que la \
         configuration de la boîte déclare actives ; les mesures désactivées ou non vérifiées \
         sont signalées à part. Le risque résiduel est à évaluer par le DPO.",
    )];
    risk_items.extend(risks);

    let mut description = vec![
        field("Traitement", PROCESSING_NAME),
        field(
            "Responsable de traitement",
            format!("{}, représentée par son maire", text::commune(s)),
        ),
        field("Contact", text::contact(s)),
        field(
            "Contexte",
            format!(
                "Boîte Civia (version {}) exploitée par la commune : un modèle d'IA générative \
                 exécuté localement aide les agents à rédiger. Les textes produits sont des \
                 brouillons relus par un agent.",
                s.box_version
            ),
        ),
    ];
    description.extend(model_fields(s));

    let mut subjects = vec![para("Personnes concernées :")];
    subjects.extend(data_subjects(s));
    subjects.push(para("Données traitées :"));
    subjects.push(bullet(
        "Comptes des utilisateurs : données d'identification et d'authentification, rôle, \
         acceptation de la charte d'usage.",
    ));
    subjects.push(bullet(format!(
        "Demandes et réponses, susceptibles de contenir des données personnelles \
         d'administrés. {}",
        contents_retention(s)
    )));
    subjects.push(bullet(if s.audit.enabled {
        "Journaux d'audit : métadonnées, empreintes SHA-256 et pseudonymes, jamais le texte."
    } else {
        "Journaux d'audit : désactivés."
    }));

    let sections = vec![
        Section::new(
            "purpose",
            "Objet de la trame",
            vec![
                para(
                    "Cette trame pré-remplit l'analyse d'impact relative à la protection des \
                     données (AIPD) prévue par l'article 35 du RGPD, à partir de la \
                     configuration de la boîte. Elle suit la démarche de la CNIL : description \
                     du traitement, nécessité et proportionnalité, appréciation des risques.",
                ),
                para(
                    "Le responsable de traitement conduit l'analyse et recueille l'avis du \
                     délégué à la protection des données. Vérifiez les éléments repris de la \
                     configuration et complétez les champs « à évaluer par le DPO » ainsi que \
                     la dernière section.",
                ),
            ],
        ),
        Section::new("description", "Description du traitement", description),
        Section::new("purposes", "Finalités", purposes()),
        Section::new("data_subjects", "Personnes et données concernées", subjects),
        Section::new("data_flows", "Flux de données", data_flows(s)),
        Section::new("necessity", "Nécessité et proportionnalité", necessity(s)),
        Section::new("risks", "Risques pour les personnes concernées", risk_items),
        Section::new(
            "to_complete",
            "Points à compléter par la commune",
            to_complete(s, &all),
        ),
    ];
    crate::document_for(
        DocumentKind::Dpia,
        "Analyse d'impact relative à la protection des données (AIPD, RGPD, art. 35) : trame pré-remplie",
        s,
        sections,
    )
}
