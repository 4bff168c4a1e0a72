//! Event-time windows: UTC calendar quarters, the rolling N-day window and
//! timestamp arithmetic. Pure functions of their arguments; no clock.
//!
//! [`calendar`] has every calendar kind (quarter, month, ISO week, year)
//! and [`spec`] the specification of the windows a deployment keeps (which
//! kinds, how many past periods of each, which rolling durations) and the
//! window ids users name them by.
//!
//! Time is carried as [`Millis`], milliseconds since the Unix epoch (UTC).
//! Quarters are numbered by a dense index (`year * 4 + quarter - 1`) so that
//! "previous" and "N quarters earlier" are plain integer arithmetic.

use std::fmt;
use std::str::FromStr;

pub mod calendar;
pub mod spec;

pub use calendar::{BadPeriod, Bounds, CalendarKind, CalendarPeriod};
pub use spec::{BadWindows, MAX_ROLLING, UnknownWindow, WindowId, Windows};

/// Milliseconds since 1970-01-01T00:00:00Z.
pub type Millis = i64;

/// One day in milliseconds.
pub const DAY_MS: Millis = 86_400_000;

/// Earliest timestamp an event may carry (1970-01-01T00:00:00Z).
pub const MIN_MILLIS: Millis = 0;
/// Latest timestamp an event may carry: 2^47 - 1 ms, in the year 6429. It
/// keeps every accepted time a four-digit-year RFC 3339 string and lets the
/// engine store a publication time in 47 bits.
pub const MAX_MILLIS: Millis = (1 << 47) - 1;

/// A UTC calendar quarter, e.g. `2025-Q3`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Quarter(i32);

impl Quarter {
    /// The quarter of `year` numbered `n` (1..=4).
    pub fn new(year: i32, n: u8) -> Option<Quarter> {
        ((1..=4).contains(&n) && (0..=9999).contains(&year)).then(|| Quarter(year * 4 + i32::from(n) - 1))
    }

    /// The quarter that contains the instant `ms`.
    pub fn containing(ms: Millis) -> Quarter {
        let (year, month, _) = civil_from_days(ms.div_euclid(DAY_MS));
        Quarter(year * 4 + (month as i32 - 1) / 3)
    }

    pub fn year(self) -> i32 {
        self.0.div_euclid(4)
    }

    /// 1..=4.
    pub fn number(self) -> u8 {
        (self.0.rem_euclid(4) + 1) as u8
    }

    /// Dense index; consecutive quarters differ by one.
    pub fn index(self) -> i32 {
        self.0
    }

    pub fn from_index(index: i32) -> Quarter {
        Quarter(index)
    }

    /// The quarter `n` quarters before this one.
    pub fn minus(self, n: u32) -> Quarter {
        Quarter(self.0 - n as i32)
    }

    pub fn previous(self) -> Quarter {
        self.minus(1)
    }

    /// First instant of the quarter.
    pub fn start(self) -> Millis {
        let month = (self.number() as u32 - 1) * 3 + 1;
        days_from_civil(self.year(), month, 1) * DAY_MS
    }

    /// First instant after the quarter (exclusive end).
    pub fn end(self) -> Millis {
        Quarter(self.0 + 1).start()
    }
}

impl fmt::Display for Quarter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-Q{}", self.year(), self.number())
    }
}

/// Why a quarter id did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a quarter id (expected YYYY-Qn, n in 1..4)")]
pub struct BadQuarter;

impl FromStr for Quarter {
    type Err = BadQuarter;

    /// Parses `YYYY-Qn` exactly (four-digit year, upper-case `Q`).
    fn from_str(s: &str) -> Result<Quarter, BadQuarter> {
        match s.parse::<CalendarPeriod>() {
            Ok(CalendarPeriod { kind: CalendarKind::Quarter, index }) => Ok(Quarter(index)),
            _ => Err(BadQuarter),
        }
    }
}

/// The rolling window ending at the watermark: `[watermark - days, watermark]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rolling {
    pub start: Millis,
    pub end: Millis,
}

impl Rolling {
    pub fn at(watermark: Millis, days: u32) -> Rolling {
        Rolling { start: watermark - i64::from(days) * DAY_MS, end: watermark }
    }

    /// The window of the same length just before this one, used for
    /// `previous_period_rank`: `[start - days, start)`.
    pub fn previous(self) -> Rolling {
        Rolling { start: self.start - (self.end - self.start), end: self.start }
    }

    /// Whether a post published at `published` counts in the window.
    pub fn contains_published(self, published: Millis) -> bool {
        published >= self.start && published <= self.end
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`, public-domain algorithm).
pub fn days_from_civil(year: i32, month: u32, day: u32) -> i64 {
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Inverse of [`days_from_civil`]: `(year, month 1..=12, day 1..=31)`.
pub fn civil_from_days(days: i64) -> (i32, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
    (year, month, day)
}

/// Formats an instant as RFC 3339 in UTC: `2025-07-14T10:00:00Z`, with a
/// `.mmm` fraction only when the milliseconds are not zero.
pub fn format_rfc3339(ms: Millis) -> String {
    let (y, mo, d) = civil_from_days(ms.div_euclid(DAY_MS));
    let in_day = ms.rem_euclid(DAY_MS);
    let (h, mi, s, frac) = (in_day / 3_600_000, in_day / 60_000 % 60, in_day / 1000 % 60, in_day % 1000);
    if frac == 0 {
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
    } else {
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{frac:03}Z")
    }
}

/// Parses an RFC 3339 timestamp with any offset into UTC milliseconds
/// (sub-millisecond digits are truncated). `None` when it does not parse.
/// The result may lie outside [`MIN_MILLIS`, `MAX_MILLIS`]: callers check.
///
/// The common shape (`YYYY-MM-DDTHH:MM:SS`, an optional fraction, `Z` or
/// `±HH:MM`) is read by hand; anything else goes to the `time` crate, which
/// defines the format (a property test checks the two agree).
pub fn parse_rfc3339(s: &str) -> Option<Millis> {
    match parse_common(s.as_bytes()) {
        Some(ms) => Some(ms),
        None => parse_with_time(s),
    }
}

fn parse_with_time(s: &str) -> Option<Millis> {
    use time::format_description::well_known::Rfc3339;
    let t = time::OffsetDateTime::parse(s, &Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos().div_euclid(1_000_000)).ok()
}

/// The common shape, strictly; `None` means "not this shape", not "invalid".
fn parse_common(b: &[u8]) -> Option<Millis> {
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        let digits = b.get(range)?;
        digits.iter().try_fold(0u32, |n, d| d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0')))
    };
    let sep = |i: usize, c: u8| b.get(i) == Some(&c);
    if !(sep(4, b'-') && sep(7, b'-') && sep(10, b'T') && sep(13, b':') && sep(16, b':')) {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year as i32, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut at = 19;
    let mut millis = 0;
    if sep(at, b'.') {
        let digits = b[at + 1..].iter().take_while(|d| d.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        millis = b[at + 1..at + 1 + digits]
            .iter()
            .chain([b'0'; 3].iter())
            .take(3)
            .fold(0, |n, d| n * 10 + i64::from(d - b'0'));
        at += 1 + digits;
    }
    let offset_minutes = match b.get(at..)? {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (h, m) = (num(at + 1..at + 3)?, num(at + 4..at + 6)?);
            if h > 23 || m > 59 || (*sign == b'-' && h == 0 && m == 0) {
                return None;
            }
            let minutes = i64::from(h * 60 + m);
            if *sign == b'-' { -minutes } else { minutes }
        }
        _ => return None,
    };
    let days = days_from_civil(year as i32, month, day);
    let seconds = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second) - offset_minutes * 60;
    Some(seconds * 1000 + millis)
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => 31,
    }
}

/// Whether an instant lies in the range events may carry.
pub fn in_range(ms: Millis) -> bool {
    (MIN_MILLIS..=MAX_MILLIS).contains(&ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Millis {
        parse_rfc3339(s).unwrap()
    }

    #[test]
    fn quarter_bounds_follow_the_spec_example() {
        let q3: Quarter = "2025-Q3".parse().unwrap();
        assert_eq!(q3.start(), ts("2025-07-01T00:00:00Z"));
        assert_eq!(q3.end(), ts("2025-10-01T00:00:00Z"));
        assert_eq!(q3.previous().to_string(), "2025-Q2");
        assert_eq!("2025-Q1".parse::<Quarter>().unwrap().previous().to_string(), "2024-Q4");
    }

    #[test]
    fn quarter_contains_its_bounds_half_open() {
        let q3: Quarter = "2025-Q3".parse().unwrap();
        assert_eq!(Quarter::containing(q3.start()), q3);
        assert_eq!(Quarter::containing(q3.end() - 1), q3);
        assert_eq!(Quarter::containing(q3.end()).to_string(), "2025-Q4");
        assert_eq!(Quarter::containing(0).to_string(), "1970-Q1");
    }

    #[test]
    fn bad_quarter_ids_are_refused() {
        for bad in ["", "2025-Q0", "2025-Q5", "2025Q3", "25-Q3", "2025-q3", "2025-Q33", "+025-Q3", "２０２５-Q3"] {
            assert_eq!(bad.parse::<Quarter>(), Err(BadQuarter), "{bad}");
        }
    }

    #[test]
    fn rfc3339_accepts_offsets_and_fractions() {
        assert_eq!(ts("2025-07-14T10:00:00Z"), 1_752_487_200_000);
        assert_eq!(ts("2025-07-14T12:00:00+02:00"), 1_752_487_200_000);
        assert_eq!(ts("2025-07-14T10:00:00.123456Z"), 1_752_487_200_123);
        assert_eq!(parse_rfc3339("2025-07-14 10:00:00"), None);
        assert!(!in_range(ts("1969-12-31T23:59:59Z")));
        assert!(in_range(ts("6429-01-01T00:00:00Z")) && !in_range(ts("9999-01-01T00:00:00Z")));
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    proptest::proptest! {
        /// The hand-written common shape agrees with the `time` crate on
        /// every string it accepts, and accepts what `time` formats.
        #[test]
        fn the_common_shape_agrees_with_time(
            y in 0u32..10000, mo in 0u32..14, d in 0u32..33, h in 0u32..25, mi in 0u32..61, sec in 0u32..61,
            frac in proptest::option::of("[0-9]{1,10}"),
            offset in proptest::option::of((proptest::bool::ANY, 0u32..25, 0u32..61)),
            lower in proptest::bool::ANY,
        ) {
            let frac = frac.map(|f| format!(".{f}")).unwrap_or_default();
            let zone = match offset {
                None if lower => "z".to_string(),
                None => "Z".to_string(),
                Some((neg, oh, om)) => format!("{}{oh:02}:{om:02}", if neg { '-' } else { '+' }),
            };
            let s = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{sec:02}{frac}{zone}");
            if let Some(ms) = parse_common(s.as_bytes()) {
                proptest::prop_assert_eq!(Some(ms), parse_with_time(&s), "{}", s);
            }
            proptest::prop_assert_eq!(parse_rfc3339(&s), parse_with_time(&s), "{}", s);
        }
    }

    #[test]
    fn the_common_shape_is_the_fast_path() {
        for s in [
            "2025-07-14T10:00:00Z",
            "2024-02-29T23:59:59.001Z",
            "2025-07-14T12:00:00+02:00",
            "2025-07-14T10:00:00.123456-05:30",
        ] {
            assert_eq!(parse_common(s.as_bytes()), parse_with_time(s), "{s}");
            assert!(parse_common(s.as_bytes()).is_some(), "{s}");
        }
    }

    #[test]
    fn formatting_round_trips() {
        for s in
            ["2025-07-14T10:00:00Z", "2024-02-29T23:59:59.001Z", "1970-01-01T00:00:00Z", "6429-12-31T23:59:59.999Z"]
        {
            assert_eq!(format_rfc3339(ts(s)), s);
        }
    }

    #[test]
    fn civil_conversion_round_trips_over_centuries() {
        for days in (-800_000..3_000_000).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn rolling_window_and_its_predecessor() {
        let wm = ts("2025-10-05T12:00:00Z");
        let r = Rolling::at(wm, 90);
        assert_eq!(r.start, ts("2025-07-07T12:00:00Z"));
        assert!(r.contains_published(r.start));
        assert!(!r.contains_published(r.start - 1));
        let p = r.previous();
        assert_eq!((p.start, p.end), (ts("2025-04-08T12:00:00Z"), r.start));
    }
}
