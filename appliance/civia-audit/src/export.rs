//! Export of a time range, for the DPO or an authority: JSON lines exactly as stored, or CSV.
//!
//! Export reads the files; it does not verify them (run [`verify`](crate::verify) first) and
//! does not log itself: the daemon appends an `audit.read` event for whoever asked.

use crate::entry::Entry;
use crate::fsutil::{self, io_err, segment_path};
use crate::time::{parse_stored_ms, system_time_to_ms, Month};
use crate::AuditError;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::time::SystemTime;

/// Output format of [`export`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// One JSON object per line, the stored bytes unchanged (hashes still check).
    Json,
    /// RFC 4180 CSV (CRLF line ends), header row [`CSV_COLUMNS`]; empty cells for absent
    /// fields; `detail` as compact JSON.
    Csv,
}

/// The CSV header, in entry field order.
pub const CSV_COLUMNS: [&str; 16] = [
    "seq",
    "ts",
    "prev",
    "event",
    "request_id",
    "user",
    "role",
    "use_case",
    "model",
    "model_sha256",
    "prompt_tokens",
    "completion_tokens",
    "status",
    "prompt_sha256",
    "output_sha256",
    "detail",
];

/// Writes the entries with `from <= ts < to` to `out`; returns how many. A torn last line of
/// the open segment is skipped; any other unreadable line is an error. Parse command-line
/// bounds with [`parse_rfc3339`](crate::parse_rfc3339).
pub fn export<W: Write + ?Sized>(
    dir: &Path,
    from: SystemTime,
    to: SystemTime,
    format: ExportFormat,
    out: &mut W,
) -> Result<u64, AuditError> {
    let out_err = |e| io_err(Path::new("<export output>"), e);
    let (from, to) = (system_time_to_ms(from)?, system_time_to_ms(to)?);
    if format == ExportFormat::Csv {
        write_csv_row(out, CSV_COLUMNS.iter().map(|c| c.to_string())).map_err(out_err)?;
    }
    if to <= from {
        return Ok(0);
    }
    let (first, last) = (Month::of_ms(from), Month::of_ms(to - 1));
    let listing = fsutil::list(dir)?;
    let last_segment = listing.last_segment();
    let mut count = 0;
    for (month, files) in listing.months.range(first..=last) {
        if !files.segment {
            continue;
        }
        let path = segment_path(dir, *month);
        let mut reader = BufReader::new(File::open(&path).map_err(|e| io_err(&path, e))?);
        let mut buf = Vec::new();
        let mut line_no = 0u64;
        loop {
            buf.clear();
            if reader
                .read_until(b'\n', &mut buf)
                .map_err(|e| io_err(&path, e))?
                == 0
            {
                break;
            }
            line_no += 1;
            let at_end = reader.fill_buf().map_err(|e| io_err(&path, e))?.is_empty();
            let torn_ok = at_end && Some(*month) == last_segment;
            let Some(line) = buf.strip_suffix(b"\n") else {
                if torn_ok {
                    break;
                }
                return Err(corrupt(&path, line_no, "incomplete line".into()));
            };
            let entry: Entry = match serde_json::from_slice(line) {
                Ok(e) => e,
                Err(_) if torn_ok => break,
                Err(e) => return Err(corrupt(&path, line_no, e.to_string())),
            };
            let ts = parse_stored_ms(&entry.ts)
                .ok_or_else(|| corrupt(&path, line_no, format!("bad ts `{}`", entry.ts)))?;
            if ts < from || ts >= to {
                continue;
            }
            match format {
                ExportFormat::Json => out
                    .write_all(line)
                    .and_then(|()| out.write_all(b"\n"))
                    .map_err(out_err)?,
                ExportFormat::Csv => write_csv_row(out, csv_cells(&entry)).map_err(out_err)?,
            }
            count += 1;
        }
    }
    out.flush().map_err(out_err)?;
    Ok(count)
}

fn corrupt(path: &Path, line: u64, reason: String) -> AuditError {
    AuditError::Corrupt {
        path: path.to_path_buf(),
        reason: format!("line {line}: {reason}"),
    }
}

fn csv_cells(e: &Entry) -> impl Iterator<Item = String> {
    let s = |v: &Option<String>| v.clone().unwrap_or_default();
    let n = |v: Option<u32>| v.map(|x| x.to_string()).unwrap_or_default();
    [
        e.seq.to_string(),
        e.ts.clone(),
        e.prev.clone(),
        e.event.clone(),
        s(&e.request_id),
        s(&e.user),
        s(&e.role),
        s(&e.use_case),
        s(&e.model),
        s(&e.model_sha256),
        n(e.prompt_tokens),
        n(e.completion_tokens),
        e.status.map(|x| x.to_string()).unwrap_or_default(),
        s(&e.prompt_sha256),
        s(&e.output_sha256),
        e.detail.as_ref().map(|d| d.to_string()).unwrap_or_default(),
    ]
    .into_iter()
}

/// One RFC 4180 record: cells containing `,`, `"`, CR or LF (or edge spaces) are quoted,
/// with inner quotes doubled.
fn write_csv_row<W: Write + ?Sized>(
    out: &mut W,
    cells: impl Iterator<Item = String>,
) -> std::io::Result<()> {
    let mut row = String::new();
    for (i, cell) in cells.enumerate() {
        if i > 0 {
            row.push(',');
        }
        let needs_quotes =
            cell.contains([',', '"', '\r', '\n']) || cell.starts_with(' ') || cell.ends_with(' ');
        if needs_quotes {
            row.push('"');
            row.push_str(&cell.replace('"', "\"\""));
            row.push('"');
        } else {
            row.push_str(&cell);
        }
    }
    row.push_str("\r\n");
    out.write_all(row.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quoting() {
        let mut out = Vec::new();
        let cells = ["plain", "a,b", "say \"hi\"", "two\nlines", " pad", ""];
        write_csv_row(&mut out, cells.iter().map(|c| c.to_string())).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "plain,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",\" pad\",\r\n"
        );
    }
}
