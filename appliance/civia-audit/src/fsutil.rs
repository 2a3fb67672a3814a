//! File-system helpers: error context, directory fsync, atomic replacement, directory listing
//! and reading the tail of a segment.

use crate::time::Month;
use crate::AuditError;
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Name of the retention checkpoint in the log directory.
pub(crate) const CHECKPOINT: &str = "checkpoint.json";

/// Name of the lock file that keeps a second writer out.
pub(crate) const LOCK: &str = ".lock";

/// Longest line the tail reader looks back for (entries are bounded far below this).
const TAIL_CHUNK: u64 = 64 * 1024;

pub(crate) fn io_err(path: &Path, source: io::Error) -> AuditError {
    AuditError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn fs_err(e: civia_base::fs::FsError) -> AuditError {
    AuditError::Io {
        path: e.path,
        source: e.source,
    }
}

/// fsyncs a directory so that creations, renames and removals in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), AuditError> {
    civia_base::fs::sync_dir(dir).map_err(fs_err)
}

/// Replaces `dir/name` atomically (read-only, 0400).
pub(crate) fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), AuditError> {
    civia_base::fs::write_atomic(&dir.join(name), bytes, 0o400).map_err(fs_err)
}

/// Takes the directory's writer lock (`flock` on `dir/.lock`), held while the returned file
/// stays open. A second [`AuditLog`](crate::AuditLog) on the same directory, in this process
/// or another, would fork the chain: it gets [`AuditError::Busy`].
pub(crate) fn lock_dir(dir: &Path) -> Result<File, AuditError> {
    use std::os::unix::io::AsRawFd;
    let path = dir.join(LOCK);
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| io_err(&path, e))?;
    // SAFETY: `f` is an open file that outlives the call; flock only reads the descriptor
    // number and touches no memory of ours.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::WouldBlock {
            return Err(AuditError::Busy {
                dir: dir.to_path_buf(),
            });
        }
        return Err(io_err(&path, e));
    }
    Ok(f)
}

/// Which files exist for one month.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct MonthFiles {
    pub segment: bool,
    pub sig: bool,
}

/// The audit files of a directory, by month (other files are ignored).
#[derive(Debug, Default)]
pub(crate) struct Listing {
    pub months: BTreeMap<Month, MonthFiles>,
    pub checkpoint: bool,
}

impl Listing {
    /// The latest month that has a segment file.
    pub fn last_segment(&self) -> Option<Month> {
        self.months
            .iter()
            .rev()
            .find(|(_, f)| f.segment)
            .map(|(m, _)| *m)
    }
}

pub(crate) fn list(dir: &Path) -> Result<Listing, AuditError> {
    let mut listing = Listing::default();
    for item in fs::read_dir(dir).map_err(|e| io_err(dir, e))? {
        let item = item.map_err(|e| io_err(dir, e))?;
        let name = item.file_name();
        let Some(name) = name.to_str() else { continue };
        if name == CHECKPOINT {
            listing.checkpoint = true;
        } else if let Some(m) = Month::from_segment_name(name) {
            listing.months.entry(m).or_default().segment = true;
        } else if let Some(m) = name
            .strip_suffix(".sig")
            .and_then(|s| s.parse::<Month>().ok())
        {
            listing.months.entry(m).or_default().sig = true;
        }
    }
    Ok(listing)
}

/// The end of a segment file: its last complete line and what follows it.
#[derive(Debug)]
pub(crate) struct Tail {
    /// File length.
    pub len: u64,
    /// Offset and bytes (without the newline) of the last newline-terminated line.
    pub last_line: Option<(u64, Vec<u8>)>,
    /// Offset and bytes of an incomplete trailing fragment (no newline).
    pub fragment: Option<(u64, Vec<u8>)>,
}

/// Reads the end of `path` (the last [`TAIL_CHUNK`] bytes at most).
pub(crate) fn read_tail(path: &Path) -> Result<Tail, AuditError> {
    let mut f = File::open(path).map_err(|e| io_err(path, e))?;
    let len = f.metadata().map_err(|e| io_err(path, e))?.len();
    let start = len.saturating_sub(TAIL_CHUNK);
    f.seek(SeekFrom::Start(start))
        .map_err(|e| io_err(path, e))?;
    let mut buf = Vec::with_capacity((len - start) as usize);
    f.read_to_end(&mut buf).map_err(|e| io_err(path, e))?;
    let too_long = || AuditError::Corrupt {
        path: path.to_path_buf(),
        reason: format!("last line is longer than {TAIL_CHUNK} bytes"),
    };
    // `complete` = bytes up to and including the last newline.
    let complete = buf.iter().rposition(|&c| c == b'\n').map_or(0, |i| i + 1);
    let fragment =
        (complete < buf.len()).then(|| (start + complete as u64, buf[complete..].to_vec()));
    if complete == 0 {
        if start > 0 {
            return Err(too_long());
        }
        return Ok(Tail {
            len,
            last_line: None,
            fragment,
        });
    }
    let body = &buf[..complete - 1];
    let line_start = match body.iter().rposition(|&c| c == b'\n') {
        Some(i) => i + 1,
        None if start == 0 => 0,
        None => return Err(too_long()),
    };
    Ok(Tail {
        len,
        last_line: Some((start + line_start as u64, body[line_start..].to_vec())),
        fragment,
    })
}

/// The first line of a file (without its newline), if it has a complete one.
pub(crate) fn read_first_line(path: &Path) -> Result<Option<Vec<u8>>, AuditError> {
    use std::io::BufRead;
    let f = File::open(path).map_err(|e| io_err(path, e))?;
    let mut line = Vec::new();
    io::BufReader::new(f)
        .take(TAIL_CHUNK)
        .read_until(b'\n', &mut line)
        .map_err(|e| io_err(path, e))?;
    Ok(line.pop().filter(|c| *c == b'\n').map(|_| line))
}

pub(crate) fn segment_path(dir: &Path, m: Month) -> PathBuf {
    dir.join(m.segment_name())
}

pub(crate) fn sig_path(dir: &Path, m: Month) -> PathBuf {
    dir.join(m.sig_name())
}
