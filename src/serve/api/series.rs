//! `GET /v1/pages/{platform}/{page_id}/series`: one page's figures per day
//! or week of publication in a window, with running totals; `GET
//! /v1/compare`: several pages' series on the same buckets, with their
//! order per bucket and each overtaking. JSON or CSV (docs/api.md#series).

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Serialize;

use engagement_core::engine::Totals;
use engagement_core::ranking::{Filter, Metric};
use engagement_core::view::View;
use engagement_core::view::series::{Point, SeriesError};
use engagement_core::window::{DAY_MS, format_rfc3339};

use super::export::{self, Format};
use super::fields::{PageIdentity, WindowJson};
use super::params::{CompareQuery, SeriesQuery, Strict};
use super::rankings::table;
use super::{ApiError, Ctx};
use crate::serve::published::latest;

pub(super) async fn series(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
    Strict(q): Strict<SeriesQuery>,
) -> Result<Response, ApiError> {
    let Path((platform, page_id)) = path.map_err(|_| ApiError::bad("the path must be valid percent-encoded UTF-8"))?;
    let view = latest(&ctx.app.views);
    let format = Format::negotiate(q.format, &headers);
    ctx.compute
        .run(move || {
            export::answer(format, series_json(&view, &platform, &page_id, &q)?, |body| {
                let name = format!("series-{platform}-{page_id}-{}-{}", body.window.id, body.bucket);
                let rows = body.buckets.iter().map(|b| {
                    let mut row = vec![b.start.clone(), b.end.clone()];
                    row.extend(b.sums.fields().into_iter().chain(b.running.fields()));
                    row
                });
                export::csv(&name, &header(&["start", "end"]), rows)
            })
        })
        .await?
}

pub(super) async fn compare(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    Strict(q): Strict<CompareQuery>,
) -> Result<Response, ApiError> {
    let view = latest(&ctx.app.views);
    let format = Format::negotiate(q.format, &headers);
    ctx.compute
        .run(move || {
            export::answer(format, compare_json(&view, &q)?, |body| {
                let name = format!("compare-{}-{}-{}", body.window.id, body.bucket, body.metric);
                export::csv(&name, &header(COMPARE_COLUMNS), compare_rows(body))
            })
        })
        .await?
}

/// A series' CSV columns: `first`, then each figure, then each running one.
fn header(first: &[&'static str]) -> Vec<&'static str> {
    first.iter().copied().chain(Sums::NAMES).chain(Sums::RUNNING).collect()
}

/// A comparison's CSV columns before the figures: one row per bucket and
/// page; `position` is the page's place among those compared by the
/// running metric.
const COMPARE_COLUMNS: &[&str] = &["start", "end", "platform", "page_id", "page_name", "position"];

fn compare_rows<'a>(body: &'a CompareJson<'_>) -> impl Iterator<Item = Vec<String>> + 'a {
    body.buckets.iter().flat_map(move |b| {
        body.pages.iter().zip(&b.values).map(move |(page, v)| {
            let key = page_key(page.page.platform, page.page.page_id);
            let position = b.order.iter().position(|k| *k == key).map_or(0, |i| i + 1);
            let mut row = vec![
                b.start.clone(),
                b.end.clone(),
                page.page.platform.to_owned(),
                page.page.page_id.to_owned(),
                page.page.page_name.unwrap_or_default().to_owned(),
                position.to_string(),
            ];
            row.extend(v.sums.fields().into_iter().chain(v.running.fields()));
            row
        })
    })
}

/// A page's figures in a bucket or a window.
#[derive(Serialize, Clone, Copy)]
struct Sums {
    posts: u64,
    interactions: u64,
    reactions: u64,
    comments: u64,
    shares: u64,
    views: u64,
}

impl Sums {
    const NAMES: [&'static str; 6] = ["posts", "interactions", "reactions", "comments", "shares", "views"];
    /// The CSV columns of the running figures, in the same order.
    const RUNNING: [&'static str; 6] = [
        "running_posts",
        "running_interactions",
        "running_reactions",
        "running_comments",
        "running_shares",
        "running_views",
    ];

    fn of(t: &Totals) -> Sums {
        Sums {
            posts: t.posts,
            interactions: t.interactions(),
            reactions: t.reactions,
            comments: t.comments,
            shares: t.shares,
            views: t.views,
        }
    }

    /// The figures in the order of [`NAMES`](Self::NAMES).
    fn fields(&self) -> [String; 6] {
        [self.posts, self.interactions, self.reactions, self.comments, self.shares, self.views].map(|n| n.to_string())
    }
}

#[derive(Serialize)]
struct BucketJson {
    /// The bucket's first and last day inside the window (UTC dates).
    start: String,
    end: String,
    #[serde(flatten)]
    sums: Sums,
    running: Sums,
}

impl BucketJson {
    fn of(p: &Point) -> BucketJson {
        let (start, end) = dates(p);
        BucketJson { start, end, sums: Sums::of(&p.totals), running: Sums::of(&p.running) }
    }
}

/// A bucket's first and last day as `YYYY-MM-DD`.
fn dates(p: &Point) -> (String, String) {
    let date = |day: i64| format_rfc3339(day * DAY_MS)[..10].to_owned();
    (date(p.first), date(p.last))
}

#[derive(Serialize)]
struct SeriesJson<'v> {
    #[serde(flatten)]
    page: PageIdentity<'v>,
    window: WindowJson,
    bucket: &'static str,
    watermark: Option<String>,
    /// The page's rank by interactions in the window (`None` without a post there).
    rank: Option<u32>,
    /// The page's figures in the window: the last bucket's running totals.
    totals: Sums,
    buckets: Vec<BucketJson>,
}

fn series_json<'v>(view: &'v View, platform: &str, page_id: &str, q: &SeriesQuery) -> Result<SeriesJson<'v>, ApiError> {
    let t = table(view, &q.window)?;
    let page = view.find_page(platform, page_id).ok_or_else(|| ApiError::not_found("unknown page"))?;
    let span = view.series_span(t, q.bucket).map_err(refused)?;
    let points = view.series(t, page, span, q.bucket);
    Ok(SeriesJson {
        page: PageIdentity::of(view, page),
        window: WindowJson::of(t, &view.windows),
        bucket: q.bucket.as_str(),
        watermark: view.watermark.map(format_rfc3339),
        rank: view.rank_of(t, Metric::Interactions, &Filter::ALL, page),
        totals: Sums::of(&points.last().map(|p| p.running).unwrap_or_default()),
        buckets: points.iter().map(BucketJson::of).collect(),
    })
}

/// Why a series cannot be given, as an answer.
fn refused(e: SeriesError) -> ApiError {
    match e {
        SeriesError::Empty => ApiError::not_found("no events consumed yet"),
        other => ApiError::bad(other.to_string()),
    }
}

#[derive(Serialize)]
struct CompareJson<'v> {
    window: WindowJson,
    bucket: &'static str,
    metric: &'static str,
    watermark: Option<String>,
    pages: Vec<ComparedPage<'v>>,
    buckets: Vec<CompareBucket>,
    overtakes: Vec<OvertakeJson>,
}

#[derive(Serialize)]
struct ComparedPage<'v> {
    #[serde(flatten)]
    page: PageIdentity<'v>,
    /// The page's rank by the metric in the window's whole ranking.
    rank: Option<u32>,
    totals: Sums,
}

#[derive(Serialize)]
struct CompareBucket {
    start: String,
    end: String,
    /// Per page, in the order of `pages`.
    values: Vec<Values>,
    /// The pages as `platform/page_id`, by the metric of their running
    /// totals, largest first.
    order: Vec<String>,
}

#[derive(Serialize)]
struct Values {
    #[serde(flatten)]
    sums: Sums,
    running: Sums,
}

/// `page` moved ahead of `passed` in the bucket starting on `start`.
#[derive(Serialize)]
struct OvertakeJson {
    start: String,
    page: String,
    passed: String,
}

fn page_key(platform: &str, id: &str) -> String {
    format!("{platform}/{id}")
}

fn compare_json<'v>(view: &'v View, q: &CompareQuery) -> Result<CompareJson<'v>, ApiError> {
    let t = table(view, &q.window)?;
    let mut pages = Vec::with_capacity(q.pages.len());
    for (platform, id) in &q.pages {
        let found = view.find_page(platform, id);
        pages.push(found.ok_or_else(|| ApiError::not_found(format!("unknown page {}", page_key(platform, id))))?);
    }
    let c = view.compare(t, &pages, q.bucket, q.metric).map_err(refused)?;
    let keys: Vec<String> = q.pages.iter().map(|(p, id)| page_key(p, id)).collect();
    let buckets = c.orders.iter().enumerate().map(|(b, order)| {
        let (start, end) = dates(&c.series[0][b]);
        let values = c.series.iter().map(|s| Values { sums: Sums::of(&s[b].totals), running: Sums::of(&s[b].running) });
        CompareBucket { start, end, values: values.collect(), order: order.iter().map(|i| keys[*i].clone()).collect() }
    });
    let overtakes = c.overtakes.iter().map(|o| OvertakeJson {
        start: dates(&c.series[0][o.bucket]).0,
        page: keys[o.page].clone(),
        passed: keys[o.passed].clone(),
    });
    let compared = pages.iter().zip(&c.series).map(|(p, s)| ComparedPage {
        page: PageIdentity::of(view, *p),
        rank: view.rank_of(t, q.metric, &Filter::ALL, *p),
        totals: Sums::of(&s.last().map(|p| p.running).unwrap_or_default()),
    });
    Ok(CompareJson {
        window: WindowJson::of(t, &view.windows),
        bucket: q.bucket.as_str(),
        metric: q.metric.as_str(),
        watermark: view.watermark.map(format_rfc3339),
        pages: compared.collect(),
        buckets: buckets.collect(),
        overtakes: overtakes.collect(),
    })
}
