//! `civia-bundle`: the integrator's tool. See docs/updates.md.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use civia_bundle::{
    build, keygen, load_public, load_secret, new_root, read_bundle_header, read_text, sign_bundle,
    sign_root, verify_file, BuildSpec, BundleToolError,
};
use civia_bundle_format::{BoxState, BundleKind, Envelope, Manifest, RootMeta, Version};
use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "civia-bundle",
    about = "Build, sign and inspect Civia update bundles"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, ValueEnum)]
enum Kind {
    System,
    Model,
}

#[derive(Subcommand)]
enum Cmd {
    /// Generate an ed25519 key pair: PREFIX.key (secret, 0600) and PREFIX.pub.
    Keygen { prefix: PathBuf },
    /// Create unsigned root metadata (then sign it with `root-sign`).
    RootNew {
        #[arg(long)]
        version: u64,
        /// Validity in days from now.
        #[arg(long, default_value_t = 3650)]
        expires_days: i64,
        #[arg(long = "root-key", required = true)]
        root_keys: Vec<PathBuf>,
        #[arg(long)]
        root_threshold: u32,
        #[arg(long = "bundle-key", required = true)]
        bundle_keys: Vec<PathBuf>,
        #[arg(long)]
        bundle_threshold: u32,
        #[arg(short, long)]
        out: PathBuf,
    },
    /// Add a signature to root metadata (old and new root keyholders, on rotation).
    RootSign {
        #[arg(long = "key", required = true)]
        keys: Vec<PathBuf>,
        root: PathBuf,
    },
    /// Build an unsigned bundle.
    Build {
        #[arg(long, value_enum)]
        kind: Kind,
        #[arg(long)]
        compatible: String,
        #[arg(long)]
        version: Version,
        /// Lowest version a box may accept once it has blessed this one.
        #[arg(long)]
        floor: Version,
        #[arg(long, default_value_t = 365)]
        expires_days: i64,
        /// System: the /usr partition image.
        #[arg(long)]
        usr: Option<PathBuf>,
        /// System: its dm-verity hash tree (veritysetup format --data usr --hash FILE).
        #[arg(long)]
        verity: Option<PathBuf>,
        /// System: the verity root hash (hex).
        #[arg(long)]
        root_hash: Option<String>,
        /// System: the unified kernel image.
        #[arg(long)]
        uki: Option<PathBuf>,
        /// Model: its id (directory name on the box).
        #[arg(long)]
        model_id: Option<String>,
        /// Model: the GGUF file.
        #[arg(long)]
        model: Option<PathBuf>,
        /// Model: its dossier (JSON).
        #[arg(long)]
        dossier: Option<PathBuf>,
        /// Root rotations to carry, oldest first (signed root metadata files).
        #[arg(long = "carry-root")]
        roots: Vec<PathBuf>,
        #[arg(short, long)]
        out: PathBuf,
    },
    /// Add signatures to a bundle (each keyholder signs in turn).
    Sign {
        #[arg(long = "key", required = true)]
        keys: Vec<PathBuf>,
        bundle: PathBuf,
    },
    /// Print a bundle's (unverified) header: manifest, signatures, carried roots.
    Inspect { bundle: PathBuf },
    /// Verify a bundle as a box would (signatures, threshold, expiry, floor, payload hashes).
    Verify {
        bundle: PathBuf,
        /// The box's trusted root metadata.
        #[arg(long)]
        root: PathBuf,
        #[arg(long)]
        compatible: String,
        #[arg(long)]
        running: Option<Version>,
        #[arg(long, default_value = "0.0.0")]
        floor: Version,
        /// Reference time (unix seconds); default: now.
        #[arg(long)]
        reference_time: Option<i64>,
    },
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn usage(m: &str) -> BundleToolError {
    BundleToolError::Usage(m.into())
}

fn load_env(p: &Path) -> Result<Envelope, BundleToolError> {
    serde_json::from_str(&read_text(p)?)
        .map_err(|e| usage(&format!("{}: not root metadata: {e}", p.display())))
}

fn write_json(p: &Path, v: &impl serde::Serialize) -> Result<(), BundleToolError> {
    let text = serde_json::to_string_pretty(v).map_err(|e| usage(&e.to_string()))?;
    std::fs::write(p, text + "\n").map_err(|source| BundleToolError::Io {
        context: format!("writing {}", p.display()),
        source,
    })
}

fn run(cli: Cli) -> Result<(), BundleToolError> {
    match cli.cmd {
        Cmd::Keygen { prefix } => {
            let k = keygen(&prefix)?;
            println!("key id {}", k.key_id());
        }
        Cmd::RootNew {
            version,
            expires_days,
            root_keys,
            root_threshold,
            bundle_keys,
            bundle_threshold,
            out,
        } => {
            let rk = root_keys
                .iter()
                .map(|p| load_public(p))
                .collect::<Result<Vec<_>, _>>()?;
            let bk = bundle_keys
                .iter()
                .map(|p| load_public(p))
                .collect::<Result<Vec<_>, _>>()?;
            let env = new_root(
                version,
                now() + expires_days * 86400,
                &rk,
                root_threshold,
                &bk,
                bundle_threshold,
            )?;
            write_json(&out, &env)?;
            println!(
                "root metadata v{version} written (unsigned) to {}",
                out.display()
            );
        }
        Cmd::RootSign { keys, root } => {
            let mut env = load_env(&root)?;
            for k in &keys {
                sign_root(&mut env, &load_secret(k)?);
            }
            write_json(&root, &env)?;
            println!(
                "{} signature(s) on {}",
                env.signatures.len(),
                root.display()
            );
        }
        Cmd::Build {
            kind,
            compatible,
            version,
            floor,
            expires_days,
            usr,
            verity,
            root_hash,
            uki,
            model_id,
            model,
            dossier,
            roots,
            out,
        } => {
            let (kind, payloads, root_hash, model_id) = match kind {
                Kind::System => {
                    let (Some(u), Some(v), Some(h), Some(k)) = (usr, verity, root_hash, uki) else {
                        return Err(usage(
                            "a system bundle needs --usr, --verity, --root-hash, --uki",
                        ));
                    };
                    let p = vec![
                        ("usr".into(), u),
                        ("usr.verity".into(), v),
                        ("uki".into(), k),
                    ];
                    (BundleKind::System, p, Some(h.to_lowercase()), None)
                }
                Kind::Model => {
                    let (Some(id), Some(m), Some(d)) = (model_id, model, dossier) else {
                        return Err(usage("a model bundle needs --model-id, --model, --dossier"));
                    };
                    let p = vec![("model.gguf".into(), m), ("dossier.json".into(), d)];
                    (BundleKind::Model, p, None, Some(id))
                }
            };
            let created = now();
            let spec = BuildSpec {
                kind,
                compatible,
                version,
                floor,
                created,
                expires: created + expires_days * 86400,
                verity_root_hash: root_hash,
                model_id,
                payloads,
                roots: roots
                    .iter()
                    .map(|p| load_env(p))
                    .collect::<Result<_, _>>()?,
            };
            let m = build(&spec, &out)?;
            println!(
                "built {} bundle {} ({} bytes of payload, unsigned) at {}",
                m.kind,
                m.version,
                m.payload_total(),
                out.display()
            );
        }
        Cmd::Sign { keys, bundle } => {
            let keys = keys
                .iter()
                .map(|k| load_secret(k))
                .collect::<Result<Vec<_>, _>>()?;
            sign_bundle(&bundle, &keys)?;
            let (h, _) = read_bundle_header(&bundle)?;
            println!(
                "{} signature(s) on {}",
                h.manifest.signatures.len(),
                bundle.display()
            );
        }
        Cmd::Inspect { bundle } => {
            let (h, offset) = read_bundle_header(&bundle)?;
            let m: Manifest = h.manifest.parse_unverified()?;
            let roots: Vec<serde_json::Value> = h
                .roots
                .iter()
                .map(|r| {
                    let meta: Option<RootMeta> = r.parse_unverified().ok();
                    serde_json::json!({
                        "version": meta.map(|m| m.version),
                        "signatures": r.signatures.iter().map(|s| &s.keyid).collect::<Vec<_>>(),
                    })
                })
                .collect();
            let out = serde_json::json!({
                "verified": false,
                "manifest": m,
                "signatures": h.manifest.signatures.iter().map(|s| &s.keyid).collect::<Vec<_>>(),
                "carried_roots": roots,
                "payload_offset": offset,
            });
            println!(
                "{}",
                serde_json::to_string_pretty(&out).map_err(|e| usage(&e.to_string()))?
            );
        }
        Cmd::Verify {
            bundle,
            root,
            compatible,
            running,
            floor,
            reference_time,
        } => {
            let env = load_env(&root)?;
            let meta: RootMeta = env.parse_unverified()?;
            meta.validate()?;
            env.verify_role(civia_bundle_format::meta::Domain::Root, &meta.root)?;
            let st = BoxState {
                compatible: &compatible,
                trusted_root: &meta,
                running,
                floor,
                reference_time: reference_time.unwrap_or_else(now),
            };
            let v = verify_file(&bundle, &st)?;
            println!(
                "OK: {} bundle {} for {}, floor {}, root v{}",
                v.manifest.kind,
                v.manifest.version,
                v.manifest.compatible,
                v.manifest.floor,
                v.root.version
            );
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("civia-bundle: {e}");
            ExitCode::FAILURE
        }
    }
}
