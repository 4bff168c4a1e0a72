//! The tower layers around the router, and how their failures become the
//! JSON errors of `docs/api.md`.
//!
//! Around every request, outermost first: `X-Content-Type-Options:
//! nosniff`; JSON bodies for errors that arrive without one; the deadline
//! (408); the query-length bound (400). Around the `/v1` endpoints and
//! `/metrics` only: the concurrency limit, shedding excess requests at once
//! (503) rather than queueing them.

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use tower::filter::FilterLayer;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::load_shed::LoadShedLayer;
use tower::timeout::TimeoutLayer;
use tower::{BoxError, ServiceBuilder};
use tower_http::set_header::SetResponseHeaderLayer;

use super::{ApiError, Ctx};
use crate::config::HttpLimits;

/// A query string over `http.max_query_bytes`.
#[derive(Debug, thiserror::Error)]
#[error("query string longer than {0} bytes")]
struct QueryTooLong(usize);

/// The layers every path gets.
pub(super) fn around(app: Router, limits: &HttpLimits) -> Router {
    let max_query = limits.max_query_bytes;
    let query_length = move |req: Request| match req.uri().query() {
        Some(q) if q.len() > max_query => Err(QueryTooLong(max_query)),
        _ => Ok(req),
    };
    app.layer(
        ServiceBuilder::new()
            .layer(SetResponseHeaderLayer::overriding(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ))
            .layer(axum::middleware::map_response(json_errors))
            .layer(HandleErrorLayer::new(refusal))
            .layer(TimeoutLayer::new(limits.request_timeout))
            .layer(FilterLayer::new(query_length)),
    )
}

/// At most `max` requests in `routes` at once; the rest get 503 at once.
/// One semaphore for all of them: a plain concurrency limit would be
/// applied, and counted, per route.
pub(super) fn limited(routes: Router<Ctx>, max: usize) -> Router<Ctx> {
    routes.route_layer(
        ServiceBuilder::new()
            .layer(HandleErrorLayer::new(refusal))
            .layer(LoadShedLayer::new())
            .layer(GlobalConcurrencyLimitLayer::new(max)),
    )
}

/// The JSON error for a layer's refusal.
async fn refusal(err: BoxError) -> ApiError {
    if err.is::<tower::timeout::error::Elapsed>() {
        ApiError::timed_out()
    } else if err.is::<tower::load_shed::error::Overloaded>() {
        ApiError::overloaded()
    } else if let Some(e) = err.downcast_ref::<QueryTooLong>() {
        ApiError::bad(e.to_string())
    } else {
        tracing::error!(error = %err, "unexpected HTTP layer error");
        ApiError::internal()
    }
}

/// Gives a JSON body to error responses that were built without one (an
/// extractor's plain-text rejection, say), keeping status and headers.
async fn json_errors(resp: Response) -> Response {
    let is_json = resp.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes() == b"application/json");
    if !(resp.status().is_client_error() || resp.status().is_server_error()) || is_json {
        return resp;
    }
    let (mut parts, _) = resp.into_parts();
    let reason = parts.status.canonical_reason().unwrap_or("error").to_ascii_lowercase();
    let fresh = ApiError(parts.status, reason).into_response();
    parts.headers.remove(header::CONTENT_LENGTH);
    let (fresh_parts, body) = fresh.into_parts();
    parts.headers.extend(fresh_parts.headers);
    Response::from_parts(parts, body)
}
