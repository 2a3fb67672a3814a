//! GPT partition UUIDs derived from the dm-verity root hash, and the booted slot.
//!
//! The UKI's signed kernel command line carries only `roothash=<hex>`: one UKI must boot
//! whichever slot it was installed to. `systemd-veritysetup-generator` then finds the data
//! partition by the GPT partition UUID made of the first 128 bits of the root hash, and the hash
//! partition by the one made of the last 128 bits (the Discoverable Partitions convention, as
//! `systemd-sysupdate` does). So after writing a slot, the install sets the UUIDs of its two
//! partitions with `sfdisk --part-uuid` ([`set_slot_uuids`]); slots that are regular files
//! (tests, trial setups) or whole block devices are left alone.
//!
//! [`booted_slot`] reads the other direction: which slot's `/usr` partition carries the UUID
//! derived from the booted `roothash=`.

use std::fs;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::slot::{Slot, SlotPaths};
use crate::{io_err, UpdateError};

/// The sysfs mount point.
pub const SYSFS: &str = "/sys";
/// udev's links to partitions by GPT partition UUID.
pub const BY_PARTUUID: &str = "/dev/disk/by-partuuid";

/// The partition UUIDs (lowercase, `8-4-4-4-12`) of a slot's data and hash partitions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerityUuids {
    /// The `/usr` partition: the first 128 bits of the root hash.
    pub data: String,
    /// The dm-verity hash partition: the last 128 bits of the root hash.
    pub hash: String,
}

/// The partition UUIDs for a dm-verity root hash (hex, at least 128 bits); `None` when `hex`
/// is not an even number of hex digits, at least 32 of them.
pub fn uuids_from_root_hash(hex: &str) -> Option<VerityUuids> {
    if hex.len() < 32 || !hex.len().is_multiple_of(2) || !hex.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return None;
    }
    let hex = hex.to_ascii_lowercase();
    Some(VerityUuids {
        data: uuid_string(&hex[..32]),
        hash: uuid_string(&hex[hex.len() - 32..]),
    })
}

/// `0123…` (32 hex digits) as `01234567-89ab-cdef-0123-456789abcdef`.
fn uuid_string(hex32: &str) -> String {
    format!(
        "{}-{}-{}-{}-{}",
        &hex32[..8],
        &hex32[8..12],
        &hex32[12..16],
        &hex32[16..20],
        &hex32[20..32]
    )
}

/// A partition: the kernel name of its disk and its partition number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionOf {
    pub disk: String,
    pub number: u32,
}

impl PartitionOf {
    /// The disk's device node.
    pub fn disk_node(&self) -> PathBuf {
        Path::new("/dev").join(&self.disk)
    }
}

/// Reads `<sys>/class/block/<name>/partition` and the parent directory of that device in
/// sysfs. `None` when `name` is not a partition (a whole disk, a loop or device-mapper device).
pub fn partition_in_sysfs(sys: &Path, name: &str) -> Result<Option<PartitionOf>, UpdateError> {
    let dir = sys.join("class").join("block").join(name);
    let file = dir.join("partition");
    let text = match fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(format!("reading {}", file.display()))(e)),
    };
    let number = text.trim().parse().map_err(|_| UpdateError::PartUuid {
        device: Path::new("/dev").join(name),
        message: format!("{} holds `{}`, not a number", file.display(), text.trim()),
    })?;
    let real = fs::canonicalize(&dir).map_err(io_err(format!("resolving {}", dir.display())))?;
    let disk = real
        .parent()
        .and_then(Path::file_name)
        .and_then(|n| n.to_str())
        .ok_or_else(|| UpdateError::PartUuid {
            device: Path::new("/dev").join(name),
            message: format!("{} has no parent disk in sysfs", real.display()),
        })?;
    Ok(Some(PartitionOf {
        disk: disk.to_string(),
        number,
    }))
}

/// Where a slot path lives: `None` for a regular file or a block device that is not a
/// partition; else its disk and partition number (from `sys`).
pub fn slot_partition(path: &Path, sys: &Path) -> Result<Option<PartitionOf>, UpdateError> {
    let dev = fs::canonicalize(path).map_err(io_err(format!("resolving {}", path.display())))?;
    let meta = fs::metadata(&dev).map_err(io_err(format!("inspecting {}", dev.display())))?;
    if !meta.file_type().is_block_device() {
        return Ok(None);
    }
    let Some(name) = dev.file_name().and_then(|n| n.to_str()) else {
        return Ok(None);
    };
    partition_in_sysfs(sys, name)
}

/// The slot's partitions to relabel, resolved before anything is written: `(device,
/// partition, uuid)` for each of `usr` and `verity` that is a partition.
pub fn plan_slot_uuids(
    paths: &SlotPaths,
    uuids: &VerityUuids,
    sys: &Path,
) -> Result<Vec<(PathBuf, PartitionOf, String)>, UpdateError> {
    let mut plan = Vec::new();
    for (path, uuid) in [(&paths.usr, &uuids.data), (&paths.verity, &uuids.hash)] {
        if let Some(p) = slot_partition(path, sys)? {
            plan.push((path.clone(), p, uuid.clone()));
        }
    }
    Ok(plan)
}

/// Sets the GPT partition UUIDs of a slot's partitions (see [`plan_slot_uuids`]) and reads
/// them back.
pub fn set_slot_uuids(plan: &[(PathBuf, PartitionOf, String)]) -> Result<(), UpdateError> {
    for (device, part, uuid) in plan {
        set_partuuid(device, part, uuid)?;
    }
    Ok(())
}

fn sfdisk(device: &Path, args: &[String]) -> Result<String, UpdateError> {
    let out = Command::new("sfdisk")
        .args(args)
        .output()
        .map_err(io_err(format!("running sfdisk for {}", device.display())))?;
    if !out.status.success() {
        return Err(UpdateError::PartUuid {
            device: device.into(),
            message: format!(
                "`sfdisk {}` failed ({}): {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// `sfdisk --part-uuid <disk> <n> <uuid>`, then reads it back. The kernel is not asked to
/// re-read the table (the disk is in use; the new UUIDs matter from the next boot on).
fn set_partuuid(device: &Path, part: &PartitionOf, uuid: &str) -> Result<(), UpdateError> {
    let disk = part.disk_node().to_string_lossy().into_owned();
    let n = part.number.to_string();
    sfdisk(
        device,
        &[
            "--no-reread".into(),
            "--no-tell-kernel".into(),
            "--part-uuid".into(),
            disk.clone(),
            n.clone(),
            uuid.into(),
        ],
    )?;
    let got = sfdisk(device, &["--part-uuid".into(), disk, n])?;
    if !got.eq_ignore_ascii_case(uuid) {
        return Err(UpdateError::PartUuid {
            device: device.into(),
            message: format!("set to {uuid}, but reads back as `{got}`"),
        });
    }
    Ok(())
}

/// How [`booted_slot`] sees devices (the real system: [`SystemLookup`]).
pub trait DeviceLookup {
    /// `p` with every symbolic link resolved; `None` when it does not exist.
    fn canonical(&self, p: &Path) -> Option<PathBuf>;
    /// The GPT partition UUID the kernel reports for the (canonical) device `dev`.
    fn partuuid(&self, dev: &Path) -> Option<String>;
}

/// The running system: `realpath`, and `PARTUUID=` in `/sys/class/block/<name>/uevent`.
pub struct SystemLookup;

impl DeviceLookup for SystemLookup {
    fn canonical(&self, p: &Path) -> Option<PathBuf> {
        fs::canonicalize(p).ok()
    }
    fn partuuid(&self, dev: &Path) -> Option<String> {
        let name = dev.file_name()?;
        let uevent = Path::new(SYSFS)
            .join("class")
            .join("block")
            .join(name)
            .join("uevent");
        uevent_partuuid(&fs::read_to_string(uevent).ok()?)
    }
}

/// `PARTUUID=` of a sysfs `uevent` file.
fn uevent_partuuid(uevent: &str) -> Option<String> {
    uevent
        .lines()
        .find_map(|l| l.strip_prefix("PARTUUID="))
        .map(str::to_string)
}

/// The value of `key=` on a kernel command line (the last one wins, as for the kernel).
fn cmdline_value<'c>(cmdline: &'c str, key: &str) -> Option<&'c str> {
    cmdline
        .split_whitespace()
        .filter_map(|w| w.strip_prefix(key)?.strip_prefix('='))
        .next_back()
}

/// The slot this system booted from (`booted_slot = auto`):
/// 1. `civia.slot=a|b` on the kernel command line, when present;
/// 2. else the slot whose `/usr` partition is `/dev/disk/by-partuuid/<uuid>`, where `<uuid>`
///    is derived from `roothash=` (or `usrhash=`) as `systemd-veritysetup-generator` does,
///    comparing canonical paths;
/// 3. else (no udev link) the slot whose `/usr` partition the kernel reports with that
///    partition UUID.
pub fn booted_slot(
    cmdline: &str,
    slot_a_usr: &Path,
    slot_b_usr: &Path,
    lookup: &dyn DeviceLookup,
) -> Result<Slot, UpdateError> {
    if let Some(s) = cmdline_value(cmdline, "civia.slot") {
        return match s {
            "a" => Ok(Slot::A),
            "b" => Ok(Slot::B),
            other => Err(UpdateError::BootedSlot(format!(
                "the kernel command line says civia.slot={other}, not a or b"
            ))),
        };
    }
    let Some(hash) =
        cmdline_value(cmdline, "roothash").or_else(|| cmdline_value(cmdline, "usrhash"))
    else {
        return Err(UpdateError::BootedSlot(
            "the kernel command line has neither civia.slot= nor roothash= \
             (update.booted_slot = auto)"
                .into(),
        ));
    };
    let uuid = uuids_from_root_hash(hash)
        .ok_or_else(|| {
            UpdateError::BootedSlot(format!(
                "roothash={hash} on the kernel command line is not a root hash"
            ))
        })?
        .data;
    let slots = [
        (Slot::A, lookup.canonical(slot_a_usr)),
        (Slot::B, lookup.canonical(slot_b_usr)),
    ];
    if let Some(dev) = lookup.canonical(&Path::new(BY_PARTUUID).join(&uuid)) {
        if let Some((slot, _)) = slots.iter().find(|(_, p)| p.as_ref() == Some(&dev)) {
            return Ok(*slot);
        }
    }
    let matching: Vec<Slot> = slots
        .iter()
        .filter(|(_, p)| {
            p.as_ref()
                .and_then(|p| lookup.partuuid(p))
                .is_some_and(|u| u.eq_ignore_ascii_case(&uuid))
        })
        .map(|(s, _)| *s)
        .collect();
    match matching[..] {
        [slot] => Ok(slot),
        [] => Err(UpdateError::BootedSlot(format!(
            "neither {} nor {} is the partition with UUID {uuid} (from roothash=)",
            slot_a_usr.display(),
            slot_b_usr.display()
        ))),
        _ => Err(UpdateError::BootedSlot(format!(
            "both slots' /usr partitions have the partition UUID {uuid} (from roothash=)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const HASH: &str = "0123456789abcdef0123456789abcdeffedcba9876543210fedcba9876543210";

    #[test]
    fn uuids_follow_the_discoverable_partitions_convention() {
        let u = uuids_from_root_hash(HASH).unwrap();
        assert_eq!(u.data, "01234567-89ab-cdef-0123-456789abcdef");
        assert_eq!(u.hash, "fedcba98-7654-3210-fedc-ba9876543210");
        let upper = uuids_from_root_hash(&HASH.to_uppercase()).unwrap();
        assert_eq!(upper, u);
        assert_eq!(uuids_from_root_hash(&HASH[..63]), None);
        assert_eq!(uuids_from_root_hash(&HASH[..30]), None);
        assert_eq!(uuids_from_root_hash(&HASH.replace('a', "g")), None);
        // 128 bits: both partitions from the same digits, as systemd does
        let short = uuids_from_root_hash(&HASH[..32]).unwrap();
        assert_eq!(short.data, short.hash);
    }

    #[test]
    fn partition_and_parent_disk_from_sysfs() {
        let d = tempfile::tempdir().unwrap();
        let sys = d.path();
        let devices = sys.join("devices/pci0000:00/0000:00:04.0/nvme/nvme0/nvme0n1");
        fs::create_dir_all(devices.join("nvme0n1p6")).unwrap();
        fs::write(devices.join("nvme0n1p6/partition"), "6\n").unwrap();
        fs::create_dir_all(sys.join("class/block")).unwrap();
        let link = |name: &str, target: &str| {
            std::os::unix::fs::symlink(target, sys.join("class/block").join(name)).unwrap()
        };
        link(
            "nvme0n1p6",
            "../../devices/pci0000:00/0000:00:04.0/nvme/nvme0/nvme0n1/nvme0n1p6",
        );
        link(
            "nvme0n1",
            "../../devices/pci0000:00/0000:00:04.0/nvme/nvme0/nvme0n1",
        );
        let p = partition_in_sysfs(sys, "nvme0n1p6").unwrap().unwrap();
        assert_eq!(
            p,
            PartitionOf {
                disk: "nvme0n1".into(),
                number: 6
            }
        );
        assert_eq!(p.disk_node(), Path::new("/dev/nvme0n1"));
        // a whole disk, an unknown device: not partitions
        assert_eq!(partition_in_sysfs(sys, "nvme0n1").unwrap(), None);
        assert_eq!(partition_in_sysfs(sys, "dm-0").unwrap(), None);
        fs::write(devices.join("nvme0n1p6/partition"), "six\n").unwrap();
        assert!(matches!(
            partition_in_sysfs(sys, "nvme0n1p6"),
            Err(UpdateError::PartUuid { .. })
        ));
    }

    #[test]
    fn regular_files_are_not_partitions() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("usr-b");
        fs::write(&f, b"x").unwrap();
        assert_eq!(slot_partition(&f, Path::new(SYSFS)).unwrap(), None);
        let paths = SlotPaths {
            usr: f.clone(),
            verity: f,
        };
        let u = uuids_from_root_hash(HASH).unwrap();
        assert!(plan_slot_uuids(&paths, &u, Path::new(SYSFS))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn uevent_partuuid_is_read() {
        let ev = "MAJOR=259\nMINOR=6\nDEVNAME=nvme0n1p6\nDEVTYPE=partition\nPARTN=6\n\
                  PARTNAME=usr-b\nPARTUUID=01234567-89ab-cdef-0123-456789abcdef\n";
        assert_eq!(
            uevent_partuuid(ev).as_deref(),
            Some("01234567-89ab-cdef-0123-456789abcdef")
        );
        assert_eq!(uevent_partuuid("MAJOR=7\n"), None);
    }

    #[test]
    fn sfdisk_failure_is_typed_and_carries_its_stderr() {
        let plan = vec![(
            PathBuf::from("/dev/disk/by-partlabel/usr-b"),
            PartitionOf {
                disk: "civia-no-such-disk".into(),
                number: 2,
            },
            "01234567-89ab-cdef-0123-456789abcdef".to_string(),
        )];
        match set_slot_uuids(&plan) {
            Err(UpdateError::PartUuid { device, message }) => {
                assert_eq!(device, Path::new("/dev/disk/by-partlabel/usr-b"));
                assert!(message.contains("--part-uuid"), "{message}");
                // sfdisk's own complaint names the disk it could not open
                assert!(message.contains("civia-no-such-disk"), "{message}");
            }
            // no sfdisk on this machine at all
            Err(UpdateError::Io { .. }) => {}
            other => panic!("{other:?}"),
        }
    }

    /// Links and kernel-reported partition UUIDs of a pretend system.
    #[derive(Default)]
    struct Fake {
        links: HashMap<PathBuf, PathBuf>,
        uuids: HashMap<PathBuf, String>,
    }

    impl Fake {
        fn link(mut self, from: &str, to: &str) -> Self {
            self.links.insert(from.into(), to.into());
            self
        }
        fn uuid(mut self, dev: &str, uuid: &str) -> Self {
            self.uuids.insert(dev.into(), uuid.into());
            self
        }
    }

    impl DeviceLookup for Fake {
        fn canonical(&self, p: &Path) -> Option<PathBuf> {
            match self.links.get(p) {
                Some(t) => Some(t.clone()),
                None if p.starts_with("/dev/disk") => None,
                None => Some(p.to_path_buf()),
            }
        }
        fn partuuid(&self, dev: &Path) -> Option<String> {
            self.uuids.get(dev).cloned()
        }
    }

    const DATA: &str = "01234567-89ab-cdef-0123-456789abcdef";

    fn box_with_udev() -> Fake {
        Fake::default()
            .link("/dev/disk/by-partlabel/usr-a", "/dev/nvme0n1p5")
            .link("/dev/disk/by-partlabel/usr-b", "/dev/nvme0n1p6")
    }

    fn booted(cmdline: &str, f: &Fake) -> Result<Slot, UpdateError> {
        booted_slot(
            cmdline,
            Path::new("/dev/disk/by-partlabel/usr-a"),
            Path::new("/dev/disk/by-partlabel/usr-b"),
            f,
        )
    }

    #[test]
    fn booted_slot_from_civia_slot() {
        let f = box_with_udev();
        assert_eq!(booted("quiet civia.slot=b rw", &f).unwrap(), Slot::B);
        assert_eq!(
            booted(&format!("civia.slot=a roothash={HASH}"), &f).unwrap(),
            Slot::A
        );
        assert!(matches!(
            booted("civia.slot=c", &f),
            Err(UpdateError::BootedSlot(_))
        ));
        assert!(matches!(
            booted("quiet", &f),
            Err(UpdateError::BootedSlot(_))
        ));
        // a prefix of the key is not the key
        assert!(booted("civia.slotx=a", &f).is_err());
    }

    #[test]
    fn booted_slot_from_roothash_by_partuuid_link() {
        let f = box_with_udev().link(&format!("/dev/disk/by-partuuid/{DATA}"), "/dev/nvme0n1p6");
        assert_eq!(
            booted(&format!("quiet roothash={HASH} rw"), &f).unwrap(),
            Slot::B
        );
        assert_eq!(
            booted(&format!("usrhash={}", HASH.to_uppercase()), &f).unwrap(),
            Slot::B
        );
        let f = box_with_udev().link(&format!("/dev/disk/by-partuuid/{DATA}"), "/dev/nvme0n1p5");
        assert_eq!(booted(&format!("roothash={HASH}"), &f).unwrap(), Slot::A);
        // the link points elsewhere (the verity partition, another disk): no slot
        let f = box_with_udev().link(&format!("/dev/disk/by-partuuid/{DATA}"), "/dev/sda1");
        assert!(matches!(
            booted(&format!("roothash={HASH}"), &f),
            Err(UpdateError::BootedSlot(_))
        ));
        assert!(booted("roothash=xyz", &f).is_err());
    }

    #[test]
    fn booted_slot_from_roothash_without_udev() {
        let f = box_with_udev()
            .uuid("/dev/nvme0n1p5", "11111111-2222-3333-4444-555555555555")
            .uuid("/dev/nvme0n1p6", &DATA.to_uppercase());
        assert_eq!(booted(&format!("roothash={HASH}"), &f).unwrap(), Slot::B);
        // both slots carry it: refuse to guess
        let f = box_with_udev()
            .uuid("/dev/nvme0n1p5", DATA)
            .uuid("/dev/nvme0n1p6", DATA);
        assert!(matches!(
            booted(&format!("roothash={HASH}"), &f),
            Err(UpdateError::BootedSlot(_))
        ));
        // nothing known
        assert!(booted(&format!("roothash={HASH}"), &box_with_udev()).is_err());
    }
}
