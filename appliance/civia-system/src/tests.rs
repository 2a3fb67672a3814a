//! Parsers against fake trees (real layouts, missing files, garbage) and this machine.

use super::*;
use crate::net::{parse_fib_trie, parse_if_inet6, parse_socket_table};
use crate::volume::{mount_of, parse_mountinfo};
use serde_json::json;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};
use std::time::{Duration, Instant};

/// A fake root directory.
struct Tree(tempfile::TempDir);

impl Tree {
    fn new() -> Self {
        Self(tempfile::tempdir().expect("tempdir"))
    }

    fn write(&self, path: &str, content: impl AsRef<[u8]>) -> &Self {
        let p = self.0.path().join(path.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, content).expect("write");
        self
    }

    fn mkdir(&self, path: &str) -> &Self {
        std::fs::create_dir_all(self.0.path().join(path.trim_start_matches('/'))).expect("mkdir");
        self
    }

    fn collect(&self) -> SystemFacts {
        Collector::new(self.0.path())
            .with_var_path("/var/lib/civia")
            .collect()
    }
}

/// An IPv4 address as `/proc/net/tcp` prints it on this machine.
fn proc_v4(a: [u8; 4]) -> String {
    format!("{:08X}", u32::from_ne_bytes(a))
}

fn proc_v6(a: Ipv6Addr) -> String {
    a.octets()
        .chunks_exact(4)
        .map(|w| format!("{:08X}", u32::from_ne_bytes([w[0], w[1], w[2], w[3]])))
        .collect()
}

const TABLE_HEAD: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";

fn socket_line(n: usize, local: &str, port: u16, remote: &str, state: u8) -> String {
    format!(
        "{n:4}: {local}:{port:04X} {remote}:0000 {state:02X} 00000000:00000000 00:00000000 00000000     0        0 2012{n} 1 0000000000000000 100 0 0 10 0\n"
    )
}

fn tcp_table() -> String {
    let any = proc_v4([0, 0, 0, 0]);
    let lo = proc_v4([127, 0, 0, 1]);
    let lan = proc_v4([192, 168, 1, 20]);
    let peer = proc_v4([192, 168, 1, 7]);
    TABLE_HEAD.to_string()
        + &socket_line(0, &any, 443, &any, 0x0A)
        + &socket_line(1, &lo, 3306, &any, 0x0A)
        // An established connection and a TIME_WAIT one are not listening.
        + &socket_line(2, &lan, 443, &peer, 0x01)
        + &socket_line(3, &lan, 443, &peer, 0x06)
        // SO_REUSEPORT: the same listener twice is reported once.
        + &socket_line(4, &any, 443, &any, 0x0A)
}

fn tcp6_table() -> String {
    let any = proc_v6(Ipv6Addr::UNSPECIFIED);
    TABLE_HEAD.to_string()
        + &socket_line(0, &any, 22, &any, 0x0A)
        + &socket_line(1, &proc_v6(Ipv6Addr::LOCALHOST), 631, &any, 0x0A)
}

fn udp_table() -> String {
    let any = proc_v4([0, 0, 0, 0]);
    let lan = proc_v4([192, 168, 1, 20]);
    let dns = proc_v4([192, 168, 1, 1]);
    TABLE_HEAD.to_string()
        + &socket_line(0, &any, 68, &any, 0x07)
        // A connected UDP socket (a resolver's query) only hears its peer.
        + &socket_line(1, &lan, 40000, &dns, 0x01)
}

const FIB_TRIE: &str = "Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 127.0.0.0/8 2 0 2
        +-- 127.0.0.0/31 1 0 0
           |-- 127.0.0.0
              /8 host LOCAL
           |-- 127.0.0.1
              /32 host LOCAL
        |-- 127.255.255.255
           /32 link BROADCAST
     +-- 192.168.1.0/24 2 0 2
        +-- 192.168.1.0/28 2 0 2
           |-- 192.168.1.0
              /24 link UNICAST
           |-- 192.168.1.20
              /32 host LOCAL
        |-- 192.168.1.255
           /32 link BROADCAST
     |-- 10.0.2.15
        /32 host LOCAL
Local:
  +-- 0.0.0.0/0 3 0 5
     |-- 192.168.1.20
        /32 host LOCAL
";

const IF_INET6: &str = "\
00000000000000000000000000000001 01 80 10 80       lo
fe800000000000005054fffe00123456 02 40 20 80     eth0
fd000000000000000000000000000014 02 40 00 80     eth0
";

const MOUNTINFO: &str = "\
22 1 254:0 / / ro,relatime shared:1 - erofs /dev/mapper/root ro
23 22 254:1 / /usr ro,nodev,relatime shared:2 - erofs /dev/mapper/usr ro
24 22 0:5 / /dev rw,nosuid shared:3 - devtmpfs devtmpfs rw,size=4096k
30 22 254:2 / /var rw,nosuid,nodev,relatime shared:10 - ext4 /dev/mapper/civia-var rw
31 22 0:25 / /run rw,nosuid,nodev shared:5 - tmpfs tmpfs rw,mode=755
40 30 0:40 / /var/lib/other\\040dir rw - tmpfs tmpfs rw
";

/// The box as the image sets it up: verity `/` and `/usr`, LUKS2 `/var` unlocked by the TPM.
fn the_box() -> Tree {
    let t = Tree::new();
    t.write("/proc/net/tcp", tcp_table())
        .write("/proc/net/tcp6", tcp6_table())
        .write("/proc/net/udp", udp_table())
        .write("/proc/net/udp6", TABLE_HEAD)
        .write("/proc/net/fib_trie", FIB_TRIE)
        .write("/proc/net/if_inet6", IF_INET6)
        .write("/proc/self/mountinfo", MOUNTINFO);
    for (dev, n, name, uuid) in [
        (
            "254:0",
            0,
            "root",
            "CRYPT-VERITY-6b1f0c6c6f6d4c2e9d1d2b7e5b3a1c0d-root",
        ),
        (
            "254:1",
            1,
            "usr",
            "CRYPT-VERITY-0c6f2e1d9b7a4c3e8f1a2b3c4d5e6f70-usr",
        ),
        (
            "254:2",
            2,
            "civia-var",
            "CRYPT-LUKS2-3f2a1b0c9d8e4f7a6b5c4d3e2f1a0b9c-civia-var",
        ),
    ] {
        let sys = format!("/sys/dev/block/{dev}");
        t.write(
            &format!("{sys}/uevent"),
            format!("MAJOR=254\nMINOR={n}\nDEVNAME=dm-{n}\nDEVTYPE=disk\nDISKSEQ=9\n"),
        )
        .write(&format!("{sys}/dm/name"), format!("{name}\n"))
        .write(&format!("{sys}/dm/uuid"), format!("{uuid}\n"));
    }
    t.write("/run/civia-boot/unlock-method", "tpm2\n")
        .write("/dev/tpmrm0", "")
        .write("/sys/class/tpm/tpm0/tpm_version_major", "2\n")
        .write(
            "/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c",
            [6, 0, 0, 0, 1],
        )
        .write(
            "/sys/firmware/efi/efivars/SetupMode-8be4df61-93ca-11d2-aa0d-00e098032b8c",
            [6, 0, 0, 0, 0],
        )
        .write("/proc/sys/kernel/osrelease", "6.12.43+deb13-amd64\n")
        .write(
            "/proc/cmdline",
            "BOOT_IMAGE=/vmlinuz usrhash=0c6f2e1d roothash=6b1f0c6c ro quiet civia.slot=a\n",
        )
        .write(
            "/sys/kernel/security/lockdown",
            "none [integrity] confidentiality\n",
        )
        .write(
            "/proc/driver/nvidia/gpus/0000:41:00.0/information",
            "Model: \t\t NVIDIA H200\nIRQ:   \t\t 105\nGPU UUID: \t GPU-0f1e2d3c\nBus Type: \t PCIe\n",
        )
        .write(
            "/usr/lib/os-release",
            "PRETTY_NAME=\"Debian GNU/Linux 13 (trixie)\"\nID=debian\nIMAGE_ID=civia\nIMAGE_VERSION=\"1.4.2\"\n",
        );
    t
}

#[test]
fn the_box_as_the_image_sets_it_up() {
    let f = the_box().collect();
    let l = |protocol, address: IpAddr, port| Listener {
        protocol,
        address,
        port,
    };
    let any4 = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    assert_eq!(
        f.listening,
        [
            l(Protocol::Tcp, any4, 443),
            l(Protocol::Tcp, IpAddr::V4(Ipv4Addr::LOCALHOST), 3306),
            l(Protocol::Tcp, IpAddr::V6(Ipv6Addr::UNSPECIFIED), 22),
            l(Protocol::Tcp, IpAddr::V6(Ipv6Addr::LOCALHOST), 631),
            l(Protocol::Udp, any4, 68),
        ]
    );
    assert_eq!(
        f.addresses,
        [
            IpAddr::from([10, 0, 2, 15]),
            IpAddr::from([192, 168, 1, 20]),
            "fd00::14".parse::<IpAddr>().expect("ip"),
        ]
    );
    assert_eq!(
        f.root,
        Volume {
            mount_point: Some("/".into()),
            source: Some("/dev/mapper/root".into()),
            fs_type: Some("erofs".into()),
            device: Some("dm-0".into()),
            dm_name: Some("root".into()),
            read_only: Some(true),
            verity: Some(true),
            luks2: Some(false),
        }
    );
    assert_eq!(f.usr.dm_name.as_deref(), Some("usr"));
    assert_eq!(f.usr.verity, Some(true));
    assert_eq!(
        f.var,
        VarVolume {
            path: "/var/lib/civia".into(),
            volume: Volume {
                mount_point: Some("/var".into()),
                source: Some("/dev/mapper/civia-var".into()),
                fs_type: Some("ext4".into()),
                device: Some("dm-2".into()),
                dm_name: Some("civia-var".into()),
                read_only: Some(false),
                verity: Some(false),
                luks2: Some(true),
            },
            unlock_method: Some("tpm2".into()),
        }
    );
    assert_eq!(
        f.tpm,
        Tpm {
            present: true,
            version_major: Some(2)
        }
    );
    assert_eq!(f.secure_boot, Some(true));
    assert_eq!(
        f.kernel,
        Kernel {
            release: Some("6.12.43+deb13-amd64".into()),
            cmdline_roothash: Some(true),
            cmdline_usrhash: Some(true),
            lockdown: Some("integrity".into()),
        }
    );
    assert_eq!(
        f.gpu,
        [Gpu {
            bus: "0000:41:00.0".into(),
            model: Some("NVIDIA H200".into())
        }]
    );
    assert_eq!(
        f.image,
        Image {
            id: Some("civia".into()),
            version: Some("1.4.2".into())
        }
    );
}

#[test]
fn json_field_names_are_the_api_contract() {
    let v = serde_json::to_value(the_box().collect()).expect("json");
    assert_eq!(
        v["listening"][0],
        json!({"protocol": "tcp", "address": "0.0.0.0", "port": 443})
    );
    assert_eq!(v["addresses"][0], "10.0.2.15");
    assert_eq!(
        v["var"],
        json!({
            "path": "/var/lib/civia", "mount_point": "/var", "source": "/dev/mapper/civia-var",
            "fs_type": "ext4", "device": "dm-2", "dm_name": "civia-var", "read_only": false,
            "verity": false, "luks2": true, "unlock_method": "tpm2",
        })
    );
    assert_eq!(v["tpm"], json!({"present": true, "version_major": 2}));
    assert_eq!(v["secure_boot"], true);
    assert_eq!(
        v["gpu"],
        json!([{"bus": "0000:41:00.0", "model": "NVIDIA H200"}])
    );
    assert_eq!(v["image"], json!({"id": "civia", "version": "1.4.2"}));
    let keys: Vec<&str> = v
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    let mut want = [
        "listening",
        "addresses",
        "root",
        "usr",
        "var",
        "tpm",
        "secure_boot",
        "kernel",
        "gpu",
        "image",
    ];
    want.sort_unstable();
    let mut keys = keys;
    keys.sort_unstable();
    assert_eq!(keys, want);
}

#[test]
fn an_empty_tree_is_all_unknown() {
    let t = Tree::new();
    let f = t.collect();
    assert_eq!(
        f,
        SystemFacts {
            listening: vec![],
            addresses: vec![],
            root: Volume::default(),
            usr: Volume::default(),
            var: VarVolume {
                path: "/var/lib/civia".into(),
                ..VarVolume::default()
            },
            tpm: Tpm::default(),
            secure_boot: None,
            kernel: Kernel::default(),
            gpu: vec![],
            image: Image::default(),
        }
    );
    let v = serde_json::to_value(&f).expect("json");
    assert_eq!(v["secure_boot"], json!(null));
    assert_eq!(v["var"]["luks2"], json!(null));
    assert_eq!(v["var"]["unlock_method"], json!(null));
}

#[test]
fn a_plain_disk_box_without_efi_tpm_or_gpu() {
    // A development VM: ext4 root on a partition, no device-mapper, no EFI variables.
    let t = Tree::new();
    t.write(
        "/proc/self/mountinfo",
        "25 1 8:2 / / rw,relatime shared:1 - ext4 /dev/sda2 rw,errors=remount-ro\n",
    )
    .write(
        "/sys/dev/block/8:2/uevent",
        "MAJOR=8\nMINOR=2\nDEVNAME=sda2\nDEVTYPE=partition\n",
    )
    .mkdir("/sys/firmware/efi/efivars")
    .write("/proc/cmdline", "BOOT_IMAGE=/vmlinuz root=/dev/sda2 ro\n")
    .write(
        "/sys/kernel/security/lockdown",
        "[none] integrity confidentiality\n",
    )
    .write("/run/civia-boot/unlock-method", "magic\n");
    let f = t.collect();
    assert_eq!(f.root.device.as_deref(), Some("sda2"));
    assert_eq!(f.root.dm_name, None);
    assert_eq!(
        (f.root.read_only, f.root.verity, f.root.luks2),
        (Some(false), Some(false), Some(false))
    );
    // `/var/lib/civia` is on `/`.
    assert_eq!(f.var.volume, f.root);
    assert_eq!(f.var.unlock_method, None, "only known methods are reported");
    // EFI without variables mounted: unknown, not "off".
    assert_eq!(f.secure_boot, None);
    assert_eq!(f.kernel.cmdline_roothash, Some(false));
    assert_eq!(f.kernel.lockdown.as_deref(), Some("none"));
    assert_eq!(f.tpm, Tpm::default());
    // EFI variables but no SecureBoot variable: the firmware has no Secure Boot.
    t.write(
        "/sys/firmware/efi/efivars/BootOrder-8be4df61-93ca-11d2-aa0d-00e098032b8c",
        [7, 0, 0, 0, 1, 0],
    );
    assert_eq!(t.collect().secure_boot, Some(false));
    t.write(
        "/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c",
        [6, 0, 0, 0, 0],
    );
    assert_eq!(t.collect().secure_boot, Some(false));
    t.write("/run/civia-boot/unlock-method", "recovery-key");
    assert_eq!(
        t.collect().var.unlock_method.as_deref(),
        Some("recovery-key")
    );
}

#[test]
fn luks_under_lvm_is_found_through_the_slaves() {
    let t = Tree::new();
    t.write(
        "/proc/self/mountinfo",
        "30 1 254:3 / /var rw,relatime - xfs /dev/mapper/vg-var rw\n",
    )
    .write("/sys/dev/block/254:3/uevent", "DEVNAME=dm-3\n")
    .write("/sys/dev/block/254:3/dm/name", "vg-var\n")
    .write("/sys/dev/block/254:3/dm/uuid", "LVM-abcdef\n")
    .write(
        "/sys/dev/block/254:3/slaves/dm-2/dm/uuid",
        "CRYPT-LUKS2-0011-civia-var\n",
    );
    let f = t.collect();
    assert_eq!(f.var.volume.dm_name.as_deref(), Some("vg-var"));
    assert_eq!(f.var.volume.luks2, Some(true));
    assert_eq!(f.var.volume.verity, Some(false));
    // LUKS1 or plain dm-crypt is not LUKS2.
    t.write(
        "/sys/dev/block/254:3/slaves/dm-2/dm/uuid",
        "CRYPT-LUKS1-0011-civia-var\n",
    );
    assert_eq!(t.collect().var.volume.luks2, Some(false));
}

#[test]
fn mounts_longest_prefix_stacking_and_escapes() {
    let mounts = parse_mountinfo(MOUNTINFO);
    assert_eq!(mounts.len(), 6);
    let at = |p: &str| {
        mount_of(&mounts, std::path::Path::new(p)).map(|m| m.mount_point.display().to_string())
    };
    assert_eq!(at("/var/lib/civia").as_deref(), Some("/var"));
    assert_eq!(
        at("/variable").as_deref(),
        Some("/"),
        "components, not text"
    );
    assert_eq!(
        at("/var/lib/other dir/x").as_deref(),
        Some("/var/lib/other dir")
    );
    assert_eq!(at("/usr/lib").as_deref(), Some("/usr"));
    // Two file systems stacked on /: the last one mounted is the one seen.
    let stacked = parse_mountinfo(
        "1 0 8:1 / / rw - ext4 /dev/sda1 rw\n2 1 0:30 / / ro - overlay overlay ro\n",
    );
    let m = mount_of(&stacked, std::path::Path::new("/etc")).expect("mount");
    assert_eq!(m.fs_type, "overlay");
    // A device number that is not MAJ:MIN never becomes a sysfs path.
    let hostile = parse_mountinfo("1 0 ../../../etc / / rw - ext4 /dev/sda1 rw\n");
    assert_eq!(hostile.len(), 1);
    assert_eq!(hostile[0].dev, None);
}

#[test]
fn socket_tables_skip_what_they_cannot_read() {
    let good = tcp_table();
    let mut text = good.clone();
    for bad in [
        "garbage\n",
        "   9: ZZZZZZZZ:01BB 00000000:0000 0A\n",
        "   9: 00000000:FFFFF 00000000:0000 0A\n",
        "   9: +0000000:01BB 00000000:0000 0A\n",
        "   9: 0000000:01BB 00000000:0000 0A\n",
        "   9: 00000000:01BB 00000000:0000 AAA\n",
        "   9: 00000000:01BB\n",
        "   9: 00000000 00000000:0000 0A\n",
        "   9: é0000000:01BB 00000000:0000 0A\n",
        "\n",
    ] {
        text.push_str(bad);
    }
    assert_eq!(
        parse_socket_table(&text, Protocol::Tcp),
        parse_socket_table(&good, Protocol::Tcp)
    );
    assert!(parse_socket_table("", Protocol::Udp).is_empty());
    assert!(parse_socket_table(TABLE_HEAD, Protocol::Udp).is_empty());
}

#[test]
fn addresses_from_fib_trie_and_if_inet6() {
    assert_eq!(
        parse_fib_trie(FIB_TRIE),
        [Ipv4Addr::new(10, 0, 2, 15), Ipv4Addr::new(192, 168, 1, 20)]
    );
    assert_eq!(
        parse_if_inet6(IF_INET6),
        ["fd00::14".parse::<Ipv6Addr>().expect("ip")]
    );
    assert!(parse_fib_trie("/32 host LOCAL\n|-- nope\n/32 host LOCAL\n").is_empty());
    assert!(parse_if_inet6("fd00000000000000000000000000001 02 40 00 80 eth0\n").is_empty());
    assert!(parse_if_inet6("fd0000000000000000000000000000zz 02 40 00 80 eth0\n").is_empty());
}

#[test]
fn text_fields_are_cleaned_and_bounded() {
    let t = Tree::new();
    let long = "9".repeat(10_000);
    t.write("/proc/sys/kernel/osrelease", "  6.1\u{1b}[31m-evil\n")
        .write(
            "/usr/lib/os-release",
            format!("IMAGE_ID='civia'\nIMAGE_VERSION={long}\nIMAGE_VERSION=2\n"),
        )
        .write(
            "/sys/kernel/security/lockdown",
            "none [INTEGRITY; rm -rf] x",
        )
        .write(
            "/proc/driver/nvidia/gpus/0000:01:00.0/information",
            "IRQ: 5\n",
        )
        .write("/sys/class/tpm/tpm0/tpm_version_major", "two\n");
    let f = t.collect();
    assert_eq!(f.kernel.release.as_deref(), Some("6.1[31m-evil"));
    assert_eq!(f.image.id.as_deref(), Some("civia"));
    assert_eq!(f.image.version.map(|v| v.len()), Some(MAX_TEXT_CHARS));
    assert_eq!(f.kernel.lockdown, None);
    assert_eq!(
        f.gpu,
        [Gpu {
            bus: "0000:01:00.0".into(),
            model: None
        }]
    );
    assert_eq!(f.tpm.version_major, None);
}

/// A small deterministic generator (xorshift64*).
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Bytes mixing real fragments with random bytes, newlines and separators.
    fn text(&mut self, fragments: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        let n = self.next() % 64;
        for _ in 0..n {
            match self.next() % 6 {
                0 => out.push(b'\n'),
                1 => out.extend_from_slice(b" - "),
                2 | 3 => {
                    let f = fragments[(self.next() as usize) % fragments.len()];
                    let cut = (self.next() as usize) % (f.len() + 1);
                    out.extend_from_slice(&f.as_bytes()[..cut]);
                }
                _ => {
                    for _ in 0..self.next() % 16 {
                        out.push((self.next() & 0xFF) as u8);
                    }
                }
            }
        }
        out
    }
}

#[test]
fn garbage_everywhere_never_panics() {
    let fragments = [
        MOUNTINFO,
        FIB_TRIE,
        IF_INET6,
        TABLE_HEAD,
        "   0: 0100007F:1F90 00000000:0000 0A 0",
        "[integrity]",
        "IMAGE_VERSION=\"",
        "Model:",
        "254:0",
        "\\040\\",
        "CRYPT-LUKS2-",
        "é€\u{0}",
    ];
    let files = [
        "/proc/net/tcp",
        "/proc/net/tcp6",
        "/proc/net/udp",
        "/proc/net/udp6",
        "/proc/net/fib_trie",
        "/proc/net/if_inet6",
        "/proc/self/mountinfo",
        "/proc/sys/kernel/osrelease",
        "/proc/cmdline",
        "/sys/kernel/security/lockdown",
        "/run/civia-boot/unlock-method",
        "/sys/class/tpm/tpm0/tpm_version_major",
        "/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c",
        "/proc/driver/nvidia/gpus/x/information",
        "/usr/lib/os-release",
        "/sys/dev/block/254:0/uevent",
        "/sys/dev/block/254:0/dm/uuid",
        "/sys/dev/block/254:0/dm/name",
    ];
    let mut noise = Noise(0x5EED_CAFE_F00D_0001);
    let t = the_box();
    for _ in 0..200 {
        for f in files {
            t.write(f, noise.text(&fragments));
        }
        let facts = t.collect();
        serde_json::to_string(&facts).expect("always serializable");
    }
    for _ in 0..3000 {
        let text = String::from_utf8_lossy(&noise.text(&fragments)).into_owned();
        parse_mountinfo(&text);
        parse_fib_trie(&text);
        parse_if_inet6(&text);
        parse_socket_table(&text, Protocol::Tcp);
        lockdown(&text);
        key_value(&text, "IMAGE_VERSION", '=');
    }
}

#[test]
fn directories_and_special_files_are_not_read() {
    let t = Tree::new();
    // A directory where a file is expected, and a FIFO (would block a naive reader).
    t.mkdir("/proc/sys/kernel/osrelease").mkdir("/proc/net");
    let fifo = t.0.path().join("proc/net/tcp");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .is_ok_and(|s| s.success());
    let f = t.collect();
    assert_eq!(f.kernel.release, None);
    if made {
        assert!(f.listening.is_empty());
    }
}

#[test]
fn this_machine_lists_a_socket_we_open() {
    let tcp = TcpListener::bind("127.0.0.1:0").expect("bind tcp");
    let udp = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
    let (tp, up) = (
        tcp.local_addr().expect("addr").port(),
        udp.local_addr().expect("addr").port(),
    );
    let f = Collector::new("/").collect();
    let has = |protocol, port| {
        f.listening
            .iter()
            .any(|l| l.protocol == protocol && l.port == port && l.address.is_loopback())
    };
    assert!(has(Protocol::Tcp, tp), "{:?}", f.listening);
    assert!(has(Protocol::Udp, up), "{:?}", f.listening);
    assert!(f.kernel.release.is_some());
    assert!(f.root.mount_point.is_some());
}

#[test]
fn egress_probe_connects_refuses_and_stays_bounded() {
    let open = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = open.local_addr().expect("addr");
    assert_eq!(
        probe_egress(addr, Duration::from_secs(2)),
        EgressResult {
            connected: true,
            error: None
        }
    );
    drop(open);
    // A port bound but never listened on: refused, and nobody else can take it meanwhile
    // (dropping a listener and probing its port races with any other bind on the machine).
    let reserved = tokio::net::TcpSocket::new_v4().expect("socket");
    reserved
        .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .expect("bind");
    let addr = reserved.local_addr().expect("addr");
    let closed = probe_egress(addr, Duration::from_secs(2));
    assert!(!closed.connected);
    assert_eq!(closed.error.as_deref(), Some("connection_refused"));

    // An address that may not answer (some sandboxes answer every connection): whatever
    // happens, it is over within the timeout.
    let t0 = Instant::now();
    probe_egress(
        SocketAddr::from(([10, 255, 255, 1], 9)),
        Duration::from_millis(300),
    );
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    // An absurd timeout is cut to five seconds (checked on the clamp, not by waiting).
    assert_eq!(MAX_PROBE_TIMEOUT, Duration::from_secs(5));
}

#[test]
fn probe_targets_must_be_one_host_and_port() {
    for bad in [
        "0.0.0.0:80",
        "[::]:443",
        "224.0.0.1:80",
        "255.255.255.255:80",
        "[ff02::1]:80",
    ] {
        let a: SocketAddr = bad.parse().expect("addr");
        assert!(
            matches!(check_probe_target(a), Err(ProbeError::NotUnicast(_))),
            "{bad}"
        );
        assert!(!probe_egress(a, Duration::from_millis(10)).connected);
    }
    assert_eq!(
        check_probe_target("192.0.2.1:0".parse().expect("addr")),
        Err(ProbeError::PortZero)
    );
    assert!(check_probe_target("192.0.2.1:443".parse().expect("addr")).is_ok());
    assert!(check_probe_target("[2001:db8::1]:443".parse().expect("addr")).is_ok());
}
