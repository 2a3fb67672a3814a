//! Facts the box reports about itself: what listens on the network, which addresses it has,
//! what holds `/`, `/usr` and the state directory (dm-verity, dm-crypt LUKS2, read-only), how
//! `/var` was unlocked, the TPM, Secure Boot, the kernel (release, verity hashes on the
//! command line, lockdown), NVIDIA GPUs and the image's version. Served by the admin API
//! (`GET /admin/system`), printed on the console (`civia console-status`) and checked by the
//! acceptance suite, which has no shell on the box.
//!
//! Owns: reading a handful of kernel and boot files — `/proc/net/{tcp,tcp6,udp,udp6}`,
//! `/proc/net/fib_trie`, `/proc/net/if_inet6`, `/proc/self/mountinfo`, `/sys/dev/block`,
//! `/run/civia-boot/unlock-method`, `/dev/tpmrm0`, `/sys/class/tpm`, the `SecureBoot` EFI variable,
//! `/proc/sys/kernel/osrelease`, `/proc/cmdline`, `/sys/kernel/security/lockdown`,
//! `/proc/driver/nvidia/gpus`, `/dev/nvidiactl`, `/proc/meminfo` and `/usr/lib/os-release`
//! (and `statvfs` of the state directory for the host facts, [`Collector::host`]) — every path under a configurable root
//! ([`Collector::new`]) so that tests read a fake tree; and the egress probe
//! ([`probe_egress`]): one TCP connect, bounded in time, closed at once; and, on request, the
//! main-memory read bandwidth ([`measure_memory_read`]), what bounds a model's decoding speed
//! on the CPU: a bounded buffer allocated, read by a few threads, freed; and how the API may
//! run both ([`ProbeTarget`], [`measure_bandwidth`]): the probe's target and timeout checked,
//! at most [`PARALLEL_PROBES`] probes at once, one bandwidth measurement at a time, and the
//! decoding-speed bound from the loaded weights ([`decode_bound`]).
//!
//! Must never: write a file, run a program, block on a special file, read without bound,
//! fail or panic on a missing or garbled file (a fact it cannot read is `null` or an empty
//! list, never guessed), send a byte to a probed address, or be trusted for a security
//! decision: it reports what the kernel says; the image enforces.

mod bandwidth;
mod host;
mod net;
mod service;
mod volume;

pub use bandwidth::{
    measure_memory_read, BandwidthError, MemoryBandwidth, DEFAULT_BUFFER_BYTES, MAX_BUFFER_BYTES,
    MAX_THREADS, MIN_BUFFER_BYTES,
};
pub use host::HostInfo;
pub use net::{check_probe_target, probe_egress, EgressResult, ProbeError, MAX_PROBE_TIMEOUT};
pub use service::{
    decode_bound, max_probe_timeout_ms, measure_bandwidth, MeasureError, ProbeTarget, TargetError,
    BANDWIDTH_PASSES, DEFAULT_PROBE_TIMEOUT_MS, PARALLEL_PROBES,
};
pub use volume::unescape as unescape_mount_path;

use serde::Serialize;
use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// Largest file read (a `/proc/net` table of a busy box stays well under it).
const MAX_FILE_BYTES: u64 = 4 << 20;
/// Longest text kept from a file (names, versions, models).
const MAX_TEXT_CHARS: usize = 256;
/// The `SecureBoot` variable of the EFI global-variable GUID.
const SECURE_BOOT_VAR: &str =
    "sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c";

/// Everything [`Collector::collect`] found. Serialized as the body of `GET /admin/system`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SystemFacts {
    /// Listening TCP sockets and unconnected (bound) UDP sockets of this network namespace.
    pub listening: Vec<Listener>,
    /// Local unicast addresses, IPv4 then global IPv6, loopback excluded.
    pub addresses: Vec<IpAddr>,
    /// The file system mounted on `/`.
    pub root: Volume,
    /// The file system holding `/usr` (the verity A/B slot on the image).
    pub usr: Volume,
    /// The file system holding the state directory (the encrypted `/var` on the image).
    pub var: VarVolume,
    pub tpm: Tpm,
    /// Whether the firmware booted with Secure Boot on; `None` without EFI.
    pub secure_boot: Option<bool>,
    pub kernel: Kernel,
    /// NVIDIA GPUs known to the driver; empty without the driver.
    pub gpu: Vec<Gpu>,
    pub image: Image,
}

/// A socket waiting for connections or datagrams.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Listener {
    pub protocol: Protocol,
    /// The bound address (`0.0.0.0` or `::`: every address).
    pub address: IpAddr,
    pub port: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

/// A mounted file system and the block device under it. Every field is `None` when unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Volume {
    /// Where the file system holding the path is mounted.
    pub mount_point: Option<String>,
    /// The mount source as the kernel reports it (e.g. `/dev/mapper/root`).
    pub source: Option<String>,
    pub fs_type: Option<String>,
    /// The kernel's name of the block device (e.g. `dm-0`).
    pub device: Option<String>,
    /// The device-mapper name (e.g. `civia-var`), when it is a device-mapper device.
    pub dm_name: Option<String>,
    /// Whether it is mounted read-only.
    pub read_only: Option<bool>,
    /// Whether the device, or a device-mapper device under it, is a dm-verity target.
    pub verity: Option<bool>,
    /// Whether the device, or a device-mapper device under it, is a dm-crypt LUKS2 volume.
    pub luks2: Option<bool>,
}

/// The state directory's volume and how it was unlocked at boot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VarVolume {
    /// The path looked up (the state directory).
    pub path: String,
    #[serde(flatten)]
    pub volume: Volume,
    /// `tpm2` or `recovery-key`, as the boot wrote it in `/run/civia-boot/unlock-method`.
    pub unlock_method: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Tpm {
    /// Whether the kernel exposes a TPM resource manager (`/dev/tpmrm0`).
    pub present: bool,
    /// The TPM's major version (2 for TPM 2.0), from sysfs.
    pub version_major: Option<u8>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Kernel {
    pub release: Option<String>,
    /// Whether the command line carries a verity root hash (`roothash=`).
    pub cmdline_roothash: Option<bool>,
    /// Whether the command line carries a verity `/usr` hash (`usrhash=`).
    pub cmdline_usrhash: Option<bool>,
    /// The kernel lockdown mode (`none`, `integrity`, `confidentiality`).
    pub lockdown: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Gpu {
    /// The PCI address the driver lists it under.
    pub bus: String,
    /// The driver's model name (e.g. `NVIDIA H200`).
    pub model: Option<String>,
}

/// `IMAGE_ID` and `IMAGE_VERSION` of `/usr/lib/os-release`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Image {
    pub id: Option<String>,
    pub version: Option<String>,
}

/// Reads the facts under a root directory (`/` on the box).
#[derive(Debug, Clone)]
pub struct Collector {
    root: PathBuf,
    var_path: PathBuf,
}

impl Collector {
    /// Reads under `root`; the state directory is taken to be `/var` until
    /// [`Collector::with_var_path`].
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            var_path: PathBuf::from("/var"),
        }
    }

    /// The path whose volume [`SystemFacts::var`] describes (absolute, as seen on the box).
    pub fn with_var_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.var_path = path.into();
        self
    }

    /// Every fact; never fails (what cannot be read is `None` or empty).
    pub fn collect(&self) -> SystemFacts {
        let mounts = self
            .read("/proc/self/mountinfo")
            .map(|t| volume::parse_mountinfo(&t))
            .unwrap_or_default();
        SystemFacts {
            listening: self.listening(),
            addresses: self.addresses(),
            root: self.volume(&mounts, Path::new("/")),
            usr: self.volume(&mounts, Path::new("/usr")),
            var: VarVolume {
                path: self.var_path.to_string_lossy().into_owned(),
                volume: self.volume(&mounts, &self.var_path),
                unlock_method: self.unlock_method(),
            },
            tpm: self.tpm(),
            secure_boot: self.secure_boot(),
            kernel: self.kernel(),
            gpu: self.gpus(),
            image: self.image(),
        }
    }

    /// `abs` (an absolute path on the box) under the root.
    fn path(&self, abs: impl AsRef<Path>) -> PathBuf {
        let rel = abs.as_ref().strip_prefix("/").unwrap_or(abs.as_ref());
        self.root.join(rel)
    }

    fn read(&self, abs: impl AsRef<Path>) -> Option<String> {
        read_text(&self.path(abs))
    }

    fn unlock_method(&self) -> Option<String> {
        let text = self.read("/run/civia-boot/unlock-method")?;
        let method = text.trim();
        ["tpm2", "recovery-key"]
            .contains(&method)
            .then(|| method.to_string())
    }

    fn tpm(&self) -> Tpm {
        Tpm {
            present: self.path("/dev/tpmrm0").exists(),
            version_major: self
                .read("/sys/class/tpm/tpm0/tpm_version_major")
                .and_then(|t| t.trim().parse().ok()),
        }
    }

    /// `None` without EFI or without readable EFI variables; `false` when the firmware has no
    /// `SecureBoot` variable at all.
    fn secure_boot(&self) -> Option<bool> {
        let vars = self.path("/sys/firmware/efi/efivars");
        std::fs::read_dir(&vars).ok()?.next()?.ok()?;
        let var = self.path(SECURE_BOOT_VAR);
        if !var.exists() {
            return Some(false);
        }
        let bytes = read_bytes(&var, 64)?;
        // 4 bytes of attributes, then the value: 1 on, 0 off.
        match bytes.get(4..) {
            Some([v]) if *v <= 1 => Some(*v == 1),
            _ => None,
        }
    }

    fn kernel(&self) -> Kernel {
        let cmdline = self.read("/proc/cmdline");
        let has = |key: &str| {
            cmdline
                .as_deref()
                .map(|c| c.split_whitespace().any(|w| w.starts_with(key)))
        };
        Kernel {
            release: self
                .read("/proc/sys/kernel/osrelease")
                .and_then(|t| clean(&t)),
            cmdline_roothash: has("roothash="),
            cmdline_usrhash: has("usrhash="),
            lockdown: self
                .read("/sys/kernel/security/lockdown")
                .and_then(|t| lockdown(&t)),
        }
    }

    fn gpus(&self) -> Vec<Gpu> {
        const MAX_GPUS: usize = 64;
        let Ok(entries) = std::fs::read_dir(self.path("/proc/driver/nvidia/gpus")) else {
            return Vec::new();
        };
        let mut gpus: Vec<Gpu> = entries
            .flatten()
            .take(MAX_GPUS)
            .filter_map(|e| {
                let bus = clean(&e.file_name().to_string_lossy())?;
                let model = read_text(&e.path().join("information"))
                    .and_then(|t| key_value(&t, "Model", ':'));
                Some(Gpu { bus, model })
            })
            .collect();
        gpus.sort_by(|a, b| a.bus.cmp(&b.bus));
        gpus
    }

    fn image(&self) -> Image {
        let Some(text) = self.read("/usr/lib/os-release") else {
            return Image::default();
        };
        Image {
            id: key_value(&text, "IMAGE_ID", '='),
            version: key_value(&text, "IMAGE_VERSION", '='),
        }
    }
}

/// A regular file's text (lossy UTF-8), at most [`MAX_FILE_BYTES`]; `None` when it is not a
/// regular file or cannot be read.
fn read_text(path: &Path) -> Option<String> {
    read_bytes(path, MAX_FILE_BYTES).map(|b| String::from_utf8_lossy(&b).into_owned())
}

fn read_bytes(path: &Path, max: u64) -> Option<Vec<u8>> {
    // Never open a FIFO or a device: it could block or have side effects.
    if !std::fs::metadata(path).ok()?.is_file() {
        return None;
    }
    let mut buf = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(max)
        .read_to_end(&mut buf)
        .ok()?;
    Some(buf)
}

/// Text fit for a report: trimmed, control characters dropped, at most [`MAX_TEXT_CHARS`];
/// `None` when nothing is left.
fn clean(s: &str) -> Option<String> {
    let s: String = s
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_TEXT_CHARS)
        .collect();
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

/// The value of the first `key<sep>value` line (os-release, `information` files), quotes
/// removed.
fn key_value(text: &str, key: &str, sep: char) -> Option<String> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(sep)?;
        if k.trim() != key {
            return None;
        }
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(v);
        clean(v)
    })
}

/// The selected mode of `/sys/kernel/security/lockdown` (`none [integrity] confidentiality`).
fn lockdown(text: &str) -> Option<String> {
    let start = text.find('[')? + 1;
    let len = text.get(start..)?.find(']')?;
    let mode = text.get(start..start + len)?;
    (!mode.is_empty() && mode.bytes().all(|b| b.is_ascii_lowercase())).then(|| mode.to_string())
}

#[cfg(test)]
mod tests;
