//! The input: a snapshot of the box's live configuration and state, assembled by the caller
//! (the daemon) at generation time. Every statement the documents make about a measure is
//! derived from these fields and nothing else.

use serde::{Deserialize, Serialize};

/// The box's configuration and state at generation time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Generation time, RFC 3339 UTC, given by the caller.
    pub generated_at: String,
    /// Version of the box software, e.g. `0.1.0`.
    pub box_version: String,
    /// The commune's name if configured; rendered as a placeholder otherwise.
    pub commune: Option<String>,
    /// Contact of the data controller / DPO if configured; rendered as a placeholder otherwise.
    pub controller_contact: Option<String>,
    pub models: Vec<ModelInfo>,
    pub audit: AuditInfo,
    pub history: HistoryInfo,
    pub security: SecurityInfo,
    pub guard: GuardInfo,
    pub charter: CharterInfo,
    pub users: UserCounts,
}

/// A model installed on the box.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub id: String,
    /// SHA-256 of the weights, hex.
    pub sha256: String,
    pub licence: Option<String>,
    pub provider: Option<String>,
    /// Whether the model dossier (Annex XII fields) matching these weights is present.
    pub dossier_present: bool,
}

/// The audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditInfo {
    pub enabled: bool,
    pub retention_months: u32,
    /// Written justification, required by the configuration outside 6–12 months.
    pub retention_justification: Option<String>,
    /// Result of the last chain verification; `None` when it has not been run.
    pub chain_verified: Option<bool>,
    pub signed_segments: bool,
    pub journald_mirror: bool,
}

/// The per-agent conversation history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryInfo {
    pub enabled: bool,
    pub retention_days: u32,
}

/// Security measures of the perimeter and of the platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityInfo {
    pub tls_lan: bool,
    /// Address ranges the API accepts connections from (e.g. `192.168.1.0/24`).
    pub lan_only_sources: Vec<String>,
    pub egress_default_zero: bool,
    pub disk_encryption: Measure,
    pub tpm: Measure,
    pub api_keys_hashed: bool,
    pub login_throttling: bool,
    pub signed_updates: bool,
    pub admin_socket_local_only: bool,
}

/// State of a measure the box cannot always establish by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    Enabled,
    Disabled,
    Unknown,
}

impl Measure {
    /// The serialised name: `enabled`, `disabled` or `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Measure::Enabled => "enabled",
            Measure::Disabled => "disabled",
            Measure::Unknown => "unknown",
        }
    }

    /// `Enabled` when `on`, `Disabled` otherwise (for the measures the box always knows).
    pub(crate) fn from_bool(on: bool) -> Measure {
        if on {
            Measure::Enabled
        } else {
            Measure::Disabled
        }
    }
}

/// The prompt guard and output filters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardInfo {
    pub pii_detection: bool,
    pub max_prompt_chars: u32,
    pub max_answer_tokens: u32,
    pub system_prompt_leak_filter: bool,
    pub ai_marking: bool,
}

/// The usage charter and its acceptance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CharterInfo {
    pub version: u32,
    pub updated_at: Option<String>,
    /// Active users who accepted the current version.
    pub users_accepted_current: u64,
    /// Active users.
    pub users_total: u64,
}

impl CharterInfo {
    /// Every active user accepted the current version (and there is at least one).
    pub(crate) fn fully_accepted(&self) -> bool {
        self.users_total > 0 && self.users_accepted_current == self.users_total
    }
}

/// Accounts by role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserCounts {
    pub agents: u64,
    pub admins: u64,
    pub dpos: u64,
    pub integrators: u64,
}
