//! civiad's configuration: one TOML file plus optional drop-ins.
//!
//! Owns: the schema of the file (every key, its documented default), loading `PATH` and then
//! every `PATH.d/*.toml` in lexical order (later files override earlier ones key by key), and
//! validation that names the offending key. `civia.example.toml` at the crate root documents
//! every key with its default and is checked against this schema by a test.
//!
//! Must never: start anything, touch the network, or read secrets (secrets live in the state
//! directory or the TPM, never in the configuration).

pub use ipnet::IpNet;
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("configuration file {path} is not valid TOML: {source}")]
    Syntax {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("configuration (from {path}): key `{key}`: {message}")]
    Schema {
        path: PathBuf,
        key: String,
        message: String,
    },
    #[error("configuration: `{key}`: {message}")]
    Invalid { key: &'static str, message: String },
}

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Directory for everything civiad writes (created 0700 if missing). Required.
    pub state_dir: PathBuf,
    #[serde(default)]
    pub api: ApiConfig,
    /// The model to serve. Required.
    pub model: ModelConfig,
    #[serde(default)]
    pub runtime: RuntimeConfig,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub admin: AdminConfig,
    #[serde(default)]
    pub auth: AuthConfig,
    #[serde(default)]
    pub quotas: QuotasConfig,
    #[serde(default)]
    pub update: UpdateConfig,
    #[serde(default)]
    pub audit: AuditConfig,
    #[serde(default)]
    pub backup: BackupConfig,
    #[serde(default)]
    pub history: HistoryConfig,
    #[serde(default)]
    pub charter: CharterConfig,
    #[serde(default)]
    pub guard: GuardConfig,
    #[serde(default)]
    pub commune: CommuneConfig,
    #[serde(default)]
    pub speech: SpeechConfig,
    #[serde(default)]
    pub embeddings: EmbeddingsConfig,
    #[serde(default)]
    pub documents: DocumentsConfig,
    #[serde(default)]
    pub knowledge: KnowledgeConfig,
    #[serde(default)]
    pub secrets: SecretsConfig,
    #[serde(default)]
    pub sandbox: SandboxConfig,
}

/// Text extraction from uploaded documents (`POST /v1/parse`): each extraction runs in a
/// child process under these budgets.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DocumentsConfig {
    /// The extraction program (default: civiad itself, as `civiad extract-document`).
    pub extractor: Option<PathBuf>,
    /// Wall-clock budget of one extraction, in seconds.
    pub timeout_secs: u64,
    /// Memory (address space) budget of one extraction, in MiB: everything the file
    /// inflates to, all parts together.
    pub memory_mb: u64,
    /// Extractions running at once on the box (beyond: 503 with Retry-After).
    pub max_parallel: usize,
}

impl Default for DocumentsConfig {
    fn default() -> Self {
        Self {
            extractor: None,
            timeout_secs: 30,
            memory_mb: 1024,
            max_parallel: 2,
        }
    }
}

/// The commune's documents as knowledge (`/v1/collections`, `/v1/documents`, `/v1/search`):
/// collections with need-to-know access, indexed in the background.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KnowledgeConfig {
    /// Serve the knowledge routes (default true).
    pub enabled: bool,
    /// Directory of the knowledge database and its upload spool; default
    /// `<state_dir>/knowledge` (on the box: the encrypted data volume).
    pub dir: Option<PathBuf>,
    /// Largest uploaded file, in MiB.
    pub max_file_mb: u64,
    /// Documents waiting for indexing at most (beyond: 503 with Retry-After).
    pub max_queued: usize,
    /// Chunk size and overlap, in characters.
    pub chunk_chars: usize,
    pub chunk_overlap_chars: usize,
    /// Most chunks of one document (a longer one fails with a French reason).
    pub max_chunks_per_document: usize,
    /// Wall-clock budget of reading one document (OCR excluded), in seconds.
    pub extract_timeout_secs: u64,
    /// OCR of scanned pages and images (Tesseract, French); off: scans fail with a reason.
    pub ocr: bool,
    /// Tesseract language(s), e.g. `fra` or `fra+eng`.
    pub ocr_language: String,
    /// Wall-clock budget of the OCR of one page, in seconds.
    pub ocr_page_timeout_secs: u64,
    /// Most pages of one document read by OCR.
    pub ocr_max_pages: usize,
}

impl Default for KnowledgeConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            dir: None,
            max_file_mb: 50,
            max_queued: 1000,
            chunk_chars: 900,
            chunk_overlap_chars: 150,
            max_chunks_per_document: 20_000,
            extract_timeout_secs: 120,
            ocr: true,
            ocr_language: "fra".into(),
            ocr_page_timeout_secs: 60,
            ocr_max_pages: 300,
        }
    }
}

impl KnowledgeConfig {
    /// [`KnowledgeConfig::max_file_mb`] in bytes.
    pub fn max_file_bytes(&self) -> usize {
        usize::try_from(self.max_file_mb.saturating_mul(1024 * 1024)).unwrap_or(usize::MAX)
    }
}

/// Where civiad's own secrets come from: the seeds of the TLS CA key, the audit signing key
/// and the audit pseudonym secret (`civia-tpm`'s `SecretStore`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecretsConfig {
    /// `auto` (default): sealed by the TPM when the TPM device is there and the sealed files
    /// (`*.sealed`, written by `civia-provision first-boot`) are in `dir`; otherwise plain
    /// files (mode 0600, created as needed), said loudly in the log and on the console.
    /// `tpm`: sealed or civiad does not start. `files`: plain files (trial machines).
    pub protection: SecretProtection,
    /// Directory of the secrets; default `<state_dir>/secrets`. On a box,
    /// `/state/provision/secrets` (civia-provision's).
    pub dir: Option<PathBuf>,
    /// TPM access (tss2 TCTI string); default `device:/dev/tpmrm0`.
    pub tcti: String,
    /// The integrator's signed PCR policies (systemd-measure JSON) needed to unseal, when the
    /// secrets were sealed under a signed policy.
    pub signed_policy: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SecretProtection {
    Auto,
    Tpm,
    Files,
}

impl SecretsConfig {
    /// Whether the TPM `tcti` names is there: a device path that exists, or another TCTI
    /// (swtpm, mssim: reachable or not, its use says).
    pub fn tpm_present(&self) -> bool {
        match self.tcti.strip_prefix("device:") {
            Some(path) => std::path::Path::new(path).exists(),
            None => true,
        }
    }
}

impl Default for SecretsConfig {
    fn default() -> Self {
        Self {
            protection: SecretProtection::Auto,
            dir: None,
            tcti: "device:/dev/tpmrm0".into(),
            signed_policy: None,
        }
    }
}

/// The model workers' isolation from civiad (`docs/architecture.md`, "Worker isolation").
///
/// When civiad may switch users (it runs as root, or holds `CAP_SETUID`, `CAP_SETGID` and
/// `CAP_SYS_ADMIN`), every worker runs as `worker_uid:worker_gid` without supplementary
/// groups or capabilities, in its own mount, network and IPC namespaces where `state_dir`,
/// `/run/civia`, the admin socket's directory and `hide` are empty read-only tmpfs (the model
/// file's directory, and the speech spool for the speech worker, are bound back read-only),
/// under a seccomp filter. Otherwise the workers are refused (fail closed) unless
/// `allow_shared_uid` is set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SandboxConfig {
    /// The workers' uid: an id no account and no file on the box owns (default 60600, outside
    /// the ranges systemd allocates; the image reserves it as `civia-worker`). Never 0.
    pub worker_uid: u32,
    /// The workers' gid (default 60600); never 0, never a group with rights (`disk`,
    /// `civia-admin`).
    pub worker_gid: u32,
    /// Directories hidden from the workers besides `state_dir`, `/run/civia` and the admin
    /// socket's directory (absolute paths; missing ones are skipped). Default: `/state`
    /// (provisioning and sealed secrets) and `/etc/civia` (the configuration).
    pub hide: Vec<PathBuf>,
    /// Development only: when civiad can switch users for its workers (an unprivileged
    /// `run-trial.sh`), run them under civiad's own uid in a user namespace (the same mount
    /// namespace, seccomp filter and environment) instead of refusing to start them. A worker
    /// then shares civiad's uid: never on a box.
    pub allow_shared_uid: bool,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            worker_uid: 60600,
            worker_gid: 60600,
            hide: vec![PathBuf::from("/state"), PathBuf::from("/etc/civia")],
            allow_shared_uid: false,
        }
    }
}

/// Meeting transcription: the speech worker (whisper.cpp) and its limits. Off unless `path`
/// names a whisper.cpp (ggml) model.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpeechConfig {
    /// whisper.cpp model file (ggml); setting it starts the speech worker.
    pub path: Option<PathBuf>,
    /// Model id clients name; default: the file name without `ggml-` and `.bin`.
    pub id: Option<String>,
    /// Expected SHA-256 of the model file (hex).
    pub sha256: Option<String>,
    /// Language of the recordings (ISO 639-1), or `auto` to detect it.
    pub language: String,
    /// CPU threads for the speech worker; 0: all available cores.
    pub threads: u32,
    /// Run whisper on the GPU when the worker is built with GPU support.
    pub gpu: bool,
    /// Transcriptions waiting behind the one running; beyond, HTTP 503 `speech_busy`.
    pub queue_depth: usize,
    /// Largest uploaded recording, in bytes.
    pub max_upload_bytes: u64,
    /// Longest recording, in seconds.
    pub max_duration_secs: u64,
    /// Length of the windows a recording is transcribed in (cut at the quietest moment near
    /// the end), in seconds: progress is reported at least once per window.
    pub window_secs: u32,
    /// Where uploaded recordings wait while being transcribed (default
    /// `<state_dir>/spool/speech`); each file is deleted when its transcription ends.
    pub spool_dir: Option<PathBuf>,
    /// The speech worker program (default: `civia-speech-worker` next to civiad).
    pub worker: Option<PathBuf>,
}

impl Default for SpeechConfig {
    fn default() -> Self {
        Self {
            path: None,
            id: None,
            sha256: None,
            language: "fr".into(),
            threads: 0,
            gpu: true,
            queue_depth: 4,
            max_upload_bytes: 512 * 1024 * 1024,
            max_duration_secs: 4 * 3600,
            window_secs: 300,
            spool_dir: None,
            worker: None,
        }
    }
}

/// Embeddings (`POST /v1/embeddings`, and the vectors of the knowledge service): the
/// embedding worker (llama.cpp in embedding mode). Off unless `path` names a GGUF embedding
/// model.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmbeddingsConfig {
    /// GGUF embedding model (e.g. multilingual E5); setting it starts the embedding worker.
    pub path: Option<PathBuf>,
    /// Model id clients name; default: the file name without `.gguf`.
    pub id: Option<String>,
    /// Expected SHA-256 of the model file (hex).
    pub sha256: Option<String>,
    /// CPU threads for the embedding worker; 0: all available cores.
    pub threads: u32,
    /// Layers offloaded to a GPU when the worker is built with a GPU backend (0: CPU only).
    pub gpu_layers: u32,
    /// Tokens evaluated in one pass, several inputs together. An input is evaluated in one
    /// pass: it may have at most min(the model's context, `batch_size`) tokens. The pass also
    /// bounds the worker's memory: llama.cpp keeps (vocabulary x batch_size) floats of output
    /// even in embedding mode, about 0.5 GiB at 512 tokens for E5's 250,000-token vocabulary.
    pub batch_size: u32,
    /// Inputs evaluated together in one pass (1 to 256).
    pub max_sequences: u32,
    /// Most inputs in one request (OpenAI allows 2048); beyond, HTTP 400.
    pub max_inputs_per_request: usize,
    /// Longest input, in characters; beyond, HTTP 400 (an input longer than the model's
    /// context in tokens is refused too, never truncated).
    pub max_input_chars: usize,
    /// Requests waiting behind the running one; beyond, HTTP 503 `embeddings_busy`.
    pub queue_depth: usize,
    /// What Civia's own services (document search) put before a question and before a
    /// passage of a document: the model's convention (E5: `query: ` and `passage: `; empty
    /// for models without one). `/v1/embeddings` passes its input through unchanged.
    pub query_prefix: String,
    pub passage_prefix: String,
}

impl Default for EmbeddingsConfig {
    fn default() -> Self {
        Self {
            path: None,
            id: None,
            sha256: None,
            threads: 0,
            gpu_layers: 0,
            batch_size: 512,
            max_sequences: 32,
            max_inputs_per_request: 256,
            max_input_chars: 8192,
            queue_depth: 32,
            query_prefix: "query: ".into(),
            passage_prefix: "passage: ".into(),
        }
    }
}

/// Conversation history kept for the agents who ask for it (owner-only).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HistoryConfig {
    /// Whether agents may keep conversations at all.
    pub enabled: bool,
    /// Messages older than this are erased (1 to 365 days).
    pub retention_days: u32,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            retention_days: 30,
        }
    }
}

/// The usage charter every user accepts before using the model (AI Act art. 4).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CharterConfig {
    /// Refuse model requests (403 `charter_not_accepted`) until the current version is accepted.
    pub required: bool,
}

impl Default for CharterConfig {
    fn default() -> Self {
        Self { required: true }
    }
}

/// The input/output guard (ANSSI GenAI recommendation R25).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GuardConfig {
    /// Longest prompt accepted, in characters (all messages together).
    pub max_prompt_chars: usize,
    /// The commune's instructions, put before every chat request's own system message; empty:
    /// none.
    pub system_prompt: String,
    /// Stop an answer that repeats `min_leak_words` consecutive words of the system prompt.
    pub leak_filter: bool,
    pub leak_min_words: usize,
}

impl Default for GuardConfig {
    fn default() -> Self {
        Self {
            max_prompt_chars: 100_000,
            system_prompt: String::new(),
            leak_filter: true,
            leak_min_words: 8,
        }
    }
}

/// Who the box serves, for the compliance documents.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CommuneConfig {
    /// The commune's name.
    pub name: Option<String>,
    /// Contact of the controller or its data protection officer.
    pub dpo_contact: Option<String>,
}

/// The audit trail under `<state_dir>/audit/`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Months the audit log is kept: 6 to 12 (AI Act art. 26(6), CNIL délibération 2021-122).
    pub retention_months: u32,
    /// Required to keep the log outside 6 to 12 months: the written reason (e.g. a
    /// prosecutor's request, a DPIA conclusion).
    pub retention_justification: Option<String>,
    /// Mirror every entry to journald (native protocol, structured `CIVIA_*` fields).
    pub journald: bool,
    /// journald's socket.
    pub journal_socket: PathBuf,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            retention_months: 6,
            retention_justification: None,
            journald: true,
            journal_socket: PathBuf::from("/run/systemd/journal/socket"),
        }
    }
}

/// The box's encrypted backups (`civia-backup`; docs/backup.md). Downloads from the console
/// work whatever this says; `destination` turns the daily backup on.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackupConfig {
    /// Directory the daily backup is written to: where a USB disk (or a share the integrator
    /// mounts) is mounted. Absolute, outside `state_dir`. Unset, like `smb`: no scheduled
    /// backup.
    pub destination: Option<PathBuf>,
    /// The mairie's NAS share the daily backup is written to, as `//ADDRESS/SHARE` or
    /// `//ADDRESS/SHARE/FOLDER/…`: ADDRESS is the NAS's IP address (the box resolves no
    /// names; the firewall opens exactly this address and `smb_port`). Exclusive with
    /// `destination`. The password is not here: the administrator gives it in the console,
    /// and the box keeps it encrypted under its own sealed secret.
    pub smb: Option<String>,
    /// The NAS account the box signs in with (required with `smb`).
    pub smb_user: Option<String>,
    /// The account's domain or workgroup (unset: the NAS's own accounts).
    pub smb_domain: Option<String>,
    /// The NAS's SMB port.
    pub smb_port: u16,
    /// Require SMB 3 encryption of the connection (the archive itself is always encrypted;
    /// unset, the connection is signed).
    pub smb_encrypt: bool,
    /// Hour of the daily backup, UTC (0 to 23).
    pub hour_utc: u8,
    /// Archives of this box kept in `destination` (1 to 365): older ones are removed after
    /// each good backup.
    pub keep: u32,
    /// The console and `/metrics` warn when the last good backup is older than this many
    /// hours (at least 1).
    pub max_age_hours: u32,
}

impl Default for BackupConfig {
    fn default() -> Self {
        Self {
            destination: None,
            smb: None,
            smb_user: None,
            smb_domain: None,
            smb_port: 445,
            smb_encrypt: false,
            hour_utc: 2,
            keep: 14,
            max_age_hours: 48,
        }
    }
}

/// The NAS share of `[backup] smb`, checked ([`BackupConfig::smb_share`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmbShare {
    pub server: IpAddr,
    pub port: u16,
    /// The share's name.
    pub share: String,
    /// The folder inside the share, `/`-separated, empty for the share's root.
    pub folder: String,
    pub user: String,
    pub domain: Option<String>,
    pub encrypt: bool,
}

impl SmbShare {
    /// `//ADDRESS/SHARE/FOLDER`, as the console shows it.
    pub fn display(&self) -> String {
        let host = match self.server {
            IpAddr::V6(a) => format!("[{a}]"),
            IpAddr::V4(a) => a.to_string(),
        };
        let mut s = format!("//{host}/{}", self.share);
        if !self.folder.is_empty() {
            s.push('/');
            s.push_str(&self.folder);
        }
        s
    }
}

/// Whether `s` may be an SMB name (share, folder, user, domain): it is passed to `smbclient`
/// as one argument, so no separators of its command language, no control characters.
fn smb_name_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && !s.starts_with('-')
        && !s
            .chars()
            .any(|c| c.is_control() || matches!(c, '"' | ';' | '\\' | '/' | '%' | '*' | '?'))
}

impl BackupConfig {
    /// The NAS share `smb` and its `smb_*` settings name, checked: None without `smb`;
    /// Err names the key at fault and why.
    pub fn smb_share(&self) -> Result<Option<SmbShare>, (&'static str, String)> {
        let Some(url) = &self.smb else {
            return Ok(None);
        };
        if self.destination.is_some() {
            return Err((
                "backup.smb",
                "set either backup.destination or backup.smb, not both".into(),
            ));
        }
        let form = "must read //ADDRESS/SHARE or //ADDRESS/SHARE/FOLDER, ADDRESS being the NAS's IP address";
        let rest = url
            .strip_prefix("//")
            .ok_or(("backup.smb", form.to_string()))?;
        let (host, path) = rest
            .split_once('/')
            .ok_or(("backup.smb", form.to_string()))?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let server: IpAddr = host.parse().map(|a: IpAddr| a.to_canonical()).map_err(|_| {
            (
                "backup.smb",
                format!("{host:?} is not an IP address: the box resolves no names, give the NAS's address"),
            )
        })?;
        let mut parts = path.split('/').filter(|p| !p.is_empty());
        let share = parts.next().ok_or(("backup.smb", form.to_string()))?;
        let folder: Vec<&str> = parts.collect();
        for p in std::iter::once(&share).chain(&folder) {
            if !smb_name_ok(p) || *p == "." || *p == ".." {
                return Err((
                    "backup.smb",
                    format!("{p:?} is not a share or folder name the box accepts (no . or .., quotes, ;, \\, %, * or ?)"),
                ));
            }
        }
        let user = self
            .smb_user
            .clone()
            .ok_or(("backup.smb_user", "is required with backup.smb".to_string()))?;
        if !smb_name_ok(&user) {
            return Err((
                "backup.smb_user",
                "is not a user name the box accepts".into(),
            ));
        }
        if let Some(d) = &self.smb_domain {
            if !smb_name_ok(d) {
                return Err((
                    "backup.smb_domain",
                    "is not a domain name the box accepts".into(),
                ));
            }
        }
        if self.smb_port == 0 {
            return Err(("backup.smb_port", "must be a port number".into()));
        }
        Ok(Some(SmbShare {
            server,
            port: self.smb_port,
            share: share.to_string(),
            folder: folder.join("/"),
            user,
            domain: self.smb_domain.clone(),
            encrypt: self.smb_encrypt,
        }))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Address and port of the API. A loopback address without TLS settings is trial mode
    /// (plain HTTP); any other address requires TLS.
    pub listen: SocketAddr,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Most messages in one chat request.
    pub max_messages: usize,
    /// Largest `max_tokens` a request may ask for.
    pub max_tokens: u32,
    /// `max_tokens` when a request gives none (capped by `max_tokens` and the context window).
    pub default_max_tokens: u32,
    /// Most stop sequences in one request, and the longest one in bytes.
    pub max_stop_sequences: usize,
    pub max_stop_bytes: usize,
    /// Serve HTTPS even on loopback (other addresses always use TLS).
    pub tls: bool,
    /// Host names in the server certificate (`localhost` is always added).
    pub tls_names: Vec<String>,
    /// IP addresses in the server certificate, besides the listen address.
    pub tls_addresses: Vec<std::net::IpAddr>,
    /// The commune's own server certificate chain (PEM) instead of the box-issued one; with
    /// `tls_key`. The box CA is still created and served at `/ca.crt`.
    pub tls_certificate: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Source ranges allowed to connect (LAN-only guard); any other source is refused before
    /// TLS and authentication, with a log line. Default: RFC 1918, IPv6 ULA, loopback.
    pub allowed_sources: Vec<IpNet>,
    /// Most open connections in all (beyond: new connections wait in the kernel's backlog).
    pub max_connections: usize,
    /// Most open connections from one source (beyond: refused at once). A source is an IPv4
    /// address or an IPv6 /64 (one workstation's prefix: it can pick any address in it).
    pub max_connections_per_address: usize,
    /// Time a client has to send a request's headers (and to finish a TLS handshake).
    pub header_timeout_secs: u64,
    /// Time a client has to send a request body, on top of the time its size takes at
    /// `min_body_bytes_per_sec`: a small body is complete within this, a trickled one is cut
    /// off (408) and its connection closed.
    pub body_timeout_secs: u64,
    /// Slowest accepted upload rate once `body_timeout_secs` has passed (bytes per second).
    pub min_body_bytes_per_sec: u64,
    /// Life of a new box CA in days (default 1095, three years; 90 to 3650).
    pub tls_ca_days: i64,
    /// The box CA is replaced at start once fewer days than this are left (default 90; at
    /// least 7, under half of `tls_ca_days`). Agents must then install the new CA.
    pub tls_ca_rotate_days: i64,
}

/// RFC 1918, IPv6 unique local addresses and loopback.
pub fn default_allowed_sources() -> Vec<IpNet> {
    [
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "fc00::/7",
        "127.0.0.0/8",
        "::1/128",
    ]
    .iter()
    .filter_map(|s| s.parse().ok())
    .collect()
}

/// Whether `ip` (IPv4-mapped IPv6 addresses count as IPv4) is in one of `ranges`.
pub fn source_allowed(ranges: &[IpNet], ip: std::net::IpAddr) -> bool {
    let ip = match ip {
        std::net::IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map_or(std::net::IpAddr::V6(v6), std::net::IpAddr::V4),
        v4 => v4,
    };
    ranges.iter().any(|r| r.contains(&ip))
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_bytes: 4 * 1024 * 1024,
            max_messages: 256,
            max_tokens: 4096,
            default_max_tokens: 1024,
            max_stop_sequences: 4,
            max_stop_bytes: 256,
            tls: false,
            tls_names: vec!["civia.local".into()],
            tls_addresses: Vec::new(),
            tls_certificate: None,
            tls_key: None,
            allowed_sources: default_allowed_sources(),
            tls_ca_days: 1095,
            tls_ca_rotate_days: 90,
            max_connections: 1024,
            max_connections_per_address: 64,
            header_timeout_secs: 10,
            body_timeout_secs: 30,
            min_body_bytes_per_sec: 64 * 1024,
        }
    }
}

/// The admin plane: `/admin/*` on the API listener (and optionally its own), and the local
/// Unix socket of the `civia` CLI.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// A separate listener for `/admin/*` (ANSSI R10: admin traffic apart from the agents').
    /// Always TLS, same LAN guard. When set, `/admin/*` is served only there.
    pub listen: Option<SocketAddr>,
    /// Unix socket of the `civia` CLI; default `<state_dir>/admin.sock`. Whoever can open it
    /// is an administrator: it is created 0660, owned by root and `socket_group`.
    pub socket: Option<PathBuf>,
    /// Group allowed to use the admin socket besides root (ignored when it does not exist).
    pub socket_group: String,
    /// Source ranges allowed on the admin listener (`listen`). Default: the API's
    /// (`api.allowed_sources`); set it to the IT office's range to keep agents' workstations
    /// off the admin port.
    pub allowed_sources: Option<Vec<IpNet>>,
    /// The admin listener's own connection limits: agents filling the API listener never
    /// lock the administrator out.
    pub max_connections: usize,
    pub max_connections_per_address: usize,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            listen: None,
            socket: None,
            socket_group: "civia-admin".into(),
            allowed_sources: None,
            max_connections: 64,
            max_connections_per_address: 16,
        }
    }
}

/// Signed updates: system bundles to the inactive A/B slot, model bundles to the models
/// directory. System updates are off (with a log line saying why) when `image_root` is
/// missing or the booted slot or running version cannot be told.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpdateConfig {
    /// Root metadata (version 1) shipped in the image: the keys bundles must be signed with.
    pub image_root: PathBuf,
    /// The hardware model (`compatible` in bundle manifests).
    pub compatible: String,
    /// The update agent's state (floor, reference time, slots); default `<state_dir>/update`.
    pub state_dir: Option<PathBuf>,
    /// Model bundles go to `<models_dir>/<id>/<version>/`, `current` pointing at the served
    /// one; default `<state_dir>/models`.
    pub models_dir: Option<PathBuf>,
    /// The mounted EFI system partition.
    pub esp: PathBuf,
    pub slot_a_usr: PathBuf,
    pub slot_a_verity: PathBuf,
    pub slot_b_usr: PathBuf,
    pub slot_b_verity: PathBuf,
    /// `a`, `b`, or `auto` (`civia.slot=` on the kernel command line).
    pub booted_slot: String,
    /// The running image's version, or `auto` (`IMAGE_VERSION` in /usr/lib/os-release).
    pub running_version: String,
    /// Boot tries of a new slot before the firmware falls back (systemd-boot counter).
    pub tries: u32,
    /// Largest uploaded bundle, in bytes.
    pub max_upload_bytes: u64,
}

impl Default for UpdateConfig {
    fn default() -> Self {
        Self {
            image_root: "/usr/share/civia/root.json".into(),
            compatible: "civia-box".into(),
            state_dir: None,
            models_dir: None,
            esp: "/efi".into(),
            slot_a_usr: "/dev/disk/by-partlabel/usr-a".into(),
            slot_a_verity: "/dev/disk/by-partlabel/usr-a-verity".into(),
            slot_b_usr: "/dev/disk/by-partlabel/usr-b".into(),
            slot_b_verity: "/dev/disk/by-partlabel/usr-b-verity".into(),
            booted_slot: "auto".into(),
            running_version: "auto".into(),
            tries: 3,
            max_upload_bytes: 32 << 30,
        }
    }
}

/// Logins and sessions.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Wrong passwords in a row that lock an account...
    pub lockout_failures: u32,
    /// ...for this long (seconds).
    pub lockout_secs: u64,
    /// Failed logins from one address within `lockout_secs` before that address is refused.
    pub address_failures: u32,
    /// A web session ends after this long without activity...
    pub session_idle_secs: u64,
    /// ...and after this long in any case.
    pub session_absolute_secs: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            lockout_failures: 20,
            lockout_secs: 900,
            address_failures: 100,
            session_idle_secs: 1800,
            session_absolute_secs: 36_000,
        }
    }
}

/// Per-role default quotas (0: unlimited); per-user overrides live in the store.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuotasConfig {
    pub agent: RoleQuota,
    pub admin: RoleQuota,
}

impl Default for QuotasConfig {
    fn default() -> Self {
        Self {
            agent: RoleQuota {
                requests_per_minute: 60,
                tokens_per_day: 2_000_000,
                concurrent_requests: default_concurrent_requests(),
            },
            admin: RoleQuota {
                requests_per_minute: 0,
                tokens_per_day: 0,
                concurrent_requests: 0,
            },
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RoleQuota {
    /// Requests per rolling minute (0: unlimited).
    pub requests_per_minute: u32,
    /// Prompt + completion tokens per UTC day (0: unlimited).
    pub tokens_per_day: u64,
    /// Model requests of one user admitted at once, queued or running (0: unlimited;
    /// absent: 4): one agent cannot fill the model's or the speech worker's queue.
    #[serde(default = "default_concurrent_requests")]
    pub concurrent_requests: u32,
}

fn default_concurrent_requests() -> u32 {
    4
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// GGUF file to serve. Required.
    pub path: PathBuf,
    /// Model id clients name in requests; default: the file name without `.gguf`.
    #[serde(default)]
    pub id: Option<String>,
    /// Expected SHA-256 of the file (hex); when set, the worker refuses any other file.
    #[serde(default)]
    pub sha256: Option<String>,
    /// Context window in tokens (0: the model's training context).
    #[serde(default = "default_context_length")]
    pub context_length: u32,
    /// Prompt evaluation batch size in tokens.
    #[serde(default = "default_batch_size")]
    pub batch_size: u32,
    /// CPU threads for the worker; 0: all available cores.
    #[serde(default)]
    pub threads: u32,
    /// Layers offloaded to the GPU when one is present (999: all).
    #[serde(default = "default_gpu_layers")]
    pub gpu_layers: u32,
    /// Sequences decoded together (continuous batching); each gets `context_length` tokens.
    #[serde(default = "default_n_parallel")]
    pub n_parallel: u32,
    /// Reuse the KV cache of a prompt prefix already evaluated (shared system prompts).
    #[serde(default = "default_true")]
    pub prefix_reuse: bool,
}

fn default_n_parallel() -> u32 {
    4
}
fn default_true() -> bool {
    true
}

fn default_context_length() -> u32 {
    4096
}
fn default_batch_size() -> u32 {
    512
}
fn default_gpu_layers() -> u32 {
    999
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    /// First delay before restarting a dead worker; doubles on each failure up to the maximum.
    pub restart_backoff_initial_ms: u64,
    pub restart_backoff_max_ms: u64,
    /// A worker that stayed up this long resets the backoff.
    pub restart_backoff_reset_secs: u64,
    /// How long the worker may take to hash and load the model.
    pub load_timeout_secs: u64,
    /// Most requests waiting for a free slot; beyond, HTTP 429 with Retry-After.
    pub queue_depth: usize,
    /// Longest wait for a free slot before a clear error (HTTP 503).
    pub queue_timeout_secs: u64,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            restart_backoff_initial_ms: 250,
            restart_backoff_max_ms: 30_000,
            restart_backoff_reset_secs: 60,
            load_timeout_secs: 600,
            queue_depth: 64,
            queue_timeout_secs: 120,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `error`, `warn`, `info`, `debug` or `trace`; `RUST_LOG` overrides it.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
        }
    }
}

impl Config {
    /// Loads `path`, then the drop-ins in `path.d/*.toml`, and validates the result.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let mut merged = read_table(path)?;
        let mut last = path.to_path_buf();
        for dropin in dropins(path)? {
            merge(&mut merged, read_table(&dropin)?);
            last = dropin;
        }
        let cfg: Config =
            serde_path_to_error::deserialize(toml::Value::Table(merged)).map_err(|e| {
                let key = e.path().to_string();
                ConfigError::Schema {
                    path: if last == path {
                        path.into()
                    } else {
                        last.clone()
                    },
                    key: if key == "." {
                        "(top level)".into()
                    } else {
                        key
                    },
                    message: e.into_inner().message().to_string(),
                }
            })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Parses one TOML document (no drop-ins); for tests and tools.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let table: toml::Table = text.parse().map_err(|e| ConfigError::Syntax {
            path: PathBuf::from("<inline>"),
            source: Box::new(e),
        })?;
        let cfg: Config =
            serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
                ConfigError::Schema {
                    path: PathBuf::from("<inline>"),
                    key: e.path().to_string(),
                    message: e.into_inner().message().to_string(),
                }
            })?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key, message: String| Err(ConfigError::Invalid { key, message });
        if !self.state_dir.is_absolute() {
            return bad("state_dir", "must be an absolute path".into());
        }
        for (key, addr) in [
            ("api.listen", Some(self.api.listen)),
            ("admin.listen", self.admin.listen),
        ] {
            let Some(addr) = addr else { continue };
            if !source_allowed(&self.api.allowed_sources, addr.ip()) && !addr.ip().is_unspecified()
            {
                return bad(
                    key,
                    format!("{addr} is outside api.allowed_sources: the box serves its LAN only"),
                );
            }
        }
        if self.api.tls_certificate.is_some() != self.api.tls_key.is_some() {
            return bad(
                "api.tls_certificate",
                "tls_certificate and tls_key go together".into(),
            );
        }
        if self.sandbox.worker_uid == 0 || self.sandbox.worker_gid == 0 {
            return bad(
                "sandbox.worker_uid",
                "the workers never run as root (uid and gid 0 are refused)".into(),
            );
        }
        if let Some(p) = self.sandbox.hide.iter().find(|p| !p.is_absolute()) {
            return bad(
                "sandbox.hide",
                format!("{} must be an absolute path", p.display()),
            );
        }
        if self.admin.listen.is_some_and(|a| a == self.api.listen) {
            return bad("admin.listen", "must differ from api.listen".into());
        }
        if !(90..=3650).contains(&self.api.tls_ca_days) {
            return bad("api.tls_ca_days", "must be 90 to 3650 days".into());
        }
        if self.api.tls_ca_rotate_days < 7
            || self.api.tls_ca_rotate_days * 2 >= self.api.tls_ca_days
        {
            return bad(
                "api.tls_ca_rotate_days",
                "must be at least 7 days and under half of api.tls_ca_days".into(),
            );
        }
        if self.api.allowed_sources.is_empty() {
            return bad("api.allowed_sources", "must name at least one range".into());
        }
        if self.api.max_connections == 0 || self.api.max_connections_per_address == 0 {
            return bad("api.max_connections", "limits must be at least 1".into());
        }
        if self.api.header_timeout_secs == 0 {
            return bad("api.header_timeout_secs", "must be at least 1".into());
        }
        let d = &self.documents;
        if d.timeout_secs == 0 || d.max_parallel == 0 || d.memory_mb < 64 {
            return bad(
                "documents",
                "timeout_secs and max_parallel must be at least 1, memory_mb at least 64".into(),
            );
        }
        let k = &self.knowledge;
        if k.max_file_mb == 0 || k.max_file_mb > 1024 || k.max_queued == 0 {
            return bad(
                "knowledge",
                "max_file_mb must be 1 to 1024, max_queued at least 1".into(),
            );
        }
        if k.chunk_chars < 200
            || k.chunk_overlap_chars >= k.chunk_chars
            || k.max_chunks_per_document == 0
        {
            return bad(
                "knowledge.chunk_chars",
                "chunk_chars at least 200, chunk_overlap_chars below it, max_chunks_per_document at least 1".into(),
            );
        }
        if k.extract_timeout_secs == 0 || k.ocr_page_timeout_secs == 0 || k.ocr_max_pages == 0 {
            return bad(
                "knowledge",
                "timeouts and ocr_max_pages must be at least 1".into(),
            );
        }
        if k.ocr_language.is_empty()
            || !k
                .ocr_language
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '_')
        {
            return bad(
                "knowledge.ocr_language",
                "Tesseract language codes such as `fra` or `fra+eng`".into(),
            );
        }
        if self.api.body_timeout_secs == 0 || self.api.min_body_bytes_per_sec == 0 {
            return bad(
                "api.body_timeout_secs",
                "body_timeout_secs and min_body_bytes_per_sec must be at least 1".into(),
            );
        }
        if self.admin.max_connections == 0 || self.admin.max_connections_per_address == 0 {
            return bad("admin.max_connections", "limits must be at least 1".into());
        }
        if self
            .admin
            .allowed_sources
            .as_ref()
            .is_some_and(Vec::is_empty)
        {
            return bad(
                "admin.allowed_sources",
                "must name at least one range".into(),
            );
        }
        let justified = self
            .audit
            .retention_justification
            .as_deref()
            .is_some_and(|j| !j.trim().is_empty());
        if !(6..=12).contains(&self.audit.retention_months) && !justified {
            return bad(
                "audit.retention_months",
                format!(
                    "{} months is outside 6 to 12: set audit.retention_justification to keep the \
                     audit log for another period",
                    self.audit.retention_months
                ),
            );
        }
        if self.audit.retention_months == 0 {
            return bad("audit.retention_months", "must be at least 1".into());
        }
        if !(1..=365).contains(&self.history.retention_days) {
            return bad("history.retention_days", "must be between 1 and 365".into());
        }
        if self.guard.max_prompt_chars == 0 {
            return bad("guard.max_prompt_chars", "must be at least 1".into());
        }
        if !(3..=64).contains(&self.guard.leak_min_words) {
            return bad("guard.leak_min_words", "must be between 3 and 64".into());
        }
        if self.guard.system_prompt.len() > 32 * 1024 {
            return bad("guard.system_prompt", "at most 32 KiB".into());
        }
        for (key, v) in [
            ("commune.name", &self.commune.name),
            ("commune.dpo_contact", &self.commune.dpo_contact),
        ] {
            if v.as_deref()
                .is_some_and(|s| s.len() > 200 || s.chars().any(char::is_control))
            {
                return bad(key, "at most 200 printable characters".into());
            }
        }
        self.validate_speech()?;
        self.validate_embeddings()?;
        if !matches!(self.update.booted_slot.as_str(), "a" | "b" | "auto") {
            return bad("update.booted_slot", "must be a, b or auto".into());
        }
        if self.update.tries == 0 || self.update.tries > 10 {
            return bad("update.tries", "must be between 1 and 10".into());
        }
        if self.auth.lockout_failures == 0 || self.auth.address_failures == 0 {
            return bad("auth.lockout_failures", "must be at least 1".into());
        }
        if self.auth.session_idle_secs == 0
            || self.auth.session_absolute_secs < self.auth.session_idle_secs
        {
            return bad(
                "auth.session_absolute_secs",
                "sessions need idle > 0 and absolute >= idle".into(),
            );
        }
        if self.api.max_body_bytes < 1024 {
            return bad("api.max_body_bytes", "must be at least 1024".into());
        }
        if self.api.max_messages == 0 {
            return bad("api.max_messages", "must be at least 1".into());
        }
        if self.api.max_tokens == 0 || self.api.default_max_tokens == 0 {
            return bad("api.max_tokens", "must be at least 1".into());
        }
        if let Some(h) = &self.model.sha256 {
            if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                return bad("model.sha256", "must be 64 hexadecimal digits".into());
            }
        }
        if let Some(id) = &self.model.id {
            if id.is_empty() || id.len() > 128 || id.chars().any(|c| c.is_control()) {
                return bad("model.id", "must be 1 to 128 printable characters".into());
            }
        }
        if self.model.n_parallel == 0 || self.model.n_parallel > 256 {
            return bad("model.n_parallel", "must be between 1 and 256".into());
        }
        if self.backup.hour_utc > 23 {
            return bad("backup.hour_utc", "must be between 0 and 23".into());
        }
        if !(1..=365).contains(&self.backup.keep) {
            return bad("backup.keep", "must be between 1 and 365".into());
        }
        if self.backup.max_age_hours == 0 {
            return bad("backup.max_age_hours", "must be at least 1".into());
        }
        if let Some(d) = &self.backup.destination {
            if !d.is_absolute() || d.starts_with(&self.state_dir) {
                return bad(
                    "backup.destination",
                    "must be an absolute path outside state_dir".into(),
                );
            }
        }
        if let Err((key, why)) = self.backup.smb_share() {
            return bad(key, why);
        }
        if self.runtime.queue_timeout_secs == 0 {
            return bad("runtime.queue_timeout_secs", "must be at least 1".into());
        }
        if self.model.batch_size < 32 {
            return bad("model.batch_size", "must be at least 32".into());
        }
        if self.runtime.restart_backoff_initial_ms == 0
            || self.runtime.restart_backoff_max_ms < self.runtime.restart_backoff_initial_ms
        {
            return bad(
                "runtime.restart_backoff_max_ms",
                "backoff must be positive and max >= initial".into(),
            );
        }
        if !matches!(
            self.log.level.as_str(),
            "error" | "warn" | "info" | "debug" | "trace"
        ) {
            return bad(
                "log.level",
                format!(
                    "`{}` is not one of error, warn, info, debug, trace",
                    self.log.level
                ),
            );
        }
        Ok(())
    }

    fn validate_speech(&self) -> Result<(), ConfigError> {
        let bad = |key, message: &str| {
            Err(ConfigError::Invalid {
                key,
                message: message.into(),
            })
        };
        let s = &self.speech;
        if s.sha256
            .as_ref()
            .is_some_and(|h| h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return bad("speech.sha256", "must be 64 hexadecimal digits");
        }
        if s.id
            .as_ref()
            .is_some_and(|id| id.is_empty() || id.len() > 128 || id.chars().any(char::is_control))
        {
            return bad("speech.id", "must be 1 to 128 printable characters");
        }
        if self
            .speech_model_id()
            .is_some_and(|id| id == self.model_id())
        {
            return bad("speech.id", "must differ from the language model's id");
        }
        let lang_ok = s.language == "auto"
            || (s.language.len() == 2 && s.language.bytes().all(|b| b.is_ascii_lowercase()));
        if !lang_ok {
            return bad(
                "speech.language",
                "must be a two-letter ISO 639-1 code (fr, en…) or auto",
            );
        }
        if s.queue_depth == 0 || s.queue_depth > 64 {
            return bad("speech.queue_depth", "must be between 1 and 64");
        }
        if s.max_upload_bytes < 1024 {
            return bad("speech.max_upload_bytes", "must be at least 1024");
        }
        if s.max_duration_secs == 0 || s.max_duration_secs > 24 * 3600 {
            return bad("speech.max_duration_secs", "must be between 1 and 86400");
        }
        if !(30..=1800).contains(&s.window_secs) {
            return bad("speech.window_secs", "must be between 30 and 1800");
        }
        Ok(())
    }

    fn validate_embeddings(&self) -> Result<(), ConfigError> {
        let bad = |key, message: &str| {
            Err(ConfigError::Invalid {
                key,
                message: message.into(),
            })
        };
        let e = &self.embeddings;
        if e.sha256
            .as_ref()
            .is_some_and(|h| h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return bad("embeddings.sha256", "must be 64 hexadecimal digits");
        }
        if e.id
            .as_ref()
            .is_some_and(|id| id.is_empty() || id.len() > 128 || id.chars().any(char::is_control))
        {
            return bad("embeddings.id", "must be 1 to 128 printable characters");
        }
        if let Some(id) = self.embeddings_model_id() {
            if id == self.model_id() || self.speech_model_id().is_some_and(|s| s == id) {
                return bad(
                    "embeddings.id",
                    "must differ from the language and speech models' ids",
                );
            }
        }
        if !(32..=65536).contains(&e.batch_size) {
            return bad("embeddings.batch_size", "must be between 32 and 65536");
        }
        if !(1..=256).contains(&e.max_sequences) {
            return bad("embeddings.max_sequences", "must be between 1 and 256");
        }
        if !(1..=2048).contains(&e.max_inputs_per_request) {
            return bad(
                "embeddings.max_inputs_per_request",
                "must be between 1 and 2048",
            );
        }
        if !(1..=65536).contains(&e.max_input_chars) {
            return bad("embeddings.max_input_chars", "must be between 1 and 65536");
        }
        if !(1..=1024).contains(&e.queue_depth) {
            return bad("embeddings.queue_depth", "must be between 1 and 1024");
        }
        for (key, prefix) in [
            ("embeddings.query_prefix", &e.query_prefix),
            ("embeddings.passage_prefix", &e.passage_prefix),
        ] {
            if prefix.len() > 256 {
                return bad(key, "at most 256 bytes");
            }
        }
        Ok(())
    }

    /// The id clients use for the embedding model (None: embeddings are off).
    pub fn embeddings_model_id(&self) -> Option<String> {
        let path = self.embeddings.path.as_ref()?;
        if let Some(id) = &self.embeddings.id {
            return Some(id.clone());
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "embeddings".into());
        Some(name.strip_suffix(".gguf").unwrap_or(&name).to_string())
    }

    /// The id clients use for the speech model (None: transcription is off).
    pub fn speech_model_id(&self) -> Option<String> {
        let path = self.speech.path.as_ref()?;
        if let Some(id) = &self.speech.id {
            return Some(id.clone());
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "speech".into());
        let name = name.strip_suffix(".bin").unwrap_or(&name);
        Some(name.strip_prefix("ggml-").unwrap_or(name).to_string())
    }

    /// Where uploaded recordings wait while being transcribed.
    pub fn knowledge_dir(&self) -> PathBuf {
        self.knowledge
            .dir
            .clone()
            .unwrap_or_else(|| self.state_dir.join("knowledge"))
    }

    pub fn speech_spool_dir(&self) -> PathBuf {
        self.speech
            .spool_dir
            .clone()
            .unwrap_or_else(|| self.state_dir.join("spool").join("speech"))
    }

    /// Whether the API listener uses TLS: forced by `api.tls`, always on a non-loopback address.
    pub fn api_tls(&self) -> bool {
        self.api.tls || !self.api.listen.ip().is_loopback()
    }

    /// The update agent's state directory.
    pub fn update_state_dir(&self) -> PathBuf {
        self.update
            .state_dir
            .clone()
            .unwrap_or_else(|| self.state_dir.join("update"))
    }

    /// Where model bundles are installed.
    pub fn models_dir(&self) -> PathBuf {
        self.update
            .models_dir
            .clone()
            .unwrap_or_else(|| self.state_dir.join("models"))
    }

    /// The directory of civiad's secrets (`[secrets] dir`).
    pub fn secrets_dir(&self) -> PathBuf {
        self.secrets
            .dir
            .clone()
            .unwrap_or_else(|| self.state_dir.join("secrets"))
    }

    /// The admin socket of the `civia` CLI.
    pub fn admin_socket(&self) -> PathBuf {
        self.admin
            .socket
            .clone()
            .unwrap_or_else(|| self.state_dir.join("admin.sock"))
    }

    /// The id clients use for the configured model.
    pub fn model_id(&self) -> String {
        if let Some(id) = &self.model.id {
            return id.clone();
        }
        let name = self
            .model
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model".into());
        name.strip_suffix(".gguf").unwrap_or(&name).to_string()
    }
}

fn read_table(path: &Path) -> Result<toml::Table, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.into(),
        source,
    })?;
    text.parse().map_err(|e| ConfigError::Syntax {
        path: path.into(),
        source: Box::new(e),
    })
}

fn dropins(path: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let mut dir = path.as_os_str().to_owned();
    dir.push(".d");
    let dir = PathBuf::from(dir);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(ConfigError::Read { path: dir, source }),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| ConfigError::Read {
            path: dir.clone(),
            source,
        })?;
        let p = entry.path();
        if p.extension().is_some_and(|e| e == "toml") && p.is_file() {
            files.push(p);
        }
    }
    files.sort();
    Ok(files)
}

/// Deep merge: tables merge key by key, any other value replaces.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// What a user may do: named in the configuration (quotas per role), stored with each account,
/// checked by the API, given on the `civia` command line. One definition for all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Uses the model (web UI and `/v1`).
    Agent,
    /// Manages users, keys, quotas and the box.
    Admin,
    /// Reads compliance data and exports, nothing else.
    Dpo,
    /// Installs updates and model bundles, reads system status, nothing else.
    Integrator,
}

impl Role {
    /// Every role, in the order the documentation lists them.
    pub const ALL: [Role; 4] = [Role::Agent, Role::Admin, Role::Dpo, Role::Integrator];

    /// The role's name (`agent`, `admin`, `dpo`, `integrator`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Admin => "admin",
            Role::Dpo => "dpo",
            Role::Integrator => "integrator",
        }
    }
}

/// A name that is not a role.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role `{0}` (agent, admin, dpo or integrator)")]
pub struct UnknownRole(pub String);

impl std::str::FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, UnknownRole> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_and_refuse_other_names() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
        }
        assert_eq!("Admin".parse::<Role>(), Err(UnknownRole("Admin".into())));
        assert_eq!("".parse::<Role>(), Err(UnknownRole(String::new())));
    }

    const MINIMAL: &str = r#"
state_dir = "/var/lib/civia"
[api]
listen = "127.0.0.1:18080"
[model]
path = "/models/SmolLM2-135M-Instruct.Q4_1.gguf"
"#;

    #[test]
    fn minimal_config_gets_documented_defaults() {
        let c = Config::from_toml(MINIMAL).unwrap();
        assert_eq!(c.api.listen.port(), 18080);
        assert_eq!(c.api.max_tokens, 4096);
        assert_eq!(c.model.context_length, 4096);
        assert_eq!(c.model_id(), "SmolLM2-135M-Instruct.Q4_1");
        assert_eq!(c.log.level, "info");
    }

    #[test]
    fn example_file_matches_schema_and_defaults() {
        let text = include_str!("../civia.example.toml");
        let c = Config::from_toml(text).unwrap();
        let d = ApiConfig::default();
        assert_eq!(c.api.max_body_bytes, d.max_body_bytes);
        assert_eq!(c.api.max_messages, d.max_messages);
        assert_eq!(c.api.default_max_tokens, d.default_max_tokens);
        assert_eq!(
            c.runtime.load_timeout_secs,
            RuntimeConfig::default().load_timeout_secs
        );
        assert_eq!(c.model.gpu_layers, default_gpu_layers());
        assert_eq!(c.model.n_parallel, default_n_parallel());
        assert!(c.model.prefix_reuse);
        assert_eq!(c.runtime.queue_depth, RuntimeConfig::default().queue_depth);
        assert_eq!(c.api.allowed_sources, d.allowed_sources);
        assert_eq!(c.api.max_connections, d.max_connections);
        assert_eq!(
            c.api.max_connections_per_address,
            d.max_connections_per_address
        );
        assert_eq!(c.api.header_timeout_secs, d.header_timeout_secs);
        assert_eq!(c.api.body_timeout_secs, d.body_timeout_secs);
        assert_eq!(c.api.min_body_bytes_per_sec, d.min_body_bytes_per_sec);
        let ad = AdminConfig::default();
        assert_eq!(c.admin.allowed_sources, ad.allowed_sources);
        assert_eq!(
            (c.admin.max_connections, c.admin.max_connections_per_address),
            (ad.max_connections, ad.max_connections_per_address)
        );
        let bd = BackupConfig::default();
        assert_eq!(
            (
                &c.backup.destination,
                c.backup.hour_utc,
                c.backup.keep,
                c.backup.max_age_hours
            ),
            (&bd.destination, bd.hour_utc, bd.keep, bd.max_age_hours)
        );
        assert_eq!(
            (
                &c.backup.smb,
                &c.backup.smb_user,
                &c.backup.smb_domain,
                c.backup.smb_port,
                c.backup.smb_encrypt
            ),
            (
                &bd.smb,
                &bd.smb_user,
                &bd.smb_domain,
                bd.smb_port,
                bd.smb_encrypt
            )
        );
        let dd = DocumentsConfig::default();
        assert_eq!(
            (
                c.documents.timeout_secs,
                c.documents.memory_mb,
                c.documents.max_parallel
            ),
            (dd.timeout_secs, dd.memory_mb, dd.max_parallel)
        );
        let (a, q) = (AuthConfig::default(), QuotasConfig::default());
        assert_eq!(c.auth.lockout_failures, a.lockout_failures);
        assert_eq!(c.auth.lockout_secs, a.lockout_secs);
        assert_eq!(c.auth.address_failures, a.address_failures);
        assert_eq!(c.auth.session_idle_secs, a.session_idle_secs);
        assert_eq!(c.auth.session_absolute_secs, a.session_absolute_secs);
        assert_eq!(c.quotas.agent, q.agent);
        assert_eq!(c.quotas.admin, q.admin);
        assert_eq!(c.admin.socket_group, AdminConfig::default().socket_group);
        let u = UpdateConfig::default();
        assert_eq!(c.update.image_root, u.image_root);
        assert_eq!(c.update.compatible, u.compatible);
        assert_eq!(c.update.esp, u.esp);
        assert_eq!(
            (&c.update.slot_a_usr, &c.update.slot_b_verity),
            (&u.slot_a_usr, &u.slot_b_verity)
        );
        assert_eq!(
            (&c.update.booted_slot, &c.update.running_version),
            (&u.booted_slot, &u.running_version)
        );
        assert_eq!(
            (c.update.tries, c.update.max_upload_bytes),
            (u.tries, u.max_upload_bytes)
        );
        assert_eq!(
            c.runtime.queue_timeout_secs,
            RuntimeConfig::default().queue_timeout_secs
        );
        let (e, ed) = (&c.embeddings, EmbeddingsConfig::default());
        assert_eq!(
            (e.threads, e.gpu_layers, e.batch_size, e.max_sequences),
            (ed.threads, ed.gpu_layers, ed.batch_size, ed.max_sequences)
        );
        assert_eq!(
            (e.max_inputs_per_request, e.max_input_chars, e.queue_depth),
            (
                ed.max_inputs_per_request,
                ed.max_input_chars,
                ed.queue_depth
            )
        );
        assert!(
            e.path.is_none(),
            "embeddings are off until a model is named"
        );
    }

    #[test]
    fn embeddings_are_off_until_a_model_is_named_and_their_id_is_its_stem() {
        let c = Config::from_toml(MINIMAL).unwrap();
        assert_eq!(c.embeddings_model_id(), None);
        let on = format!("{MINIMAL}[embeddings]\npath = \"/m/multilingual-e5-small.Q4_0.gguf\"\n");
        let c = Config::from_toml(&on).unwrap();
        assert_eq!(
            c.embeddings_model_id().as_deref(),
            Some("multilingual-e5-small.Q4_0")
        );
        assert_eq!(c.embeddings.max_inputs_per_request, 256);
        let err = Config::from_toml(&format!("{on}max_inputs_per_request = 4096\n")).unwrap_err();
        assert!(
            err.to_string()
                .contains("embeddings.max_inputs_per_request"),
            "{err}"
        );
        let err =
            Config::from_toml(&format!("{on}id = \"SmolLM2-135M-Instruct.Q4_1\"\n")).unwrap_err();
        assert!(err.to_string().contains("embeddings.id"), "{err}");
    }

    #[test]
    fn lan_guard_ranges() {
        let r = default_allowed_sources();
        for ok in [
            "10.1.2.3",
            "172.31.255.1",
            "192.168.0.9",
            "127.0.0.2",
            "::1",
            "fd12::5",
            "::ffff:192.168.1.1",
        ] {
            assert!(source_allowed(&r, ok.parse().unwrap()), "{ok}");
        }
        for no in [
            "198.51.100.7",
            "203.0.113.9",
            "172.32.0.1",
            "8.8.8.8",
            "2001:db8::1",
            "::ffff:8.8.8.8",
        ] {
            assert!(!source_allowed(&r, no.parse().unwrap()), "{no}");
        }
        let c = Config::from_toml(&format!("{MINIMAL}\n")).unwrap();
        assert_eq!(c.admin_socket(), PathBuf::from("/var/lib/civia/admin.sock"));
        let err = Config::from_toml(
            &MINIMAL.replace("[model]", "allowed_sources = [\"10.0.0.0/33\"]\n[model]"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("allowed_sources"), "{err}");
    }

    #[test]
    fn unknown_key_is_named() {
        let err = Config::from_toml(&MINIMAL.replace("listen =", "lissten =")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("lissten"), "{msg}");
        assert!(msg.contains("api"), "{msg}");
        let err = Config::from_toml(&format!("colour = 1\n{MINIMAL}")).unwrap_err();
        assert!(err.to_string().contains("colour"), "{err}");
    }

    #[test]
    fn missing_required_and_bad_values_are_clear() {
        let err = Config::from_toml("[model]\npath = \"/m.gguf\"").unwrap_err();
        assert!(err.to_string().contains("state_dir"), "{err}");
        let err =
            Config::from_toml(&MINIMAL.replace("127.0.0.1:18080", "198.51.100.7:443")).unwrap_err();
        assert!(err.to_string().contains("api.listen"), "{err}");
        let lan =
            Config::from_toml(&MINIMAL.replace("127.0.0.1:18080", "192.168.1.20:443")).unwrap();
        assert!(lan.api_tls(), "a LAN address always uses TLS");
        let err = Config::from_toml(&format!("{MINIMAL}sha256 = \"abc\"\n")).unwrap_err();
        assert!(err.to_string().contains("model.sha256"), "{err}");
        let err = Config::from_toml(&MINIMAL.replace("18080", "\"x\"")).unwrap_err();
        assert!(matches!(err, ConfigError::Syntax { .. }), "{err}");
    }

    #[test]
    fn dropins_override_in_lexical_order() {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("civia.toml");
        std::fs::write(&main, MINIMAL).unwrap();
        let d = dir.path().join("civia.toml.d");
        std::fs::create_dir(&d).unwrap();
        std::fs::write(
            d.join("10-a.toml"),
            "[api]\nmax_tokens = 100\ndefault_max_tokens = 50\n",
        )
        .unwrap();
        std::fs::write(d.join("20-b.toml"), "[api]\nmax_tokens = 200\n").unwrap();
        std::fs::write(d.join("ignored.txt"), "garbage").unwrap();
        let c = Config::load(&main).unwrap();
        assert_eq!(c.api.max_tokens, 200);
        assert_eq!(c.api.default_max_tokens, 50);
        assert_eq!(c.api.listen.port(), 18080);
        std::fs::write(d.join("30-c.toml"), "[api]\nbogus = 1\n").unwrap();
        let err = Config::load(&main).unwrap_err().to_string();
        assert!(err.contains("30-c.toml") && err.contains("bogus"), "{err}");
    }

    #[test]
    fn smb_share_is_checked() {
        let with = |extra: &str| Config::from_toml(&format!("{MINIMAL}\n[backup]\n{extra}\n"));
        let c = with("smb = \"//192.168.1.20/Sauvegardes/Civia box/2026\"\nsmb_user = \"civia\"")
            .unwrap();
        let s = c.backup.smb_share().unwrap().unwrap();
        assert_eq!(s.server, "192.168.1.20".parse::<IpAddr>().unwrap());
        assert_eq!(
            (s.share.as_str(), s.folder.as_str()),
            ("Sauvegardes", "Civia box/2026")
        );
        assert_eq!((s.port, s.encrypt, s.domain.as_deref()), (445, false, None));
        assert_eq!(s.display(), "//192.168.1.20/Sauvegardes/Civia box/2026");
        let mapped = with("smb = \"//[::ffff:10.0.0.5]/s\"\nsmb_user = \"u\"").unwrap();
        assert_eq!(
            mapped.backup.smb_share().unwrap().unwrap().display(),
            "//10.0.0.5/s"
        );
        let v6 = with("smb = \"//[fd00::20]/nas\"\nsmb_user = \"u\"\nsmb_port = 4455").unwrap();
        assert_eq!(
            v6.backup.smb_share().unwrap().unwrap().display(),
            "//[fd00::20]/nas"
        );
        for (extra, key) in [
            (
                "smb = \"//nas.mairie.local/s\"\nsmb_user = \"u\"",
                "backup.smb",
            ),
            ("smb = \"192.168.1.20/s\"\nsmb_user = \"u\"", "backup.smb"),
            ("smb = \"//192.168.1.20/\"\nsmb_user = \"u\"", "backup.smb"),
            (
                "smb = \"//192.168.1.20/s/../x\"\nsmb_user = \"u\"",
                "backup.smb",
            ),
            (
                "smb = \"//192.168.1.20/s;ls\"\nsmb_user = \"u\"",
                "backup.smb",
            ),
            ("smb = \"//192.168.1.20/s\"", "backup.smb_user"),
            (
                "smb = \"//192.168.1.20/s\"\nsmb_user = \"a%b\"",
                "backup.smb_user",
            ),
            (
                "smb = \"//192.168.1.20/s\"\nsmb_user = \"-Ufoo\"",
                "backup.smb_user",
            ),
            (
                "smb = \"//192.168.1.20/s\"\nsmb_user = \"u\"\nsmb_port = 0",
                "backup.smb_port",
            ),
            (
                "smb = \"//192.168.1.20/s\"\nsmb_user = \"u\"\ndestination = \"/mnt/usb\"",
                "backup.smb",
            ),
        ] {
            let err = with(extra).unwrap_err();
            assert!(
                matches!(&err, ConfigError::Invalid { key: k, .. } if *k == key),
                "{extra}: {err}"
            );
        }
    }
}
