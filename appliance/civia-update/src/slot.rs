//! The two A/B slots and the block devices of each.

use std::path::PathBuf;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    A,
    B,
}

impl Slot {
    pub fn name(self) -> &'static str {
        match self {
            Slot::A => "a",
            Slot::B => "b",
        }
    }
    pub fn other(self) -> Slot {
        match self {
            Slot::A => Slot::B,
            Slot::B => Slot::A,
        }
    }
}

/// The block devices (or files) of one slot.
#[derive(Clone, Debug)]
pub struct SlotPaths {
    /// The `/usr` partition (e.g. `/dev/disk/by-partlabel/usr-b`).
    pub usr: PathBuf,
    /// Its dm-verity hash partition.
    pub verity: PathBuf,
}
