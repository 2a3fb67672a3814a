//! Drafts the agents download, as DOCX, ODT or plain text, marked as AI-generated (AI Act
//! art. 50) in the document metadata and, optionally, in a visible first paragraph.

use std::fmt::Write as _;
use std::io::{Cursor, Write as _};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

use crate::error::Error;

/// Longest title a draft may carry, in characters.
pub const MAX_TITLE_CHARS: usize = 200;

/// Whether `title` may title a draft: at most [`MAX_TITLE_CHARS`] characters, none of them a
/// control character (it ends up in file metadata and in a download's file name).
pub fn title_acceptable(title: &str) -> bool {
    title.chars().count() <= MAX_TITLE_CHARS && !title.chars().any(char::is_control)
}

/// A format a draft is exported to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExportFormat {
    Docx,
    Odt,
    Txt,
}

impl std::str::FromStr for ExportFormat {
    type Err = ();

    /// `docx`, `odt` or `txt`, as written.
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "docx" => Ok(ExportFormat::Docx),
            "odt" => Ok(ExportFormat::Odt),
            "txt" => Ok(ExportFormat::Txt),
            _ => Err(()),
        }
    }
}

impl ExportFormat {
    /// The media type of the exported file.
    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Docx => {
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
            }
            ExportFormat::Odt => "application/vnd.oasis.opendocument.text",
            ExportFormat::Txt => "text/plain; charset=utf-8",
        }
    }

    /// The file name extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::Docx => "docx",
            ExportFormat::Odt => "odt",
            ExportFormat::Txt => "txt",
        }
    }

    /// The draft as a file of this format ([`to_docx`], [`to_odt`], [`to_text`]).
    pub fn export(self, d: &Draft) -> Result<Vec<u8>, Error> {
        match self {
            ExportFormat::Docx => to_docx(d),
            ExportFormat::Odt => to_odt(d),
            ExportFormat::Txt => Ok(to_text(d).into_bytes()),
        }
    }
}

/// A draft to export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Draft<'a> {
    /// Document title (may be empty: no title paragraph then).
    pub title: &'a str,
    /// Body: paragraphs separated by blank lines; single newlines are line breaks.
    pub body: &'a str,
    /// Identifier of the model that generated the draft.
    pub model: &'a str,
    /// SHA-256 of the model weights, when known.
    pub model_sha256: Option<&'a str>,
    /// Generation time, RFC 3339 (shown as written, without time-zone conversion).
    pub generated_at: &'a str,
    /// Agent who asked for the draft; the creator is "Civia (IA générative)" otherwise.
    pub author: Option<&'a str>,
    /// Whether to open the document with the visible notice "Brouillon IA — à vérifier".
    pub visible_notice: bool,
}

const DEFAULT_CREATOR: &str = "Civia (IA générative)";
const KEYWORDS: [&str; 2] = ["IA générative", "brouillon"];

impl Draft<'_> {
    pub(crate) fn check(&self) -> Result<(), Error> {
        if !looks_like_rfc3339(self.generated_at) {
            return Err(Error::InvalidDraft {
                field: "generated_at",
                reason: "not an RFC 3339 date-time (YYYY-MM-DDTHH:MM:SS...)",
            });
        }
        if self.model.trim().is_empty() {
            return Err(Error::InvalidDraft {
                field: "model",
                reason: "empty model identifier",
            });
        }
        Ok(())
    }

    /// The visible notice line.
    pub fn notice(&self) -> String {
        format!(
            "Brouillon IA — à vérifier (modèle {}, généré le {})",
            self.model,
            french_date(self.generated_at)
        )
    }

    fn description(&self) -> String {
        match self.model_sha256 {
            Some(sha) => format!(
                "Brouillon généré par IA (modèle {}, empreinte {sha}) — à vérifier",
                self.model
            ),
            None => format!(
                "Brouillon généré par IA (modèle {}) — à vérifier",
                self.model
            ),
        }
    }

    fn creator(&self) -> &str {
        self.author.unwrap_or(DEFAULT_CREATOR)
    }

    /// Custom properties: (name, value, is_boolean).
    fn properties(&self) -> Vec<(&'static str, &str, bool)> {
        let mut props = vec![
            ("civia_ai_generated", "true", true),
            ("civia_model", self.model, false),
        ];
        if let Some(sha) = self.model_sha256 {
            props.push(("civia_model_sha256", sha, false));
        }
        props.push(("civia_generated_at", self.generated_at, false));
        props
    }
}

/// "YYYY-MM-DDTHH:MM:SS" followed by anything (fraction, offset).
fn looks_like_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 20
        && b.len() <= 64
        && b.iter().enumerate().take(19).all(|(i, &c)| match i {
            4 | 7 => c == b'-',
            10 => matches!(c, b'T' | b't' | b' '),
            13 | 16 => c == b':',
            _ => c.is_ascii_digit(),
        })
        && s.is_ascii()
}

/// "14/03/2025 à 10:05" from an RFC 3339 string (as written), or the string itself.
fn french_date(s: &str) -> String {
    match (s.get(0..4), s.get(5..7), s.get(8..10), s.get(11..16)) {
        (Some(y), Some(m), Some(d), Some(hm)) if looks_like_rfc3339(s) => {
            format!("{d}/{m}/{y} à {hm}")
        }
        _ => s.to_owned(),
    }
}

/// Paragraphs (blank-line separated blocks) of the body, each a list of lines.
fn blocks(body: &str) -> Vec<Vec<&str>> {
    let mut out: Vec<Vec<&str>> = Vec::new();
    let mut current = Vec::new();
    for line in body.lines() {
        if line.trim().is_empty() {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
        } else {
            current.push(line.trim_end());
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// XML-escapes `s`, dropping characters XML 1.0 cannot carry at all.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c.is_control() || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

/// Plain text: the notice on top, then the title and the body.
pub fn to_text(d: &Draft) -> String {
    let mut out = d.notice();
    out.push_str("\n\n");
    if !d.title.trim().is_empty() {
        out.push_str(d.title.trim());
        out.push_str("\n\n");
    }
    out.push_str(d.body.trim());
    out.push('\n');
    out
}

fn zip_failed(format: &'static str) -> impl Fn(zip::result::ZipError) -> Error {
    move |e| Error::Export {
        format,
        reason: e.to_string(),
    }
}

/// Writes `parts` (name, content, stored) into an in-memory ZIP.
pub(crate) fn write_zip(
    format: &'static str,
    parts: &[(&str, String, bool)],
) -> Result<Vec<u8>, Error> {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    for (name, content, stored) in parts {
        let method = if *stored {
            CompressionMethod::Stored
        } else {
            CompressionMethod::Deflated
        };
        zip.start_file(
            *name,
            SimpleFileOptions::default().compression_method(method),
        )
        .map_err(zip_failed(format))?;
        zip.write_all(content.as_bytes())
            .map_err(|e| Error::Export {
                format,
                reason: e.to_string(),
            })?;
    }
    Ok(zip.finish().map_err(zip_failed(format))?.into_inner())
}

pub(crate) const XML_DECL: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n";

/// One DOCX paragraph: lines as line breaks, tabs as tab elements.
fn docx_paragraph(out: &mut String, lines: &[&str], run_props: &str) {
    let _ = write!(
        out,
        "<w:p><w:r><w:rPr>{run_props}<w:lang w:val=\"fr-FR\"/></w:rPr>"
    );
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            out.push_str("<w:br/>");
        }
        for (j, seg) in line.split('\t').enumerate() {
            if j > 0 {
                out.push_str("<w:tab/>");
            }
            if !seg.is_empty() {
                let _ = write!(out, "<w:t xml:space=\"preserve\">{}</w:t>", esc(seg));
            }
        }
    }
    out.push_str("</w:r></w:p>");
}

/// A minimal Word document (document, core and custom properties).
pub fn to_docx(d: &Draft) -> Result<Vec<u8>, Error> {
    d.check()?;
    let mut doc = format!(
        "{XML_DECL}<w:document xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\"><w:body>"
    );
    if d.visible_notice {
        docx_paragraph(&mut doc, &[&d.notice()], "<w:i/>");
    }
    if !d.title.trim().is_empty() {
        docx_paragraph(&mut doc, &[d.title.trim()], "<w:b/><w:sz w:val=\"32\"/>");
    }
    for block in blocks(d.body) {
        docx_paragraph(&mut doc, &block, "");
    }
    doc.push_str(
        "<w:sectPr><w:pgSz w:w=\"11906\" w:h=\"16838\"/><w:pgMar w:top=\"1417\" w:right=\"1417\" \
         w:bottom=\"1417\" w:left=\"1417\" w:header=\"708\" w:footer=\"708\" w:gutter=\"0\"/>\
         </w:sectPr></w:body></w:document>",
    );

    let content_types = format!(
        "{XML_DECL}<Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\">\
<Default Extension=\"rels\" ContentType=\"application/vnd.openxmlformats-package.relationships+xml\"/>\
<Default Extension=\"xml\" ContentType=\"application/xml\"/>\
<Override PartName=\"/word/document.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml\"/>\
<Override PartName=\"/docProps/core.xml\" ContentType=\"application/vnd.openxmlformats-package.core-properties+xml\"/>\
<Override PartName=\"/docProps/custom.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.custom-properties+xml\"/>\
</Types>"
    );
    let rels = format!(
        "{XML_DECL}<Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">\
<Relationship Id=\"rId1\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument\" Target=\"word/document.xml\"/>\
<Relationship Id=\"rId2\" Type=\"http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties\" Target=\"docProps/core.xml\"/>\
<Relationship Id=\"rId3\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/custom-properties\" Target=\"docProps/custom.xml\"/>\
</Relationships>"
    );
    let core = format!(
        "{XML_DECL}<cp:coreProperties xmlns:cp=\"http://schemas.openxmlformats.org/package/2006/metadata/core-properties\" \
xmlns:dc=\"http://purl.org/dc/elements/1.1/\" xmlns:dcterms=\"http://purl.org/dc/terms/\" \
xmlns:dcmitype=\"http://purl.org/dc/dcmitype/\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\
<dc:title>{title}</dc:title><dc:creator>{creator}</dc:creator><dc:description>{description}</dc:description>\
<cp:keywords>{keywords}</cp:keywords><dc:language>fr-FR</dc:language>\
<dcterms:created xsi:type=\"dcterms:W3CDTF\">{date}</dcterms:created>\
<dcterms:modified xsi:type=\"dcterms:W3CDTF\">{date}</dcterms:modified></cp:coreProperties>",
        title = esc(d.title.trim()),
        creator = esc(d.creator()),
        description = esc(&d.description()),
        keywords = esc(&KEYWORDS.join("; ")),
        date = esc(d.generated_at),
    );
    let mut custom = format!(
        "{XML_DECL}<Properties xmlns=\"http://schemas.openxmlformats.org/officeDocument/2006/custom-properties\" \
xmlns:vt=\"http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes\">"
    );
    for (pid, (name, value, boolean)) in (2..).zip(d.properties()) {
        let typed = if boolean {
            format!("<vt:bool>{}</vt:bool>", esc(value))
        } else {
            format!("<vt:lpwstr>{}</vt:lpwstr>", esc(value))
        };
        let _ = write!(
            custom,
            "<property fmtid=\"{{D5CDD505-2E9C-101B-9397-08002B2CF9AE}}\" pid=\"{pid}\" name=\"{name}\">{typed}</property>"
        );
    }
    custom.push_str("</Properties>");

    write_zip(
        "DOCX",
        &[
            ("[Content_Types].xml", content_types, false),
            ("_rels/.rels", rels, false),
            ("word/document.xml", doc, false),
            ("docProps/core.xml", core, false),
            ("docProps/custom.xml", custom, false),
        ],
    )
}

/// One ODT line: runs of spaces as `text:s`, tabs as `text:tab` (ODF collapses raw blanks).
fn odt_line(out: &mut String, line: &str) {
    let mut spaces = 0usize;
    let flush = |out: &mut String, spaces: &mut usize, at_start: bool| {
        if *spaces == 0 {
            return;
        }
        let literal = usize::from(!at_start);
        out.push_str(&" ".repeat(literal));
        if *spaces > literal {
            let _ = write!(out, "<text:s text:c=\"{}\"/>", *spaces - literal);
        }
        *spaces = 0;
    };
    let mut at_start = true;
    for c in line.chars() {
        match c {
            ' ' => spaces += 1,
            '\t' => {
                flush(out, &mut spaces, at_start);
                out.push_str("<text:tab/>");
                at_start = false;
            }
            c => {
                flush(out, &mut spaces, at_start);
                out.push_str(&esc(c.encode_utf8(&mut [0u8; 4])));
                at_start = false;
            }
        }
    }
    flush(out, &mut spaces, true);
}

fn odt_paragraph(out: &mut String, lines: &[&str], style: &str) {
    let _ = write!(out, "<text:p text:style-name=\"{style}\">");
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            out.push_str("<text:line-break/>");
        }
        odt_line(out, line);
    }
    out.push_str("</text:p>");
}

const ODT_MIME: &str = "application/vnd.oasis.opendocument.text";
pub(crate) const ODF_VERSION: &str = "1.2";

/// A minimal OpenDocument text (mimetype first and stored, manifest, content, meta).
pub fn to_odt(d: &Draft) -> Result<Vec<u8>, Error> {
    d.check()?;
    let mut content = format!(
        "{XML_DECL}<office:document-content xmlns:office=\"urn:oasis:names:tc:opendocument:xmlns:office:1.0\" \
xmlns:style=\"urn:oasis:names:tc:opendocument:xmlns:style:1.0\" \
xmlns:text=\"urn:oasis:names:tc:opendocument:xmlns:text:1.0\" \
xmlns:fo=\"urn:oasis:names:tc:opendocument:xmlns:xsl-fo-compatible:1.0\" office:version=\"{ODF_VERSION}\">\
<office:automatic-styles>\
<style:style style:name=\"PBody\" style:family=\"paragraph\"><style:text-properties fo:language=\"fr\" fo:country=\"FR\"/></style:style>\
<style:style style:name=\"PTitle\" style:family=\"paragraph\"><style:text-properties fo:font-size=\"16pt\" fo:font-weight=\"bold\" fo:language=\"fr\" fo:country=\"FR\"/></style:style>\
<style:style style:name=\"PNotice\" style:family=\"paragraph\"><style:text-properties fo:font-style=\"italic\" fo:language=\"fr\" fo:country=\"FR\"/></style:style>\
</office:automatic-styles><office:body><office:text>"
    );
    if d.visible_notice {
        odt_paragraph(&mut content, &[&d.notice()], "PNotice");
    }
    if !d.title.trim().is_empty() {
        odt_paragraph(&mut content, &[d.title.trim()], "PTitle");
    }
    for block in blocks(d.body) {
        odt_paragraph(&mut content, &block, "PBody");
    }
    content.push_str("</office:text></office:body></office:document-content>");

    write_zip(
        "ODT",
        &[
            ("mimetype", ODT_MIME.to_owned(), true),
            ("META-INF/manifest.xml", odf_manifest(ODT_MIME), false),
            ("content.xml", content, false),
            ("meta.xml", odf_meta(d), false),
        ],
    )
}

/// The `meta.xml` of an OpenDocument file: title, the AI marking (description, keywords,
/// creator, custom properties), language and dates.
pub(crate) fn odf_meta(d: &Draft) -> String {
    let mut meta = format!(
        "{XML_DECL}<office:document-meta xmlns:office=\"urn:oasis:names:tc:opendocument:xmlns:office:1.0\" \
xmlns:meta=\"urn:oasis:names:tc:opendocument:xmlns:meta:1.0\" xmlns:dc=\"http://purl.org/dc/elements/1.1/\" \
office:version=\"{ODF_VERSION}\"><office:meta><meta:generator>Civia</meta:generator>\
<dc:title>{title}</dc:title><dc:description>{description}</dc:description><dc:language>fr-FR</dc:language>",
        title = esc(d.title.trim()),
        description = esc(&d.description()),
    );
    for keyword in KEYWORDS {
        let _ = write!(meta, "<meta:keyword>{}</meta:keyword>", esc(keyword));
    }
    let _ = write!(
        meta,
        "<meta:initial-creator>{creator}</meta:initial-creator><dc:creator>{creator}</dc:creator>\
<meta:creation-date>{date}</meta:creation-date><dc:date>{date}</dc:date>",
        creator = esc(d.creator()),
        date = esc(d.generated_at),
    );
    for (name, value, boolean) in d.properties() {
        let kind = if boolean { "boolean" } else { "string" };
        let _ = write!(
            meta,
            "<meta:user-defined meta:name=\"{name}\" meta:value-type=\"{kind}\">{}</meta:user-defined>",
            esc(value)
        );
    }
    meta.push_str("</office:meta></office:document-meta>");

    meta
}

/// The manifest of an OpenDocument file of media type `mime` (content and meta).
pub(crate) fn odf_manifest(mime: &str) -> String {
    format!(
        "{XML_DECL}<manifest:manifest xmlns:manifest=\"urn:oasis:names:tc:opendocument:xmlns:manifest:1.0\" manifest:version=\"{ODF_VERSION}\">\
<manifest:file-entry manifest:full-path=\"/\" manifest:version=\"{ODF_VERSION}\" manifest:media-type=\"{mime}\"/>\
<manifest:file-entry manifest:full-path=\"content.xml\" manifest:media-type=\"text/xml\"/>\
<manifest:file-entry manifest:full-path=\"meta.xml\" manifest:media-type=\"text/xml\"/>\
</manifest:manifest>"
    )
}
