//! OCR through `isolated::extract_paged`, running the real tesseract and pdftoppm (Debian's
//! tesseract-ocr, tesseract-ocr-fra and poppler-utils, installed by appliance/scripts/deps.sh)
//! on the scanned fixtures of tests/fixtures, and hostile inputs.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use civia_documents::isolated::{self, Sandbox};
use civia_documents::{Error, ErrorKind, Format, Limits, Ocr, Paged};
use support::{docx_with_body, fixture, pdf_with};

/// The extraction child: this crate's example `extract-document`, which cargo builds with the
/// tests (target/<profile>/examples, beside the tests' deps/ folder).
fn sandbox() -> Sandbox {
    let exe = std::env::current_exe().unwrap();
    let program = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|profile| profile.join("examples/extract-document"))
        .unwrap();
    assert!(program.exists(), "{} is not built", program.display());
    Sandbox {
        program,
        args: Vec::new(),
        wall: Duration::from_secs(30),
        memory_bytes: 1024 * 1024 * 1024,
    }
}

fn ocr() -> Ocr {
    Ocr::default()
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).unwrap()
}

fn paged(bytes: &[u8], hint: Option<&str>, ocr: Option<&Ocr>) -> Paged {
    match isolated::extract_paged(&sandbox(), bytes, hint, &Limits::default(), ocr) {
        Ok(p) => p,
        Err(e) => panic!("extraction failed: {e} / {}", e.details()),
    }
}

fn assert_deliberation(text: &str) {
    for words in [
        "délibérations du conseil municipal",
        "Séance du 12 mars 2024",
        "cantine scolaire à 3,20 euros",
        "RÉPUBLIQUE FRANÇAISE",
    ] {
        assert!(text.contains(words), "{words:?} not in {text:?}");
    }
}

#[test]
fn ocr_is_installed() {
    ocr().check().unwrap();
    let e = Ocr {
        language: "zzz".into(),
        ..ocr()
    }
    .check()
    .unwrap_err();
    assert!(matches!(e, Error::OcrUnavailable { .. }), "{e:?}");
}

#[test]
fn scanned_images_are_read_in_french() {
    for (name, format) in [
        ("scan-deliberation.png", Format::Png),
        ("scan-deliberation.jpg", Format::Jpeg),
        ("scan-sideways.png", Format::Png),
    ] {
        let p = paged(&read(name), Some(name), Some(&ocr()));
        assert_eq!(p.format, format);
        assert_eq!(
            (p.page_count, p.ocr_pages, p.truncated),
            (Some(1), 1, false)
        );
        assert_eq!(p.pages.len(), 1);
        assert_eq!(p.pages[0].number, Some(1));
        assert_deliberation(&p.pages[0].text);
    }
    let p = paged(&read("scan-two-pages.tif"), None, Some(&ocr()));
    assert_eq!(p.format, Format::Tiff);
    assert_eq!((p.page_count, p.ocr_pages), (Some(2), 2));
    assert_eq!(
        p.pages.iter().map(|p| p.number).collect::<Vec<_>>(),
        [Some(1), Some(2)]
    );
    assert_deliberation(&p.pages[0].text);
    assert!(
        p.pages[1].text.contains("ARRÊTÉ MUNICIPAL"),
        "{:?}",
        p.pages[1]
    );
    assert!(
        p.pages[1].text.contains("fermée à la circulation"),
        "{:?}",
        p.pages[1]
    );
    assert!(!p.pages[0].text.contains("ARRÊTÉ"));
    // Without OCR an image is refused, with the same words as in process.
    let e = isolated::extract_paged(
        &sandbox(),
        &read("scan-deliberation.png"),
        None,
        &Limits::default(),
        None,
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoText);
}

#[test]
fn a_scanned_page_between_text_pages_keeps_its_number() {
    let pdf = read("mixed-scan.pdf");
    let p = paged(&pdf, Some("conseil.pdf"), Some(&ocr()));
    assert_eq!(p.format, Format::Pdf);
    assert_eq!(
        (p.page_count, p.ocr_pages, p.truncated),
        (Some(3), 1, false)
    );
    let numbers: Vec<_> = p.pages.iter().map(|p| p.number).collect();
    assert_eq!(numbers, [Some(1), Some(2), Some(3)]);
    assert!(
        p.pages[0].text.contains("procès-verbal"),
        "{:?}",
        p.pages[0]
    );
    assert_deliberation(&p.pages[1].text);
    assert!(p.pages[2].text.contains("clôture"), "{:?}", p.pages[2]);
    // Without OCR, the scanned page is empty and the others read the same.
    let plain = paged(&pdf, None, None);
    assert_eq!(plain.ocr_pages, 0);
    assert_eq!(plain.pages[1].text, "");
    assert_eq!(plain.pages[0], p.pages[0]);
    assert_eq!(plain.pages[2], p.pages[2]);
}

#[test]
fn thousands_of_blank_pages_are_bounded() {
    // One text page and 1,999 blank ones: only max_pages of them are rendered and read.
    let mut pages: Vec<&[&[u8]]> = vec![&[b"Registre des arretes, page de garde du volume."]];
    pages.resize(2000, &[]);
    let pdf = pdf_with(&pages, &[], b"");
    let ocr = Ocr {
        max_pages: 3,
        ..ocr()
    };
    let t0 = Instant::now();
    let p = paged(&pdf, None, Some(&ocr));
    assert!(t0.elapsed() < Duration::from_secs(60), "{:?}", t0.elapsed());
    assert_eq!(
        (p.page_count, p.ocr_pages, p.truncated),
        (Some(2000), 3, true)
    );
    assert_eq!(p.pages.len(), 2000);
    assert!(p.pages[0].text.starts_with("Registre"));
    // Nothing but blank pages: no text even with OCR, a clear refusal.
    let pdf = pdf_with(&vec![&[] as &[&[u8]]; 2000], &[], b"");
    let e = isolated::extract_paged(&sandbox(), &pdf, None, &Limits::default(), Some(&ocr))
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::OcrNoText {
                format: Format::Pdf
            }
        ),
        "{e:?}"
    );
    assert_eq!(
        e.details(),
        serde_json::json!({"reason": "ocr_no_text", "format": "PDF"})
    );
    assert!(
        t0.elapsed() < Duration::from_secs(120),
        "{:?}",
        t0.elapsed()
    );
}

#[test]
fn a_page_with_a_few_characters_is_ocred_and_keeps_the_better_text() {
    // "p. 3" alone on a page (Helvetica, not embedded: poppler finds a substitute font under
    // the OCR limits) is rendered and read; OCR gives no more, so the extracted text stays.
    let pdf = pdf_with(
        &[
            &[b"Deliberation du conseil municipal du 12 mars 2024"],
            &[b"p. 3"],
        ],
        &[],
        b"",
    );
    let p = paged(&pdf, None, Some(&ocr()));
    assert_eq!(p.ocr_pages, 1);
    assert_eq!(p.pages[1].text, "p. 3");
    assert!(!p.truncated);
}

/// A PNG whose header says `w` × `h` pixels.
fn png_header(w: u32, h: u32) -> Vec<u8> {
    let mut b = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    b.extend_from_slice(&w.to_be_bytes());
    b.extend_from_slice(&h.to_be_bytes());
    b.extend_from_slice(&[8, 0, 0, 0, 0, 0, 0, 0, 0]);
    b.extend_from_slice(b"\0\0\0\0IEND\xaeB`\x82");
    b
}

#[test]
fn a_huge_image_is_refused_before_tesseract() {
    // Were tesseract started, this one would say "not installed".
    let ocr = Ocr {
        tesseract: PathBuf::from("/nonexistent/tesseract"),
        ..ocr()
    };
    let e = isolated::extract_paged(
        &sandbox(),
        &png_header(100_000, 100_000),
        Some("scan.png"),
        &Limits::default(),
        Some(&ocr),
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            Error::ImageTooLarge {
                width: 100_000,
                height: 100_000,
                max_pixels: 40_000_000
            }
        ),
        "{e:?}"
    );
    assert_eq!(e.kind(), ErrorKind::TooLarge);
    assert_eq!(
        e.details(),
        serde_json::json!({"reason": "image_too_large", "width": 100000, "height": 100000,
            "max_pixels": 40_000_000})
    );
    // A TIFF with more pages than max_pages is refused before tesseract too.
    let one_page = Ocr {
        max_pages: 1,
        ..ocr
    };
    let e = isolated::extract_paged(
        &sandbox(),
        &read("scan-two-pages.tif"),
        None,
        &Limits::default(),
        Some(&one_page),
    )
    .unwrap_err();
    assert!(
        matches!(e, Error::TooManyPages { pages: 2, max: 1 }),
        "{e:?}"
    );
}

#[test]
fn a_truncated_jpeg_is_a_clear_error() {
    let jpeg = read("scan-deliberation.jpg");
    let e = isolated::extract_paged(
        &sandbox(),
        &jpeg[..jpeg.len() * 2 / 3],
        Some("scan.jpg"),
        &Limits::default(),
        Some(&ocr()),
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Invalid, "{e:?}");
    assert!(e.to_string().contains("truncated JPEG"), "{e}");
    assert_eq!(
        e.details(),
        serde_json::json!({"reason": "corrupt", "format": "JPEG"})
    );
}

#[test]
fn a_hanging_tesseract_is_killed_at_the_page_timeout() {
    let ocr = Ocr {
        tesseract: fixture("hanging-tesseract.sh"),
        page_timeout: Duration::from_secs(2),
        ..ocr()
    };
    let t0 = Instant::now();
    let e = isolated::extract_paged(
        &sandbox(),
        &read("mixed-scan.pdf"),
        None,
        &Limits::default(),
        Some(&ocr),
    )
    .unwrap_err();
    let elapsed = t0.elapsed();
    assert!(
        matches!(&e, Error::OcrFailed { page: Some(2), reason } if reason.contains("killed")),
        "{e:?}"
    );
    assert_eq!(e.kind(), ErrorKind::Exhausted);
    assert_eq!(
        e.details(),
        serde_json::json!({"reason": "ocr_failed", "page": 2})
    );
    assert!(elapsed >= Duration::from_secs(2), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(15), "{elapsed:?}");
}

#[test]
fn missing_ocr_is_a_clear_error() {
    for ocr in [
        Ocr {
            tesseract: PathBuf::from("/nonexistent/tesseract"),
            ..ocr()
        },
        Ocr {
            language: "zzz".into(),
            ..ocr()
        },
    ] {
        let e = isolated::extract_paged(
            &sandbox(),
            &read("scan-deliberation.png"),
            None,
            &Limits::default(),
            Some(&ocr),
        )
        .unwrap_err();
        assert!(matches!(e, Error::OcrUnavailable { .. }), "{e:?}");
        assert_eq!(
            e.details(),
            serde_json::json!({"reason": "ocr_unavailable"})
        );
        assert_eq!(e.code(), "internal_error");
    }
    let ocr = Ocr {
        pdftoppm: PathBuf::from("/nonexistent/pdftoppm"),
        ..ocr()
    };
    let e = isolated::extract_paged(
        &sandbox(),
        &read("mixed-scan.pdf"),
        None,
        &Limits::default(),
        Some(&ocr),
    )
    .unwrap_err();
    assert!(matches!(e, Error::OcrUnavailable { .. }), "{e:?}");
}

#[test]
fn other_formats_through_the_child() {
    // Pages of a DOCX and HTML without scripts, as in process; OCR changes nothing for them.
    let docx =
        docx_with_body("<w:p><w:r><w:t>Un</w:t><w:br w:type=\"page\"/><w:t>Deux</w:t></w:r></w:p>");
    let p = paged(&docx, Some("a.docx"), Some(&ocr()));
    let pages: Vec<_> = p
        .pages
        .iter()
        .map(|p| (p.number, p.text.as_str()))
        .collect();
    assert_eq!(pages, [(Some(1), "Un"), (Some(2), "Deux")]);
    assert_eq!(p.ocr_pages, 0);
    let html = b"<!doctype html><p>Visible</p><script>alert('CACHE')</script>";
    let p = paged(html, None, Some(&ocr()));
    assert_eq!(
        (p.format, p.pages[0].text.as_str()),
        (Format::Html, "Visible")
    );
    // The whole text (parse endpoint) still comes from the same child.
    let x = isolated::extract(&sandbox(), &docx, None, &Limits::default()).unwrap();
    assert_eq!(x.text, "Un\nDeux");
    let e = isolated::extract(
        &sandbox(),
        &read("scan-deliberation.png"),
        None,
        &Limits::default(),
    )
    .unwrap_err();
    assert_eq!(e.details()["reason"], "needs_ocr", "{e:?}");
}
