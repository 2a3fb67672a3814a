//! The same install on real block devices: a GPT disk image made with sfdisk, each partition
//! attached as a loop device (offset + size limit: this host has no udev to create partition
//! nodes), a real dm-verity hash tree made with `veritysetup format`, and `veritysetup verify`
//! on the written slot. Skipped (with a message) where loop devices, sfdisk or veritysetup are
//! missing; CI runs as root and has them (appliance/scripts/deps.sh).

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use civia_bundle::{build, sign_bundle, BuildSpec};
use civia_bundle_format::BundleKind;
use civia_update::{esp, BootStatus, NullObserver, Slot, SlotPaths, SystemUpdater};
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
    let j: serde_json::Value =
        serde_json::from_str(&run(Command::new("sfdisk").arg("-J").arg(&img)).unwrap()).unwrap();
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
    for (name, start, size) in &parts {
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
    assert!(region_hash(&img, 0, 1 << 20) == gpt_head, "GPT changed");
    assert_eq!(esp::firmware_boot(&f.esp).unwrap().unwrap().slot, "b");
    cfg.booted = Slot::B;
    cfg.running = v("2.0.0");
    let up = SystemUpdater::new(cfg, &NullObserver);
    assert!(matches!(up.after_boot().unwrap(), BootStatus::Trial { .. }));
    up.bless().unwrap();
}
