//! Rank-change detection: compares the top N of each labelled window
//! (`current`, `previous`, `rolling`) in successive published views,
//! counts and logs every change and publishes it as an event when a topic
//! is configured (docs/metrics.md#rank-change-events); then runs the
//! watches ([`crate::watches`]) over the same view and does the same with
//! their changes (docs/metrics.md#watches).
//!
//! Each change is logged at DEBUG only (changes scale with events); a
//! summary per window is logged at INFO at most once a minute
//! ([`SUMMARY_EVERY`]), when anything changed.
//!
//! Quiet while catching up: until the daemon is ready, each view only
//! becomes the new baseline, so a restart or a replay never floods alerts.
//! When the current quarter rolls over, `current` and `previous` compare
//! different quarters; their baselines are reset without reporting.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use engagement_core::ranking::{Diff, Filter, Metric, Ranked, diff};
use engagement_core::view::{Period, View};
use engagement_core::window::{CalendarKind, CalendarPeriod, WindowId, format_rfc3339};

use crate::config::Watch;
use crate::metrics::Metrics;
use crate::published::ViewRx;
use crate::publisher::Publisher;
use crate::telemetry::events::{
    BaselineReset, InternalEvent, LeaderChanged, RankChanged, RankChangesSummary, WatchChanged,
};
use crate::watches::{Detector, WatchChange};

/// The event published for each change.
#[derive(Debug, Serialize)]
pub struct RankEvent<'a> {
    pub window: WindowId,
    /// The quarter a quarter window stood for, as SPEC §5 has it; `None`
    /// for other windows.
    pub quarter: Option<String>,
    /// The calendar period a relative window stood for, of any kind
    /// (`2025-Q3`, `2025-09`, ...); `None` for a rolling window.
    pub period: Option<String>,
    pub platform: &'a str,
    pub page_id: &'a str,
    pub old_rank: Option<u32>,
    pub new_rank: Option<u32>,
    pub interactions: u64,
    pub watermark: Option<String>,
}

/// The last top N of one window, which table it came from, and whether the
/// daemon was ready then.
#[derive(Default)]
struct Baseline {
    period: Option<Period>,
    ready: bool,
    top: Vec<Ranked>,
}

/// The top N of `window` in `view`, by interactions, across all platforms.
pub fn top_n(view: &View, window: WindowId, n: usize) -> (Option<Period>, Vec<Ranked>) {
    let Some(t) = view.table(window) else {
        return (None, Vec::new());
    };
    let list = view
        .ranking(t, Metric::Interactions, &Filter::ALL, 0, n)
        .into_iter()
        .map(|(rank, row)| {
            let p = view.page(row.page);
            Ranked { platform: p.platform.into(), page_id: p.id.into(), rank, interactions: row.totals.interactions() }
        })
        .collect();
    (Some(t.period), list)
}

/// How often the changes are summarised at INFO.
pub const SUMMARY_EVERY: Duration = Duration::from_secs(60);

/// Changes counted since the last summary, per window that moves with the
/// watermark: (window, rank changes, leader changes).
struct Tally {
    since: Instant,
    windows: Vec<(WindowId, u64, u64)>,
}

impl Tally {
    fn new(now: Instant, windows: &[WindowId]) -> Tally {
        Tally { since: now, windows: windows.iter().map(|w| (*w, 0, 0)).collect() }
    }

    /// The summary of the period, when one is due at `now` and anything
    /// changed; the tally starts over whenever a period ends.
    fn due(&mut self, now: Instant) -> Option<RankChangesSummary> {
        let period = now.saturating_duration_since(self.since);
        if period < SUMMARY_EVERY {
            return None;
        }
        let windows: Vec<WindowId> = self.windows.iter().map(|(w, _, _)| *w).collect();
        let ended = std::mem::replace(self, Tally::new(now, &windows));
        let quiet = ended.windows.iter().all(|(_, r, l)| *r == 0 && *l == 0);
        (!quiet).then_some(RankChangesSummary { period, windows: ended.windows })
    }
}

/// What the ranking loop needs besides the views.
pub struct Parts {
    /// `ranking.top_n`: the legacy top N of each window.
    pub top_n: usize,
    pub watches: Arc<[Watch]>,
    pub metrics: Arc<Metrics>,
    pub publisher: Arc<Publisher>,
}

/// Runs until the view channel closes. Changes are reported only between
/// two views that were both built while the daemon was ready.
pub async fn run(mut views: ViewRx, parts: Parts) {
    let Parts { top_n: n, watches, metrics, publisher } = parts;
    let mut baselines: Vec<Baseline> = Vec::new();
    let mut detector = Detector::new(watches);
    let mut tally = Tally::new(Instant::now(), &[]);
    while views.changed().await.is_ok() {
        let published = views.borrow_and_update().clone();
        let (view, ready) = (&published.view, published.ready);
        let windows = view.windows.relative();
        if tally.windows.len() != windows.len() {
            baselines.resize_with(windows.len(), Baseline::default);
            tally = Tally::new(Instant::now(), &windows);
        }
        for (i, (w, baseline)) in windows.into_iter().zip(baselines.iter_mut()).enumerate() {
            let (period, list) = top_n(view, w, n);
            let comparable = ready && baseline.ready && baseline.period.is_some();
            if comparable && baseline.period == period {
                let d = diff(&baseline.top, &list);
                tally.windows[i].1 += d.changes.len() as u64;
                tally.windows[i].2 += u64::from(report(w, view, &d, &metrics, &publisher));
            } else if comparable && period.is_some() {
                BaselineReset(w).emit(&metrics);
            }
            *baseline = Baseline { period, ready, top: list };
        }
        watch(&mut detector, view, ready, &metrics, &publisher);
        if let Some(summary) = tally.due(Instant::now()) {
            summary.emit(&metrics);
        }
    }
}

/// Runs the watches over `view`: exports their pictures, then counts,
/// holds and publishes each change.
fn watch(detector: &mut Detector, view: &View, ready: bool, metrics: &Metrics, publisher: &Publisher) {
    let changes = detector.observe(view, ready);
    metrics.watches.show(detector.pictures());
    let watermark = view.watermark.map(format_rfc3339);
    for change in changes {
        let json = serde_json::to_vec(&WatchEvent::of(&change, watermark.clone())).expect("watch events serialize");
        publisher.rank_event(&format!("{}/{}", change.page.platform, change.page.page_id), &json);
        WatchChanged { change, watermark: watermark.clone() }.emit(metrics);
    }
}

/// The event published for each change of a watched ranking: the fields of
/// [`RankEvent`], plus which watch and ranking, and what happened.
#[derive(Debug, Serialize)]
pub struct WatchEvent<'a> {
    pub watch: &'a str,
    /// The ranking's groups, comma-separated; empty when it ranks every page.
    pub group: &'a str,
    pub kind: &'static str,
    pub window: WindowId,
    /// The quarter a quarter window stood for; `None` for other windows.
    pub quarter: Option<String>,
    /// The calendar period a relative window stood for; `None` for rolling.
    pub period: Option<String>,
    pub metric: &'static str,
    /// The ranking's platform; `None` when it ranks every platform together.
    pub ranking_platform: Option<&'a str>,
    pub top_n: usize,
    pub platform: &'a str,
    pub page_id: &'a str,
    pub page_name: Option<&'a str>,
    pub old_rank: Option<u32>,
    pub new_rank: Option<u32>,
    pub interactions: u64,
    /// The ranking metric's value (`None` where undefined).
    pub value: Option<f64>,
    pub watermark: Option<String>,
}

impl<'a> WatchEvent<'a> {
    pub fn of(c: &'a WatchChange, watermark: Option<String>) -> WatchEvent<'a> {
        WatchEvent {
            watch: &c.watch,
            group: &c.group,
            kind: c.kind.as_str(),
            window: c.key.window,
            quarter: quarter_of(c.period),
            period: c.period.map(|p| p.to_string()),
            metric: c.metric.as_str(),
            ranking_platform: c.key.scope.as_deref(),
            top_n: c.top_n,
            platform: &c.page.platform,
            page_id: &c.page.page_id,
            page_name: c.page.page_name.as_deref(),
            old_rank: c.old_rank,
            new_rank: c.new_rank,
            interactions: c.page.interactions,
            value: c.page.value,
            watermark,
        }
    }
}

/// Counts, logs and publishes the changes of `d`; says whether a new
/// leader was reported.
fn report(window: WindowId, view: &View, d: &Diff, metrics: &Metrics, publisher: &Publisher) -> bool {
    let leader = d.changes.iter().find(|c| c.new_rank == Some(1)).filter(|_| d.new_leader);
    if let Some(leader) = leader {
        LeaderChanged { window, leader }.emit(metrics);
    }
    let period = match view.table(window).map(|t| t.period) {
        Some(Period::Calendar(p)) => Some(p),
        _ => None,
    };
    let (quarter, period) = (quarter_of(period), period.map(|p| p.to_string()));
    let watermark = view.watermark.map(format_rfc3339);
    for change in &d.changes {
        RankChanged { window, change }.emit(metrics);
        let event = RankEvent {
            window,
            quarter: quarter.clone(),
            period: period.clone(),
            platform: &change.platform,
            page_id: &change.page_id,
            old_rank: change.old_rank,
            new_rank: change.new_rank,
            interactions: change.interactions,
            watermark: watermark.clone(),
        };
        let json = serde_json::to_vec(&event).expect("rank events serialize");
        publisher.rank_event(&format!("{}/{}", change.platform, change.page_id), &json);
    }
    leader.is_some()
}

/// The id of `period` when it is a quarter (the event's `quarter` field).
fn quarter_of(period: Option<CalendarPeriod>) -> Option<String> {
    period.filter(|p| p.kind == CalendarKind::Quarter).map(|p| p.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_are_summarised_once_a_minute_when_there_are_any() {
        let t0 = Instant::now();
        let windows = engagement_core::window::Windows::default().relative();
        let mut tally = Tally::new(t0, &windows[..3]);
        tally.windows[0].1 = 3;
        tally.windows[2].1 = 5;
        tally.windows[0].2 = 1;
        assert!(tally.due(t0 + Duration::from_secs(59)).is_none(), "not before a minute");
        let summary = tally.due(t0 + SUMMARY_EVERY).expect("a minute with changes");
        let counts: Vec<(u64, u64)> = summary.windows.iter().map(|(_, r, l)| (*r, *l)).collect();
        assert_eq!(counts, [(3, 1), (0, 0), (5, 0)]);
        assert!(tally.windows.iter().all(|(_, r, l)| *r == 0 && *l == 0), "the tally starts over");
        assert!(tally.due(t0 + 2 * SUMMARY_EVERY).is_none(), "a quiet minute says nothing");
    }
}
