//! `GET /v1/rankings`: the pages of one window ordered by one metric, as
//! JSON or CSV.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Serialize;

use engagement_core::view::{Table, View};
use engagement_core::window::{UnknownWindow, WindowId, format_rfc3339};

use super::export::{self, Format};
use super::fields::{Figures, PageIdentity, WindowJson};
use super::groups;
use super::params::{RankingQuery, Strict};
use super::{ApiError, Ctx};
use crate::serve::published::latest;

pub(super) async fn rankings(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    Strict(q): Strict<RankingQuery>,
) -> Result<Response, ApiError> {
    let view = latest(&ctx.app.views);
    let format = Format::negotiate(q.format, &headers);
    ctx.compute
        .run(move || {
            export::answer(format, answer(&view, &q)?, |body| {
                let name = format!("rankings-{}-{}", body.window.id, body.metric);
                export::csv(&name, CSV_HEADER, body.entries.iter().map(Entry::csv_row))
            })
        })
        .await?
}

/// The columns of a ranking as CSV: an entry's fields, its groups as
/// `dimension:value` joined by `;`.
const CSV_HEADER: &[&str] = &[
    "rank",
    "platform",
    "page_id",
    "page_name",
    "interactions",
    "reactions",
    "comments",
    "shares",
    "views",
    "posts",
    "followers",
    "interactions_per_post",
    "interactions_per_1k_followers",
    "previous_period_rank",
    "history_complete",
    "groups",
];

#[derive(Serialize)]
struct Rankings<'v> {
    window: WindowJson,
    metric: &'static str,
    /// The groups asked for; the pages ranked are in all of them.
    groups: &'v [String],
    watermark: Option<String>,
    total_pages: usize,
    entries: Vec<Entry<'v>>,
}

#[derive(Serialize)]
struct Entry<'v> {
    rank: u32,
    #[serde(flatten)]
    page: PageIdentity<'v>,
    #[serde(flatten)]
    figures: Figures,
    previous_period_rank: Option<u32>,
}

impl Entry<'_> {
    fn csv_row(&self) -> Vec<String> {
        let (f, p) = (&self.figures, &self.page);
        let groups: Vec<String> =
            p.groups.iter().flat_map(|(dim, values)| values.iter().map(move |v| format!("{dim}:{v}"))).collect();
        vec![
            self.rank.to_string(),
            p.platform.to_owned(),
            p.page_id.to_owned(),
            p.page_name.unwrap_or_default().to_owned(),
            f.interactions.to_string(),
            f.reactions.to_string(),
            f.comments.to_string(),
            f.shares.to_string(),
            f.views.to_string(),
            f.posts.to_string(),
            export::opt(f.followers),
            export::opt(f.interactions_per_post),
            export::opt(f.interactions_per_1k_followers),
            export::opt(self.previous_period_rank),
            p.history_complete.to_string(),
            groups.join(";"),
        ]
    }
}

/// The ranking itself: the CPU-heavy part, run off the async threads.
fn answer<'v>(view: &'v View, q: &'v RankingQuery) -> Result<Rankings<'v>, ApiError> {
    let table = table(view, &q.window)?;
    groups::check_known(view, &q.groups)?;
    let filter = q.filter();
    // From the view's prepared order of this ranking: a slice, and a lookup
    // per entry for its rank in the previous period.
    let ranked = view.ranking(table, q.metric, &filter, q.offset, q.limit);
    let predecessor = view.predecessor(table);
    let entries = ranked
        .iter()
        .map(|(rank, row)| Entry {
            rank: *rank,
            page: PageIdentity::of(view, row.page),
            figures: Figures::of(row),
            previous_period_rank: predecessor.and_then(|t| view.rank_of(t, q.metric, &filter, row.page)),
        })
        .collect();
    Ok(Rankings {
        window: WindowJson::of(table, &view.windows),
        metric: q.metric.as_str(),
        groups: &q.groups,
        watermark: view.watermark.map(format_rfc3339),
        total_pages: view.order(table, q.metric, &filter).rows.len(),
        entries,
    })
}

/// Resolves `window` to a table of the view: 404 before the first event
/// (whatever the window), then 400 for a bad name, 404 for a window not held.
/// A window of a kind not configured is a 404 that lists the configured
/// ones; a period not retained a 404 that names it.
pub(super) fn table<'v>(view: &'v View, text: &str) -> Result<&'v Table, ApiError> {
    if view.watermark.is_none() {
        return Err(ApiError::not_found("no events consumed yet"));
    }
    let window = view.windows.resolve(text).map_err(|e| match e {
        UnknownWindow::Malformed => ApiError::bad(e.to_string()),
        UnknownWindow::NotConfigured(_) => ApiError::not_found(e.to_string()),
    })?;
    view.table(window).ok_or_else(|| match window {
        WindowId::Period(p) => ApiError::not_found(format!("{} {p} is not retained", p.kind.as_str())),
        _ => ApiError::not_found("window not available"),
    })
}
