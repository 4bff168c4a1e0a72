//! The HTTP API of `docs/api.md`. [`router`] builds the whole app, so tests
//! call it without a socket; [`serve`] runs it on a listener. Handlers only
//! read the published [`View`](engagement_core::view::View); they never
//! touch the engine.
//!
//! - `params`: query-string extractors (unknown, repeated and bad
//!   parameters are 400s)
//! - `rankings`, `pages`, `windows`, `groups`, `health`: the endpoints and their
//!   response types; `fields`: the parts several answers share
//! - `export`: an answer as JSON or as CSV (`format=csv` or `Accept: text/csv`)
//! - `search`: pages found by name or id
//! - `series`: a page's figures per day or week, and pages compared
//! - `layers`: deadline, concurrency limit, query-length bound, headers
//! - `compute`: CPU-heavy work on the blocking pool, at most N at once
//! - `server`, `watch`: the accept loop, the connection cap, header and
//!   idle timeouts, graceful shutdown
//! - `web`: what the web config file asks (`tls`: the rustls acceptor and
//!   client certificates; `auth`: basic auth; response headers)
//!
//! Limits: query strings longer than `max_query_bytes` are refused (400),
//! `limit` is at most 1000, `offset` at most 1,000,000, at most
//! `max_concurrent_requests` API requests run at once (503 beyond; the
//! health checks are exempt), and each request has a deadline (408).

mod auth;
mod compute;
mod export;
mod fields;
mod groups;
mod health;
mod layers;
mod pages;
mod params;
mod rank_changes;
mod rankings;
mod search;
mod series;
mod server;
mod tls;
mod watch;
mod web;
mod windows;

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use crate::config::HttpLimits;
use crate::pipeline::status::StatusRx;
use crate::serve::metrics::Metrics;
use crate::serve::published::ViewRx;
use compute::Compute;

pub use server::{serve, serve_on};
pub use web::{Guard, Reloader, Transport, Web, WebError, reload_until};

pub const MAX_LIMIT: usize = 1000;
pub const MAX_OFFSET: usize = 1_000_000;

/// What the handlers read.
#[derive(Clone)]
pub struct AppState {
    pub views: ViewRx,
    pub status: StatusRx,
    pub metrics: Arc<Metrics>,
    /// `ranking.groups`, listed by `/v1/groups`.
    pub groups: Arc<[String]>,
    /// Shard mode: `/readyz` says when this instance owns no partition.
    pub shard: bool,
}

/// A JSON error: `{"error": "..."}` with a 4xx or 5xx status.
#[derive(Debug)]
pub struct ApiError(StatusCode, String);

impl ApiError {
    fn bad(msg: impl Into<String>) -> ApiError {
        ApiError(StatusCode::BAD_REQUEST, msg.into())
    }
    fn not_found(msg: impl Into<String>) -> ApiError {
        ApiError(StatusCode::NOT_FOUND, msg.into())
    }
    fn overloaded() -> ApiError {
        ApiError(StatusCode::SERVICE_UNAVAILABLE, "too many concurrent requests".into())
    }
    fn timed_out() -> ApiError {
        ApiError(StatusCode::REQUEST_TIMEOUT, "request timed out".into())
    }
    fn internal() -> ApiError {
        ApiError(StatusCode::INTERNAL_SERVER_ERROR, "internal error".into())
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(ErrorBody { error: &self.1 })).into_response()
    }
}

/// What the handlers get: the app state and the bounded pool that runs
/// their CPU-heavy part.
#[derive(Clone)]
struct Ctx {
    app: AppState,
    compute: Compute,
}

/// The whole app without a web config: no authentication, no headers
/// besides the usual ones.
pub fn router(state: AppState, limits: HttpLimits) -> Router {
    guarded(state, limits, &Guard::default())
}

/// The whole app. The `/v1` endpoints and `/metrics` share the concurrency
/// limit; `/`, `/healthz` and `/readyz` do not, so that a busy API never
/// fails a liveness probe. Every path has the deadline and the headers,
/// and `guard`'s basic auth and headers.
pub fn guarded(state: AppState, limits: HttpLimits, guard: &Guard) -> Router {
    let metrics = state.metrics.clone();
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let ctx = Ctx { app: state, compute: Compute::new(limits.max_concurrent_requests, cpus) };
    let api = Router::new()
        .route("/v1/rankings", get(rankings::rankings))
        .route("/v1/pages", get(search::search))
        .route("/v1/pages/{platform}/{page_id}", get(pages::page))
        .route("/v1/pages/{platform}/{page_id}/series", get(series::series))
        .route("/v1/compare", get(series::compare))
        .route("/v1/windows", get(windows::windows))
        .route("/v1/groups", get(groups::groups))
        .route("/v1/rank-changes", get(rank_changes::recent))
        .route("/metrics", get(health::metrics_text));
    let limited = layers::limited(api, limits.max_concurrent_requests);
    let exempt = Router::new()
        .route("/", get(health::landing))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz));
    let app = limited
        .merge(exempt)
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .method_not_allowed_fallback(|| async {
            ApiError(StatusCode::METHOD_NOT_ALLOWED, "method not allowed; use GET or HEAD".into())
        })
        .with_state(ctx);
    let app = guard.authenticate(app, &metrics);
    guard.set_headers(layers::around(app, &limits))
}

#[cfg(test)]
mod tests;
