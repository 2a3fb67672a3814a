//! Model bundles (a GGUF file and its dossier), installed atomically:
//!
//! ```text
//! <models>/<model_id>/<version>/model.gguf, dossier.json, manifest.json
//! <models>/<model_id>/current  -> <version>     (what the daemon loads)
//! <models>/<model_id>/previous -> <version>     (what `rollback` restores)
//! <models>/.staging-<model_id>-<version>/       (being written; never loaded)
//! ```
//!
//! The new version is written and read back in a staging directory, renamed into place, and
//! only then do the `previous` and `current` symlinks switch, each by an atomic rename. The
//! daemon loads `current/model.gguf`; if it fails to load it calls [`ModelStore::rollback`],
//! and once it loaded, [`ModelStore::confirm`] raises that model's floor.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use civia_bundle_format::container::read_header;
use civia_bundle_format::verify::{check_policy, expect_end, stream_payload, verify_header};
use civia_bundle_format::{BoxState, BundleKind, Manifest, Version};

use crate::events::{AuditEvent, Observer, Phase, Progress, Source};
use crate::state::{self, sync_dir};
use crate::system::{hash_prefix, injected_to_io, refused, unwrap_injected};
use crate::trust::TrustStore;
use crate::{failpoint, io_err, UpdateError};

pub struct ModelStore<'o> {
    compatible: String,
    state_dir: PathBuf,
    models_dir: PathBuf,
    trusted_clock: Option<i64>,
    trust: TrustStore,
    observer: &'o dyn Observer,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelInstalled {
    pub model_id: String,
    pub version: Version,
    pub previous: Option<Version>,
    /// The GGUF file to load (through the `current` link).
    pub path: PathBuf,
}

impl<'o> ModelStore<'o> {
    pub fn new(
        compatible: impl Into<String>,
        image_root: impl Into<PathBuf>,
        state_dir: impl Into<PathBuf>,
        models_dir: impl Into<PathBuf>,
        trusted_clock: Option<i64>,
        observer: &'o dyn Observer,
    ) -> Self {
        let state_dir = state_dir.into();
        ModelStore {
            compatible: compatible.into(),
            trust: TrustStore::new(image_root, &state_dir),
            state_dir,
            models_dir: models_dir.into(),
            trusted_clock,
            observer,
        }
    }

    fn link(&self, id: &str, name: &str) -> Option<Version> {
        let t = fs::read_link(self.models_dir.join(id).join(name)).ok()?;
        t.to_str()?.parse().ok()
    }

    /// The current version of `model_id`.
    pub fn current(&self, model_id: &str) -> Option<Version> {
        self.link(model_id, "current")
    }

    pub fn previous(&self, model_id: &str) -> Option<Version> {
        self.link(model_id, "previous")
    }

    /// The path the daemon loads.
    pub fn current_path(&self, model_id: &str) -> PathBuf {
        self.models_dir
            .join(model_id)
            .join("current")
            .join("model.gguf")
    }

    pub fn install_from_path(&self, path: &Path) -> Result<ModelInstalled, UpdateError> {
        let source = Source::Path(path.display().to_string());
        let mut claimed = None;
        let mut started = false;
        let res = File::open(path)
            .map_err(io_err(format!("opening {}", path.display())))
            .and_then(|mut f| self.install_inner(&mut f, &mut claimed, &mut started));
        self.report(res, source, claimed, started)
    }

    /// From a stream (admin API upload). Payloads are hashed while staged and the staging
    /// directory is invisible to the daemon, so nothing unverified is ever current; the
    /// signed header is still checked before a byte of payload is read.
    pub fn install_from_reader<R: Read>(&self, mut r: R) -> Result<ModelInstalled, UpdateError> {
        let mut claimed = None;
        let mut started = false;
        let res = self.install_inner(&mut r, &mut claimed, &mut started);
        self.report(res, Source::Stream, claimed, started)
    }

    fn report(
        &self,
        res: Result<ModelInstalled, UpdateError>,
        source: Source,
        claimed: Option<Version>,
        started: bool,
    ) -> Result<ModelInstalled, UpdateError> {
        if let Err(e) = &res {
            match (started, claimed) {
                (true, Some(v)) => self.observer.audit(AuditEvent::InstallFailed {
                    kind: BundleKind::Model,
                    version: v,
                    code: e.code().into(),
                    message: e.to_string(),
                }),
                _ => self
                    .observer
                    .audit(refused(BundleKind::Model, source, e, claimed)),
            }
        }
        res
    }

    fn install_inner(
        &self,
        r: &mut dyn Read,
        claimed: &mut Option<Version>,
        started: &mut bool,
    ) -> Result<ModelInstalled, UpdateError> {
        let st = state::load(&self.state_dir)?;
        let root = self.trust.current()?;
        let (header, _) = read_header(r)?;
        if let Ok(m) = header.manifest.parse_unverified::<Manifest>() {
            *claimed = Some(m.version);
        }
        let mut bs = BoxState {
            compatible: &self.compatible,
            trusted_root: &root,
            running: None,
            floor: Version::default(),
            reference_time: st
                .reference_time
                .max(self.trusted_clock.unwrap_or(i64::MIN)),
        };
        let v = verify_header(&header, 0, &bs, BundleKind::Model)?;
        let m = &v.manifest;
        let id = m
            .model_id
            .clone()
            .ok_or_else(|| UpdateError::State("model bundle without model_id".into()))?;
        bs.running = self.current(&id);
        bs.floor = st.model_floors.get(&id).copied().unwrap_or_default();
        check_policy(m, &v.root, &bs, BundleKind::Model)?;

        // Stage: write while hashing; the staging directory is never loaded. A hash mismatch
        // here is a refusal (nothing visible changed), the staging directory is removed.
        let staging = self.models_dir.join(format!(".staging-{id}-{}", m.version));
        if staging.exists() {
            fs::remove_dir_all(&staging)
                .map_err(io_err(format!("removing {}", staging.display())))?;
        }
        fs::create_dir_all(&staging).map_err(io_err(format!("creating {}", staging.display())))?;
        let total = m.payload_total();
        let mut done = 0u64;
        let staged = (|| {
            for p in &m.payloads {
                let dst = staging.join(&p.name);
                let mut out =
                    File::create(&dst).map_err(io_err(format!("creating {}", dst.display())))?;
                let point = format!("write:{}", p.name);
                stream_payload(r, &p.name, p.size, &p.sha256, &mut |b| {
                    failpoint::hit(&point).map_err(injected_to_io)?;
                    out.write_all(b)?;
                    done += b.len() as u64;
                    self.observer.progress(&Progress {
                        phase: Phase::Writing,
                        payload: p.name.clone(),
                        done,
                        total,
                    });
                    Ok(())
                })
                .map_err(unwrap_injected)?;
                out.sync_all()
                    .map_err(io_err(format!("syncing {}", dst.display())))?;
            }
            expect_end(r)?;
            Ok::<(), UpdateError>(())
        })();
        if let Err(e) = staged {
            if !matches!(e, UpdateError::Injected(_)) {
                let _ = fs::remove_dir_all(&staging);
            }
            return Err(e);
        }
        *started = true;
        self.observer.audit(AuditEvent::InstallStarted {
            kind: BundleKind::Model,
            version: m.version,
            target: format!("model {id}"),
        });
        for p in &m.payloads {
            let f = staging.join(&p.name);
            let got = hash_prefix(&f, p.size, |_| {})?;
            if got != p.sha256 {
                return Err(UpdateError::Readback {
                    target: f,
                    payload: p.name.clone(),
                    expected: p.sha256.clone(),
                    got,
                });
            }
        }
        let manifest_json =
            serde_json::to_vec_pretty(m).map_err(|e| UpdateError::State(e.to_string()))?;
        state::write_atomic(&staging.join("manifest.json"), &manifest_json)?;
        // The model workers run under their own uid and see this directory bound read-only
        // (civia-supervisor's jail): readable by all, whatever civiad's umask; the models
        // directory inside the 0700 state directory keeps everyone else out.
        {
            use std::os::unix::fs::PermissionsExt;
            let readable = |path: &Path, mode: u32| {
                fs::set_permissions(path, fs::Permissions::from_mode(mode))
                    .map_err(io_err(format!("setting the mode of {}", path.display())))
            };
            for p in &m.payloads {
                readable(&staging.join(&p.name), 0o644)?;
            }
            readable(&staging.join("manifest.json"), 0o644)?;
            readable(&staging, 0o755)?;
        }
        sync_dir(&staging)?;
        failpoint::hit("model:after_stage")?;

        // Publish the version directory, then switch the links.
        let id_dir = self.models_dir.join(&id);
        fs::create_dir_all(&id_dir).map_err(io_err(format!("creating {}", id_dir.display())))?;
        let final_dir = id_dir.join(m.version.to_string());
        if final_dir.exists() {
            fs::remove_dir_all(&final_dir)
                .map_err(io_err(format!("removing {}", final_dir.display())))?;
        }
        fs::rename(&staging, &final_dir)
            .map_err(io_err(format!("renaming to {}", final_dir.display())))?;
        sync_dir(&id_dir)?;
        sync_dir(&self.models_dir)?;
        failpoint::hit("model:after_dir_rename")?;
        let previous = self.current(&id);
        if let Some(prev) = previous {
            switch_link(&id_dir, "previous", &prev.to_string())?;
        }
        switch_link(&id_dir, "current", &m.version.to_string())?;
        if !v.new_roots.is_empty() {
            self.trust.store_rotations(&v.new_roots)?;
            self.observer.audit(AuditEvent::RootRotated {
                from: root.version,
                to: v.root.version,
            });
        }
        self.observer.audit(AuditEvent::ModelInstalled {
            model_id: id.clone(),
            version: m.version,
            previous,
        });
        Ok(ModelInstalled {
            path: self.current_path(&id),
            model_id: id,
            version: m.version,
            previous,
        })
    }

    /// The daemon loaded the current model: raise its floor and the reference time.
    pub fn confirm(&self, model_id: &str) -> Result<Version, UpdateError> {
        let cur = self.current(model_id).ok_or_else(|| {
            UpdateError::State(format!("model {model_id} has no current version"))
        })?;
        let mpath = self
            .models_dir
            .join(model_id)
            .join(cur.to_string())
            .join("manifest.json");
        let m: Manifest = serde_json::from_slice(
            &fs::read(&mpath).map_err(io_err(format!("reading {}", mpath.display())))?,
        )
        .map_err(|e| UpdateError::State(format!("{}: {e}", mpath.display())))?;
        let mut st = state::load(&self.state_dir)?;
        let floor = st.model_floors.entry(model_id.into()).or_default();
        *floor = (*floor).max(m.floor);
        let floor = *floor;
        st.raise_reference_time(m.created);
        state::save(&self.state_dir, &st)?;
        self.observer.audit(AuditEvent::ModelConfirmed {
            model_id: model_id.into(),
            version: cur,
            floor,
        });
        Ok(floor)
    }

    /// The current model failed to load: make the previous one current again.
    pub fn rollback(&self, model_id: &str) -> Result<Version, UpdateError> {
        let id_dir = self.models_dir.join(model_id);
        let failed = self.current(model_id).ok_or_else(|| {
            UpdateError::State(format!("model {model_id} has no current version"))
        })?;
        let prev = self
            .previous(model_id)
            .filter(|p| *p != failed)
            .ok_or_else(|| {
                UpdateError::State(format!("model {model_id} has no previous version"))
            })?;
        switch_link(&id_dir, "current", &prev.to_string())?;
        self.observer.audit(AuditEvent::ModelRolledBack {
            model_id: model_id.into(),
            failed,
            restored: prev,
        });
        Ok(prev)
    }
}

/// Atomically points `dir/name` at `target` (a sibling directory name).
fn switch_link(dir: &Path, name: &str, target: &str) -> Result<(), UpdateError> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let _ = fs::remove_file(&tmp);
    symlink(target, &tmp).map_err(io_err(format!("linking {}", tmp.display())))?;
    let dst = dir.join(name);
    fs::rename(&tmp, &dst).map_err(io_err(format!("renaming to {}", dst.display())))?;
    sync_dir(dir)
}
