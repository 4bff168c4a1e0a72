//! Which windows a deployment keeps (`[windows]` in the configuration):
//! calendar kinds, each with how many past periods it retains, and rolling
//! durations in whole days — and the window ids users name them by.
//!
//! Ids: a calendar period (`2025-Q3`, `2025-09`, `2025-W38`, `2025`); the
//! relative `current`/`previous` (quarters), `current-month`,
//! `previous-month`, `current-week`, `previous-week`, `current-year`,
//! `previous-year`; `rolling` (the first rolling duration configured) and
//! `rolling-7d` (any configured one by its length).

use std::fmt;

use super::calendar::{CalendarKind, CalendarPeriod};

/// Longest rolling window, in days.
pub const MAX_ROLLING_DAYS: u32 = 366;
/// Most rolling windows one deployment keeps.
pub const MAX_ROLLING: usize = 8;
/// Most past periods a calendar kind retains.
pub const MAX_RETENTION: u32 = 60;

/// The windows specification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Windows {
    /// Distinct kinds in configuration order, each with its retention
    /// (past periods kept besides the current one).
    calendar: Vec<(CalendarKind, u32)>,
    /// Distinct durations in days; the first is `rolling`.
    rolling: Vec<u32>,
}

/// Why a windows specification was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadWindows {
    #[error("unknown calendar kind {0:?}: expected quarter, month, week or year")]
    Kind(String),
    #[error("calendar kind {0} is listed twice")]
    RepeatedKind(&'static str),
    #[error("retention of {0} must be 0 to {MAX_RETENTION} past periods")]
    Retention(&'static str),
    #[error("rolling window {0:?} is not a whole number of days from 1 to 366, like \"90d\"")]
    Rolling(String),
    #[error("rolling window {0}d is listed twice")]
    RepeatedRolling(u32),
    #[error("at most {MAX_ROLLING} rolling windows")]
    TooManyRolling,
    #[error("at least one calendar kind or rolling window is needed")]
    Empty,
}

impl Default for Windows {
    /// Quarters (4 past), months (12 past), rolling 90 and 7 days.
    fn default() -> Windows {
        let kinds = [CalendarKind::Quarter, CalendarKind::Month];
        Windows { calendar: kinds.map(|k| (k, k.default_retention())).to_vec(), rolling: vec![90, 7] }
    }
}

impl Windows {
    /// A specification from its configured parts: kind names with an
    /// optional retention each (the kind's default otherwise), and rolling
    /// durations such as `"90d"`.
    pub fn new(calendar: &[(&str, Option<u32>)], rolling: &[&str]) -> Result<Windows, BadWindows> {
        let mut kinds: Vec<(CalendarKind, u32)> = Vec::new();
        for (name, retention) in calendar {
            let kind = CalendarKind::parse(name).ok_or_else(|| BadWindows::Kind(name.to_string()))?;
            if kinds.iter().any(|(k, _)| *k == kind) {
                return Err(BadWindows::RepeatedKind(kind.as_str()));
            }
            let retention = retention.unwrap_or(kind.default_retention());
            if retention > MAX_RETENTION {
                return Err(BadWindows::Retention(kind.as_str()));
            }
            kinds.push((kind, retention));
        }
        let mut days: Vec<u32> = Vec::new();
        for r in rolling {
            let d = parse_days(r).ok_or_else(|| BadWindows::Rolling(r.to_string()))?;
            if days.contains(&d) {
                return Err(BadWindows::RepeatedRolling(d));
            }
            days.push(d);
        }
        if days.len() > MAX_ROLLING {
            return Err(BadWindows::TooManyRolling);
        }
        if kinds.is_empty() && days.is_empty() {
            return Err(BadWindows::Empty);
        }
        Ok(Windows { calendar: kinds, rolling: days })
    }

    /// The calendar kinds kept, with their retention.
    pub fn calendar(&self) -> &[(CalendarKind, u32)] {
        &self.calendar
    }

    /// The rolling durations kept, in days; the first is `rolling`.
    pub fn rolling(&self) -> &[u32] {
        &self.rolling
    }

    pub fn retention(&self, kind: CalendarKind) -> Option<u32> {
        self.calendar.iter().find(|(k, _)| *k == kind).map(|(_, r)| *r)
    }

    /// Resolves a window id against this specification.
    pub fn resolve(&self, id: &str) -> Result<WindowId, UnknownWindow> {
        let parsed = WindowId::parse(id).ok_or(UnknownWindow::Malformed)?;
        let kept = match parsed {
            WindowId::Relative { kind, .. } | WindowId::Period(CalendarPeriod { kind, .. }) => {
                self.retention(kind).is_some()
            }
            WindowId::Rolling(None) => !self.rolling.is_empty(),
            WindowId::Rolling(Some(days)) => self.rolling.contains(&days),
        };
        if kept { Ok(parsed) } else { Err(UnknownWindow::NotConfigured(self.describe())) }
    }

    /// The kinds and durations kept, as an error message lists them.
    fn describe(&self) -> String {
        let kinds = self.calendar.iter().map(|(k, _)| k.as_str().to_string());
        let rolling = self.rolling.iter().map(|d| format!("rolling {d}d"));
        kinds.chain(rolling).collect::<Vec<_>>().join(", ")
    }
}

/// `"90d"` as 90; 1 to [`MAX_ROLLING_DAYS`].
fn parse_days(s: &str) -> Option<u32> {
    let n = s.strip_suffix('d')?;
    let valid = !n.is_empty() && n.len() <= 3 && n.bytes().all(|b| b.is_ascii_digit()) && !n.starts_with('0');
    valid.then(|| n.parse().ok()).flatten().filter(|d| (1..=MAX_ROLLING_DAYS).contains(d))
}

/// A window as users name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WindowId {
    /// The period of `kind` holding the watermark (`back` 0) or the one
    /// before it (`back` 1).
    Relative {
        kind: CalendarKind,
        back: u8,
    },
    Period(CalendarPeriod),
    /// `rolling` (`None`: the first configured) or `rolling-Nd`.
    Rolling(Option<u32>),
}

/// Why a window id names no window of a specification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnknownWindow {
    #[error(
        "window must be current, previous, rolling, rolling-Nd, current-month, a period such as 2025-Q3, 2025-09, 2025-W38 or 2025"
    )]
    Malformed,
    #[error("window of a kind not configured; configured: {0}")]
    NotConfigured(String),
}

const RELATIVE: [(&str, CalendarKind, u8); 8] = [
    ("current", CalendarKind::Quarter, 0),
    ("previous", CalendarKind::Quarter, 1),
    ("current-month", CalendarKind::Month, 0),
    ("previous-month", CalendarKind::Month, 1),
    ("current-week", CalendarKind::Week, 0),
    ("previous-week", CalendarKind::Week, 1),
    ("current-year", CalendarKind::Year, 0),
    ("previous-year", CalendarKind::Year, 1),
];

impl WindowId {
    pub fn parse(s: &str) -> Option<WindowId> {
        if let Some((_, kind, back)) = RELATIVE.iter().find(|(name, _, _)| *name == s) {
            return Some(WindowId::Relative { kind: *kind, back: *back });
        }
        match s.strip_prefix("rolling") {
            Some("") => Some(WindowId::Rolling(None)),
            Some(rest) => parse_days(rest.strip_prefix('-')?).map(|d| WindowId::Rolling(Some(d))),
            None => s.parse().ok().map(WindowId::Period),
        }
    }
}

impl fmt::Display for WindowId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WindowId::Relative { kind, back } => {
                let name = RELATIVE.iter().find(|(_, k, b)| k == kind && b == back).map_or("", |(n, _, _)| n);
                f.write_str(name)
            }
            WindowId::Period(p) => p.fmt(f),
            WindowId::Rolling(None) => f.write_str("rolling"),
            WindowId::Rolling(Some(d)) => write!(f, "rolling-{d}d"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_keeps_quarters_months_and_two_rolling_windows() {
        let w = Windows::default();
        assert_eq!(w.calendar(), &[(CalendarKind::Quarter, 4), (CalendarKind::Month, 12)]);
        assert_eq!(w.rolling(), &[90, 7]);
        assert_eq!(w.resolve("2025-09").map(|id| id.to_string()), Ok("2025-09".into()));
        assert_eq!(w.resolve("rolling-7d"), Ok(WindowId::Rolling(Some(7))));
        let e = w.resolve("2025-W38").unwrap_err();
        assert_eq!(
            e.to_string(),
            "window of a kind not configured; configured: quarter, month, rolling 90d, rolling 7d"
        );
        assert_eq!(w.resolve("rolling-28d").unwrap_err(), e);
        assert_eq!(w.resolve("last-week"), Err(UnknownWindow::Malformed));
    }

    #[test]
    fn specifications_are_checked() {
        let all = [("quarter", None), ("month", Some(13)), ("week", None), ("year", Some(2))];
        let w = Windows::new(&all, &["90d", "28d", "7d"]).unwrap();
        assert_eq!(w.retention(CalendarKind::Week), Some(8));
        assert_eq!(w.retention(CalendarKind::Month), Some(13));
        for id in ["current", "previous-year", "current-week", "2025-W38", "2025", "rolling", "rolling-28d"] {
            assert_eq!(w.resolve(id).map(|i| i.to_string()), Ok(id.to_string()));
        }
        let bad = |c: &[(&str, Option<u32>)], r: &[&str]| Windows::new(c, r).unwrap_err();
        assert_eq!(bad(&[("fortnight", None)], &[]), BadWindows::Kind("fortnight".into()));
        assert_eq!(bad(&[("week", None), ("week", None)], &[]), BadWindows::RepeatedKind("week"));
        assert_eq!(bad(&[("year", Some(61))], &[]), BadWindows::Retention("year"));
        for r in ["0d", "367d", "7", "07d", "d", "7 d", "1000d", "-7d"] {
            assert_eq!(bad(&[], &[r]), BadWindows::Rolling(r.into()), "{r}");
        }
        assert_eq!(bad(&[], &["7d", "7d"]), BadWindows::RepeatedRolling(7));
        assert_eq!(bad(&[], &["1d", "2d", "3d", "4d", "5d", "6d", "7d", "8d", "9d"]), BadWindows::TooManyRolling);
        assert_eq!(bad(&[], &[]), BadWindows::Empty);
        let rolling_only = Windows::new(&[], &["30d"]).unwrap();
        assert!(matches!(rolling_only.resolve("current"), Err(UnknownWindow::NotConfigured(_))));
        assert_eq!(rolling_only.resolve("rolling"), Ok(WindowId::Rolling(None)));
    }
}
