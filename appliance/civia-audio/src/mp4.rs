//! A sanity pass over MP4/M4A box tables before symphonia reads them.
//!
//! symphonia's MP4 reader reserves memory from the entry counts a file announces (4 billion
//! `stts` entries in a 1 kB file aborts the process on allocation). Each table's count is
//! checked here against the bytes its box really holds, so a lying header is refused as
//! corrupt instead.

use std::io::{Read, Seek, SeekFrom};

/// Boxes whose children are boxes, on the way to the sample tables.
const CONTAINERS: [&[u8; 4]; 9] = [
    b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts", b"moof", b"traf", b"mvex",
];
/// Deepest nesting walked (moov/trak/mdia/minf/stbl is 5).
const MAX_DEPTH: u32 = 8;
/// Most boxes walked in one file.
const MAX_BOXES: u32 = 100_000;

/// How far into a file symphonia's probe looks for a container's signature.
pub const PROBE_BYTES: usize = 1 << 20;

/// Where an ISO-BMFF file starts in `head` (the first bytes of the file): the box before the
/// first `ftyp`, wherever the probe would find it (after an ID3 tag, junk…).
pub fn mp4_start(head: &[u8]) -> Option<u64> {
    head.windows(4)
        .enumerate()
        .skip(4)
        .find(|(_, w)| *w == b"ftyp")
        .map(|(i, _)| (i - 4) as u64)
}

/// Checks every sample table's entry count against its box size, from `start`.
pub fn check<R: Read + Seek>(r: &mut R, start: u64) -> Result<(), String> {
    let end = r.seek(SeekFrom::End(0)).map_err(|e| e.to_string())?;
    let mut walked = 0;
    walk(r, start, end, 0, &mut walked)
}

fn walk<R: Read + Seek>(
    r: &mut R,
    mut pos: u64,
    end: u64,
    depth: u32,
    walked: &mut u32,
) -> Result<(), String> {
    while pos + 8 <= end {
        *walked += 1;
        if *walked > MAX_BOXES {
            return Err("too many MP4 boxes".into());
        }
        r.seek(SeekFrom::Start(pos)).map_err(|e| e.to_string())?;
        let mut head = [0u8; 8];
        r.read_exact(&mut head).map_err(|e| e.to_string())?;
        let size32 = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        let kind: [u8; 4] = [head[4], head[5], head[6], head[7]];
        let (size, header) = match size32 {
            0 => (end - pos, 8),
            1 => {
                let mut big = [0u8; 8];
                r.read_exact(&mut big).map_err(|e| e.to_string())?;
                (u64::from_be_bytes(big), 16)
            }
            n => (u64::from(n), 8),
        };
        if size < header || pos.checked_add(size).is_none_or(|e| e > end) {
            // A truncated last box is common (recording cut short): stop walking there.
            return Ok(());
        }
        let body = pos + header;
        let body_len = size - header;
        if CONTAINERS.contains(&&kind) && depth < MAX_DEPTH {
            walk(r, body, body + body_len, depth + 1, walked)?;
        } else {
            table(r, &kind, body, body_len)?;
        }
        pos += size;
    }
    Ok(())
}

fn read_u32<R: Read>(r: &mut R) -> Result<u32, String> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b).map_err(|e| e.to_string())?;
    Ok(u32::from_be_bytes(b))
}

/// The count of a table box must fit in its body.
fn table<R: Read + Seek>(r: &mut R, kind: &[u8; 4], body: u64, len: u64) -> Result<(), String> {
    // Full boxes: version (1) + flags (3), then the fields.
    let entry: Option<(u64, u64)> = match kind {
        b"stts" | b"ctts" => Some((8, 8)),
        b"stsc" => Some((8, 12)),
        b"stco" | b"stss" => Some((8, 4)),
        b"co64" => Some((8, 8)),
        b"stsd" => Some((8, 8)),
        _ => None,
    };
    if entry.is_none() && !matches!(kind, b"stsz" | b"elst" | b"trun" | b"sbgp") {
        return Ok(());
    }
    let bad = |what: &str| Err(format!("inconsistent MP4 table {what:?}"));
    let name = String::from_utf8_lossy(kind).into_owned();
    if len < 16 && kind == b"sbgp" || len < 8 {
        return bad(&name);
    }
    r.seek(SeekFrom::Start(body)).map_err(|e| e.to_string())?;
    let version_flags = read_u32(r)?;
    let (count, offset, per) = match kind {
        b"stsz" => {
            let sample_size = read_u32(r)?;
            let count = u64::from(read_u32(r)?);
            (count, 12, if sample_size == 0 { 4 } else { 0 })
        }
        b"sbgp" => {
            // grouping_type, then (version 1) grouping_type_parameter, then the count.
            let v1 = version_flags >> 24 == 1;
            read_u32(r)?;
            if v1 {
                read_u32(r)?;
            }
            let count = u64::from(read_u32(r)?);
            (count, if v1 { 16 } else { 12 }, 8)
        }
        b"elst" => {
            let count = u64::from(read_u32(r)?);
            (count, 8, if version_flags >> 24 == 1 { 20 } else { 12 })
        }
        b"trun" => {
            let flags = version_flags & 0x00ff_ffff;
            let count = u64::from(read_u32(r)?);
            let optional = 4 * u64::from((flags & 0x1 != 0) as u8 + (flags & 0x4 != 0) as u8);
            let per = 4 * (0..4).filter(|i| flags & (0x100 << i) != 0).count() as u64;
            (count, 8 + optional, per)
        }
        _ => match entry {
            Some((offset, per)) => (u64::from(read_u32(r)?), offset, per),
            None => return Ok(()),
        },
    };
    if offset > len || count.saturating_mul(per) > len - offset {
        return bad(&name);
    }
    // Even with zero-size entries a count beyond what a recording can hold is a lie.
    if count > 100_000_000 {
        return bad(&name);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn mp4_box(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(body);
        v
    }

    fn file(stts_count: u32, entries: usize) -> Vec<u8> {
        let mut stts = vec![0, 0, 0, 0];
        stts.extend_from_slice(&stts_count.to_be_bytes());
        stts.extend(std::iter::repeat_n(1u8, entries * 8));
        let stbl = mp4_box(b"stbl", &mp4_box(b"stts", &stts));
        let minf = mp4_box(b"minf", &stbl);
        let trak = mp4_box(b"trak", &mp4_box(b"mdia", &minf));
        let mut f = mp4_box(b"ftyp", b"M4A \0\0\0\0");
        f.extend(mp4_box(b"moov", &trak));
        f
    }

    #[test]
    fn honest_tables_pass_and_lying_counts_are_refused() {
        assert_eq!(mp4_start(&file(2, 2)), Some(0));
        assert!(check(&mut Cursor::new(file(2, 2)), 0).is_ok());
        assert!(check(&mut Cursor::new(file(3, 2)), 0).is_err());
        assert!(check(&mut Cursor::new(file(u32::MAX, 2)), 0).is_err());
        // Junk or a tag in front does not hide the tables.
        let mut prefixed = vec![0u8; 4];
        prefixed.extend(file(u32::MAX, 2));
        assert_eq!(mp4_start(&prefixed), Some(4));
        assert!(check(&mut Cursor::new(prefixed), 4).is_err());
        // A box claiming more bytes than the file has ends the walk (truncated file).
        let mut cut = file(2, 2);
        cut.truncate(cut.len() - 4);
        assert!(check(&mut Cursor::new(cut), 0).is_ok());
        // An empty non-table box at the end is fine; a 64-bit size does not overflow.
        let mut tail = file(2, 2);
        tail.extend_from_slice(&[0, 0, 0, 8, b'f', b'r', b'e', b'e']);
        assert!(check(&mut Cursor::new(tail), 0).is_ok());
        let mut huge = file(2, 2);
        huge.extend_from_slice(&[
            0, 0, 0, 1, b'm', b'd', b'a', b't', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xf0,
        ]);
        assert!(check(&mut Cursor::new(huge), 0).is_ok());
        assert_eq!(mp4_start(b"RIFF\0\0\0\0WAVE"), None);
        // sbgp: grouping type before the count (FFmpeg writes one for AAC priming).
        let mut sbgp = vec![0, 0, 0, 0];
        sbgp.extend_from_slice(b"roll");
        sbgp.extend_from_slice(&1u32.to_be_bytes());
        sbgp.extend_from_slice(&[0, 0, 0, 23, 0, 0, 0, 1]);
        let stbl = mp4_box(b"stbl", &mp4_box(b"sbgp", &sbgp));
        let mut f = mp4_box(b"ftyp", b"M4A \0\0\0\0");
        f.extend(mp4_box(
            b"moov",
            &mp4_box(b"trak", &mp4_box(b"mdia", &mp4_box(b"minf", &stbl))),
        ));
        assert!(check(&mut Cursor::new(f.clone()), 0).is_ok());
        let n = f.len();
        f[n - 12..n - 8].copy_from_slice(&1000u32.to_be_bytes());
        assert!(check(&mut Cursor::new(f), 0).is_err());
    }
}
