//! Kill the install at every failure point and at random ones: the active slot and its UKI are
//! untouched, the inactive slot is unbootable and marked unusable, and a retry succeeds.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions fail loudly

mod common;

use std::fs;

use civia_update::state::SlotStatus;
use civia_update::{
    esp, failpoint, BootStatus, NullObserver, RecordingObserver, Slot, UpdateError,
};
use common::*;
use rand::{Rng, SeedableRng};

struct Active {
    usr: Vec<u8>,
    verity: Vec<u8>,
    uki: Vec<u8>,
}

fn active(f: &Fixture) -> Active {
    Active {
        usr: fs::read(&f.slot_a.usr).unwrap(),
        verity: fs::read(&f.slot_a.verity).unwrap(),
        uki: fs::read(f.esp.join("EFI/Linux/civia-1.0.0-a.efi")).unwrap(),
    }
}

fn assert_active_untouched(f: &Fixture, a: &Active) {
    assert!(
        fs::read(&f.slot_a.usr).unwrap() == a.usr,
        "slot A usr changed"
    );
    assert!(
        fs::read(&f.slot_a.verity).unwrap() == a.verity,
        "slot A verity changed"
    );
    assert_eq!(
        fs::read(f.esp.join("EFI/Linux/civia-1.0.0-a.efi")).unwrap(),
        a.uki
    );
}

/// Kills the install at the `nth` pass of `point`, checks the aftermath, then retries.
fn kill_and_retry(point: &str, nth: u64) {
    let f = Fixture::new();
    let bundle = f.system_bundle(Spec::new("2.0.0", good_signers(&f)));
    let a = active(&f);
    let obs = RecordingObserver::default();
    let up = f.updater(Slot::A, "1.0.0", &obs);

    failpoint::clear();
    failpoint::arm(point, nth);
    let err = up
        .install_from_path(&bundle)
        .expect_err("the failpoint must stop the install");
    failpoint::clear();
    assert!(
        matches!(&err, UpdateError::Injected(p) if p == point),
        "{point}#{nth}: {err}"
    );
    assert_active_untouched(&f, &a);

    let committed = point == "after_uki_rename";
    let b_entry = esp::entry_for(&f.esp, "b").unwrap();
    let st = up.state().unwrap();
    if committed {
        assert!(b_entry.is_some());
    } else {
        assert!(
            b_entry.is_none(),
            "{point}: slot B must not be bootable, found {b_entry:?}"
        );
        let tmp_left = fs::read_dir(esp::linux_dir(&f.esp))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".efi")
            })
            .count();
        assert_eq!(tmp_left, 1, "{point}: only A's UKI is an .efi");
        if point != "after_verify" {
            let status = st.slots.get("b").map(|s| s.status);
            assert!(
                matches!(
                    status,
                    Some(SlotStatus::Unusable) | Some(SlotStatus::Installed)
                ),
                "{point}: slot B state {status:?}"
            );
        }
        // power cycle: the firmware boots A, and A's agent notices an interrupted install
        let booted = esp::firmware_boot(&f.esp).unwrap().unwrap();
        assert_eq!(booted.slot, "a");
        let status = up.after_boot().unwrap();
        if point == "before_uki_rename" {
            assert_eq!(
                status,
                BootStatus::InstallInterrupted {
                    version: v("2.0.0")
                }
            );
        } else {
            assert_eq!(status, BootStatus::Normal, "{point}");
        }
        assert_ne!(
            up.state().unwrap().slots.get("b").map(|s| s.status),
            Some(SlotStatus::Good)
        );
    }

    // retry succeeds and the update boots
    let inst = up.install_from_path(&bundle).unwrap();
    assert_eq!(inst.slot, Slot::B);
    assert_active_untouched(&f, &a);
    let usr = f.payload_of("2.0.0", "usr");
    assert!(fs::read(&f.slot_b.usr).unwrap()[..usr.len()] == usr[..]);
    let booted = esp::firmware_boot(&f.esp).unwrap().unwrap();
    assert_eq!(booted.slot, "b");
    let up_b = f.updater(Slot::B, "2.0.0", &NullObserver);
    assert_eq!(
        up_b.after_boot().unwrap(),
        BootStatus::Trial {
            version: v("2.0.0")
        }
    );
    up_b.bless().unwrap();
}

const POINTS: &[&str] = &[
    "after_verify",
    "after_mark",
    "write:usr",
    "after_write:usr",
    "readback:usr",
    "write:usr.verity",
    "after_write:usr.verity",
    "readback:usr.verity",
    "partuuid",
    "write:uki",
    "readback:uki",
    "before_uki_rename",
    "after_uki_rename",
];

#[test]
fn every_failpoint() {
    for p in POINTS {
        kill_and_retry(p, 1);
    }
    kill_and_retry("write:usr", 2); // in the middle of usr (second 1 MiB chunk)
}

#[test]
fn random_failpoints() {
    // Count how often each point is passed in a full install, then kill at random passes.
    let f = Fixture::new();
    let bundle = f.system_bundle(Spec::new("2.0.0", good_signers(&f)));
    failpoint::clear();
    f.updater(Slot::A, "1.0.0", &NullObserver)
        .install_from_path(&bundle)
        .unwrap();
    let seen = failpoint::seen();
    failpoint::clear();
    let mut points: Vec<(String, u64)> = seen.into_iter().collect();
    points.sort();
    let seed = std::env::var("CIVIA_FAILPOINT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_u64);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    for _ in 0..8 {
        let (p, count) = &points[rng.gen_range(0..points.len())];
        let nth = rng.gen_range(1..=*count);
        eprintln!("seed {seed:#x}: killing at {p} pass {nth}/{count}");
        kill_and_retry(p, nth);
    }
}
