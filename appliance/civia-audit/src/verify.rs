//! Offline verification of a trail: chain, numbering, timestamps, seals and checkpoint.
//!
//! Order of the checks, which decides what the first reported problem is:
//! 1. the checkpoint, if any (signature);
//! 2. segment by segment, oldest first, line by line: the line parses as an entry with valid
//!    fields (else `edited`, or `truncated` for an incomplete last line of a sealed segment),
//!    its `seq` follows the previous one (`deleted` on a gap, `reordered` when it goes back or
//!    the missing seq shows up later in the segment), its `prev` is the previous line's hash
//!    (`edited`), its `ts` does not go back and lies in the segment's month (`edited`);
//! 3. after a segment's lines: its seal — signature and signer (`bad_signature`), then seq
//!    range (`truncated` when lines are missing at the end), last hash and file SHA-256
//!    (`edited`); a segment that is not the last and has no seal is `missing_signature`.
//!
//! So a byte changed inside a sealed segment is reported as `edited` at the first line whose
//! `prev` no longer matches (or at the changed line itself when it no longer parses), before
//! the seal is looked at; `bad_signature` means the seal itself is forged, altered or from
//! another key. A torn last line of the open segment (the crash case) is a warning.

use crate::entry::{line_hash, Entry, GENESIS_HASH};
use crate::fsutil::{self, io_err, segment_path, sig_path, MonthFiles, CHECKPOINT};
use crate::seal::{Checkpoint, SegmentSeal};
use crate::time::{parse_stored_ms, Month};
use crate::AuditError;
use ed25519_dalek::VerifyingKey;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

/// What kind of alteration [`verify`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TamperKind {
    /// A line or a file was modified (chain, seal hash or field check broken).
    Edited,
    /// Entries (or a whole segment) are missing: a `seq` gap.
    Deleted,
    /// Entries are out of order: `seq` goes back.
    Reordered,
    /// A sealed segment is shorter than its seal says.
    Truncated,
    /// A seal or the checkpoint is not validly signed by the expected key.
    BadSignature,
    /// A closed (not last) segment has no seal.
    MissingSignature,
}

impl fmt::Display for TamperKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TamperKind::Edited => "edited",
            TamperKind::Deleted => "deleted",
            TamperKind::Reordered => "reordered",
            TamperKind::Truncated => "truncated",
            TamperKind::BadSignature => "bad_signature",
            TamperKind::MissingSignature => "missing_signature",
        })
    }
}

/// The first bad entry found by [`verify`], e.g.
/// `2026-11.jsonl line 42 (seq 1041): edited: prev hash does not match line 41`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct TamperError {
    /// The file: a segment (`YYYY-MM.jsonl`, also for problems with its seal) or
    /// `checkpoint.json`.
    pub segment: String,
    /// 1-based line number, when the problem is at a line.
    pub line: Option<u64>,
    /// The entry's seq, when readable.
    pub seq: Option<u64>,
    /// What is wrong.
    pub kind: TamperKind,
    /// Details.
    pub detail: String,
}

impl fmt::Display for TamperError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.segment)?;
        if let Some(line) = self.line {
            write!(f, " line {line}")?;
        }
        if let Some(seq) = self.seq {
            write!(f, " (seq {seq})")?;
        }
        write!(f, ": {}: {}", self.kind, self.detail)
    }
}

/// What a [`VerifyWarning`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WarningKind {
    /// The open segment ends with an incomplete or unparsable line: a crash during a write
    /// (the next [`AuditLog::open`](crate::AuditLog::open) cuts it off), or a write in
    /// progress.
    Torn,
    /// A segment older than the checkpoint is still there (a purge was interrupted; the next
    /// purge removes it). Not verified.
    PurgedSegmentPresent,
    /// A range verification starts after a segment without a seal: its start is linked to
    /// that segment's unauthenticated last line.
    UnanchoredRange,
}

/// Something [`verify`] reports without failing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyWarning {
    /// What it is about.
    pub kind: WarningKind,
    /// The file concerned.
    pub segment: String,
    /// 1-based line number, if any.
    pub line: Option<u64>,
    /// Details.
    pub message: String,
}

impl fmt::Display for VerifyWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.segment)?;
        if let Some(line) = self.line {
            write!(f, " line {line}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// A successful verification.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Segments checked.
    pub segments: usize,
    /// Of which sealed (seal checked).
    pub sealed_segments: usize,
    /// Entries checked.
    pub entries: u64,
    /// First seq checked.
    pub first_seq: Option<u64>,
    /// Last seq checked.
    pub last_seq: Option<u64>,
    /// Hash of the last line checked.
    pub last_hash: Option<String>,
    /// Whether the chain starts at a (valid) checkpoint.
    pub checkpoint: bool,
    /// Non-fatal findings (torn last line…).
    pub warnings: Vec<VerifyWarning>,
}

/// Verifies the trail in `dir` against the device's public key, all of it or the segments of
/// the months `range = Some(("YYYY-MM", "YYYY-MM"))` (inclusive). See the module
/// documentation for the order of the checks. Errors other than
/// [`AuditError::Tampered`] are I/O or argument errors.
///
/// Safe to run while the daemon appends: a line being written shows as a torn warning.
pub fn verify(
    dir: &Path,
    public_key: &VerifyingKey,
    range: Option<(&str, &str)>,
) -> Result<VerifyReport, AuditError> {
    let range = match range {
        Some((from, to)) => {
            let (from, to) = (from.parse::<Month>()?, to.parse::<Month>()?);
            if from > to {
                return Err(AuditError::InvalidArgument(format!(
                    "empty month range {from}..{to}"
                )));
            }
            Some((from, to))
        }
        None => None,
    };
    let listing = fsutil::list(dir)?;
    let mut report = VerifyReport::default();
    let checkpoint = if listing.checkpoint {
        Some(load_checkpoint(dir, public_key)?)
    } else {
        None
    };
    let chain_start = checkpoint.as_ref().map(|(_, m)| *m);
    if let Some(start) = chain_start {
        for (m, f) in listing.months.range(..start) {
            report.warnings.push(VerifyWarning {
                kind: WarningKind::PurgedSegmentPresent,
                segment: if f.segment {
                    m.segment_name()
                } else {
                    m.sig_name()
                },
                line: None,
                message: "older than the checkpoint: left over by an interrupted purge".into(),
            });
        }
    }
    let mut cursor = match &checkpoint {
        Some((cp, _)) => Cursor {
            next_seq: cp.first_seq,
            prev_hash: cp.prev_hash.clone(),
            prev_desc: "the checkpoint's prev_hash".into(),
            last_ts: 0,
        },
        None => Cursor {
            next_seq: 1,
            prev_hash: GENESIS_HASH.into(),
            prev_desc: "the genesis hash (64 zeros)".into(),
            last_ts: 0,
        },
    };
    report.checkpoint = checkpoint.is_some();
    let chain: Vec<(Month, MonthFiles)> = listing
        .months
        .iter()
        .filter(|(m, _)| chain_start.is_none_or(|s| **m >= s))
        .map(|(m, f)| (*m, *f))
        .collect();
    if let Some((from, _)) = range {
        if let Some((pm, pf)) = chain.iter().rev().find(|(m, _)| *m < from) {
            cursor = anchor_before(dir, *pm, *pf, public_key, &mut report)?;
        }
    }
    let last_segment = listing.last_segment();
    for (month, files) in chain {
        if range.is_some_and(|(from, to)| month < from || month > to) {
            continue;
        }
        let name = month.segment_name();
        if !files.segment {
            return Err(tamper(
                &name,
                None,
                None,
                TamperKind::Deleted,
                format!(
                    "the segment is missing but its seal {} is present",
                    month.sig_name()
                ),
            ));
        }
        let seal = if files.sig {
            Some(load_seal(dir, month)?)
        } else {
            None
        };
        let is_last = Some(month) == last_segment;
        check_segment(
            dir,
            month,
            seal.as_ref(),
            is_last,
            public_key,
            &mut cursor,
            &mut report,
        )?;
        report.segments += 1;
        if seal.is_some() {
            report.sealed_segments += 1;
        }
    }
    Ok(report)
}

/// Where the chain stands before the next line.
struct Cursor {
    next_seq: u64,
    prev_hash: String,
    /// What `prev_hash` is, for messages ("line 41").
    prev_desc: String,
    last_ts: i64,
}

fn tamper(
    segment: &str,
    line: Option<u64>,
    seq: Option<u64>,
    kind: TamperKind,
    detail: impl Into<String>,
) -> AuditError {
    AuditError::Tampered(Box::new(TamperError {
        segment: segment.to_string(),
        line,
        seq,
        kind,
        detail: detail.into(),
    }))
}

fn load_checkpoint(dir: &Path, key: &VerifyingKey) -> Result<(Checkpoint, Month), AuditError> {
    let path = dir.join(CHECKPOINT);
    let bytes = std::fs::read(&path).map_err(|e| io_err(&path, e))?;
    let cp: Checkpoint = serde_json::from_slice(&bytes).map_err(|e| {
        tamper(
            CHECKPOINT,
            None,
            None,
            TamperKind::Edited,
            format!("unreadable: {e}"),
        )
    })?;
    cp.check(key)
        .map_err(|why| tamper(CHECKPOINT, None, None, TamperKind::BadSignature, why))?;
    let month = Month::from_segment_name(&cp.first_segment).ok_or_else(|| {
        tamper(
            CHECKPOINT,
            None,
            None,
            TamperKind::Edited,
            format!("first_segment `{}` is not a segment name", cp.first_segment),
        )
    })?;
    Ok((cp, month))
}

fn load_seal(dir: &Path, month: Month) -> Result<SegmentSeal, AuditError> {
    let path = sig_path(dir, month);
    let bytes = std::fs::read(&path).map_err(|e| io_err(&path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        tamper(
            &month.segment_name(),
            None,
            None,
            TamperKind::BadSignature,
            format!("{}: unreadable seal: {e}", month.sig_name()),
        )
    })
}

/// The chain head just before a range that does not start at the beginning.
fn anchor_before(
    dir: &Path,
    month: Month,
    files: MonthFiles,
    key: &VerifyingKey,
    report: &mut VerifyReport,
) -> Result<Cursor, AuditError> {
    let name = month.segment_name();
    if files.sig {
        let seal = load_seal(dir, month)?;
        seal.check(key).map_err(|why| {
            tamper(
                &name,
                None,
                None,
                TamperKind::BadSignature,
                format!("{}: {why}", month.sig_name()),
            )
        })?;
        return Ok(Cursor {
            next_seq: seal.last_seq + 1,
            prev_hash: seal.last_hash,
            prev_desc: format!("the sealed last hash of {name}"),
            last_ts: 0,
        });
    }
    let path = segment_path(dir, month);
    let tail = fsutil::read_tail(&path)?;
    let Some((_, line)) = tail.last_line else {
        return Err(tamper(
            &name,
            None,
            None,
            TamperKind::Truncated,
            "segment has no complete line",
        ));
    };
    let entry: Entry = serde_json::from_slice(&line).map_err(|e| {
        tamper(
            &name,
            None,
            None,
            TamperKind::Edited,
            format!("last line is not a valid entry: {e}"),
        )
    })?;
    report.warnings.push(VerifyWarning {
        kind: WarningKind::UnanchoredRange,
        segment: name.clone(),
        line: None,
        message: "no seal: the range is linked to its unauthenticated last line".into(),
    });
    Ok(Cursor {
        next_seq: entry.seq + 1,
        prev_hash: line_hash(&line),
        prev_desc: format!("the last line of {name}"),
        last_ts: parse_stored_ms(&entry.ts).unwrap_or(0),
    })
}

#[derive(Deserialize)]
struct SeqOnly {
    seq: Option<u64>,
}

/// The `seq` of a line that may not be a valid entry, for messages.
fn seq_hint(line: &[u8]) -> Option<u64> {
    serde_json::from_slice::<SeqOnly>(line)
        .ok()
        .and_then(|s| s.seq)
}

fn check_segment(
    dir: &Path,
    month: Month,
    seal: Option<&SegmentSeal>,
    is_last: bool,
    key: &VerifyingKey,
    cur: &mut Cursor,
    report: &mut VerifyReport,
) -> Result<(), AuditError> {
    let name = month.segment_name();
    let path = segment_path(dir, month);
    let file = File::open(&path).map_err(|e| io_err(&path, e))?;
    let mut reader = BufReader::new(file);
    let mut hasher = Sha256::new();
    let open = seal.is_none() && is_last;
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    let mut first: Option<u64> = None;
    let mut last: Option<(u64, u64)> = None; // (line, seq)
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| io_err(&path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf);
        line_no += 1;
        let complete = buf.last() == Some(&b'\n');
        let content = if complete { &buf[..n - 1] } else { &buf[..] };
        let at_end = reader.fill_buf().map_err(|e| io_err(&path, e))?.is_empty();
        let seq = seq_hint(content);
        let torn = |why: &str, report: &mut VerifyReport| {
            report.warnings.push(VerifyWarning {
                kind: WarningKind::Torn,
                segment: name.clone(),
                line: Some(line_no),
                message: format!(
                    "torn last line ({why}, {} bytes): a write interrupted by a crash",
                    content.len()
                ),
            });
        };
        if !complete {
            if open {
                torn("no newline", report);
                break;
            }
            // Within the sealed seq range: cut short; past it: bytes added after sealing.
            return Err(match seal {
                Some(s) if s.last_seq < cur.next_seq => tamper(
                    &name,
                    Some(line_no),
                    seq,
                    TamperKind::Edited,
                    "incomplete line added after the segment was sealed",
                ),
                _ => tamper(
                    &name,
                    Some(line_no),
                    seq,
                    TamperKind::Truncated,
                    "incomplete last line: the segment was cut short",
                ),
            });
        }
        let entry: Entry = match serde_json::from_slice(content) {
            Ok(e) => e,
            Err(_) if open && at_end => {
                torn("not a valid entry", report);
                break;
            }
            Err(e) => {
                return Err(tamper(
                    &name,
                    Some(line_no),
                    seq,
                    TamperKind::Edited,
                    format!("not a valid entry: {e}"),
                ))
            }
        };
        let at = |kind, detail: String| tamper(&name, Some(line_no), Some(entry.seq), kind, detail);
        if let Err(e) = entry.validate() {
            return Err(at(TamperKind::Edited, format!("bad field: {e}")));
        }
        if entry.seq > cur.next_seq {
            let missing = cur.next_seq;
            return Err(match find_seq(&mut reader, missing, line_no, &path)? {
                Some(l) => at(
                    TamperKind::Reordered,
                    format!("seq {missing} was expected here; it is at line {l}"),
                ),
                None if entry.seq - missing == 1 => at(
                    TamperKind::Deleted,
                    format!("entry seq {missing} is missing"),
                ),
                None => at(
                    TamperKind::Deleted,
                    format!("entries seq {missing}..={} are missing", entry.seq - 1),
                ),
            });
        }
        if entry.seq < cur.next_seq {
            return Err(at(
                TamperKind::Reordered,
                format!("seq goes backwards: {} was expected", cur.next_seq),
            ));
        }
        if entry.prev != cur.prev_hash {
            return Err(at(
                TamperKind::Edited,
                format!("prev hash does not match {}", cur.prev_desc),
            ));
        }
        let ts = parse_stored_ms(&entry.ts).unwrap_or(0);
        if ts < cur.last_ts {
            return Err(at(
                TamperKind::Edited,
                format!("ts {} goes backwards", entry.ts),
            ));
        }
        if Month::of_ms(ts) != month {
            return Err(at(
                TamperKind::Edited,
                format!("ts {} is not in {month}", entry.ts),
            ));
        }
        cur.next_seq = entry.seq + 1;
        cur.prev_hash = line_hash(content);
        cur.prev_desc = format!("line {line_no}");
        cur.last_ts = ts;
        first.get_or_insert(entry.seq);
        last = Some((line_no, entry.seq));
        report.entries += 1;
        report.first_seq.get_or_insert(entry.seq);
        report.last_seq = Some(entry.seq);
        report.last_hash = Some(cur.prev_hash.clone());
    }
    cur.prev_desc = format!("the last line of {name}");
    match seal {
        Some(seal) => check_seal(
            seal,
            &name,
            key,
            first,
            last,
            &cur.prev_hash,
            &hasher.finalize(),
        ),
        None if !is_last => Err(tamper(
            &name,
            None,
            None,
            TamperKind::MissingSignature,
            format!("closed segment without its seal {}", month.sig_name()),
        )),
        None => Ok(()),
    }
}

/// Line number of `wanted` among the rest of the segment (to tell reordering from deletion).
fn find_seq(
    reader: &mut BufReader<File>,
    wanted: u64,
    mut line_no: u64,
    path: &Path,
) -> Result<Option<u64>, AuditError> {
    let mut buf = Vec::new();
    loop {
        buf.clear();
        if reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| io_err(path, e))?
            == 0
        {
            return Ok(None);
        }
        line_no += 1;
        if seq_hint(buf.strip_suffix(b"\n").unwrap_or(&buf)) == Some(wanted) {
            return Ok(Some(line_no));
        }
    }
}

fn check_seal(
    seal: &SegmentSeal,
    name: &str,
    key: &VerifyingKey,
    first: Option<u64>,
    last: Option<(u64, u64)>,
    last_hash: &str,
    sha256: &[u8],
) -> Result<(), AuditError> {
    let sig_name = name.replace(".jsonl", ".sig");
    let seg = |line, seq, kind, detail: String| tamper(name, line, seq, kind, detail);
    seal.check(key).map_err(|why| {
        seg(
            None,
            None,
            TamperKind::BadSignature,
            format!("{sig_name}: {why}"),
        )
    })?;
    if seal.segment != name {
        return Err(seg(
            None,
            None,
            TamperKind::BadSignature,
            format!("{sig_name} seals {}, not this segment", seal.segment),
        ));
    }
    let Some((last_line, last_seq)) = last else {
        return Err(seg(
            None,
            None,
            TamperKind::Truncated,
            format!(
                "segment is empty but sealed with seq {}..={}",
                seal.first_seq, seal.last_seq
            ),
        ));
    };
    if last_seq < seal.last_seq {
        return Err(seg(
            Some(last_line + 1),
            Some(last_seq + 1),
            TamperKind::Truncated,
            format!(
                "segment ends at seq {last_seq} but is sealed up to seq {}",
                seal.last_seq
            ),
        ));
    }
    if last_seq > seal.last_seq {
        let extra = last_seq - seal.last_seq;
        return Err(seg(
            Some(last_line + 1 - extra),
            Some(seal.last_seq + 1),
            TamperKind::Edited,
            format!(
                "{extra} entries added after the segment was sealed at seq {}",
                seal.last_seq
            ),
        ));
    }
    if first != Some(seal.first_seq) {
        return Err(seg(
            Some(1),
            first,
            TamperKind::Edited,
            format!(
                "first seq differs from the sealed first seq {}",
                seal.first_seq
            ),
        ));
    }
    if last_hash != seal.last_hash {
        return Err(seg(
            Some(last_line),
            Some(last_seq),
            TamperKind::Edited,
            "last line does not match the sealed last hash".into(),
        ));
    }
    if hex::encode(sha256) != seal.sha256 {
        return Err(seg(
            None,
            None,
            TamperKind::Edited,
            "file does not match its sealed SHA-256".into(),
        ));
    }
    Ok(())
}
