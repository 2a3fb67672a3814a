//! The integrator's whole ceremony through the binary: keys, root (2 of 3), a rotation,
//! build, threshold signing, inspect, verify; and the refusals verify reports.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions fail loudly

use std::fs;
use std::path::Path;
use std::process::Command;

fn cb(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_civia-bundle"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let (s, t) = cb(dir, args);
    assert!(s, "civia-bundle {args:?} failed: {t}");
    t
}

#[test]
fn ceremony_build_sign_verify() {
    let d = tempfile::tempdir().unwrap();
    let d = d.path();
    for k in [
        "root1", "root2", "root3", "sign1", "sign2", "sign3", "newroot1", "newroot2",
    ] {
        ok(d, &["keygen", k]);
    }
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(d.join("root1.key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    let (s, t) = cb(d, &["keygen", "root1"]);
    assert!(
        !s && t.contains("root1.key"),
        "keygen must not overwrite: {t}"
    );

    ok(
        d,
        &[
            "root-new",
            "--version",
            "1",
            "--root-key",
            "root1.pub",
            "--root-key",
            "root2.pub",
            "--root-key",
            "root3.pub",
            "--root-threshold",
            "2",
            "--bundle-key",
            "sign1.pub",
            "--bundle-key",
            "sign2.pub",
            "--bundle-key",
            "sign3.pub",
            "--bundle-threshold",
            "2",
            "-o",
            "root-v1.json",
        ],
    );
    ok(
        d,
        &[
            "root-sign",
            "--key",
            "root1.key",
            "--key",
            "root2.key",
            "root-v1.json",
        ],
    );

    fs::write(d.join("usr.img"), vec![7u8; 100_000]).unwrap();
    fs::write(d.join("usr.verity"), vec![8u8; 4096]).unwrap();
    fs::write(d.join("civia.efi"), vec![9u8; 5000]).unwrap();
    let hash = "ab".repeat(32);
    ok(
        d,
        &[
            "build",
            "--kind",
            "system",
            "--compatible",
            "civia-box-g1",
            "--version",
            "1.1.0",
            "--floor",
            "1.0.0",
            "--usr",
            "usr.img",
            "--verity",
            "usr.verity",
            "--root-hash",
            &hash,
            "--uki",
            "civia.efi",
            "-o",
            "b.civia",
        ],
    );
    let verify = [
        "verify",
        "b.civia",
        "--root",
        "root-v1.json",
        "--compatible",
        "civia-box-g1",
        "--running",
        "1.0.0",
    ];
    let (s, t) = cb(d, &verify);
    assert!(!s && t.contains("not signed"), "{t}");
    ok(d, &["sign", "--key", "sign1.key", "b.civia"]);
    let (s, t) = cb(d, &verify);
    assert!(
        !s && t.contains("1 valid signature(s) from trusted keys, 2 needed"),
        "{t}"
    );
    ok(d, &["sign", "--key", "sign3.key", "b.civia"]);
    let t = ok(d, &verify);
    assert!(t.contains("OK: system bundle 1.1.0"), "{t}");
    let (s, t) = cb(
        d,
        &[
            "verify",
            "b.civia",
            "--root",
            "root-v1.json",
            "--compatible",
            "civia-box-g1",
            "--running",
            "1.1.0",
        ],
    );
    assert!(!s && t.contains("not newer"), "{t}");
    let insp = ok(d, &["inspect", "b.civia"]);
    let j: serde_json::Value = serde_json::from_str(&insp).unwrap();
    assert_eq!(j["manifest"]["version"], "1.1.0");
    assert_eq!(j["signatures"].as_array().unwrap().len(), 2);

    // rotation: new root keys (threshold 2), signed by the old threshold and the new one
    ok(
        d,
        &[
            "root-new",
            "--version",
            "2",
            "--root-key",
            "newroot1.pub",
            "--root-key",
            "newroot2.pub",
            "--root-threshold",
            "2",
            "--bundle-key",
            "sign2.pub",
            "--bundle-key",
            "sign3.pub",
            "--bundle-threshold",
            "2",
            "-o",
            "root-v2.json",
        ],
    );
    ok(
        d,
        &[
            "root-sign",
            "--key",
            "root2.key",
            "--key",
            "root3.key",
            "--key",
            "newroot1.key",
            "--key",
            "newroot2.key",
            "root-v2.json",
        ],
    );
    ok(
        d,
        &[
            "build",
            "--kind",
            "model",
            "--compatible",
            "civia-box-g1",
            "--version",
            "1.0.0",
            "--floor",
            "1.0.0",
            "--model-id",
            "tiny",
            "--model",
            "usr.img",
            "--dossier",
            "civia.efi",
            "--carry-root",
            "root-v2.json",
            "-o",
            "m.civia",
        ],
    );
    ok(
        d,
        &[
            "sign",
            "--key",
            "sign1.key",
            "--key",
            "sign2.key",
            "m.civia",
        ],
    );
    // sign1 left the bundle role in v2: one valid signature only
    let mverify = [
        "verify",
        "m.civia",
        "--root",
        "root-v1.json",
        "--compatible",
        "civia-box-g1",
    ];
    let (s, t) = cb(d, &mverify);
    assert!(!s && t.contains("2 needed"), "{t}");
    ok(d, &["sign", "--key", "sign3.key", "m.civia"]);
    let t = ok(d, &mverify);
    assert!(t.contains("root v2"), "{t}");
}
