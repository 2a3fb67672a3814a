//! French lexical analysis for the lexical index: what both a chunk and a question become
//! before they reach SQLite FTS5.
//!
//! Steps: Unicode NFC, lower case, typographic apostrophes unified, elisions removed
//! (« l'arrêté » → « arrêté », « qu'il » → « il »), words split on anything not a letter or
//! digit, French stop words dropped, each word stemmed by the Snowball French stemmer
//! (`rust-stemmers`, the stemmer tantivy uses) and finally stripped of its accents, so that
//! « délibérations », « deliberation » and « Délibéré » meet. FTS5 then only splits on
//! blanks (`unicode61`), so the index and the query agree by construction.
//!
//! Why here and not an FTS5 tokenizer: a custom FTS5 tokenizer is C code registered on every
//! connection; doing the analysis in Rust before insert and before query gives the same
//! index with a plain `unicode61` table.

use rust_stemmers::{Algorithm, Stemmer};
use std::sync::OnceLock;
use unicode_normalization::UnicodeNormalization;

/// Words too frequent to carry meaning in French administrative text.
const STOP_WORDS: &[&str] = &[
    "a",
    "afin",
    "ai",
    "aie",
    "aient",
    "ainsi",
    "alors",
    "au",
    "aucun",
    "aucune",
    "aupres",
    "auquel",
    "aussi",
    "autre",
    "autres",
    "aux",
    "auxquelles",
    "auxquels",
    "avait",
    "avant",
    "avec",
    "avoir",
    "c",
    "ca",
    "ce",
    "ceci",
    "cela",
    "celle",
    "celles",
    "celui",
    "cependant",
    "ces",
    "cet",
    "cette",
    "ceux",
    "chaque",
    "chez",
    "ci",
    "comme",
    "comment",
    "d",
    "dans",
    "de",
    "deja",
    "depuis",
    "des",
    "donc",
    "dont",
    "du",
    "elle",
    "elles",
    "en",
    "encore",
    "entre",
    "est",
    "et",
    "etaient",
    "etait",
    "etant",
    "ete",
    "etre",
    "eu",
    "eux",
    "faire",
    "fait",
    "il",
    "ils",
    "j",
    "je",
    "l",
    "la",
    "le",
    "les",
    "leur",
    "leurs",
    "lui",
    "m",
    "ma",
    "mais",
    "me",
    "meme",
    "memes",
    "mes",
    "moi",
    "mon",
    "n",
    "ne",
    "ni",
    "nos",
    "notre",
    "nous",
    "on",
    "ont",
    "ou",
    "par",
    "parce",
    "pas",
    "pendant",
    "peu",
    "peut",
    "plus",
    "pour",
    "pourquoi",
    "qu",
    "quand",
    "que",
    "quel",
    "quelle",
    "quelles",
    "quels",
    "qui",
    "quoi",
    "s",
    "sa",
    "sans",
    "se",
    "selon",
    "ses",
    "si",
    "son",
    "sont",
    "sous",
    "sur",
    "t",
    "ta",
    "te",
    "tes",
    "toi",
    "ton",
    "tous",
    "tout",
    "toute",
    "toutes",
    "tres",
    "tu",
    "un",
    "une",
    "unes",
    "uns",
    "vers",
    "voici",
    "voila",
    "vos",
    "votre",
    "vous",
    "y",
];

/// Elided forms: the prefix before the apostrophe is dropped with it.
const ELISIONS: &[&str] = &[
    "l", "d", "j", "m", "n", "s", "t", "c", "qu", "jusqu", "lorsqu", "puisqu", "quoiqu", "presqu",
    "quelqu",
];

fn stemmer() -> &'static Stemmer {
    static STEMMER: OnceLock<Stemmer> = OnceLock::new();
    STEMMER.get_or_init(|| Stemmer::create(Algorithm::French))
}

/// The text without its accents (NFD, combining marks dropped), lower case.
pub fn fold(text: &str) -> String {
    text.nfd()
        .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect()
}

fn is_stop(word_folded: &str) -> bool {
    STOP_WORDS.binary_search(&word_folded).is_ok()
}

/// The index terms of `text`, in order (repeats kept: BM25 counts them).
pub fn terms(text: &str) -> Vec<String> {
    let lower: String = text.nfc().flat_map(char::to_lowercase).collect();
    let mut out = Vec::new();
    for raw in lower.split(|c: char| !(c.is_alphanumeric() || is_apostrophe(c))) {
        // « l'arrêté », « qu’il », « aujourd'hui »: drop an elided prefix, split the rest.
        let mut word = raw.trim_matches(is_apostrophe);
        if let Some((head, tail)) = word.split_once(is_apostrophe) {
            if ELISIONS.contains(&head) {
                word = tail;
            }
        }
        for part in word.split(is_apostrophe) {
            if part.is_empty() {
                continue;
            }
            let folded = fold(part);
            if is_stop(&folded)
                || (part.chars().count() == 1 && !part.chars().all(|c| c.is_numeric()))
            {
                continue;
            }
            let stem = if part.chars().any(char::is_alphabetic) {
                fold(&stemmer().stem(part))
            } else {
                folded
            };
            if !stem.is_empty() {
                out.push(stem);
            }
        }
    }
    out
}

fn is_apostrophe(c: char) -> bool {
    matches!(c, '\'' | '’' | 'ʼ' | '‘')
}

/// The FTS5 column value for `text`: its terms separated by blanks.
pub fn index_text(text: &str) -> String {
    terms(text).join(" ")
}

/// An FTS5 query matching any term of `question` (BM25 ranks chunks holding more and rarer
/// terms first); `None` when the question has no term (only stop words or punctuation).
pub fn match_query(question: &str) -> Option<String> {
    let mut seen = Vec::new();
    for t in terms(question) {
        if !seen.contains(&t) {
            seen.push(t);
        }
    }
    if seen.is_empty() {
        return None;
    }
    // Terms are letters and digits only: quoting makes each one a plain FTS5 string.
    Some(
        seen.iter()
            .map(|t| format!("\"{t}\""))
            .collect::<Vec<_>>()
            .join(" OR "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_words_are_sorted_for_binary_search() {
        let mut sorted = STOP_WORDS.to_vec();
        sorted.sort_unstable();
        assert_eq!(sorted, STOP_WORDS);
    }

    #[test]
    fn inflections_accents_and_elisions_meet() {
        assert_eq!(terms("délibérations"), terms("Deliberation"));
        assert_eq!(terms("l'arrêté"), terms("arrêtés"));
        assert_eq!(terms("l’arrêté du maire"), terms("Arrêté maire"));
        assert_eq!(terms("qu'il"), Vec::<String>::new());
        assert_eq!(terms("les cantines scolaires"), terms("cantine scolaire"));
        assert!(
            terms("aujourd'hui").len() == 2,
            "{:?}",
            terms("aujourd'hui")
        );
        assert_eq!(
            terms("3,20 € le 12/11/2026"),
            ["3", "20", "12", "11", "2026"]
        );
    }

    #[test]
    fn queries_are_plain_fts5_strings() {
        assert_eq!(match_query("de la et"), None);
        assert_eq!(match_query("?!"), None);
        let q = match_query("Quel est le prix de la cantine ? \"OR\" NEAR(").unwrap();
        assert!(q.starts_with("\"prix\" OR \"cantin\""), "{q}");
        assert!(
            !q.contains('(') && q.matches('"').count().is_multiple_of(2),
            "{q}"
        );
    }

    #[test]
    fn hostile_text_never_panics() {
        for s in [
            "",
            "'",
            "''''",
            "l'",
            "’’l’",
            "\u{0}\u{301}\u{301}é",
            &"é".repeat(10_000),
        ] {
            let _ = terms(s);
            let _ = match_query(s);
        }
    }
}
