//! Crash-safe file writes: a reader (or a rerun after a power cut) sees the old file or the
//! new one, never a mix.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::error::{io, Result, TpmError};

/// Writes `data` to `path` with `mode` through a temporary file, fsync and rename, then
/// fsyncs the directory.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    civia_base::fs::write_atomic(path, data, mode).map_err(|e| io(&e.path)(e.source))
}

/// Reads a secret file, refusing one that group or others can read.
pub fn read_private(path: &Path) -> Result<zeroize::Zeroizing<Vec<u8>>> {
    let meta = fs::metadata(path).map_err(io(path))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(TpmError::LoosePermissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(zeroize::Zeroizing::new(fs::read(path).map_err(io(path))?))
}

/// Creates `dir` (and parents) with mode 0700 if missing.
pub fn ensure_private_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(io(dir))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io(dir))
}
