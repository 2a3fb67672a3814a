//! The append side: [`AuditLog`] owns the open segment, recovers after a crash, seals a
//! segment when the month changes and batches concurrent appends under one `fdatasync`.

use crate::entry::{line_hash, Entry, Event, GENESIS_HASH};
use crate::fsutil::{self, io_err, segment_path, sig_path, sync_dir, write_atomic, Listing};
use crate::seal::{read_json, Checkpoint, SegmentSeal};
use crate::time::{format_ms, parse_stored_ms, system_clock, system_time_to_ms, Clock, Month};
use crate::AuditError;
use ed25519_dalek::{SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

/// What [`AuditLog::append`] wrote, once it is durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendedEntry {
    /// The entry's sequence number.
    pub seq: u64,
    /// Hex SHA-256 of its line: the next entry's `prev`.
    pub hash: String,
}

/// A torn (incomplete or unparsable) last line found and cut off by [`AuditLog::open`]: the
/// trace of a crash during a write that was never acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornLine {
    /// Segment file name.
    pub segment: String,
    /// Byte offset where the torn line started (the segment's new length).
    pub offset: u64,
    /// The bytes removed.
    pub bytes: Vec<u8>,
}

/// What [`AuditLog::open`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenReport {
    /// The torn last line cut off, if any.
    pub torn: Option<TornLine>,
    /// Seq of the last durable entry (0 when the log is empty).
    pub last_seq: u64,
    /// Its hash (the next entry's `prev`).
    pub last_hash: String,
    /// The segment appends go to, if one is open (none when the log is empty or the last
    /// segment is sealed).
    pub open_segment: Option<String>,
    /// Anomalies worth an administrator's look (e.g. a non-last segment without a seal);
    /// [`verify`](crate::verify) says more.
    pub warnings: Vec<String>,
}

/// The chain's head: what the next entry links to.
#[derive(Debug, Clone)]
pub(crate) struct Chain {
    /// Last seq written (0 before the first entry).
    pub seq: u64,
    /// Its hash (the genesis or checkpoint hash before the first kept entry).
    pub hash: String,
    /// Its timestamp, ms since the epoch (timestamps never go backwards).
    pub ts_ms: i64,
}

pub(crate) struct OpenSegment {
    pub month: Month,
    pub path: PathBuf,
    file: File,
    /// Durable length: the file ends with a complete line there.
    len: u64,
    pub first_seq: Option<u64>,
}

pub(crate) struct Writer {
    pub chain: Chain,
    pub open: Option<OpenSegment>,
    /// Latest sealed month: no new segment may be at or before it.
    pub sealed: Option<Month>,
    /// Set when a failed write could not be taken back: appends are refused until reopen.
    poisoned: Option<String>,
}

#[derive(Default)]
struct Queue {
    pending: Vec<(u64, Event)>,
    leader: bool,
    next_ticket: u64,
    done: HashMap<u64, Result<AppendedEntry, AuditError>>,
}

type Outcome = (u64, Result<AppendedEntry, AuditError>);

/// The audit trail of one directory. `Send + Sync`: share it in an `Arc`.
///
/// Appends are synchronous and durable on return (one `fdatasync` per group of concurrent
/// appends). From async code, call [`AuditLog::append`] through `tokio::task::spawn_blocking`.
pub struct AuditLog {
    pub(crate) dir: PathBuf,
    pub(crate) key: SigningKey,
    pub(crate) clock: Clock,
    pub(crate) retention_months: u32,
    queue: Mutex<Queue>,
    turn: Condvar,
    pub(crate) writer: Mutex<Writer>,
    fsyncs: AtomicU64,
    report: OpenReport,
    /// journald copy of every durable entry (best effort).
    mirror: std::sync::OnceLock<crate::JournalMirror>,
    mirror_drops: AtomicU64,
    /// Holds the directory's writer lock for the log's lifetime.
    _lock: File,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("dir", &self.dir)
            .field("retention_months", &self.retention_months)
            .finish_non_exhaustive()
    }
}

impl AuditLog {
    /// Opens (creating it 0700 if needed) the audit directory `dir`, with the system clock.
    ///
    /// Recovers the chain's head from the last segment; a torn last line (the crash case) is
    /// cut off and reported in [`AuditLog::open_report`] and through `log::warn!`.
    /// `retention_months` is what [`AuditLog::purge`] keeps: validate it first with
    /// [`RetentionPolicy::validate`](crate::RetentionPolicy::validate); only 0 is refused here.
    pub fn open(
        dir: &Path,
        signing_key: SigningKey,
        retention_months: u32,
    ) -> Result<AuditLog, AuditError> {
        AuditLog::open_with_clock(dir, signing_key, retention_months, system_clock())
    }

    /// [`AuditLog::open`] with an injected clock (tests, simulations).
    pub fn open_with_clock(
        dir: &Path,
        signing_key: SigningKey,
        retention_months: u32,
        clock: Clock,
    ) -> Result<AuditLog, AuditError> {
        if retention_months == 0 {
            return Err(AuditError::InvalidArgument(
                "retention of 0 months would purge the whole trail".into(),
            ));
        }
        create_private_dir(dir)?;
        let lock = fsutil::lock_dir(dir)?;
        let mut report = OpenReport::default();
        let writer = recover(dir, &signing_key.verifying_key(), &mut report)?;
        report.last_seq = writer.chain.seq;
        report.last_hash = writer.chain.hash.clone();
        report.open_segment = writer.open.as_ref().map(|o| o.month.segment_name());
        for w in &report.warnings {
            log::warn!("audit log {}: {w}", dir.display());
        }
        Ok(AuditLog {
            dir: dir.to_path_buf(),
            key: signing_key,
            clock,
            retention_months,
            queue: Mutex::new(Queue::default()),
            turn: Condvar::new(),
            writer: Mutex::new(writer),
            fsyncs: AtomicU64::new(0),
            report,
            mirror: std::sync::OnceLock::new(),
            mirror_drops: AtomicU64::new(0),
            _lock: lock,
        })
    }

    /// Mirrors every entry, once durable, to journald (structured `CIVIA_*` fields). Best
    /// effort: a journal that is absent or full never delays or fails an append; the entries
    /// it missed are counted in [`AuditLog::mirror_drops`]. Set once; later calls are ignored.
    pub fn mirror_to(&self, mirror: crate::JournalMirror) {
        let _ = self.mirror.set(mirror);
    }

    /// Whether entries are mirrored to journald.
    pub fn mirrored(&self) -> bool {
        self.mirror.get().is_some()
    }

    /// Entries the journald mirror could not deliver.
    pub fn mirror_drops(&self) -> u64 {
        self.mirror_drops.load(Ordering::Relaxed)
    }

    fn send_to_mirror(&self, entries: &mut Vec<Entry>, durable: bool) {
        if let (true, Some(m)) = (durable, self.mirror.get()) {
            for e in entries.iter() {
                if let Err(err) = m.send(e) {
                    if self.mirror_drops.fetch_add(1, Ordering::Relaxed) == 0 {
                        log::warn!("audit: journald mirror: {err} (further failures are counted)");
                    }
                }
            }
        }
        entries.clear();
    }

    /// What [`AuditLog::open`] found (torn line, head, warnings).
    pub fn open_report(&self) -> &OpenReport {
        &self.report
    }

    /// The audit directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The key that verifies this log's seals and checkpoint.
    pub fn public_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// The last durable entry (`None` before the first). Publishing it elsewhere from time to
    /// time (admin UI, remote syslog) anchors the tail, which the chain alone cannot protect
    /// against truncation of the open segment.
    pub fn head(&self) -> Result<Option<AppendedEntry>, AuditError> {
        let w = self.lock_writer()?;
        Ok((w.chain.seq > 0).then(|| AppendedEntry {
            seq: w.chain.seq,
            hash: w.chain.hash.clone(),
        }))
    }

    /// The trail's files as they are now, opened and measured while no append, rollover or
    /// purge runs: sealed segments, their seals and the checkpoint whole, the open segment up
    /// to its last durable line. Reading them later (an online backup) gives a trail that
    /// verifies up to this head, whatever is appended or purged meanwhile.
    pub fn pin_files(&self) -> Result<Vec<civia_base::fs::PinnedFile>, AuditError> {
        let w = self.lock_writer()?;
        let dir = &self.dir;
        let mut entries: Vec<_> = fs::read_dir(dir)
            .and_then(|d| d.collect::<io::Result<Vec<_>>>())
            .map_err(|e| io_err(dir, e))?;
        entries.sort_by_key(|e| e.file_name());
        let mut out = Vec::new();
        for e in entries {
            let path = e.path();
            // The lock and the temporary files of an atomic replacement are not the trail.
            let hidden = e.file_name().to_string_lossy().starts_with('.');
            if hidden || !e.file_type().map_err(|err| io_err(&path, err))?.is_file() {
                continue;
            }
            let file = File::open(&path).map_err(|err| io_err(&path, err))?;
            let len = match &w.open {
                Some(open) if open.path == path => open.len,
                _ => file.metadata().map_err(|err| io_err(&path, err))?.len(),
            };
            out.push(civia_base::fs::PinnedFile {
                name: PathBuf::from(e.file_name()),
                file,
                len,
            });
        }
        Ok(out)
    }

    /// Number of `fdatasync` calls on segment files since open: one per committed group of
    /// appends (for tests and metrics).
    pub fn fsync_count(&self) -> u64 {
        self.fsyncs.load(Ordering::Relaxed)
    }

    /// Appends one entry and returns once it is on disk (`fdatasync`ed).
    ///
    /// Safe to call from many threads: while one thread writes, the others queue, and the
    /// next writer commits the whole queue with a single `fdatasync` (group commit). `seq`
    /// and `ts` are assigned at write time, so both grow with the line order; `ts` never goes
    /// backwards even if the clock does. On error the entry was not written (the segment is
    /// cut back to its last complete line) and the caller should refuse the audited action.
    pub fn append(&self, event: Event) -> Result<AppendedEntry, AuditError> {
        event.validate()?;
        let mut q = self.lock_queue();
        let ticket = q.next_ticket;
        q.next_ticket += 1;
        q.pending.push((ticket, event));
        loop {
            if let Some(result) = q.done.remove(&ticket) {
                return result;
            }
            if !q.leader {
                q.leader = true;
                let batch = std::mem::take(&mut q.pending);
                drop(q);
                let mut guard = LeaderGuard {
                    log: self,
                    tickets: batch.iter().map(|(t, _)| *t).collect(),
                    armed: true,
                };
                let results = self.write_batch(batch);
                guard.armed = false;
                drop(guard);
                q = self.lock_queue();
                q.done.extend(results);
                q.leader = false;
                self.turn.notify_all();
                continue;
            }
            q = self.turn.wait(q).unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn lock_queue(&self) -> MutexGuard<'_, Queue> {
        // The queue holds no invariant a panic could break halfway.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn lock_writer(&self) -> Result<MutexGuard<'_, Writer>, AuditError> {
        self.writer
            .lock()
            .map_err(|_| AuditError::Poisoned("a thread panicked while writing".into()))
    }

    /// Writes a batch in order; returns one outcome per ticket.
    fn write_batch(&self, batch: Vec<(u64, Event)>) -> Vec<Outcome> {
        let mut out = Vec::with_capacity(batch.len());
        let mut guard = match self.lock_writer() {
            Ok(w) => w,
            Err(e) => return fail_all(batch, &e),
        };
        let w = &mut *guard;
        let mut tent = w.chain.clone();
        let mut buf = Vec::new();
        let mut staged: Vec<(u64, AppendedEntry)> = Vec::new();
        let mut entries: Vec<Entry> = Vec::new();
        for (ticket, event) in batch {
            if let Some(reason) = &w.poisoned {
                out.push((ticket, Err(AuditError::Poisoned(reason.clone()))));
                continue;
            }
            let now = match system_time_to_ms((self.clock)()) {
                Ok(ms) => ms,
                Err(e) => {
                    out.push((ticket, Err(e)));
                    continue;
                }
            };
            let ts_ms = now.max(tent.ts_ms);
            let month = Month::of_ms(ts_ms);
            if w.open.as_ref().map(|o| o.month) != Some(month) {
                if !staged.is_empty() {
                    let durable = self.commit(w, &mut buf, &mut staged, &mut tent, &mut out);
                    self.send_to_mirror(&mut entries, durable);
                }
                if let Err(e) = self.rollover(w, month) {
                    log::error!("audit log {}: {e}", self.dir.display());
                    out.push((ticket, Err(e)));
                    continue;
                }
            }
            let entry = Entry::from_event(tent.seq + 1, format_ms(ts_ms), tent.hash.clone(), event);
            let line = match entry.to_line() {
                Ok(l) => l,
                Err(e) => {
                    out.push((ticket, Err(e)));
                    continue;
                }
            };
            let hash = line_hash(&line);
            buf.extend_from_slice(&line);
            buf.push(b'\n');
            staged.push((
                ticket,
                AppendedEntry {
                    seq: entry.seq,
                    hash: hash.clone(),
                },
            ));
            tent = Chain {
                seq: entry.seq,
                hash,
                ts_ms,
            };
            if self.mirror.get().is_some() {
                entries.push(entry);
            }
        }
        if !staged.is_empty() {
            let durable = self.commit(w, &mut buf, &mut staged, &mut tent, &mut out);
            self.send_to_mirror(&mut entries, durable);
        }
        out
    }

    /// Writes the staged lines to the open segment and `fdatasync`s them; on failure cuts the
    /// segment back to its last durable line and fails every staged ticket. Returns whether
    /// the lines are durable.
    fn commit(
        &self,
        w: &mut Writer,
        buf: &mut Vec<u8>,
        staged: &mut Vec<(u64, AppendedEntry)>,
        tent: &mut Chain,
        out: &mut Vec<Outcome>,
    ) -> bool {
        let Some(open) = w.open.as_mut() else {
            let e = AuditError::WriteFailed("no open segment".into());
            out.extend(staged.drain(..).map(|(t, _)| (t, Err(e.duplicate()))));
            buf.clear();
            *tent = w.chain.clone();
            return false;
        };
        let written = open.file.write_all(buf).and_then(|()| {
            self.fsyncs.fetch_add(1, Ordering::Relaxed);
            open.file.sync_data()
        });
        match written {
            Ok(()) => {
                open.len += buf.len() as u64;
                if open.first_seq.is_none() {
                    open.first_seq = staged.first().map(|(_, a)| a.seq);
                }
                w.chain = tent.clone();
                out.extend(staged.drain(..).map(|(t, a)| (t, Ok(a))));
                buf.clear();
                true
            }
            Err(e) => {
                let msg = format!("{}: {e}", open.path.display());
                log::error!("audit log write failed: {msg}");
                if let Err(e2) = open
                    .file
                    .set_len(open.len)
                    .and_then(|()| open.file.sync_data())
                {
                    w.poisoned = Some(format!(
                        "{msg}; cutting the partial write back failed: {e2}"
                    ));
                }
                *tent = w.chain.clone();
                out.extend(
                    staged
                        .drain(..)
                        .map(|(t, _)| (t, Err(AuditError::WriteFailed(msg.clone())))),
                );
                buf.clear();
                false
            }
        }
    }

    /// Seals the open segment (or drops it if it never held an entry) and opens `month`'s.
    fn rollover(&self, w: &mut Writer, month: Month) -> Result<(), AuditError> {
        let floor = w.open.as_ref().map(|o| o.month).or(w.sealed);
        if let Some(floor) = floor {
            if month < floor || (w.open.is_none() && month == floor) {
                return Err(AuditError::SegmentSealed {
                    segment: month.segment_name(),
                });
            }
        }
        if let Some(open) = w.open.take() {
            let done = if open.len == 0 {
                drop_empty_segment(&self.dir, &open.path)
            } else {
                self.seal(&open, &w.chain)
                    .map(|()| w.sealed = Some(open.month))
            };
            if let Err(e) = done {
                w.open = Some(open);
                return Err(e);
            }
        }
        let path = segment_path(&self.dir, month);
        let file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| io_err(&path, e))?;
        log::info!("audit log: opened segment {}", path.display());
        w.open = Some(OpenSegment {
            month,
            path,
            file,
            len: 0,
            first_seq: None,
        });
        sync_dir(&self.dir)
    }

    /// Writes `YYYY-MM.sig` for a full segment, then makes the segment read-only.
    fn seal(&self, open: &OpenSegment, chain: &Chain) -> Result<(), AuditError> {
        let first_seq = open.first_seq.ok_or_else(|| AuditError::Corrupt {
            path: open.path.clone(),
            reason: "segment has data but no first entry".into(),
        })?;
        let mut hasher = Sha256::new();
        let mut f = File::open(&open.path).map_err(|e| io_err(&open.path, e))?;
        let size = io::copy(&mut f, &mut hasher).map_err(|e| io_err(&open.path, e))?;
        if size != open.len {
            return Err(AuditError::Corrupt {
                path: open.path.clone(),
                reason: format!("{size} bytes on disk, {} written", open.len),
            });
        }
        let seal = SegmentSeal::sign(
            &self.key,
            open.month.segment_name(),
            first_seq,
            chain.seq,
            chain.hash.clone(),
            hex::encode(hasher.finalize()),
        );
        let json = serde_json::to_vec_pretty(&seal).map_err(|e| AuditError::Corrupt {
            path: open.path.clone(),
            reason: e.to_string(),
        })?;
        write_atomic(&self.dir, &open.month.sig_name(), &json)?;
        fs::set_permissions(&open.path, fs::Permissions::from_mode(0o400))
            .map_err(|e| io_err(&open.path, e))?;
        log::info!(
            "audit log: sealed {} (seq {first_seq}..={})",
            open.path.display(),
            chain.seq
        );
        Ok(())
    }
}

/// Fails the tickets of a panicking writer so that their threads do not wait forever.
struct LeaderGuard<'a> {
    log: &'a AuditLog,
    tickets: Vec<u64>,
    /// Cleared once the batch's outcomes are in hand.
    armed: bool,
}

impl Drop for LeaderGuard<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let mut q = self.log.lock_queue();
        for t in &self.tickets {
            q.done
                .entry(*t)
                .or_insert_with(|| Err(AuditError::Poisoned("the writing thread panicked".into())));
        }
        q.leader = false;
        self.log.turn.notify_all();
    }
}

fn fail_all(batch: Vec<(u64, Event)>, e: &AuditError) -> Vec<Outcome> {
    batch
        .into_iter()
        .map(|(t, _)| (t, Err(e.duplicate())))
        .collect()
}

fn drop_empty_segment(dir: &Path, path: &Path) -> Result<(), AuditError> {
    match fs::remove_file(path) {
        Ok(()) => sync_dir(dir),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(path, e)),
    }
}

fn create_private_dir(dir: &Path) -> Result<(), AuditError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| io_err(dir, e))?;
    let mode = fs::metadata(dir)
        .map_err(|e| io_err(dir, e))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        log::warn!(
            "audit directory {} has mode {:04o}; expected 0700",
            dir.display(),
            mode & 0o7777
        );
    }
    Ok(())
}

/// Parses a stored line into the chain head it ends.
pub(crate) fn chain_of_line(path: &Path, line: &[u8]) -> Result<(Entry, Chain), AuditError> {
    let corrupt = |reason: String| AuditError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let entry: Entry =
        serde_json::from_slice(line).map_err(|e| corrupt(format!("last entry unreadable: {e}")))?;
    let ts_ms = parse_stored_ms(&entry.ts)
        .ok_or_else(|| corrupt(format!("last entry has a bad ts `{}`", entry.ts)))?;
    let chain = Chain {
        seq: entry.seq,
        hash: line_hash(line),
        ts_ms,
    };
    Ok((entry, chain))
}

/// The head after the last entry of segments strictly before `month` (or the checkpoint, or
/// the genesis).
pub(crate) fn chain_before(
    dir: &Path,
    listing: &Listing,
    month: Month,
    key: &VerifyingKey,
) -> Result<Chain, AuditError> {
    let prev = listing
        .months
        .range(..month)
        .rev()
        .find(|(_, f)| f.segment)
        .map(|(m, _)| *m);
    if let Some(m) = prev {
        let path = segment_path(dir, m);
        let tail = fsutil::read_tail(&path)?;
        let (_, line) = tail.last_line.ok_or_else(|| AuditError::Corrupt {
            path: path.clone(),
            reason: "sealed segment has no complete line".into(),
        })?;
        return Ok(chain_of_line(&path, &line)?.1);
    }
    if listing.checkpoint {
        let path = dir.join(fsutil::CHECKPOINT);
        let cp: Checkpoint = read_json(&path)?;
        cp.check(key).map_err(|reason| AuditError::Corrupt {
            path: path.clone(),
            reason,
        })?;
        return Ok(Chain {
            seq: cp.first_seq.saturating_sub(1),
            hash: cp.prev_hash,
            ts_ms: 0,
        });
    }
    Ok(Chain {
        seq: 0,
        hash: GENESIS_HASH.to_string(),
        ts_ms: 0,
    })
}

/// Rebuilds the writer state from the directory, cutting off a torn last line.
fn recover(dir: &Path, key: &VerifyingKey, report: &mut OpenReport) -> Result<Writer, AuditError> {
    let listing = fsutil::list(dir)?;
    let last = listing.last_segment();
    for (m, f) in &listing.months {
        if f.segment && !f.sig && Some(*m) != last {
            report.warnings.push(format!(
                "{} is not the last segment but has no seal",
                m.segment_name()
            ));
        }
        if f.sig && !f.segment && last.is_some_and(|l| *m > l) {
            report.warnings.push(format!(
                "{} exists but {} is missing",
                m.sig_name(),
                m.segment_name()
            ));
        }
    }
    let Some(month) = last else {
        let chain = chain_before(
            dir,
            &listing,
            Month {
                year: 10_000,
                month: 1,
            },
            key,
        )?;
        return Ok(Writer {
            chain,
            open: None,
            sealed: None,
            poisoned: None,
        });
    };
    let path = segment_path(dir, month);
    if listing.months[&month].sig {
        // Sealed just before a crash, before the next segment was created (the crash may
        // also have come before the segment was made read-only).
        if let Err(e) = fs::set_permissions(&path, fs::Permissions::from_mode(0o400)) {
            report
                .warnings
                .push(format!("cannot make {} read-only: {e}", path.display()));
        }
        let tail = fsutil::read_tail(&path)?;
        let line = tail.last_line.filter(|_| tail.fragment.is_none());
        let (_, line) = line.ok_or_else(|| AuditError::Corrupt {
            path: path.clone(),
            reason: "sealed segment does not end with a complete line".into(),
        })?;
        return Ok(Writer {
            chain: chain_of_line(&path, &line)?.1,
            open: None,
            sealed: Some(month),
            poisoned: None,
        });
    }
    let mut tail = fsutil::read_tail(&path)?;
    let torn = match (&tail.fragment, &tail.last_line) {
        (Some((offset, bytes)), _) => Some((*offset, bytes.clone())),
        (None, Some((offset, line))) if serde_json::from_slice::<Entry>(line).is_err() => {
            let mut bytes = line.clone();
            bytes.push(b'\n');
            Some((*offset, bytes))
        }
        _ => None,
    };
    if let Some((offset, bytes)) = torn {
        let f = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| io_err(&path, e))?;
        f.set_len(offset)
            .and_then(|()| f.sync_all())
            .map_err(|e| io_err(&path, e))?;
        let preview: String = String::from_utf8_lossy(&bytes).chars().take(200).collect();
        log::warn!(
            "audit log: cut a torn last line ({} bytes at offset {offset}) off {}: {:?}",
            bytes.len(),
            path.display(),
            preview
        );
        report.torn = Some(TornLine {
            segment: month.segment_name(),
            offset,
            bytes,
        });
        tail = fsutil::read_tail(&path)?;
    }
    let (chain, first_seq) = match &tail.last_line {
        Some((_, line)) => {
            let chain = chain_of_line(&path, line)?.1;
            let first = fsutil::read_first_line(&path)?.ok_or_else(|| AuditError::Corrupt {
                path: path.clone(),
                reason: "first line unreadable".into(),
            })?;
            (chain, Some(chain_of_line(&path, &first)?.0.seq))
        }
        None => (chain_before(dir, &listing, month, key)?, None),
    };
    let file = OpenOptions::new()
        .append(true)
        .open(&path)
        .map_err(|e| io_err(&path, e))?;
    let sealed = listing
        .months
        .range(..month)
        .rev()
        .find(|(_, f)| f.sig)
        .map(|(m, _)| *m);
    Ok(Writer {
        chain,
        open: Some(OpenSegment {
            month,
            path,
            file,
            len: tail.len,
            first_seq,
        }),
        sealed,
        poisoned: None,
    })
}

/// The seal of a sealed segment.
pub(crate) fn read_seal(dir: &Path, m: Month) -> Result<SegmentSeal, AuditError> {
    read_json(&sig_path(dir, m))
}
