//! The command line.

use clap::{ArgGroup, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Administer a Civia appliance through civiad's admin socket.
#[derive(Debug, Parser)]
#[command(name = "civia", version)]
pub struct Cli {
    /// civiad's configuration file, where the admin socket is found (required unless --socket)
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// The admin socket, instead of the one named by the configuration
    #[arg(long, value_name = "PATH", global = true)]
    pub socket: Option<PathBuf>,
    /// Print civiad's raw JSON answer instead of text (for scripts)
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Accounts
    #[command(subcommand)]
    User(UserCommand),
    /// API keys
    #[command(subcommand)]
    Key(KeyCommand),
    /// Per-user quotas
    #[command(subcommand)]
    Quota(QuotaCommand),
    /// Usage per day
    Usage {
        /// How many days back
        #[arg(long, default_value_t = 30)]
        days: u32,
        /// Group by model or by the users' service
        #[arg(long, value_enum, default_value_t = UsageBy::Model)]
        by: UsageBy,
    },
    /// civiad's state
    Status,
    /// The box's state for its console, in French: version, slot, IP addresses, /var
    /// encryption, TPM, Secure Boot, pairing code (one `Libellé : valeur` line each)
    ConsoleStatus,
    /// Signed updates (system and model bundles)
    #[command(subcommand)]
    Update(UpdateCommand),
    /// The audit trail (reading it is itself audited)
    #[command(subcommand)]
    Audit(AuditCommand),
    /// The usage charter every user accepts (AI Act art. 4)
    #[command(subcommand)]
    Charter(CharterCommand),
    /// Data-subject requests (RGPD art. 15, 17): export or erase what the box holds about a user
    #[command(subcommand)]
    Dsr(DsrCommand),
    /// The commune's documents: the shared collections and the import of a folder (a USB stick,
    /// an archive) into one of them
    #[command(subcommand)]
    Knowledge(KnowledgeCommand),
    /// Compliance documents in French, from the live configuration (Markdown; --json for JSON)
    Compliance {
        #[arg(value_enum)]
        document: ComplianceDocument,
    },
    /// Encrypted backups of the box's state (docs/backup.md). Works on the state directory of
    /// --config directly, while civiad is stopped
    #[command(subcommand)]
    Backup(BackupCommand),
}

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Create the backup key: printed once, on the last line; the box keeps only its public
    /// half (refuses when a key exists)
    Key,
    /// Write an encrypted archive of the state (the models are named, not copied)
    Create {
        /// The archive to write (written as PATH.partial, renamed when complete)
        #[arg(long, value_name = "PATH")]
        output: PathBuf,
    },
    /// Restore an archive into the state directory, which must be empty (or --force):
    /// the whole archive is checked before anything is written
    Restore {
        archive: PathBuf,
        /// The backup key, as `civia backup key` printed it
        #[arg(long, value_name = "FILE")]
        key_file: PathBuf,
        /// Replace a state directory that is not empty
        #[arg(long)]
        force: bool,
    },
    /// Decrypt and check an archive, writing nothing
    Verify {
        archive: PathBuf,
        #[arg(long, value_name = "FILE")]
        key_file: PathBuf,
    },
    /// The archives in a folder: name, size, date (their content needs the key: `verify`)
    List { dir: PathBuf },
    /// The nftables commands that open the box's firewall to exactly the NAS of
    /// `[backup] smb` (its address and port, for civiad's user), and to nothing without one;
    /// run by civia-backup-egress.service at start (`nft -f`)
    Firewall {
        /// Write them to FILE (atomically) rather than to the standard output
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ComplianceDocument {
    /// RGPD art. 30 record of processing entry
    Register,
    /// DPIA (AIPD) kit, pre-filled
    Dpia,
    /// AI Act deployer checklist (art. 4, 26, 50)
    Checklist,
}

impl ComplianceDocument {
    pub fn as_str(self) -> &'static str {
        match self {
            ComplianceDocument::Register => "register",
            ComplianceDocument::Dpia => "dpia",
            ComplianceDocument::Checklist => "checklist",
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum CharterCommand {
    /// Print the current charter
    Show,
    /// Publish a new version from a UTF-8 text file; every user accepts it again
    Set {
        /// The charter text
        file: PathBuf,
    },
    /// The attestation register: who accepted which version when
    Register {
        /// CSV instead of a table
        #[arg(long)]
        csv: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum KnowledgeCommand {
    /// The collections shared with a service or the whole commune (agents' private ones are
    /// never shown)
    Collections,
    /// Send every document of a folder and its subfolders (PDF, DOCX, ODT, text, Markdown,
    /// HTML, scans) to a shared collection; indexing goes on in the background. Hidden files,
    /// links and other formats are skipped; a file already in the collection is not sent twice,
    /// so an interrupted import is run again as it was
    Import {
        /// The folder to import
        dir: PathBuf,
        /// The shared collection's id (see `civia knowledge collections`)
        #[arg(long)]
        collection: i64,
        /// The documents' date (YYYY-MM-DD), when they all share one; otherwise the import day
        #[arg(long)]
        date: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum DsrCommand {
    /// Everything about a user, conversations included, as JSON (audited with the reason)
    Export {
        name: String,
        /// The request's reference, recorded in the audit
        #[arg(long)]
        reason: String,
        /// Write to this file (0600) instead of the standard output
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Erase a user's conversations (and the account with --delete-account)
    Erase {
        name: String,
        /// The request's reference, recorded in the audit
        #[arg(long)]
        reason: String,
        #[arg(long)]
        delete_account: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain and the segment signatures; exit 1 naming the first bad entry
    Verify,
    /// Export entries with `from <= ts < to` (RFC 3339 UTC, e.g. 2026-11-01T00:00:00Z)
    Export {
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        /// CSV instead of JSON lines
        #[arg(long)]
        csv: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum UpdateCommand {
    /// Slots, versions, floor, the served model's versions
    Status,
    /// Install a signed bundle from a file on the box (e.g. a USB stick)
    Install {
        /// The bundle file (absolute or relative to the current directory)
        path: std::path::PathBuf,
        /// A model bundle (default: a system bundle)
        #[arg(long)]
        model: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account (a password is generated and printed unless --password-stdin)
    Add {
        name: String,
        #[arg(long, value_parser = role_parser())]
        role: Role,
        /// The user's service (e.g. "État civil")
        #[arg(long)]
        service: Option<String>,
        /// Read the password from the first line of standard input
        #[arg(long)]
        password_stdin: bool,
    },
    /// List the accounts
    List,
    /// Show one account
    Show { name: String },
    /// Disable an account (its sessions and keys stop working)
    Disable { name: String },
    /// Enable a disabled account
    Enable { name: String },
    /// Change an account's role
    SetRole {
        name: String,
        #[arg(value_parser = role_parser())]
        role: Role,
    },
    /// Change an account's service
    SetService { name: String, service: String },
    /// Set a password (from stdin) or generate a new one and print it
    Passwd {
        name: String,
        /// Read the password from the first line of standard input
        #[arg(long)]
        password_stdin: bool,
    },
    /// Delete an account
    Delete { name: String },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create an API key for a user; it is printed once
    Create {
        #[arg(long)]
        user: String,
        /// A label for the key
        #[arg(long)]
        name: Option<String>,
        /// Restrict the key to one model id
        #[arg(long)]
        model: Option<String>,
        /// Expire the key after this many days
        #[arg(long, value_name = "N")]
        expires_days: Option<u32>,
    },
    /// List keys (all, or one user's)
    List {
        #[arg(long)]
        user: Option<String>,
    },
    /// Revoke a key
    Revoke { id: u64 },
}

#[derive(Debug, Subcommand)]
pub enum QuotaCommand {
    /// Show a user's quota override, effective limits and today's tokens
    Show { name: String },
    /// Override a user's limits (0 = unlimited, "default" = the role's default)
    #[command(group(ArgGroup::new("limits").required(true).multiple(true).args(["rpm", "tokens_per_day"])))]
    Set {
        name: String,
        /// Requests per minute: N or "default"
        #[arg(long, value_name = "N|default", value_parser = parse_limit)]
        rpm: Option<Limit>,
        /// Tokens per day: N or "default"
        #[arg(long, value_name = "N|default", value_parser = parse_limit)]
        tokens_per_day: Option<Limit>,
    },
}

/// A quota value on the command line: `None` is "default" (the role's default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit(pub Option<u64>);

fn parse_limit(s: &str) -> Result<Limit, String> {
    if s == "default" {
        return Ok(Limit(None));
    }
    s.parse()
        .map(|n| Limit(Some(n)))
        .map_err(|_| format!("`{s}` is neither a number nor `default`"))
}

pub use civia_config::Role;

/// `--role`: one of the roles, listed in `--help`.
fn role_parser() -> impl clap::builder::TypedValueParser<Value = Role> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(Role::ALL.map(Role::as_str))
        .try_map(|s| s.parse::<Role>())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum UsageBy {
    Model,
    Service,
}

impl UsageBy {
    pub fn as_str(self) -> &'static str {
        match self {
            UsageBy::Model => "model",
            UsageBy::Service => "service",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;

    #[test]
    fn user_add_contract() {
        let cli = Cli::try_parse_from([
            "civia",
            "--config",
            "/etc/civia/civia.toml",
            "user",
            "add",
            "alice",
            "--role",
            "agent",
        ])
        .unwrap();
        assert_eq!(cli.config, Some(PathBuf::from("/etc/civia/civia.toml")));
        assert!(!cli.json && cli.socket.is_none());
        match cli.command {
            Command::User(UserCommand::Add {
                name,
                role,
                service,
                password_stdin,
            }) => {
                assert_eq!((name.as_str(), role), ("alice", Role::Agent));
                assert_eq!(service, None);
                assert!(!password_stdin);
            }
            other => panic!("{other:?}"),
        }
        let cli = Cli::try_parse_from([
            "civia",
            "--config",
            "c.toml",
            "user",
            "add",
            "bob",
            "--role",
            "dpo",
            "--service",
            "État civil",
            "--password-stdin",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            Command::User(UserCommand::Add { role: Role::Dpo, service: Some(ref s), password_stdin: true, .. }) if s == "État civil"
        ));
        let e = Cli::try_parse_from(["civia", "--config", "c", "user", "add", "x"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::MissingRequiredArgument);
        let e = Cli::try_parse_from(["civia", "user", "add", "x", "--role", "boss"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidValue);
    }

    #[test]
    fn key_create_contract() {
        let cli = Cli::try_parse_from([
            "civia", "--config", "c.toml", "key", "create", "--user", "alice",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            Command::Key(KeyCommand::Create { ref user, name: None, model: None, expires_days: None }) if user == "alice"
        ));
        let cli = Cli::try_parse_from([
            "civia",
            "--config",
            "c.toml",
            "key",
            "create",
            "--user",
            "alice",
            "--name",
            "laptop",
            "--model",
            "mistral-7b",
            "--expires-days",
            "90",
        ])
        .unwrap();
        match cli.command {
            Command::Key(KeyCommand::Create {
                user,
                name,
                model,
                expires_days,
            }) => {
                assert_eq!(user, "alice");
                assert_eq!(name.as_deref(), Some("laptop"));
                assert_eq!(model.as_deref(), Some("mistral-7b"));
                assert_eq!(expires_days, Some(90));
            }
            other => panic!("{other:?}"),
        }
        let e = Cli::try_parse_from(["civia", "--config", "c", "key", "create"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::MissingRequiredArgument);
    }

    #[test]
    fn global_options_anywhere_and_quota_values() {
        let cli =
            Cli::try_parse_from(["civia", "user", "list", "--json", "--socket", "/s"]).unwrap();
        assert!(cli.json);
        assert_eq!(cli.socket, Some(PathBuf::from("/s")));
        let cli = Cli::try_parse_from(["civia", "quota", "set", "a", "--rpm", "default"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Quota(QuotaCommand::Set {
                rpm: Some(Limit(None)),
                tokens_per_day: None,
                ..
            })
        ));
        let cli = Cli::try_parse_from([
            "civia",
            "quota",
            "set",
            "a",
            "--rpm",
            "0",
            "--tokens-per-day",
            "5000",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            Command::Quota(QuotaCommand::Set {
                rpm: Some(Limit(Some(0))),
                tokens_per_day: Some(Limit(Some(5000))),
                ..
            })
        ));
        let e = Cli::try_parse_from(["civia", "quota", "set", "a"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::MissingRequiredArgument);
        let e = Cli::try_parse_from(["civia", "quota", "set", "a", "--rpm", "lots"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ValueValidation);
        let cli = Cli::try_parse_from(["civia", "--socket", "/s", "console-status"]).unwrap();
        assert!(matches!(cli.command, Command::ConsoleStatus));
        let cli = Cli::try_parse_from(["civia", "usage"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Usage {
                days: 30,
                by: UsageBy::Model
            }
        ));
    }
}
