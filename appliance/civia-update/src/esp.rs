//! UKIs on the ESP and systemd-boot's Automatic Boot Assessment, on a directory.
//!
//! Each slot has at most one UKI in `<esp>/EFI/Linux/`, named `civia-<version>-<slot>.efi`
//! (blessed or factory), `civia-<version>-<slot>+<left>.efi` (fresh, never booted) or
//! `civia-<version>-<slot>+<left>-<done>.efi` (booted `done` times without blessing).
//! systemd-boot decrements `left` on each boot of a counted entry, sorts entries with `left`
//! = 0 after all others, and otherwise prefers the highest version. `systemd-bless-boot good`
//! removes the counter; `bad` sets `left` to 0. This module does the same renames (so the
//! box and the tests share one implementation) and models the firmware side in
//! [`firmware_boot`] for tests.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use civia_bundle_format::Version;
use sha2::{Digest, Sha256};

use crate::failpoint;
use crate::state::sync_dir;
use crate::{io_err, UpdateError};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub version: Version,
    pub slot: String,
    /// `Some((left, done))` while counted; `None` once blessed (or never counted).
    pub counter: Option<(u32, u32)>,
    pub file: PathBuf,
}

impl Entry {
    pub fn is_bad(&self) -> bool {
        matches!(self.counter, Some((0, _)))
    }
    pub fn stem(&self) -> String {
        stem(self.version, &self.slot)
    }
}

fn stem(version: Version, slot: &str) -> String {
    format!("civia-{version}-{slot}")
}

pub fn linux_dir(esp: &Path) -> PathBuf {
    esp.join("EFI").join("Linux")
}

/// Parses an entry file name; `None` for anything that is not a Civia UKI.
/// A boot counter: `Some((tries left, tries done))`, `None` when blessed.
pub type Counter = Option<(u32, u32)>;

pub fn parse_name(name: &str) -> Option<(Version, String, Counter)> {
    let base = name.strip_suffix(".efi")?.strip_prefix("civia-")?;
    let (id, counter) = match base.split_once('+') {
        None => (base, None),
        Some((id, c)) => {
            let (left, done) = match c.split_once('-') {
                None => (c.parse().ok()?, 0),
                Some((l, d)) => (l.parse().ok()?, d.parse().ok()?),
            };
            (id, Some((left, done)))
        }
    };
    let (ver, slot) = id.rsplit_once('-')?;
    if slot != "a" && slot != "b" {
        return None;
    }
    Some((ver.parse().ok()?, slot.to_string(), counter))
}

fn file_name(version: Version, slot: &str, counter: Option<(u32, u32)>) -> String {
    match counter {
        None => format!("{}.efi", stem(version, slot)),
        Some((l, 0)) => format!("{}+{l}.efi", stem(version, slot)),
        Some((l, d)) => format!("{}+{l}-{d}.efi", stem(version, slot)),
    }
}

pub fn entries(esp: &Path) -> Result<Vec<Entry>, UpdateError> {
    let dir = linux_dir(esp);
    let rd = match fs::read_dir(&dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(format!("listing {}", dir.display()))(e)),
    };
    let mut out = Vec::new();
    for e in rd {
        let e = e.map_err(io_err(format!("listing {}", dir.display())))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some((version, slot, counter)) = parse_name(&name) {
            out.push(Entry {
                version,
                slot,
                counter,
                file: e.path(),
            });
        }
    }
    Ok(out)
}

pub fn entry_for(esp: &Path, slot: &str) -> Result<Option<Entry>, UpdateError> {
    Ok(entries(esp)?.into_iter().find(|e| e.slot == slot))
}

/// Removes every UKI (and leftover temporary file) of `slot`: it becomes unbootable.
pub fn remove_slot(esp: &Path, slot: &str) -> Result<(), UpdateError> {
    let dir = linux_dir(esp);
    for e in entries(esp)?.into_iter().filter(|e| e.slot == slot) {
        fs::remove_file(&e.file).map_err(io_err(format!("removing {}", e.file.display())))?;
    }
    let tmp = dir.join(tmp_name(slot));
    if tmp.exists() {
        fs::remove_file(&tmp).map_err(io_err(format!("removing {}", tmp.display())))?;
    }
    if dir.exists() {
        sync_dir(&dir)?;
    }
    Ok(())
}

fn tmp_name(slot: &str) -> String {
    format!(".civia-{slot}.efi.tmp")
}

/// Writes the UKI to a temporary name (invisible to systemd-boot), fsyncs it and reads it back
/// against `sha256`. Returns the temporary path; [`commit_uki`] makes it bootable.
pub fn stage_uki(
    esp: &Path,
    slot: &str,
    data: &mut dyn FnMut(&mut dyn Write) -> Result<(), UpdateError>,
    sha256: &str,
) -> Result<PathBuf, UpdateError> {
    let dir = linux_dir(esp);
    fs::create_dir_all(&dir).map_err(io_err(format!("creating {}", dir.display())))?;
    let tmp = dir.join(tmp_name(slot));
    let mut f = File::create(&tmp).map_err(io_err(format!("creating {}", tmp.display())))?;
    data(&mut f)?;
    f.sync_all()
        .map_err(io_err(format!("syncing {}", tmp.display())))?;
    drop(f);
    failpoint::hit("readback:uki")?;
    let got = hash_file(&tmp)?;
    if got != sha256 {
        return Err(UpdateError::Readback {
            target: tmp,
            payload: "uki".into(),
            expected: sha256.into(),
            got,
        });
    }
    Ok(tmp)
}

/// The commit point of a system install: renames the staged UKI to its counted name.
pub fn commit_uki(
    esp: &Path,
    tmp: &Path,
    version: Version,
    slot: &str,
    tries: u32,
) -> Result<PathBuf, UpdateError> {
    let dir = linux_dir(esp);
    let dst = dir.join(file_name(version, slot, Some((tries, 0))));
    fs::rename(tmp, &dst).map_err(io_err(format!("renaming to {}", dst.display())))?;
    sync_dir(&dir)?;
    Ok(dst)
}

fn rename_entry(e: &Entry, counter: Option<(u32, u32)>) -> Result<Entry, UpdateError> {
    let dir = e
        .file
        .parent()
        .ok_or_else(|| UpdateError::State("entry without a directory".into()))?;
    let dst = dir.join(file_name(e.version, &e.slot, counter));
    if dst != e.file {
        fs::rename(&e.file, &dst).map_err(io_err(format!("renaming to {}", dst.display())))?;
        sync_dir(dir)?;
    }
    Ok(Entry {
        counter,
        file: dst,
        ..e.clone()
    })
}

/// `systemd-bless-boot good`: drop the counter.
pub fn bless(e: &Entry) -> Result<Entry, UpdateError> {
    rename_entry(e, None)
}

/// `systemd-bless-boot bad`: no tries left.
pub fn mark_bad(e: &Entry) -> Result<Entry, UpdateError> {
    let done = e.counter.map(|(_, d)| d).unwrap_or(0);
    rename_entry(e, Some((0, done)))
}

/// A model of systemd-boot choosing and counting an entry at power-on (tests, and the
/// integrator's documentation). Returns the slot it boots, `None` when nothing is bootable.
pub fn firmware_boot(esp: &Path) -> Result<Option<Entry>, UpdateError> {
    let mut all = entries(esp)?;
    // good entries first, then by version, highest first
    all.sort_by(|x, y| {
        x.is_bad()
            .cmp(&y.is_bad())
            .then(y.version.cmp(&x.version))
            .then(y.slot.cmp(&x.slot))
    });
    let Some(chosen) = all.into_iter().next() else {
        return Ok(None);
    };
    match chosen.counter {
        Some((left, done)) if left > 0 => {
            Ok(Some(rename_entry(&chosen, Some((left - 1, done + 1)))?))
        }
        _ => Ok(Some(chosen)),
    }
}

pub fn hash_file(p: &Path) -> Result<String, UpdateError> {
    let mut f = File::open(p).map_err(io_err(format!("opening {}", p.display())))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(io_err(format!("reading {}", p.display())))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_roundtrip() {
        let v = Version::new(1, 2, 3);
        for c in [None, Some((3, 0)), Some((2, 1)), Some((0, 3))] {
            let n = file_name(v, "b", c);
            assert_eq!(parse_name(&n), Some((v, "b".to_string(), c)), "{n}");
        }
        assert_eq!(parse_name("civia-1.2.3-c.efi"), None);
        assert_eq!(parse_name("other.efi"), None);
        assert_eq!(parse_name(".civia-b.efi.tmp"), None);
    }
}
