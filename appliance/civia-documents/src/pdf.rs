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
use crate::text::Sink;
use crate::{Format, Limits};

/// What the PDF walk found besides the text.
pub(crate) struct PdfInfo {
    /// Number of pages in the document.
    pub(crate) pages: usize,
    /// Pages were left out because of `max_pdf_pages`.
    pub(crate) skipped_pages: bool,
    /// The cross-reference data was broken and had to be repaired (e.g. a truncated file).
    pub(crate) repaired: bool,
}

/// Text of a PDF, into `sink`, pages separated by form feeds.
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
    for &number in pages.keys().take(limits.max_pdf_pages) {
        match doc.extract_text_with_limit(&[number], max_inflate) {
            Ok(text) => {
                sink.push_str(&text);
                sink.push('\x0c');
            }
            Err(e) => failures.push(format!("page {number}: {e}")),
        }
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
    })
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
