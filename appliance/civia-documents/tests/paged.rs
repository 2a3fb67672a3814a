//! Text page by page (in process, no OCR), and the formats added with it: Markdown, HTML,
//! and the scanned images that only OCR reads.
#![allow(clippy::unwrap_used)]

mod support;

use civia_documents::{extract, extract_paged, Error, Format, Limits, Page, Paged};
use support::{docx_with_body, odt_with_body, pdf_with};

fn paged(bytes: &[u8], hint: Option<&str>) -> Paged {
    match extract_paged(bytes, hint, &Limits::default()) {
        Ok(p) => p,
        Err(e) => panic!("extraction failed: {e} / {}", e.details()),
    }
}

/// (number, text) of each page.
fn pages(p: &Paged) -> Vec<(Option<u32>, &str)> {
    p.pages
        .iter()
        .map(|p| (p.number, p.text.as_str()))
        .collect()
}

#[test]
fn pdf_pages_are_numbered_blank_ones_included() {
    let pdf = pdf_with(
        &[&[b"Page un : d\xE9lib\xE9ration"], &[], &[b"Page trois"]],
        &[],
        b"",
    );
    let p = paged(&pdf, Some("a.pdf"));
    assert_eq!(p.format, Format::Pdf);
    assert_eq!(
        pages(&p),
        [
            (Some(1), "Page un : délibération"),
            (Some(2), ""),
            (Some(3), "Page trois")
        ]
    );
    assert_eq!(
        (p.page_count, p.ocr_pages, p.truncated),
        (Some(3), 0, false)
    );
    // The whole text is the pages', blank lines between them, as before.
    let whole = extract(&pdf, None, &Limits::default()).unwrap();
    let joined: Vec<&str> = p
        .pages
        .iter()
        .map(|p| p.text.as_str())
        .filter(|t| !t.is_empty())
        .collect();
    assert_eq!(whole.text, joined.join("\n\n"));
}

#[test]
fn the_text_budget_is_shared_by_all_pages() {
    let pdf = pdf_with(
        &[&[b"abcdefghij"], &[b"klmnopqrst"], &[b"uvwxyz"]],
        &[],
        b"",
    );
    let limits = Limits {
        max_text_chars: 15,
        ..Limits::default()
    };
    let p = extract_paged(&pdf, None, &limits).unwrap();
    assert_eq!(pages(&p), [(Some(1), "abcdefghij"), (Some(2), "klmno")]);
    assert!(p.truncated);
    assert_eq!(p.page_count, Some(3));
    let limits = Limits {
        max_pdf_pages: 2,
        ..Limits::default()
    };
    let p = extract_paged(&pdf, None, &limits).unwrap();
    assert_eq!(p.pages.len(), 2);
    assert!(p.truncated);
    assert_eq!(p.page_count, Some(3));
}

#[test]
fn a_pdf_without_any_text_is_refused_without_ocr() {
    let e = extract_paged(&pdf_with(&[&[], &[]], &[], b""), None, &Limits::default());
    assert!(matches!(e, Err(Error::NoText)), "{e:?}");
}

const P: &str = "<w:p><w:r><w:t>";
const EP: &str = "</w:t></w:r></w:p>";

fn para(text: &str) -> String {
    format!("{P}{text}{EP}")
}

#[test]
fn docx_page_breaks() {
    // No page mark: one page without a number.
    let p = paged(&docx_with_body(&(para("Un") + &para("Deux"))), None);
    assert_eq!(pages(&p), [(None, "Un\n\nDeux")]);
    assert_eq!(p.page_count, None);
    // An explicit break, then the break Word rendered at the same place: one break only.
    let body = format!(
        "{}<w:p><w:r><w:t>Fin de la page un</w:t></w:r><w:r><w:br w:type=\"page\"/></w:r></w:p>\
         <w:p><w:r><w:lastRenderedPageBreak/><w:t>Page deux</w:t></w:r></w:p>\
         <w:p><w:pPr><w:pageBreakBefore/></w:pPr><w:r><w:lastRenderedPageBreak/><w:t>Page trois</w:t></w:r></w:p>\
         <w:p><w:r><w:t>suite</w:t></w:r><w:r><w:lastRenderedPageBreak/><w:t>Page quatre (rendue)</w:t></w:r></w:p>\
         <w:p><w:r><w:br/><w:t>ligne</w:t></w:r></w:p>",
        para("Début")
    );
    let p = paged(&docx_with_body(&body), None);
    assert_eq!(
        pages(&p),
        [
            (Some(1), "Début\n\nFin de la page un"),
            (Some(2), "Page deux"),
            (Some(3), "Page trois\n\nsuite"),
            (Some(4), "Page quatre (rendue)\n\nligne")
        ]
    );
    assert_eq!(p.page_count, Some(4));
    // The whole text of the parse endpoint is unchanged by the page marks.
    let whole = extract(&docx_with_body(&body), None, &Limits::default()).unwrap();
    assert_eq!(
        whole.text,
        "Début\n\nFin de la page un\n\nPage deux\n\nPage trois\n\nsuitePage quatre (rendue)\n\nligne"
    );
    // pageBreakBefore on the first paragraph makes no empty first page; w:val="0" is off;
    // two explicit breaks in a row leave a blank page.
    let body = "<w:p><w:pPr><w:pageBreakBefore/></w:pPr><w:r><w:t>Premier</w:t></w:r></w:p>\
         <w:p><w:pPr><w:pageBreakBefore w:val=\"0\"/></w:pPr><w:r><w:t>même page</w:t></w:r></w:p>\
         <w:p><w:r><w:br w:type=\"page\"/><w:br w:type=\"page\"/><w:t>Troisième</w:t></w:r></w:p>";
    let p = paged(&docx_with_body(body), None);
    assert_eq!(
        pages(&p),
        [
            (Some(1), "Premier\n\nmême page"),
            (Some(2), ""),
            (Some(3), "Troisième")
        ]
    );
    // A section break starts a new page unless the next section is continuous; a text box's
    // breaks are not the page's.
    let body = format!(
        "<w:p><w:pPr><w:sectPr><w:type w:val=\"continuous\"/></w:sectPr></w:pPr><w:r><w:t>A</w:t></w:r></w:p>\
         <w:p><w:pPr><w:sectPr/></w:pPr><w:r><w:t>B</w:t></w:r></w:p>\
         <w:p><w:r><w:t>C</w:t></w:r><w:r><w:drawing><w:txbxContent><w:p><w:r><w:br w:type=\"page\"/><w:t>boîte</w:t></w:r></w:p></w:txbxContent></w:drawing></w:r></w:p>\
         {}<w:sectPr><w:type w:val=\"nextPage\"/></w:sectPr>",
        para("D")
    );
    let p = paged(&docx_with_body(&body), None);
    assert_eq!(pages(&p), [(Some(1), "A\n\nB"), (Some(2), "C\nboîte\n\nD")]);
}

#[test]
fn odt_page_breaks() {
    let styles = r#"<style:style style:name="P1" style:family="paragraph"><style:paragraph-properties fo:break-before="page"/></style:style><style:style style:name="P2" style:family="paragraph"><style:paragraph-properties fo:break-after="page"/></style:style><style:style style:name="T1" style:family="table"><style:table-properties fo:break-before="page"/></style:style>"#;
    let odt = |body: &str| {
        // odt_with_body's automatic styles are replaced by ours.
        let bytes = odt_with_body(body);
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        let mut content = String::new();
        std::io::Read::read_to_string(&mut archive.by_name("content.xml").unwrap(), &mut content)
            .unwrap();
        let content = content
            .replace(
                "<office:automatic-styles><text:p>STYLE</text:p></office:automatic-styles>",
                &format!("<office:automatic-styles>{styles}</office:automatic-styles>"),
            )
            .replace(
                "xmlns:dc=",
                "xmlns:style=\"urn:oasis:names:tc:opendocument:xmlns:style:1.0\" xmlns:fo=\"urn:oasis:names:tc:opendocument:xmlns:xsl-fo-compatible:1.0\" xmlns:dc=",
            );
        support::zip_of(&[
            ("mimetype", b"application/vnd.oasis.opendocument.text"),
            ("content.xml", content.as_bytes()),
        ])
    };
    let p = paged(&odt("<text:p>Un</text:p><text:p>Deux</text:p>"), None);
    assert_eq!(pages(&p), [(None, "Un\n\nDeux")]);
    let body = "<text:h>Titre</text:h>\
        <text:p text:style-name=\"P1\"><text:soft-page-break/>Page deux (saut avant)</text:p>\
        <text:p text:style-name=\"P2\">fin de la page deux (saut après)</text:p>\
        <text:p>Page trois <text:soft-page-break/>Page quatre (saut rendu)</text:p>\
        <table:table table:style-name=\"T1\"><table:table-row><table:table-cell><text:p>Page cinq</text:p></table:table-cell></table:table-row></table:table>";
    let p = paged(&odt(body), None);
    assert_eq!(
        pages(&p),
        [
            (Some(1), "Titre"),
            (
                Some(2),
                "Page deux (saut avant)\n\nfin de la page deux (saut après)"
            ),
            (Some(3), "Page trois"),
            (Some(4), "Page quatre (saut rendu)"),
            (Some(5), "Page cinq")
        ]
    );
    assert_eq!(p.page_count, Some(5));
}

#[test]
fn form_feeds_separate_text_pages() {
    let p = paged(
        "Page un\x0cPage deux\x0c\x0cPage quatre\x0c\n".as_bytes(),
        None,
    );
    assert_eq!(
        pages(&p),
        [
            (Some(1), "Page un"),
            (Some(2), "Page deux"),
            (Some(3), ""),
            (Some(4), "Page quatre")
        ]
    );
    let p = paged("Sans saut de page.".as_bytes(), Some("notes.txt"));
    assert_eq!(pages(&p), [(None, "Sans saut de page.")]);
    assert_eq!((p.format, p.page_count), (Format::Txt, None));
}

#[test]
fn markdown_is_text_with_its_headings() {
    let md = "# Conseil municipal\n\n## Délibérations\n\n- cantine : 3,20 €\n- *voirie*\n";
    for hint in ["compte-rendu.md", "text/markdown; charset=utf-8"] {
        let p = paged(md.as_bytes(), Some(hint));
        assert_eq!(p.format, Format::Markdown);
        assert_eq!(
            pages(&p),
            [(
                None,
                "# Conseil municipal\n\n## Délibérations\n\n- cantine : 3,20 €\n- *voirie*"
            )]
        );
    }
    // Without a name, the bytes say text.
    assert_eq!(paged(md.as_bytes(), None).format, Format::Txt);
}

const PAGE: &str = r#"<!DOCTYPE html>
<html lang="fr"><head><meta charset="utf-8"><title>TITRE DE L'ONGLET</title>
<style>body { color: red } p::before { content: "STYLE" }</style>
<script>if (a < b && c > d) { document.write("<p>SCRIPT</p>"); } // </p></script>
</head>
<body><nav>Accueil</nav><h1>Compte rendu du conseil municipal</h1>
<p>Le conseil a d&eacute;lib&eacute;r&eacute; sur la cantine &amp; la voirie&nbsp;: 3,20&#8364;
le repas.</p><h2>Travaux</h2><div>Rue des &Eacute;coles<br>fermée en novembre</div>
<table><tr><th>Objet</th><th>Vote</th></tr><tr><td>Cantine</td><td>unanimité</td></tr></table>
<pre>ligne  1
ligne 2</pre><noscript>ACTIVEZ JAVASCRIPT</noscript><template><p>MODELE</p></template>
<script type="module">import("SCRIPT2")</script><!-- COMMENTAIRE --></body></html>"#;

#[test]
fn html_text_without_scripts_styles_or_head() {
    let p = paged(PAGE.as_bytes(), None);
    assert_eq!(p.format, Format::Html);
    assert_eq!(
        pages(&p),
        [(
            None,
            "Accueil\n\nCompte rendu du conseil municipal\n\nLe conseil a délibéré sur la cantine & la voirie\u{a0}: 3,20€ le repas.\n\nTravaux\n\nRue des Écoles\nfermée en novembre\n\nObjet | Vote\nCantine | unanimité\n\nligne 1\nligne 2"
        )]
    );
    for absent in [
        "SCRIPT",
        "STYLE",
        "TITRE",
        "JAVASCRIPT",
        "MODELE",
        "COMMENTAIRE",
        "color",
    ] {
        assert!(!p.pages[0].text.contains(absent), "{absent}");
    }
    // The whole text is the same.
    assert_eq!(
        extract(PAGE.as_bytes(), None, &Limits::default())
            .unwrap()
            .text,
        p.pages[0].text
    );
    // A fragment declared HTML is HTML; an HTML file declared as text stays text.
    let fragment = "<p>Un &lt;deux&gt;</p><p>trois</p>";
    assert_eq!(
        pages(&paged(fragment.as_bytes(), Some("page.html"))),
        [(None, "Un <deux>\n\ntrois")]
    );
    assert_eq!(
        paged(fragment.as_bytes(), Some("text/html")).format,
        Format::Html
    );
    assert_eq!(paged(PAGE.as_bytes(), Some("a.txt")).format, Format::Txt);
    // Quoting a tag does not make a text HTML; an unclosed head ends at the body.
    assert_eq!(paged(b"<html> est une balise", None).format, Format::Html);
    assert_eq!(paged(b"La balise <html> ouvre", None).format, Format::Txt);
    let unclosed = "<html><head><title>T</title><body><p>Corps</p>";
    assert_eq!(pages(&paged(unclosed.as_bytes(), None)), [(None, "Corps")]);
}

/// A PNG whose header says `w` × `h` pixels (nothing else is read before OCR).
pub fn png_header(w: u32, h: u32) -> Vec<u8> {
    let mut b = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    b.extend_from_slice(&w.to_be_bytes());
    b.extend_from_slice(&h.to_be_bytes());
    b.extend_from_slice(&[8, 0, 0, 0, 0, 0, 0, 0, 0]);
    b.extend_from_slice(b"\0\0\0\0IEND\xaeB`\x82");
    b
}

#[test]
fn images_need_ocr() {
    let png = std::fs::read(support::fixture("scan-deliberation.png")).unwrap();
    for (bytes, format) in [
        (png.clone(), Format::Png),
        (
            std::fs::read(support::fixture("scan-deliberation.jpg")).unwrap(),
            Format::Jpeg,
        ),
        (
            std::fs::read(support::fixture("scan-two-pages.tif")).unwrap(),
            Format::Tiff,
        ),
    ] {
        let e = extract(&bytes, None, &Limits::default()).unwrap_err();
        assert!(
            matches!(e, Error::NeedsOcr { format: f } if f == format),
            "{e:?}"
        );
        assert_eq!(
            e.details(),
            serde_json::json!({"reason": "needs_ocr", "format": format.to_string()})
        );
        let e = extract_paged(&bytes, None, &Limits::default()).unwrap_err();
        assert!(matches!(e, Error::NeedsOcr { .. }), "{e:?}");
    }
    // Among images the bytes decide; an image declared as a PDF is a mismatch.
    let e = extract(&png, Some("scan.jpg"), &Limits::default()).unwrap_err();
    assert!(
        matches!(
            e,
            Error::NeedsOcr {
                format: Format::Png
            }
        ),
        "{e:?}"
    );
    let e = extract(&png, Some("scan.pdf"), &Limits::default()).unwrap_err();
    assert!(matches!(e, Error::FormatMismatch { .. }), "{e:?}");
    let e = extract(b"GIF89a\x01\x00\x01\x00", None, &Limits::default()).unwrap_err();
    assert!(matches!(e, Error::Unsupported { .. }), "{e:?}");
    for (hint, format) in [
        ("image/png", Format::Png),
        ("photo.JPEG", Format::Jpeg),
        ("image/tiff", Format::Tiff),
        ("archive.tif", Format::Tiff),
        ("page.htm", Format::Html),
        ("notes.markdown", Format::Markdown),
    ] {
        assert_eq!(Format::from_hint(hint), Some(format), "{hint}");
    }
}

#[test]
fn damaged_images_are_corrupt() {
    let jpeg = std::fs::read(support::fixture("scan-deliberation.jpg")).unwrap();
    let png = std::fs::read(support::fixture("scan-deliberation.png")).unwrap();
    let tiff = std::fs::read(support::fixture("scan-two-pages.tif")).unwrap();
    for (bytes, format) in [
        (&jpeg[..jpeg.len() / 2], Format::Jpeg),
        (&jpeg[..300], Format::Jpeg),
        (&png[..png.len() - 20], Format::Png),
        (&tiff[..tiff.len() / 2], Format::Tiff),
    ] {
        let e = extract_paged(bytes, None, &Limits::default()).unwrap_err();
        assert!(
            matches!(&e, Error::Corrupt { format: f, .. } if *f == format),
            "{format}: {e:?}"
        );
        assert_eq!(
            e.details(),
            serde_json::json!({"reason": "corrupt", "format": format.to_string()})
        );
    }
    // A header claiming 100000 × 100000 pixels is read, not decoded.
    let e = extract_paged(&png_header(100_000, 100_000), None, &Limits::default());
    assert!(matches!(e, Err(Error::NeedsOcr { .. })), "{e:?}");
}

#[test]
fn pages_serialise() {
    let p = Paged {
        format: Format::Png,
        pages: vec![Page {
            number: Some(1),
            text: "é".into(),
        }],
        page_count: Some(1),
        ocr_pages: 1,
        truncated: false,
    };
    let json = serde_json::to_string(&p).unwrap();
    assert_eq!(serde_json::from_str::<Paged>(&json).unwrap(), p);
}
