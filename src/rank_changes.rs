//! Rank-change detection: compares the top N of each labelled window
//! (`current`, `previous`, `rolling`) in successive published views,
//! counts and logs every change and publishes it as an event when a topic
//! is configured (docs/metrics.md#rank-change-events).
//!
//! Quiet while catching up: until the daemon is ready, each view only
//! becomes the new baseline, so a restart or a replay never floods alerts.
//! When the current quarter rolls over, `current` and `previous` compare
//! different quarters; their baselines are reset without reporting.

use std::sync::Arc;

use serde::Serialize;

use engagement_core::ranking::{Diff, Filter, Metric, Ranked, diff};
use engagement_core::view::{Period, View};
use engagement_core::window::{Window, format_rfc3339};

use crate::metrics::Metrics;
use crate::published::ViewRx;
use crate::publisher::Publisher;
use crate::telemetry::events::{BaselineReset, InternalEvent, LeaderChanged, RankChanged};

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
        .ranking(t, Metric::Interactions, &Filter::All, 0, n)
        .into_iter()
        .map(|(rank, row)| {
            let p = view.page(row.page);
            Ranked { platform: p.platform.into(), page_id: p.id.into(), rank, interactions: row.totals.interactions() }
        })
        .collect();
    (Some(t.period), list)
}

/// Runs until the view channel closes. Changes are reported only between
/// two views that were both built while the daemon was ready.
pub async fn run(mut views: ViewRx, n: usize, metrics: Arc<Metrics>, publisher: Arc<Publisher>) {
    let mut baselines: [Baseline; 3] = Default::default();
    while views.changed().await.is_ok() {
        let published = views.borrow_and_update().clone();
        let (view, ready) = (&published.view, published.ready);
        for (w, baseline) in Window::LABELED.into_iter().zip(baselines.iter_mut()) {
            let (period, list) = top_n(view, w, n);
            let comparable = ready && baseline.ready && baseline.period.is_some();
            if comparable && baseline.period == period {
                report(w, view, &diff(&baseline.top, &list), &metrics, &publisher);
            } else if comparable && period.is_some() {
                BaselineReset(w).emit(&metrics);
            }
            *baseline = Baseline { period, ready, top: list };
        }
    }
}

fn report(window: Window, view: &View, d: &Diff, metrics: &Metrics, publisher: &Publisher) {
    if d.new_leader {
        if let Some(leader) = d.changes.iter().find(|c| c.new_rank == Some(1)) {
            LeaderChanged { window, leader }.emit(metrics);
        }
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
}
