//! Chunking by structure: pages, then headings and paragraphs, with overlap.
//!
//! A chunk never spans two pages (its page is what an answer cites). Within a page,
//! paragraphs are gathered up to [`Chunking::target_chars`]; a paragraph longer than that is
//! cut at sentence ends (`civia_documents`-style cuts, written here over chars). Each chunk
//! after the first of a page starts with the end of the previous one
//! ([`Chunking::overlap_chars`], whole words) so a fact cut in two is still found whole.
//! The heading in force (a short line without final punctuation, a Markdown `#` line, or
//! a numbered title « Article 3 – … ») travels with the chunk as its `heading`: it is indexed
//! with the chunk's text but not repeated in its content.

/// One page of extracted text (`page` is 1-based; `None` for formats without pages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageText {
    pub page: Option<u32>,
    pub text: String,
}

/// One chunk, in document order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    pub page: Option<u32>,
    pub heading: Option<String>,
    pub content: String,
}

/// Sizes of the chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunking {
    pub target_chars: usize,
    pub overlap_chars: usize,
}

impl Default for Chunking {
    fn default() -> Self {
        Chunking {
            target_chars: 900,
            overlap_chars: 150,
        }
    }
}

fn is_heading(line: &str) -> bool {
    let line = line.trim();
    let n = line.chars().count();
    if line.starts_with('#') {
        return true;
    }
    if n == 0 || n > 90 || line.contains('\n') {
        return false;
    }
    let last = line.chars().last().unwrap_or('.');
    if matches!(last, '.' | ',' | ';' | ':' | '!' | '?' | '…' | '»' | ')')
        && !line.starts_with("Article")
    {
        return false;
    }
    let first = line.chars().next().unwrap_or('a');
    first.is_uppercase() || first.is_numeric()
}

/// The chunks of a document's pages.
pub fn chunk(pages: &[PageText], sizes: Chunking) -> Vec<Piece> {
    let target = sizes.target_chars.max(100);
    let mut out = Vec::new();
    let mut heading: Option<String> = None;
    for page in pages {
        let mut current = String::new();
        let mut page_pieces: Vec<String> = Vec::new();
        let mut headings: Vec<Option<String>> = Vec::new();
        let flush = |current: &mut String,
                     heading: &Option<String>,
                     pieces: &mut Vec<String>,
                     hs: &mut Vec<Option<String>>| {
            let text = current.trim();
            if !text.is_empty() {
                pieces.push(text.to_owned());
                hs.push(heading.clone());
            }
            current.clear();
        };
        for para in page
            .text
            .split("\n\n")
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            if is_heading(para) {
                flush(&mut current, &heading, &mut page_pieces, &mut headings);
                heading = Some(para.trim_start_matches('#').trim().to_owned());
                // The heading's own words are found with the chunk that follows it.
                current.push_str(para.trim_start_matches('#').trim());
                current.push_str("\n\n");
                continue;
            }
            if current.chars().count() + para.chars().count() > target && !current.trim().is_empty()
            {
                let only_heading = heading.as_deref().is_some_and(|h| current.trim() == h);
                if !only_heading {
                    flush(&mut current, &heading, &mut page_pieces, &mut headings);
                }
            }
            if para.chars().count() > target {
                for part in split_long(para, target) {
                    if current.chars().count() + part.chars().count() > target
                        && !current.trim().is_empty()
                    {
                        flush(&mut current, &heading, &mut page_pieces, &mut headings);
                    }
                    current.push_str(&part);
                    current.push(' ');
                }
                current.push_str("\n\n");
            } else {
                current.push_str(para);
                current.push_str("\n\n");
            }
        }
        flush(&mut current, &heading, &mut page_pieces, &mut headings);
        let mut previous: Option<String> = None;
        for (text, heading) in page_pieces.into_iter().zip(headings) {
            let content = match &previous {
                Some(prev) if sizes.overlap_chars > 0 => {
                    format!("{} {}", tail_words(prev, sizes.overlap_chars), text)
                }
                _ => text.clone(),
            };
            previous = Some(text);
            out.push(Piece {
                page: page.page,
                heading,
                content: content.trim().to_owned(),
            });
        }
    }
    out
}

/// The last words of `text`, at most `max` characters (whole words only).
fn tail_words(text: &str, max: usize) -> String {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= max {
        return text.to_owned();
    }
    let tail: String = chars[chars.len() - max..].iter().collect();
    match tail.find(char::is_whitespace) {
        Some(i) => tail[i..].trim().to_owned(),
        None => String::new(),
    }
}

/// A long paragraph cut after sentence ends (else blanks) into parts of at most `target`
/// characters.
fn split_long(para: &str, target: usize) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut count = 0usize;
    let mut sentence = String::new();
    let push_sentence =
        |s: &str, current: &mut String, count: &mut usize, parts: &mut Vec<String>| {
            let n = s.chars().count();
            if *count + n > target && *count > 0 {
                parts.push(std::mem::take(current).trim().to_owned());
                *count = 0;
            }
            if n > target {
                // A "sentence" longer than a chunk: cut at blanks.
                for word in s.split_inclusive(char::is_whitespace) {
                    let w = word.chars().count();
                    if *count + w > target && *count > 0 {
                        parts.push(std::mem::take(current).trim().to_owned());
                        *count = 0;
                    }
                    let word: String = word.chars().take(target).collect();
                    current.push_str(&word);
                    *count += word.chars().count();
                }
            } else {
                current.push_str(s);
                *count += n;
            }
        };
    let mut prev = ' ';
    for c in para.chars() {
        sentence.push(c);
        if c.is_whitespace() && matches!(prev, '.' | '!' | '?' | '…' | ';') {
            push_sentence(&sentence, &mut current, &mut count, &mut parts);
            sentence.clear();
        }
        prev = c;
    }
    if !sentence.is_empty() {
        push_sentence(&sentence, &mut current, &mut count, &mut parts);
    }
    if !current.trim().is_empty() {
        parts.push(current.trim().to_owned());
    }
    parts.retain(|p| !p.is_empty());
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(n: u32, text: &str) -> PageText {
        PageText {
            page: Some(n),
            text: text.to_owned(),
        }
    }

    #[test]
    fn chunks_keep_pages_and_headings() {
        let pages = [
            page(
                1,
                "Article 1 – Tarifs\n\nLe repas est facturé 3,20 €.\n\nLe goûter 0,80 €.",
            ),
            page(
                2,
                "Suite de l'article.\n\nArticle 2 – Horaires\n\nLa cantine ouvre à 11 h 45.",
            ),
        ];
        let pieces = chunk(&pages, Chunking::default());
        assert_eq!(pieces.len(), 3, "{pieces:#?}");
        assert_eq!(pieces[0].page, Some(1));
        assert!(pieces[0].content.contains("3,20 €"));
        assert_eq!(pieces[0].heading.as_deref(), Some("Article 1 – Tarifs"));
        // A new page keeps the heading in force.
        assert_eq!(pieces[1].page, Some(2));
        assert_eq!(pieces[1].heading.as_deref(), Some("Article 1 – Tarifs"));
        assert_eq!(pieces[2].heading.as_deref(), Some("Article 2 – Horaires"));
    }

    #[test]
    fn long_text_is_cut_with_overlap_and_nothing_lost() {
        let sentence = "Le conseil municipal approuve la convention avec l'association sportive. ";
        let text = sentence.repeat(60);
        let pieces = chunk(&[page(1, &text)], Chunking::default());
        assert!(pieces.len() > 3);
        for p in &pieces {
            assert!(
                p.content.chars().count() <= 900 + 150 + 1,
                "{}",
                p.content.len()
            );
        }
        let words: usize = text.split_whitespace().count();
        let kept: usize = pieces
            .iter()
            .map(|p| p.content.split_whitespace().count())
            .sum();
        assert!(kept >= words, "{kept} < {words}");
    }

    #[test]
    fn hostile_shapes_never_panic() {
        let long_word = "é".repeat(5000);
        for text in ["", "\n\n\n\n", "#", &long_word, "a.\u{a0}b.\u{2029}c"] {
            let pieces = chunk(&[page(1, text)], Chunking::default());
            for p in pieces {
                assert!(!p.content.is_empty());
                assert!(p.content.chars().count() <= 2000);
            }
        }
    }
}
