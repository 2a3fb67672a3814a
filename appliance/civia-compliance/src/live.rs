//! The [`Snapshot`] of the running box: the mapping from what the daemon fetched — its
//! configuration, the loaded model and its verified dossier, the audit log's state, the
//! accounts, the charter's coverage, the host facts — to the facts the documents state. The
//! caller does every read; this is the one place that decides what each fact says.

use crate::dossier::Dossier;
use crate::snapshot::{
    AuditInfo, CharterInfo, GuardInfo, HistoryInfo, Measure, ModelInfo, SecurityInfo, Snapshot,
    UserCounts,
};
use civia_config::Config;

/// What the daemon read for a snapshot, besides its configuration.
#[derive(Debug, Clone)]
pub struct Live<'a> {
    /// RFC 3339 UTC.
    pub generated_at: String,
    pub box_version: String,
    pub model: LoadedModel<'a>,
    /// The audit log; `None` when the box runs without one.
    pub audit: Option<AuditState>,
    /// Whether the state directory is on dm-crypt, from the host facts; `None`: unknown.
    pub state_encrypted: Option<bool>,
    /// Whether the system-prompt leak filter is armed.
    pub leak_filter: bool,
    /// Whether the update agent (signed bundles only) runs.
    pub signed_updates: bool,
    pub charter: Charter,
    /// Active (not disabled) accounts by role.
    pub users: UserCounts,
}

/// The model served.
#[derive(Debug, Clone)]
pub struct LoadedModel<'a> {
    pub id: String,
    /// SHA-256 of the weights, hex; empty when no model is loaded.
    pub sha256: String,
    /// The dossier verified against these weights, if there is one.
    pub dossier: Option<&'a Dossier>,
}

/// The audit log's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditState {
    /// The last chain verification; `None` when it has not run.
    pub chain_verified: Option<bool>,
    pub journald_mirror: bool,
}

/// The charter in force and how many active accounts accepted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charter {
    pub version: u32,
    /// When this version was written, RFC 3339 UTC.
    pub created_at: String,
    pub users_accepted_current: u64,
    pub users_total: u64,
}

impl Snapshot {
    /// The snapshot of a box running with `cfg` in the state `live`.
    pub fn from_live(cfg: &Config, live: Live<'_>) -> Snapshot {
        let model = live.model;
        let text = |k: &str| {
            model
                .dossier
                .and_then(|d| d.get(k))
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        let model = ModelInfo {
            licence: text("licence"),
            provider: text("provider"),
            dossier_present: model.dossier.is_some(),
            id: model.id,
            sha256: model.sha256,
        };
        let audit = live.audit;
        Snapshot {
            generated_at: live.generated_at,
            box_version: live.box_version,
            commune: cfg.commune.name.clone(),
            controller_contact: cfg.commune.dpo_contact.clone(),
            models: vec![model],
            audit: AuditInfo {
                enabled: audit.is_some(),
                retention_months: cfg.audit.retention_months,
                retention_justification: cfg.audit.retention_justification.clone(),
                chain_verified: audit.and_then(|a| a.chain_verified),
                signed_segments: audit.is_some(),
                journald_mirror: audit.is_some_and(|a| a.journald_mirror),
            },
            history: HistoryInfo {
                enabled: cfg.history.enabled,
                retention_days: cfg.history.retention_days,
            },
            security: SecurityInfo {
                tls_lan: cfg.api_tls(),
                lan_only_sources: cfg
                    .api
                    .allowed_sources
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
                // civiad opens no outgoing connection; the image's firewall is not visible here.
                egress_default_zero: true,
                disk_encryption: match live.state_encrypted {
                    Some(true) => Measure::Enabled,
                    Some(false) => Measure::Disabled,
                    None => Measure::Unknown,
                },
                // A TPM being present does not say that the box's secrets are sealed in it.
                tpm: Measure::Unknown,
                api_keys_hashed: true,
                login_throttling: true,
                signed_updates: live.signed_updates,
                admin_socket_local_only: true,
            },
            guard: GuardInfo {
                pii_detection: true,
                max_prompt_chars: u32::try_from(cfg.guard.max_prompt_chars).unwrap_or(u32::MAX),
                max_answer_tokens: cfg.api.max_tokens,
                system_prompt_leak_filter: live.leak_filter,
                ai_marking: true,
            },
            charter: CharterInfo {
                version: live.charter.version,
                updated_at: Some(live.charter.created_at),
                users_accepted_current: live.charter.users_accepted_current,
                users_total: live.charter.users_total,
            },
            users: live.users,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
state_dir = "/var/lib/civia"
[api]
listen = "192.168.10.2:8443"
allowed_sources = ["192.168.10.0/24", "fd00::/8"]
max_tokens = 2048
[model]
path = "/models/m.gguf"
[commune]
name = "Saint-Malo-de-Guersac"
dpo_contact = "dpo@mairie.example.fr"
[audit]
retention_months = 24
retention_justification = "Contentieux en cours."
[history]
enabled = false
retention_days = 7
[guard]
max_prompt_chars = 5000000000
"#;

    fn live(dossier: Option<&Dossier>) -> Live<'_> {
        Live {
            generated_at: "2025-03-04T09:30:00.000Z".into(),
            box_version: "0.1.0".into(),
            model: LoadedModel {
                id: "mistral".into(),
                sha256: "ab".repeat(32),
                dossier,
            },
            audit: Some(AuditState {
                chain_verified: Some(true),
                journald_mirror: true,
            }),
            state_encrypted: Some(true),
            leak_filter: true,
            signed_updates: true,
            charter: Charter {
                version: 3,
                created_at: "2025-01-01T00:00:00.000Z".into(),
                users_accepted_current: 4,
                users_total: 5,
            },
            users: UserCounts {
                agents: 3,
                admins: 1,
                dpos: 1,
                integrators: 0,
            },
        }
    }

    #[test]
    fn configuration_and_state_become_the_documents_facts() {
        let cfg = Config::from_toml(CONFIG).expect("config");
        let dossier: Dossier = serde_json::from_str(
            r#"{"licence": "Apache-2.0", "provider": "Mistral AI", "sha256": "x"}"#,
        )
        .expect("dossier");
        let s = Snapshot::from_live(&cfg, live(Some(&dossier)));
        assert_eq!(s.commune.as_deref(), Some("Saint-Malo-de-Guersac"));
        assert_eq!(
            s.controller_contact.as_deref(),
            Some("dpo@mairie.example.fr")
        );
        assert_eq!(
            s.models,
            vec![ModelInfo {
                id: "mistral".into(),
                sha256: "ab".repeat(32),
                licence: Some("Apache-2.0".into()),
                provider: Some("Mistral AI".into()),
                dossier_present: true,
            }]
        );
        assert_eq!(
            s.audit,
            AuditInfo {
                enabled: true,
                retention_months: 24,
                retention_justification: Some("Contentieux en cours.".into()),
                chain_verified: Some(true),
                signed_segments: true,
                journald_mirror: true,
            }
        );
        assert_eq!(
            s.history,
            HistoryInfo {
                enabled: false,
                retention_days: 7
            }
        );
        // A non-loopback listener always has TLS.
        assert!(s.security.tls_lan);
        assert_eq!(s.security.lan_only_sources, ["192.168.10.0/24", "fd00::/8"]);
        assert_eq!(s.security.disk_encryption, Measure::Enabled);
        assert_eq!(s.security.tpm, Measure::Unknown);
        assert!(s.security.signed_updates);
        assert_eq!(s.guard.max_prompt_chars, u32::MAX);
        assert_eq!(s.guard.max_answer_tokens, 2048);
        assert!(s.guard.system_prompt_leak_filter);
        assert_eq!(s.charter.version, 3);
        assert_eq!(
            s.charter.updated_at.as_deref(),
            Some("2025-01-01T00:00:00.000Z")
        );
        assert_eq!(
            (s.charter.users_accepted_current, s.charter.users_total),
            (4, 5)
        );
        assert_eq!(s.users.agents, 3);
    }

    #[test]
    fn what_is_missing_is_said_missing() {
        let cfg = Config::from_toml(
            "state_dir = \"/var/lib/civia\"\n[api]\nlisten = \"127.0.0.1:18080\"\n[model]\npath = \"/m.gguf\"\n",
        )
        .expect("config");
        let mut l = live(None);
        l.audit = None;
        l.state_encrypted = None;
        l.leak_filter = false;
        l.signed_updates = false;
        let s = Snapshot::from_live(&cfg, l);
        assert_eq!((s.commune, s.controller_contact), (None, None));
        assert!(!s.models[0].dossier_present);
        assert_eq!(
            (s.models[0].licence.clone(), s.models[0].provider.clone()),
            (None, None)
        );
        assert!(!s.audit.enabled && !s.audit.signed_segments && !s.audit.journald_mirror);
        assert_eq!(s.audit.chain_verified, None);
        assert!(!s.security.tls_lan);
        assert_eq!(s.security.disk_encryption, Measure::Unknown);
        assert!(!s.security.signed_updates && !s.guard.system_prompt_leak_filter);
        let mut l = live(None);
        l.state_encrypted = Some(false);
        let s = Snapshot::from_live(&cfg, l);
        assert_eq!(s.security.disk_encryption, Measure::Disabled);
    }
}
