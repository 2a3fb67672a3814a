//! The integrator's side of Civia bundles: root metadata, building and signing bundles.
//! The `civia-bundle` binary is a thin CLI over these functions; tests of the on-box agent
//! use them to make real bundles.
//!
//! This crate owns the writing side of the format (the reading and checking side is
//! `civia-bundle-format`'s). It must never: sign anything without an explicit key file from
//! the operator, write a secret key readable by others, or alter payload bytes (signing only
//! rewrites the header).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use civia_bundle_format::container::read_header;
use civia_bundle_format::meta::{Domain, MANIFEST_TYPE, ROOT_TYPE};
use civia_bundle_format::verify::{check_payloads, verify_header};
use civia_bundle_format::{
    BoxState, BundleKind, Envelope, FormatError, Header, Manifest, PayloadInfo, PublicKey, Role,
    RootMeta, SecretKey, Verified, Version,
};

#[derive(Debug, thiserror::Error)]
pub enum BundleToolError {
    #[error(transparent)]
    Format(#[from] FormatError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    #[error("{0}")]
    Usage(String),
}

fn io_ctx(context: impl Into<String>) -> impl FnOnce(io::Error) -> BundleToolError {
    let context = context.into();
    move |source| BundleToolError::Io { context, source }
}

pub fn read_text(p: &Path) -> Result<String, BundleToolError> {
    fs::read_to_string(p).map_err(io_ctx(format!("reading {}", p.display())))
}

pub fn load_secret(p: &Path) -> Result<SecretKey, BundleToolError> {
    Ok(SecretKey::from_file(&read_text(p)?)?)
}

pub fn load_public(p: &Path) -> Result<PublicKey, BundleToolError> {
    Ok(PublicKey::from_file(&read_text(p)?)?)
}

/// Writes `<prefix>.key` (mode 0600) and `<prefix>.pub`; refuses to overwrite.
pub fn keygen(prefix: &Path) -> Result<PublicKey, BundleToolError> {
    use std::os::unix::fs::OpenOptionsExt;
    let key = SecretKey::generate()?;
    let secret = prefix.with_extension("key");
    let public = prefix.with_extension("pub");
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&secret)
        .map_err(io_ctx(format!("creating {}", secret.display())))?;
    f.write_all(key.to_file().as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(io_ctx(format!("writing {}", secret.display())))?;
    fs::write(&public, key.public().to_file())
        .map_err(io_ctx(format!("writing {}", public.display())))?;
    Ok(key.public())
}

/// New, unsigned root metadata.
pub fn new_root(
    version: u64,
    expires: i64,
    root_keys: &[PublicKey],
    root_threshold: u32,
    bundle_keys: &[PublicKey],
    bundle_threshold: u32,
) -> Result<Envelope, BundleToolError> {
    let meta = RootMeta {
        kind: ROOT_TYPE.into(),
        version,
        expires,
        root: Role {
            keys: root_keys.iter().map(PublicKey::to_hex).collect(),
            threshold: root_threshold,
        },
        bundle: Role {
            keys: bundle_keys.iter().map(PublicKey::to_hex).collect(),
            threshold: bundle_threshold,
        },
    };
    meta.validate()?;
    Ok(Envelope::new(&meta)?)
}

pub fn sign_root(env: &mut Envelope, key: &SecretKey) {
    env.sign(Domain::Root, key);
}

/// What goes into a bundle.
#[derive(Clone, Debug)]
pub struct BuildSpec {
    pub kind: BundleKind,
    pub compatible: String,
    pub version: Version,
    pub floor: Version,
    pub created: i64,
    pub expires: i64,
    pub verity_root_hash: Option<String>,
    pub model_id: Option<String>,
    /// `(payload name, file)`, in the kind's order.
    pub payloads: Vec<(String, PathBuf)>,
    /// Root rotations to carry (oldest first).
    pub roots: Vec<Envelope>,
}

fn hash_file(p: &Path) -> Result<(u64, String), BundleToolError> {
    use sha2::Digest;
    let f = File::open(p).map_err(io_ctx(format!("opening {}", p.display())))?;
    let mut r = BufReader::new(f);
    let mut h = sha2::Sha256::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = r
            .read(&mut buf)
            .map_err(io_ctx(format!("reading {}", p.display())))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, hex::encode(h.finalize())))
}

/// Builds an unsigned bundle at `out`.
pub fn build(spec: &BuildSpec, out: &Path) -> Result<Manifest, BundleToolError> {
    let mut payloads = Vec::new();
    for (name, p) in &spec.payloads {
        let (size, sha256) = hash_file(p)?;
        payloads.push(PayloadInfo {
            name: name.clone(),
            size,
            sha256,
        });
    }
    let manifest = Manifest {
        kind_tag: MANIFEST_TYPE.into(),
        kind: spec.kind,
        compatible: spec.compatible.clone(),
        version: spec.version,
        floor: spec.floor,
        created: spec.created,
        expires: spec.expires,
        verity_root_hash: spec.verity_root_hash.clone(),
        model_id: spec.model_id.clone(),
        payloads,
    };
    manifest.validate()?;
    let header = Header {
        format: civia_bundle_format::container::FORMAT_VERSION,
        roots: spec.roots.clone(),
        manifest: Envelope::new(&manifest)?,
    };
    let tmp = out.with_extension("part");
    let mut w = File::create(&tmp).map_err(io_ctx(format!("creating {}", tmp.display())))?;
    header.write_preamble(&mut w)?;
    for (_, p) in &spec.payloads {
        let mut f = File::open(p).map_err(io_ctx(format!("opening {}", p.display())))?;
        io::copy(&mut f, &mut w).map_err(io_ctx(format!("copying {}", p.display())))?;
    }
    w.sync_all()
        .map_err(io_ctx(format!("syncing {}", tmp.display())))?;
    fs::rename(&tmp, out).map_err(io_ctx(format!("renaming to {}", out.display())))?;
    Ok(manifest)
}

/// Reads a bundle's header (unverified).
pub fn read_bundle_header(path: &Path) -> Result<(Header, u64), BundleToolError> {
    let mut f = File::open(path).map_err(io_ctx(format!("opening {}", path.display())))?;
    Ok(read_header(&mut f)?)
}

/// Adds signatures to a bundle's manifest (the header is rewritten, payloads copied as is).
pub fn sign_bundle(path: &Path, keys: &[SecretKey]) -> Result<(), BundleToolError> {
    let mut f = File::open(path).map_err(io_ctx(format!("opening {}", path.display())))?;
    let (mut header, offset) = read_header(&mut f)?;
    let _: Manifest = header.manifest.parse_unverified()?;
    for k in keys {
        header.manifest.sign(Domain::Manifest, k);
    }
    let tmp = path.with_extension("signing");
    let mut w = File::create(&tmp).map_err(io_ctx(format!("creating {}", tmp.display())))?;
    header.write_preamble(&mut w)?;
    f.seek(SeekFrom::Start(offset))
        .map_err(io_ctx(format!("seeking {}", path.display())))?;
    io::copy(&mut f, &mut w).map_err(io_ctx(format!("copying {}", path.display())))?;
    w.sync_all()
        .map_err(io_ctx(format!("syncing {}", tmp.display())))?;
    fs::rename(&tmp, path).map_err(io_ctx(format!("renaming to {}", path.display())))?;
    Ok(())
}

/// Full verification of a bundle file as a box would do it (signatures, policy, payloads).
pub fn verify_file(path: &Path, state: &BoxState<'_>) -> Result<Verified, BundleToolError> {
    let mut f = File::open(path).map_err(io_ctx(format!("opening {}", path.display())))?;
    let (header, offset) = read_header(&mut f)?;
    let kind = header.manifest.parse_unverified::<Manifest>()?.kind;
    let v = verify_header(&header, offset, state, kind)?;
    check_payloads(&mut f, &v.manifest)?;
    Ok(v)
}
