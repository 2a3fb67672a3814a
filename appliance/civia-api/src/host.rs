//! What the admin console shows about the machine, read from the kernel: processors, memory,
//! the state directory's disk (size, free space, whether it sits on an encrypted dm-crypt
//! volume), whether a TPM is present and whether an NVIDIA GPU driver is loaded. Nothing here is trusted for security decisions: it
//! is reported, and an unreadable fact is `null` ("unknown"), never guessed.

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

pub fn read(state_dir: &Path) -> HostInfo {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let (total, free) = disk_space(state_dir).unzip();
    HostInfo {
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        memory_total_bytes: meminfo_kib(&meminfo, "MemTotal").map(|k| k * 1024),
        memory_available_bytes: meminfo_kib(&meminfo, "MemAvailable").map(|k| k * 1024),
        disk_total_bytes: total,
        disk_free_bytes: free,
        state_encrypted: encrypted(state_dir),
        tpm_present: Path::new("/dev/tpmrm0").exists(),
        nvidia_gpu: Path::new("/dev/nvidiactl").exists(),
    }
}

fn meminfo_kib(meminfo: &str, key: &str) -> Option<u64> {
    meminfo.lines().find_map(|l| {
        let rest = l.strip_prefix(key)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// (total, available to unprivileged users) bytes of the file system holding `dir`.
fn disk_space(dir: &Path) -> Option<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c` is a valid NUL-terminated path and `st` points to writable memory of the
    // right type; statvfs only writes into it, and we read it only when it returned 0.
    let rc = unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: statvfs returned 0, so it initialised the whole structure.
    let st = unsafe { st.assume_init() };
    // The field types differ between targets (u32 or u64): widen without casts.
    #[allow(clippy::useless_conversion)]
    let (frsize, blocks, avail) = (
        u64::from(st.f_frsize),
        u64::from(st.f_blocks),
        u64::from(st.f_bavail),
    );
    Some((blocks.saturating_mul(frsize), avail.saturating_mul(frsize)))
}

/// Finds the mount holding `dir` in /proc/self/mountinfo and asks sysfs whether its block
/// device is a dm-crypt target (`dm/uuid` starting with `CRYPT-`), directly or under another
/// device-mapper layer.
fn encrypted(dir: &Path) -> Option<bool> {
    let dir = std::fs::canonicalize(dir).ok()?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let (_, dev) = mountinfo
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (dev, mount) = (f.get(2)?, f.get(4)?);
            dir.starts_with(civia_system::unescape_mount_path(mount))
                .then(|| (mount.len(), dev.to_string()))
        })
        .max_by_key(|(len, _)| *len)?;
    Some(is_crypt(&Path::new("/sys/dev/block").join(dev), 0))
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
        let h = read(dir.path());
        assert!(h.cpus >= 1);
        assert!(h.memory_total_bytes.unwrap_or(0) > h.memory_available_bytes.unwrap_or(0));
        let (total, free) = (
            h.disk_total_bytes.expect("total"),
            h.disk_free_bytes.expect("free"),
        );
        assert!(total >= free && total > 0);
        // A temporary directory is on a known mount; this machine's disks are not dm-crypt.
        assert!(h.state_encrypted.is_some());
        assert!(read(Path::new("/nonexistent/dir"))
            .state_encrypted
            .is_none());
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
            civia_system::unescape_mount_path("/mnt/my\\040disk"),
            "/mnt/my disk"
        );
        assert_eq!(civia_system::unescape_mount_path("/a\\"), "/a\\");
    }
}
