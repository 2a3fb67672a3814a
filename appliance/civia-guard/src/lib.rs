//! The prompt guard (ANSSI GenAI R25): finds French personal data in what an agent sends —
//! social security numbers (NIR, key checked), IBANs (mod-97 checked), French phone numbers
//! and e-mail addresses — so the agent can be warned and the audit can record the fact; and
//! the output-side leak filter ([`LeakGuard`], [`LeakScanner`]), which tells whether a model
//! output — whole or streamed — reproduces a run of words of the box's own system prompt.
//!
//! Owns: the personal-data patterns and their checks; the word-run index of the protected
//! texts and the incremental output scanner; the prompt length check
//! ([`check_prompt_length`]).
//!
//! Must never: return, log or store the matched text (only the kinds found, or the fact of a
//! leak) — the protected text and scanned output stay out of `Debug` output and errors; or
//! block a request by itself (the caller decides).

mod leak;

pub use leak::{LeakGuard, LeakScanner, DEFAULT_LEAK_MIN_WORDS, MIN_PROTECTED_WORDS};

use regex::Regex;
use serde::Serialize;
use std::sync::OnceLock;

/// A kind of personal data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PiiKind {
    /// Numéro d'inscription au répertoire (social security number).
    Nir,
    Iban,
    Phone,
    Email,
}

impl PiiKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PiiKind::Nir => "nir",
            PiiKind::Iban => "iban",
            PiiKind::Phone => "phone",
            PiiKind::Email => "email",
        }
    }

    /// The stable name (as serialized), for messages; the agents' UI words it in French.
    pub fn name(self) -> &'static str {
        match self {
            PiiKind::Nir => "nir",
            PiiKind::Iban => "iban",
            PiiKind::Phone => "phone",
            PiiKind::Email => "email",
        }
    }
}

/// A check failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    /// The prompt is longer than allowed.
    #[error("prompt is {chars} characters long; at most {max} are accepted")]
    PromptTooLong {
        /// The prompt's length, in characters.
        chars: usize,
        /// The limit, in characters.
        max: usize,
    },
}

/// Refuses a prompt of more than `max_chars` characters (count them with
/// `text.chars().count()`, not bytes: French text is not ASCII).
pub fn check_prompt_length(text_chars: usize, max_chars: usize) -> Result<(), GuardError> {
    if text_chars > max_chars {
        return Err(GuardError::PromptTooLong {
            chars: text_chars,
            max: max_chars,
        });
    }
    Ok(())
}

/// `None` only if a pattern did not compile, which the tests rule out.
struct Patterns {
    nir: Option<Regex>,
    iban: Option<Regex>,
    phone: Option<Regex>,
    email: Option<Regex>,
}

fn patterns() -> &'static Patterns {
    static P: OnceLock<Patterns> = OnceLock::new();
    P.get_or_init(|| {
        let re = |s: &str| Regex::new(s).ok();
        Patterns {
            nir: re(r"(?i)\b([12])[ .]?(\d{2})[ .]?(\d{2})[ .]?(\d{2}|2A|2B)[ .]?(\d{3})[ .]?(\d{3})[ .]?(\d{2})\b"),
            iban: re(r"(?i)\b([A-Z]{2}\d{2}(?:[ ]?[0-9A-Z]){11,30})\b"),
            phone: re(r"(?:\+33[ .]?(?:\(0\))?|\b0)[1-9](?:[ .-]?\d{2}){4}\b"),
            email: re(r"(?i)\b[A-Z0-9._%+-]+@[A-Z0-9-]+(?:\.[A-Z0-9-]+)*\.[A-Z]{2,}\b"),
        }
    })
}

/// NIR key: 97 - (13-digit number mod 97); Corsica's 2A/2B count as 19/18.
fn nir_valid(c: &regex::Captures<'_>) -> bool {
    let dept = match c[4].to_ascii_uppercase().as_str() {
        "2A" => "19".to_string(),
        "2B" => "18".to_string(),
        d => d.to_string(),
    };
    let body = format!("{}{}{}{}{}{}", &c[1], &c[2], &c[3], dept, &c[5], &c[6]);
    let Ok(n) = body.parse::<u64>() else {
        return false;
    };
    let Ok(key) = c[7].parse::<u64>() else {
        return false;
    };
    (1..=97).contains(&key) && 97 - n % 97 == key
}

/// ISO 13616 check: move the first four characters to the end, letters to numbers, mod 97 = 1.
fn iban_valid(s: &str) -> bool {
    let s: String = s
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase();
    if !(15..=34).contains(&s.len()) {
        return false;
    }
    let (head, tail) = s.split_at(4);
    let mut rem: u32 = 0;
    for ch in tail.chars().chain(head.chars()) {
        let v = match ch {
            '0'..='9' => ch as u32 - '0' as u32,
            'A'..='Z' => ch as u32 - 'A' as u32 + 10,
            _ => return false,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

/// The kinds of personal data found in `text`, sorted, each once.
pub fn scan(text: &str) -> Vec<PiiKind> {
    let p = patterns();
    let mut found = Vec::new();
    if let Some(re) = &p.nir {
        if re.captures_iter(text).any(|c| nir_valid(&c)) {
            found.push(PiiKind::Nir);
        }
    }
    if let Some(re) = &p.iban {
        if re.captures_iter(text).any(|c| iban_valid(&c[1])) {
            found.push(PiiKind::Iban);
        }
    }
    if p.phone.as_ref().is_some_and(|re| re.is_match(text)) {
        found.push(PiiKind::Phone);
    }
    if p.email.as_ref().is_some_and(|re| re.is_match(text)) {
        found.push(PiiKind::Email);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use PiiKind::*;

    #[test]
    fn every_pattern_compiles() {
        let p = patterns();
        assert!(p.nir.is_some() && p.iban.is_some() && p.phone.is_some() && p.email.is_some());
    }

    #[test]
    fn finds_each_kind_with_valid_checks() {
        // NIR 1 84 12 76 451 089, key 46 (the INSEE example).
        assert_eq!(scan("Mon NIR : 1 84 12 76 451 089 46."), [Nir]);
        assert_eq!(scan("184127645108946"), [Nir]);
        assert_eq!(scan("1 84 12 76 451 089 47"), [], "wrong key");
        // Corsica: 2A counts as 19.
        let n: u64 = "2840219451089".parse().unwrap();
        let key = 97 - n % 97;
        assert_eq!(scan(&format!("2 84 02 2A 451 089 {key:02}")), [Nir]);
        assert_eq!(scan("IBAN FR76 3000 6000 0112 3456 7890 189"), [Iban]);
        assert_eq!(scan("FR7630006000011234567890189"), [Iban]);
        assert_eq!(scan("FR7630006000011234567890188"), [], "bad checksum");
        assert_eq!(scan("Appelez le 01 23 45 67 89"), [Phone]);
        assert_eq!(scan("ou le +33 6 12 34 56 78"), [Phone]);
        assert_eq!(scan("ou 06.12.34.56.78"), [Phone]);
        assert_eq!(scan("écrire à marie.dupont@mairie-exemple.fr"), [Email]);
        let all = scan("1 84 12 76 451 089 46, FR7630006000011234567890189, 0123456789, a@b.fr");
        assert_eq!(all, [Nir, Iban, Phone, Email]);
    }

    #[test]
    fn prompt_length() {
        assert_eq!(check_prompt_length(0, 0), Ok(()));
        assert_eq!(check_prompt_length(10, 10), Ok(()));
        let err = check_prompt_length(11, 10).unwrap_err();
        assert_eq!(err, GuardError::PromptTooLong { chars: 11, max: 10 });
        assert_eq!(
            err.to_string(),
            "prompt is 11 characters long; at most 10 are accepted"
        );
    }

    #[test]
    fn guards_are_send_sync() {
        fn check<T: Send + Sync>() {}
        check::<LeakGuard>();
        check::<LeakScanner>();
        check::<GuardError>();
    }

    #[test]
    fn ordinary_text_is_clean() {
        for t in [
            "Rédige un courrier pour le conseil municipal du 12 03 2026.",
            "Le budget 2026 est de 1 234 567 euros.",
            "Article L2121-29 du code général des collectivités territoriales.",
            "Commande n° 20261129 du service technique.",
            "",
        ] {
            assert_eq!(scan(t), [], "{t}");
        }
    }
}
