//! Text accumulation, normalisation and chunking.

/// Collects raw text from a document walker, stopping once enough has been gathered, and
/// the page breaks met on the way (byte offsets into the raw text; they do not change it, so
/// the whole text reads the same whether or not pages are asked for).
pub(crate) struct Sink {
    raw: String,
    chars: usize,
    cap: usize,
    /// True once text was dropped because the cap was reached.
    pub(crate) full: bool,
    /// Byte offsets where a new page starts.
    breaks: Vec<usize>,
    /// Whether the current page holds a non-blank character.
    page_has_text: bool,
    /// What started the current page (`None`: the document's start).
    page_started_by: Option<Break>,
}

/// Where a page break comes from: the document's own markup, or a break the editor rendered
/// when it last laid the document out (DOCX `w:lastRenderedPageBreak`, ODT
/// `text:soft-page-break`). The two often mark the same place, one right after the other; a
/// break of either kind that finds the current page empty after a break of the other kind
/// (or at the document's start) is the same break and is dropped, so no empty duplicate page
/// appears. `Hard` always starts a page (PDF pages, form feeds), blank pages included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Break {
    Hard,
    Explicit,
    Rendered,
}

impl Sink {
    /// A sink that keeps at most `cap` raw characters (whitespace is collapsed later, so
    /// callers pass a cap above the final text limit).
    pub(crate) fn new(cap: usize) -> Self {
        Sink {
            raw: String::new(),
            chars: 0,
            cap,
            full: false,
            breaks: Vec::new(),
            page_has_text: false,
            page_started_by: None,
        }
    }

    pub(crate) fn push_str(&mut self, s: &str) {
        if self.full {
            return;
        }
        for c in s.chars() {
            if self.chars >= self.cap {
                self.full = true;
                return;
            }
            self.raw.push(c);
            self.chars += 1;
            if !c.is_whitespace() {
                self.page_has_text = true;
            }
        }
    }

    /// Starts a new page here (see [`Break`] for when it is dropped).
    pub(crate) fn page_break(&mut self, kind: Break) {
        if self.full {
            return;
        }
        if kind != Break::Hard && !self.page_has_text {
            let duplicate = match self.page_started_by {
                None => true,
                Some(Break::Hard) => false,
                Some(started) => started != kind,
            };
            if duplicate {
                return;
            }
        }
        self.breaks.push(self.raw.len());
        self.page_has_text = false;
        self.page_started_by = Some(kind);
    }

    /// Whether any page break was recorded.
    pub(crate) fn has_breaks(&self) -> bool {
        !self.breaks.is_empty()
    }

    pub(crate) fn push(&mut self, c: char) {
        let mut buf = [0u8; 4];
        self.push_str(c.encode_utf8(&mut buf));
    }

    /// True when the last character pushed is not whitespace (used to separate words).
    pub(crate) fn ends_with_word(&self) -> bool {
        self.raw
            .chars()
            .next_back()
            .is_some_and(|c| !c.is_whitespace())
    }

    pub(crate) fn into_string(self) -> String {
        self.raw
    }

    /// The raw text cut at the page breaks. The piece after the last break is left out when
    /// it is blank (a document ending with a break has no empty page after it).
    pub(crate) fn into_pages(self) -> Vec<String> {
        let mut pages = Vec::with_capacity(self.breaks.len() + 1);
        let mut start = 0;
        for &end in &self.breaks {
            pages.push(self.raw[start..end].to_owned());
            start = end;
        }
        let rest = &self.raw[start..];
        if self.breaks.is_empty() || !rest.trim().is_empty() {
            pages.push(rest.to_owned());
        }
        pages
    }
}

/// Normalises each page (see [`normalize`]) with one budget of `max_chars` characters shared
/// by all of them, in order; the page that crosses it is cut and the later ones are left out.
/// Returns the pages and whether text was left out.
pub(crate) fn normalize_pages(raw_pages: &[String], max_chars: usize) -> (Vec<String>, bool) {
    let mut left = max_chars;
    let mut out = Vec::with_capacity(raw_pages.len());
    for (i, raw) in raw_pages.iter().enumerate() {
        let (text, cut) = normalize(raw, left);
        left -= text.chars().count().min(left);
        out.push(text);
        if cut || (left == 0 && raw_pages[i + 1..].iter().any(|p| !p.trim().is_empty())) {
            return (out, true);
        }
    }
    (out, false)
}

/// Number of characters that are not white space.
pub(crate) fn non_blank_chars(text: &str) -> usize {
    text.chars().filter(|c| !c.is_whitespace()).count()
}

/// Normalises extracted text: unified line ends, paragraphs separated by one blank line, no
/// runs of spaces, lines and whole text trimmed, control characters removed. Returns the text
/// cut to `max_chars` characters and whether it was cut.
pub(crate) fn normalize(raw: &str, max_chars: usize) -> (String, bool) {
    let unified = raw.replace("\r\n", "\n").replace(['\r', '\u{2028}'], "\n");
    let unified = unified.replace(['\x0c', '\u{2029}'], "\n\n");
    let mut out = String::with_capacity(unified.len());
    let mut pending_newlines = 0usize;
    for line in unified.split('\n') {
        let line = collapse_line(line);
        if line.is_empty() {
            pending_newlines += 1;
            continue;
        }
        if !out.is_empty() {
            out.push_str(if pending_newlines > 0 { "\n\n" } else { "\n" });
        }
        out.push_str(&line);
        pending_newlines = 0;
    }
    match out.char_indices().nth(max_chars) {
        Some((cut, _)) => {
            out.truncate(cut);
            let trimmed = out.trim_end().len();
            out.truncate(trimmed);
            (out, true)
        }
        None => (out, false),
    }
}

/// One line with control characters removed, runs of blanks collapsed (to a tab when the run
/// holds one, else to a space) and both ends trimmed.
fn collapse_line(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut blank: Option<char> = None;
    for c in line.chars() {
        let c = if c.is_control() && c != '\t' { ' ' } else { c };
        if c == ' ' || c == '\t' {
            if blank != Some('\t') {
                blank = Some(c);
            }
            continue;
        }
        if let Some(b) = blank.take() {
            if !out.is_empty() {
                out.push(b);
            }
        }
        out.push(c);
    }
    out
}

/// Splits `text` into consecutive pieces of at most `max_chars` characters (a `max_chars` of 0
/// counts as 1), cutting preferably after a paragraph break, then after a sentence, then at a
/// blank, then anywhere on a character boundary. A preferred cut is only taken in the second
/// half of a piece, so that pieces stay reasonably full. The pieces, concatenated, give back
/// `text` exactly; none is empty.
pub fn chunks(text: &str, max_chars: usize) -> Vec<&str> {
    let max_chars = max_chars.max(1);
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let limit = match rest.char_indices().nth(max_chars) {
            Some((limit, _)) => limit,
            None => {
                out.push(rest);
                break;
            }
        };
        let window = &rest[..limit];
        // Byte offset of the middle of the window, on a char boundary.
        let half = window
            .char_indices()
            .nth(max_chars / 2)
            .map_or(0, |(i, _)| i);
        let cut = last_cut(window, half, |w| w.rfind("\n\n").map(|i| i + 2))
            .or_else(|| last_cut(window, half, last_sentence_end))
            .or_else(|| {
                last_cut(window, half, |w| {
                    w.rfind(char::is_whitespace).map(|i| i + 1)
                })
            })
            .unwrap_or(limit);
        let cut = if rest.is_char_boundary(cut) && cut > 0 {
            cut
        } else {
            limit
        };
        out.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    out
}

/// The cut found by `find` in `window`, if it lies past `half`.
fn last_cut(window: &str, half: usize, find: impl Fn(&str) -> Option<usize>) -> Option<usize> {
    find(window).filter(|&cut| cut > half && cut <= window.len())
}

/// Byte offset just after the last sentence end (".", "!", "?", "…" followed by a blank).
fn last_sentence_end(window: &str) -> Option<usize> {
    let mut best = None;
    let mut prev: Option<(usize, char)> = None;
    for (i, c) in window.char_indices() {
        if let Some((_, p)) = prev {
            if matches!(p, '.' | '!' | '?' | '…') && c.is_whitespace() {
                best = Some(i + c.len_utf8());
            }
        }
        prev = Some((i, c));
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_collapses_and_trims() {
        let (t, cut) = normalize(
            "  Bonjour   le\tmonde  \r\n\r\n\r\n\nSuite\x07 ici \n ligne\x0cpage",
            100,
        );
        assert_eq!(t, "Bonjour le\tmonde\n\nSuite ici\nligne\n\npage");
        assert!(!cut);
        let (t, cut) = normalize("éééé éé", 5);
        assert_eq!(t, "éééé");
        assert!(cut);
    }

    #[test]
    fn chunks_prefer_paragraphs_then_sentences() {
        let text = "Premier paragraphe assez long.\n\nSecond paragraphe. Avec deux phrases.";
        let parts = chunks(text, 40);
        assert_eq!(parts[0], "Premier paragraphe assez long.\n\n");
        assert_eq!(parts.concat(), text);
        let parts = chunks("Une phrase. Deux phrases ici.", 20);
        assert_eq!(parts[0], "Une phrase. ");
    }

    #[test]
    fn chunks_properties_hold() {
        let samples = [
            String::new(),
            "é".repeat(1000),
            "œuf « court » ".repeat(300),
            "Ligne. ".repeat(500) + "\n\n" + &"x".repeat(777),
            "a\n\nb\n\nc".to_owned(),
        ];
        for text in &samples {
            for max in [0usize, 1, 2, 3, 7, 50, 333, 10_000] {
                let parts = chunks(text, max);
                assert_eq!(parts.concat(), *text);
                for p in &parts {
                    assert!(!p.is_empty());
                    assert!(p.chars().count() <= max.max(1), "{max} {p:?}");
                }
            }
        }
    }
}
