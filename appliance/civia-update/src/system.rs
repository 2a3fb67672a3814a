//! System (A/B) updates: install to the inactive slot, then the boot-counting state machine.
//!
//! Install, in order (each step durable before the next):
//! 1. read the header, verify root chain, signatures, threshold, kind, compatible string,
//!    expiry, floor and version; check the targets are large enough; read every payload and
//!    check its size and SHA-256 (nothing written so far; a refusal emits one
//!    [`AuditEvent::Refused`]);
//! 2. mark the inactive slot `unusable` in the state file and remove its UKI from the ESP;
//! 3. stream `usr` and `usr.verity` to the slot's partitions (hashing again while writing,
//!    in case the source changed since step 1), fsync, drop the page cache, read back and
//!    compare with the signed hash; then set the GPT partition UUIDs of the slot's two
//!    partitions to those derived from the signed dm-verity root hash (first and last 128
//!    bits, what `systemd-veritysetup-generator` looks for given `roothash=`), with
//!    `sfdisk --part-uuid`, and read them back; skipped for slots that are regular files or
//!    whole block devices ([`crate::partition`]);
//! 4. write the UKI to a temporary name on the ESP, fsync, read back;
//! 5. record the slot as `installed` and the pending update (with its signed floor);
//! 6. rename the UKI to `civia-<version>-<slot>+<tries>.efi`: the commit point; systemd-boot
//!    now prefers it on the next boot.
//!
//! A kill anywhere before 6 leaves the slot without a UKI (unbootable) and `unusable`; the
//! active slot and its UKI are never opened for writing. A retry starts again at 1.
//!
//! After each boot the daemon calls [`SystemUpdater::after_boot`], runs its health check on a
//! trial boot and calls [`SystemUpdater::bless`] or [`SystemUpdater::mark_bad`].

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use civia_bundle_format::container::read_header;
use civia_bundle_format::verify::{expect_end, stream_payload, verify_header};
use civia_bundle_format::{BoxState, BundleKind, FormatError, Manifest, PayloadInfo, Version};
use sha2::{Digest, Sha256};

use crate::events::{AuditEvent, Observer, Phase, Progress, Source};
use crate::state::{self, Outcome, Pending, SlotStatus, State};
use crate::trust::TrustStore;
use crate::{esp, failpoint, io_err, partition, UpdateError};

pub use crate::slot::{Slot, SlotPaths};

#[derive(Clone, Debug)]
pub struct SystemConfig {
    /// The hardware model this image runs on (`compatible` in manifests).
    pub compatible: String,
    /// Root metadata version 1, shipped in the image.
    pub image_root: PathBuf,
    /// The agent's state directory (on the encrypted `/var`).
    pub state_dir: PathBuf,
    /// The mounted ESP (a directory).
    pub esp: PathBuf,
    pub slot_a: SlotPaths,
    pub slot_b: SlotPaths,
    /// The slot this system booted from.
    pub booted: Slot,
    /// The version of the running image.
    pub running: Version,
    /// Boot tries given to a new slot (systemd-boot counter).
    pub tries: u32,
    /// Unix seconds from a clock known to be synchronised (NTP); `None` on an offline box.
    pub trusted_clock: Option<i64>,
}

impl SystemConfig {
    fn slot(&self, s: Slot) -> &SlotPaths {
        match s {
            Slot::A => &self.slot_a,
            Slot::B => &self.slot_b,
        }
    }
}

/// What [`SystemUpdater::after_boot`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BootStatus {
    /// A blessed slot, nothing pending (or an update installed and not yet booted).
    Normal,
    /// A trial boot of `version`: run the health check, then bless or mark bad.
    Trial { version: Version },
    /// The blessing of this slot had been interrupted by a power loss and is now complete.
    Blessed { version: Version },
    /// Back on this slot after the update to `failed_version` failed.
    RolledBack {
        failed_version: Version,
        reason: String,
    },
    /// An install was interrupted before its commit point; the slot is unusable.
    InstallInterrupted { version: Version },
}

/// The result of a successful install.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Installed {
    pub version: Version,
    pub slot: Slot,
    pub uki: PathBuf,
}

pub struct SystemUpdater<'o> {
    cfg: SystemConfig,
    trust: TrustStore,
    observer: &'o dyn Observer,
}

const CHUNK: usize = 1 << 20;

impl<'o> SystemUpdater<'o> {
    pub fn new(cfg: SystemConfig, observer: &'o dyn Observer) -> Self {
        let trust = TrustStore::new(&cfg.image_root, &cfg.state_dir);
        SystemUpdater {
            cfg,
            trust,
            observer,
        }
    }

    pub fn config(&self) -> &SystemConfig {
        &self.cfg
    }

    pub fn state(&self) -> Result<State, UpdateError> {
        state::load(&self.cfg.state_dir)
    }

    fn reference_time(&self, st: &State) -> i64 {
        st.reference_time
            .max(self.cfg.trusted_clock.unwrap_or(i64::MIN))
    }

    /// Installs a bundle from local storage (USB stick) to the inactive slot.
    pub fn install_from_path(&self, path: &Path) -> Result<Installed, UpdateError> {
        self.install_with_source(path, Source::Path(path.display().to_string()))
    }

    /// Installs a bundle from a stream (the admin API's upload). The header is verified
    /// before the rest is read; the bundle is then spooled under the state directory, verified
    /// whole, and installed as from a path. The spool file has a name of its own (uploads
    /// never share one) and is removed afterwards, whether the install succeeds, fails, or
    /// the upload breaks off half-written.
    pub fn install_from_reader<R: Read>(&self, mut r: R) -> Result<Installed, UpdateError> {
        let spool = self.cfg.state_dir.join("spool");
        let res = (|| {
            let (header, _) = read_header(&mut r)?;
            let st = state::load(&self.cfg.state_dir)?;
            let root = self.trust.current()?;
            self.verify_policy(&st, &root, &header)?;
            std::fs::create_dir_all(&spool).map_err(io_err("creating the spool directory"))?;
            let mut file = tempfile::Builder::new()
                .prefix("upload-")
                .suffix(".bundle")
                .tempfile_in(&spool)
                .map_err(io_err(format!(
                    "creating a spool file in {}",
                    spool.display()
                )))?;
            header.write_preamble(file.as_file_mut())?;
            std::io::copy(&mut r, file.as_file_mut()).map_err(io_err("spooling the upload"))?;
            file.as_file()
                .sync_all()
                .map_err(io_err("syncing the upload"))?;
            Ok(file)
        })();
        let file = match res {
            Ok(f) => f,
            Err(e) => {
                self.observer
                    .audit(refused(BundleKind::System, Source::Stream, &e, None));
                return Err(e);
            }
        };
        // `file` (a `NamedTempFile`) removes itself when dropped, after the install.
        self.install_with_source(file.path(), Source::Stream)
    }

    fn verify_policy(
        &self,
        st: &State,
        root: &civia_bundle_format::RootMeta,
        header: &civia_bundle_format::Header,
    ) -> Result<civia_bundle_format::Verified, UpdateError> {
        let bs = BoxState {
            compatible: &self.cfg.compatible,
            trusted_root: root,
            running: Some(self.cfg.running),
            floor: st.floor,
            reference_time: self.reference_time(st),
        };
        Ok(verify_header(header, 0, &bs, BundleKind::System)?)
    }

    fn install_with_source(&self, path: &Path, source: Source) -> Result<Installed, UpdateError> {
        let mut claimed = None;
        let mut started = false;
        let res = self.install_inner(path, &mut claimed, &mut started);
        if let Err(e) = &res {
            if started {
                if let Some(m) = &claimed {
                    self.observer.audit(AuditEvent::InstallFailed {
                        kind: BundleKind::System,
                        version: *m,
                        code: e.code().into(),
                        message: e.to_string(),
                    });
                }
            } else {
                self.observer
                    .audit(refused(BundleKind::System, source, e, claimed));
            }
        }
        res
    }

    fn install_inner(
        &self,
        path: &Path,
        claimed: &mut Option<Version>,
        started: &mut bool,
    ) -> Result<Installed, UpdateError> {
        let target = self.cfg.booted.other();
        let slot = target.name();
        let paths = self.cfg.slot(target);
        let mut st = state::load(&self.cfg.state_dir)?;
        let root = self.trust.current()?;

        // 1. verify everything before writing a byte
        let mut f = File::open(path).map_err(io_err(format!("opening {}", path.display())))?;
        let (header, offset) = read_header(&mut f)?;
        if let Ok(m) = header.manifest.parse_unverified::<Manifest>() {
            *claimed = Some(m.version);
        }
        let v = self.verify_policy(&st, &root, &header)?;
        let m = &v.manifest;
        let info = |name: &str| {
            m.payload(name)
                .cloned()
                .ok_or_else(|| UpdateError::Refused(FormatError::Malformed(format!("no {name}"))))
        };
        let (usr, verity, uki) = (info("usr")?, info("usr.verity")?, info("uki")?);
        let uuids = m
            .verity_root_hash
            .as_deref()
            .and_then(partition::uuids_from_root_hash)
            .ok_or_else(|| {
                UpdateError::Refused(FormatError::Malformed(
                    "a system bundle needs a verity root hash".into(),
                ))
            })?;
        let relabel = partition::plan_slot_uuids(paths, &uuids, Path::new(partition::SYSFS))?;
        for (p, t) in [(&usr, &paths.usr), (&verity, &paths.verity)] {
            let have = capacity(t)?;
            if have < p.size {
                return Err(UpdateError::TargetTooSmall {
                    target: t.clone(),
                    payload: p.name.clone(),
                    need: p.size,
                    have,
                });
            }
        }
        let total = m.payload_total();
        let mut done = 0u64;
        for p in &m.payloads {
            stream_payload(&mut f, &p.name, p.size, &p.sha256, &mut |b| {
                done += b.len() as u64;
                self.progress(Phase::Verifying, &p.name, done, total);
                Ok(())
            })?;
        }
        expect_end(&mut f)?;
        failpoint::hit("after_verify")?;

        // 2. the inactive slot becomes unusable
        *started = true;
        self.observer.audit(AuditEvent::InstallStarted {
            kind: BundleKind::System,
            version: m.version,
            target: format!("slot {slot}"),
        });
        {
            let s = st.slot_mut(slot);
            s.status = SlotStatus::Unusable;
            s.version = Some(m.version);
        }
        if st.pending.as_ref().is_some_and(|p| p.slot == slot) {
            st.pending = None;
        }
        state::save(&self.cfg.state_dir, &st)?;
        esp::remove_slot(&self.cfg.esp, slot)?;
        failpoint::hit("after_mark")?;

        // 3. partitions
        f.seek(SeekFrom::Start(offset))
            .map_err(io_err(format!("seeking {}", path.display())))?;
        self.write_partition(&mut f, &usr, &paths.usr)?;
        self.write_partition(&mut f, &verity, &paths.verity)?;
        failpoint::hit("partuuid")?;
        partition::set_slot_uuids(&relabel)?;

        // 4. UKI, staged
        let tmp = esp::stage_uki(
            &self.cfg.esp,
            slot,
            &mut |w| {
                let mut n = 0u64;
                stream_payload(&mut f, &uki.name, uki.size, &uki.sha256, &mut |b| {
                    failpoint::hit("write:uki").map_err(injected_to_io)?;
                    w.write_all(b)?;
                    n += b.len() as u64;
                    self.progress(Phase::Writing, "uki", n, uki.size);
                    Ok(())
                })
                .map_err(unwrap_injected)?;
                Ok(())
            },
            &uki.sha256,
        )?;

        // 5. record, persist rotations
        if !v.new_roots.is_empty() {
            self.trust.store_rotations(&v.new_roots)?;
            self.observer.audit(AuditEvent::RootRotated {
                from: root.version,
                to: v.root.version,
            });
        }
        st.slot_mut(slot).status = SlotStatus::Installed;
        st.pending = Some(Pending {
            slot: slot.into(),
            version: m.version,
            floor: m.floor,
            created: m.created,
            health_failure: None,
        });
        state::save(&self.cfg.state_dir, &st)?;
        failpoint::hit("before_uki_rename")?;

        // 6. commit point
        let uki_path = esp::commit_uki(&self.cfg.esp, &tmp, m.version, slot, self.cfg.tries)?;
        failpoint::hit("after_uki_rename")?;
        self.progress(Phase::Done, "", total, total);
        self.observer.audit(AuditEvent::SystemInstalled {
            version: m.version,
            slot: slot.into(),
            tries: self.cfg.tries,
        });
        Ok(Installed {
            version: m.version,
            slot: target,
            uki: uki_path,
        })
    }

    fn progress(&self, phase: Phase, payload: &str, done: u64, total: u64) {
        self.observer.progress(&Progress {
            phase,
            payload: payload.into(),
            done,
            total,
        });
    }

    fn write_partition(
        &self,
        src: &mut File,
        p: &PayloadInfo,
        target: &Path,
    ) -> Result<(), UpdateError> {
        let mut out = OpenOptions::new()
            .write(true)
            .open(target)
            .map_err(io_err(format!("opening {}", target.display())))?;
        let point = format!("write:{}", p.name);
        let mut n = 0u64;
        stream_payload(src, &p.name, p.size, &p.sha256, &mut |b| {
            failpoint::hit(&point).map_err(injected_to_io)?;
            out.write_all(b)?;
            n += b.len() as u64;
            self.progress(Phase::Writing, &p.name, n, p.size);
            Ok(())
        })
        .map_err(unwrap_injected)?;
        out.sync_all()
            .map_err(io_err(format!("syncing {}", target.display())))?;
        drop_cache(&out);
        drop(out);
        failpoint::hit(&format!("after_write:{}", p.name))?;
        failpoint::hit(&format!("readback:{}", p.name))?;
        let got = hash_prefix(target, p.size, |d| {
            self.progress(Phase::ReadingBack, &p.name, d, p.size)
        })?;
        if got != p.sha256 {
            return Err(UpdateError::Readback {
                target: target.into(),
                payload: p.name.clone(),
                expected: p.sha256.clone(),
                got,
            });
        }
        Ok(())
    }

    /// Call once after every boot, before the health check.
    pub fn after_boot(&self) -> Result<BootStatus, UpdateError> {
        let mut st = state::load(&self.cfg.state_dir)?;
        let booted = self.cfg.booted.name();
        let entry = esp::entry_for(&self.cfg.esp, booted)?;
        if let Some(e) = entry.as_ref().filter(|e| e.counter.is_some()) {
            let matches = st
                .pending
                .as_ref()
                .is_some_and(|p| p.slot == booted && p.version == e.version);
            if !matches {
                // Only reachable if the state file was lost: never raise the floor for it.
                st.pending = Some(Pending {
                    slot: booted.into(),
                    version: e.version,
                    floor: st.floor,
                    created: st.reference_time,
                    health_failure: None,
                });
            }
            let s = st.slot_mut(booted);
            s.status = SlotStatus::Installed;
            s.version = Some(e.version);
            state::save(&self.cfg.state_dir, &st)?;
            return Ok(BootStatus::Trial { version: e.version });
        }
        if let Some(p) = st.pending.clone() {
            if p.slot == booted {
                // power loss after the blessing rename, before the state was saved
                self.finish_bless(&mut st, &p)?;
                return Ok(BootStatus::Blessed { version: p.version });
            }
            let other = esp::entry_for(&self.cfg.esp, &p.slot)?;
            match other {
                Some(o) if o.counter.is_some() && !o.is_bad() => {
                    // installed, not tried yet (or this slot chosen by hand): still pending
                }
                None => {
                    st.pending = None;
                    st.slot_mut(&p.slot).status = SlotStatus::Unusable;
                    st.last_outcome = Some(Outcome {
                        version: p.version,
                        result: "install_interrupted".into(),
                        message: "the install stopped before its UKI was committed".into(),
                    });
                    state::save(&self.cfg.state_dir, &st)?;
                    self.observer.audit(AuditEvent::InstallFailed {
                        kind: BundleKind::System,
                        version: p.version,
                        code: "interrupted".into(),
                        message: "install interrupted before its commit point".into(),
                    });
                    return Ok(BootStatus::InstallInterrupted { version: p.version });
                }
                Some(_) => {
                    let reason = p.health_failure.clone().unwrap_or_else(|| {
                        "the boot counter ran out: the new system never reported healthy".into()
                    });
                    st.pending = None;
                    st.slot_mut(&p.slot).status = SlotStatus::Bad;
                    st.last_outcome = Some(Outcome {
                        version: p.version,
                        result: "rolled_back".into(),
                        message: reason.clone(),
                    });
                    self.mark_booted_good(&mut st);
                    state::save(&self.cfg.state_dir, &st)?;
                    self.observer.audit(AuditEvent::RolledBack {
                        failed_version: p.version,
                        failed_slot: p.slot.clone(),
                        running: self.cfg.running,
                        reason: reason.clone(),
                    });
                    return Ok(BootStatus::RolledBack {
                        failed_version: p.version,
                        reason,
                    });
                }
            }
        }
        let before = st.clone();
        self.mark_booted_good(&mut st);
        if st != before {
            state::save(&self.cfg.state_dir, &st)?;
        }
        Ok(BootStatus::Normal)
    }

    fn mark_booted_good(&self, st: &mut State) {
        let s = st.slot_mut(self.cfg.booted.name());
        s.status = SlotStatus::Good;
        s.version = Some(self.cfg.running);
    }

    fn trial(&self, st: &State) -> Result<(Pending, esp::Entry), UpdateError> {
        let booted = self.cfg.booted.name();
        let p = st
            .pending
            .clone()
            .filter(|p| p.slot == booted)
            .ok_or_else(|| UpdateError::State(format!("slot {booted} is not on a trial boot")))?;
        let e = esp::entry_for(&self.cfg.esp, booted)?
            .ok_or_else(|| UpdateError::State(format!("slot {booted} has no UKI on the ESP")))?;
        Ok((p, e))
    }

    /// The health check passed: bless the slot (drop its boot counter) and raise the floor.
    pub fn bless(&self) -> Result<Version, UpdateError> {
        let mut st = state::load(&self.cfg.state_dir)?;
        let (p, e) = self.trial(&st)?;
        if e.counter.is_some() {
            esp::bless(&e)?;
        }
        failpoint::hit("bless:after_rename")?;
        self.finish_bless(&mut st, &p)?;
        Ok(st.floor)
    }

    fn finish_bless(&self, st: &mut State, p: &Pending) -> Result<(), UpdateError> {
        st.floor = st.floor.max(p.floor);
        st.raise_reference_time(p.created);
        st.pending = None;
        let s = st.slot_mut(&p.slot);
        s.status = SlotStatus::Good;
        s.version = Some(p.version);
        st.last_outcome = Some(Outcome {
            version: p.version,
            result: "blessed".into(),
            message: "health check passed".into(),
        });
        state::save(&self.cfg.state_dir, st)?;
        self.observer.audit(AuditEvent::SystemBlessed {
            version: p.version,
            slot: p.slot.clone(),
            floor: st.floor,
        });
        Ok(())
    }

    /// The health check failed: no tries left for this slot. The caller reboots; the firmware
    /// falls back to the other slot, whose [`after_boot`](Self::after_boot) reports the failure.
    pub fn mark_bad(&self, reason: &str) -> Result<(), UpdateError> {
        let mut st = state::load(&self.cfg.state_dir)?;
        let (mut p, e) = self.trial(&st)?;
        esp::mark_bad(&e)?;
        failpoint::hit("bad:after_rename")?;
        p.health_failure = Some(format!("health check failed: {reason}"));
        st.pending = Some(p.clone());
        st.slot_mut(&p.slot).status = SlotStatus::Bad;
        state::save(&self.cfg.state_dir, &st)?;
        self.observer.audit(AuditEvent::HealthCheckFailed {
            version: p.version,
            slot: p.slot,
            reason: reason.into(),
        });
        Ok(())
    }
}

pub(crate) fn refused(
    kind: BundleKind,
    source: Source,
    e: &UpdateError,
    version: Option<Version>,
) -> AuditEvent {
    AuditEvent::Refused {
        kind,
        source,
        code: e.code().into(),
        message: e.to_string(),
        version,
    }
}

/// Carries an injected failure through the format crate's `FormatError` sink type.
pub(crate) fn injected_to_io(e: UpdateError) -> FormatError {
    let name = match e {
        UpdateError::Injected(n) => n,
        other => other.to_string(),
    };
    FormatError::Io(std::io::Error::other(format!("{INJECTED_PREFIX}{name}")))
}

const INJECTED_PREFIX: &str = "injected: ";

pub(crate) fn unwrap_injected(e: FormatError) -> UpdateError {
    if let FormatError::Io(io) = &e {
        let msg = io.to_string();
        if let Some(rest) = msg.strip_prefix(INJECTED_PREFIX) {
            return UpdateError::Injected(rest.to_string());
        }
    }
    UpdateError::Refused(e)
}

/// Size of a file or block device.
pub fn capacity(p: &Path) -> Result<u64, UpdateError> {
    let mut f = File::open(p).map_err(io_err(format!("opening {}", p.display())))?;
    f.seek(SeekFrom::End(0))
        .map_err(io_err(format!("sizing {}", p.display())))
}

/// SHA-256 of the first `len` bytes of `p`.
pub fn hash_prefix(
    p: &Path,
    len: u64,
    mut progress: impl FnMut(u64),
) -> Result<String, UpdateError> {
    let mut f = File::open(p).map_err(io_err(format!("opening {}", p.display())))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut left = len;
    while left > 0 {
        let want = left.min(CHUNK as u64) as usize;
        let n = f
            .read(&mut buf[..want])
            .map_err(io_err(format!("reading back {}", p.display())))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        left -= n as u64;
        progress(len - left);
    }
    Ok(hex::encode(h.finalize()))
}

/// Asks the kernel to drop the file's (clean, just synced) cached pages, so the read-back
/// comes from the device rather than from memory. Best effort.
fn drop_cache(f: &File) {
    use std::os::fd::AsRawFd;
    // SAFETY: posix_fadvise only reads its integer arguments; the descriptor is valid for the
    // duration of the call because `f` is borrowed.
    unsafe {
        libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED);
    }
}
