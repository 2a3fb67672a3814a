//! Fuzzes the bundle parser and the whole metadata verification path (root rotations,
//! signatures, threshold, manifest validation, policy) with hostile bytes: must never panic
//! nor allocate without bound. Seed: fuzz/seeds/bundle_header (a real signed header).
#![no_main]

use civia_bundle_format::container::parse_bundle_prefix;
use civia_bundle_format::verify::verify_header;
use civia_bundle_format::{BoxState, BundleKind, Envelope, Manifest, Role, RootMeta, Version};
use libfuzzer_sys::fuzz_target;

fn trusted_root() -> RootMeta {
    let key = |n: u8| {
        civia_bundle_format::SecretKey::from_seed([n; 32])
            .public()
            .to_hex()
    };
    RootMeta {
        kind: "civia-root".into(),
        version: 1,
        expires: i64::MAX,
        root: Role {
            keys: vec![key(1), key(2), key(3)],
            threshold: 2,
        },
        bundle: Role {
            keys: vec![key(11), key(12), key(13)],
            threshold: 2,
        },
    }
}

fuzz_target!(|data: &[u8]| {
    let root = trusted_root();
    // whole bundle prefix
    if let Ok((header, offset)) = parse_bundle_prefix(data) {
        for kind in [BundleKind::System, BundleKind::Model] {
            let st = BoxState {
                compatible: "civia-box-g1",
                trusted_root: &root,
                running: Some(Version::new(1, 0, 0)),
                floor: Version::new(1, 0, 0),
                reference_time: 0,
            };
            // accepted only for the seed's signed bytes (the fuzzer cannot forge ed25519);
            // the stable test image/civia-bundle/tests/mutations.rs checks that property
            if let Ok(v) = verify_header(&header, offset, &st, kind) {
                assert!(v.manifest.validate().is_ok());
            }
        }
    }
    // bare metadata documents (the envelope and signed-body parsers)
    if let Ok(env) = serde_json_from(data) {
        let _ = env.verify_role(civia_bundle_format::meta::Domain::Root, &root.root);
        if let Ok(m) = env.parse_unverified::<RootMeta>() {
            let _ = m.validate();
        }
        if let Ok(m) = env.parse_unverified::<Manifest>() {
            let _ = m.validate();
        }
    }
});

fn serde_json_from(data: &[u8]) -> Result<Envelope, ()> {
    civia_bundle_format::container::Header::parse(data)
        .map(|h| h.manifest)
        .map_err(|_| ())
}
