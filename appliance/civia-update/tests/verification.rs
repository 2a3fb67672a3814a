//! Every refusal leaves the slots, the ESP, the state and the models untouched, and emits
//! exactly one `Refused` audit event with its code.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions fail loudly

mod common;

use std::fs;

use civia_update::{AuditEvent, RecordingObserver, Slot, UpdateError};
use common::*;

fn expect_refused(f: &Fixture, bundle: &std::path::Path, running: &str, booted: Slot, code: &str) {
    let before = f.snapshot();
    let obs = RecordingObserver::default();
    let up = f.updater(booted, running, &obs);
    let err = up.install_from_path(bundle).expect_err("must be refused");
    assert_eq!(err.code(), code, "wrong refusal: {err}");
    assert!(err.is_refusal(), "{err}");
    assert!(
        f.snapshot() == before,
        "a refused bundle changed something ({err})"
    );
    let events = obs.take();
    assert_eq!(events.len(), 1, "{events:?}");
    match &events[0] {
        AuditEvent::Refused {
            code: c, message, ..
        } => {
            assert_eq!(c, code);
            assert!(!message.is_empty());
        }
        e => panic!("expected Refused, got {e:?}"),
    }
    // the same bundle through the streaming API is refused the same way, nothing spooled
    let err2 = up
        .install_from_reader(fs::File::open(bundle).unwrap())
        .expect_err("stream must be refused");
    assert_eq!(err2.code(), code);
    assert_eq!(obs.take().len(), 1);
    let spool = f.state_dir.join("spool");
    assert!(!spool.exists() || fs::read_dir(&spool).unwrap().next().is_none());
    // restore the byte-for-byte equality (the spool directory may now exist empty)
    let _ = fs::remove_dir(&spool);
    assert!(f.snapshot() == before);
}

#[test]
fn good_bundle_installs_to_inactive_slot() {
    let f = Fixture::new();
    let b = f.system_bundle(Spec::new("2.0.0", good_signers(&f)));
    let a_before = (
        fs::read(&f.slot_a.usr).unwrap(),
        fs::read(&f.slot_a.verity).unwrap(),
    );
    let obs = RecordingObserver::default();
    let inst = f
        .updater(Slot::A, "1.0.0", &obs)
        .install_from_path(&b)
        .unwrap();
    assert_eq!(inst.slot, Slot::B);
    assert!(inst.uki.ends_with("civia-2.0.0-b+3.efi"), "{:?}", inst.uki);
    let usr = f.payload_of("2.0.0", "usr");
    assert_eq!(&fs::read(&f.slot_b.usr).unwrap()[..usr.len()], &usr[..]);
    assert_eq!(fs::read(&inst.uki).unwrap(), f.payload_of("2.0.0", "uki"));
    assert_eq!(a_before.0, fs::read(&f.slot_a.usr).unwrap());
    assert_eq!(a_before.1, fs::read(&f.slot_a.verity).unwrap());
    assert!(f.esp.join("EFI/Linux/civia-1.0.0-a.efi").exists());
    let ev = obs.take();
    assert!(
        matches!(ev.first(), Some(AuditEvent::InstallStarted { .. })),
        "{ev:?}"
    );
    assert!(
        matches!(
            ev.last(),
            Some(AuditEvent::SystemInstalled { tries: 3, .. })
        ),
        "{ev:?}"
    );
}

#[test]
fn stream_install_works() {
    let f = Fixture::new();
    let b = f.system_bundle(Spec::new("2.0.0", good_signers(&f)));
    let obs = RecordingObserver::default();
    let up = f.updater(Slot::A, "1.0.0", &obs);
    up.install_from_reader(fs::File::open(&b).unwrap()).unwrap();
    assert!(f.esp.join("EFI/Linux/civia-2.0.0-b+3.efi").exists());
    assert!(!f.state_dir.join("spool/upload.bundle").exists());
}

#[test]
fn tampered_payload_byte() {
    let f = Fixture::new();
    let b = f.system_bundle(Spec::new("2.0.0", good_signers(&f)));
    let mut bytes = fs::read(&b).unwrap();
    let n = bytes.len();
    bytes[n - 1000] ^= 0x01; // inside the UKI, the last payload
    fs::write(&b, &bytes).unwrap();
    expect_refused(&f, &b, "1.0.0", Slot::A, "hash_mismatch");
    bytes[n - 1000] ^= 0x01;
    bytes[n / 2] ^= 0x80; // inside usr
    fs::write(&b, &bytes).unwrap();
    expect_refused(&f, &b, "1.0.0", Slot::A, "hash_mismatch");
}

#[test]
fn tampered_header_byte() {
    let f = Fixture::new();
    let b = f.system_bundle(Spec::new("2.0.0", good_signers(&f)));
    let bytes = fs::read(&b).unwrap();
    let text = String::from_utf8_lossy(&bytes[..4096]).into_owned();
    // change the signed version inside the manifest: signatures no longer match
    let pos = text.find("\"version\":\"2.0.0\"").unwrap() + "\"version\":\"".len();
    let mut t = bytes.clone();
    t[pos] = b'9';
    fs::write(&b, &t).unwrap();
    expect_refused(&f, &b, "1.0.0", Slot::A, "bad_signature");
    // a byte that breaks the JSON
    let mut t = bytes.clone();
    t[20] = b'#';
    fs::write(&b, &t).unwrap();
    expect_refused(&f, &b, "1.0.0", Slot::A, "malformed");
    let mut t = bytes;
    t[0] = b'X';
    fs::write(&b, &t).unwrap();
    expect_refused(&f, &b, "1.0.0", Slot::A, "malformed");
}

#[test]
fn truncated_and_trailing() {
    let f = Fixture::new();
    let b = f.system_bundle(Spec::new("2.0.0", good_signers(&f)));
    let bytes = fs::read(&b).unwrap();
    fs::write(&b, &bytes[..bytes.len() - 1]).unwrap();
    expect_refused(&f, &b, "1.0.0", Slot::A, "truncated");
    fs::write(&b, &bytes[..100]).unwrap();
    expect_refused(&f, &b, "1.0.0", Slot::A, "truncated");
    let mut longer = bytes.clone();
    longer.extend_from_slice(b"extra");
    fs::write(&b, &longer).unwrap();
    expect_refused(&f, &b, "1.0.0", Slot::A, "trailing_data");
}

#[test]
fn unsigned_wrong_key_below_threshold() {
    let f = Fixture::new();
    let unsigned = f.system_bundle(Spec {
        tag: "unsigned",
        ..Spec::new("2.0.0", &[])
    });
    expect_refused(&f, &unsigned, "1.0.0", Slot::A, "unsigned");
    let strangers = [key(200), key(201)];
    let wrong = f.system_bundle(Spec {
        tag: "wrong",
        ..Spec::new("2.0.0", &strangers)
    });
    expect_refused(&f, &wrong, "1.0.0", Slot::A, "unknown_key");
    // root keys may sign roots, not bundles
    let roots = &f.root_keys[..2];
    let wrong_role = f.system_bundle(Spec {
        tag: "role",
        ..Spec::new("2.0.0", roots)
    });
    expect_refused(&f, &wrong_role, "1.0.0", Slot::A, "unknown_key");
    let one = &f.bundle_keys[..1];
    let below = f.system_bundle(Spec {
        tag: "one",
        ..Spec::new("2.0.0", one)
    });
    expect_refused(&f, &below, "1.0.0", Slot::A, "below_threshold");
    // one trusted key plus a stranger is still below threshold
    let mixed = [key(11), key(200)];
    let m = f.system_bundle(Spec {
        tag: "mixed",
        ..Spec::new("2.0.0", &mixed)
    });
    expect_refused(&f, &m, "1.0.0", Slot::A, "below_threshold");
}

#[test]
fn incompatible_and_wrong_kind() {
    let f = Fixture::new();
    let b = f.system_bundle(Spec {
        compatible: "other-box",
        ..Spec::new("2.0.0", good_signers(&f))
    });
    expect_refused(&f, &b, "1.0.0", Slot::A, "incompatible");
}

/// Install and bless `version` (booted from `from`), returning the new booted slot.
fn install_and_bless(
    f: &Fixture,
    bundle: &std::path::Path,
    from: Slot,
    running: &str,
    version: &str,
) -> Slot {
    let obs = RecordingObserver::default();
    f.updater(from, running, &obs)
        .install_from_path(bundle)
        .unwrap();
    let to = from.other();
    let booted = civia_update::esp::firmware_boot(&f.esp).unwrap().unwrap();
    assert_eq!(booted.slot, to.name());
    let up = f.updater(to, version, &obs);
    assert!(matches!(
        up.after_boot().unwrap(),
        civia_update::BootStatus::Trial { .. }
    ));
    up.bless().unwrap();
    to
}

#[test]
fn expired_downgrade_and_replay() {
    let f = Fixture::new();
    let s = good_signers(&f);
    // an offline box whose clock is unknown accepts a bundle built long after the image
    let v2 = f.system_bundle(Spec {
        floor: "2.0.0",
        created: T0 + 400 * DAY,
        expires: T0 + 800 * DAY,
        ..Spec::new("2.0.0", s)
    });
    let on = install_and_bless(&f, &v2, Slot::A, "1.0.0", "2.0.0");
    let st = f
        .updater(on, "2.0.0", &civia_update::NullObserver)
        .state()
        .unwrap();
    assert_eq!(st.floor, v("2.0.0"));
    assert_eq!(st.reference_time, T0 + 400 * DAY);

    // expired relative to the newest time the box has seen (created of v2)
    let expired = f.system_bundle(Spec {
        floor: "2.0.0",
        tag: "expired",
        ..Spec::new("3.0.0", s)
    });
    expect_refused(&f, &expired, "2.0.0", on, "expired");

    // below the floor
    let old = f.system_bundle(Spec {
        floor: "1.0.0",
        created: T0 + 500 * DAY,
        expires: T0 + 900 * DAY,
        tag: "old",
        ..Spec::new("1.5.0", s)
    });
    expect_refused(&f, &old, "2.0.0", on, "below_floor");

    // replay of the bundle already installed, and of an older valid one, once 3.0 runs
    expect_refused(&f, &v2, "2.0.0", on, "not_newer");
    let v3 = f.system_bundle(Spec {
        floor: "2.0.0",
        created: T0 + 410 * DAY,
        expires: T0 + 800 * DAY,
        tag: "v3",
        ..Spec::new("3.0.0", s)
    });
    let on3 = install_and_bless(&f, &v3, on, "2.0.0", "3.0.0");
    expect_refused(&f, &v2, "3.0.0", on3, "not_newer");

    // a trusted clock (NTP) can move the reference time forward, never back
    let mut cfg = f.config(on3, "3.0.0");
    cfg.trusted_clock = Some(T0 + 850 * DAY);
    let v4 = f.system_bundle(Spec {
        floor: "2.0.0",
        created: T0 + 420 * DAY,
        expires: T0 + 800 * DAY,
        tag: "v4",
        ..Spec::new("4.0.0", s)
    });
    let obs = RecordingObserver::default();
    let e = civia_update::SystemUpdater::new(cfg.clone(), &obs)
        .install_from_path(&v4)
        .unwrap_err();
    assert_eq!(e.code(), "expired");
    cfg.trusted_clock = Some(T0); // a clock in the past does not lower it
    let mut st = civia_update::state::load(&f.state_dir).unwrap();
    st.reference_time = T0 + 801 * DAY;
    civia_update::state::save(&f.state_dir, &st).unwrap();
    let e = civia_update::SystemUpdater::new(cfg, &obs)
        .install_from_path(&v4)
        .unwrap_err();
    assert_eq!(e.code(), "expired");
}

#[test]
fn key_rotation() {
    let f = Fixture::new();
    let new_root_keys: Vec<_> = (21..=23).map(key).collect();
    let new_bundle_keys: Vec<_> = (31..=33).map(key).collect();
    let mut r2 = root_env(2, &new_root_keys, &new_bundle_keys);

    // signed by the new keys only: refused (the old root's threshold must sign)
    let mut only_new = r2.clone();
    civia_bundle::sign_root(&mut only_new, &new_root_keys[0]);
    civia_bundle::sign_root(&mut only_new, &new_root_keys[1]);
    let b = f.system_bundle(Spec {
        roots: vec![only_new],
        tag: "rot-bad",
        ..Spec::new("2.0.0", &new_bundle_keys[..2])
    });
    expect_refused(&f, &b, "1.0.0", Slot::A, "unknown_key");

    // signed by one old key + the new threshold: below threshold
    let mut one_old = r2.clone();
    for k in [&f.root_keys[0], &new_root_keys[0], &new_root_keys[1]] {
        civia_bundle::sign_root(&mut one_old, k);
    }
    let b = f.system_bundle(Spec {
        roots: vec![one_old],
        tag: "rot-one",
        ..Spec::new("2.0.0", &new_bundle_keys[..2])
    });
    expect_refused(&f, &b, "1.0.0", Slot::A, "below_threshold");

    // a proper rotation: old threshold and new threshold
    for k in [
        &f.root_keys[0],
        &f.root_keys[2],
        &new_root_keys[1],
        &new_root_keys[2],
    ] {
        civia_bundle::sign_root(&mut r2, k);
    }
    // skipping a version is refused
    let mut r3 = root_env(3, &new_root_keys, &new_bundle_keys);
    for k in &new_root_keys {
        civia_bundle::sign_root(&mut r3, k);
    }
    let gap = f.system_bundle(Spec {
        roots: vec![r3],
        tag: "rot-gap",
        ..Spec::new("2.0.0", &new_bundle_keys[..2])
    });
    expect_refused(&f, &gap, "1.0.0", Slot::A, "root_version_gap");

    // old bundle keys are no longer enough once the bundle carries the rotation
    let old_keys = f.system_bundle(Spec {
        roots: vec![r2.clone()],
        tag: "rot-oldkeys",
        ..Spec::new("2.0.0", good_signers(&f))
    });
    expect_refused(&f, &old_keys, "1.0.0", Slot::A, "unknown_key");

    let good = f.system_bundle(Spec {
        roots: vec![r2],
        tag: "rot-good",
        ..Spec::new("2.0.0", &new_bundle_keys[..2])
    });
    let obs = RecordingObserver::default();
    f.updater(Slot::A, "1.0.0", &obs)
        .install_from_path(&good)
        .unwrap();
    assert!(obs
        .take()
        .contains(&AuditEvent::RootRotated { from: 1, to: 2 }));
    assert!(f.state_dir.join("roots/2.json").exists());
    let on = Slot::B;
    civia_update::esp::firmware_boot(&f.esp).unwrap();
    let up = f.updater(on, "2.0.0", &obs);
    up.after_boot().unwrap();
    up.bless().unwrap();
    // the box now trusts root v2: a bundle without the rotation but signed by the new keys passes,
    // one signed by the old bundle keys is refused
    let next = f.system_bundle(Spec {
        tag: "after",
        ..Spec::new("3.0.0", &new_bundle_keys[1..])
    });
    let old = f.system_bundle(Spec {
        tag: "after-old",
        ..Spec::new("3.0.0", good_signers(&f))
    });
    expect_refused(&f, &old, "2.0.0", on, "unknown_key");
    f.updater(on, "2.0.0", &obs)
        .install_from_path(&next)
        .unwrap();
}

#[test]
fn target_too_small_is_refused() {
    let f = Fixture::new();
    fs::write(&f.slot_b.usr, vec![0u8; 1000]).unwrap();
    let b = f.system_bundle(Spec::new("2.0.0", good_signers(&f)));
    expect_refused(&f, &b, "1.0.0", Slot::A, "target_too_small");
}

#[test]
fn error_messages_are_clear() {
    let f = Fixture::new();
    let one = &f.bundle_keys[..1];
    let below = f.system_bundle(Spec {
        tag: "one",
        ..Spec::new("2.0.0", one)
    });
    let obs = RecordingObserver::default();
    let e: UpdateError = f
        .updater(Slot::A, "1.0.0", &obs)
        .install_from_path(&below)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "bundle refused: bundle manifest has 1 valid signature(s) from trusted keys, 2 needed"
    );
}
