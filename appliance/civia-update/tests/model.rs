//! Model bundles: atomic install under the models directory, rollback, floor, refusals and
//! interrupted installs.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions fail loudly

mod common;

use std::fs;
use std::path::PathBuf;

use civia_bundle::{build, sign_bundle, BuildSpec};
use civia_bundle_format::BundleKind;
use civia_update::{failpoint, AuditEvent, ModelStore, RecordingObserver, Slot, UpdateError};
use common::*;

fn model_bundle(f: &Fixture, version: &str, floor: &str, tag: &str) -> PathBuf {
    let gguf = f.path(&format!("m-{version}-{tag}.gguf"));
    let mut data = b"GGUF".to_vec();
    data.extend(payload(
        version.len() as u64 + version.as_bytes()[0] as u64 * 7 + version.as_bytes()[4] as u64,
        2_500_000,
    ));
    fs::write(&gguf, data).unwrap();
    let dossier = f.path(&format!("d-{version}-{tag}.json"));
    fs::write(
        &dossier,
        format!("{{\"model\":\"tiny\",\"version\":\"{version}\",\"licence\":\"Apache-2.0\"}}"),
    )
    .unwrap();
    let out = f.path(&format!("model-{version}-{tag}.civia"));
    build(
        &BuildSpec {
            kind: BundleKind::Model,
            compatible: COMPAT.into(),
            version: v(version),
            floor: v(floor),
            created: T0,
            expires: T0 + 365 * DAY,
            verity_root_hash: None,
            model_id: Some("mistral-7b-instruct".into()),
            payloads: vec![
                ("model.gguf".into(), gguf),
                ("dossier.json".into(), dossier),
            ],
            roots: vec![],
        },
        &out,
    )
    .unwrap();
    sign_bundle(&out, &f.bundle_keys[1..]).unwrap();
    out
}

fn store<'o>(f: &Fixture, obs: &'o RecordingObserver) -> ModelStore<'o> {
    ModelStore::new(COMPAT, &f.image_root, &f.state_dir, &f.models, None, obs)
}

const ID: &str = "mistral-7b-instruct";

#[test]
fn install_switch_rollback_confirm() {
    let f = Fixture::new();
    let obs = RecordingObserver::default();
    let s = store(&f, &obs);
    let m1 = model_bundle(&f, "1.0.0", "1.0.0", "a");
    let i1 = s.install_from_path(&m1).unwrap();
    assert_eq!(i1.previous, None);
    assert_eq!(
        fs::read(&i1.path).unwrap(),
        fs::read(f.path("m-1.0.0-a.gguf")).unwrap()
    );
    assert_eq!(s.confirm(ID).unwrap(), v("1.0.0"));
    let m2 = model_bundle(&f, "1.1.0", "1.0.0", "a");
    let i2 = s.install_from_reader(fs::File::open(&m2).unwrap()).unwrap();
    assert_eq!(i2.previous, Some(v("1.0.0")));
    assert_eq!(s.current(ID), Some(v("1.1.0")));
    assert!(fs::read(s.current_path(ID)).unwrap() == fs::read(f.path("m-1.1.0-a.gguf")).unwrap());
    // the daemon could not load it: back to 1.0.0
    assert_eq!(s.rollback(ID).unwrap(), v("1.0.0"));
    assert_eq!(s.current(ID), Some(v("1.0.0")));
    assert!(fs::read(s.current_path(ID)).unwrap() == fs::read(f.path("m-1.0.0-a.gguf")).unwrap());
    let ev = obs.take();
    assert!(
        ev.iter()
            .any(|e| matches!(e, AuditEvent::ModelRolledBack { .. })),
        "{ev:?}"
    );
    // replaying the older bundle is refused
    let before = f.snapshot();
    let e = s.install_from_path(&m1).unwrap_err();
    assert_eq!(e.code(), "not_newer");
    assert!(f.snapshot() == before);
    // a system bundle is not a model bundle and vice versa
    let e = s
        .install_from_path(&f.system_bundle(Spec::new("2.0.0", good_signers(&f))))
        .unwrap_err();
    assert_eq!(e.code(), "wrong_kind");
    let e = f
        .updater(Slot::A, "1.0.0", &obs)
        .install_from_path(&m2)
        .unwrap_err();
    assert_eq!(e.code(), "wrong_kind");
}

#[test]
fn tampered_model_refused_current_untouched() {
    let f = Fixture::new();
    let obs = RecordingObserver::default();
    let s = store(&f, &obs);
    s.install_from_path(&model_bundle(&f, "1.0.0", "1.0.0", "a"))
        .unwrap();
    let m2 = model_bundle(&f, "1.1.0", "1.0.0", "a");
    let mut bytes = fs::read(&m2).unwrap();
    let n = bytes.len();
    bytes[n - 200_000] ^= 4;
    fs::write(&m2, &bytes).unwrap();
    obs.take();
    let before = f.snapshot();
    for e in [
        s.install_from_path(&m2).unwrap_err(),
        s.install_from_reader(fs::File::open(&m2).unwrap())
            .unwrap_err(),
    ] {
        assert_eq!(e.code(), "hash_mismatch");
    }
    assert!(f.snapshot() == before);
    let ev = obs.take();
    assert_eq!(ev.len(), 2);
    assert!(ev
        .iter()
        .all(|e| matches!(e, AuditEvent::Refused { code, .. } if code == "hash_mismatch")));
}

#[test]
fn floor_after_confirm() {
    let f = Fixture::new();
    let obs = RecordingObserver::default();
    let s = store(&f, &obs);
    s.install_from_path(&model_bundle(&f, "2.0.0", "2.0.0", "a"))
        .unwrap();
    s.confirm(ID).unwrap();
    // remove the current link (as if wiped): the floor still refuses an old version
    fs::remove_file(f.models.join(ID).join("current")).unwrap();
    let e = s
        .install_from_path(&model_bundle(&f, "1.9.0", "1.0.0", "b"))
        .unwrap_err();
    assert_eq!(e.code(), "below_floor");
}

#[test]
fn interrupted_model_install_keeps_current() {
    for (point, nth) in [
        ("write:model.gguf", 1),
        ("write:model.gguf", 3),
        ("write:dossier.json", 1),
        ("model:after_stage", 1),
        ("model:after_dir_rename", 1),
    ] {
        let f = Fixture::new();
        let obs = RecordingObserver::default();
        let s = store(&f, &obs);
        s.install_from_path(&model_bundle(&f, "1.0.0", "1.0.0", "a"))
            .unwrap();
        let m2 = model_bundle(&f, "1.1.0", "1.0.0", "a");
        failpoint::arm(point, nth);
        let e = s.install_from_path(&m2).unwrap_err();
        failpoint::clear();
        assert!(
            matches!(&e, UpdateError::Injected(p) if p == point),
            "{point}: {e}"
        );
        assert_eq!(s.current(ID), Some(v("1.0.0")), "{point}");
        assert!(
            fs::read(s.current_path(ID)).unwrap() == fs::read(f.path("m-1.0.0-a.gguf")).unwrap()
        );
        let i = s.install_from_path(&m2).unwrap();
        assert_eq!(
            (i.version, i.previous),
            (v("1.1.0"), Some(v("1.0.0"))),
            "{point}"
        );
    }
}
