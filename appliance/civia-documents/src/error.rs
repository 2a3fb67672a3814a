//! Typed errors, with an English `Display` for logs and a French message for the agents' UI.

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
    fn french(&self) -> String {
        match self {
            Hazard::EntryTooLarge { .. } => {
                "son contenu décompressé est anormalement volumineux (bombe de décompression ?)"
                    .to_owned()
            }
            Hazard::TooManyEntries { count, max } => {
                format!("l'archive contient {count} éléments, au-delà de la limite de {max}")
            }
            Hazard::Doctype { .. } => {
                "il contient une déclaration DOCTYPE (entités XML), refusée par sécurité".to_owned()
            }
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
        /// The English message, for the logs.
        message: String,
        /// The French message, for the agents' UI.
        french: String,
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
    /// A clear French message for the agents' UI.
    pub fn french(&self) -> String {
        match self {
            Error::Empty => "Le fichier est vide.".to_owned(),
            Error::TooLarge { bytes, max } => format!(
                "Le fichier est trop volumineux ({} Mo) : la taille maximale acceptée est de {} Mo.",
                megabytes(*bytes),
                megabytes(*max)
            ),
            Error::Unsupported { .. } => "Format de fichier non pris en charge. Formats acceptés : \
                 PDF, DOCX (Word), ODT (LibreOffice), texte (TXT, Markdown), HTML et images \
                 numérisées (PNG, JPEG, TIFF). Enregistrez le document dans l'un de ces formats \
                 puis réessayez."
                .to_owned(),
            Error::FormatMismatch { declared, detected } => format!(
                "Le fichier porte l'extension ou le type {declared} mais son contenu est au format \
                 {detected} : renommez-le correctement puis réessayez."
            ),
            Error::Corrupt { format, .. } => format!(
                "Le fichier {format} est endommagé ou illisible : impossible d'en lire le texte."
            ),
            Error::Encrypted { format } => format!(
                "Le fichier {format} est protégé par un mot de passe (chiffré) : impossible d'en \
                 lire le texte. Retirez la protection puis réessayez."
            ),
            Error::NoText => "Ce PDF ne contient pas de texte (document scanné ?) : seule la base \
                 documentaire en lit le texte, par reconnaissance de caractères (OCR). Déposez-le \
                 dans une collection de la base documentaire."
                .to_owned(),
            Error::NeedsOcr { format } => format!(
                "Ce fichier {format} est une image numérisée : seule la base documentaire en lit \
                 le texte, par reconnaissance de caractères (OCR). Déposez-le dans une \
                 collection de la base documentaire."
            ),
            Error::ImageTooLarge {
                width,
                height,
                max_pixels,
            } => format!(
                "L'image fait {width} × {height} pixels, au-delà des {} millions de pixels que \
                 la reconnaissance de texte (OCR) accepte : numérisez-la à une résolution plus \
                 basse (300 dpi suffisent) puis réessayez.",
                max_pixels / 1_000_000
            ),
            Error::TooManyPages { pages, max } => format!(
                "L'image contient {pages} pages, au-delà des {max} pages que la reconnaissance \
                 de texte (OCR) accepte en une fois : découpez-la puis réessayez."
            ),
            Error::OcrUnavailable { .. } => "La reconnaissance de texte (OCR) n'est pas installée \
                 sur ce boîtier : les documents numérisés ne peuvent pas être lus. Prévenez \
                 l'administrateur du boîtier."
                .to_owned(),
            Error::OcrFailed { page, .. } => format!(
                "La reconnaissance de texte (OCR){} a dépassé les limites du boîtier (temps ou \
                 mémoire) ou a échoué : la numérisation est peut-être trop grande ou \
                 endommagée. Numérisez le document à nouveau (300 dpi) puis réessayez.",
                page.map(|p| format!(" de la page {p}")).unwrap_or_default()
            ),
            Error::OcrNoText { format } => format!(
                "Aucun texte n'a pu être lu dans ce fichier {format}, même par reconnaissance de \
                 caractères (OCR) : la numérisation est peut-être blanche ou de trop mauvaise \
                 qualité."
            ),
            Error::Hostile { format, hazard } => format!(
                "Le fichier {format} a été refusé par mesure de sécurité : {}.",
                hazard.french()
            ),
            Error::InvalidDraft { field, .. } => format!(
                "Le brouillon ne peut pas être exporté : le champ « {field} » est invalide."
            ),
            Error::Export { format, .. } => {
                format!("L'export au format {format} a échoué. Réessayez ou copiez le texte.")
            }
            Error::Exhausted { .. } => "La lecture de ce fichier a dépassé les limites du \
                 boîtier (temps ou mémoire) : il est anormalement complexe. Enregistrez-le à \
                 nouveau (par exemple en PDF) ou découpez-le, puis réessayez."
                .to_owned(),
            Error::Extractor { .. } => {
                "La lecture des documents est indisponible sur le boîtier. Réessayez plus tard."
                    .to_owned()
            }
            Error::Reported { french, .. } => french.clone(),
        }
    }
}

/// Megabytes (MiB) rounded up, for messages.
fn megabytes(bytes: usize) -> usize {
    bytes.div_ceil(1024 * 1024)
}
