//! The agent's persistent state, one JSON file under the state directory (on the encrypted
//! `/var`), replaced atomically (write to a temporary file, fsync, rename, fsync the directory).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use civia_bundle_format::Version;
use serde::{Deserialize, Serialize};

use crate::{io_err, UpdateError};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlotStatus {
    /// Nothing known about it.
    #[default]
    Unknown,
    /// An install started and did not finish: unusable until a retry succeeds.
    Unusable,
    /// Fully written and verified, UKI installed with a boot counter; not yet blessed.
    Installed,
    /// Booted and blessed.
    Good,
    /// Its trial boot failed (health check or counter ran out).
    Bad,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotState {
    pub status: SlotStatus,
    pub version: Option<Version>,
}

/// A system update waiting for its trial boot and blessing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub slot: String,
    pub version: Version,
    /// The signed floor and creation time, applied once blessed.
    pub floor: Version,
    pub created: i64,
    /// Set when the trial boot's health check failed.
    pub health_failure: Option<String>,
}

/// The last outcome of a system update, for `/health` and the admin UI.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub version: Version,
    pub result: String,
    pub message: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Lowest system version ever accepted again. Only raised.
    pub floor: Version,
    /// Newest trusted time (unix seconds). Only raised.
    pub reference_time: i64,
    /// Keyed "a" and "b".
    pub slots: BTreeMap<String, SlotState>,
    pub pending: Option<Pending>,
    pub last_outcome: Option<Outcome>,
    /// Per model id: the floor.
    pub model_floors: BTreeMap<String, Version>,
}

impl State {
    pub fn slot_mut(&mut self, slot: &str) -> &mut SlotState {
        self.slots.entry(slot.to_string()).or_default()
    }

    pub fn raise_reference_time(&mut self, t: i64) {
        self.reference_time = self.reference_time.max(t);
    }
}

pub fn state_path(state_dir: &Path) -> PathBuf {
    state_dir.join("update-state.json")
}

pub fn load(state_dir: &Path) -> Result<State, UpdateError> {
    let p = state_path(state_dir);
    match fs::read(&p) {
        Ok(b) => serde_json::from_slice(&b)
            .map_err(|e| UpdateError::State(format!("{}: {e}", p.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
        Err(e) => Err(io_err(format!("reading {}", p.display()))(e)),
    }
}

pub fn save(state_dir: &Path, st: &State) -> Result<(), UpdateError> {
    let bytes = serde_json::to_vec_pretty(st).map_err(|e| UpdateError::State(e.to_string()))?;
    write_atomic(&state_path(state_dir), &bytes)
}

/// Writes `bytes` to `path` atomically and durably (0644), creating its directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), UpdateError> {
    let dir = path
        .parent()
        .ok_or_else(|| UpdateError::State(format!("{} has no parent", path.display())))?;
    fs::create_dir_all(dir).map_err(io_err(format!("creating {}", dir.display())))?;
    civia_base::fs::write_atomic(path, bytes, 0o644).map_err(fs_err)
}

pub fn sync_dir(dir: &Path) -> Result<(), UpdateError> {
    civia_base::fs::sync_dir(dir).map_err(fs_err)
}

fn fs_err(e: civia_base::fs::FsError) -> UpdateError {
    io_err(format!("{} {}", e.op, e.path.display()))(e.source)
}
