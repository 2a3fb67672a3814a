//! The bundle file:
//!
//! ```text
//! offset 0   "CIVIABDL"                      8 bytes magic
//! offset 8   format version, u32 big-endian  (1)
//! offset 12  header length H, u32 big-endian (at most HEADER_MAX)
//! offset 16  header: H bytes of JSON {"format":1,"roots":[Envelope...],"manifest":Envelope}
//! 16+H       the payloads, in the manifest's order, back to back, exactly their signed sizes
//! ```
//!
//! Nothing may follow the last payload. `roots` carries root metadata newer than the one in
//! the image (rotations), oldest first, so a box that has been offline for years learns every
//! rotation from the bundle itself.

use std::io::{Read, Write};

use serde::{Deserialize, Serialize};

use crate::meta::Envelope;
use crate::FormatError;

pub const MAGIC: &[u8; 8] = b"CIVIABDL";
pub const FORMAT_VERSION: u32 = 1;
pub const HEADER_MAX: u64 = 1 << 20;
pub const PREAMBLE_LEN: u64 = 16;
/// Most root rotations a bundle may carry.
pub const MAX_ROOTS: usize = 32;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub format: u32,
    pub roots: Vec<Envelope>,
    pub manifest: Envelope,
}

impl Header {
    /// Parses header JSON (the bytes after the preamble). Hostile input: bounded, no panic.
    pub fn parse(bytes: &[u8]) -> Result<Header, FormatError> {
        if bytes.len() as u64 > HEADER_MAX {
            return Err(FormatError::HeaderTooLarge(bytes.len() as u64));
        }
        let h: Header = serde_json::from_slice(bytes)
            .map_err(|e| FormatError::Malformed(format!("bundle header: {e}")))?;
        if h.format != FORMAT_VERSION {
            return Err(FormatError::UnsupportedFormat(h.format));
        }
        if h.roots.len() > MAX_ROOTS {
            return Err(FormatError::Malformed("too many root rotations".into()));
        }
        Ok(h)
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>, FormatError> {
        serde_json::to_vec(self).map_err(|e| FormatError::Malformed(e.to_string()))
    }

    /// Writes magic, format, length and header.
    pub fn write_preamble<W: Write>(&self, w: &mut W) -> Result<u64, FormatError> {
        let body = self.to_bytes()?;
        if body.len() as u64 > HEADER_MAX {
            return Err(FormatError::HeaderTooLarge(body.len() as u64));
        }
        w.write_all(MAGIC)?;
        w.write_all(&FORMAT_VERSION.to_be_bytes())?;
        w.write_all(&(body.len() as u32).to_be_bytes())?;
        w.write_all(&body)?;
        Ok(PREAMBLE_LEN + body.len() as u64)
    }
}

fn read_exact_or_truncated<R: Read + ?Sized>(
    r: &mut R,
    buf: &mut [u8],
    what: &str,
) -> Result<(), FormatError> {
    r.read_exact(buf).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            FormatError::Truncated(format!("ends inside the {what}"))
        } else {
            FormatError::Io(e)
        }
    })
}

/// Reads the preamble and header from the start of a bundle; returns the header and the
/// offset of the first payload. Reads exactly that many bytes.
pub fn read_header<R: Read + ?Sized>(r: &mut R) -> Result<(Header, u64), FormatError> {
    let mut pre = [0u8; PREAMBLE_LEN as usize];
    read_exact_or_truncated(r, &mut pre, "preamble")?;
    let (magic, rest) = pre.split_at(8);
    if magic != MAGIC {
        return Err(FormatError::BadMagic);
    }
    let (fmt, len) = rest.split_at(4);
    let fmt = u32::from_be_bytes([fmt[0], fmt[1], fmt[2], fmt[3]]);
    if fmt != FORMAT_VERSION {
        return Err(FormatError::UnsupportedFormat(fmt));
    }
    let len = u64::from(u32::from_be_bytes([len[0], len[1], len[2], len[3]]));
    if len > HEADER_MAX {
        return Err(FormatError::HeaderTooLarge(len));
    }
    let mut body = vec![0u8; len as usize];
    read_exact_or_truncated(r, &mut body, "header")?;
    Ok((Header::parse(&body)?, PREAMBLE_LEN + len))
}

/// Parses a whole in-memory bundle prefix (preamble + header); for tools and fuzzing.
pub fn parse_bundle_prefix(bytes: &[u8]) -> Result<(Header, u64), FormatError> {
    let mut cur = bytes;
    read_header(&mut cur)
}
