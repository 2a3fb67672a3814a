//! The usage charter (versioned, set by the admin) and who accepted which version when: the
//! register that attests the staff's AI literacy (AI Act art. 4).

use crate::{now, Result, Role, Store, StoreError};
use rusqlite::{params, OptionalExtension};

/// Longest charter accepted (characters).
pub const MAX_CHARTER_CHARS: usize = 20_000;

/// Version 1, stored at first open: the French default the commune can replace.
pub const DEFAULT_CHARTER: &str = "\
Charte d'utilisation de l'assistant d'intelligence artificielle de la commune

L'assistant fonctionne entièrement dans la mairie : aucune donnée ne quitte le bâtiment. \
Il aide à rédiger ; il ne décide de rien.

Usages autorisés
- Préparer des brouillons de courriers, de comptes rendus, de réponses aux administrés et de publications.
- Résumer ou reformuler des documents de travail.
- Extraire d'un document les informations utiles à une tâche.

Usages interdits
- Prendre ou préparer une décision concernant une personne (aide, logement, place en crèche, \
recrutement, sanction…) à partir d'une réponse de l'assistant.
- Saisir des données sensibles (santé, opinions, origine, infractions, numéro de sécurité \
sociale, coordonnées bancaires…) sans nécessité réelle pour la tâche.
- Évaluer ou surveiller le travail de collègues.
- Diffuser un texte produit par l'assistant sans l'avoir relu.

Mes engagements
- Chaque réponse est un brouillon : je la relis, la vérifie et la corrige avant tout usage ; \
j'en reste responsable.
- J'indique qu'un contenu a été produit avec l'aide de l'IA lorsqu'il est publié ou adressé à \
un administré.
- Je limite les données personnelles au strict nécessaire et j'efface mon historique quand il \
n'est plus utile.
- Je signale au référent informatique toute réponse inappropriée ou erronée.

Journalisation
Chaque demande est journalisée (date, volume, empreintes) sans le texte des demandes ni des \
réponses, pendant six à douze mois, comme la réglementation l'exige. Ces journaux ne servent \
pas à évaluer le travail des agents.";

/// A charter version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charter {
    pub version: u32,
    pub text: String,
    pub created_at: i64,
    /// Who set it (a user name, or `civia` for the default).
    pub created_by: String,
}

/// One line of the attestation register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acceptance {
    pub user: String,
    pub role: Role,
    pub service: Option<String>,
    pub version: u32,
    pub accepted_at: i64,
    /// How it was accepted: `web`, `api`, `cli` or `trial`.
    pub channel: String,
}

/// Channels an acceptance can come from.
pub const CHANNELS: &[&str] = &["web", "api", "cli", "trial"];

impl Store {
    /// Stores the default charter as version 1 on a store that has none.
    pub(crate) fn seed_charter(&self) -> Result<()> {
        self.conn.execute(
            "INSERT INTO charters (version, text, created_at, created_by)
             SELECT 1, ?1, ?2, 'civia' WHERE NOT EXISTS (SELECT 1 FROM charters)",
            params![DEFAULT_CHARTER, now()],
        )?;
        Ok(())
    }

    /// The current (newest) charter.
    pub fn charter(&self) -> Result<Charter> {
        Ok(self.conn.query_row(
            "SELECT version, text, created_at, created_by FROM charters
             ORDER BY version DESC LIMIT 1",
            [],
            |r| {
                Ok(Charter {
                    version: r.get(0)?,
                    text: r.get(1)?,
                    created_at: r.get(2)?,
                    created_by: r.get(3)?,
                })
            },
        )?)
    }

    /// Publishes a new version; every user must accept it before using the model again.
    pub fn set_charter(&self, text: &str, by: &str) -> Result<Charter> {
        let text = text.trim();
        let n = text.chars().count();
        if n == 0
            || n > MAX_CHARTER_CHARS
            || text
                .chars()
                .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
        {
            return Err(StoreError::BadCharter);
        }
        let version = self.charter()?.version + 1;
        self.conn.execute(
            "INSERT INTO charters (version, text, created_at, created_by) VALUES (?1, ?2, ?3, ?4)",
            params![version, text, now(), by],
        )?;
        self.charter()
    }

    /// Records that the user accepted `version`, which must be the current one.
    pub fn accept_charter(&self, user_id: i64, version: u32, channel: &str) -> Result<()> {
        let current = self.charter()?.version;
        if version != current {
            return Err(StoreError::StaleCharter {
                given: version,
                current,
            });
        }
        if !CHANNELS.contains(&channel) {
            return Err(StoreError::BadChannel(channel.to_string()));
        }
        self.conn.execute(
            "INSERT OR IGNORE INTO charter_acceptances (user_id, version, accepted_at, channel)
             VALUES (?1, ?2, ?3, ?4)",
            params![user_id, version, now(), channel],
        )?;
        Ok(())
    }

    /// When the user accepted `version`, if they did.
    pub fn accepted_at(&self, user_id: i64, version: u32) -> Result<Option<i64>> {
        Ok(self
            .conn
            .query_row(
                "SELECT accepted_at FROM charter_acceptances WHERE user_id = ?1 AND version = ?2",
                params![user_id, version],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// The attestation register: every acceptance, by user then version. With `user`, only
    /// that user's.
    pub fn charter_register(&self, user: Option<i64>) -> Result<Vec<Acceptance>> {
        let mut st = self.conn.prepare(
            "SELECT u.name, u.role, u.service, a.version, a.accepted_at, a.channel
             FROM charter_acceptances a JOIN users u ON u.id = a.user_id
             WHERE ?1 IS NULL OR u.id = ?1
             ORDER BY u.name, a.version",
        )?;
        let rows = st.query_map([user], |r| {
            let role: String = r.get(1)?;
            let role = role.parse::<Role>().map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(
                    1,
                    rusqlite::types::Type::Text,
                    Box::new(e),
                )
            })?;
            Ok(Acceptance {
                user: r.get(0)?,
                role,
                service: r.get(2)?,
                version: r.get(3)?,
                accepted_at: r.get(4)?,
                channel: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// (active users who accepted the current version, active users).
    pub fn charter_coverage(&self) -> Result<(u64, u64)> {
        let version = self.charter()?.version;
        let (accepted, total): (i64, i64) = self.conn.query_row(
            "SELECT
               (SELECT COUNT(*) FROM users u JOIN charter_acceptances a ON a.user_id = u.id
                 WHERE u.disabled = 0 AND a.version = ?1),
               (SELECT COUNT(*) FROM users WHERE disabled = 0)",
            [version],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok((accepted as u64, total as u64))
    }
}
