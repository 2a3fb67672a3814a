//! Scanned images (PNG, JPEG, TIFF): recognised by their magic bytes, and the size of each
//! page read from the headers only (PNG `IHDR`, JPEG `SOFn`, TIFF image file directories), so
//! that an image too large for OCR is refused before any OCR program sees it. Nothing is
//! decoded here; the checks are bounded by the input's length. A file cut short (no PNG
//! `IEND`, no JPEG end-of-image marker after the scan data, TIFF strips past the end) is
//! refused as corrupt: OCR of half a page would pass for the whole.

use crate::error::Error;
use crate::Format;
use std::collections::HashSet;

/// Most pages read from a TIFF's chain of image file directories.
const MAX_TIFF_PAGES: usize = 10_000;

/// The image format of `bytes`, from its magic number.
pub(crate) fn detect(bytes: &[u8]) -> Option<Format> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(Format::Png)
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(Format::Jpeg)
    } else if bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*") {
        Some(Format::Tiff)
    } else {
        None
    }
}

/// Other image formats, named for the refusal.
pub(crate) fn unsupported(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("GIF image (convert it to PNG)")
    } else if bytes.starts_with(b"RIFF") && bytes.get(8..12) == Some(b"WEBP") {
        Some("WebP image (convert it to PNG)")
    } else if bytes.starts_with(b"BM") && bytes.get(6..10) == Some(b"\0\0\0\0") {
        Some("BMP image (convert it to PNG)")
    } else if bytes.starts_with(b"II+\0") || bytes.starts_with(b"MM\0+") {
        Some("BigTIFF image (save it as a standard TIFF or PNG)")
    } else {
        None
    }
}

/// The size (width, height in pixels) of each page of the image.
pub(crate) fn pages(bytes: &[u8], format: Format) -> Result<Vec<(u32, u32)>, Error> {
    let corrupt = |reason: &str| Error::Corrupt {
        format,
        reason: reason.to_owned(),
    };
    let size = match format {
        Format::Png => png(bytes),
        Format::Jpeg => jpeg(bytes),
        Format::Tiff => return tiff(bytes).map_err(|r| corrupt(&r)),
        _ => Err("not an image".to_owned()),
    };
    size.map(|s| vec![s]).map_err(|r| corrupt(&r))
}

fn be_u16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn positive(w: u32, h: u32) -> Result<(u32, u32), String> {
    if w == 0 || h == 0 {
        return Err(format!("image of {w} × {h} pixels"));
    }
    Ok((w, h))
}

fn png(b: &[u8]) -> Result<(u32, u32), String> {
    // Signature, then the IHDR chunk first: length 13, type, width, height.
    if be_u32(b, 8) != Some(13) || b.get(12..16) != Some(b"IHDR") {
        return Err("missing IHDR header".into());
    }
    let (w, h) = (be_u32(b, 16), be_u32(b, 20));
    let (Some(w), Some(h)) = (w, h) else {
        return Err("truncated IHDR header".into());
    };
    if w > i32::MAX as u32 || h > i32::MAX as u32 {
        return Err("invalid IHDR dimensions".into());
    }
    // The image ends with an IEND chunk (a few bytes of padding after it are tolerated).
    let tail = &b[b.len().saturating_sub(64).max(33).min(b.len())..];
    if !tail.windows(4).any(|w| w == b"IEND") {
        return Err("truncated PNG (no IEND chunk)".into());
    }
    positive(w, h)
}

fn jpeg(b: &[u8]) -> Result<(u32, u32), String> {
    let mut at = 2;
    let mut size = None;
    loop {
        // Markers are 0xFF, any 0xFF fill bytes, then the code.
        if b.get(at) != Some(&0xFF) {
            return Err(format!("no marker at offset {at}"));
        }
        while b.get(at) == Some(&0xFF) {
            at += 1;
        }
        let Some(&code) = b.get(at) else {
            return Err("truncated JPEG (in the headers)".into());
        };
        at += 1;
        match code {
            0x01 | 0xD0..=0xD7 => continue,
            0xD9 => return Err("end of image before the scan data".into()),
            0xDA => break,
            _ => {}
        }
        let len = usize::from(be_u16(b, at).ok_or("truncated JPEG (in the headers)")?);
        if len < 2 || at + len > b.len() {
            return Err("truncated JPEG (in the headers)".into());
        }
        // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC): precision, height, width.
        if matches!(code, 0xC0..=0xCF) && !matches!(code, 0xC4 | 0xC8 | 0xCC) {
            let (h, w) = (be_u16(b, at + 3), be_u16(b, at + 5));
            let (Some(h), Some(w)) = (h, w) else {
                return Err("truncated frame header".into());
            };
            if h == 0 {
                return Err("height defined later in the file (DNL): not supported".into());
            }
            size = Some((u32::from(w), u32::from(h)));
        }
        at += len;
    }
    let size = size.ok_or("no frame header (SOF) before the scan data")?;
    // Inside entropy-coded data a 0xFF is followed by 0x00 or a restart marker, so an
    // end-of-image marker after the scan start is the real end: without it the file was cut.
    if !b[at..].windows(2).any(|w| w == [0xFF, 0xD9]) {
        return Err("truncated JPEG (no end-of-image marker)".into());
    }
    positive(size.0, size.1)
}

/// A TIFF reader over the whole file, in its byte order.
struct Tiff<'a> {
    b: &'a [u8],
    little: bool,
}

impl Tiff<'_> {
    fn u16(&self, at: usize) -> Option<u16> {
        let s: [u8; 2] = self.b.get(at..at.checked_add(2)?)?.try_into().ok()?;
        Some(if self.little {
            u16::from_le_bytes(s)
        } else {
            u16::from_be_bytes(s)
        })
    }
    fn u32(&self, at: usize) -> Option<u32> {
        let s: [u8; 4] = self.b.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(if self.little {
            u32::from_le_bytes(s)
        } else {
            u32::from_be_bytes(s)
        })
    }
    /// The values of a SHORT or LONG entry at `entry` (inline when they fit in 4 bytes).
    fn values(&self, entry: usize) -> Option<Vec<u32>> {
        let (kind, count) = (self.u16(entry + 2)?, self.u32(entry + 4)? as usize);
        let width = match kind {
            3 => 2,
            4 => 4,
            _ => return None,
        };
        let bytes = count.checked_mul(width)?;
        if bytes > self.b.len() {
            return None;
        }
        let base = if bytes <= 4 {
            entry + 8
        } else {
            self.u32(entry + 8)? as usize
        };
        (0..count)
            .map(|i| {
                let at = base.checked_add(i * width)?;
                if width == 2 {
                    self.u16(at).map(u32::from)
                } else {
                    self.u32(at)
                }
            })
            .collect()
    }
}

fn tiff(b: &[u8]) -> Result<Vec<(u32, u32)>, String> {
    let t = Tiff {
        b,
        little: b.starts_with(b"II"),
    };
    let mut next = t.u32(4).ok_or("truncated TIFF header")? as usize;
    let mut seen = HashSet::new();
    let mut pages = Vec::new();
    while next != 0 {
        if !seen.insert(next) {
            return Err("the image directories form a loop".into());
        }
        if pages.len() >= MAX_TIFF_PAGES {
            return Err(format!("more than {MAX_TIFF_PAGES} pages"));
        }
        let count = usize::from(t.u16(next).ok_or("truncated TIFF (image directory)")?);
        let (mut w, mut h) = (None, None);
        let (mut offsets, mut lengths) = (None, None);
        for i in 0..count {
            let entry = next + 2 + 12 * i;
            let tag = t.u16(entry).ok_or("truncated TIFF (image directory)")?;
            let first = || t.values(entry).and_then(|v| v.first().copied());
            match tag {
                256 => w = first(),
                257 => h = first(),
                273 | 324 => offsets = t.values(entry),
                279 | 325 => lengths = t.values(entry),
                _ => {}
            }
        }
        let (Some(w), Some(h)) = (w, h) else {
            return Err(format!("page {} has no dimensions", pages.len() + 1));
        };
        let (Some(offsets), Some(lengths)) = (offsets, lengths) else {
            return Err(format!("page {} has no image data", pages.len() + 1));
        };
        let end = offsets
            .iter()
            .zip(&lengths)
            .map(|(&o, &l)| u64::from(o) + u64::from(l))
            .max()
            .unwrap_or(0);
        if offsets.len() != lengths.len() || end > b.len() as u64 {
            return Err(format!(
                "truncated TIFF (page {} ends past the file)",
                pages.len() + 1
            ));
        }
        pages.push(positive(w, h)?);
        next = t
            .u32(next + 2 + 12 * count)
            .ok_or("truncated TIFF (image directory)")? as usize;
    }
    if pages.is_empty() {
        return Err("no image directory".into());
    }
    Ok(pages)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png_header(w: u32, h: u32) -> Vec<u8> {
        let mut b = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        b.extend_from_slice(&w.to_be_bytes());
        b.extend_from_slice(&h.to_be_bytes());
        b.extend_from_slice(&[8, 0, 0, 0, 0, 0, 0, 0, 0]);
        b.extend_from_slice(b"\0\0\0\0IEND\xaeB`\x82");
        b
    }

    #[test]
    fn png_sizes_and_truncation() {
        let b = png_header(100_000, 100_000);
        assert_eq!(detect(&b), Some(Format::Png));
        assert_eq!(pages(&b, Format::Png).unwrap(), vec![(100_000, 100_000)]);
        assert!(pages(&b[..b.len() - 12], Format::Png).is_err());
        assert!(pages(&png_header(0, 5), Format::Png).is_err());
        assert!(pages(&b[..20], Format::Png).is_err());
    }

    #[test]
    fn jpeg_sizes_and_truncation() {
        // SOI, APP0 (len 4), SOF0 (len 11: 8 bits, 300 × 200, 1 component), SOS, data, EOI.
        let mut b = vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 4, 0, 0];
        b.extend_from_slice(&[0xFF, 0xC0, 0, 11, 8, 0, 200, 1, 44, 1, 1, 0x11, 0]);
        b.extend_from_slice(&[0xFF, 0xDA, 0, 2, 0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD9]);
        assert_eq!(detect(&b), Some(Format::Jpeg));
        assert_eq!(pages(&b, Format::Jpeg).unwrap(), vec![(300, 200)]);
        for cut in [3, 9, 15, b.len() - 2] {
            assert!(pages(&b[..cut], Format::Jpeg).is_err(), "{cut}");
        }
    }

    #[test]
    fn tiff_pages_loops_and_truncation() {
        // Little-endian, one IFD at 8 with width, length, strip offset and byte count.
        let ifd = |w: u16, h: u16, next: u32| {
            let mut d = 4u16.to_le_bytes().to_vec();
            for (tag, kind, value) in [
                (256u16, 3u16, w as u32),
                (257, 3, h as u32),
                (273, 4, 0),
                (279, 4, 8),
            ] {
                d.extend_from_slice(&tag.to_le_bytes());
                d.extend_from_slice(&kind.to_le_bytes());
                d.extend_from_slice(&1u32.to_le_bytes());
                d.extend_from_slice(&value.to_le_bytes());
            }
            d.extend_from_slice(&next.to_le_bytes());
            d
        };
        let mut b = b"II*\0\x08\0\0\0".to_vec();
        b.extend(ifd(2480, 3508, 8 + 54));
        b.extend(ifd(10, 20, 0));
        assert_eq!(detect(&b), Some(Format::Tiff));
        assert_eq!(
            pages(&b, Format::Tiff).unwrap(),
            vec![(2480, 3508), (10, 20)]
        );
        let mut looped = b"II*\0\x08\0\0\0".to_vec();
        looped.extend(ifd(1, 1, 8));
        assert!(pages(&looped, Format::Tiff).is_err());
        assert!(pages(&b[..40], Format::Tiff).is_err());
    }
}
