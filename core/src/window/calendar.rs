//! Calendar periods of every kind — UTC quarters, months, ISO 8601 weeks
//! (Monday-based) and years — as one value: a [`CalendarKind`] and a dense
//! index within it, so that "previous" and "N periods earlier" are integer
//! arithmetic for every kind. Ids: `2025-Q3`, `2025-09`, `2025-W38`, `2025`.
//!
//! The windows specification ([`Windows`](super::Windows)) says which kinds
//! a deployment keeps; this module only knows the calendar.

use std::fmt;
use std::str::FromStr;

use super::{DAY_MS, Millis, civil_from_days, days_from_civil};

/// A kind of calendar period.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CalendarKind {
    Quarter,
    Month,
    /// ISO 8601: Monday to Sunday, numbered within the ISO week-year (the
    /// year of the week's Thursday).
    Week,
    Year,
}

impl CalendarKind {
    pub const ALL: [CalendarKind; 4] =
        [CalendarKind::Quarter, CalendarKind::Month, CalendarKind::Week, CalendarKind::Year];

    /// The kind's name in configuration and errors.
    pub const fn as_str(self) -> &'static str {
        match self {
            CalendarKind::Quarter => "quarter",
            CalendarKind::Month => "month",
            CalendarKind::Week => "week",
            CalendarKind::Year => "year",
        }
    }

    pub fn parse(s: &str) -> Option<CalendarKind> {
        CalendarKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Past periods kept besides the current one unless configured.
    pub const fn default_retention(self) -> u32 {
        match self {
            CalendarKind::Quarter => 4,
            CalendarKind::Month => 12,
            CalendarKind::Week => 8,
            CalendarKind::Year => 1,
        }
    }

    /// The most days a period of this kind has.
    pub const fn longest_days(self) -> u32 {
        match self {
            CalendarKind::Quarter => 92,
            CalendarKind::Month => 31,
            CalendarKind::Week => 7,
            CalendarKind::Year => 366,
        }
    }

    /// The period of this kind that contains the instant `ms`.
    pub fn containing(self, ms: Millis) -> CalendarPeriod {
        let days = ms.div_euclid(DAY_MS);
        let index = match self {
            CalendarKind::Week => (days + EPOCH_TO_MONDAY).div_euclid(7) as i32,
            _ => {
                let (year, month, _) = civil_from_days(days);
                match self {
                    CalendarKind::Quarter => year * 4 + (month as i32 - 1) / 3,
                    CalendarKind::Month => year * 12 + month as i32 - 1,
                    _ => year,
                }
            }
        };
        CalendarPeriod { kind: self, index }
    }
}

/// 1970-01-01 was a Thursday: adding 3 days counts from Monday 1969-12-29.
const EPOCH_TO_MONDAY: i64 = 3;

/// One calendar period: its kind and its dense index (consecutive periods
/// of a kind differ by one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CalendarPeriod {
    pub kind: CalendarKind,
    pub index: i32,
}

impl CalendarPeriod {
    /// The period `n` periods of the same kind before this one.
    pub fn minus(self, n: u32) -> CalendarPeriod {
        CalendarPeriod { index: self.index - n as i32, ..self }
    }

    pub fn previous(self) -> CalendarPeriod {
        self.minus(1)
    }

    /// First instant of the period.
    pub fn start(self) -> Millis {
        let i = self.index;
        let days = match self.kind {
            CalendarKind::Quarter => days_from_civil(i.div_euclid(4), (i.rem_euclid(4) * 3 + 1) as u32, 1),
            CalendarKind::Month => days_from_civil(i.div_euclid(12), (i.rem_euclid(12) + 1) as u32, 1),
            CalendarKind::Week => i64::from(i) * 7 - EPOCH_TO_MONDAY,
            CalendarKind::Year => days_from_civil(i, 1, 1),
        };
        days * DAY_MS
    }

    /// First instant after the period (exclusive end).
    pub fn end(self) -> Millis {
        CalendarPeriod { index: self.index + 1, ..self }.start()
    }

    /// The ISO week-year and week number of a week (1..=53).
    fn iso_week(self) -> (i32, u32) {
        let thursday = self.start().div_euclid(DAY_MS) + 3;
        let (year, _, _) = civil_from_days(thursday);
        let week = (thursday - days_from_civil(year, 1, 1)) / 7 + 1;
        (year, week as u32)
    }
}

impl fmt::Display for CalendarPeriod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = self.index;
        match self.kind {
            CalendarKind::Quarter => write!(f, "{:04}-Q{}", i.div_euclid(4), i.rem_euclid(4) + 1),
            CalendarKind::Month => write!(f, "{:04}-{:02}", i.div_euclid(12), i.rem_euclid(12) + 1),
            CalendarKind::Week => {
                let (year, week) = self.iso_week();
                write!(f, "{year:04}-W{week:02}")
            }
            CalendarKind::Year => write!(f, "{i:04}"),
        }
    }
}

/// Why a period id did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a period id (expected YYYY-Qn, YYYY-MM, YYYY-Www or YYYY)")]
pub struct BadPeriod;

impl FromStr for CalendarPeriod {
    type Err = BadPeriod;

    /// Parses `YYYY-Qn`, `YYYY-MM`, `YYYY-Www` or `YYYY` exactly (four-digit
    /// year, upper-case letters, two-digit month and week).
    fn from_str(s: &str) -> Result<CalendarPeriod, BadPeriod> {
        let b = s.as_bytes();
        let digits = |r: &[u8]| (!r.is_empty() && r.iter().all(u8::is_ascii_digit)).then(|| number(r));
        let year = b.get(..4).and_then(digits).ok_or(BadPeriod)? as i32;
        let period = |kind, index| Ok(CalendarPeriod { kind, index });
        match &b[4..] {
            [] => period(CalendarKind::Year, year),
            [b'-', b'Q', n @ b'1'..=b'4'] => period(CalendarKind::Quarter, year * 4 + i32::from(n - b'1')),
            [b'-', m1, m2] => match digits(&[*m1, *m2]) {
                Some(m @ 1..=12) => period(CalendarKind::Month, year * 12 + m as i32 - 1),
                _ => Err(BadPeriod),
            },
            [b'-', b'W', w1, w2] => {
                let week = digits(&[*w1, *w2]).filter(|w| (1..=53).contains(w)).ok_or(BadPeriod)?;
                // Week 1 holds 4 January.
                let first = CalendarKind::Week.containing(days_from_civil(year, 1, 4) * DAY_MS);
                let p = CalendarPeriod { index: first.index + week as i32 - 1, ..first };
                if p.iso_week() == (year, week) { Ok(p) } else { Err(BadPeriod) }
            }
            _ => Err(BadPeriod),
        }
    }
}

/// Period lookup for instants near a given period: a handful of cached
/// boundaries replace calendar arithmetic on the per-event path.
#[derive(Debug, Clone)]
pub struct Bounds {
    first: CalendarPeriod,
    /// Start of `first`, the next, ..., and the end of the last one.
    starts: Vec<Millis>,
}

impl Bounds {
    /// Covers `back` periods before `current` through the one after it.
    pub fn around(current: CalendarPeriod, back: u32) -> Bounds {
        let first = current.minus(back);
        let starts =
            (0..=back as i32 + 2).map(|i| CalendarPeriod { index: first.index + i, ..first }.start()).collect();
        Bounds { first, starts }
    }

    /// The period containing `ms` (same answer as [`CalendarKind::containing`]).
    #[inline]
    pub fn period_of(&self, ms: Millis) -> CalendarPeriod {
        let (lo, hi) = (self.starts[0], self.starts[self.starts.len() - 1]);
        if ms < lo || ms >= hi {
            return self.first.kind.containing(ms);
        }
        let i = self.starts.partition_point(|b| *b <= ms) - 1;
        CalendarPeriod { index: self.first.index + i as i32, ..self.first }
    }
}

fn number(digits: &[u8]) -> u32 {
    digits.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::window::{Quarter, parse_rfc3339};

    fn at(s: &str) -> Millis {
        parse_rfc3339(s).unwrap()
    }

    #[test]
    fn ids_name_the_period_holding_an_instant_and_parse_back() {
        let t = at("2025-09-17T12:00:00Z");
        let ids: Vec<String> = CalendarKind::ALL.iter().map(|k| k.containing(t).to_string()).collect();
        assert_eq!(ids, ["2025-Q3", "2025-09", "2025-W38", "2025"]);
        for (k, id) in CalendarKind::ALL.iter().zip(&ids) {
            assert_eq!(id.parse::<CalendarPeriod>(), Ok(k.containing(t)), "{id}");
        }
        let week = CalendarKind::Week.containing(t);
        assert_eq!((week.start(), week.end()), (at("2025-09-15T00:00:00Z"), at("2025-09-22T00:00:00Z")));
    }

    #[test]
    fn iso_weeks_cross_year_ends_as_the_standard_says() {
        // 2020-12-31 (Thursday) is in 2020-W53; 2021-01-03 (Sunday) too;
        // 2024-12-30 (Monday) is in 2025-W01.
        let week = |s| CalendarKind::Week.containing(at(s)).to_string();
        assert_eq!(week("2020-12-31T23:59:59Z"), "2020-W53");
        assert_eq!(week("2021-01-03T10:00:00Z"), "2020-W53");
        assert_eq!(week("2021-01-04T00:00:00Z"), "2021-W01");
        assert_eq!(week("2024-12-30T00:00:00Z"), "2025-W01");
        assert_eq!("2021-W53".parse::<CalendarPeriod>(), Err(BadPeriod), "2021 has 52 weeks");
        assert_eq!("2020-W53".parse::<CalendarPeriod>().unwrap().start(), at("2020-12-28T00:00:00Z"));
    }

    #[test]
    fn quarters_agree_with_the_quarter_type_and_bad_ids_are_refused() {
        for s in ["1970-01-01T00:00:00Z", "2025-09-30T23:59:59.999Z", "2400-02-29T12:00:00Z"] {
            let (q, p) = (Quarter::containing(at(s)), CalendarKind::Quarter.containing(at(s)));
            assert_eq!((q.index(), q.start(), q.end(), q.to_string()), (p.index, p.start(), p.end(), p.to_string()));
        }
        for bad in [
            "", "202", "2025-", "2025-Q5", "2025-Q0", "2025-13", "2025-00", "2025-W00", "2025-W54", "2025-9", "25-09",
            "2025-q3", "2025-W1",
        ] {
            assert_eq!(bad.parse::<CalendarPeriod>(), Err(BadPeriod), "{bad:?}");
        }
        assert_eq!(CalendarKind::Month.containing(at("2025-03-01T00:00:00Z")).previous().to_string(), "2025-02");
        assert_eq!(CalendarKind::Year.containing(0).minus(1).start(), at("1969-01-01T00:00:00Z"));
    }

    proptest::proptest! {
        /// Every kind against the `time` crate's calendar, from 1970 to
        /// the year 9900: the id, the bounds holding the instant, the
        /// next period starting where this one ends, the id parsing back.
        #[test]
        fn every_kind_agrees_with_an_independent_calendar(day in 0i64..2_900_000, in_day in 0i64..DAY_MS) {
            let ms = day * DAY_MS + in_day;
            let date = time::Date::from_julian_day((day + 2_440_588) as i32).unwrap();
            let (wy, w, _) = date.to_iso_week_date();
            let m = date.month() as u8;
            let want = [
                format!("{:04}-Q{}", date.year(), (m - 1) / 3 + 1),
                format!("{:04}-{m:02}", date.year()),
                format!("{wy:04}-W{w:02}"),
                format!("{:04}", date.year()),
            ];
            for (k, want) in CalendarKind::ALL.iter().zip(want) {
                let p = k.containing(ms);
                proptest::prop_assert_eq!(p.to_string(), want);
                proptest::prop_assert!(p.start() <= ms && ms < p.end());
                proptest::prop_assert_eq!(CalendarPeriod { index: p.index + 1, ..p }.start(), p.end());
                proptest::prop_assert_eq!(p.to_string().parse::<CalendarPeriod>(), Ok(p));
                let near = Bounds::around(p.minus((in_day % 5) as u32), (day % 4) as u32);
                proptest::prop_assert_eq!(near.period_of(ms), p);
                proptest::prop_assert!(p.end() - p.start() <= i64::from(k.longest_days()) * DAY_MS);
            }
        }
    }
}
