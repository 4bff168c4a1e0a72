//! The rank-change loop of SPEC §5: compares the top N of each watched
//! window in successive views, counts and logs every change and publishes
//! it as an event when a topic is configured.
//!
//! Quiet while catching up: until the daemon is ready, each view only
//! becomes the new baseline, so a restart or a replay never floods alerts.
//! When the current quarter rolls over, `current` and `previous` compare
//! different quarters; their baselines are reset without reporting.

use std::sync::Arc;

use serde::Serialize;
use tokio::sync::watch;

use crate::metrics::{Metrics, WINDOWS, window_table};
use crate::publisher::Publisher;
use engagement_core::ranking::{Metric, RankChange, Ranked, diff, top};
use engagement_core::view::{Period, View};
use engagement_core::window::format_rfc3339;

/// The event published for each change (SPEC §5).
#[derive(Debug, Serialize)]
pub struct RankEvent<'a> {
    pub window: &'a str,
    pub quarter: Option<String>,
    pub platform: &'a str,
    pub page_id: &'a str,
    pub old_rank: Option<u32>,
    pub new_rank: Option<u32>,
    pub interactions: u64,
    pub watermark: Option<String>,
}

/// The last top N of one window, which window instance it was, and whether
/// the daemon was ready then.
#[derive(Default)]
struct Baseline {
    window: Option<Period>,
    ready: bool,
    top: Vec<Ranked>,
}

/// The top N of `window` in `view`, by interactions, across all platforms.
pub fn top_n(view: &View, window: &str, n: usize) -> (Option<Period>, Vec<Ranked>) {
    let Some(t) = window_table(view, window) else {
        return (None, Vec::new());
    };
    let list = top(&t.rows, Metric::Interactions, 0, n)
        .into_iter()
        .map(|(rank, row)| {
            let p = &view.pages[row.page as usize];
            Ranked {
                platform: p.platform.clone(),
                page_id: p.id.clone(),
                rank,
                interactions: row.totals.interactions(),
            }
        })
        .collect();
    (Some(t.period), list)
}

/// Runs until the sender side of `views` is dropped. Each view comes with
/// whether the daemon was ready when it was built; changes are reported
/// only between two views that were both built ready.
pub async fn run(
    mut views: watch::Receiver<(Arc<View>, bool)>,
    n: usize,
    metrics: Arc<Metrics>,
    publisher: Arc<Publisher>,
) {
    let mut baselines: [Baseline; 3] = Default::default();
    while views.changed().await.is_ok() {
        let (view, ready) = views.borrow_and_update().clone();
        for (w, baseline) in WINDOWS.iter().zip(baselines.iter_mut()) {
            let (window, list) = top_n(&view, w, n);
            let comparable = ready && baseline.ready && baseline.window.is_some();
            if comparable && baseline.window == window {
                report(w, &view, &diff(&baseline.top, &list), &metrics, &publisher);
            } else if comparable && window.is_some() {
                tracing::info!(window = w, "window rolled over; rank baseline reset");
            }
            *baseline = Baseline { window, ready, top: list };
        }
    }
}

fn report(window: &str, view: &View, d: &engagement_core::ranking::Diff, metrics: &Metrics, publisher: &Publisher) {
    if d.changes.is_empty() {
        return;
    }
    metrics.rank_changes.with_label_values(&[window]).inc_by(d.changes.len() as u64);
    if d.new_leader {
        metrics.leader_changes.with_label_values(&[window]).inc();
        if let Some(c) = d.changes.iter().find(|c| c.new_rank == Some(1)) {
            tracing::info!(window, platform = %c.platform, page_id = %c.page_id, interactions = c.interactions, "new leader");
        }
    }
    let quarter = match window_table(view, window).map(|t| t.period) {
        Some(Period::Quarter(q)) => Some(q.to_string()),
        _ => None,
    };
    let watermark = view.watermark.map(format_rfc3339);
    for c in &d.changes {
        log_change(window, c);
        let event = RankEvent {
            window,
            quarter: quarter.clone(),
            platform: &c.platform,
            page_id: &c.page_id,
            old_rank: c.old_rank,
            new_rank: c.new_rank,
            interactions: c.interactions,
            watermark: watermark.clone(),
        };
        let json = serde_json::to_vec(&event).expect("rank events serialize");
        publisher.rank_event(&format!("{}/{}", c.platform, c.page_id), &json);
    }
}

fn log_change(window: &str, c: &RankChange) {
    let rank = |r: Option<u32>| r.map_or_else(|| "none".to_string(), |r| r.to_string());
    tracing::info!(
        window,
        platform = %c.platform,
        page_id = %c.page_id,
        old_rank = %rank(c.old_rank),
        new_rank = %rank(c.new_rank),
        interactions = c.interactions,
        "rank changed"
    );
}
