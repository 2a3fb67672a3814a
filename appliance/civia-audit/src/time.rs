//! Timestamps and months, without a date crate: entries carry RFC 3339 UTC timestamps with
//! milliseconds (`2026-11-29T11:47:02.123Z`) and segments are named after a UTC month.

use crate::AuditError;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where [`AuditLog`](crate::AuditLog) reads the time. Tests inject a fake one.
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(SystemTime::now)
}

use civia_base::time::{civil_from_days, days_from_civil, days_in_month, MS_PER_DAY};

/// Milliseconds since the Unix epoch; times before 1970 are refused.
pub(crate) fn system_time_to_ms(t: SystemTime) -> Result<i64, AuditError> {
    let d = t
        .duration_since(UNIX_EPOCH)
        .map_err(|_| AuditError::Clock("the clock is before 1970".into()))?;
    i64::try_from(d.as_millis())
        .ok()
        .filter(|ms| *ms < 253_402_300_800_000) // year 10000
        .ok_or_else(|| AuditError::Clock("the clock is after year 9999".into()))
}

pub(crate) fn ms_to_system_time(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)
}

pub(crate) use civia_base::time::format_ms;

/// Formats a time as stored in entries (RFC 3339, UTC, milliseconds).
pub fn format_rfc3339(t: SystemTime) -> Result<String, AuditError> {
    Ok(format_ms(system_time_to_ms(t)?))
}

fn digits(s: &[u8]) -> Option<i64> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0, |acc, c| acc * 10 + i64::from(c - b'0')))
}

/// Parses exactly the stored form `YYYY-MM-DDTHH:MM:SS.mmmZ` (as written by this crate).
pub(crate) fn parse_stored_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 24 || b[23] != b'Z' || b[19] != b'.' {
        return None;
    }
    let secs = parse_general(&b[..19])?;
    Some(secs * 1000 + digits(&b[20..23])?)
}

/// `YYYY-MM-DDTHH:MM:SS` → seconds since the epoch, with field range checks.
fn parse_general(b: &[u8]) -> Option<i64> {
    if b.len() != 19
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let y = digits(&b[0..4])?;
    let mo = u32::try_from(digits(&b[5..7])?).ok()?;
    let d = u32::try_from(digits(&b[8..10])?).ok()?;
    let (h, mi, sec) = (
        digits(&b[11..13])?,
        digits(&b[14..16])?,
        digits(&b[17..19])?,
    );
    if !(1..=12).contains(&mo) || d == 0 || d > days_in_month(y, mo) || h > 23 || mi > 59 {
        return None;
    }
    if sec > 60 {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec.min(59))
}

/// Parses an RFC 3339 timestamp (`2026-11-29T11:47:02Z`, `2026-11-29T12:47:02.5+01:00`, …),
/// e.g. for [`export`](crate::export) bounds given on a command line. Sub-millisecond digits
/// are truncated.
pub fn parse_rfc3339(s: &str) -> Result<SystemTime, AuditError> {
    let bad = || AuditError::InvalidArgument(format!("`{s}` is not an RFC 3339 timestamp"));
    let b = s.as_bytes();
    if b.len() < 20 || !b.is_ascii() {
        return Err(bad());
    }
    let secs = parse_general(&b[..19]).ok_or_else(bad)?;
    let mut rest = &b[19..];
    let mut ms = 0;
    if rest.first() == Some(&b'.') {
        let n = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return Err(bad());
        }
        let frac = &rest[1..1 + n];
        let mut three = [b'0'; 3];
        for (dst, src) in three.iter_mut().zip(frac) {
            *dst = *src;
        }
        ms = digits(&three).ok_or_else(bad)?;
        rest = &rest[1 + n..];
    }
    let offset_s = match rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let h = digits(&[*h1, *h2]).ok_or_else(bad)?;
            let m = digits(&[*m1, *m2]).ok_or_else(bad)?;
            if h > 23 || m > 59 {
                return Err(bad());
            }
            let off = h * 3600 + m * 60;
            if *sign == b'+' {
                off
            } else {
                -off
            }
        }
        _ => return Err(bad()),
    };
    let ms = (secs - offset_s) * 1000 + ms;
    if ms < 0 {
        return Err(bad());
    }
    Ok(ms_to_system_time(ms))
}

/// A UTC calendar month, the unit of segment files (`YYYY-MM.jsonl`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    /// Four-digit year.
    pub year: i32,
    /// 1..=12.
    pub month: u32,
}

impl Month {
    /// The month containing a millisecond timestamp.
    pub(crate) fn of_ms(ms: i64) -> Month {
        let (y, m, _) = civil_from_days(ms.div_euclid(MS_PER_DAY));
        Month {
            year: y as i32,
            month: m,
        }
    }

    /// The month containing `t` (UTC).
    pub fn of(t: SystemTime) -> Result<Month, AuditError> {
        Ok(Month::of_ms(system_time_to_ms(t)?))
    }

    /// Month index (`year * 12 + month - 1`), for arithmetic.
    fn index(self) -> i64 {
        i64::from(self.year) * 12 + i64::from(self.month) - 1
    }

    fn from_index(i: i64) -> Month {
        Month {
            year: i.div_euclid(12) as i32,
            month: i.rem_euclid(12) as u32 + 1,
        }
    }

    /// `n` months earlier.
    pub fn minus(self, n: u32) -> Month {
        Month::from_index(self.index() - i64::from(n))
    }

    /// The segment file name, `YYYY-MM.jsonl`.
    pub fn segment_name(self) -> String {
        format!("{self}.jsonl")
    }

    /// The signature file name, `YYYY-MM.sig`.
    pub fn sig_name(self) -> String {
        format!("{self}.sig")
    }

    /// Parses a segment file name (`YYYY-MM.jsonl`).
    pub(crate) fn from_segment_name(name: &str) -> Option<Month> {
        name.strip_suffix(".jsonl")?.parse().ok()
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl FromStr for Month {
    type Err = AuditError;

    /// `YYYY-MM`.
    fn from_str(s: &str) -> Result<Month, AuditError> {
        let b = s.as_bytes();
        let bad = || AuditError::InvalidArgument(format!("`{s}` is not a month (YYYY-MM)"));
        if b.len() != 7 || b[4] != b'-' {
            return Err(bad());
        }
        let year = digits(&b[..4]).ok_or_else(bad)?;
        let month = digits(&b[5..]).ok_or_else(bad)?;
        if !(1970..=9999).contains(&year) || !(1..=12).contains(&month) {
            return Err(bad());
        }
        Ok(Month {
            year: year as i32,
            month: month as u32,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip() {
        for days in (-800_000..800_000).step_by(37) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn format_and_parse() {
        // 2026-11-29T11:47:02.123Z
        let ms = (days_from_civil(2026, 11, 29) * 86_400 + 11 * 3600 + 47 * 60 + 2) * 1000 + 123;
        assert_eq!(format_ms(ms), "2026-11-29T11:47:02.123Z");
        assert_eq!(parse_stored_ms("2026-11-29T11:47:02.123Z"), Some(ms));
        assert_eq!(format_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(parse_stored_ms("2026-02-29T00:00:00.000Z"), None);
        assert_eq!(parse_stored_ms("2026-11-29T11:47:02Z"), None);
        let t = parse_rfc3339("2026-11-29T12:47:02.1234+01:00").unwrap();
        assert_eq!(format_rfc3339(t).unwrap(), "2026-11-29T11:47:02.123Z");
        assert_eq!(
            format_rfc3339(parse_rfc3339("2026-11-29T11:47:02Z").unwrap()).unwrap(),
            "2026-11-29T11:47:02.000Z"
        );
        assert!(parse_rfc3339("2026-11-29").is_err());
        assert!(parse_rfc3339("2026-13-01T00:00:00Z").is_err());
        assert!(format_rfc3339(UNIX_EPOCH - Duration::from_secs(1)).is_err());
    }

    #[test]
    fn months() {
        let m: Month = "2026-01".parse().unwrap();
        assert_eq!(m.minus(1).to_string(), "2025-12");
        assert_eq!(m.minus(13).to_string(), "2024-12");
        assert_eq!(m.minus(0), m);
        assert_eq!(Month::from_segment_name("2026-01.jsonl"), Some(m));
        assert_eq!(Month::from_segment_name("2026-1.jsonl"), None);
        assert!("2026-00".parse::<Month>().is_err());
        assert_eq!(Month::of_ms(951_782_400_000).to_string(), "2000-02");
    }
}
