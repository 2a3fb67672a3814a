//! The boot-counting and blessing state machine on an ESP directory, with systemd-boot's
//! choice and counting modelled by `esp::firmware_boot`.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions fail loudly

mod common;

use std::fs;

use civia_update::state::SlotStatus;
use civia_update::{esp, failpoint, AuditEvent, BootStatus, RecordingObserver, Slot, UpdateError};
use common::*;

fn installed(f: &Fixture) {
    let b = f.system_bundle(Spec {
        floor: "1.5.0",
        created: T0 + 10 * DAY,
        ..Spec::new("2.0.0", good_signers(f))
    });
    let obs = RecordingObserver::default();
    let up = f.updater(Slot::A, "1.0.0", &obs);
    assert_eq!(up.after_boot().unwrap(), BootStatus::Normal);
    up.install_from_path(&b).unwrap();
}

fn names(f: &Fixture) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(esp::linux_dir(&f.esp))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn success_path() {
    let f = Fixture::new();
    installed(&f);
    assert_eq!(names(&f), ["civia-1.0.0-a.efi", "civia-2.0.0-b+3.efi"]);
    let e = esp::firmware_boot(&f.esp).unwrap().unwrap();
    assert_eq!((e.slot.as_str(), e.counter), ("b", Some((2, 1))));
    let obs = RecordingObserver::default();
    let up = f.updater(Slot::B, "2.0.0", &obs);
    assert_eq!(
        up.after_boot().unwrap(),
        BootStatus::Trial {
            version: v("2.0.0")
        }
    );
    // health check passed
    assert_eq!(up.bless().unwrap(), v("1.5.0"));
    assert_eq!(names(&f), ["civia-1.0.0-a.efi", "civia-2.0.0-b.efi"]);
    let st = up.state().unwrap();
    assert_eq!(st.floor, v("1.5.0"));
    assert_eq!(st.reference_time, T0 + 10 * DAY);
    assert_eq!(st.slots["b"].status, SlotStatus::Good);
    assert!(st.pending.is_none());
    assert!(obs
        .take()
        .iter()
        .any(|e| matches!(e, AuditEvent::SystemBlessed { .. })));
    // later boots stay on B, uncounted
    for _ in 0..3 {
        let e = esp::firmware_boot(&f.esp).unwrap().unwrap();
        assert_eq!((e.slot.as_str(), e.counter), ("b", None));
        assert_eq!(up.after_boot().unwrap(), BootStatus::Normal);
    }
    // blessing twice is an error, not a silent success
    assert!(matches!(up.bless(), Err(UpdateError::State(_))));
}

#[test]
fn failed_health_check_rolls_back() {
    let f = Fixture::new();
    installed(&f);
    esp::firmware_boot(&f.esp).unwrap();
    let obs = RecordingObserver::default();
    let up_b = f.updater(Slot::B, "2.0.0", &obs);
    assert!(matches!(
        up_b.after_boot().unwrap(),
        BootStatus::Trial { .. }
    ));
    up_b.mark_bad("model did not load").unwrap();
    assert_eq!(names(&f), ["civia-1.0.0-a.efi", "civia-2.0.0-b+0-1.efi"]);
    // reboot: the firmware falls back to A
    let e = esp::firmware_boot(&f.esp).unwrap().unwrap();
    assert_eq!(e.slot, "a");
    let up_a = f.updater(Slot::A, "1.0.0", &obs);
    match up_a.after_boot().unwrap() {
        BootStatus::RolledBack {
            failed_version,
            reason,
        } => {
            assert_eq!(failed_version, v("2.0.0"));
            assert!(reason.contains("model did not load"), "{reason}");
        }
        s => panic!("{s:?}"),
    }
    let st = up_a.state().unwrap();
    assert_eq!(
        st.floor,
        v("0.0.0"),
        "a failed update never raises the floor"
    );
    assert_eq!(st.slots["b"].status, SlotStatus::Bad);
    assert_eq!(st.last_outcome.as_ref().unwrap().result, "rolled_back");
    let ev = obs.take();
    assert!(ev
        .iter()
        .any(|e| matches!(e, AuditEvent::HealthCheckFailed { .. })));
    assert!(ev
        .iter()
        .any(|e| matches!(e, AuditEvent::RolledBack { .. })));
    // the next boot is normal, and a fixed release installs over the bad slot
    assert_eq!(up_a.after_boot().unwrap(), BootStatus::Normal);
    let fixed = f.system_bundle(Spec {
        tag: "fixed",
        ..Spec::new("2.0.1", good_signers(&f))
    });
    up_a.install_from_path(&fixed).unwrap();
    assert_eq!(names(&f), ["civia-1.0.0-a.efi", "civia-2.0.1-b+3.efi"]);
}

#[test]
fn counter_runs_out_without_health_report() {
    let f = Fixture::new();
    installed(&f);
    // B crashes three times before the agent runs
    for left in [2, 1, 0] {
        let e = esp::firmware_boot(&f.esp).unwrap().unwrap();
        assert_eq!((e.slot.as_str(), e.counter), ("b", Some((left, 3 - left))));
    }
    let e = esp::firmware_boot(&f.esp).unwrap().unwrap();
    assert_eq!(e.slot, "a");
    let obs = RecordingObserver::default();
    match f.updater(Slot::A, "1.0.0", &obs).after_boot().unwrap() {
        BootStatus::RolledBack { reason, .. } => {
            assert!(reason.contains("counter ran out"), "{reason}")
        }
        s => panic!("{s:?}"),
    }
}

#[test]
fn power_loss_between_bless_steps() {
    let f = Fixture::new();
    installed(&f);
    esp::firmware_boot(&f.esp).unwrap();
    let obs = RecordingObserver::default();
    let up = f.updater(Slot::B, "2.0.0", &obs);
    up.after_boot().unwrap();
    failpoint::arm("bless:after_rename", 1);
    assert!(matches!(up.bless(), Err(UpdateError::Injected(_))));
    failpoint::clear();
    // the entry is blessed on the ESP, the state still says pending
    assert_eq!(names(&f), ["civia-1.0.0-a.efi", "civia-2.0.0-b.efi"]);
    assert!(up.state().unwrap().pending.is_some());
    // reboot: B again (blessed), and the agent completes the blessing
    assert_eq!(esp::firmware_boot(&f.esp).unwrap().unwrap().slot, "b");
    assert_eq!(
        up.after_boot().unwrap(),
        BootStatus::Blessed {
            version: v("2.0.0")
        }
    );
    let st = up.state().unwrap();
    assert_eq!(st.floor, v("1.5.0"));
    assert!(st.pending.is_none());
}

#[test]
fn power_loss_between_mark_bad_steps() {
    let f = Fixture::new();
    installed(&f);
    esp::firmware_boot(&f.esp).unwrap();
    let up = f.updater(Slot::B, "2.0.0", &civia_update::NullObserver);
    up.after_boot().unwrap();
    failpoint::arm("bad:after_rename", 1);
    assert!(up.mark_bad("self-test failed").is_err());
    failpoint::clear();
    assert_eq!(esp::firmware_boot(&f.esp).unwrap().unwrap().slot, "a");
    let status = f
        .updater(Slot::A, "1.0.0", &civia_update::NullObserver)
        .after_boot()
        .unwrap();
    assert!(
        matches!(status, BootStatus::RolledBack { .. }),
        "{status:?}"
    );
}

#[test]
fn power_loss_after_commit_before_reboot() {
    let f = Fixture::new();
    let b = f.system_bundle(Spec::new("2.0.0", good_signers(&f)));
    let up_a = f.updater(Slot::A, "1.0.0", &civia_update::NullObserver);
    failpoint::arm("after_uki_rename", 1);
    assert!(up_a.install_from_path(&b).is_err());
    failpoint::clear();
    // the commit happened: the next boot tries B
    assert_eq!(esp::firmware_boot(&f.esp).unwrap().unwrap().slot, "b");
    let up_b = f.updater(Slot::B, "2.0.0", &civia_update::NullObserver);
    assert!(matches!(
        up_b.after_boot().unwrap(),
        BootStatus::Trial { .. }
    ));
    up_b.bless().unwrap();
}

#[test]
fn installed_but_not_rebooted_stays_pending() {
    let f = Fixture::new();
    installed(&f);
    // civiad restarts without a reboot: still pending, B untouched
    let up = f.updater(Slot::A, "1.0.0", &civia_update::NullObserver);
    assert_eq!(up.after_boot().unwrap(), BootStatus::Normal);
    assert!(up.state().unwrap().pending.is_some());
    assert_eq!(names(&f), ["civia-1.0.0-a.efi", "civia-2.0.0-b+3.efi"]);
}
