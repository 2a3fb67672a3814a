//! Tables the agents download (the « Extraction de données » task): an OpenDocument
//! spreadsheet with typed cells (numbers, dates and booleans a spreadsheet computes with),
//! or CSV, marked as AI-generated like drafts (AI Act art. 50: the ODS metadata of
//! [`crate::export`]'s ODT, and the visible notice as the first row).
//!
//! The ODS is written by hand like the ODT: one `content.xml` of rows and cells next to the
//! metadata and manifest the ODT writer already makes (`spreadsheet-ods`, the maintained
//! crate, would bring a decimal and a date library and its own metadata model for these
//! few lines). CSV goes through the `csv` crate, with French spreadsheet conventions: `;`
//! between fields, a decimal comma, a UTF-8 byte-order mark so that Excel reads the
//! accents.

use crate::error::Error;
use crate::export::{esc, odf_manifest, odf_meta, write_zip, Draft, ODF_VERSION, XML_DECL};
use serde::Deserialize;
use std::fmt::Write as _;

/// Most columns and rows of a table, and the longest cell or column name, in characters.
pub const MAX_TABLE_COLUMNS: usize = 64;
pub const MAX_TABLE_ROWS: usize = 10_000;
pub const MAX_CELL_CHARS: usize = 10_000;

const ODS_MIME: &str = "application/vnd.oasis.opendocument.spreadsheet";
/// The sheet's name (no `[]*?:/\` allowed in one).
const SHEET: &str = "Données";

/// A format a table is exported to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TableFormat {
    Ods,
    Csv,
}

impl std::str::FromStr for TableFormat {
    type Err = ();

    /// `ods` or `csv`, as written.
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "ods" => Ok(TableFormat::Ods),
            "csv" => Ok(TableFormat::Csv),
            _ => Err(()),
        }
    }
}

impl TableFormat {
    pub fn content_type(self) -> &'static str {
        match self {
            TableFormat::Ods => ODS_MIME,
            TableFormat::Csv => "text/csv; charset=utf-8",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            TableFormat::Ods => "ods",
            TableFormat::Csv => "csv",
        }
    }

    /// The table as a file of this format, marked with `d` (its `body` is not used).
    pub fn export(self, d: &Draft, t: &Table) -> Result<Vec<u8>, Error> {
        d.check()?;
        t.check()?;
        match self {
            TableFormat::Ods => to_ods(d, t),
            TableFormat::Csv => to_csv(d, t),
        }
    }
}

/// One cell: JSON `null`, a number, a boolean, or a string — a string `YYYY-MM-DD` is a
/// date.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Empty,
    Text(String),
    Number(f64),
    Bool(bool),
    /// `YYYY-MM-DD`, checked.
    Date(String),
}

impl<'de> Deserialize<'de> for Cell {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        Ok(match serde_json::Value::deserialize(d)? {
            serde_json::Value::Null => Cell::Empty,
            serde_json::Value::Bool(b) => Cell::Bool(b),
            serde_json::Value::Number(n) => Cell::Number(
                n.as_f64()
                    .filter(|f| f.is_finite())
                    .ok_or_else(|| D::Error::custom("a number out of range"))?,
            ),
            serde_json::Value::String(s) if is_date(&s) => Cell::Date(s),
            serde_json::Value::String(s) => Cell::Text(s),
            _ => {
                return Err(D::Error::custom(
                    "a cell is null, a number, a boolean or a string",
                ))
            }
        })
    }
}

/// A calendar date written `YYYY-MM-DD` (the month's days checked, leap years included).
fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let num = |r: std::ops::Range<usize>| s.get(r).and_then(|x| x.parse::<u32>().ok());
    let (Some(y), Some(m), Some(d)) = (num(0..4), num(5..7), num(8..10)) else {
        return false;
    };
    if !s
        .bytes()
        .enumerate()
        .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
    {
        return false;
    }
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&d)
}

/// A table: its column names and rows of cells. A row may be shorter than the columns (the
/// rest is empty) or longer (the columns past the names have none).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
}

fn invalid(reason: &'static str) -> Error {
    Error::InvalidDraft {
        field: "table",
        reason,
    }
}

impl Table {
    /// Within the bounds: 1 to [`MAX_TABLE_COLUMNS`] column names and cells a row, at most
    /// [`MAX_TABLE_ROWS`] rows, no cell or name over [`MAX_CELL_CHARS`].
    pub fn check(&self) -> Result<(), Error> {
        if self.columns.is_empty() || self.columns.len() > MAX_TABLE_COLUMNS {
            return Err(invalid("1 to 64 columns"));
        }
        if self.rows.len() > MAX_TABLE_ROWS {
            return Err(invalid("at most 10,000 rows"));
        }
        if self.rows.iter().any(|r| r.len() > MAX_TABLE_COLUMNS) {
            return Err(invalid("a row has more than 64 cells"));
        }
        let long = |s: &str| s.chars().count() > MAX_CELL_CHARS;
        if self.columns.iter().any(|c| long(c))
            || self.rows.iter().flatten().any(|c| match c {
                Cell::Text(s) => long(s),
                _ => false,
            })
        {
            return Err(invalid(
                "a cell or a column name is longer than 10,000 characters",
            ));
        }
        Ok(())
    }
}

impl Table {
    /// Columns of the sheet: the names, or the longest row.
    fn width(&self) -> usize {
        self.rows
            .iter()
            .map(Vec::len)
            .max()
            .unwrap_or(0)
            .max(self.columns.len())
    }
}

/// A number as a French spreadsheet shows it: decimal comma, no exponent for the usual
/// magnitudes.
fn french_number(f: f64) -> String {
    let s = if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{f:.0}")
    } else {
        f.to_string()
    };
    s.replace('.', ",")
}

/// `14/03/2025` from `2025-03-14`.
fn french_day(iso: &str) -> String {
    format!("{}/{}/{}", &iso[8..10], &iso[5..7], &iso[0..4])
}

fn ods_cell(out: &mut String, c: &Cell) {
    match c {
        Cell::Empty => out.push_str("<table:table-cell/>"),
        Cell::Text(s) => {
            out.push_str("<table:table-cell office:value-type=\"string\">");
            // One paragraph a line, as spreadsheets keep line breaks in a cell.
            for line in s.split('\n') {
                let _ = write!(out, "<text:p>{}</text:p>", esc(line));
            }
            out.push_str("</table:table-cell>");
        }
        Cell::Number(f) => {
            let _ = write!(
                out,
                "<table:table-cell office:value-type=\"float\" office:value=\"{f}\"><text:p>{}</text:p></table:table-cell>",
                french_number(*f)
            );
        }
        Cell::Bool(b) => {
            let _ = write!(
                out,
                "<table:table-cell office:value-type=\"boolean\" office:boolean-value=\"{b}\"><text:p>{}</text:p></table:table-cell>",
                if *b { "VRAI" } else { "FAUX" }
            );
        }
        Cell::Date(d) => {
            let _ = write!(
                out,
                "<table:table-cell table:style-name=\"CDate\" office:value-type=\"date\" office:date-value=\"{d}\"><text:p>{}</text:p></table:table-cell>",
                french_day(d)
            );
        }
    }
}

fn ods_row(out: &mut String, cells: &[Cell], style: Option<&str>) {
    match style {
        Some(s) => {
            let _ = write!(out, "<table:table-row table:style-name=\"{s}\">");
        }
        None => out.push_str("<table:table-row>"),
    }
    for c in cells {
        ods_cell(out, c);
    }
    out.push_str("</table:table-row>");
}

/// An OpenDocument spreadsheet: the notice row (when asked), the header, the rows.
pub fn to_ods(d: &Draft, t: &Table) -> Result<Vec<u8>, Error> {
    let mut content = format!(
        "{XML_DECL}<office:document-content xmlns:office=\"urn:oasis:names:tc:opendocument:xmlns:office:1.0\" \
xmlns:style=\"urn:oasis:names:tc:opendocument:xmlns:style:1.0\" \
xmlns:text=\"urn:oasis:names:tc:opendocument:xmlns:text:1.0\" \
xmlns:table=\"urn:oasis:names:tc:opendocument:xmlns:table:1.0\" \
xmlns:number=\"urn:oasis:names:tc:opendocument:xmlns:datastyle:1.0\" \
xmlns:fo=\"urn:oasis:names:tc:opendocument:xmlns:xsl-fo-compatible:1.0\" office:version=\"{ODF_VERSION}\">\
<office:automatic-styles>\
<number:date-style style:name=\"NDate\"><number:day number:style=\"long\"/><number:text>/</number:text>\
<number:month number:style=\"long\"/><number:text>/</number:text><number:year number:style=\"long\"/></number:date-style>\
<style:style style:name=\"CDate\" style:family=\"table-cell\" style:data-style-name=\"NDate\"/>\
<style:style style:name=\"CHead\" style:family=\"table-cell\"><style:text-properties fo:font-weight=\"bold\"/></style:style>\
</office:automatic-styles><office:body><office:spreadsheet><table:table table:name=\"{SHEET}\">\
<table:table-column table:number-columns-repeated=\"{n}\"/>",
        n = t.width()
    );
    if d.visible_notice {
        ods_row(&mut content, &[Cell::Text(d.notice())], None);
    }
    content.push_str("<table:table-row>");
    for c in &t.columns {
        let _ = write!(
            content,
            "<table:table-cell table:style-name=\"CHead\" office:value-type=\"string\"><text:p>{}</text:p></table:table-cell>",
            esc(c)
        );
    }
    content.push_str("</table:table-row>");
    for r in &t.rows {
        ods_row(&mut content, r, None);
    }
    content.push_str("</table:table></office:spreadsheet></office:body></office:document-content>");
    write_zip(
        "ODS",
        &[
            ("mimetype", ODS_MIME.to_owned(), true),
            ("META-INF/manifest.xml", odf_manifest(ODS_MIME), false),
            ("content.xml", content, false),
            ("meta.xml", odf_meta(d), false),
        ],
    )
}

/// Text that a spreadsheet would read as a formula (`=`, `+`, `-`, `@`, or a tab or carriage
/// return first), made inert with a leading apostrophe (OWASP's advice for CSV injection):
/// cells come from documents nobody vouches for.
fn inert(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    }
}

/// A cell as CSV text: numbers with a decimal comma, dates `JJ/MM/AAAA`, booleans
/// `VRAI`/`FAUX` (what a French spreadsheet reads back as such), text made inert.
fn csv_text(c: &Cell) -> String {
    match c {
        Cell::Empty => String::new(),
        Cell::Text(s) => inert(s),
        Cell::Number(f) => french_number(*f),
        Cell::Bool(b) => (if *b { "VRAI" } else { "FAUX" }).into(),
        Cell::Date(d) => french_day(d),
    }
}

/// CSV: a byte-order mark, the notice line (when asked), the header, the rows; `;` between
/// fields, quotes where needed (RFC 4180).
pub fn to_csv(d: &Draft, t: &Table) -> Result<Vec<u8>, Error> {
    let failed = |e: csv::Error| Error::Export {
        format: "CSV",
        reason: e.to_string(),
    };
    let mut w = csv::WriterBuilder::new()
        .delimiter(b';')
        .flexible(true)
        .from_writer("\u{feff}".as_bytes().to_vec());
    if d.visible_notice {
        w.write_record([d.notice()]).map_err(failed)?;
    }
    let width = t.width();
    let mut header: Vec<String> = t.columns.iter().map(|c| inert(c)).collect();
    header.resize(width, String::new());
    w.write_record(&header).map_err(failed)?;
    for r in &t.rows {
        let mut cells: Vec<String> = r.iter().map(csv_text).collect();
        cells.resize(width, String::new());
        w.write_record(&cells).map_err(failed)?;
    }
    w.into_inner().map_err(|e| Error::Export {
        format: "CSV",
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(notice: bool) -> Draft<'static> {
        Draft {
            title: "Données extraites",
            body: "",
            model: "tiny",
            model_sha256: Some("ab12"),
            generated_at: "2026-12-07T10:00:00Z",
            author: None,
            visible_notice: notice,
        }
    }

    fn table() -> Table {
        serde_json::from_value(serde_json::json!({
            "columns": ["Valeur demandée", "Valeur", "Source"],
            "rows": [["Puissance", 36.5, "p. 2; \"annexe\""], ["Mise en service", "2024-03-01"],
                     ["Conforme", true, null], ["Coût", 1200000, "ligne\nsuivante"],
                     ["Lien", "=HYPERLINK(\"http://x.invalid\")", "-2", "hors", "colonnes"]]
        }))
        .expect("a table")
    }

    #[test]
    fn cells_are_typed_from_json() {
        let t = table();
        assert_eq!(t.rows[0][1], Cell::Number(36.5));
        assert_eq!(t.rows[1][1], Cell::Date("2024-03-01".into()));
        assert_eq!(t.rows[2][1], Cell::Bool(true));
        assert_eq!(t.rows[2][2], Cell::Empty);
        for not_dates in [
            "2024-02-30",
            "2023-02-29",
            "2024-13-01",
            "2024-1-01",
            "2024-01-0a",
        ] {
            assert!(!is_date(not_dates), "{not_dates}");
        }
        assert!(is_date("2024-02-29"));
        assert!(serde_json::from_value::<Table>(
            serde_json::json!({"columns": ["a"], "rows": [[{}]]})
        )
        .is_err());
        assert!(serde_json::from_value::<Table>(
            serde_json::json!({"columns": ["a"], "rows": [[[1]]]})
        )
        .is_err());
    }

    #[test]
    fn csv_is_french_and_quoted() {
        let bytes = TableFormat::Csv
            .export(&draft(true), &table())
            .expect("csv");
        let text = String::from_utf8(bytes).expect("utf-8");
        let lines: Vec<&str> = text.split('\n').collect();
        assert!(
            lines[0].starts_with("\u{feff}Brouillon IA — à vérifier (modèle tiny"),
            "{text}"
        );
        assert_eq!(lines[1], "Valeur demandée;Valeur;Source;;");
        assert_eq!(lines[2], "Puissance;36,5;\"p. 2; \"\"annexe\"\"\";;");
        assert_eq!(lines[3], "Mise en service;01/03/2024;;;");
        assert_eq!(lines[4], "Conforme;VRAI;;;");
        assert_eq!(lines[5], "Coût;1200000;\"ligne");
        // Formulas are inert text; a longer row widens the sheet.
        assert_eq!(
            lines[7],
            "Lien;\"'=HYPERLINK(\"\"http://x.invalid\"\")\";'-2;hors;colonnes"
        );
        let bare = String::from_utf8(
            TableFormat::Csv
                .export(&draft(false), &table())
                .expect("csv"),
        )
        .expect("utf-8");
        assert!(bare.starts_with("\u{feff}Valeur demandée;"), "{bare}");
    }

    #[test]
    fn ods_has_typed_cells_and_the_marking() {
        let bytes = TableFormat::Ods
            .export(&draft(true), &table())
            .expect("ods");
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a zip");
        let read = |zip: &mut zip::ZipArchive<_>, name: &str| {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut zip.by_name(name).expect(name), &mut s).expect(name);
            s
        };
        assert_eq!(
            zip.by_index(0).expect("first").name().expect("a name"),
            "mimetype"
        );
        assert_eq!(read(&mut zip, "mimetype"), ODS_MIME);
        let content = read(&mut zip, "content.xml");
        assert!(content
            .contains("office:value-type=\"float\" office:value=\"36.5\"><text:p>36,5</text:p>"));
        assert!(content.contains("office:date-value=\"2024-03-01\"><text:p>01/03/2024</text:p>"));
        assert!(content.contains("office:boolean-value=\"true\""));
        assert!(content.contains("&quot;annexe&quot;"));
        assert!(content.contains("<text:p>ligne</text:p><text:p>suivante</text:p>"));
        assert!(content.contains("Brouillon IA — à vérifier"));
        let meta = read(&mut zip, "meta.xml");
        assert!(meta.contains("civia_ai_generated"), "{meta}");
    }

    #[test]
    fn out_of_bounds_tables_are_refused() {
        let too_wide = Table {
            columns: (0..65).map(|i| i.to_string()).collect(),
            rows: vec![],
        };
        let ragged = Table {
            columns: vec!["a".into()],
            rows: vec![vec![Cell::Empty; MAX_TABLE_COLUMNS + 1]],
        };
        let long = Table {
            columns: vec!["a".into()],
            rows: vec![vec![Cell::Text("x".repeat(MAX_CELL_CHARS + 1))]],
        };
        let none = Table {
            columns: vec![],
            rows: vec![],
        };
        for t in [too_wide, ragged, long, none] {
            assert!(matches!(
                TableFormat::Ods.export(&draft(true), &t),
                Err(Error::InvalidDraft { field: "table", .. })
            ));
        }
    }
}
