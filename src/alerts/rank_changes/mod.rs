//! Rank changes (docs/metrics.md#rank-changes), one system: every
//! published view goes to the [`detect`]or, which compares each watched
//! ranking (config/watches.rs) with its last ready picture. Each change it
//! finds is then, here and only here:
//!
//! - counted: per window (`engagement_rank_changes_total`, and
//!   `engagement_leader_changes_total` for a new #1) and per watched
//!   ranking and kind (`engagement_watch_changes_total`);
//! - held as an alertable `engagement_watch_change` series and listed by
//!   `GET /v1/rank-changes` (src/serve/metrics/watches.rs);
//! - logged at DEBUG (changes scale with events; a summary per window is
//!   logged at INFO at most once a minute, [`SUMMARY_EVERY`], when anything
//!   changed);
//! - published as one [`RankEvent`] when a topic is configured.
//!
//! The event, the API entry and the held series' labels share one schema
//! ([`event`]).

pub mod detect;
mod event;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use engagement_core::window::WindowId;

use crate::alerts::publisher::Publisher;
use crate::config::Watch;
use crate::serve::metrics::Metrics;
use crate::serve::published::ViewRx;
use crate::telemetry::events::{BaselineReset, InternalEvent, RankChanged, RankChangesSummary, RankEventsTakenOver};

pub use detect::{Change, Detector, Kind};
pub use event::{Fact, RankEvent, id};

/// On taking the publishing over, the changes this instance saw this long
/// before are published unless the topic holds them: longer than a
/// session timeout and a restore, so that what the fleet saw while the
/// last publisher was gone reaches the topic.
pub const HANDOVER_LOOKBACK: Duration = Duration::from_secs(300);
/// How long reading the topic back may take.
const HANDOVER_READ: Duration = Duration::from_secs(30);

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

    fn count(&mut self, change: &Change) {
        if let Some(w) = self.windows.iter_mut().find(|(w, _, _)| *w == change.key.window) {
            w.1 += 1;
            w.2 += u64::from(change.kind == Kind::Leader);
        }
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

/// Publishes `change` as its event when `wanted` says so of it; says
/// whether it did.
fn publish(publisher: &Publisher, change: &Change, wanted: impl Fn(&[u8]) -> bool) -> bool {
    let event = RankEvent::of(change);
    match serde_json::to_vec(&event) {
        Ok(json) if wanted(&json) => {
            publisher.rank_event(&event.key(), &json);
            true
        }
        Ok(_) => false,
        Err(e) => {
            tracing::error!(error = %e, "a rank event did not serialize");
            false
        }
    }
}

/// This instance just became the fleet's publisher: the changes it saw in
/// the last [`HANDOVER_LOOKBACK`] that the topic does not hold (the last
/// publisher was gone, or had not sent them) are published now, oldest
/// first, each with its own id. One the topic holds is matched by its
/// [`Fact`], not its id, so it is not repeated under another one.
async fn take_over(metrics: &Arc<Metrics>, publisher: &Arc<Publisher>) {
    let since = SystemTime::now() - HANDOVER_LOOKBACK;
    let mut seen: Vec<_> = metrics.watches.recent().into_iter().filter(|r| r.at >= since).collect();
    if seen.is_empty() {
        RankEventsTakenOver { seen: 0, published: 0, error: None }.emit(metrics);
        return;
    }
    // The topic is read from a little earlier than the oldest change: the
    // last publisher saw it in its own view, maybe some intervals before.
    let from = seen.iter().map(|r| r.at).min().unwrap_or(since) - HANDOVER_LOOKBACK;
    let reader = publisher.clone();
    let held = tokio::task::spawn_blocking(move || reader.rank_events_since(from, HANDOVER_READ)).await;
    let held: HashSet<Fact> = match held {
        Ok(Ok(events)) => events.iter().filter_map(|json| Fact::of(json)).collect(),
        Ok(Err(e)) => return RankEventsTakenOver { seen: seen.len(), published: 0, error: Some(e) }.emit(metrics),
        Err(e) => return RankEventsTakenOver { seen: seen.len(), published: 0, error: Some(e.into()) }.emit(metrics),
    };
    seen.reverse();
    let published = seen
        .iter()
        .filter(|r| publish(publisher, &r.change, |json| Fact::of(json).is_some_and(|f| !held.contains(&f))))
        .count();
    RankEventsTakenOver { seen: seen.len(), published, error: None }.emit(metrics);
}

/// What the ranking loop needs besides the views.
pub struct Parts {
    pub watches: Arc<[Watch]>,
    pub metrics: Arc<Metrics>,
    pub publisher: Arc<Publisher>,
}

/// Runs until the view channel closes.
pub async fn run(mut views: ViewRx, parts: Parts) {
    let Parts { watches, metrics, publisher } = parts;
    let mut detector = Detector::new(watches);
    let mut tally = Tally::new(Instant::now(), &[]);
    let mut publishing = publisher.publishing();
    while views.changed().await.is_ok() {
        if !std::mem::replace(&mut publishing, publisher.publishing()) && publishing {
            take_over(&metrics, &publisher).await;
        }
        let published = views.borrow_and_update().clone();
        let windows = published.view.windows.relative();
        if tally.windows.len() != windows.len() {
            tally = Tally::new(Instant::now(), &windows);
        }
        let seen = detector.observe(&published.view, published.ready, Instant::now());
        metrics.watches.show(detector.pictures());
        for window in seen.rolled_over {
            BaselineReset(window).emit(&metrics);
        }
        for change in seen.changes {
            tally.count(&change);
            publish(&publisher, &change, |_| true);
            RankChanged(change).emit(&metrics);
        }
        if let Some(summary) = tally.due(Instant::now()) {
            summary.emit(&metrics);
        }
    }
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
