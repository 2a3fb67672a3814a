//! Civia documents: text extraction from the documents agents upload (PDF, DOCX, ODT, TXT)
//! and writing of the drafts they download (DOCX, ODT, plain text) with the AI marking
//! required by the AI Act (art. 50).
//!
//! This crate is a pure library: no network, no file system, no async. It must never execute
//! content (macros, scripts, fields, external entities), never follow an external reference,
//! never write outside the buffer it is given, and never keep a copy of a document: everything
//! lives in memory for the duration of one call. Hostile inputs are bounded by [`Limits`]
//! (input size, inflated sizes through a `take()` limiter, ZIP entry count, pages, output
//! characters); XML with a DOCTYPE is refused outright; PDF parsing runs under
//! `catch_unwind` so that a parser panic becomes [`Error::Corrupt`]. Every error has an English
//! `Display` for the logs and [`Error::french`] for the agents' UI.
//!
//! [`isolated`] runs one extraction in a child process under resource limits (wall clock,
//! address space, CPU time, no files): the parsers are large and fed hostile bytes, so a
//! document that loops, balloons or crashes costs that child only. The child is the caller's
//! program started with an argument of its choosing (`civiad extract-document`), which calls
//! [`isolated::child_main`].

mod error;
mod export;
pub mod isolated;
mod office;
mod pdf;
mod text;
mod zipsafe;

pub use error::{Error, ErrorKind, Hazard};
pub use export::{
    title_acceptable, to_docx, to_odt, to_text, Draft, ExportFormat, MAX_TITLE_CHARS,
};
pub use text::chunks;

use text::Sink;

/// A document format accepted for upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Format {
    /// Portable Document Format.
    Pdf,
    /// Office Open XML word-processing document (Word).
    Docx,
    /// OpenDocument text (LibreOffice).
    Odt,
    /// Plain text (UTF-8, UTF-16 with BOM, Windows-1252 / Latin-1).
    Txt,
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Format::Pdf => "PDF",
            Format::Docx => "DOCX",
            Format::Odt => "ODT",
            Format::Txt => "TXT",
        })
    }
}

impl Format {
    /// The format a client-declared file name or content type announces, if it is one of ours.
    pub fn from_hint(hint: &str) -> Option<Format> {
        let hint = hint.trim().to_ascii_lowercase();
        let mime = hint.split(';').next().unwrap_or("").trim();
        match mime {
            "application/pdf" => return Some(Format::Pdf),
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => {
                return Some(Format::Docx)
            }
            "application/vnd.oasis.opendocument.text" => return Some(Format::Odt),
            "text/plain" => return Some(Format::Txt),
            _ => {}
        }
        match hint.rsplit_once('.').map(|(_, ext)| ext) {
            Some("pdf") => Some(Format::Pdf),
            Some("docx") => Some(Format::Docx),
            Some("odt") => Some(Format::Odt),
            Some("txt") => Some(Format::Txt),
            _ => None,
        }
    }
}

/// Bounds applied to every extraction.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    /// Largest accepted input, in bytes.
    pub max_bytes: usize,
    /// Largest text returned, in characters; longer text is cut and flagged `truncated`.
    pub max_text_chars: usize,
    /// Most entries a DOCX/ODT archive may hold.
    pub max_zip_entries: usize,
    /// Largest inflated size of one ZIP entry or one PDF stream, in bytes.
    pub max_uncompressed_bytes: u64,
    /// Most PDF pages read; later pages are left out and the result flagged `truncated`.
    pub max_pdf_pages: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 20 * 1024 * 1024,
            max_text_chars: 2_000_000,
            max_zip_entries: 10_000,
            max_uncompressed_bytes: 200 * 1024 * 1024,
            max_pdf_pages: 2000,
        }
    }
}

/// Text extracted from a document.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Extracted {
    /// Format found in the bytes.
    pub format: Format,
    /// Normalised text: paragraphs separated by a blank line, no runs of spaces, trimmed.
    pub text: String,
    /// Number of pages (PDF only).
    pub pages: Option<usize>,
    /// True when text was left out because of [`Limits`].
    pub truncated: bool,
}

/// The cheap refusals before any parsing: empty, or larger than [`Limits::max_bytes`].
pub(crate) fn check_size(bytes: &[u8], limits: &Limits) -> Result<(), Error> {
    if bytes.is_empty() {
        return Err(Error::Empty);
    }
    if bytes.len() > limits.max_bytes {
        return Err(Error::TooLarge {
            bytes: bytes.len(),
            max: limits.max_bytes,
        });
    }
    Ok(())
}

/// Detects the format of `bytes` (the bytes decide; `hint`, a client-declared file name or
/// content type, must agree when it names one of our formats) and extracts its text.
pub fn extract(bytes: &[u8], hint: Option<&str>, limits: &Limits) -> Result<Extracted, Error> {
    check_size(bytes, limits)?;
    let declared = hint.and_then(Format::from_hint);
    let detected = match detect(bytes, limits) {
        Ok(format) => format,
        // Unknown bytes declared as one of our formats: say that file is damaged.
        Err(Error::Unsupported { detected }) => {
            return Err(match declared {
                Some(format) if detected == UNKNOWN_BINARY || detected == DAMAGED_ZIP => {
                    Error::Corrupt {
                        format,
                        reason: format!("content is not {format} ({detected})"),
                    }
                }
                _ => Error::Unsupported { detected },
            })
        }
        Err(e) => return Err(e),
    };
    if let Some(declared) = declared {
        if declared != detected {
            return Err(Error::FormatMismatch { declared, detected });
        }
    }
    // Raw text is capped above the final limit since normalisation removes white space.
    let mut sink = Sink::new(limits.max_text_chars.saturating_mul(2).saturating_add(1024));
    let mut pdf_info = None;
    match detected {
        Format::Pdf => pdf_info = Some(pdf::pdf_text(bytes, limits, &mut sink)?),
        Format::Docx => office::docx_text(bytes, limits, &mut sink)?,
        Format::Odt => office::odt_text(bytes, limits, &mut sink)?,
        Format::Txt => sink.push_str(&decode_text(bytes).ok_or(Error::Unsupported {
            detected: UNKNOWN_BINARY,
        })?),
    }
    let full = sink.full;
    let (text, cut) = text::normalize(&sink.into_string(), limits.max_text_chars);
    if let Some(info) = &pdf_info {
        if text.is_empty() {
            // A repaired file without text is most likely cut short, not a scan.
            return Err(if info.repaired {
                Error::Corrupt {
                    format: Format::Pdf,
                    reason: "damaged cross-reference data and no readable text".to_owned(),
                }
            } else {
                Error::NoText
            });
        }
    }
    Ok(Extracted {
        format: detected,
        text,
        pages: pdf_info.as_ref().map(|i| i.pages),
        truncated: cut || full || pdf_info.is_some_and(|i| i.skipped_pages),
    })
}

const UNKNOWN_BINARY: &str = "unrecognised binary data";
const DAMAGED_ZIP: &str = "damaged ZIP archive";
const ODT_MIMETYPE: &[u8] = b"application/vnd.oasis.opendocument.text";

/// The format of `bytes`, from magic numbers and ZIP entries.
fn detect(bytes: &[u8], limits: &Limits) -> Result<Format, Error> {
    if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
        return detect_zip(bytes, limits);
    }
    if bytes.starts_with(b"%PDF-") {
        return Ok(Format::Pdf);
    }
    if bytes.starts_with(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]) {
        return Err(Error::Unsupported {
            detected: "Word 97-2003 (.doc) or password-protected Office file",
        });
    }
    if bytes.starts_with(b"{\\rtf") {
        return Err(Error::Unsupported {
            detected: "RTF document",
        });
    }
    if decode_text(bytes).is_some() {
        return Ok(Format::Txt);
    }
    // The PDF header may be preceded by binary junk within the first KiB (ISO 32000-1, 7.5.2).
    if bytes
        .get(..1024)
        .unwrap_or(bytes)
        .windows(5)
        .any(|w| w == b"%PDF-")
    {
        return Ok(Format::Pdf);
    }
    Err(Error::Unsupported {
        detected: UNKNOWN_BINARY,
    })
}

fn detect_zip(bytes: &[u8], limits: &Limits) -> Result<Format, Error> {
    let mut archive = match zip::ZipArchive::new(std::io::Cursor::new(bytes)) {
        Ok(archive) => archive,
        Err(_) => {
            // The central directory is unreadable (e.g. truncated file): guess from the first
            // local entries so the agent is told which of their files is damaged.
            let head = bytes.get(..4096).unwrap_or(bytes);
            let has = |needle: &[u8]| head.windows(needle.len()).any(|w| w == needle);
            let format = if has(ODT_MIMETYPE) {
                Format::Odt
            } else if has(b"[Content_Types].xml") || has(b"word/") {
                Format::Docx
            } else {
                return Err(Error::Unsupported {
                    detected: DAMAGED_ZIP,
                });
            };
            return Err(Error::Corrupt {
                format,
                reason: "unreadable ZIP central directory".to_owned(),
            });
        }
    };
    let names = |archive: &zip::ZipArchive<_>, name: &str| archive.index_for_name(name).is_some();
    let is_odt_candidate = names(&archive, "mimetype");
    if is_odt_candidate {
        let mimetype = zipsafe::read_entry(&mut archive, "mimetype", Format::Odt, limits)?;
        if mimetype.as_deref().map(<[u8]>::trim_ascii) == Some(ODT_MIMETYPE) {
            return Ok(Format::Odt);
        }
    }
    if names(&archive, "[Content_Types].xml") && names(&archive, "word/document.xml") {
        return Ok(Format::Docx);
    }
    Err(Error::Unsupported {
        detected: "ZIP archive that is neither DOCX nor ODT (spreadsheet, presentation...)",
    })
}

/// Decodes plain text: UTF-8 (with or without BOM) or UTF-16 with BOM, without NUL; otherwise
/// Windows-1252 (a superset of Latin-1 in practice) when no control character other than
/// tab, CR, LF and form feed appears. `None` when the bytes do not look like text.
fn decode_text(bytes: &[u8]) -> Option<String> {
    let text_controls = |b: u8| b >= 0x20 || matches!(b, b'\t' | b'\r' | b'\n' | 0x0c);
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        return std::str::from_utf8(rest)
            .ok()
            .filter(|s| !s.contains('\0'))
            .map(str::to_owned);
    }
    for (bom, encoding) in [
        (&b"\xFF\xFE"[..], encoding_rs::UTF_16LE),
        (&b"\xFE\xFF"[..], encoding_rs::UTF_16BE),
    ] {
        if let Some(rest) = bytes.strip_prefix(bom) {
            return encoding
                .decode_without_bom_handling_and_without_replacement(rest)
                .filter(|s| !s.contains('\0'))
                .map(|s| s.into_owned());
        }
    }
    if let Ok(s) = std::str::from_utf8(bytes) {
        return (!s.contains('\0')).then(|| s.to_owned());
    }
    if bytes.iter().all(|&b| text_controls(b) && b != 0x7f) {
        let (text, _) = encoding_rs::WINDOWS_1252.decode_without_bom_handling(bytes);
        return Some(text.into_owned());
    }
    None
}
