//! Deciding whether a bundle may be installed: trust chain (root rotation), manifest
//! signatures and threshold, then policy (kind, compatible string, expiry, floor, version).
//!
//! Expiry on offline boxes: a box has no trustworthy clock (dead RTC battery, no network). Its
//! *reference time* is the newest time it has reason to trust: the highest `created` time of
//! any bundle it has installed, persisted and never lowered, raised by the wall clock only when
//! the caller knows the clock is synchronised. Metadata whose `expires` is before the reference
//! time is refused. A box that stayed offline for years therefore still accepts the next bundle
//! (its reference time has not moved), but a bundle that expired before one the box already
//! installed is never accepted again.

use std::io::Read;

use sha2::{Digest, Sha256};

use crate::container::Header;
use crate::meta::{BundleKind, Domain, Envelope, Manifest, RootMeta};
use crate::{FormatError, Version};

/// What the box knows when it judges a bundle.
#[derive(Clone, Debug)]
pub struct BoxState<'a> {
    /// The hardware model string baked into the image.
    pub compatible: &'a str,
    /// The newest root metadata the box has accepted (the image's, or a rotation since).
    pub trusted_root: &'a RootMeta,
    /// The version now running (system) or installed for this model id (model); `None` when
    /// nothing is installed.
    pub running: Option<Version>,
    /// The stored version floor.
    pub floor: Version,
    /// Unix seconds, see the module doc.
    pub reference_time: i64,
}

/// A bundle whose metadata passed every check.
#[derive(Clone, Debug)]
pub struct Verified {
    pub manifest: Manifest,
    /// The newest root after applying the bundle's rotations (equal to the trusted one when none).
    pub root: RootMeta,
    /// The rotations this bundle taught the box, oldest first (to persist once installed).
    pub new_roots: Vec<Envelope>,
    /// Offset of the first payload in the bundle file.
    pub payload_offset: u64,
}

/// Applies the root rotations carried in `roots` on top of `trusted`.
pub fn apply_rotations(
    trusted: &RootMeta,
    roots: &[Envelope],
) -> Result<(RootMeta, Vec<Envelope>), FormatError> {
    let mut current = trusted.clone();
    let mut learned = Vec::new();
    for env in roots {
        let next: RootMeta = env.parse_unverified()?;
        next.validate()?;
        if next.version <= current.version {
            continue;
        }
        if next.version != current.version + 1 {
            return Err(FormatError::RootVersionGap {
                trusted: current.version,
                got: next.version,
            });
        }
        env.verify_role(Domain::Root, &current.root)?;
        env.verify_role(Domain::Root, &next.root)?;
        current = next;
        learned.push(env.clone());
    }
    Ok((current, learned))
}

/// Checks signatures and policy of a parsed header. Touches nothing.
pub fn verify_header(
    header: &Header,
    payload_offset: u64,
    state: &BoxState<'_>,
    expected_kind: BundleKind,
) -> Result<Verified, FormatError> {
    let (root, new_roots) = apply_rotations(state.trusted_root, &header.roots)?;
    header
        .manifest
        .verify_role(Domain::Manifest, &root.bundle)?;
    let manifest: Manifest = header.manifest.parse_unverified()?;
    manifest.validate()?;
    check_policy(&manifest, &root, state, expected_kind)?;
    Ok(Verified {
        manifest,
        root,
        new_roots,
        payload_offset,
    })
}

/// Policy checks on a manifest whose signatures were verified.
pub fn check_policy(
    m: &Manifest,
    root: &RootMeta,
    state: &BoxState<'_>,
    expected_kind: BundleKind,
) -> Result<(), FormatError> {
    if m.kind != expected_kind {
        return Err(FormatError::WrongKind {
            expected: expected_kind,
            got: m.kind,
        });
    }
    if m.compatible != state.compatible {
        return Err(FormatError::Incompatible {
            expected: state.compatible.to_string(),
            got: m.compatible.clone(),
        });
    }
    if root.expires < state.reference_time {
        return Err(FormatError::Expired {
            what: "root metadata",
            expires: root.expires,
            reference: state.reference_time,
        });
    }
    if m.expires < state.reference_time {
        return Err(FormatError::Expired {
            what: "bundle manifest",
            expires: m.expires,
            reference: state.reference_time,
        });
    }
    if m.version < state.floor {
        return Err(FormatError::BelowFloor {
            version: m.version,
            floor: state.floor,
        });
    }
    if let Some(running) = state.running {
        if m.version <= running {
            return Err(FormatError::NotNewer {
                version: m.version,
                running,
            });
        }
    }
    Ok(())
}

/// Reads exactly one payload from `r`, feeding `sink` and checking its SHA-256 and size.
pub fn stream_payload<R: Read + ?Sized>(
    r: &mut R,
    name: &str,
    size: u64,
    expected_sha256: &str,
    sink: &mut dyn FnMut(&[u8]) -> Result<(), FormatError>,
) -> Result<(), FormatError> {
    let mut hasher = Sha256::new();
    let mut left = size;
    let mut buf = vec![0u8; 1 << 20];
    while left > 0 {
        let want = left.min(buf.len() as u64) as usize;
        let n = r.read(&mut buf[..want])?;
        if n == 0 {
            return Err(FormatError::Truncated(format!(
                "payload '{name}' is {} bytes short",
                left
            )));
        }
        hasher.update(&buf[..n]);
        sink(&buf[..n])?;
        left -= n as u64;
    }
    let got = hex::encode(hasher.finalize());
    if got != expected_sha256 {
        return Err(FormatError::HashMismatch {
            name: name.to_string(),
            expected: expected_sha256.to_string(),
            got,
        });
    }
    Ok(())
}

/// Reads every payload after the header and checks sizes, hashes and that nothing follows.
pub fn check_payloads<R: Read + ?Sized>(r: &mut R, m: &Manifest) -> Result<(), FormatError> {
    for p in &m.payloads {
        stream_payload(r, &p.name, p.size, &p.sha256, &mut |_| Ok(()))?;
    }
    expect_end(r)
}

/// Fails when `r` has more bytes.
pub fn expect_end<R: Read + ?Sized>(r: &mut R) -> Result<(), FormatError> {
    let mut extra = 0u64;
    let mut buf = [0u8; 8192];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        extra += n as u64;
        if extra > 1 << 20 {
            break;
        }
    }
    if extra > 0 {
        return Err(FormatError::TrailingData(extra));
    }
    Ok(())
}
