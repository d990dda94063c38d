//! Calendar dates (business dates, `at`), payout periods and the ledger's
//! millisecond timestamps (`recorded_at`).
//!
//! Owns: strict parsing and formatting of `YYYY-MM-DD`, `YYYY`, `YYYY-Qn`,
//! `YYYY-MM` and RFC 3339 millisecond UTC times. Proleptic Gregorian, no time
//! zones. Never: accepts a date that does not exist (2019-02-30).

use std::fmt;

/// Earliest and latest years accepted. A ledger of public money has no
/// business before 1900 or after 9999; the bounds keep day arithmetic in i32.
pub const YEAR_MIN: i32 = 1900;
pub const YEAR_MAX: i32 = 9999;

/// A calendar date as days since 1970-01-01.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date(i32);

fn is_leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// Days in a month of a year (month 1..=12).
pub fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days from civil (Howard Hinnant's algorithm), exact for all i32 years used.
fn days_from_civil(year: i32, month: u32, day: u32) -> i32 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = month as i32;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day as i32 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn civil_from_days(days: i32) -> (i32, u32, u32) {
    let z = days + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn parse_digits(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn parse_year(text: &str) -> Option<i32> {
    if text.len() != 4 {
        return None;
    }
    let year = parse_digits(text)? as i32;
    (YEAR_MIN..=YEAR_MAX).contains(&year).then_some(year)
}

impl Date {
    /// A date from its parts, if it exists.
    pub fn from_ymd(year: i32, month: u32, day: u32) -> Option<Date> {
        if !(YEAR_MIN..=YEAR_MAX).contains(&year) || !(1..=12).contains(&month) {
            return None;
        }
        if day == 0 || day > days_in_month(year, month) {
            return None;
        }
        Some(Date(days_from_civil(year, month, day)))
    }

    /// Strict `YYYY-MM-DD`.
    pub fn parse(text: &str) -> Option<Date> {
        let bytes = text.as_bytes();
        if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
            return None;
        }
        let year = parse_year(&text[0..4])?;
        if text[5..7].len() != 2 || text[8..10].len() != 2 {
            return None;
        }
        Date::from_ymd(year, parse_digits(&text[5..7])?, parse_digits(&text[8..10])?)
    }

    pub fn days_since_epoch(self) -> i32 {
        self.0
    }

    pub fn from_days_since_epoch(days: i32) -> Date {
        Date(days)
    }

    pub fn ymd(self) -> (i32, u32, u32) {
        civil_from_days(self.0)
    }

    pub fn year(self) -> i32 {
        self.ymd().0
    }

    /// Calendar days from `self` to `later` (negative when `later` is earlier).
    pub fn days_until(self, later: Date) -> i64 {
        i64::from(later.0) - i64::from(self.0)
    }

    pub fn add_days(self, days: i32) -> Date {
        Date(self.0.saturating_add(days))
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.ymd();
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

/// `YYYY-MM-DD` in JSON; the day number in binary formats (the snapshot).
impl serde::Serialize for Date {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.collect_str(self)
        } else {
            serializer.serialize_i32(self.0)
        }
    }
}

impl<'de> serde::Deserialize<'de> for Date {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Date, D::Error> {
        if !deserializer.is_human_readable() {
            let days = <i32 as serde::Deserialize>::deserialize(deserializer)?;
            // The same range as a parsed date.
            let range = days_from_civil(YEAR_MIN, 1, 1)..=days_from_civil(YEAR_MAX, 12, 31);
            return if range.contains(&days) {
                Ok(Date(days))
            } else {
                Err(serde::de::Error::custom(format!("day {days} is out of the calendar's range")))
            };
        }
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Date::parse(&text).ok_or_else(|| serde::de::Error::custom(format!("not a real date YYYY-MM-DD: {text:?}")))
    }
}

/// A payout period: a year, a quarter or a month.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Period {
    Year(i32),
    Quarter(i32, u32),
    Month(i32, u32),
}

impl Period {
    /// Strict `YYYY`, `YYYY-Qn` or `YYYY-MM`.
    pub fn parse(text: &str) -> Option<Period> {
        let year = parse_year(text.get(0..4)?)?;
        let rest = &text[4..];
        if rest.is_empty() {
            return Some(Period::Year(year));
        }
        let rest = rest.strip_prefix('-')?;
        if let Some(quarter) = rest.strip_prefix('Q') {
            let quarter = parse_digits(quarter).filter(|q| (1..=4).contains(q))?;
            return (rest.len() == 2).then_some(Period::Quarter(year, quarter));
        }
        let month = parse_digits(rest).filter(|m| (1..=12).contains(m))?;
        (rest.len() == 2).then_some(Period::Month(year, month))
    }

    pub fn year(self) -> i32 {
        match self {
            Period::Year(y) | Period::Quarter(y, _) | Period::Month(y, _) => y,
        }
    }

    /// First day of the period.
    pub fn start(self) -> Date {
        let (year, month) = match self {
            Period::Year(y) => (y, 1),
            Period::Quarter(y, q) => (y, 3 * q - 2),
            Period::Month(y, m) => (y, m),
        };
        Date(days_from_civil(year, month, 1))
    }

    /// Last day of the period.
    pub fn end(self) -> Date {
        let (year, month) = match self {
            Period::Year(y) => (y, 12),
            Period::Quarter(y, q) => (y, 3 * q),
            Period::Month(y, m) => (y, m),
        };
        Date(days_from_civil(year, month, days_in_month(year, month)))
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Period::Year(y) => write!(f, "{y:04}"),
            Period::Quarter(y, q) => write!(f, "{y:04}-Q{q}"),
            Period::Month(y, m) => write!(f, "{y:04}-{m:02}"),
        }
    }
}

impl serde::Serialize for Period {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Period {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Period, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Period::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("not a period YYYY, YYYY-Qn or YYYY-MM: {text:?}")))
    }
}

/// Milliseconds since the Unix epoch, UTC: the ledger clock of `recorded_at`.
pub type TimestampMs = i64;

/// `2018-11-01T00:00:01.000Z` from milliseconds.
pub fn format_timestamp_ms(ms: TimestampMs) -> String {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    let (y, mo, d) = civil_from_days(days as i32);
    let (h, mi, s, milli) = (in_day / 3_600_000, in_day / 60_000 % 60, in_day / 1000 % 60, in_day % 1000);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z")
}

/// Strict inverse of [`format_timestamp_ms`].
pub fn parse_timestamp_ms(text: &str) -> Option<TimestampMs> {
    let b = text.as_bytes();
    if b.len() != 24 || b[10] != b'T' || b[13] != b':' || b[16] != b':' || b[19] != b'.' {
        return None;
    }
    if b[23] != b'Z' {
        return None;
    }
    let date = Date::parse(&text[0..10])?;
    let hour = parse_digits(&text[11..13]).filter(|h| *h < 24)?;
    let minute = parse_digits(&text[14..16]).filter(|m| *m < 60)?;
    let second = parse_digits(&text[17..19]).filter(|s| *s < 60)?;
    let milli = parse_digits(&text[20..23])?;
    let ms = i64::from(date.0) * 86_400_000
        + i64::from(hour) * 3_600_000
        + i64::from(minute) * 60_000
        + i64::from(second) * 1000
        + i64::from(milli);
    Some(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_parse_only_when_real() {
        // Goal: real dates round-trip; impossible or malformed ones are refused.
        for ok in ["2019-02-28", "2020-02-29", "2000-02-29", "1970-01-01", "9999-12-31"] {
            assert_eq!(Date::parse(ok).unwrap().to_string(), ok);
        }
        for bad in [
            "2019-02-29",
            "1900-02-29",
            "2019-02-30",
            "2019-13-01",
            "19-01-01",
            "2019-1-01",
            "2019-01-01 ",
            "+019-01-01",
            "2019-00-10",
            "2019-01-00",
        ] {
            assert!(Date::parse(bad).is_none(), "{bad}");
        }
        assert_eq!(Date::parse("2018-11-01").unwrap().days_until(Date::parse("2019-11-01").unwrap()), 365);
    }

    #[test]
    fn periods_have_bounds() {
        // Goal: periods parse strictly and know their first and last day.
        let q = Period::parse("2019-Q1").unwrap();
        assert_eq!((q.start().to_string(), q.end().to_string()), ("2019-01-01".into(), "2019-03-31".into()));
        let m = Period::parse("2020-02").unwrap();
        assert_eq!(m.end().to_string(), "2020-02-29");
        assert_eq!(Period::parse("2018").unwrap().end().to_string(), "2018-12-31");
        for bad in ["2019-Q5", "2019-Q0", "2019-13", "2019-1", "2019-", "201", "2019-Q11"] {
            assert!(Period::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn timestamps_round_trip() {
        // Goal: recorded_at formats as SPEC §5 shows and parses back exactly.
        assert_eq!(format_timestamp_ms(1541030401000), "2018-11-01T00:00:01.000Z");
        assert_eq!(parse_timestamp_ms("2018-11-01T00:00:01.000Z"), Some(1541030401000));
        assert_eq!(parse_timestamp_ms("2018-11-01T00:00:01Z"), None);
        assert_eq!(parse_timestamp_ms("2018-11-01T24:00:01.000Z"), None);
    }
}
