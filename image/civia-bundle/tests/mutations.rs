//! A stable-Rust stand-in for the cargo-fuzz target (which needs a nightly compiler): thousands
//! of seeded mutations of a real signed bundle's header. Parsing and verification must never
//! panic, and a mutation that verifies must have left every signed byte as it was (it
//! touched only unsigned framing: whitespace, hex case of a signature).
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions fail loudly

use std::fs;

use civia_bundle::{build, new_root, sign_bundle, sign_root, BuildSpec};
use civia_bundle_format::container::parse_bundle_prefix;
use civia_bundle_format::verify::verify_header;
use civia_bundle_format::{BoxState, BundleKind, RootMeta, SecretKey, Version};
use rand::{Rng, SeedableRng};

#[test]
fn mutated_headers_never_panic_nor_verify() {
    let d = tempfile::tempdir().unwrap();
    let key = |n: u8| SecretKey::from_seed([n; 32]);
    let pubs = |ns: &[u8]| ns.iter().map(|n| key(*n).public()).collect::<Vec<_>>();
    let mut r2 = new_root(2, 2_000_000_000, &pubs(&[4, 5]), 2, &pubs(&[11, 12]), 2).unwrap();
    for n in [1, 2, 4, 5] {
        sign_root(&mut r2, &key(n));
    }
    let r1: RootMeta = new_root(
        1,
        2_000_000_000,
        &pubs(&[1, 2, 3]),
        2,
        &pubs(&[11, 12, 13]),
        2,
    )
    .unwrap()
    .parse_unverified()
    .unwrap();
    for (n, len) in [("usr", 3000), ("usr.verity", 100), ("uki", 500)] {
        fs::write(d.path().join(n), vec![1u8; len]).unwrap();
    }
    let out = d.path().join("b.civia");
    build(
        &BuildSpec {
            kind: BundleKind::System,
            compatible: "civia-box-g1".into(),
            version: Version::new(2, 0, 0),
            floor: Version::new(1, 0, 0),
            created: 1_800_000_000,
            expires: 1_900_000_000,
            verity_root_hash: Some("cd".repeat(32)),
            model_id: None,
            payloads: ["usr", "usr.verity", "uki"]
                .iter()
                .map(|n| (n.to_string(), d.path().join(n)))
                .collect(),
            roots: vec![r2],
        },
        &out,
    )
    .unwrap();
    sign_bundle(&out, &[key(11), key(12)]).unwrap();
    let bytes = fs::read(&out).unwrap();
    let (h, off) = parse_bundle_prefix(&bytes).unwrap();
    let header = &bytes[..off as usize];
    // `CIVIA_FUZZ_SEED_DIR=fuzz/seeds/bundle_header` refreshes the fuzzer's seed (same keys)
    if let Ok(dir) = std::env::var("CIVIA_FUZZ_SEED_DIR") {
        fs::write(
            std::path::Path::new(&dir).join("signed-system-with-rotation"),
            header,
        )
        .unwrap();
    }
    let st = BoxState {
        compatible: "civia-box-g1",
        trusted_root: &r1,
        running: Some(Version::new(1, 0, 0)),
        floor: Version::new(1, 0, 0),
        reference_time: 0,
    };
    verify_header(&h, off, &st, BundleKind::System).expect("the original verifies");

    let mut rng = rand::rngs::StdRng::seed_from_u64(0xc1a);
    let mut parsed = 0;
    let mut benign = 0;
    for _ in 0..1500 {
        let mut m = header.to_vec();
        for _ in 0..rng.gen_range(1..4) {
            let i = rng.gen_range(0..m.len());
            match rng.gen_range(0..4) {
                0 => m[i] ^= 1 << rng.gen_range(0..8),
                1 => m[i] = rng.gen(),
                2 => m.truncate(i),
                _ => m.insert(i, rng.gen()),
            }
            if m.is_empty() {
                break;
            }
        }
        if m == header {
            continue;
        }
        if let Ok((h2, off2)) = parse_bundle_prefix(&m) {
            parsed += 1;
            if let Ok(v) = verify_header(&h2, off2, &st, BundleKind::System) {
                // Only the unsigned framing may differ (JSON whitespace outside the signed
                // documents, hex case of a signature): what was signed must be identical.
                assert_eq!(h2.manifest.signed.get(), h.manifest.signed.get());
                assert_eq!(v.new_roots.len(), 1);
                assert_eq!(v.new_roots[0].signed.get(), h.roots[0].signed.get());
                benign += 1;
            }
        }
    }
    eprintln!("{parsed} mutations still parsed (of 1500); {benign} verified, all outside the signed bytes");
}
