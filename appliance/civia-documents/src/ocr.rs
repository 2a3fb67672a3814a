//! OCR of scanned documents with Debian's programs, each run as a child process under limits.
//!
//! - `tesseract` (package `tesseract-ocr`, French data `tesseract-ocr-fra`) reads an image on
//!   its stdin and writes the text on its stdout (`tesseract stdin stdout -l fra --psm 1`:
//!   page segmentation with orientation detection, which the `tesseract-ocr-osd` data that
//!   `tesseract-ocr` depends on provides);
//!   a multi-page TIFF gives its pages separated by form feeds.
//! - `pdftoppm` (package `poppler-utils`) renders one PDF page, read from its stdin, to a
//!   grey PGM image on its stdout (`pdftoppm -r 300 -gray -f N -l N -singlefile -`): the
//!   resolution is lowered for pages so large that 300 dpi would exceed
//!   [`Ocr::max_pixels`] (plans, posters), and the image is checked against it.
//!
//! Each run goes through the crate's one limited-child helper (as the extraction child of
//! [`crate::isolated`]): address space [`Ocr::memory_bytes`], CPU time and wall clock
//! [`Ocr::page_timeout`] per page (the process group is killed at the wall clock), no file
//! written (`RLIMIT_FSIZE` 0), 64 descriptors, an environment holding only
//! `OMP_THREAD_LIMIT=1` (one thread each: the box's cores serve the model first). Pages are
//! read one after the other.
//!
//! These programs are C and C++ fed hostile bytes: PDF pages go to poppler, images to
//! leptonica's decoders. That is why they run in limited children and why an image's size is
//! read from its header ([`crate::image`]) and refused above [`Ocr::max_pixels`] before
//! tesseract sees it.
//!
//! Where it runs: in the caller's process (civiad), from [`crate::isolated::extract_paged`],
//! after the extraction child has parsed the document and said which pages have no text
//! (fewer than [`MIN_CHARS`] non-blank characters). The extraction child keeps its own
//! limits; a document with OCR takes at most the child's wall clock plus, for each page
//! OCRed, two [`Ocr::page_timeout`]s (render and recognise), for at most [`Ocr::max_pages`]
//! pages.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::time::Duration;

use crate::limited::{self, Failure, Finished, Spec};
use crate::text::{non_blank_chars, normalize_pages};
use crate::{Error, Format, Limits, Page, Paged};

/// A PDF page with fewer non-blank characters than this is rendered and OCRed (a scan may
/// carry a stamped page number or a few words of an index layer).
pub(crate) const MIN_CHARS: usize = 20;

/// Resolution of the rendered PDF pages, in dots per inch.
const DPI: f64 = 300.0;

/// How to run OCR, and its bounds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Ocr {
    /// The `tesseract` program.
    pub tesseract: PathBuf,
    /// The `pdftoppm` program (poppler-utils).
    pub pdftoppm: PathBuf,
    /// Tesseract's language (`fra`; `fra+eng` for both).
    pub language: String,
    /// Wall clock and CPU time of one page's rendering, and of its recognition.
    pub page_timeout: Duration,
    /// Most pages OCRed in one document: a PDF's later pages without text are left out and
    /// the result flagged `truncated`; a TIFF with more pages is refused.
    pub max_pages: usize,
    /// Address-space limit of each OCR process, in bytes.
    pub memory_bytes: u64,
    /// Largest image OCRed, in pixels (width × height): larger images are refused before
    /// OCR, larger PDF pages are rendered at a lower resolution.
    pub max_pixels: u64,
}

impl Default for Ocr {
    fn default() -> Self {
        Ocr {
            tesseract: "/usr/bin/tesseract".into(),
            pdftoppm: "/usr/bin/pdftoppm".into(),
            language: "fra".into(),
            page_timeout: Duration::from_secs(60),
            max_pages: 300,
            memory_bytes: 1024 * 1024 * 1024,
            max_pixels: 40_000_000,
        }
    }
}

impl Ocr {
    /// Checks that both programs run and that tesseract has the language's data (what
    /// civiad may log at start-up): [`Error::OcrUnavailable`] otherwise.
    pub fn check(&self) -> Result<(), Error> {
        self.language_ok()?;
        let out = self.run_tesseract(&[OsStr::new("--list-langs")], &[], 1)?;
        let listed = String::from_utf8_lossy(&out.stdout);
        let langs: Vec<&str> = listed.lines().map(str::trim).collect();
        if let Some(missing) = self.language.split('+').find(|l| !langs.contains(l)) {
            return Err(unavailable(format!(
                "tesseract has no {missing:?} data (package tesseract-ocr-{missing})"
            )));
        }
        let args = [OsStr::new("-v")];
        let spec = self.spec(&self.pdftoppm, &args, 1, 64 * 1024);
        match limited::run(&spec, &[]) {
            Ok(f) if f.status.success() => Ok(()),
            Ok(f) => Err(unavailable(format!("pdftoppm -v {}", f.describe()))),
            Err(Failure::Spawn(e)) => Err(unavailable(format!(
                "starting {}: {e}",
                self.pdftoppm.display()
            ))),
            Err(e) => Err(unavailable(format!("pdftoppm -v: {e:?}"))),
        }
    }

    fn language_ok(&self) -> Result<(), Error> {
        let ok = !self.language.is_empty()
            && self
                .language
                .split('+')
                .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
        if ok {
            Ok(())
        } else {
            Err(unavailable(format!(
                "invalid OCR language {:?}",
                self.language
            )))
        }
    }

    fn spec<'a>(
        &self,
        program: &'a std::path::Path,
        args: &'a [&'a OsStr],
        pages: usize,
        max_stdout: u64,
    ) -> Spec<'a> {
        let pages = u32::try_from(pages.max(1)).unwrap_or(u32::MAX);
        Spec {
            program,
            args,
            env: &[("OMP_THREAD_LIMIT", "1")],
            wall: self.page_timeout.saturating_mul(pages),
            memory_bytes: self.memory_bytes,
            max_files: 64,
            max_stdout,
        }
    }

    /// Runs tesseract with `args` and `input` on stdin, for `pages` pages of time.
    fn run_tesseract(
        &self,
        args: &[&OsStr],
        input: &[u8],
        pages: usize,
    ) -> Result<Finished, Error> {
        let spec = self.spec(&self.tesseract, args, pages, 64 * 1024 * 1024);
        let finished = match limited::run(&spec, &[input]) {
            Ok(finished) => finished,
            Err(Failure::Spawn(e)) => {
                return Err(unavailable(format!(
                    "starting {}: {e}",
                    self.tesseract.display()
                )))
            }
            Err(Failure::TimedOut) => {
                return Err(Error::OcrFailed {
                    page: None,
                    reason: format!(
                        "tesseract still running after {} s: killed",
                        spec.wall.as_secs()
                    ),
                })
            }
            Err(Failure::Wait(e)) => {
                return Err(Error::Extractor {
                    reason: format!("waiting for tesseract: {e}"),
                })
            }
        };
        let stderr = String::from_utf8_lossy(&finished.stderr);
        if stderr.contains("Failed loading language") || stderr.contains("load any languages") {
            return Err(unavailable(format!(
                "tesseract has no {:?} data (package tesseract-ocr-{}): {}",
                self.language,
                self.language,
                finished.last_error_line()
            )));
        }
        Ok(finished)
    }

    /// The text of one image (all pages of a multi-page TIFF, separated by form feeds) and
    /// whether it was cut at `max_bytes`. `source` names the image in errors; `dpi` is given
    /// for rendered pages.
    fn recognise(
        &self,
        image: &[u8],
        pages: usize,
        dpi: Option<u32>,
        source: Source,
        max_bytes: u64,
    ) -> Result<(String, bool), Error> {
        let page = match source {
            Source::Page(n) => Some(n),
            Source::Image(_) => None,
        };
        self.language_ok()?;
        let dpi = dpi.map(|d| d.to_string());
        let mut args: Vec<&OsStr> = vec![
            OsStr::new("stdin"),
            OsStr::new("stdout"),
            OsStr::new("-l"),
            OsStr::new(&self.language),
            // Automatic page segmentation with orientation detection: pages scanned sideways
            // or upside down read as well as upright ones, for about 5 % more time.
            OsStr::new("--psm"),
            OsStr::new("1"),
        ];
        if let Some(dpi) = &dpi {
            args.extend([OsStr::new("--dpi"), OsStr::new(dpi)]);
        }
        let finished = self
            .run_tesseract(&args, image, pages)
            .map_err(|e| match e {
                Error::OcrFailed { reason, .. } => Error::OcrFailed { page, reason },
                e => e,
            })?;
        if !finished.status.success() {
            use std::os::unix::process::ExitStatusExt;
            let reason = format!("tesseract {}", finished.describe());
            // An uploaded image tesseract (leptonica) cannot decode is a damaged file; a
            // signal is a limit reached (memory, CPU) or a crash.
            return Err(match source {
                Source::Image(format) if finished.status.signal().is_none() => {
                    Error::Corrupt { format, reason }
                }
                _ => Error::OcrFailed { page, reason },
            });
        }
        let mut text = finished.stdout;
        let cut = finished.overflow || text.len() as u64 > max_bytes;
        text.truncate(usize::try_from(max_bytes).unwrap_or(usize::MAX));
        Ok((String::from_utf8_lossy(&text).into_owned(), cut))
    }

    /// PDF page `number` (1-based) rendered as a grey PGM image, and its resolution.
    fn render(
        &self,
        pdf: &[u8],
        number: u32,
        size: Option<(f32, f32)>,
    ) -> Result<(Vec<u8>, Option<u32>), Error> {
        let failed = |reason: String| Error::OcrFailed {
            page: Some(number),
            reason,
        };
        let max_pixels = self.max_pixels.max(1);
        // At 300 dpi unless that exceeds max_pixels; a page of unknown size is fitted in a
        // square of max_pixels.
        let (sizing, dpi) = match size {
            Some((w, h)) => {
                let pixels = f64::from(w) / 72.0 * DPI * f64::from(h) / 72.0 * DPI;
                let scale = (max_pixels as f64 / pixels).sqrt().min(1.0) * 0.99;
                let dpi = (DPI * scale).floor().max(1.0) as u32;
                (vec!["-r".to_owned(), dpi.to_string()], Some(dpi))
            }
            None => {
                let side = (max_pixels as f64).sqrt().floor().max(1.0) as u64;
                (vec!["-scale-to".to_owned(), side.to_string()], None)
            }
        };
        let number_arg = number.to_string();
        let mut args: Vec<&OsStr> = sizing.iter().map(OsStr::new).collect();
        args.extend(
            [
                "-gray",
                "-f",
                &number_arg,
                "-l",
                &number_arg,
                "-singlefile",
                "-",
            ]
            .map(OsStr::new),
        );
        let spec = self.spec(&self.pdftoppm, &args, 1, max_pixels.saturating_add(1024));
        let finished = match limited::run(&spec, &[pdf]) {
            Ok(f) => f,
            Err(Failure::Spawn(e)) => {
                return Err(unavailable(format!(
                    "starting {}: {e}",
                    self.pdftoppm.display()
                )))
            }
            Err(Failure::TimedOut) => {
                return Err(failed(format!(
                    "pdftoppm still running after {} s: killed",
                    spec.wall.as_secs()
                )))
            }
            Err(Failure::Wait(e)) => {
                return Err(Error::Extractor {
                    reason: format!("waiting for pdftoppm: {e}"),
                })
            }
        };
        if !finished.status.success() {
            return Err(failed(format!("pdftoppm {}", finished.describe())));
        }
        if finished.overflow {
            return Err(failed(format!(
                "the rendered page exceeds {max_pixels} pixels"
            )));
        }
        match pgm_size(&finished.stdout) {
            Some((w, h)) if w.saturating_mul(h) <= max_pixels => Ok((finished.stdout, dpi)),
            Some((w, h)) => Err(failed(format!(
                "the rendered page is {w} × {h} pixels, more than {max_pixels}"
            ))),
            None => Err(failed("pdftoppm wrote no PGM image".to_owned())),
        }
    }
}

/// What is recognised: an uploaded image, or a rendered PDF page (1-based).
#[derive(Clone, Copy)]
enum Source {
    Image(Format),
    Page(u32),
}

fn unavailable(reason: String) -> Error {
    Error::OcrUnavailable { reason }
}

/// Width and height from a binary PGM header (`P5 <w> <h> <max>`, 8 bits a pixel as
/// pdftoppm writes it: the pixels are the last `w × h` bytes).
fn pgm_size(image: &[u8]) -> Option<(u64, u64)> {
    let head = String::from_utf8_lossy(image.get(..64.min(image.len()))?);
    let mut fields = head.split_ascii_whitespace();
    if fields.next()? != "P5" {
        return None;
    }
    let w = fields.next()?.parse().ok()?;
    let h = fields.next()?.parse().ok()?;
    Some((w, h))
}

/// Whether a rendered page (PGM) is blank: fewer dark pixels than one in 20,000 (a page
/// number at most), not worth recognising.
fn blank(pgm: &[u8]) -> bool {
    let Some((w, h)) = pgm_size(pgm) else {
        return false;
    };
    let pixels = usize::try_from(w.saturating_mul(h)).unwrap_or(usize::MAX);
    let Some(data) = pgm.len().checked_sub(pixels).and_then(|at| pgm.get(at..)) else {
        return false;
    };
    data.iter().filter(|&&v| v < 128).count() < (pixels / 20_000).max(1)
}

/// The pages as the child read them, before OCR, and what OCR needs. Images and PDFs without
/// text are not refused here: the parent decides, with or without OCR.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Layout {
    /// The pages read (empty text for an image's pages and blank PDF pages).
    pub paged: Paged,
    /// A PDF's page sizes in points (width, height), by page read, when known.
    pub pdf_sizes: Vec<Option<(f32, f32)>>,
    /// An image's page sizes in pixels (width, height).
    pub image_pages: Vec<(u32, u32)>,
    /// A PDF whose cross-reference data had to be repaired.
    pub repaired: bool,
}

/// Bytes of OCR text kept for a text budget of `max_chars` characters.
fn text_bytes(limits: &Limits) -> u64 {
    (limits.max_text_chars as u64)
        .saturating_mul(4)
        .saturating_add(64 * 1024)
}

/// Completes a document's layout with OCR: scanned images are recognised; PDF pages without
/// text are rendered and recognised, up to [`Ocr::max_pages`]. Other formats need none.
pub(crate) fn complete(
    layout: Layout,
    bytes: &[u8],
    limits: &Limits,
    ocr: &Ocr,
) -> Result<Paged, Error> {
    match layout.paged.format {
        Format::Png | Format::Jpeg | Format::Tiff => image(layout, bytes, limits, ocr),
        Format::Pdf => pdf(layout, bytes, limits, ocr),
        _ => crate::finish(layout),
    }
}

fn image(layout: Layout, bytes: &[u8], limits: &Limits, ocr: &Ocr) -> Result<Paged, Error> {
    let format = layout.paged.format;
    let n = layout.image_pages.len();
    if n > ocr.max_pages {
        return Err(Error::TooManyPages {
            pages: n,
            max: ocr.max_pages,
        });
    }
    for &(width, height) in &layout.image_pages {
        if u64::from(width) * u64::from(height) > ocr.max_pixels {
            return Err(Error::ImageTooLarge {
                width,
                height,
                max_pixels: ocr.max_pixels,
            });
        }
    }
    let (text, overflow) =
        ocr.recognise(bytes, n, None, Source::Image(format), text_bytes(limits))?;
    let mut raw: Vec<String> = text.split('\x0c').map(str::to_owned).collect();
    if raw.len() > n {
        let extra = raw.split_off(n).concat();
        if let Some(last) = raw.last_mut() {
            last.push_str(&extra);
        }
    }
    raw.resize(n, String::new());
    let (texts, cut) = normalize_pages(&raw, limits.max_text_chars);
    if texts.iter().all(|t| t.is_empty()) {
        return Err(Error::OcrNoText { format });
    }
    Ok(Paged {
        format,
        pages: numbered(texts),
        page_count: u32::try_from(n).ok(),
        ocr_pages: u32::try_from(n).unwrap_or(u32::MAX),
        truncated: cut || overflow,
    })
}

fn numbered(texts: Vec<String>) -> Vec<Page> {
    texts
        .into_iter()
        .enumerate()
        .map(|(i, text)| Page {
            number: u32::try_from(i + 1).ok(),
            text,
        })
        .collect()
}

fn pdf(layout: Layout, bytes: &[u8], limits: &Limits, ocr: &Ocr) -> Result<Paged, Error> {
    let Layout {
        mut paged,
        pdf_sizes,
        repaired,
        ..
    } = layout;
    let mut texts: Vec<String> = paged.pages.iter().map(|p| p.text.clone()).collect();
    let (mut done, mut left_out, mut overflow) = (0usize, false, false);
    for (i, page) in paged.pages.iter().enumerate() {
        if non_blank_chars(&page.text) >= MIN_CHARS {
            continue;
        }
        if done >= ocr.max_pages {
            left_out = true;
            break;
        }
        let number = page
            .number
            .or_else(|| u32::try_from(i + 1).ok())
            .unwrap_or(u32::MAX);
        let (image, dpi) = ocr.render(bytes, number, pdf_sizes.get(i).copied().flatten())?;
        done += 1;
        if blank(&image) {
            // Tesseract would spend half a second loading its models to find nothing.
            continue;
        }
        let (text, cut) =
            ocr.recognise(&image, 1, dpi, Source::Page(number), text_bytes(limits))?;
        overflow |= cut;
        if non_blank_chars(&text) > non_blank_chars(&page.text) {
            texts[i] = text.replace('\x0c', "\n");
        }
    }
    let (texts, cut) = normalize_pages(&texts, limits.max_text_chars);
    if texts.iter().all(|t| t.is_empty()) {
        return Err(if done > 0 {
            Error::OcrNoText {
                format: Format::Pdf,
            }
        } else {
            crate::no_pdf_text(repaired)
        });
    }
    paged.pages = paged
        .pages
        .into_iter()
        .zip(texts)
        .map(|(page, text)| Page { text, ..page })
        .collect();
    paged.ocr_pages = u32::try_from(done).unwrap_or(u32::MAX);
    paged.truncated |= cut || left_out || overflow;
    Ok(paged)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pgm(w: usize, h: usize, dark: usize) -> Vec<u8> {
        let mut b = format!("P5\n{w} {h}\n255\n").into_bytes();
        b.extend(std::iter::repeat_n(0u8, dark));
        b.extend(std::iter::repeat_n(255u8, w * h - dark));
        b
    }

    #[test]
    fn blank_pages_are_told_from_pages_with_a_word() {
        assert_eq!(pgm_size(&pgm(2480, 3508, 0)), Some((2480, 3508)));
        assert!(blank(&pgm(2480, 3508, 0)));
        assert!(blank(&pgm(2480, 3508, 300)));
        assert!(!blank(&pgm(2480, 3508, 3000)));
        // A short or foreign image is never taken for blank.
        assert!(!blank(b"P5\n10 10\n255\n"));
        assert!(!blank(b"P6\n1 1\n255\n\xff\xff\xff"));
        assert_eq!(
            pgm_size(b"P5 99999999999 99999999999 255 "),
            Some((99_999_999_999, 99_999_999_999))
        );
        assert!(!blank(b"P5 99999999999 99999999999 255 "));
    }

    #[test]
    fn a_language_is_letters_only() {
        for bad in ["", "fra+", "-l", "../fra", "fra eng"] {
            let ocr = Ocr {
                language: bad.into(),
                ..Ocr::default()
            };
            assert!(
                matches!(ocr.language_ok(), Err(Error::OcrUnavailable { .. })),
                "{bad}"
            );
        }
        for good in ["fra", "fra+eng", "chi_sim"] {
            let ocr = Ocr {
                language: good.into(),
                ..Ocr::default()
            };
            assert!(ocr.language_ok().is_ok(), "{good}");
        }
    }
}
