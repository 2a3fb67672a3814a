//! Shared fixture: real keys, real bundles, slot "partitions" as pre-sized files, an ESP
//! directory with the factory UKI of slot A.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};

use civia_bundle::{build, new_root, sign_bundle, sign_root, BuildSpec};
use civia_bundle_format::{BundleKind, Envelope, SecretKey, Version};
use civia_update::{esp, Observer, Slot, SlotPaths, SystemConfig, SystemUpdater};
use rand::{Rng, SeedableRng};

pub const T0: i64 = 1_800_000_000;
pub const DAY: i64 = 86_400;
pub const COMPAT: &str = "civia-box-g1";
pub const USR_SIZE: u64 = 4 << 20;
pub const VERITY_SIZE: u64 = 256 << 10;

pub fn key(n: u8) -> SecretKey {
    SecretKey::from_seed([n; 32])
}

pub fn v(s: &str) -> Version {
    s.parse().unwrap()
}

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub image_root: PathBuf,
    pub state_dir: PathBuf,
    pub esp: PathBuf,
    pub models: PathBuf,
    pub slot_a: SlotPaths,
    pub slot_b: SlotPaths,
    /// root keys 1,2,3 (threshold 2), bundle keys 11,12,13 (threshold 2)
    pub root_keys: Vec<SecretKey>,
    pub bundle_keys: Vec<SecretKey>,
}

pub fn payload(seed: u64, len: usize) -> Vec<u8> {
    let mut r = rand::rngs::StdRng::seed_from_u64(seed);
    (0..len).map(|_| r.gen()).collect()
}

impl Fixture {
    pub fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let root_keys: Vec<_> = (1..=3).map(key).collect();
        let bundle_keys: Vec<_> = (11..=13).map(key).collect();
        let mut env = root_env(1, &root_keys, &bundle_keys);
        sign_root(&mut env, &root_keys[0]);
        sign_root(&mut env, &root_keys[1]);
        let image_root = d.join("usr-share-civia-root.json");
        fs::write(&image_root, serde_json::to_string(&env).unwrap()).unwrap();
        let mk = |name: &str, size: u64, fill: u8| {
            let p = d.join(name);
            fs::write(&p, vec![fill; size as usize]).unwrap();
            p
        };
        let slot_a = SlotPaths {
            usr: mk("usr-a", USR_SIZE, 0xaa),
            verity: mk("verity-a", VERITY_SIZE, 0xab),
        };
        let slot_b = SlotPaths {
            usr: mk("usr-b", USR_SIZE, 0),
            verity: mk("verity-b", VERITY_SIZE, 0),
        };
        let esp_dir = d.join("esp");
        fs::create_dir_all(esp::linux_dir(&esp_dir)).unwrap();
        fs::write(
            esp::linux_dir(&esp_dir).join("civia-1.0.0-a.efi"),
            b"factory uki",
        )
        .unwrap();
        let state_dir = d.join("var-lib-civia-update");
        let models = d.join("models");
        fs::create_dir_all(&state_dir).unwrap();
        fs::create_dir_all(&models).unwrap();
        Fixture {
            image_root,
            state_dir,
            esp: esp_dir,
            models,
            slot_a,
            slot_b,
            root_keys,
            bundle_keys,
            dir,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn config(&self, booted: Slot, running: &str) -> SystemConfig {
        SystemConfig {
            compatible: COMPAT.into(),
            image_root: self.image_root.clone(),
            state_dir: self.state_dir.clone(),
            esp: self.esp.clone(),
            slot_a: self.slot_a.clone(),
            slot_b: self.slot_b.clone(),
            booted,
            running: v(running),
            tries: 3,
            trusted_clock: None,
        }
    }

    pub fn updater<'o>(
        &self,
        booted: Slot,
        running: &str,
        obs: &'o dyn Observer,
    ) -> SystemUpdater<'o> {
        SystemUpdater::new(self.config(booted, running), obs)
    }

    /// Builds and signs a system bundle whose payloads derive from `version`.
    pub fn system_bundle(&self, b: Spec<'_>) -> PathBuf {
        let ver = v(b.version);
        let seed = ver.major * 10_000 + ver.minor * 100 + ver.patch;
        let files = [
            ("usr", payload(seed, (1 << 20) * 3 / 2 + 123)),
            ("usr.verity", payload(seed + 1, 40_000)),
            ("uki", payload(seed + 2, 300_000)),
        ];
        let mut payloads = Vec::new();
        for (name, data) in files {
            let p = self.path(&format!("src-{}-{name}", b.version));
            fs::write(&p, data).unwrap();
            payloads.push((name.to_string(), p));
        }
        let out = self.path(&format!("{}-{}.civia", b.version, b.tag));
        build(
            &BuildSpec {
                kind: BundleKind::System,
                compatible: b.compatible.into(),
                version: ver,
                floor: v(b.floor),
                created: b.created,
                expires: b.expires,
                verity_root_hash: Some("ab".repeat(32)),
                model_id: None,
                payloads,
                roots: b.roots,
            },
            &out,
        )
        .unwrap();
        if !b.signers.is_empty() {
            sign_bundle(&out, b.signers).unwrap();
        }
        out
    }

    pub fn payload_of(&self, version: &str, name: &str) -> Vec<u8> {
        fs::read(self.path(&format!("src-{version}-{name}"))).unwrap()
    }

    /// Everything a refused install must leave as it was.
    pub fn snapshot(&self) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        for p in [
            &self.slot_a.usr,
            &self.slot_a.verity,
            &self.slot_b.usr,
            &self.slot_b.verity,
        ] {
            out.push((p.display().to_string(), fs::read(p).unwrap()));
        }
        snapshot_dir(&self.esp, &mut out);
        snapshot_dir(&self.state_dir, &mut out);
        snapshot_dir(&self.models, &mut out);
        out
    }
}

fn snapshot_dir(d: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    let Ok(rd) = fs::read_dir(d) else { return };
    let mut entries: Vec<_> = rd.map(|e| e.unwrap().path()).collect();
    entries.sort();
    for p in entries {
        let md = fs::symlink_metadata(&p).unwrap();
        if md.is_dir() {
            out.push((p.display().to_string(), b"<dir>".to_vec()));
            snapshot_dir(&p, out);
        } else if md.file_type().is_symlink() {
            out.push((
                p.display().to_string(),
                fs::read_link(&p)
                    .unwrap()
                    .display()
                    .to_string()
                    .into_bytes(),
            ));
        } else {
            out.push((p.display().to_string(), fs::read(&p).unwrap()));
        }
    }
}

pub fn root_env(version: u64, root_keys: &[SecretKey], bundle_keys: &[SecretKey]) -> Envelope {
    new_root(
        version,
        T0 + 3650 * DAY,
        &root_keys.iter().map(|k| k.public()).collect::<Vec<_>>(),
        2,
        &bundle_keys.iter().map(|k| k.public()).collect::<Vec<_>>(),
        2,
    )
    .unwrap()
}

pub struct Spec<'a> {
    pub version: &'a str,
    pub floor: &'a str,
    pub created: i64,
    pub expires: i64,
    pub compatible: &'a str,
    pub signers: &'a [SecretKey],
    pub roots: Vec<Envelope>,
    /// distinguishes files of the same version
    pub tag: &'a str,
}

impl<'a> Spec<'a> {
    pub fn new(version: &'a str, signers: &'a [SecretKey]) -> Self {
        Spec {
            version,
            floor: "1.0.0",
            created: T0,
            expires: T0 + 365 * DAY,
            compatible: COMPAT,
            signers,
            roots: Vec::new(),
            tag: "ok",
        }
    }
}

/// The first two bundle keys: a valid threshold.
pub fn good_signers(f: &Fixture) -> &[SecretKey] {
    &f.bundle_keys[..2]
}
