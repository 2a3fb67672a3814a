//! What the admin console (`GET /admin/status`) and the compliance documents say about the
//! machine: processors, memory, the state directory's disk (size, free space, whether it sits
//! on an encrypted dm-crypt volume), whether a TPM is present and whether an NVIDIA GPU
//! driver is loaded. Read through the same [`Collector`] (and so the same root and the same
//! TPM answer) as [`Collector::collect`]. Nothing here is trusted for security decisions: it
//! is reported, and an unreadable fact is `null` ("unknown"), never guessed.

use crate::Collector;

use serde::Serialize;
use std::path::Path;

#[derive(Debug, Clone, Serialize)]
pub struct HostInfo {
    pub cpus: usize,
    pub memory_total_bytes: Option<u64>,
    pub memory_available_bytes: Option<u64>,
    pub disk_total_bytes: Option<u64>,
    pub disk_free_bytes: Option<u64>,
    /// Whether the state directory is on a dm-crypt (LUKS) volume; None: unknown.
    pub state_encrypted: Option<bool>,
    /// Whether the kernel exposes a TPM 2.0 resource manager (`/dev/tpmrm0`).
    pub tpm_present: bool,
    /// Whether an NVIDIA GPU driver is loaded (`/dev/nvidiactl`).
    pub nvidia_gpu: bool,
}

impl Collector {
    /// The host facts, for the state directory `state_dir` (a path of the running system).
    pub fn host(&self, state_dir: &Path) -> HostInfo {
        let meminfo = std::fs::read_to_string(self.path("/proc/meminfo")).unwrap_or_default();
        let (total, free) = civia_base::fs::disk_space(state_dir).unzip();
        HostInfo {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_total_bytes: meminfo_kib(&meminfo, "MemTotal").map(|k| k * 1024),
            memory_available_bytes: meminfo_kib(&meminfo, "MemAvailable").map(|k| k * 1024),
            disk_total_bytes: total,
            disk_free_bytes: free,
            state_encrypted: self.encrypted(state_dir),
            tpm_present: self.tpm().present,
            nvidia_gpu: self.path("/dev/nvidiactl").exists(),
        }
    }

    /// Finds the mount holding `dir` in mountinfo and asks sysfs whether its block device
    /// is a dm-crypt target (`dm/uuid` starting with `CRYPT-`), directly or under another
    /// device-mapper layer.
    fn encrypted(&self, dir: &Path) -> Option<bool> {
        let dir = std::fs::canonicalize(dir).ok()?;
        let mountinfo = std::fs::read_to_string(self.path("/proc/self/mountinfo")).ok()?;
        let (_, dev) = mountinfo
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                let (dev, mount) = (f.get(2)?, f.get(4)?);
                dir.starts_with(crate::unescape_mount_path(mount))
                    .then(|| (mount.len(), dev.to_string()))
            })
            .max_by_key(|(len, _)| *len)?;
        Some(is_crypt(&self.path("/sys/dev/block").join(dev), 0))
    }
}

fn meminfo_kib(meminfo: &str, key: &str) -> Option<u64> {
    meminfo.lines().find_map(|l| {
        let rest = l.strip_prefix(key)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

fn is_crypt(sys: &Path, depth: u32) -> bool {
    if depth > 8 {
        return false;
    }
    if std::fs::read_to_string(sys.join("dm/uuid")).is_ok_and(|u| u.starts_with("CRYPT-")) {
        return true;
    }
    // Device-mapper stacks (LVM on LUKS, verity over crypt): follow the slaves.
    std::fs::read_dir(sys.join("slaves"))
        .map(|entries| entries.flatten().any(|e| is_crypt(&e.path(), depth + 1)))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_machine() {
        let dir = tempfile::tempdir().expect("tempdir");
        let h = Collector::new("/").host(dir.path());
        assert!(h.cpus >= 1);
        assert!(h.memory_total_bytes.unwrap_or(0) > h.memory_available_bytes.unwrap_or(0));
        let (total, free) = (
            h.disk_total_bytes.expect("total"),
            h.disk_free_bytes.expect("free"),
        );
        assert!(total >= free && total > 0);
        // A temporary directory is on a known mount; this machine's disks are not dm-crypt.
        assert!(h.state_encrypted.is_some());
        assert!(Collector::new("/")
            .host(Path::new("/nonexistent/dir"))
            .state_encrypted
            .is_none());
    }

    #[test]
    fn one_answer_from_a_fake_tree() {
        // The state directory is a real directory; the kernel's view of it comes from the
        // collector's root: a LUKS volume under LVM (dm-crypt below another dm layer).
        let state = tempfile::tempdir().expect("state");
        let root = tempfile::tempdir().expect("root");
        let real = std::fs::canonicalize(state.path()).expect("canonical");
        let write = |rel: &str, text: &str| {
            let p = root.path().join(rel);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(p, text).expect("write");
        };
        write(
            "proc/self/mountinfo",
            &format!(
                "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n40 22 253:7 / {} rw - ext4 /dev/dm-7 rw\n",
                real.display()
            ),
        );
        write("sys/dev/block/253:7/dm/uuid", "LVM-abc\n");
        write(
            "sys/dev/block/253:7/slaves/dm-3/dm/uuid",
            "CRYPT-LUKS2-0011-civia-var\n",
        );
        write("proc/meminfo", "MemTotal: 2048 kB\nMemAvailable: 1024 kB\n");
        write("dev/tpmrm0", "");
        let c = Collector::new(root.path());
        let h = c.host(state.path());
        assert_eq!(h.state_encrypted, Some(true));
        assert_eq!(h.memory_total_bytes, Some(2048 * 1024));
        assert!(!h.nvidia_gpu);
        // The TPM answer is the one GET /admin/system gives.
        assert!(h.tpm_present && c.collect().tpm.present);
        std::fs::write(
            root.path().join("sys/dev/block/253:7/slaves/dm-3/dm/uuid"),
            "LVM-x",
        )
        .expect("rewrite");
        assert_eq!(c.host(state.path()).state_encrypted, Some(false));
    }

    #[test]
    fn parsing() {
        assert_eq!(
            meminfo_kib(
                "MemTotal:       24576000 kB\nMemAvailable: 100 kB\n",
                "MemAvailable"
            ),
            Some(100)
        );
        assert_eq!(meminfo_kib("MemTotalX: 5 kB", "MemTotal"), None);
        assert_eq!(
            crate::unescape_mount_path("/mnt/my\\040disk"),
            "/mnt/my disk"
        );
        assert_eq!(crate::unescape_mount_path("/a\\"), "/a\\");
    }
}
