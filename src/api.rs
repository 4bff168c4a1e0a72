//! The HTTP API of SPEC §3. `router(state)` builds the whole app, so tests
//! call it without a socket. Handlers only read the published [`View`];
//! they never touch the engine.
//!
//! Limits: query strings longer than the configured bound are refused (400),
//! `limit` is at most 1000, `offset` at most 1,000,000, unknown or repeated
//! parameters are refused, at most N requests run at once (503 beyond), and
//! each request has a deadline (408).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use tokio::sync::Semaphore;

use crate::metrics::{self, Metrics};
use crate::published::{ViewRx, latest};
use crate::status::StatusRx;
use engagement_core::ranking::{Filter, Metric};
use engagement_core::view::{Period, Row, Table, View};
use engagement_core::window::{Window, format_rfc3339};

pub const MAX_LIMIT: usize = 1000;
pub const MAX_OFFSET: usize = 1_000_000;

/// What the handlers read.
#[derive(Clone)]
pub struct AppState {
    pub views: ViewRx,
    pub status: StatusRx,
    pub metrics: Arc<Metrics>,
    pub rolling_days: u32,
}

/// Request limits of the HTTP layer.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    pub request_timeout: Duration,
    pub max_concurrent_requests: usize,
    pub max_query_bytes: usize,
}

/// A JSON error: `{"error": "..."}` with status 400, 404, 408 or 503.
#[derive(Debug)]
pub struct ApiError(StatusCode, String);

impl ApiError {
    fn bad(msg: impl Into<String>) -> ApiError {
        ApiError(StatusCode::BAD_REQUEST, msg.into())
    }
    fn not_found(msg: impl Into<String>) -> ApiError {
        ApiError(StatusCode::NOT_FOUND, msg.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

pub fn router(state: AppState, limits: HttpLimits) -> Router {
    let permits = Arc::new(Semaphore::new(limits.max_concurrent_requests));
    Router::new()
        .route("/", get(landing))
        .route("/v1/rankings", get(rankings))
        .route("/v1/pages/{platform}/{page_id}", get(page))
        .route("/v1/windows", get(windows))
        .route("/v1/rank-changes", get(rank_changes::recent))
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(|| async { Json(serde_json::json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .with_state(state)
        .layer(middleware::from_fn(move |req: Request, next: Next| guard(req, next, limits, permits.clone())))
}

/// Serves `app` on `listener` until `stop` is cancelled, then lets the
/// requests in flight finish.
pub async fn serve(listener: tokio::net::TcpListener, app: Router, stop: tokio_util::sync::CancellationToken) {
    let server = axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned());
    if let Err(e) = server.await {
        tracing::error!(error = %e, "http server failed");
    }
}

/// Query-length bound, concurrency limit and deadline for every request.
async fn guard(req: Request, next: Next, limits: HttpLimits, permits: Arc<Semaphore>) -> Response {
    if req.uri().query().is_some_and(|q| q.len() > limits.max_query_bytes) {
        return ApiError::bad(format!("query string longer than {} bytes", limits.max_query_bytes)).into_response();
    }
    let Ok(_permit) = permits.try_acquire() else {
        return ApiError(StatusCode::SERVICE_UNAVAILABLE, "too many concurrent requests".into()).into_response();
    };
    match tokio::time::timeout(limits.request_timeout, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => ApiError(StatusCode::REQUEST_TIMEOUT, "request timed out".into()).into_response(),
    }
}

async fn landing() -> Html<&'static str> {
    Html(include_str!("leaderboard.html"))
}

async fn metrics_text(State(s): State<AppState>) -> Response {
    let body = tokio::task::spawn_blocking(move || s.metrics.render()).await.unwrap_or_default();
    ([(header::CONTENT_TYPE, HeaderValue::from_static(metrics::CONTENT_TYPE))], body).into_response()
}

async fn readyz(State(s): State<AppState>) -> Response {
    let readiness = s.status.borrow().clone();
    let body = Json(serde_json::json!({ "status": readiness.phase().as_str(), "reason": readiness.reason() }));
    let code = if readiness.is_ready() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, body).into_response()
}

type Params = Vec<(String, String)>;

/// Checks that only `allowed` parameters appear, each at most once.
fn params(
    q: Result<Query<Params>, axum::extract::rejection::QueryRejection>,
    allowed: &[&str],
) -> Result<Params, ApiError> {
    let Query(list) = q.map_err(|_| ApiError::bad("malformed query string"))?;
    let mut seen = HashSet::new();
    for (k, _) in &list {
        if !allowed.contains(&k.as_str()) {
            return Err(ApiError::bad(format!("unknown parameter {:?}; allowed: {}", truncate(k), allowed.join(", "))));
        }
        if !seen.insert(k.as_str()) {
            return Err(ApiError::bad(format!("parameter {k} given more than once")));
        }
    }
    Ok(list)
}

fn truncate(s: &str) -> &str {
    match s.char_indices().nth(64) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn get_param<'p>(list: &'p Params, key: &str) -> Option<&'p str> {
    list.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn number(list: &Params, key: &str, default: usize, max: usize) -> Result<usize, ApiError> {
    let Some(v) = get_param(list, key) else {
        return Ok(default);
    };
    match v.parse::<usize>() {
        Ok(n) if n <= max => Ok(n),
        _ => Err(ApiError::bad(format!("{key} must be an integer from 0 to {max}"))),
    }
}

/// Resolves `window` to a table of the view.
fn window<'v>(view: &'v View, id: &str) -> Result<&'v Table, ApiError> {
    if view.watermark.is_none() {
        return Err(ApiError::not_found("no events consumed yet"));
    }
    let window: Window = id.parse().map_err(|e| ApiError::bad(format!("{e}")))?;
    view.table(window).ok_or_else(|| match window {
        Window::Quarter(q) => ApiError::not_found(format!("quarter {q} is not retained")),
        _ => ApiError::not_found("window not available"),
    })
}

fn platform_filter(list: &Params) -> Result<Filter<'_>, ApiError> {
    match get_param(list, "platform") {
        None => Ok(Filter::All),
        Some(p)
            if !p.is_empty()
                && p.len() <= 32
                && p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') =>
        {
            Ok(Filter::Platform(p))
        }
        Some(_) => Err(ApiError::bad("platform must be 1 to 32 characters of [a-z0-9_]")),
    }
}

#[derive(Serialize)]
struct WindowJson {
    id: String,
    start: String,
    end: String,
}

fn window_json(t: &Table) -> WindowJson {
    let id = match t.period {
        Period::Quarter(q) => q.to_string(),
        Period::Rolling => "rolling".into(),
        Period::RollingPrevious => "rolling_previous".into(),
    };
    WindowJson { id, start: format_rfc3339(t.start), end: format_rfc3339(t.end) }
}

/// A page's figures in a window (used by rankings and the page endpoint).
#[derive(Serialize)]
struct Figures {
    interactions: u64,
    reactions: u64,
    comments: u64,
    shares: u64,
    views: u64,
    posts: u64,
    followers: Option<u64>,
    interactions_per_post: Option<f64>,
    interactions_per_1k_followers: Option<f64>,
}

fn figures(r: &Row) -> Figures {
    let t = &r.totals;
    Figures {
        interactions: t.interactions(),
        reactions: t.reactions,
        comments: t.comments,
        shares: t.shares,
        views: t.views,
        posts: t.posts,
        followers: r.followers,
        interactions_per_post: Metric::InteractionsPerPost.value(r),
        interactions_per_1k_followers: Metric::InteractionsPer1kFollowers.value(r),
    }
}

#[derive(Serialize)]
struct Entry<'v> {
    rank: u32,
    platform: &'v str,
    page_id: &'v str,
    page_name: Option<&'v str>,
    #[serde(flatten)]
    figures: Figures,
    previous_period_rank: Option<u32>,
}

async fn rankings(
    State(s): State<AppState>,
    q: Result<Query<Params>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let list = params(q, &["window", "metric", "platform", "limit", "offset"])?;
    let metric_name = get_param(&list, "metric").unwrap_or("interactions");
    let metric = Metric::parse(metric_name).ok_or_else(|| {
        let all: Vec<&str> = Metric::ALL.iter().map(|m| m.as_str()).collect();
        ApiError::bad(format!("metric must be one of {}", all.join(", ")))
    })?;
    let filter = platform_filter(&list)?;
    let limit = number(&list, "limit", 10, MAX_LIMIT)?;
    let offset = number(&list, "offset", 0, MAX_OFFSET)?;
    let view = latest(&s.views);
    let table = window(&view, get_param(&list, "window").unwrap_or("current"))?;
    let total_pages = view.filtered(table, &filter).len();
    let ranked = view.ranking(table, metric, &filter, offset, limit);
    let predecessor = view.predecessor(table);
    let entries: Vec<Entry> = ranked
        .iter()
        .map(|(rank, row)| {
            let p = view.page(row.page);
            Entry {
                rank: *rank,
                platform: p.platform,
                page_id: p.id,
                page_name: p.name,
                figures: figures(row),
                previous_period_rank: predecessor.and_then(|t| view.rank_of(t, metric, &filter, row.page)),
            }
        })
        .collect();
    let body = serde_json::json!({
        "window": window_json(table),
        "metric": metric.as_str(),
        "watermark": view.watermark.map(format_rfc3339),
        "total_pages": total_pages,
        "entries": entries,
    });
    Ok(Json(body).into_response())
}

async fn page(
    State(s): State<AppState>,
    Path((platform, page_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let view = latest(&s.views);
    let i = view.find_page(&platform, &page_id).ok_or_else(|| ApiError::not_found("unknown page"))?;
    let p = view.page(i);
    let tables = view.quarters().chain(view.rolling());
    let windows: Vec<serde_json::Value> = tables
        .map(|t| {
            let rank = view.rank_of(t, Metric::Interactions, &Filter::All, i);
            let empty = Row { page: i, totals: Default::default(), followers: None };
            let row = view.row(t, i).unwrap_or(&empty);
            let mut v = serde_json::to_value(figures(row)).expect("figures serialize");
            let w = window_json(t);
            v["id"] = w.id.into();
            v["start"] = w.start.into();
            v["end"] = w.end.into();
            v["rank"] = rank.into();
            v
        })
        .collect();
    let top_posts: Vec<_> =
        view.top_posts(i).iter().map(|(id, n)| serde_json::json!({"post_id": id, "interactions": n})).collect();
    Ok(Json(serde_json::json!({
        "platform": p.platform,
        "page_id": p.id,
        "page_name": p.name,
        "watermark": view.watermark.map(format_rfc3339),
        "windows": windows,
        "top_posts": top_posts,
    }))
    .into_response())
}

async fn windows(State(s): State<AppState>) -> Json<serde_json::Value> {
    let view = latest(&s.views);
    let summary = |t: &Table| {
        let w = window_json(t);
        serde_json::json!({"id": w.id, "start": w.start, "end": w.end, "pages": t.rows.len(), "posts": t.posts()})
    };
    let mut rolling = view.rolling().map(summary);
    if let Some(r) = rolling.as_mut() {
        r["days"] = s.rolling_days.into();
    }
    Json(serde_json::json!({
        "watermark": view.watermark.map(format_rfc3339),
        "quarters": view.quarters().map(summary).collect::<Vec<_>>(),
        "rolling": rolling,
    }))
}

mod rank_changes;
#[cfg(test)]
mod tests;
