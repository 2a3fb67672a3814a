//! `civia-provision`: first boot, status, recovery key, quotes and factory reset.

use std::path::PathBuf;
use std::process::ExitCode;

use civia_provision::luks::Auth;
use civia_provision::{Config, ProvisionError};
use civia_tpm::{policy::parse_pcr_list, verify_quote, PcrValues, Quote, Tpm};
use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "civia-provision",
    version,
    about = "Civia box provisioning: TPM, encrypted volume, recovery key"
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Args)]
struct Global {
    /// Provisioning state directory (persistent; no key is ever written there in clear).
    #[arg(long, default_value = "/var/lib/civia/provision", global = true)]
    state_dir: PathBuf,
    /// Directory on a RAM file system (tmpfs) for short-lived key files and, without a TPM,
    /// the keys waiting during first boot.
    #[arg(long, default_value = "/run/civia-provision", global = true)]
    runtime_dir: PathBuf,
    /// LUKS2 data volume (block device or file).
    #[arg(long, global = true)]
    volume: Option<PathBuf>,
    /// TPM TCTI, e.g. device:/dev/tpmrm0 or swtpm:host=127.0.0.1,port=2321.
    #[arg(long, global = true, conflicts_with = "trial")]
    tcti: Option<String>,
    /// Trial mode: no TPM, secrets in 0600 files.
    #[arg(long, global = true)]
    trial: bool,
    /// PCRs bound to their current values ("7", "" for none).
    #[arg(long, default_value = "7", global = true)]
    pcrs: String,
    /// PCRs covered by signed policies.
    #[arg(long, default_value = "11", global = true)]
    signed_pcrs: String,
    /// Integrator's PCR-policy signing public key (PEM).
    #[arg(long, global = true)]
    policy_key: Option<PathBuf>,
    /// Signed PCR policies (systemd-measure JSON) for unsealing the secrets and the keys
    /// waiting during first boot (`first-boot`, `recovery-key take`).
    #[arg(long, global = true)]
    signed_policy: Option<PathBuf>,
    /// Where the boot records how the volume was unlocked.
    #[arg(long, default_value = "/run/civia/unlock-method", global = true)]
    unlock_report: PathBuf,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run or resume the first-boot flow (idempotent); prints the pairing code.
    FirstBoot,
    /// Status report (JSON).
    Status,
    /// Recovery key: show the pending one once, or rotate it.
    RecoveryKey {
        #[command(subcommand)]
        action: RecoveryCmd,
    },
    /// Quote the configured PCRs with a caller's nonce (JSON on stdout).
    Quote {
        /// Nonce, hex (at most 64 bytes).
        #[arg(long)]
        nonce: String,
        /// PCRs to quote.
        #[arg(long = "quote-pcrs", default_value = "7+11")]
        quote_pcrs: String,
    },
    /// Check a quote offline against the PCR values published with an image.
    VerifyQuote {
        /// The quote (JSON from `quote`).
        #[arg(long)]
        quote: PathBuf,
        /// The box's attestation key: hex SEC1, or a file holding it (recorded at provisioning).
        #[arg(long)]
        ak: String,
        /// The nonce the verifier sent, hex.
        #[arg(long)]
        nonce: String,
        /// Published PCR values: JSON {"7": "hex", "11": "hex"}.
        #[arg(long)]
        published: PathBuf,
    },
    /// Destroy keyslots, secrets and state, then provision anew.
    FactoryReset {
        /// The volume's LUKS UUID (or "factory-reset" without a volume), to confirm.
        #[arg(long)]
        confirm: String,
        /// Also clear the TPM's owner hierarchy (TPM2_Clear).
        #[arg(long)]
        clear_tpm: bool,
    },
}

#[derive(Subcommand)]
enum RecoveryCmd {
    /// Print the recovery key waiting since first boot, and forget it.
    Take,
    /// Enroll a new recovery key, remove the old one, print the new one.
    Rotate {
        /// A file holding a current passphrase (e.g. the current recovery key).
        #[arg(long, conflicts_with = "volume_key_file")]
        key_file: Option<PathBuf>,
        /// A file holding the volume key.
        #[arg(long)]
        volume_key_file: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("civia-provision: {e}");
            ExitCode::FAILURE
        }
    }
}

fn config(g: &Global) -> Result<Config, ProvisionError> {
    if g.tcti.is_none() && !g.trial {
        return Err(ProvisionError::Refused(
            "give --tcti (the TPM) or --trial (no TPM, secrets in plain files)".into(),
        ));
    }
    let pcrs = |s: &str| -> Result<Vec<u8>, ProvisionError> {
        if s.trim().is_empty() {
            Ok(Vec::new())
        } else {
            Ok(parse_pcr_list(s)?)
        }
    };
    Ok(Config {
        state_dir: g.state_dir.clone(),
        runtime_dir: g.runtime_dir.clone(),
        volume: g.volume.clone(),
        tcti: g.tcti.clone(),
        literal_pcrs: pcrs(&g.pcrs)?,
        signed_pcrs: pcrs(&g.signed_pcrs)?,
        policy_key: g.policy_key.clone(),
        signed_policy: g.signed_policy.clone(),
        unlock_report: g.unlock_report.clone(),
    })
}

fn print_json<T: serde::Serialize>(v: &T) -> Result<(), ProvisionError> {
    let s = serde_json::to_string_pretty(v).map_err(|e| ProvisionError::Format {
        what: "JSON output",
        reason: e.to_string(),
    })?;
    println!("{s}");
    Ok(())
}

fn read(path: &PathBuf) -> Result<String, ProvisionError> {
    std::fs::read_to_string(path).map_err(|source| ProvisionError::Io {
        path: path.clone(),
        source,
    })
}

fn unhex(what: &'static str, s: &str) -> Result<Vec<u8>, ProvisionError> {
    hex::decode(s.trim()).map_err(|e| ProvisionError::Format {
        what,
        reason: e.to_string(),
    })
}

fn run(cli: Cli) -> Result<(), ProvisionError> {
    let cfg = || config(&cli.global);
    match cli.command {
        Cmd::VerifyQuote {
            quote,
            ak,
            nonce,
            published,
        } => {
            let q: Quote =
                serde_json::from_str(&read(&quote)?).map_err(|e| ProvisionError::Format {
                    what: "quote",
                    reason: e.to_string(),
                })?;
            let ak_hex = if std::path::Path::new(&ak).is_file() {
                read(&PathBuf::from(&ak))?
            } else {
                ak
            };
            let expected: PcrValues =
                serde_json::from_str(&read(&published)?).map_err(|e| ProvisionError::Format {
                    what: "published PCR values",
                    reason: e.to_string(),
                })?;
            let info = verify_quote(
                &q,
                &unhex("attestation key", &ak_hex)?,
                &unhex("nonce", &nonce)?,
                &expected,
            )
            .map_err(|e| ProvisionError::Refused(format!("quote refused: {e}")))?;
            println!(
                "quote OK: PCR {:?} hold the published values; reset count {}, restart count {}",
                info.pcrs, info.reset_count, info.restart_count
            );
            Ok(())
        }
        Cmd::FirstBoot => print_json(&civia_provision::first_boot(&cfg()?)?),
        Cmd::Status => print_json(&civia_provision::status(&cfg()?)?),
        Cmd::RecoveryKey {
            action: RecoveryCmd::Take,
        } => {
            match civia_provision::take_recovery_key(&cfg()?)? {
                Some(k) => println!("{}", k.as_str()),
                None => return Err(ProvisionError::Refused(
                    "no recovery key waiting: it was already shown (rotate it to get a new one)"
                        .into(),
                )),
            }
            Ok(())
        }
        Cmd::RecoveryKey {
            action:
                RecoveryCmd::Rotate {
                    key_file,
                    volume_key_file,
                },
        } => {
            let cfg = cfg()?;
            let key = match (&key_file, &volume_key_file) {
                (Some(k), None) => {
                    // A typed recovery key is normalized (case, spaces, dashes) first.
                    let raw = zeroize::Zeroizing::new(read(k)?);
                    let norm = civia_provision::recovery::normalize(&raw)
                        .map(|n| n.as_bytes().to_vec())
                        .unwrap_or_else(|| raw.trim_end_matches('\n').as_bytes().to_vec());
                    let norm = zeroize::Zeroizing::new(norm);
                    civia_provision::rotate_recovery_key(&cfg, &Auth::Passphrase(&norm))?
                }
                (None, Some(vk)) => {
                    civia_provision::rotate_recovery_key(&cfg, &Auth::VolumeKey(vk))?
                }
                _ => {
                    return Err(ProvisionError::Refused(
                        "give --key-file or --volume-key-file".into(),
                    ))
                }
            };
            println!("{}", key.as_str());
            Ok(())
        }
        Cmd::Quote { nonce, quote_pcrs } => {
            let cfg = cfg()?;
            let tcti = cfg
                .tcti
                .as_ref()
                .ok_or_else(|| ProvisionError::Refused("quotes need a TPM (--tcti)".into()))?;
            let q =
                Tpm::open(tcti)?.quote(&parse_pcr_list(&quote_pcrs)?, &unhex("nonce", &nonce)?)?;
            print_json(&q)
        }
        Cmd::FactoryReset { confirm, clear_tpm } => print_json(&civia_provision::factory_reset(
            &cfg()?,
            &confirm,
            clear_tpm,
        )?),
    }
}
