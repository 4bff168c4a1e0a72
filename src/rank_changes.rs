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
use engagement_core::window::{Window, format_rfc3339};

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
    pub window: Window,
    pub quarter: Option<String>,
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
pub fn top_n(view: &View, window: Window, n: usize) -> (Option<Period>, Vec<Ranked>) {
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

/// Changes counted since the last summary, per labelled window.
struct Tally {
    since: Instant,
    rank_changes: [u64; 3],
    leader_changes: [u64; 3],
}

impl Tally {
    fn new(now: Instant) -> Tally {
        Tally { since: now, rank_changes: [0; 3], leader_changes: [0; 3] }
    }

    /// The summary of the period, when one is due at `now` and anything
    /// changed; the tally starts over whenever a period ends.
    fn due(&mut self, now: Instant) -> Option<RankChangesSummary> {
        let period = now.saturating_duration_since(self.since);
        if period < SUMMARY_EVERY {
            return None;
        }
        let ended = std::mem::replace(self, Tally::new(now));
        let quiet = ended.rank_changes == [0; 3] && ended.leader_changes == [0; 3];
        (!quiet).then_some(RankChangesSummary {
            period,
            rank_changes: ended.rank_changes,
            leader_changes: ended.leader_changes,
        })
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
    let mut baselines: [Baseline; 3] = Default::default();
    let mut detector = Detector::new(watches);
    let mut tally = Tally::new(Instant::now());
    while views.changed().await.is_ok() {
        let published = views.borrow_and_update().clone();
        let (view, ready) = (&published.view, published.ready);
        for (i, (w, baseline)) in Window::LABELED.into_iter().zip(baselines.iter_mut()).enumerate() {
            let (period, list) = top_n(view, w, n);
            let comparable = ready && baseline.ready && baseline.period.is_some();
            if comparable && baseline.period == period {
                let d = diff(&baseline.top, &list);
                tally.rank_changes[i] += d.changes.len() as u64;
                tally.leader_changes[i] += u64::from(report(w, view, &d, &metrics, &publisher));
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
    pub window: Window,
    pub quarter: Option<&'a str>,
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
            quarter: c.quarter.as_deref(),
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
fn report(window: Window, view: &View, d: &Diff, metrics: &Metrics, publisher: &Publisher) -> bool {
    let leader = d.changes.iter().find(|c| c.new_rank == Some(1)).filter(|_| d.new_leader);
    if let Some(leader) = leader {
        LeaderChanged { window, leader }.emit(metrics);
    }
    let quarter = match view.table(window).map(|t| t.period) {
        Some(Period::Quarter(q)) => Some(q.to_string()),
        _ => None,
    };
    let watermark = view.watermark.map(format_rfc3339);
    for change in &d.changes {
        RankChanged { window, change }.emit(metrics);
        let event = RankEvent {
            window,
            quarter: quarter.clone(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_are_summarised_once_a_minute_when_there_are_any() {
        let t0 = Instant::now();
        let mut tally = Tally::new(t0);
        tally.rank_changes = [3, 0, 5];
        tally.leader_changes = [1, 0, 0];
        assert!(tally.due(t0 + Duration::from_secs(59)).is_none(), "not before a minute");
        let summary = tally.due(t0 + SUMMARY_EVERY).expect("a minute with changes");
        assert_eq!((summary.rank_changes, summary.leader_changes), ([3, 0, 5], [1, 0, 0]));
        assert_eq!(tally.rank_changes, [0; 3], "the tally starts over");
        assert!(tally.due(t0 + 2 * SUMMARY_EVERY).is_none(), "a quiet minute says nothing");
    }
}
