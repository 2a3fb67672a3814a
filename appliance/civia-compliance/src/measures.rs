//! The measures the documents may state, each read from the snapshot with its status. This
//! is the only place where a measure's state is decided: the register, the DPIA and the
//! checklist all quote it from here.

use crate::document::MeasureItem;
use crate::snapshot::{Measure, Snapshot};
use crate::text;

fn item(id: &str, label: &str, status: Measure, detail: impl Into<String>) -> MeasureItem {
    MeasureItem {
        id: id.to_string(),
        label: label.to_string(),
        status,
        detail: detail.into(),
    }
}

/// Picks the detail matching `status`.
fn by_status(status: Measure, enabled: &str, disabled: &str, unknown: &str) -> String {
    match status {
        Measure::Enabled => enabled,
        Measure::Disabled => disabled,
        Measure::Unknown => unknown,
    }
    .to_string()
}

fn flag(id: &str, label: &str, on: bool, enabled: &str, disabled: &str) -> MeasureItem {
    item(
        id,
        label,
        Measure::from_bool(on),
        if on { enabled } else { disabled },
    )
}

const AUDIT_OFF: &str = "Sans objet tant que le journal d'audit est désactivé.";

/// The audit-log measures; those that depend on the log are disabled when it is.
fn audit(s: &Snapshot) -> Vec<MeasureItem> {
    let a = &s.audit;
    let log = if a.enabled {
        item(
            "audit_log",
            "Journal d'audit",
            Measure::Enabled,
            format!(
                "Chaque demande adressée au modèle est journalisée (métadonnées, empreintes \
                 SHA-256, pseudonyme de l'agent, jamais le texte) ; le journal est conservé {}.",
                text::count(u64::from(a.retention_months), "mois", "mois")
            ),
        )
    } else {
        item(
            "audit_log",
            "Journal d'audit",
            Measure::Disabled,
            "Le journal d'audit est désactivé ; les usages de l'assistant ne sont pas tracés.",
        )
    };
    let chain_status = match (a.enabled, a.chain_verified) {
        (false, _) => Measure::Disabled,
        (true, Some(ok)) => Measure::from_bool(ok),
        (true, None) => Measure::Unknown,
    };
    let chain_detail = if a.enabled {
        by_status(
            chain_status,
            "La dernière vérification de la chaîne d'empreintes du journal n'a relevé aucune \
             anomalie.",
            "La dernière vérification de la chaîne du journal a relevé une anomalie ; lancez \
             « civia audit verify » et examinez l'entrée signalée.",
            "La chaîne d'empreintes du journal n'a pas encore été vérifiée.",
        )
    } else {
        AUDIT_OFF.to_string()
    };
    let dependent = |id: &str, label: &str, on: bool, enabled: &str, disabled: &str| {
        if a.enabled {
            flag(id, label, on, enabled, disabled)
        } else {
            item(id, label, Measure::Disabled, AUDIT_OFF)
        }
    };
    vec![
        log,
        item(
            "audit_chain_verified",
            "Intégrité du journal d'audit vérifiée",
            chain_status,
            chain_detail,
        ),
        dependent(
            "audit_signed_segments",
            "Signature du journal d'audit",
            a.signed_segments,
            "Chaque segment mensuel clos du journal est signé par la clé de la boîte.",
            "Les segments du journal ne sont pas signés.",
        ),
        dependent(
            "audit_journald_mirror",
            "Copie du journal d'audit dans le journal système",
            a.journald_mirror,
            "Les événements d'audit sont également copiés dans le journal système (journald).",
            "Les événements d'audit ne sont pas copiés dans le journal système.",
        ),
    ]
}

/// Every security measure the snapshot reports, in a stable order.
pub(crate) fn security(s: &Snapshot) -> Vec<MeasureItem> {
    let sec = &s.security;
    let g = &s.guard;
    let lan = if sec.lan_only_sources.is_empty() {
        item(
            "lan_only",
            "Accès réservé au réseau local",
            Measure::Unknown,
            "Aucune plage d'adresses autorisée n'est indiquée ; la restriction au réseau local \
             n'a donc pas pu être vérifiée.",
        )
    } else {
        item(
            "lan_only",
            "Accès réservé au réseau local",
            Measure::Enabled,
            format!(
                "La boîte n'accepte que les connexions provenant de {}.",
                sec.lan_only_sources.join(", ")
            ),
        )
    };
    let limits_on = g.max_prompt_chars > 0 && g.max_answer_tokens > 0;
    let limits_detail = if limits_on {
        format!(
            "Les demandes sont limitées à {} et les réponses à {}.",
            text::count(u64::from(g.max_prompt_chars), "caractère", "caractères"),
            text::count(u64::from(g.max_answer_tokens), "jeton", "jetons")
        )
    } else {
        "Aucune limite de longueur n'est configurée pour les demandes ou pour les réponses."
            .to_string()
    };
    let mut v = vec![
        flag(
            "tls_lan",
            "Chiffrement des échanges (TLS)",
            sec.tls_lan,
            "Les échanges entre les navigateurs des agents et la boîte sont chiffrés par TLS.",
            "Les échanges sur le réseau local ne sont pas chiffrés.",
        ),
        lan,
        flag(
            "egress_default_zero",
            "Aucun flux sortant",
            sec.egress_default_zero,
            "La boîte n'établit aucune connexion vers l'extérieur ; le modèle est exécuté \
             localement et aucune donnée n'est transmise à un service tiers.",
            "Des connexions sortantes sont autorisées par la configuration.",
        ),
        item(
            "disk_encryption",
            "Chiffrement du disque",
            sec.disk_encryption,
            by_status(
                sec.disk_encryption,
                "Les données enregistrées sur la boîte sont chiffrées sur le disque.",
                "Le disque de données de la boîte n'est pas chiffré.",
                "L'état du chiffrement du disque n'a pas pu être vérifié.",
            ),
        ),
        item(
            "tpm",
            "Clés protégées par la puce de sécurité (TPM)",
            sec.tpm,
            by_status(
                sec.tpm,
                "Les clés de la boîte sont scellées par la puce TPM.",
                "Les clés de la boîte ne sont pas scellées par une puce TPM.",
                "La présence et l'usage d'une puce TPM n'ont pas pu être vérifiés.",
            ),
        ),
        flag(
            "admin_socket_local_only",
            "Administration locale uniquement",
            sec.admin_socket_local_only,
            "L'interface d'administration en ligne de commande n'est accessible que sur la \
             boîte elle-même.",
            "L'interface d'administration en ligne de commande est accessible à distance.",
        ),
        flag(
            "api_keys_hashed",
            "Clés d'API conservées sous forme d'empreinte",
            sec.api_keys_hashed,
            "Les clés d'API ne sont conservées que sous forme d'empreinte ; une copie de la \
             base ne permet donc pas de les utiliser.",
            "Les clés d'API sont conservées en clair.",
        ),
        flag(
            "login_throttling",
            "Limitation des tentatives de connexion",
            sec.login_throttling,
            "Les échecs de connexion répétés entraînent le verrouillage du compte.",
            "Les tentatives de connexion ne sont pas limitées.",
        ),
        flag(
            "signed_updates",
            "Mises à jour signées",
            sec.signed_updates,
            "Seules les mises à jour dont la signature est vérifiée sont installées.",
            "Les mises à jour ne sont pas vérifiées par signature.",
        ),
    ];
    v.extend(audit(s));
    v.extend([
        flag(
            "pii_detection",
            "Détection des données personnelles dans les demandes",
            g.pii_detection,
            "Une demande contenant un numéro de sécurité sociale, un IBAN, un numéro de \
             téléphone ou une adresse électronique déclenche un avertissement à l'agent ; le \
             journal n'en retient que la catégorie.",
            "Les demandes ne sont pas analysées ; l'agent n'est pas averti lorsqu'il soumet des \
             données personnelles.",
        ),
        item(
            "length_limits",
            "Longueur des demandes et des réponses limitée",
            Measure::from_bool(limits_on),
            limits_detail,
        ),
        flag(
            "system_prompt_leak_filter",
            "Filtre de sortie",
            g.system_prompt_leak_filter,
            "Les réponses qui reproduiraient les instructions internes du modèle sont \
             détectées.",
            "Les réponses ne sont pas contrôlées avant d'être transmises à l'agent.",
        ),
        flag(
            "ai_marking",
            "Marquage des contenus générés",
            g.ai_marking,
            "Chaque réponse est signalée comme générée par l'IA et présentée comme un \
             « Brouillon IA — à vérifier ».",
            "Les réponses ne sont pas signalées comme générées par l'IA.",
        ),
        charter(s),
    ]);
    v
}

/// How far the current charter is accepted, as the end of a sentence whose subject is the
/// charter: `a été acceptée par les 14 utilisateurs actifs`.
pub(crate) fn acceptance(s: &Snapshot) -> String {
    let c = &s.charter;
    let (a, t) = (c.users_accepted_current, c.users_total);
    if a > t {
        format!(
            "présente des chiffres d'acceptation incohérents ({} pour {}), à vérifier",
            text::count(a, "acceptation", "acceptations"),
            text::count(t, "utilisateur actif", "utilisateurs actifs")
        )
    } else if t == 0 {
        "n'a été acceptée par personne, aucun utilisateur actif n'étant enregistré".to_string()
    } else if a == t {
        format!("a été acceptée par {}", all_users(t))
    } else if a == 0 {
        format!(
            "n'a encore été acceptée par aucun {}",
            if t == 1 {
                "utilisateur actif".to_string()
            } else {
                format!("des {} utilisateurs actifs", text::int(t))
            }
        )
    } else {
        format!(
            "n'a été acceptée que par {} sur {}",
            text::count(a, "utilisateur", "utilisateurs"),
            text::int(t)
        )
    }
}

/// Acceptance of the current charter by every active user: enabled only when all accepted,
/// unknown when the counts cannot tell.
pub(crate) fn charter(s: &Snapshot) -> MeasureItem {
    let c = &s.charter;
    let status = if c.users_accepted_current > c.users_total || c.users_total == 0 {
        Measure::Unknown
    } else {
        Measure::from_bool(c.fully_accepted())
    };
    item(
        "charter_accepted",
        "Charte d'usage acceptée par les utilisateurs",
        status,
        format!(
            "La charte d'usage en vigueur ({}) {}.",
            charter_name(s),
            acceptance(s)
        ),
    )
}

/// `version 3 du 10 janvier 2025`.
pub(crate) fn charter_name(s: &Snapshot) -> String {
    match text::non_blank(s.charter.updated_at.as_deref()) {
        Some(d) => format!("version {} du {}", s.charter.version, text::date(&d)),
        None => format!("version {}", s.charter.version),
    }
}

/// `l'unique utilisateur actif` / `les 12 utilisateurs actifs`.
pub(crate) fn all_users(n: u64) -> String {
    if n == 1 {
        "l'unique utilisateur actif".to_string()
    } else {
        format!("les {} utilisateurs actifs", text::int(n))
    }
}

/// A dossier is present for every installed model (and at least one is installed).
pub(crate) fn model_dossiers(s: &Snapshot) -> MeasureItem {
    let missing: Vec<String> = s
        .models
        .iter()
        .filter(|m| !m.dossier_present)
        .map(|m| format!("« {} »", m.id))
        .collect();
    let (status, detail) = if s.models.is_empty() {
        (
            Measure::Disabled,
            "Aucun modèle d'IA n'est installé sur la boîte.".to_string(),
        )
    } else if missing.is_empty() {
        (
            Measure::Enabled,
            "Le dossier du fournisseur (usages prévus et exclus, limites, licence) est présent \
             pour chaque modèle installé."
                .to_string(),
        )
    } else {
        (
            Measure::Disabled,
            format!(
                "Le dossier du modèle est absent pour {}.",
                text::enumerate(&missing)
            ),
        )
    };
    item(
        "model_dossiers",
        "Dossier de chaque modèle disponible",
        status,
        detail,
    )
}

/// The measures with these ids, split into (enabled, not enabled), in the order given.
pub(crate) fn pick(all: &[MeasureItem], ids: &[&str]) -> (Vec<MeasureItem>, Vec<MeasureItem>) {
    ids.iter()
        .filter_map(|id| all.iter().find(|m| m.id == *id))
        .cloned()
        .partition(|m| m.status == Measure::Enabled)
}
