//! Extraction, export round trips and hostile inputs, on documents built by the tests.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions fail loudly

mod support;

use std::io::{Cursor, Read, Write};

use civia_documents::{
    chunks, extract, to_docx, to_odt, to_text, Draft, Error, Extracted, Format, Hazard, Limits,
};
use support::{docx_with_body, docx_with_document_xml, odt_with_body, pdf_with, zip_of, Rng};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

fn ok(bytes: &[u8], hint: Option<&str>) -> Extracted {
    match extract(bytes, hint, &Limits::default()) {
        Ok(e) => e,
        Err(e) => panic!("extraction failed: {e} / {}", e.details()),
    }
}

fn err(bytes: &[u8], hint: Option<&str>, limits: &Limits) -> Error {
    match extract(bytes, hint, limits) {
        Ok(e) => panic!("expected an error, got {e:?}"),
        Err(e) => {
            assert!(!e.to_string().is_empty());
            assert!(e.details()["reason"]
                .as_str()
                .is_some_and(|r| !r.is_empty()));
            e
        }
    }
}

const DRAFT_BODY: &str = "Madame, Monsieur,\n\nNous accusons réception de votre demande du 3 mars.\nElle sera étudiée  en conseil.\n\n\tCoût : 1 200 € < 5 000 € & « urgent »\n\n\n\nVeuillez agréer, Madame, Monsieur, nos salutations distinguées.";
const DRAFT_BODY_EXTRACTED: &str = "Madame, Monsieur,\n\nNous accusons réception de votre demande du 3 mars.\nElle sera étudiée en conseil.\n\nCoût : 1 200 € < 5 000 € & « urgent »\n\nVeuillez agréer, Madame, Monsieur, nos salutations distinguées.";

fn draft(visible_notice: bool) -> Draft<'static> {
    Draft {
        title: "Réponse à M. Dupont <réf. 42>",
        body: DRAFT_BODY,
        model: "mistral-7b-instruct-q4",
        model_sha256: Some("ab12cd34"),
        generated_at: "2025-03-14T10:05:00+01:00",
        author: None,
        visible_notice,
    }
}

fn entry(bytes: &[u8], name: &str) -> String {
    let mut archive = ZipArchive::new(Cursor::new(bytes)).unwrap();
    let mut s = String::new();
    archive
        .by_name(name)
        .unwrap()
        .read_to_string(&mut s)
        .unwrap();
    s
}

/// Every XML part of an export must be well-formed.
fn assert_well_formed(bytes: &[u8]) {
    let mut archive = ZipArchive::new(Cursor::new(bytes)).unwrap();
    for i in 0..archive.len() {
        let mut file = archive.by_index(i).unwrap();
        let name = file.name().unwrap().into_owned();
        let mut s = String::new();
        file.read_to_string(&mut s).unwrap();
        if name.ends_with(".xml") || name.ends_with(".rels") {
            let mut reader = quick_xml::Reader::from_str(&s);
            let mut depth = 0i64;
            loop {
                match reader.read_event() {
                    Ok(quick_xml::events::Event::Eof) => break,
                    Ok(quick_xml::events::Event::Start(_)) => depth += 1,
                    Ok(quick_xml::events::Event::End(_)) => depth -= 1,
                    Ok(_) => {}
                    Err(e) => panic!("{name} is not well-formed: {e}"),
                }
            }
            assert_eq!(depth, 0, "{name}");
        }
    }
}

#[test]
fn docx_round_trip_with_notice_and_metadata() {
    let d = draft(true);
    let bytes = to_docx(&d).unwrap();
    assert_well_formed(&bytes);
    let e = ok(&bytes, Some("brouillon.docx"));
    assert_eq!(e.format, Format::Docx);
    assert!(!e.truncated);
    assert_eq!(
        e.text,
        format!(
            "Brouillon IA — à vérifier (modèle mistral-7b-instruct-q4, généré le 14/03/2025 à 10:05)\n\nRéponse à M. Dupont <réf. 42>\n\n{DRAFT_BODY_EXTRACTED}"
        )
    );
    let core = entry(&bytes, "docProps/core.xml");
    assert!(core.contains("<dc:title>Réponse à M. Dupont &lt;réf. 42&gt;</dc:title>"));
    assert!(core.contains("<dc:creator>Civia (IA générative)</dc:creator>"));
    assert!(core.contains("<dc:description>Brouillon généré par IA (modèle mistral-7b-instruct-q4, empreinte ab12cd34) — à vérifier</dc:description>"));
    assert!(core.contains("<cp:keywords>IA générative; brouillon</cp:keywords>"));
    let custom = entry(&bytes, "docProps/custom.xml");
    assert!(custom.contains(r#"name="civia_ai_generated"><vt:bool>true</vt:bool>"#));
    assert!(custom.contains(r#"name="civia_model"><vt:lpwstr>mistral-7b-instruct-q4</vt:lpwstr>"#));
    assert!(custom.contains(r#"name="civia_model_sha256"><vt:lpwstr>ab12cd34</vt:lpwstr>"#));
    assert!(custom
        .contains(r#"name="civia_generated_at"><vt:lpwstr>2025-03-14T10:05:00+01:00</vt:lpwstr>"#));
    let rels = entry(&bytes, "_rels/.rels");
    assert!(rels.contains("docProps/custom.xml") && rels.contains("docProps/core.xml"));
}

#[test]
fn docx_round_trip_without_notice_uses_author() {
    let d = Draft {
        author: Some("Agent Martin"),
        model_sha256: None,
        ..draft(false)
    };
    let bytes = to_docx(&d).unwrap();
    let e = ok(&bytes, None);
    assert_eq!(
        e.text,
        format!("Réponse à M. Dupont <réf. 42>\n\n{DRAFT_BODY_EXTRACTED}")
    );
    let core = entry(&bytes, "docProps/core.xml");
    assert!(core.contains("<dc:creator>Agent Martin</dc:creator>"));
    assert!(core.contains("(modèle mistral-7b-instruct-q4) — à vérifier"));
    assert!(!entry(&bytes, "docProps/custom.xml").contains("civia_model_sha256"));
}

#[test]
fn odt_round_trip_with_notice_and_metadata() {
    let d = draft(true);
    let bytes = to_odt(&d).unwrap();
    assert_well_formed(&bytes);
    {
        let mut archive = ZipArchive::new(Cursor::new(&bytes[..])).unwrap();
        let first = archive.by_index(0).unwrap();
        assert_eq!(first.name().unwrap(), "mimetype");
        assert_eq!(first.compression(), CompressionMethod::Stored);
    }
    // ODF: the mimetype sits uncompressed right after the first local header (offset 38).
    assert_eq!(&bytes[30..38], b"mimetype");
    assert!(bytes[38..].starts_with(b"application/vnd.oasis.opendocument.text"));
    let e = ok(&bytes, Some("application/vnd.oasis.opendocument.text"));
    assert_eq!(e.format, Format::Odt);
    assert_eq!(
        e.text,
        format!(
            "Brouillon IA — à vérifier (modèle mistral-7b-instruct-q4, généré le 14/03/2025 à 10:05)\n\nRéponse à M. Dupont <réf. 42>\n\n{DRAFT_BODY_EXTRACTED}"
        )
    );
    let meta = entry(&bytes, "meta.xml");
    assert!(meta.contains("<dc:title>Réponse à M. Dupont &lt;réf. 42&gt;</dc:title>"));
    assert!(meta.contains("<dc:description>Brouillon généré par IA (modèle mistral-7b-instruct-q4, empreinte ab12cd34) — à vérifier</dc:description>"));
    assert!(meta.contains("<meta:keyword>IA générative</meta:keyword>"));
    assert!(meta.contains(r#"<meta:user-defined meta:name="civia_ai_generated" meta:value-type="boolean">true</meta:user-defined>"#));
    assert!(meta
        .contains(r#"meta:name="civia_model" meta:value-type="string">mistral-7b-instruct-q4<"#));
    assert!(meta.contains(r#"meta:name="civia_model_sha256" meta:value-type="string">ab12cd34<"#));
    assert!(meta.contains(
        r#"meta:name="civia_generated_at" meta:value-type="string">2025-03-14T10:05:00+01:00<"#
    ));
    let manifest = entry(&bytes, "META-INF/manifest.xml");
    assert!(manifest.contains(r#"manifest:full-path="content.xml""#));
    // Runs of spaces are kept in the ODT itself.
    assert!(entry(&bytes, "content.xml").contains("étudiée <text:s text:c=\"1\"/>en"));
}

#[test]
fn text_export_and_draft_validation() {
    let text = to_text(&draft(false));
    assert!(text.starts_with(
        "Brouillon IA — à vérifier (modèle mistral-7b-instruct-q4, généré le 14/03/2025 à 10:05)\n\nRéponse"
    ));
    assert!(text.ends_with("distinguées.\n"));
    let bad = Draft {
        generated_at: "hier",
        ..draft(true)
    };
    for e in [to_docx(&bad).unwrap_err(), to_odt(&bad).unwrap_err()] {
        assert!(matches!(
            e,
            Error::InvalidDraft {
                field: "generated_at",
                ..
            }
        ));
        assert_eq!(e.details()["field"], "generated_at");
    }
    // Control characters that XML cannot carry are dropped, not turned into broken files.
    let odd = Draft {
        body: "a\u{1}b\u{0}c",
        ..draft(false)
    };
    let docx = to_docx(&odd).unwrap();
    assert_well_formed(&docx);
    assert!(ok(&docx, None).text.ends_with("abc"));
}

#[test]
fn docx_with_tables_tabs_breaks_and_accents() {
    let body = r#"
<w:p><w:pPr><w:tabs><w:tab w:val="left" w:pos="720"/></w:tabs></w:pPr><w:r><w:t>Titre « Délibération »</w:t></w:r></w:p>
<w:p><w:r><w:t>Premier</w:t></w:r><w:r><w:tab/><w:t xml:space="preserve">paragraphe   avec </w:t></w:r><w:r><w:t>œuvre &amp; co</w:t><w:br/><w:t>deuxième ligne</w:t></w:r></w:p>
<w:p><w:r><w:t>Texte</w:t></w:r><w:r><mc:AlternateContent><mc:Choice Requires="wps"><w:t> boîte</w:t></mc:Choice><mc:Fallback><w:t> DOUBLON</w:t></mc:Fallback></mc:AlternateContent></w:r><w:r><w:delText>SUPPRIMÉ</w:delText><w:instrText>PAGE</w:instrText></w:r></w:p>
<w:tbl>
 <w:tr><w:tc><w:p><w:r><w:t>Nom</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>Valeur</w:t></w:r></w:p></w:tc></w:tr>
 <w:tr><w:tc><w:p><w:r><w:t>Élément 1</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>10 €</w:t></w:r></w:p></w:tc></w:tr>
 <w:tr><w:tc><w:p><w:r><w:t>Ligne A</w:t></w:r></w:p><w:p><w:r><w:t>Ligne B</w:t></w:r></w:p></w:tc><w:tc><w:p/></w:tc></w:tr>
</w:tbl>
<w:p><w:r><w:t>Fin&#46;</w:t></w:r></w:p>
<w:sectPr/>"#;
    let e = ok(&docx_with_body(body), Some("deliberation.docx"));
    assert_eq!(
        e.text,
        "Titre « Délibération »\n\nPremier\tparagraphe avec œuvre & co\ndeuxième ligne\n\nTexte boîte\n\nNom | Valeur\nÉlément 1 | 10 €\nLigne A Ligne B |\n\nFin."
    );
    assert!(!e.text.contains("PIED DE PAGE") && !e.text.contains("COMMENTAIRE"));
    assert_eq!(e.pages, None);
}

#[test]
fn odt_with_tables_tabs_breaks_and_accents() {
    let body = r#"
<text:h text:outline-level="1">Titre « Délibération »</text:h>
<text:p>Premier<text:tab/>paragraphe<text:s text:c="3"/>avec <text:span>œuvre &amp; co</text:span><text:line-break/>deuxième
   ligne<office:annotation><dc:creator>X</dc:creator><text:p>COMMENTAIRE</text:p></office:annotation></text:p>
<text:list><text:list-item><text:p>Point un<text:note><text:note-body><text:p>NOTE</text:p></text:note-body></text:note></text:p></text:list-item></text:list>
<table:table table:name="T">
 <table:table-column/>
 <table:table-row><table:table-cell><text:p>Nom</text:p></table:table-cell><table:table-cell><text:p>Valeur</text:p></table:table-cell></table:table-row>
 <table:table-row><table:table-cell><text:p>Élément 1</text:p></table:table-cell><table:table-cell><text:p>10 €</text:p></table:table-cell></table:table-row>
 <table:table-row><table:table-cell><text:p>Ligne A</text:p><text:p>Ligne B</text:p></table:table-cell><table:table-cell/></table:table-row>
</table:table>
<text:p>Fin&#46;</text:p>"#;
    let e = ok(&odt_with_body(body), Some("deliberation.odt"));
    assert_eq!(
        e.text,
        "Titre « Délibération »\n\nPremier\tparagraphe avec œuvre & co\ndeuxième ligne\n\nPoint un\n\nNom | Valeur\nÉlément 1 | 10 €\nLigne A Ligne B |\n\nFin."
    );
    assert_eq!(e.format, Format::Odt);
}

fn sample_pdf() -> Vec<u8> {
    pdf_with(
        &[
            &[
                b"Bonjour \xE9t\xE9 \xAB c\x9Cur \xBB",
                b"Deuxi\xE8me ligne (parenth\xE8se)",
            ],
            &[b"Page deux : d\xE9lib\xE9ration"],
        ],
        &[],
        b"",
    )
}

#[test]
fn pdf_text_with_accents_and_pages() {
    let e = ok(&sample_pdf(), Some("application/pdf"));
    assert_eq!(e.format, Format::Pdf);
    assert_eq!(e.pages, Some(2));
    assert!(e.text.contains("Bonjour été « cœur »"), "{:?}", e.text);
    assert!(
        e.text.contains("Deuxième ligne (parenthèse)"),
        "{:?}",
        e.text
    );
    assert!(e.text.contains("Page deux : délibération"), "{:?}", e.text);
    assert!(e.text.find("Bonjour") < e.text.find("Page deux"));
}

#[test]
fn pdf_page_limit_truncates() {
    let limits = Limits {
        max_pdf_pages: 1,
        ..Limits::default()
    };
    let e = extract(&sample_pdf(), None, &limits).unwrap();
    assert_eq!(e.pages, Some(2));
    assert!(e.truncated);
    assert!(!e.text.contains("Page deux"));
}

#[test]
fn pdf_without_text_is_no_text() {
    let e = err(&pdf_with(&[&[]], &[], b""), None, &Limits::default());
    assert!(matches!(e, Error::NoText), "{e:?}");
    assert_eq!(e.details(), serde_json::json!({"reason": "no_text"}));
    assert_eq!(e.code(), "document_without_text");
}

#[test]
fn damaged_pdfs_are_corrupt() {
    let pdf = sample_pdf();
    for cut in [9, 20, pdf.len() / 4] {
        let e = err(&pdf[..cut], None, &Limits::default());
        assert!(
            matches!(
                e,
                Error::Corrupt {
                    format: Format::Pdf,
                    ..
                }
            ),
            "{cut}: {e:?}"
        );
    }
    // Cut later, the repaired file may still give the text of its first page (lenient
    // parsing, as real-world PDFs often have wrong offsets); it must never panic.
    for cut in [pdf.len() / 2, pdf.len() * 3 / 4, pdf.len() - 10] {
        if let Ok(e) = extract(&pdf[..cut], None, &Limits::default()) {
            assert!(e.text.contains("Bonjour"), "{cut}: {e:?}");
        }
    }
    // Garbled: overwrite everything past the header.
    let mut garbled = pdf.clone();
    for (i, b) in garbled.iter_mut().enumerate().skip(15) {
        *b = b"#{]x"[i % 4];
    }
    let e = err(&garbled, None, &Limits::default());
    assert!(
        matches!(
            e,
            Error::Corrupt {
                format: Format::Pdf,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(
        e.details(),
        serde_json::json!({"reason": "corrupt", "format": "PDF"})
    );
}

#[test]
fn encrypted_pdf_is_encrypted() {
    let n = 2 + 2 * 2 + 1; // catalog, pages, 2 × (page, content), font
    let encrypt = format!(
        "<< /Filter /Standard /V 1 /R 2 /O <{o}> /U <{u}> /P -4 >>",
        o = "7a".repeat(32),
        u = "3c".repeat(32)
    );
    let trailer = format!(
        "/Encrypt {} 0 R /ID [<{id}> <{id}>] ",
        n + 1,
        id = "00112233445566778899aabbccddeeff"
    );
    let pdf = pdf_with(
        &[&[b"secret"], &[b"secret"]],
        &[encrypt.as_bytes()],
        trailer.as_bytes(),
    );
    let e = err(&pdf, Some("x.pdf"), &Limits::default());
    assert!(
        matches!(
            e,
            Error::Encrypted {
                format: Format::Pdf
            }
        ),
        "{e:?}"
    );
    assert_eq!(
        e.details(),
        serde_json::json!({"reason": "encrypted", "format": "PDF"})
    );
    assert_eq!(e.code(), "document_encrypted");
}

#[test]
fn plain_text_encodings() {
    let e = ok(
        "  Objet :   réunion\r\n\r\n\r\nœuvre « ici »\x0c page 2 ".as_bytes(),
        Some("notes.txt"),
    );
    assert_eq!(e.format, Format::Txt);
    assert_eq!(e.text, "Objet : réunion\n\nœuvre « ici »\n\npage 2");
    let bom = [b"\xEF\xBB\xBF".as_slice(), "Déjà".as_bytes()].concat();
    assert_eq!(ok(&bom, None).text, "Déjà");
    let latin1 = b"Caf\xe9 cr\xe8me \xab bient\xf4t \xbb \x80 50\r\n";
    assert_eq!(
        ok(latin1, Some("text/plain; charset=iso-8859-1")).text,
        "Café crème « bientôt » € 50"
    );
    let utf16: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain("Élu n°3".encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    assert_eq!(ok(&utf16, None).text, "Élu n°3");
    assert!(matches!(
        err(b"abc\0def", None, &Limits::default()),
        Error::Unsupported { .. }
    ));
    assert!(matches!(
        err(b"abc\0def", Some("a.txt"), &Limits::default()),
        Error::Corrupt {
            format: Format::Txt,
            ..
        }
    ));
    assert!(matches!(
        err(b"\xe9t\xe9\x01\x02", None, &Limits::default()),
        Error::Unsupported { .. }
    ));
}

#[test]
fn text_limit_truncates() {
    let limits = Limits {
        max_text_chars: 10,
        ..Limits::default()
    };
    let e = extract("é".repeat(50).as_bytes(), None, &limits).unwrap();
    assert!(e.truncated);
    assert_eq!(e.text, "é".repeat(10));
    let big = "mot ".repeat(100_000);
    let e = extract(
        &to_docx(&Draft {
            body: &big,
            ..draft(false)
        })
        .unwrap(),
        None,
        &limits,
    )
    .unwrap();
    assert!(e.truncated && e.text.chars().count() <= 10);
}

#[test]
fn simple_refusals() {
    let limits = Limits::default();
    assert!(matches!(err(b"", None, &limits), Error::Empty));
    let small = Limits {
        max_bytes: 10,
        ..Limits::default()
    };
    let e = err(b"hello world!", None, &small);
    assert!(matches!(e, Error::TooLarge { bytes: 12, max: 10 }));
    let docx = to_docx(&draft(false)).unwrap();
    let e = err(&docx, Some("rapport.pdf"), &limits);
    assert!(
        matches!(
            e,
            Error::FormatMismatch {
                declared: Format::Pdf,
                detected: Format::Docx
            }
        ),
        "{e:?}"
    );
    assert_eq!(
        e.details(),
        serde_json::json!({"reason": "format_mismatch", "declared": "PDF", "detected": "DOCX"})
    );
    let e = err(&sample_pdf(), Some("rapport.odt"), &limits);
    assert!(matches!(
        e,
        Error::FormatMismatch {
            declared: Format::Odt,
            detected: Format::Pdf
        }
    ));
    // Hints we do not know are ignored; the bytes decide.
    assert_eq!(
        ok(&docx, Some("application/octet-stream")).format,
        Format::Docx
    );
    let mut rng = Rng(0x5eed);
    let random: Vec<u8> = (0..4096).map(|_| rng.next() as u8).collect();
    let e = err(&random, None, &limits);
    assert!(matches!(e, Error::Unsupported { .. }), "{e:?}");
    assert_eq!(e.details()["reason"], "unsupported");
    assert!(e
        .to_string()
        .contains("accepted formats: PDF, DOCX, ODT, TXT, Markdown, HTML, PNG, JPEG, TIFF"));
    let e = err(&random, Some("scan.pdf"), &limits);
    assert!(
        matches!(
            e,
            Error::Corrupt {
                format: Format::Pdf,
                ..
            }
        ),
        "{e:?}"
    );
    // "%PDF-" quoted in a text file does not make it a PDF; after binary junk it does.
    assert_eq!(
        ok(b"Voir le fichier %PDF-1.7 joint.", None).format,
        Format::Txt
    );
    let junk_then_pdf = [&[0x00u8, 0xFF, 0x01][..], &sample_pdf()].concat();
    assert_eq!(ok(&junk_then_pdf, None).format, Format::Pdf);
    let ole = [
        &[0xD0u8, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1][..],
        &[0u8; 100],
    ]
    .concat();
    assert!(matches!(
        err(&ole, Some("vieux.doc"), &limits),
        Error::Unsupported { .. }
    ));
    let xlsx = zip_of(&[
        ("[Content_Types].xml", b"<Types/>"),
        ("xl/workbook.xml", b"<w/>"),
    ]);
    assert!(matches!(
        err(&xlsx, None, &limits),
        Error::Unsupported { .. }
    ));
    let truncated_docx = &docx[..docx.len() - 30];
    assert!(matches!(
        err(truncated_docx, None, &limits),
        Error::Corrupt {
            format: Format::Docx,
            ..
        }
    ));
    let odt = to_odt(&draft(false)).unwrap();
    assert!(matches!(
        err(&odt[..odt.len() / 2], None, &limits),
        Error::Corrupt {
            format: Format::Odt,
            ..
        }
    ));
}

#[test]
fn doctype_and_entities_are_refused() {
    let bomb = r#"<?xml version="1.0"?><!DOCTYPE w:document [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>&c;</w:t></w:r></w:p></w:body></w:document>"#;
    let e = err(&docx_with_document_xml(bomb), None, &Limits::default());
    assert!(
        matches!(
            e,
            Error::Hostile {
                format: Format::Docx,
                hazard: Hazard::Doctype { .. }
            }
        ),
        "{e:?}"
    );
    assert_eq!(
        e.details(),
        serde_json::json!({"reason": "hostile", "format": "DOCX", "hazard": "doctype"})
    );
    let external = r#"<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>&x;</w:t></w:r></w:p></w:body></w:document>"#;
    assert!(matches!(
        err(&docx_with_document_xml(external), None, &Limits::default()),
        Error::Hostile { .. }
    ));
    // An undeclared entity without DOCTYPE is malformed XML, not silently dropped.
    let e = err(
        &docx_with_body("<w:p><w:r><w:t>&x;</w:t></w:r></w:p>"),
        None,
        &Limits::default(),
    );
    assert!(
        matches!(
            e,
            Error::Corrupt {
                format: Format::Docx,
                ..
            }
        ),
        "{e:?}"
    );
    let e = err(
        &odt_with_body("<text:p>&nbsp;</text:p>"),
        None,
        &Limits::default(),
    );
    assert!(
        matches!(
            e,
            Error::Corrupt {
                format: Format::Odt,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn zip_bomb_declared_size_is_refused() {
    // 300 MiB of zeros, deflated while streaming: a few hundred KiB on disk.
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    let deflated = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    zip.start_file("[Content_Types].xml", deflated).unwrap();
    zip.write_all(support::CONTENT_TYPES.as_bytes()).unwrap();
    zip.start_file("word/document.xml", deflated).unwrap();
    let zeros = vec![0u8; 1024 * 1024];
    for _ in 0..300 {
        zip.write_all(&zeros).unwrap();
    }
    let bytes = zip.finish().unwrap().into_inner();
    assert!(bytes.len() < 2 * 1024 * 1024, "{}", bytes.len());
    let e = err(&bytes, None, &Limits::default());
    assert!(
        matches!(
            e,
            Error::Hostile {
                format: Format::Docx,
                hazard: Hazard::EntryTooLarge { .. }
            }
        ),
        "{e:?}"
    );
    assert_eq!(e.details()["hazard"], "entry_too_large");
}

#[test]
fn zip_bomb_with_lying_header_is_bounded() {
    let body = format!(
        "<w:p><w:r><w:t>{}</w:t></w:r></w:p>",
        "a".repeat(2 * 1024 * 1024)
    );
    let mut bytes = docx_with_body(&body);
    let limits = Limits {
        max_uncompressed_bytes: 1024 * 1024,
        ..Limits::default()
    };
    assert!(matches!(
        err(&bytes, None, &limits),
        Error::Hostile {
            hazard: Hazard::EntryTooLarge { .. },
            ..
        }
    ));
    // Now make every header claim the entry inflates to 100 bytes.
    let real = (body.len() as u32 + 200..body.len() as u32 + 400).collect::<Vec<_>>();
    let mut patched = 0;
    for sig in [&b"PK\x03\x04"[..], &b"PK\x01\x02"[..]] {
        let size_at = if sig == b"PK\x03\x04" { 22 } else { 24 };
        let mut i = 0;
        while let Some(pos) = bytes[i..].windows(4).position(|w| w == sig) {
            let at = i + pos + size_at;
            let size = u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
            if real.contains(&size) {
                bytes[at..at + 4].copy_from_slice(&100u32.to_le_bytes());
                patched += 1;
            }
            i += pos + 4;
        }
    }
    assert_eq!(patched, 2);
    let e = err(&bytes, None, &limits);
    assert!(
        matches!(e, Error::Hostile { .. } | Error::Corrupt { .. }),
        "{e:?}"
    );
}

#[test]
fn too_many_entries_are_refused() {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    let stored = SimpleFileOptions::default().compression_method(CompressionMethod::Stored);
    zip.start_file("[Content_Types].xml", stored).unwrap();
    zip.write_all(support::CONTENT_TYPES.as_bytes()).unwrap();
    zip.start_file("word/document.xml", stored).unwrap();
    zip.write_all(
        b"<w:document xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\"/>",
    )
    .unwrap();
    for i in 0..9_999 {
        zip.start_file(format!("word/media/f{i}"), stored).unwrap();
    }
    let bytes = zip.finish().unwrap().into_inner();
    let e = err(&bytes, None, &Limits::default());
    assert!(
        matches!(
            e,
            Error::Hostile {
                hazard: Hazard::TooManyEntries {
                    count: 10_001,
                    max: 10_000
                },
                ..
            }
        ),
        "{e:?}"
    );
}

/// Thousands of mutated documents: any result is fine, a panic is not.
#[test]
fn mutation_fuzz_never_panics() {
    let seeds = [
        to_docx(&draft(true)).unwrap(),
        to_odt(&draft(true)).unwrap(),
        sample_pdf(),
        docx_with_body(
            "<w:tbl><w:tr><w:tc><w:p><w:r><w:t>x</w:t></w:r></w:p></w:tc></w:tr></w:tbl>",
        ),
    ];
    let limits = Limits::default();
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    let mut outcomes = [0usize; 2];
    for seed in &seeds {
        for round in 0..1500 {
            let mut m = seed.clone();
            match round % 3 {
                0 => {
                    for _ in 0..1 + rng.below(8) {
                        let i = rng.below(m.len());
                        m[i] ^= 1 << rng.below(8);
                    }
                }
                1 => m.truncate(rng.below(m.len())),
                _ => {
                    let i = rng.below(m.len());
                    let len = rng.below(64).min(m.len() - i);
                    for b in &mut m[i..i + len] {
                        *b = rng.next() as u8;
                    }
                }
            }
            let r = extract(&m, None, &limits);
            outcomes[usize::from(r.is_ok())] += 1;
            if let Err(e) = r {
                assert!(e.details()["reason"].is_string(), "{e:?}");
            }
        }
    }
    assert!(outcomes[0] > 0 && outcomes[1] > 0, "{outcomes:?}");
}

#[test]
fn chunks_cover_extracted_text() {
    let e = ok(&to_docx(&draft(true)).unwrap(), None);
    for max in [1, 10, 40, 100, 10_000] {
        let parts = chunks(&e.text, max);
        assert_eq!(parts.concat(), e.text);
        assert!(parts.iter().all(|p| p.chars().count() <= max));
    }
}

#[test]
fn every_error_has_english_text_a_code_and_details() {
    let errors = [
        Error::Empty,
        Error::TooLarge {
            bytes: 50 * 1024 * 1024,
            max: 20 * 1024 * 1024,
        },
        Error::Unsupported { detected: "x" },
        Error::FormatMismatch {
            declared: Format::Pdf,
            detected: Format::Docx,
        },
        Error::Corrupt {
            format: Format::Pdf,
            reason: "x".into(),
        },
        Error::Encrypted {
            format: Format::Pdf,
        },
        Error::NoText,
        Error::Hostile {
            format: Format::Odt,
            hazard: Hazard::TooManyEntries { count: 2, max: 1 },
        },
        Error::InvalidDraft {
            field: "model",
            reason: "x",
        },
        Error::Export {
            format: "ODT",
            reason: "x".into(),
        },
    ];
    for e in errors {
        let en = e.to_string();
        assert!(en.is_ascii() || en.contains('×'), "English: {en}");
        assert!(!e.code().is_empty());
        let d = e.details();
        let reason = d["reason"].as_str().unwrap_or_default();
        assert!(!reason.is_empty() && reason.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
    }
    assert_eq!(
        Error::TooLarge {
            bytes: 50 * 1024 * 1024,
            max: 20 * 1024 * 1024
        }
        .details(),
        serde_json::json!({"reason": "too_large", "bytes": 52428800, "max_bytes": 20971520})
    );
}

#[test]
fn export_formats_by_name() {
    use civia_documents::ExportFormat;
    let d = draft(true);
    for (name, ext, mime) in [
        (
            "docx",
            "docx",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ),
        ("odt", "odt", "application/vnd.oasis.opendocument.text"),
        ("txt", "txt", "text/plain; charset=utf-8"),
    ] {
        let f: ExportFormat = name.parse().expect(name);
        assert_eq!((f.extension(), f.content_type()), (ext, mime));
        let bytes = f.export(&d).expect(name);
        // The same file as the format's own writer.
        let direct = match f {
            ExportFormat::Docx => civia_documents::to_docx(&d).expect("docx"),
            ExportFormat::Odt => civia_documents::to_odt(&d).expect("odt"),
            ExportFormat::Txt => civia_documents::to_text(&d).into_bytes(),
        };
        assert_eq!(bytes.len(), direct.len(), "{name}");
    }
    for bad in ["pdf", "DOCX", "", "txt "] {
        assert!(bad.parse::<ExportFormat>().is_err(), "{bad}");
    }
}

#[test]
fn draft_titles() {
    use civia_documents::{title_acceptable, MAX_TITLE_CHARS};
    assert!(title_acceptable(""));
    assert!(title_acceptable("Courrier à M. Durand"));
    assert!(title_acceptable(&"é".repeat(MAX_TITLE_CHARS)));
    assert!(!title_acceptable(&"é".repeat(MAX_TITLE_CHARS + 1)));
    assert!(!title_acceptable("ligne\nsuivante"));
    assert!(!title_acceptable("tab\there"));
}
