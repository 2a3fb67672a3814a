//! Typed errors: an English `Display`, and the API code and `details` the agents' UI words in
//! French (docs/errors.md).

use crate::Format;

/// Why a document was refused as hostile (zip bomb, entity expansion...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hazard {
    /// A ZIP entry declares or inflates to more than the limit.
    EntryTooLarge {
        /// Name of the entry inside the archive.
        entry: String,
        /// The limit in bytes.
        max: u64,
    },
    /// The archive holds more entries than the limit.
    TooManyEntries {
        /// Number of entries in the archive.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// An XML part carries a DOCTYPE declaration (entity expansion, external entities).
    Doctype {
        /// Name of the XML part.
        part: String,
    },
}

impl std::fmt::Display for Hazard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Hazard::EntryTooLarge { entry, max } => {
                write!(
                    f,
                    "archive entry {entry:?} inflates to more than {max} bytes"
                )
            }
            Hazard::TooManyEntries { count, max } => {
                write!(
                    f,
                    "archive holds {count} entries, more than the limit of {max}"
                )
            }
            Hazard::Doctype { part } => {
                write!(f, "XML part {part:?} carries a DOCTYPE declaration")
            }
        }
    }
}

impl Hazard {
    /// The stable word for this hazard in [`Error::details`].
    fn reason(&self) -> &'static str {
        match self {
            Hazard::EntryTooLarge { .. } => "entry_too_large",
            Hazard::TooManyEntries { .. } => "too_many_entries",
            Hazard::Doctype { .. } => "doctype",
        }
    }
}

/// Everything that can go wrong while extracting or exporting a document.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Zero-byte input.
    #[error("the document is empty")]
    Empty,
    /// Input larger than [`crate::Limits::max_bytes`].
    #[error("the document is {bytes} bytes, more than the limit of {max} bytes")]
    TooLarge {
        /// Size of the input.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// The bytes are none of the accepted formats.
    #[error(
        "unsupported format ({detected}); accepted formats: PDF, DOCX, ODT, TXT, Markdown, \
         HTML, PNG, JPEG, TIFF"
    )]
    Unsupported {
        /// What the bytes look like.
        detected: &'static str,
    },
    /// The declared name or content type says one format, the bytes another.
    #[error("the file is declared as {declared} but its content is {detected}")]
    FormatMismatch {
        /// Format from the client's file name or content type.
        declared: Format,
        /// Format found in the bytes.
        detected: Format,
    },
    /// The document is malformed.
    #[error("the {format} document is corrupt: {reason}")]
    Corrupt {
        /// Format of the document.
        format: Format,
        /// What was wrong, for the logs.
        reason: String,
    },
    /// The document is password-protected.
    #[error("the {format} document is encrypted")]
    Encrypted {
        /// Format of the document.
        format: Format,
    },
    /// A PDF with no extractable text (typically a scan), read without OCR.
    #[error("the PDF has no extractable text (scanned document?)")]
    NoText,
    /// A scanned image given to a reading that runs no OCR.
    #[error("the {format} file is a scanned image: only OCR can read it")]
    NeedsOcr {
        /// The image's format.
        format: Format,
    },
    /// An image larger than [`crate::Ocr::max_pixels`], refused before OCR.
    #[error(
        "the image is {width} × {height} pixels, more than the OCR limit of {max_pixels} pixels"
    )]
    ImageTooLarge {
        /// Width in pixels, from the header.
        width: u32,
        /// Height in pixels, from the header.
        height: u32,
        /// The limit.
        max_pixels: u64,
    },
    /// A multi-page image with more pages than [`crate::Ocr::max_pages`].
    #[error("the image has {pages} pages, more than the OCR limit of {max}")]
    TooManyPages {
        /// Pages in the image.
        pages: usize,
        /// The limit.
        max: usize,
    },
    /// OCR is needed but its programs or language data are missing (a fault of the box).
    #[error("OCR is not available: {reason}")]
    OcrUnavailable {
        /// What is missing, for the logs.
        reason: String,
    },
    /// An OCR program went past its time or memory, or crashed.
    #[error("OCR failed{}: {reason}", page.map(|p| format!(" on page {p}")).unwrap_or_default())]
    OcrFailed {
        /// The PDF page, when the document is a PDF.
        page: Option<u32>,
        /// What happened, for the logs.
        reason: String,
    },
    /// Neither the document nor OCR gave any text.
    #[error("no text in the {format} document, even with OCR")]
    OcrNoText {
        /// Format of the document.
        format: Format,
    },
    /// The document was refused as hostile.
    #[error("the {format} document was refused: {hazard}")]
    Hostile {
        /// Format of the document.
        format: Format,
        /// What was found.
        hazard: Hazard,
    },
    /// A draft field cannot be exported.
    #[error("invalid draft field {field}: {reason}")]
    InvalidDraft {
        /// Name of the field.
        field: &'static str,
        /// What was wrong.
        reason: &'static str,
    },
    /// Writing the export archive failed (should not happen: it is written in memory).
    #[error("could not write the {format} export: {reason}")]
    Export {
        /// Format being written (`DOCX`, `ODT`, `ODS`, `CSV`).
        format: &'static str,
        /// The underlying error.
        reason: String,
    },
    /// The extraction process went past its wall-clock or memory budget, or died.
    #[error("the extraction was stopped: {reason}")]
    Exhausted {
        /// What happened (time, memory, signal), for the logs.
        reason: String,
    },
    /// The extraction process could not be run or answered nonsense (a fault of the box).
    #[error("the document extractor failed: {reason}")]
    Extractor {
        /// What went wrong, for the logs.
        reason: String,
    },
    /// A refusal reported by the extraction process (see [`crate::isolated`]).
    #[error("{message}")]
    Reported {
        /// The refusal's kind.
        kind: ErrorKind,
        /// The English message.
        message: String,
        /// The refusal's [`Error::details`].
        details: serde_json::Value,
    },
}

/// The kind of an [`Error`], stable across the extraction process boundary: what the API
/// maps to a status and a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    TooLarge,
    Encrypted,
    NoText,
    Unsupported,
    Invalid,
    InvalidDraft,
    Exhausted,
    Internal,
}

impl Error {
    /// This error's kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::TooLarge { .. } | Error::ImageTooLarge { .. } | Error::TooManyPages { .. } => {
                ErrorKind::TooLarge
            }
            Error::Encrypted { .. } => ErrorKind::Encrypted,
            Error::NoText | Error::NeedsOcr { .. } | Error::OcrNoText { .. } => ErrorKind::NoText,
            Error::OcrFailed { .. } => ErrorKind::Exhausted,
            Error::OcrUnavailable { .. } => ErrorKind::Internal,
            Error::Unsupported { .. } | Error::FormatMismatch { .. } | Error::Empty => {
                ErrorKind::Unsupported
            }
            Error::Corrupt { .. } | Error::Hostile { .. } => ErrorKind::Invalid,
            Error::InvalidDraft { .. } => ErrorKind::InvalidDraft,
            Error::Exhausted { .. } => ErrorKind::Exhausted,
            Error::Export { .. } | Error::Extractor { .. } => ErrorKind::Internal,
            Error::Reported { kind, .. } => *kind,
        }
    }
}

impl Error {
    /// The API's stable error `code` for this error (docs/errors.md).
    pub fn code(&self) -> &'static str {
        match self.kind() {
            ErrorKind::TooLarge => "request_too_large",
            ErrorKind::Encrypted => "document_encrypted",
            ErrorKind::NoText => "document_without_text",
            ErrorKind::Unsupported => "document_unsupported",
            ErrorKind::Invalid => "document_invalid",
            ErrorKind::Exhausted => "document_too_complex",
            ErrorKind::InvalidDraft => "invalid_value",
            ErrorKind::Internal => "internal_error",
        }
    }

    /// `{"reason", …values}`: what the agents' UI needs to word this error in French
    /// (docs/errors.md); the English [`Display`](std::fmt::Display) is for developers and logs.
    pub fn details(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            Error::Empty => json!({"reason": "empty"}),
            Error::TooLarge { bytes, max } => {
                json!({"reason": "too_large", "bytes": bytes, "max_bytes": max})
            }
            Error::Unsupported { detected } => {
                json!({"reason": "unsupported", "detected": detected})
            }
            Error::FormatMismatch { declared, detected } => json!({
                "reason": "format_mismatch",
                "declared": declared.to_string(),
                "detected": detected.to_string(),
            }),
            Error::Corrupt { format, .. } => {
                json!({"reason": "corrupt", "format": format.to_string()})
            }
            Error::Encrypted { format } => {
                json!({"reason": "encrypted", "format": format.to_string()})
            }
            Error::NoText => json!({"reason": "no_text"}),
            Error::NeedsOcr { format } => {
                json!({"reason": "needs_ocr", "format": format.to_string()})
            }
            Error::ImageTooLarge {
                width,
                height,
                max_pixels,
            } => json!({
                "reason": "image_too_large",
                "width": width,
                "height": height,
                "max_pixels": max_pixels,
            }),
            Error::TooManyPages { pages, max } => {
                json!({"reason": "too_many_pages", "pages": pages, "max_pages": max})
            }
            Error::OcrUnavailable { .. } => json!({"reason": "ocr_unavailable"}),
            Error::OcrFailed { page, .. } => match page {
                Some(p) => json!({"reason": "ocr_failed", "page": p}),
                None => json!({"reason": "ocr_failed"}),
            },
            Error::OcrNoText { format } => {
                json!({"reason": "ocr_no_text", "format": format.to_string()})
            }
            Error::Hostile { format, hazard } => {
                let mut d = json!({
                    "reason": "hostile",
                    "format": format.to_string(),
                    "hazard": hazard.reason(),
                });
                if let Hazard::TooManyEntries { count, max } = hazard {
                    d["count"] = json!(count);
                    d["max"] = json!(max);
                }
                d
            }
            Error::InvalidDraft { field, .. } => {
                json!({"reason": "invalid_draft", "field": field})
            }
            Error::Export { format, .. } => json!({"reason": "export_failed", "format": format}),
            Error::Exhausted { .. } => json!({"reason": "exhausted"}),
            Error::Extractor { .. } => json!({"reason": "extractor_failed"}),
            Error::Reported { details, .. } => details.clone(),
        }
    }
}
