//! UTC calendar arithmetic and the date formats the box writes.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds in a day.
pub const MS_PER_DAY: i64 = 86_400_000;

/// Seconds since the Unix epoch now (0 if the clock is before 1970).
pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian (year, month, day) of `days` since 1970-01-01
/// (H. Hinnant's `civil_from_days`).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March first
    let day = doy - (153 * mp + 2) / 5 + 1; // [1, 31]
    let month = if mp < 10 { mp + 3 } else { mp - 9 }; // [1, 12]
    let year = yoe + era * 400 + i64::from(month <= 2);
    // Both are in range by construction (see the bounds above).
    (year, month as u32, day as u32)
}

/// Number of days in a month of the proleptic Gregorian calendar.
pub fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `YYYY-MM-DD` of a day number since 1970-01-01.
pub fn date_of_day(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The day number since 1970-01-01 of exactly `YYYY-MM-DD` (a real calendar date, years
/// 0000–9999), or `None`.
pub fn parse_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let t = &b[r];
        t.iter()
            .all(u8::is_ascii_digit)
            .then(|| t.iter().fold(0, |acc, c| acc * 10 + u32::from(c - b'0')))
    };
    let (y, m, d) = (i64::from(num(0..4)?), num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
        return None;
    }
    Some(days_from_civil(y, m, d))
}

/// `YYYY-MM-DD` (UTC) of a Unix time in seconds.
pub fn date(unix_secs: i64) -> String {
    date_of_day(unix_secs.div_euclid(86_400))
}

/// `YYYY-MM-DD HH:MM:SS UTC` of a Unix time in seconds.
pub fn date_time(unix_secs: i64) -> String {
    let s = unix_secs.rem_euclid(86_400);
    format!(
        "{} {:02}:{:02}:{:02} UTC",
        date(unix_secs),
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// `2026-11-29T11:47:02.123Z`: RFC 3339 UTC with milliseconds, for a millisecond count since
/// the epoch.
pub fn format_ms(ms: i64) -> String {
    let days = ms.div_euclid(MS_PER_DAY);
    let rem = ms.rem_euclid(MS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    )
}

/// A Unix time in seconds as RFC 3339 UTC with milliseconds (a time before 1970 gives the
/// epoch, one after year 9999 the empty string).
pub fn rfc3339(unix_secs: i64) -> String {
    let t = unix_secs.max(0);
    if t >= 253_402_300_800 {
        return String::new();
    }
    format_ms(t * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_parse_back_and_impossible_ones_do_not() {
        for day in [-1, 0, 19_000, 20_513, 2_932_896] {
            assert_eq!(parse_date(&date_of_day(day)), Some(day));
        }
        for bad in [
            "",
            "2026-02-29",
            "2024-13-01",
            "2024-00-10",
            "2024-01-00",
            "2024-1-01",
            "2024/01/01",
            "+024-01-01",
            "2024-01-01T",
            "２０２４-01-01",
            "2024-04-31",
        ] {
            assert_eq!(parse_date(bad), None, "{bad:?}");
        }
        assert_eq!(parse_date("2024-02-29"), Some(days_from_civil(2024, 2, 29)));
    }

    #[test]
    fn known_dates() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(86_399), "1970-01-01");
        assert_eq!(date(-1), "1969-12-31");
        assert_eq!(date(951_782_400), "2000-02-29");
        assert_eq!(date(1_709_164_800), "2024-02-29");
        assert_eq!(date(1_735_689_599), "2024-12-31");
        assert_eq!(date(1_735_689_600), "2025-01-01");
        assert_eq!(date(4_102_444_800), "2100-01-01");
        assert_eq!(date(253_402_300_799), "9999-12-31");
        assert_eq!(date_of_day(20_000), "2024-10-04");
        assert_eq!(date_time(1_700_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(date_time(-1), "1969-12-31 23:59:59 UTC");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20.000Z");
        assert_eq!(rfc3339(-5), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(253_402_300_800), "");
        assert_eq!(format_ms(1_764_416_822_123), "2025-11-29T11:47:02.123Z");
    }

    #[test]
    fn consecutive_days_are_consecutive_dates_and_round_trip() {
        let mut prev = civil_from_days(-800_000);
        for days in -799_999..800_000 {
            let (y, m, d) = civil_from_days(days);
            let (py, pm, pd) = prev;
            let expected = if pd < days_in_month(py, pm) {
                (py, pm, pd + 1)
            } else if pm < 12 {
                (py, pm + 1, 1)
            } else {
                (py + 1, 1, 1)
            };
            assert_eq!((y, m, d), expected, "day {days}");
            assert_eq!(days_from_civil(y, m, d), days);
            prev = (y, m, d);
        }
    }
}
