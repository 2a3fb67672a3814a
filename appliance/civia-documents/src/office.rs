//! DOCX and ODT text extraction: a namespace-aware, streaming XML walk of the main part only
//! (`word/document.xml`, `content.xml`). Headers, footers, comments and notes live elsewhere
//! or are skipped. No DTD is ever processed: a DOCTYPE refuses the document, and the only
//! entities resolved are the five predefined ones and character references.
//!
//! Page breaks are recorded in the sink (they do not change the text): DOCX explicit breaks
//! (`<w:br w:type="page"/>`, `w:pageBreakBefore`, a section that starts on a new page) and the
//! breaks Word rendered when it last laid the document out (`w:lastRenderedPageBreak`); ODT
//! paragraphs and tables whose automatic style breaks the page before or after them
//! (`fo:break-before`/`fo:break-after="page"`) and the breaks LibreOffice rendered
//! (`text:soft-page-break`). Text boxes do not break the running text's pages.

use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{Namespace, ResolveResult};
use quick_xml::NsReader;

use crate::error::{Error, Hazard};
use crate::text::{Break, Sink};
use crate::{zipsafe, Format, Limits};
use std::collections::HashMap;

const W: &str = "http://schemas.openxmlformats.org/wordprocessingml/2006/main";
const MC: &str = "http://schemas.openxmlformats.org/markup-compatibility/2006";
const TEXT: &str = "urn:oasis:names:tc:opendocument:xmlns:text:1.0";
const TABLE: &str = "urn:oasis:names:tc:opendocument:xmlns:table:1.0";
const OFFICE: &str = "urn:oasis:names:tc:opendocument:xmlns:office:1.0";
const STYLE: &str = "urn:oasis:names:tc:opendocument:xmlns:style:1.0";

/// One XML event, with the element namespace resolved.
enum Ev<'a> {
    Start {
        ns: &'a str,
        local: &'a str,
        elem: &'a BytesStart<'a>,
    },
    End {
        ns: &'a str,
        local: &'a str,
    },
    Text(&'a str),
}

/// Streams `xml`, calling `f` for each event until the end or until `f` returns false.
fn walk(
    xml: &str,
    part: &str,
    format: Format,
    mut f: impl FnMut(Ev<'_>) -> bool,
) -> Result<(), Error> {
    let corrupt = |reason: String| Error::Corrupt {
        format,
        reason: format!("{part}: {reason}"),
    };
    let mut reader = NsReader::from_str(xml);
    reader.config_mut().expand_empty_elements = true;
    loop {
        let (res, event) = reader
            .read_resolved_event()
            .map_err(|e| corrupt(format!("invalid XML: {e}")))?;
        let ns = match res {
            ResolveResult::Bound(Namespace(ns)) => ns,
            _ => "",
        };
        let go_on = match &event {
            Event::Start(e) => f(Ev::Start {
                ns,
                local: e.local_name().into_inner(),
                elem: e,
            }),
            Event::End(e) => f(Ev::End {
                ns,
                local: e.local_name().into_inner(),
            }),
            Event::Text(t) => f(Ev::Text(&t.xml10_content())),
            Event::CData(t) => f(Ev::Text(&t.xml10_content())),
            Event::GeneralRef(r) => {
                let c = match r.resolve_char_ref() {
                    Ok(Some(c)) => c,
                    Ok(None) => match &*r.clone().into_inner() {
                        "amp" => '&',
                        "lt" => '<',
                        "gt" => '>',
                        "quot" => '"',
                        "apos" => '\'',
                        other => return Err(corrupt(format!("undefined entity &{other};"))),
                    },
                    Err(e) => return Err(corrupt(format!("bad character reference: {e}"))),
                };
                let mut buf = [0u8; 4];
                f(Ev::Text(c.encode_utf8(&mut buf)))
            }
            Event::DocType(_) => {
                return Err(Error::Hostile {
                    format,
                    hazard: Hazard::Doctype {
                        part: part.to_owned(),
                    },
                })
            }
            Event::Eof => return Ok(()),
            Event::Empty(_) | Event::Comment(_) | Event::Decl(_) | Event::PI(_) => true,
        };
        if !go_on {
            return Ok(());
        }
    }
}

/// Value of the attribute whose local name is `local`, if present.
fn attr(elem: &BytesStart<'_>, local: &str) -> Option<String> {
    elem.attributes().flatten().find_map(|a| {
        let key: &str = a.key.as_ref();
        let key_local = key.rsplit(':').next().unwrap_or(key);
        (key_local == local).then(|| a.value.to_string())
    })
}

/// Table layout shared by both formats: " | " between cells, a new line between rows.
#[derive(Default)]
struct Tables {
    /// One entry per open table: whether the current row has no cell yet.
    row_first: Vec<bool>,
}

impl Tables {
    fn depth(&self) -> usize {
        self.row_first.len()
    }
    fn start_table(&mut self, sink: &mut Sink) {
        if self.row_first.is_empty() {
            sink.push_str("\n\n");
        }
        self.row_first.push(true);
    }
    fn end_table(&mut self, sink: &mut Sink) {
        self.row_first.pop();
        sink.push_str(if self.row_first.is_empty() {
            "\n\n"
        } else {
            " "
        });
    }
    fn start_row(&mut self) {
        if let Some(first) = self.row_first.last_mut() {
            *first = true;
        }
    }
    fn end_row(&mut self, sink: &mut Sink) {
        sink.push(if self.depth() > 1 { ' ' } else { '\n' });
    }
    fn start_cell(&mut self, sink: &mut Sink) {
        if let Some(first) = self.row_first.last_mut() {
            if !*first {
                sink.push_str(" | ");
            }
            *first = false;
        }
    }
    /// Separator at a paragraph start: a space inside a cell, nothing elsewhere.
    fn start_paragraph(&self, sink: &mut Sink) {
        if self.depth() > 0 && sink.ends_with_word() {
            sink.push(' ');
        }
    }
    /// Separator at a paragraph end: a blank line outside tables.
    fn end_paragraph(&self, sink: &mut Sink) {
        if self.depth() == 0 {
            sink.push_str("\n\n");
        }
    }
    fn line_break(&self, sink: &mut Sink) {
        sink.push(if self.depth() > 0 { ' ' } else { '\n' });
    }
}

/// Whether an OOXML on/off property (`<w:pageBreakBefore/>`, `w:val="true"`...) is on.
fn on(elem: &BytesStart<'_>) -> bool {
    !matches!(attr(elem, "val").as_deref(), Some("0" | "false" | "off"))
}

/// Raw text of a DOCX (`word/document.xml`).
pub(crate) fn docx_text(bytes: &[u8], limits: &Limits, sink: &mut Sink) -> Result<(), Error> {
    let format = Format::Docx;
    let mut archive = zipsafe::open(bytes, format, limits)?;
    let xml = zipsafe::read_xml(&mut archive, "word/document.xml", format, limits)?;
    let mut tables = Tables::default();
    let (mut in_t, mut runs, mut skip) = (false, 0usize, 0usize);
    // Text boxes (their breaks are not the running text's); paragraph properties; a section
    // break met in them (the next section starts on a new page unless it is continuous).
    let (mut text_boxes, mut in_ppr, mut section_break) = (0usize, false, None::<bool>);
    walk(&xml, "word/document.xml", format, |ev| {
        match ev {
            Ev::Start { .. } if skip > 0 => skip += 1,
            Ev::End { .. } if skip > 0 => skip -= 1,
            // Alternate content is given twice (modern and fallback): keep the first only.
            Ev::Start {
                ns: MC,
                local: "Fallback",
                ..
            } => skip = 1,
            Ev::Start { ns: W, local, elem } => match local {
                "p" => tables.start_paragraph(sink),
                "pPr" => in_ppr = true,
                "pageBreakBefore" if in_ppr && text_boxes == 0 && on(elem) => {
                    sink.page_break(Break::Explicit)
                }
                "sectPr" if in_ppr && text_boxes == 0 => section_break = Some(true),
                "type" if section_break.is_some() => {
                    section_break = Some(!matches!(
                        attr(elem, "val").as_deref(),
                        Some("continuous" | "nextColumn")
                    ));
                }
                "r" => runs += 1,
                "t" => in_t = true,
                "tab" if runs > 0 => sink.push('\t'),
                "br" if runs > 0 => {
                    tables.line_break(sink);
                    if text_boxes == 0 && attr(elem, "type").as_deref() == Some("page") {
                        sink.page_break(Break::Explicit);
                    }
                }
                "cr" if runs > 0 => tables.line_break(sink),
                "lastRenderedPageBreak" if text_boxes == 0 => sink.page_break(Break::Rendered),
                "noBreakHyphen" if runs > 0 => sink.push('-'),
                "tbl" => tables.start_table(sink),
                "tr" => tables.start_row(),
                "tc" => tables.start_cell(sink),
                "txbxContent" => text_boxes += 1,
                _ => {}
            },
            Ev::End { ns: W, local } => match local {
                "p" => {
                    tables.end_paragraph(sink);
                    if section_break.take() == Some(true) {
                        sink.page_break(Break::Explicit);
                    }
                }
                "pPr" => in_ppr = false,
                "r" => runs = runs.saturating_sub(1),
                "t" => in_t = false,
                "tr" => tables.end_row(sink),
                "tbl" => tables.end_table(sink),
                "txbxContent" => text_boxes = text_boxes.saturating_sub(1),
                _ => {}
            },
            Ev::Text(t) if in_t && skip == 0 => sink.push_str(t),
            _ => {}
        }
        !sink.full
    })
}

/// Page breaks an ODT automatic style asks for: (before, after).
type StyleBreaks = HashMap<String, (bool, bool)>;

/// The breaks of `elem`'s automatic style (`text:style-name` or `table:style-name`).
fn style_breaks(styles: &StyleBreaks, elem: &BytesStart<'_>) -> (bool, bool) {
    attr(elem, "style-name")
        .and_then(|name| styles.get(&name).copied())
        .unwrap_or_default()
}

/// Raw text of an ODT (`content.xml`, body only).
pub(crate) fn odt_text(bytes: &[u8], limits: &Limits, sink: &mut Sink) -> Result<(), Error> {
    let format = Format::Odt;
    let mut archive = zipsafe::open(bytes, format, limits)?;
    let xml = zipsafe::read_xml(&mut archive, "content.xml", format, limits)?;
    let mut tables = Tables::default();
    let (mut in_body, mut paras, mut skip) = (false, 0usize, 0usize);
    // Automatic styles (they come before the body): the one being read, and those that break
    // the page. `after` holds, for each open paragraph or table, whether to break after it.
    let (mut styles, mut in_auto, mut style) = (StyleBreaks::new(), false, None::<String>);
    let mut after: Vec<bool> = Vec::new();
    walk(&xml, "content.xml", format, |ev| {
        match ev {
            Ev::Start { .. } if skip > 0 => skip += 1,
            Ev::End { .. } if skip > 0 => skip -= 1,
            Ev::Start {
                ns: OFFICE,
                local: "automatic-styles",
                ..
            } => in_auto = true,
            Ev::End {
                ns: OFFICE,
                local: "automatic-styles",
            } => in_auto = false,
            Ev::Start {
                ns: STYLE,
                local: "style",
                elem,
            } if in_auto => style = attr(elem, "name"),
            Ev::End {
                ns: STYLE,
                local: "style",
            } => style = None,
            Ev::Start {
                ns: STYLE,
                local: "paragraph-properties" | "table-properties",
                elem,
            } if in_auto => {
                if let Some(name) = &style {
                    let page = |key| attr(elem, key).as_deref() == Some("page");
                    let (before, after) = (page("break-before"), page("break-after"));
                    if before || after {
                        styles.insert(name.clone(), (before, after));
                    }
                }
            }
            Ev::Start {
                ns: OFFICE,
                local: "body",
                ..
            } => in_body = true,
            Ev::End {
                ns: OFFICE,
                local: "body",
            } => in_body = false,
            _ if !in_body => {}
            // Comments, notes and tracked deletions are not part of the running text.
            Ev::Start {
                ns: OFFICE,
                local: "annotation",
                ..
            }
            | Ev::Start {
                ns: TEXT,
                local: "note" | "tracked-changes",
                ..
            } => skip = 1,
            Ev::Start {
                ns: TEXT,
                local,
                elem,
            } => match local {
                "p" | "h" => {
                    let (before, after_it) = style_breaks(&styles, elem);
                    if before {
                        sink.page_break(Break::Explicit);
                    }
                    after.push(after_it);
                    tables.start_paragraph(sink);
                    paras += 1;
                }
                "s" => {
                    let n = attr(elem, "c")
                        .and_then(|c| c.parse::<usize>().ok())
                        .unwrap_or(1);
                    sink.push_str(&" ".repeat(n.clamp(1, 16)));
                }
                "tab" => sink.push('\t'),
                "line-break" => tables.line_break(sink),
                "soft-page-break" => sink.page_break(Break::Rendered),
                _ => {}
            },
            Ev::End {
                ns: TEXT,
                local: "p" | "h",
            } => {
                paras = paras.saturating_sub(1);
                if paras == 0 {
                    tables.end_paragraph(sink);
                } else {
                    sink.push(' ');
                }
                if after.pop() == Some(true) {
                    sink.page_break(Break::Explicit);
                }
            }
            Ev::Start {
                ns: TABLE,
                local,
                elem,
            } => match local {
                "table" => {
                    let (before, after_it) = style_breaks(&styles, elem);
                    if before {
                        sink.page_break(Break::Explicit);
                    }
                    after.push(after_it);
                    tables.start_table(sink);
                }
                "table-row" => tables.start_row(),
                "table-cell" | "covered-table-cell" => tables.start_cell(sink),
                _ => {}
            },
            Ev::End { ns: TABLE, local } => match local {
                "table" => {
                    tables.end_table(sink);
                    if after.pop() == Some(true) {
                        sink.page_break(Break::Explicit);
                    }
                }
                "table-row" => tables.end_row(sink),
                _ => {}
            },
            // In ODF, raw white space in text is not significant: it collapses to one space.
            Ev::Text(t) if paras > 0 && skip == 0 => {
                sink.push_str(&t.replace(['\n', '\r', '\t'], " "));
            }
            _ => {}
        }
        !sink.full
    })
}
