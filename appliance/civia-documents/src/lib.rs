//! Civia documents: text extraction from the documents agents upload (PDF, DOCX, ODT, TXT,
//! Markdown, HTML, and scanned PNG, JPEG and TIFF images through OCR) and writing of the drafts
//! they download (DOCX, ODT, plain text; tables as ODS or CSV) with the AI marking required by
//! the AI Act (art. 50).
//!
//! Owns: reading documents — the whole text ([`extract`], for the parse endpoint) or the text
//! page by page ([`extract_paged`], for the knowledge base: PDF pages, DOCX and ODT page
//! breaks, form feeds; images and PDF pages without text through OCR in
//! [`isolated::extract_paged`]) — and writing drafts and tables ([`TableFormat`]). Pure parsing in memory: no network, no
//! async, no file system except the programs below.
//!
//! Must never: execute content (macros, scripts, fields, external entities), follow an
//! external reference, write outside the buffer it is given, or keep a copy of a document:
//! everything lives in memory for the duration of one call. Hostile inputs are bounded by
//! [`Limits`] (input size, inflated sizes through a `take()` limiter, ZIP entry count, pages,
//! output characters) and [`Ocr`] (pixels, pages, time and memory of each OCR program); XML
//! with a DOCTYPE is refused outright (HTML's DOCTYPE is harmless and ignored); PDF parsing
//! runs under `catch_unwind` so that a parser panic becomes [`Error::Corrupt`]. Every error
//! has an English `Display`, the API's [`Error::code`] and [`Error::details`], from which the
//! web app words it in French (docs/errors.md); this crate holds no sentence for the agents.
//!
//! Runs programs: [`isolated`] runs one extraction in a child process under resource limits
//! (wall clock, address space, CPU time, no files): the parsers are large and fed hostile
//! bytes, so a document that loops, balloons or crashes costs that child only. The child is
//! the caller's program started with an argument of its choosing (`civiad extract-document`),
//! which calls [`isolated::child_main`]. OCR (`ocr.rs`) runs Debian's `tesseract` and
//! `pdftoppm` as child processes under the same kind of limits (one implementation,
//! `limited.rs`), from the caller's process, never from the extraction child.

mod error;
mod export;
mod html;
mod image;
pub mod isolated;
mod limited;
mod ocr;
mod office;
mod pdf;
mod table;
mod text;
mod zipsafe;

pub use error::{Error, ErrorKind, Hazard};
pub use export::{
    title_acceptable, to_docx, to_odt, to_text, Draft, ExportFormat, MAX_TITLE_CHARS,
};
pub use ocr::Ocr;
pub use table::{Cell, Table, TableFormat, MAX_CELL_CHARS, MAX_TABLE_COLUMNS, MAX_TABLE_ROWS};
pub use text::chunks;

use ocr::Layout;
use text::{Break, Sink};

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
    /// Markdown: plain text as far as reading goes (declared by name or content type).
    Markdown,
    /// A web page (HTML or XHTML).
    Html,
    /// A scanned page as a PNG image (OCR).
    Png,
    /// A scanned page as a JPEG image (OCR).
    Jpeg,
    /// Scanned pages as a TIFF image, one page per image file directory (OCR).
    Tiff,
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Format::Pdf => "PDF",
            Format::Docx => "DOCX",
            Format::Odt => "ODT",
            Format::Txt => "TXT",
            Format::Markdown => "Markdown",
            Format::Html => "HTML",
            Format::Png => "PNG",
            Format::Jpeg => "JPEG",
            Format::Tiff => "TIFF",
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
            "text/markdown" | "text/x-markdown" => return Some(Format::Markdown),
            "text/html" | "application/xhtml+xml" => return Some(Format::Html),
            "image/png" => return Some(Format::Png),
            "image/jpeg" | "image/jpg" | "image/pjpeg" => return Some(Format::Jpeg),
            "image/tiff" | "image/tiff-fx" => return Some(Format::Tiff),
            _ => {}
        }
        match hint.rsplit_once('.').map(|(_, ext)| ext) {
            Some("pdf") => Some(Format::Pdf),
            Some("docx") => Some(Format::Docx),
            Some("odt") => Some(Format::Odt),
            Some("txt") => Some(Format::Txt),
            Some("md" | "markdown") => Some(Format::Markdown),
            Some("html" | "htm" | "xhtml") => Some(Format::Html),
            Some("png") => Some(Format::Png),
            Some("jpg" | "jpeg" | "jpe") => Some(Format::Jpeg),
            Some("tif" | "tiff") => Some(Format::Tiff),
            _ => None,
        }
    }

    /// Text formats: the bytes cannot tell them apart reliably, so a declaration among them
    /// is followed.
    fn is_text(self) -> bool {
        matches!(self, Format::Txt | Format::Markdown | Format::Html)
    }

    /// Scanned images, read by OCR only.
    fn is_image(self) -> bool {
        matches!(self, Format::Png | Format::Jpeg | Format::Tiff)
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

/// One page of a document.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Page {
    /// 1-based page number; `None` when the format has no pages (or the document no page
    /// marks: a DOCX, ODT or text file without page breaks).
    pub number: Option<u32>,
    /// The page's text, normalised like [`Extracted::text`]; empty for a blank page.
    pub text: String,
}

/// Text extracted from a document, page by page.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Paged {
    /// Format found in the bytes.
    pub format: Format,
    /// The pages read, in order, blank ones included (numbering stays right); one page
    /// numbered `None` for a format without pages. Pages are left out only past a limit
    /// (`truncated`).
    pub pages: Vec<Page>,
    /// The document's page count when the format has pages: a PDF's own count, an image's
    /// pages, or the pages found between the breaks of a DOCX, ODT or text file.
    pub page_count: Option<u32>,
    /// Pages read by OCR (a PDF page rendered and found blank counts too).
    pub ocr_pages: u32,
    /// True when text or pages were left out because of [`Limits`] or [`Ocr`]'s bounds.
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

/// A document read into a sink, before normalisation.
struct Read {
    format: Format,
    sink: Sink,
    pdf: Option<pdf::PdfInfo>,
    /// Size of each page of an image, in pixels.
    image_pages: Vec<(u32, u32)>,
}

/// The format of `bytes` (the bytes decide; `hint` must agree when it names one of our
/// formats, except among text formats, where it refines, and among images).
fn format_of(bytes: &[u8], hint: Option<&str>, limits: &Limits) -> Result<Format, Error> {
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
    match declared {
        None => Ok(detected),
        Some(declared) if declared == detected => Ok(detected),
        Some(declared) if declared.is_text() && detected.is_text() => Ok(declared),
        Some(declared) if declared.is_image() && detected.is_image() => Ok(detected),
        Some(declared) => Err(Error::FormatMismatch { declared, detected }),
    }
}

/// Detects the format and reads the raw text (and page breaks) of `bytes`.
fn read(bytes: &[u8], hint: Option<&str>, limits: &Limits) -> Result<Read, Error> {
    check_size(bytes, limits)?;
    let format = format_of(bytes, hint, limits)?;
    // Raw text is capped above the final limit since normalisation removes white space.
    let mut sink = Sink::new(limits.max_text_chars.saturating_mul(2).saturating_add(1024));
    let mut pdf_info = None;
    let mut image_pages = Vec::new();
    let text = || {
        decode_text(bytes).ok_or(Error::Unsupported {
            detected: UNKNOWN_BINARY,
        })
    };
    match format {
        Format::Pdf => pdf_info = Some(pdf::pdf_text(bytes, limits, &mut sink)?),
        Format::Docx => office::docx_text(bytes, limits, &mut sink)?,
        Format::Odt => office::odt_text(bytes, limits, &mut sink)?,
        Format::Txt | Format::Markdown => {
            // Form feeds separate pages (printed listings, exported reports).
            let text = text()?;
            let mut pieces = text.split('\x0c').peekable();
            while let Some(piece) = pieces.next() {
                sink.push_str(piece);
                if pieces.peek().is_some() {
                    sink.push('\x0c');
                    sink.page_break(Break::Hard);
                }
            }
        }
        Format::Html => html::html_text(&text()?, &mut sink),
        Format::Png | Format::Jpeg | Format::Tiff => image_pages = image::pages(bytes, format)?,
    }
    Ok(Read {
        format,
        sink,
        pdf: pdf_info,
        image_pages,
    })
}

/// Detects the format of `bytes` (the bytes decide; `hint`, a client-declared file name or
/// content type, must agree when it names one of our formats) and extracts its text.
///
/// Scanned images are refused with [`Error::NeedsOcr`]: this in-process reading runs no OCR
/// (the knowledge base reads them with [`isolated::extract_paged`]).
pub fn extract(bytes: &[u8], hint: Option<&str>, limits: &Limits) -> Result<Extracted, Error> {
    let read = read(bytes, hint, limits)?;
    if read.format.is_image() {
        return Err(Error::NeedsOcr {
            format: read.format,
        });
    }
    let full = read.sink.full;
    let (text, cut) = text::normalize(&read.sink.into_string(), limits.max_text_chars);
    if let Some(info) = &read.pdf {
        if text.is_empty() {
            return Err(no_pdf_text(info.repaired));
        }
    }
    Ok(Extracted {
        format: read.format,
        text,
        pages: read.pdf.as_ref().map(|i| i.pages),
        truncated: cut || full || read.pdf.is_some_and(|i| i.skipped_pages),
    })
}

/// Why a PDF without text is refused: a repaired file without text is most likely cut short,
/// not a scan.
pub(crate) fn no_pdf_text(repaired: bool) -> Error {
    if repaired {
        Error::Corrupt {
            format: Format::Pdf,
            reason: "damaged cross-reference data and no readable text".to_owned(),
        }
    } else {
        Error::NoText
    }
}

/// Detects the format of `bytes` (as [`extract`] does) and extracts its text page by page,
/// in this process, without OCR: a scanned image is [`Error::NeedsOcr`], a PDF without any
/// text [`Error::NoText`], and a PDF's pages without text come back empty.
///
/// Pages: a PDF's pages (numbered from 1, blank ones included); DOCX explicit page breaks,
/// `w:pageBreakBefore`, new-page sections and the breaks Word rendered
/// (`w:lastRenderedPageBreak`); ODT `text:soft-page-break` and paragraphs or tables whose
/// automatic style breaks the page before or after them; form feeds in text. A document
/// without page marks is one page numbered `None`. Each page is normalised like
/// [`Extracted::text`], with the [`Limits::max_text_chars`] budget shared by all pages.
pub fn extract_paged(bytes: &[u8], hint: Option<&str>, limits: &Limits) -> Result<Paged, Error> {
    finish(layout(bytes, hint, limits)?)
}

/// The pages as read (no refusal for images or PDFs without text yet) and what OCR needs:
/// what the extraction child answers.
pub(crate) fn layout(bytes: &[u8], hint: Option<&str>, limits: &Limits) -> Result<Layout, Error> {
    let read = read(bytes, hint, limits)?;
    let format = read.format;
    let to_u32 = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    if format.is_image() {
        let n = read.image_pages.len();
        return Ok(Layout {
            paged: Paged {
                format,
                pages: (1..=n)
                    .map(|i| Page {
                        number: Some(to_u32(i)),
                        text: String::new(),
                    })
                    .collect(),
                page_count: Some(to_u32(n)),
                ocr_pages: 0,
                truncated: false,
            },
            pdf_sizes: Vec::new(),
            image_pages: read.image_pages,
            repaired: false,
        });
    }
    let numbered = read.pdf.is_some() || read.sink.has_breaks();
    let full = read.sink.full;
    let raw_pages = read.sink.into_pages();
    let (texts, cut) = text::normalize_pages(&raw_pages, limits.max_text_chars);
    let page_count = match &read.pdf {
        Some(info) => Some(to_u32(info.pages)),
        None if numbered => Some(to_u32(raw_pages.len())),
        None => None,
    };
    let pages = texts
        .into_iter()
        .enumerate()
        .map(|(i, text)| Page {
            number: numbered.then(|| to_u32(i + 1)),
            text,
        })
        .collect();
    let (sizes, repaired, skipped) = match read.pdf {
        Some(info) => (info.sizes, info.repaired, info.skipped_pages),
        None => (Vec::new(), false, false),
    };
    Ok(Layout {
        paged: Paged {
            format,
            pages,
            page_count,
            ocr_pages: 0,
            truncated: cut || full || skipped,
        },
        pdf_sizes: sizes,
        image_pages: Vec::new(),
        repaired,
    })
}

/// The pages of a layout when no OCR is run.
pub(crate) fn finish(layout: Layout) -> Result<Paged, Error> {
    let format = layout.paged.format;
    if format.is_image() {
        return Err(Error::NeedsOcr { format });
    }
    if format == Format::Pdf && layout.paged.pages.iter().all(|p| p.text.is_empty()) {
        return Err(no_pdf_text(layout.repaired));
    }
    Ok(layout.paged)
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
    if let Some(format) = image::detect(bytes) {
        return Ok(format);
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
    if let Some(detected) = image::unsupported(bytes) {
        return Err(Error::Unsupported { detected });
    }
    if let Some(text) = decode_text(bytes) {
        return Ok(if looks_like_html(&text) {
            Format::Html
        } else {
            Format::Txt
        });
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

/// Whether text is an HTML document: it starts (after white space, an XML declaration or
/// comments) with a DOCTYPE html or an `html` element. A text that merely quotes a tag is not.
fn looks_like_html(text: &str) -> bool {
    let head: String = text
        .trim_start_matches('\u{feff}')
        .chars()
        .take(1024)
        .collect::<String>()
        .to_ascii_lowercase();
    let mut rest = head.trim_start();
    // Skip an XML declaration and comments.
    while let Some((after, close)) = rest
        .strip_prefix("<?xml")
        .map(|a| (a, "?>"))
        .or_else(|| rest.strip_prefix("<!--").map(|a| (a, "-->")))
    {
        match after.find(close) {
            Some(end) => rest = after[end + close.len()..].trim_start(),
            None => return false,
        }
    }
    rest.starts_with("<!doctype html")
        || rest
            .strip_prefix("<html")
            .is_some_and(|r| r.starts_with(['>', ' ', '\n', '\r', '\t']))
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
