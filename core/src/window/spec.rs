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
use super::{DAY_MS, Millis};

/// Longest rolling window, in days.
pub const MAX_ROLLING_DAYS: u32 = 366;
/// Most rolling windows one deployment keeps.
pub const MAX_ROLLING: usize = 8;
/// Most past periods a calendar kind retains.
pub const MAX_RETENTION: u32 = 60;
/// How far back, in days, the windows together may reach: a stored post
/// keeps `observed_at - published_at` in 2^36 ms (795 days).
pub const MAX_REACH_DAYS: u32 = 794;

/// The windows specification: a small value (it is copied into the
/// engine's limits, views and page records).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Windows {
    /// Per kind, in [`CalendarKind::ALL`] order: the past periods kept
    /// besides the current one, or `None` for a kind not kept.
    calendar: [Option<u8>; 4],
    /// Distinct durations in days, in configuration order; the first is
    /// `rolling`. Only the first `rolling_len` are used.
    rolling: [u16; MAX_ROLLING],
    rolling_len: u8,
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
    #[error(
        "the windows reach up to {0} days back (a kind keeping k periods reaches k times its longest period, a \
         rolling window of N days with its predecessor 2N days, and the watermark's own day counts); at most \
         {MAX_REACH_DAYS}: keep fewer periods or shorter rolling windows"
    )]
    Reach(u32),
}

impl Default for Windows {
    /// Quarters (4 past), months (12 past), rolling 90 and 7 days.
    fn default() -> Windows {
        let kinds = [CalendarKind::Quarter, CalendarKind::Month].map(|k| (k.as_str(), None));
        Windows::new(&kinds, &["90d", "7d"]).expect("the default windows are valid")
    }
}

impl Windows {
    /// A specification from its configured parts: kind names with an
    /// optional retention each (the kind's default otherwise), and rolling
    /// durations such as `"90d"`.
    pub fn new(calendar: &[(&str, Option<u32>)], rolling: &[&str]) -> Result<Windows, BadWindows> {
        let mut w = Windows { calendar: [None; 4], rolling: [0; MAX_ROLLING], rolling_len: 0 };
        for (name, retention) in calendar {
            let kind = CalendarKind::parse(name).ok_or_else(|| BadWindows::Kind(name.to_string()))?;
            let at = kind as usize;
            if w.calendar[at].is_some() {
                return Err(BadWindows::RepeatedKind(kind.as_str()));
            }
            let retention = retention.unwrap_or(kind.default_retention());
            if retention > MAX_RETENTION {
                return Err(BadWindows::Retention(kind.as_str()));
            }
            w.calendar[at] = Some(retention as u8);
        }
        for r in rolling {
            let d = parse_days(r).ok_or_else(|| BadWindows::Rolling(r.to_string()))?;
            if w.rolling().contains(&(d as u16)) {
                return Err(BadWindows::RepeatedRolling(d));
            }
            let at = usize::from(w.rolling_len);
            *w.rolling.get_mut(at).ok_or(BadWindows::TooManyRolling)? = d as u16;
            w.rolling_len += 1;
        }
        if w.calendar.iter().all(Option::is_none) && w.rolling_len == 0 {
            return Err(BadWindows::Empty);
        }
        match w.reach_days() {
            reach if reach > MAX_REACH_DAYS => Err(BadWindows::Reach(reach)),
            _ => Ok(w),
        }
    }

    /// The calendar kinds kept, with their retention, in
    /// [`CalendarKind::ALL`] order.
    pub fn calendar(&self) -> impl Iterator<Item = (CalendarKind, u32)> + '_ {
        CalendarKind::ALL.into_iter().zip(self.calendar).filter_map(|(k, r)| Some((k, u32::from(r?))))
    }

    /// The rolling durations kept, in days; the first is `rolling`.
    pub fn rolling(&self) -> &[u16] {
        &self.rolling[..usize::from(self.rolling_len)]
    }

    /// Past periods of `kind` kept besides the current one; `None` when the
    /// kind is not kept.
    pub fn retention(&self, kind: CalendarKind) -> Option<u32> {
        self.calendar[kind as usize].map(u32::from)
    }

    /// The most days before the watermark's day that the oldest instant
    /// any window covers can lie, over every date: the current period and
    /// its retained predecessors at their longest, a rolling window and its
    /// predecessor (2N days) and the watermark's own day.
    pub fn reach_days(&self) -> u32 {
        let calendar = self.calendar().map(|(k, r)| k.longest_days() * (r + 1));
        let rolling = self.rolling().iter().map(|d| 2 * u32::from(*d) + 1);
        calendar.chain(rolling).max().unwrap_or(0)
    }

    /// The start of the day holding the oldest instant any window covers at
    /// watermark `wm`: posts published before it count in no window.
    pub fn cutoff(&self, wm: Millis) -> Millis {
        let calendar = self.calendar().map(|(k, r)| k.containing(wm).minus(r).start());
        let rolling = self.rolling().iter().map(|d| wm - 2 * Millis::from(*d) * DAY_MS);
        let oldest = calendar.chain(rolling).min().unwrap_or(wm);
        oldest.div_euclid(DAY_MS) * DAY_MS
    }

    /// How many consecutive quarters the instants from [`cutoff`](Self::cutoff)
    /// to the watermark can span: the engine keeps quarters internally over
    /// that span, whatever is configured (rolling windows are summed from them).
    pub fn quarter_span(&self) -> u32 {
        // An interval of L days spans at most L / 90 + 2 quarters.
        (self.reach_days() + 1) / 90 + 2
    }

    /// Resolves a window id against this specification: the id of a window
    /// it keeps, as [`relative`](Self::relative) names it (`rolling-90d`
    /// is `rolling` when 90 days is the first rolling window).
    pub fn resolve(&self, id: &str) -> Result<WindowId, UnknownWindow> {
        self.keep(WindowId::parse(id).ok_or(UnknownWindow::Malformed)?)
    }

    /// [`resolve`](Self::resolve) for an id already parsed.
    pub fn keep(&self, parsed: WindowId) -> Result<WindowId, UnknownWindow> {
        let first = self.rolling().first().map(|d| u32::from(*d));
        let kept = match parsed {
            WindowId::Relative { kind, back } => self.retention(kind).is_some_and(|r| r >= u32::from(back)),
            WindowId::Period(CalendarPeriod { kind, .. }) => self.retention(kind).is_some(),
            WindowId::Rolling(None) => first.is_some(),
            WindowId::Rolling(Some(days)) => self.rolling().contains(&(days as u16)),
        };
        match parsed {
            _ if !kept => Err(UnknownWindow::NotConfigured(self.describe())),
            WindowId::Rolling(Some(days)) if Some(days) == first => Ok(WindowId::Rolling(None)),
            id => Ok(id),
        }
    }

    /// The ids of the windows that move with the watermark, as `/metrics`
    /// and rank-change events label them: per kind its current and previous
    /// period, then every rolling window.
    pub fn relative(&self) -> Vec<WindowId> {
        let calendar = self
            .calendar()
            .flat_map(|(kind, r)| (0..=r.min(1) as u8).map(move |back| WindowId::Relative { kind, back }));
        let first = self.rolling().first().copied();
        let rolling =
            self.rolling().iter().map(move |d| WindowId::Rolling((Some(*d) != first).then_some(u32::from(*d))));
        calendar.chain(rolling).collect()
    }

    /// [`describe`](Self::describe) with the periods each kind keeps.
    pub fn describe_fully(&self) -> String {
        let kinds = self.calendar().map(|(k, r)| format!("{} ({} kept)", k.as_str(), r + 1));
        let rolling = self.rolling().iter().map(|d| format!("rolling {d}d"));
        kinds.chain(rolling).collect::<Vec<_>>().join(", ")
    }

    /// The kinds and durations kept, as an error message lists them.
    pub fn describe(&self) -> String {
        let kinds = self.calendar().map(|(k, _)| k.as_str().to_string());
        let rolling = self.rolling().iter().map(|d| format!("rolling {d}d"));
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

impl serde::Serialize for WindowId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_keeps_quarters_months_and_two_rolling_windows() {
        let w = Windows::default();
        assert_eq!(w.calendar().collect::<Vec<_>>(), [(CalendarKind::Quarter, 4), (CalendarKind::Month, 12)]);
        assert_eq!(w.rolling(), &[90, 7]);
        let labels: Vec<String> = w.relative().iter().map(|id| id.to_string()).collect();
        assert_eq!(labels, ["current", "previous", "current-month", "previous-month", "rolling", "rolling-7d"]);
        assert_eq!(w.resolve("2025-09").map(|id| id.to_string()), Ok("2025-09".into()));
        assert_eq!(w.resolve("rolling-7d"), Ok(WindowId::Rolling(Some(7))));
        assert_eq!(w.resolve("rolling-90d"), Ok(WindowId::Rolling(None)), "the first is `rolling`");
        let one = Windows::new(&[("quarter", Some(0))], &["30d"]).unwrap();
        assert!(matches!(one.resolve("previous"), Err(UnknownWindow::NotConfigured(_))), "one quarter kept");
        assert_eq!(one.resolve("current"), Ok(WindowId::Relative { kind: CalendarKind::Quarter, back: 0 }));
        assert_eq!(one.describe_fully(), "quarter (1 kept), rolling 30d");
        let e = w.resolve("2025-W38").unwrap_err();
        assert_eq!(
            e.to_string(),
            "window of a kind not configured; configured: quarter, month, rolling 90d, rolling 7d"
        );
        assert_eq!(w.resolve("rolling-28d").unwrap_err(), e);
        assert_eq!(w.resolve("last-week"), Err(UnknownWindow::Malformed));
    }

    #[test]
    fn window_ids_round_trip() {
        for id in
            ["current", "previous", "rolling", "rolling-7d", "2025-Q3", "2025-09", "2025-W38", "2025", "current-year"]
        {
            assert_eq!(WindowId::parse(id).map(|w| w.to_string()).as_deref(), Some(id));
        }
        for bad in ["", "Current", "rolling_previous", "2025-Q5", "quarter", "rolling-0d", "rolling-7", "rolling7d"] {
            assert_eq!(WindowId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn specifications_are_checked() {
        let all = [("quarter", None), ("month", Some(13)), ("week", None), ("year", Some(1))];
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
        assert_eq!(bad(&[("year", Some(2))], &[]), BadWindows::Reach(1098));
        assert!(Windows::new(&[("year", Some(1))], &["366d"]).is_ok());
        let rolling_only = Windows::new(&[], &["30d"]).unwrap();
        assert!(matches!(rolling_only.resolve("current"), Err(UnknownWindow::NotConfigured(_))));
        assert_eq!(rolling_only.resolve("rolling"), Ok(WindowId::Rolling(None)));
    }

    proptest::proptest! {
        /// Any text: a window id parses to one that prints back the same
        /// (ids are canonical), or is refused; never a panic.
        #[test]
        fn window_ids_are_canonical(s in "\\PC{0,12}|[a-z0-9-]{0,16}|20[0-9]{2}-(Q[0-9]|W[0-9]{2}|[0-9]{2})") {
            if let Some(id) = WindowId::parse(&s) {
                proptest::prop_assert_eq!(id.to_string(), s.clone());
                proptest::prop_assert_eq!(WindowId::parse(&id.to_string()), Some(id));
            }
            let _ = Windows::default().resolve(&s);
        }

        /// The cutoff at any watermark lies within the reach, and the
        /// quarters from it to the watermark fit the quarter span.
        #[test]
        fn the_cutoff_stays_within_the_reach(
            retention in proptest::collection::vec(proptest::option::of(0u32..14), 4),
            rolling in proptest::collection::btree_set(1u32..367, 0..4),
            wm in 0i64..400_000_000_000_000,
        ) {
            let names: Vec<(&str, Option<u32>)> = CalendarKind::ALL
                .iter()
                .zip(&retention)
                .filter_map(|(k, r)| Some((k.as_str(), Some((*r)?))))
                .collect();
            let days: Vec<String> = rolling.iter().map(|d| format!("{d}d")).collect();
            let days: Vec<&str> = days.iter().map(String::as_str).collect();
            let Ok(w) = Windows::new(&names, &days) else { return Ok(()) };
            let cutoff = w.cutoff(wm);
            let day = wm.div_euclid(DAY_MS) * DAY_MS;
            proptest::prop_assert!(cutoff >= day - i64::from(w.reach_days()) * DAY_MS);
            proptest::prop_assert!(wm - cutoff < (1 << 36));
            let span = CalendarKind::Quarter.containing(wm).index - CalendarKind::Quarter.containing(cutoff).index + 1;
            proptest::prop_assert!(span as u32 <= w.quarter_span());
            for (k, r) in w.calendar() {
                proptest::prop_assert!(k.containing(wm).minus(r).start() >= cutoff);
            }
        }
    }
}
