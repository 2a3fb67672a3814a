//! French wording helpers: placeholders, counts, dates.

use crate::snapshot::Snapshot;

/// Placeholder for an unconfigured commune name.
pub(crate) const COMMUNE_PLACEHOLDER: &str = "[nom de la commune]";
/// Placeholder for an unconfigured controller / DPO contact.
pub(crate) const CONTACT_PLACEHOLDER: &str =
    "[coordonnées du responsable de traitement et du délégué à la protection des données]";
/// Name of the processing, as written in the register.
pub(crate) const PROCESSING_NAME: &str = "Assistant d'IA générative local Civia";
/// The residual-risk field the DPO fills in.
pub(crate) const TO_BE_ASSESSED: &str = "à évaluer par le DPO";

pub(crate) fn commune(s: &Snapshot) -> String {
    non_blank(s.commune.as_deref()).unwrap_or_else(|| COMMUNE_PLACEHOLDER.to_string())
}

pub(crate) fn contact(s: &Snapshot) -> String {
    non_blank(s.controller_contact.as_deref()).unwrap_or_else(|| CONTACT_PLACEHOLDER.to_string())
}

/// The string, unless it is absent or only whitespace.
pub(crate) fn non_blank(v: Option<&str>) -> Option<String> {
    v.map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
}

/// `1 jour`, `30 jours`; `word` is the singular, `plural` the plural form.
pub(crate) fn count(n: u64, word: &str, plural: &str) -> String {
    // French uses the singular for 0 and 1.
    let w = if n <= 1 { word } else { plural };
    format!("{} {w}", int(n))
}

/// An integer with French digit grouping (`12 000`, narrow no-break spaces).
pub(crate) fn int(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 * 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('\u{202f}');
        }
        out.push(c);
    }
    out
}

/// Items joined as a French enumeration: `a`, `a et b`, `a, b et c`.
pub(crate) fn enumerate(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} et {last}", init.join(", ")),
    }
}

/// The text with its first letter in lower case, for use inside a sentence.
pub(crate) fn lower_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

const MONTHS: &str =
    "janvier février mars avril mai juin juillet août septembre octobre novembre décembre";

/// Parses `YYYY-MM-DD` or an RFC 3339 UTC timestamp (`Z` or `+00:00`) into the French date
/// and, for a timestamp, the time (`9 h 05`). A timestamp with another offset is not parsed,
/// so that no local time is ever presented as UTC.
fn parse(s: &str) -> Option<(String, Option<String>)> {
    let s = s.trim();
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let t = s.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') || !(1..=31).contains(&day) {
        return None;
    }
    let month = MONTHS
        .split(' ')
        .nth(usize::try_from(month).ok()?.checked_sub(1)?)?;
    let day = if day == 1 {
        "1er".to_string()
    } else {
        day.to_string()
    };
    let date = format!("{day} {month} {year}");
    if b.len() == 10 {
        return Some((date, None));
    }
    let (h, mi) = (num(11..13)?, num(14..16)?);
    // Optional seconds and fraction, then the UTC designator.
    let zone = s
        .get(16..)?
        .trim_start_matches(|c: char| c.is_ascii_digit() || ":.".contains(c));
    let well_formed = matches!(b.get(10), Some(b'T' | b't' | b' ')) && b.get(13) == Some(&b':');
    (well_formed && h < 24 && mi < 60 && matches!(zone, "Z" | "z" | "+00:00"))
        .then(|| (date, Some(format!("{h} h {mi:02}"))))
}

/// `15 janvier 2025 à 10 h 05 (UTC)`, or the string as given when it cannot be parsed.
pub(crate) fn datetime(s: &str) -> String {
    match parse(s) {
        Some((date, Some(time))) => format!("{date} à {time} (UTC)"),
        Some((date, None)) => date,
        None => s.to_string(),
    }
}

/// `15 janvier 2025`, or the string as given when it cannot be parsed.
pub(crate) fn date(s: &str) -> String {
    parse(s).map_or_else(|| s.to_string(), |(date, _)| date)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_written_in_french_and_unparsed_ones_are_kept() {
        assert_eq!(
            datetime("2025-01-15T10:05:00Z"),
            "15 janvier 2025 à 10 h 05 (UTC)"
        );
        assert_eq!(
            datetime("2025-08-01T09:00:00.123+00:00"),
            "1er août 2025 à 9 h 00 (UTC)"
        );
        assert_eq!(date("2025-12-03"), "3 décembre 2025");
        assert_eq!(date("2025-12-03T23:59:59Z"), "3 décembre 2025");
        // Another offset is not presented as UTC.
        assert_eq!(
            datetime("2025-01-15T10:05:00+02:00"),
            "2025-01-15T10:05:00+02:00"
        );
        assert_eq!(datetime("hier"), "hier");
        assert_eq!(datetime("2025-13-01"), "2025-13-01");
        assert_eq!(datetime("2025-00-01"), "2025-00-01");
        assert_eq!(datetime("2025-01-15T25:00:00Z"), "2025-01-15T25:00:00Z");
        assert_eq!(date("2025-01-15x"), "2025-01-15x");
    }

    #[test]
    fn counts_and_lists_follow_french_rules() {
        assert_eq!(count(0, "jour", "jours"), "0 jour");
        assert_eq!(count(1, "jour", "jours"), "1 jour");
        assert_eq!(count(30, "jour", "jours"), "30 jours");
        assert_eq!(int(1_234_567), "1\u{202f}234\u{202f}567");
        assert_eq!(int(123), "123");
        let l = |v: &[&str]| enumerate(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(l(&["a", "b", "c"]), "a, b et c");
        assert_eq!(l(&["a"]), "a");
    }
}
