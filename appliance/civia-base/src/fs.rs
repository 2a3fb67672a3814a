//! Crash-safe file replacement: a reader, or a rerun after a power cut, sees the old file or
//! the new one, never a mix. Also the free space of a file system ([`disk_space`]).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A file operation that failed, with the path it was done on.
#[derive(Debug, thiserror::Error)]
#[error("{op} {}: {source}", path.display())]
pub struct FsError {
    /// What was being done (`creating`, `writing`, `renaming to`, `syncing`).
    pub op: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

fn at<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> FsError + 'a {
    move |source| FsError {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// A file opened at one consistent moment, to be read later up to `len` bytes while its owner
/// goes on appending to it or replaces it: an online backup's view of a file another part of
/// the box writes. `name` is relative to the owner's directory.
#[derive(Debug)]
pub struct PinnedFile {
    pub name: PathBuf,
    pub file: File,
    pub len: u64,
}

/// fsyncs a directory so that creations, renames and removals in it are durable.
pub fn sync_dir(dir: &Path) -> Result<(), FsError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(at("syncing", dir))
}

/// The temporary file [`write_atomic`] writes beside `name` before renaming it.
fn temporary_name(name: &str) -> String {
    format!(".{name}.tmp")
}

/// Whether a file name is one of [`write_atomic`]'s temporary files (half-written by design:
/// a reader of a directory, such as a backup, skips them).
pub fn is_temporary(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(".tmp")
}

/// Replaces `path` with `bytes`, with exactly `mode`: a temporary file `.<name>.tmp` beside
/// it (a stale one from a crash is removed first), fsync, rename over `path`, fsync of the
/// directory. The directory must exist.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), FsError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy());
    let tmp = dir.join(temporary_name(&name));
    let _ = fs::remove_file(&tmp);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(at("creating", &tmp))?;
    // The umask may have narrowed the mode; set it exactly.
    f.set_permissions(fs::Permissions::from_mode(mode))
        .and_then(|_| f.write_all(bytes))
        .and_then(|_| f.sync_all())
        .map_err(at("writing", &tmp))?;
    drop(f);
    fs::rename(&tmp, path).map_err(at("renaming to", path))?;
    sync_dir(dir)
}

/// (total, available to unprivileged users) bytes of the file system holding `dir`.
pub fn disk_space(dir: &Path) -> Option<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c` is a valid NUL-terminated path and `st` points to writable memory of the
    // right type; statvfs only writes into it, and we read it only when it returned 0.
    let rc = unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: statvfs returned 0, so it initialised the whole structure.
    let st = unsafe { st.assume_init() };
    // The field types differ between targets (u32 or u64): widen without casts.
    #[allow(clippy::useless_conversion)]
    let (frsize, blocks, avail) = (
        u64::from(st.f_frsize),
        u64::from(st.f_blocks),
        u64::from(st.f_bavail),
    );
    Some((blocks.saturating_mul(frsize), avail.saturating_mul(frsize)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_with_mode_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("state.json");
        write_atomic(&p, b"one", 0o600).expect("first");
        // A temporary file left by a crash does not block the next write.
        std::fs::write(dir.path().join(".state.json.tmp"), b"torn").expect("stale");
        write_atomic(&p, b"two", 0o400).expect("second");
        assert_eq!(std::fs::read(&p).expect("read"), b"two");
        let mode = std::fs::metadata(&p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o400);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("state.json")]);
    }

    #[test]
    fn missing_directory_is_an_error_naming_the_path() {
        let e = write_atomic(Path::new("/nonexistent/dir/f"), b"x", 0o600).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/dir/.f.tmp"), "{e}");
    }
}
