//! Which block device holds a path (`/proc/self/mountinfo`) and what device-mapper says about
//! it (`/sys/dev/block/MAJ:MIN`).

use crate::{clean, read_text, Collector, Volume};
use std::path::{Path, PathBuf};

/// Most mounts considered (a box has a few dozen).
const MAX_MOUNTS: usize = 4096;
/// How deep device-mapper stacks are followed (`slaves/`).
const MAX_DM_DEPTH: u32 = 4;
/// How many slaves of one device are looked at.
const MAX_SLAVES: usize = 16;

/// One line of `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mount {
    /// `MAJ:MIN`, checked to be two decimal numbers.
    pub dev: Option<String>,
    pub mount_point: PathBuf,
    pub options: String,
    pub fs_type: String,
    pub source: String,
}

/// The mounts of a mountinfo text, in order; malformed lines are skipped.
pub(crate) fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let mount_point = PathBuf::from(unescape(f.get(4)?));
            if !mount_point.is_absolute() {
                return None;
            }
            // Optional fields end at the lone "-"; fstype, source and super options follow.
            let sep = 6 + f.get(6..)?.iter().position(|x| *x == "-")?;
            Some(Mount {
                dev: f.get(2).and_then(|d| major_minor(d)),
                mount_point,
                options: f.get(5)?.to_string(),
                fs_type: unescape(f.get(sep + 1)?),
                source: unescape(f.get(sep + 2)?),
            })
        })
        .take(MAX_MOUNTS)
        .collect()
}

/// `MAJ:MIN` when it is two decimal numbers (it becomes a sysfs path component).
fn major_minor(s: &str) -> Option<String> {
    let (major, minor) = s.split_once(':')?;
    let digits = |x: &str| !x.is_empty() && x.len() <= 10 && x.bytes().all(|b| b.is_ascii_digit());
    (digits(major) && digits(minor)).then(|| s.to_string())
}

/// The mount holding `path`: the longest mount point above it, the last one mounted when
/// several are stacked on the same point.
pub(crate) fn mount_of<'a>(mounts: &'a [Mount], path: &Path) -> Option<&'a Mount> {
    mounts
        .iter()
        .enumerate()
        .filter(|(_, m)| path.starts_with(&m.mount_point))
        .max_by_key(|(i, m)| (m.mount_point.components().count(), *i))
        .map(|(_, m)| m)
}

/// mountinfo escapes spaces, tabs, newlines and backslashes as `\ooo`.
pub fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            let octal = s
                .get(i + 1..i + 4)
                .filter(|o| o.bytes().all(|d| (b'0'..=b'7').contains(&d)))
                .and_then(|o| u8::from_str_radix(o, 8).ok());
            if let Some(v) = octal {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Collector {
    pub(crate) fn volume(&self, mounts: &[Mount], path: &Path) -> Volume {
        let Some(m) = mount_of(mounts, path) else {
            return Volume::default();
        };
        let mut v = Volume {
            mount_point: clean(&m.mount_point.to_string_lossy()),
            source: clean(&m.source),
            fs_type: clean(&m.fs_type),
            read_only: Some(m.options.split(',').any(|o| o == "ro")),
            ..Volume::default()
        };
        let Some(sys) = m
            .dev
            .as_ref()
            .map(|d| self.path("/sys/dev/block").join(d))
            .filter(|p| p.is_dir())
        else {
            return v;
        };
        v.device = read_text(&sys.join("uevent")).and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("DEVNAME="))
                .and_then(clean)
        });
        v.dm_name = read_text(&sys.join("dm/name")).and_then(|t| clean(&t));
        v.verity = Some(dm_uuid_has_prefix(&sys, "CRYPT-VERITY-", 0));
        v.luks2 = Some(dm_uuid_has_prefix(&sys, "CRYPT-LUKS2-", 0));
        v
    }
}

/// Whether the device-mapper uuid of `sys` (a block device's sysfs directory), or of a device
/// under it, starts with `prefix`.
fn dm_uuid_has_prefix(sys: &Path, prefix: &str, depth: u32) -> bool {
    if read_text(&sys.join("dm/uuid")).is_some_and(|u| u.trim_start().starts_with(prefix)) {
        return true;
    }
    if depth >= MAX_DM_DEPTH {
        return false;
    }
    let Ok(slaves) = std::fs::read_dir(sys.join("slaves")) else {
        return false;
    };
    slaves
        .flatten()
        .take(MAX_SLAVES)
        .any(|e| dm_uuid_has_prefix(&e.path(), prefix, depth + 1))
}
