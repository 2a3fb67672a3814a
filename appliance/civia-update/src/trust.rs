//! The box's trusted root: root metadata version 1 shipped in the (verity-protected) image,
//! plus the rotations learned since, stored as `roots/<version>.json` under the state
//! directory. The chain is re-verified on every load, so a tampered stored rotation is refused.

use std::fs;
use std::path::{Path, PathBuf};

use civia_bundle_format::meta::Domain;
use civia_bundle_format::verify::apply_rotations;
use civia_bundle_format::{Envelope, RootMeta};

use crate::state::write_atomic;
use crate::{io_err, UpdateError};

pub struct TrustStore {
    image_root: PathBuf,
    rotations_dir: PathBuf,
}

impl TrustStore {
    pub fn new(image_root: impl Into<PathBuf>, state_dir: &Path) -> Self {
        TrustStore {
            image_root: image_root.into(),
            rotations_dir: state_dir.join("roots"),
        }
    }

    /// The newest trusted root.
    pub fn current(&self) -> Result<RootMeta, UpdateError> {
        let text = fs::read_to_string(&self.image_root)
            .map_err(io_err(format!("reading {}", self.image_root.display())))?;
        let env: Envelope = serde_json::from_str(&text)
            .map_err(|e| UpdateError::Trust(format!("{}: {e}", self.image_root.display())))?;
        let base: RootMeta = env
            .parse_unverified()
            .map_err(|e| UpdateError::Trust(e.to_string()))?;
        base.validate()
            .map_err(|e| UpdateError::Trust(e.to_string()))?;
        env.verify_role(Domain::Root, &base.root)
            .map_err(|e| UpdateError::Trust(format!("image root is not self-signed: {e}")))?;
        let mut stored = Vec::new();
        if let Ok(rd) = fs::read_dir(&self.rotations_dir) {
            let mut files: Vec<(u64, PathBuf)> = rd
                .filter_map(|e| e.ok())
                .filter_map(|e| {
                    let p = e.path();
                    let v = p.file_stem()?.to_str()?.parse::<u64>().ok()?;
                    (p.extension()? == "json").then_some((v, p))
                })
                .collect();
            files.sort();
            for (_, p) in files {
                let text =
                    fs::read_to_string(&p).map_err(io_err(format!("reading {}", p.display())))?;
                let env: Envelope = serde_json::from_str(&text)
                    .map_err(|e| UpdateError::Trust(format!("{}: {e}", p.display())))?;
                stored.push(env);
            }
        }
        let (root, _) =
            apply_rotations(&base, &stored).map_err(|e| UpdateError::Trust(e.to_string()))?;
        Ok(root)
    }

    /// Persists rotations a verified bundle carried.
    pub fn store_rotations(&self, envs: &[Envelope]) -> Result<(), UpdateError> {
        for env in envs {
            let meta: RootMeta = env.parse_unverified()?;
            let text =
                serde_json::to_vec_pretty(env).map_err(|e| UpdateError::Trust(e.to_string()))?;
            write_atomic(
                &self.rotations_dir.join(format!("{}.json", meta.version)),
                &text,
            )?;
        }
        Ok(())
    }
}
