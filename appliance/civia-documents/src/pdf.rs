//! PDF text extraction with `lopdf`.
//!
//! `lopdf` is a maintained pure-Rust parser, but like most PDF parsers it may still panic
//! (index or arithmetic overflow) on hostile input. The whole extraction therefore runs inside
//! `std::panic::catch_unwind`: a panic becomes `Error::Corrupt` and the server thread lives on.
//! `AssertUnwindSafe` is sound here because nothing that crosses the boundary is observed after
//! a panic: the closure only reads the input slice and builds its own values, which are dropped
//! with the unwinding. (The process-wide panic hook still prints the panic message to stderr;
//! a library must not replace it.)

use std::panic::{catch_unwind, AssertUnwindSafe};

use lopdf::{Document, LoadOptions};

use crate::error::Error;
use crate::text::{Break, Sink};
use crate::{Format, Limits};

/// What the PDF walk found besides the text.
pub(crate) struct PdfInfo {
    /// Number of pages in the document.
    pub(crate) pages: usize,
    /// Pages were left out because of `max_pdf_pages`.
    pub(crate) skipped_pages: bool,
    /// The cross-reference data was broken and had to be repaired (e.g. a truncated file).
    pub(crate) repaired: bool,
    /// Size in points (width, height; `UserUnit` applied) of each page read, when its media
    /// box is readable: what OCR needs to choose a rendering resolution.
    pub(crate) sizes: Vec<Option<(f32, f32)>>,
}

/// Text of a PDF, into `sink`, pages separated by form feeds and by page breaks (a page that
/// cannot be read is an empty page, so later pages keep their numbers).
pub(crate) fn pdf_text(bytes: &[u8], limits: &Limits, sink: &mut Sink) -> Result<PdfInfo, Error> {
    guarded(|| extract(bytes, limits, sink))
}

/// Runs `f`, turning a panic into `Error::Corrupt` (see the module documentation).
fn guarded<T>(f: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned());
            Err(corrupt(format!("the PDF parser panicked: {what}")))
        }
    }
}

fn corrupt(reason: String) -> Error {
    Error::Corrupt {
        format: Format::Pdf,
        reason,
    }
}

/// Whether the raw bytes declare encryption (used when the parser gives up).
fn declares_encryption(bytes: &[u8]) -> bool {
    bytes.windows(8).any(|w| w == b"/Encrypt")
}

fn extract(bytes: &[u8], limits: &Limits, sink: &mut Sink) -> Result<PdfInfo, Error> {
    let max_inflate = usize::try_from(limits.max_uncompressed_bytes).unwrap_or(usize::MAX);
    let options = LoadOptions {
        max_decompressed_size: Some(max_inflate),
        ..LoadOptions::default()
    };
    let doc = match Document::load_mem_with_options(bytes, options) {
        Ok(doc) => doc,
        Err(_) if declares_encryption(bytes) => {
            return Err(Error::Encrypted {
                format: Format::Pdf,
            })
        }
        Err(e) => return Err(corrupt(format!("cannot parse: {e}"))),
    };
    // lopdf opens documents protected by an owner password only (empty user password) and
    // decrypts them; anything else stays encrypted.
    if doc.trailer.get(b"Encrypt").is_ok() && doc.encryption_state.is_none() {
        return Err(Error::Encrypted {
            format: Format::Pdf,
        });
    }
    let pages = doc.get_pages();
    let count = pages.len();
    if count == 0 {
        return Err(corrupt("no pages".to_owned()));
    }
    let mut failures = Vec::new();
    let mut sizes = Vec::new();
    for (&number, &id) in pages.iter().take(limits.max_pdf_pages) {
        match doc.extract_text_with_limit(&[number], max_inflate) {
            Ok(text) => {
                sink.push_str(&text);
                sink.push('\x0c');
            }
            Err(e) => failures.push(format!("page {number}: {e}")),
        }
        sink.page_break(Break::Hard);
        sizes.push(page_size(&doc, id));
        if sink.full {
            break;
        }
    }
    if !failures.is_empty() && failures.len() >= count.min(limits.max_pdf_pages) {
        return Err(corrupt(format!(
            "no page could be read ({})",
            failures.join("; ")
        )));
    }
    Ok(PdfInfo {
        pages: count,
        skipped_pages: count > limits.max_pdf_pages,
        repaired: doc.xref_recovery.is_some(),
        sizes,
    })
}

/// The page's size in points from its media box (inherited from the page tree when the page
/// has none), times its `UserUnit`; `None` when unreadable or absurd.
fn page_size(doc: &Document, page: lopdf::ObjectId) -> Option<(f32, f32)> {
    let mut dict = doc.get_dictionary(page).ok()?;
    let mut media = None;
    let mut unit = None;
    // The page tree is shallow in real files; a bound keeps a cyclic one harmless.
    for _ in 0..32 {
        if media.is_none() {
            media = dict.get_deref(b"MediaBox", doc).ok().cloned();
        }
        if unit.is_none() {
            unit = dict
                .get_deref(b"UserUnit", doc)
                .ok()
                .and_then(|u| u.as_float().ok());
        }
        if media.is_some() {
            break;
        }
        match dict.get(b"Parent").and_then(lopdf::Object::as_reference) {
            Ok(parent) => dict = doc.get_dictionary(parent).ok()?,
            Err(_) => break,
        }
    }
    let media = media?;
    let values: Vec<f32> = media
        .as_array()
        .ok()?
        .iter()
        .filter_map(|v| doc.dereference(v).ok()?.1.as_float().ok())
        .collect();
    let [x0, y0, x1, y1] = values[..] else {
        return None;
    };
    let unit = unit.filter(|u| u.is_finite() && *u > 0.0).unwrap_or(1.0);
    let (w, h) = ((x1 - x0).abs() * unit, (y1 - y0).abs() * unit);
    (w.is_finite() && h.is_finite() && w >= 1.0 && h >= 1.0).then_some((w, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parser_panic_becomes_corrupt() {
        let r: Result<(), Error> = guarded(|| panic!("index out of bounds"));
        match r {
            Err(Error::Corrupt {
                format: Format::Pdf,
                reason,
            }) => {
                assert!(reason.contains("index out of bounds"), "{reason}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
