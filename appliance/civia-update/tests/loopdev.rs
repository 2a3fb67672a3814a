//! The same install on real block devices: a GPT disk image made with sfdisk, attached as a
//! partitioned loop device (`losetup --partscan`, then `partx --add` for kernels that do not
//! parse GPT themselves), a real dm-verity hash tree made with `veritysetup format`, and
//! `veritysetup verify` on the written slot; the slot's GPT partition UUIDs must then be the
//! ones derived from the root hash (`sfdisk --part-uuid`). Where the kernel creates no
//! partition nodes, each partition is attached as its own loop device instead (offset + size
//! limit: whole devices, so the partition UUIDs are left alone and not checked). Needs root,
//! loop devices, sfdisk, partx and veritysetup; CI has them (appliance/scripts/deps.sh).
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions fail loudly

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use civia_bundle::{build, sign_bundle, BuildSpec};
use civia_bundle_format::BundleKind;
use civia_update::{esp, partition, BootStatus, NullObserver, Slot, SlotPaths, SystemUpdater};
use common::*;

struct Loops(Vec<String>);

impl Drop for Loops {
    fn drop(&mut self) {
        for l in &self.0 {
            let _ = Command::new("losetup").arg("-d").arg(l).status();
        }
    }
}

fn run(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    if !out.status.success() {
        eprintln!("{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn tools_present() -> bool {
    ["sfdisk", "losetup", "veritysetup"].iter().all(|t| {
        Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {t}"))
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// The partition table as sfdisk prints it, as JSON.
fn sfdisk_json(disk: &Path) -> serde_json::Value {
    serde_json::from_str(&run(Command::new("sfdisk").arg("-J").arg(disk)).unwrap()).unwrap()
}

/// The current GPT partition UUID of partition `n` of `disk`, lowercase.
fn part_uuid(disk: &Path, n: usize) -> String {
    run(Command::new("sfdisk")
        .arg("--part-uuid")
        .arg(disk)
        .arg(n.to_string()))
    .unwrap()
    .trim()
    .to_ascii_lowercase()
}

/// Attaches the whole image with its partitions; `None` where no partition nodes appear.
fn attach_partitioned(img: &Path, n: usize, loops: &mut Loops) -> Option<(PathBuf, Vec<PathBuf>)> {
    let out = run(Command::new("losetup")
        .args(["--find", "--show", "--partscan"])
        .arg(img))?;
    let disk = PathBuf::from(out.trim());
    loops.0.push(out.trim().to_string());
    let parts: Vec<PathBuf> = (1..=n)
        .map(|i| PathBuf::from(format!("{}p{i}", disk.display())))
        .collect();
    for _ in 0..20 {
        if parts.iter().all(|p| p.exists()) {
            return Some((disk, parts));
        }
        // kernels built without GPT support: tell them about the partitions
        let _ = Command::new("partx").arg("--add").arg(&disk).output();
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    eprintln!(
        "no partition nodes for {}: attaching each partition on its own",
        disk.display()
    );
    None
}

fn region_hash(img: &Path, start: u64, len: u64) -> Vec<u8> {
    let b = fs::read(img).unwrap();
    b[start as usize..(start + len) as usize].to_vec()
}

#[test]
fn install_to_loop_device_partitions_with_real_verity() {
    assert!(
        tools_present(),
        "sfdisk/losetup/veritysetup missing: run appliance/scripts/deps.sh"
    );
    let f = Fixture::new();
    let img = f.path("disk.img");
    fs::File::create(&img).unwrap().set_len(24 << 20).unwrap();
    let table = "label: gpt\nsize=8MiB, name=usr-a\nsize=8MiB, name=usr-b\nsize=1MiB, name=verity-a\nsize=1MiB, name=verity-b\n";
    let mut child = Command::new("sfdisk")
        .arg("-q")
        .arg(&img)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), table.as_bytes()).unwrap();
    assert!(child.wait().unwrap().success());
    let table_before = sfdisk_json(&img);
    let j = &table_before;
    let parts: Vec<(String, u64, u64)> = j["partitiontable"]["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["start"].as_u64().unwrap() * 512,
                p["size"].as_u64().unwrap() * 512,
            )
        })
        .collect();
    // factory content of slot A
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut w = fs::OpenOptions::new().write(true).open(&img).unwrap();
        for (name, start, size) in &parts {
            if name.ends_with("-a") {
                w.seek(SeekFrom::Start(*start)).unwrap();
                w.write_all(&vec![0xa5; *size as usize]).unwrap();
            }
        }
    }
    let mut loops = Loops(Vec::new());
    let mut dev = std::collections::HashMap::new();
    let partitioned = attach_partitioned(&img, parts.len(), &mut loops);
    if let Some((_, nodes)) = &partitioned {
        for ((name, _, _), node) in parts.iter().zip(nodes) {
            dev.insert(name.clone(), node.clone());
        }
    }
    for (name, start, size) in parts.iter().filter(|_| partitioned.is_none()) {
        let Some(out) = run(Command::new("losetup")
            .args([
                "--find",
                "--show",
                "--offset",
                &start.to_string(),
                "--sizelimit",
                &size.to_string(),
            ])
            .arg(&img))
        else {
            panic!("cannot attach loop devices (this test needs root and /dev/loop-control)");
        };
        let l = out.trim().to_string();
        loops.0.push(l.clone());
        dev.insert(name.clone(), PathBuf::from(l));
    }
    let a_regions: Vec<Vec<u8>> = parts
        .iter()
        .filter(|p| p.0.ends_with("-a"))
        .map(|p| region_hash(&img, p.1, p.2))
        .collect();
    let gpt_head = region_hash(&img, 0, 1 << 20);

    // a /usr image and its real dm-verity tree
    let usr = f.path("usr.img");
    fs::write(&usr, payload(77, 2 << 20)).unwrap();
    let verity = f.path("usr.verity");
    let out = run(Command::new("veritysetup")
        .arg("format")
        .arg(&usr)
        .arg(&verity))
    .unwrap();
    let root_hash = out
        .lines()
        .find_map(|l| l.strip_prefix("Root hash:"))
        .unwrap()
        .trim()
        .to_string();
    let uki = f.path("civia.efi");
    fs::write(&uki, payload(78, 200_000)).unwrap();
    let bundle = f.path("loop.civia");
    build(
        &BuildSpec {
            kind: BundleKind::System,
            compatible: COMPAT.into(),
            version: v("2.0.0"),
            floor: v("1.0.0"),
            created: T0,
            expires: T0 + DAY,
            verity_root_hash: Some(root_hash.clone()),
            model_id: None,
            payloads: vec![
                ("usr".into(), usr),
                ("usr.verity".into(), verity),
                ("uki".into(), uki),
            ],
            roots: vec![],
        },
        &bundle,
    )
    .unwrap();
    sign_bundle(&bundle, good_signers(&f)).unwrap();

    let mut cfg = f.config(Slot::A, "1.0.0");
    cfg.slot_a = SlotPaths {
        usr: dev["usr-a"].clone(),
        verity: dev["verity-a"].clone(),
    };
    cfg.slot_b = SlotPaths {
        usr: dev["usr-b"].clone(),
        verity: dev["verity-b"].clone(),
    };
    let t = std::time::Instant::now();
    SystemUpdater::new(cfg.clone(), &NullObserver)
        .install_from_path(&bundle)
        .unwrap();
    eprintln!("install to loop devices: {:?}", t.elapsed());

    // the written slot verifies against the signed root hash, with the kernel-independent
    // userspace verifier (no device-mapper here)
    let data_blocks = (2u64 << 20) / 4096;
    run(Command::new("veritysetup")
        .arg("verify")
        .arg(&dev["usr-b"])
        .arg(&dev["verity-b"])
        .arg(&root_hash)
        .arg(format!("--data-blocks={data_blocks}")))
    .expect("veritysetup verify of slot B");
    // slot A and the partition table are byte-for-byte untouched
    let after: Vec<Vec<u8>> = parts
        .iter()
        .filter(|p| p.0.ends_with("-a"))
        .map(|p| region_hash(&img, p.1, p.2))
        .collect();
    assert!(after == a_regions, "slot A changed");
    let uuids = partition::uuids_from_root_hash(&root_hash).unwrap();
    if let Some((disk, _)) = &partitioned {
        // slot B's partitions now carry the UUIDs systemd-veritysetup-generator looks for
        // given roothash=; nothing else in the partition table changed
        let n = |name: &str| parts.iter().position(|p| p.0 == name).unwrap() + 1;
        assert_eq!(part_uuid(disk, n("usr-b")), uuids.data);
        assert_eq!(part_uuid(disk, n("verity-b")), uuids.hash);
        let mut expected = table_before.clone();
        for p in expected["partitiontable"]["partitions"]
            .as_array_mut()
            .unwrap()
        {
            match p["name"].as_str().unwrap() {
                "usr-b" => p["uuid"] = uuids.data.to_uppercase().into(),
                "verity-b" => p["uuid"] = uuids.hash.to_uppercase().into(),
                _ => {}
            }
        }
        assert_eq!(sfdisk_json(&img), expected, "partition table");
    } else {
        assert!(region_hash(&img, 0, 1 << 20) == gpt_head, "GPT changed");
    }
    assert_eq!(esp::firmware_boot(&f.esp).unwrap().unwrap().slot, "b");
    cfg.booted = Slot::B;
    cfg.running = v("2.0.0");
    let up = SystemUpdater::new(cfg, &NullObserver);
    assert!(matches!(up.after_boot().unwrap(), BootStatus::Trial { .. }));
    up.bless().unwrap();
}
