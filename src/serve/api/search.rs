//! `GET /v1/pages?q=...`: pages found by name or id, folded for case,
//! accents and Arabic marks (see [`engagement_core::view::search`]).

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use engagement_core::view::View;
use engagement_core::view::search::MAX_QUERY_BYTES;

use super::fields::PageIdentity;
use super::params::{SearchQuery, Strict};
use super::{ApiError, Ctx};
use crate::serve::published::latest;

#[derive(Serialize)]
struct Found<'v> {
    query: &'v str,
    /// Pages that match; `pages` lists the first `limit`.
    total: usize,
    pages: Vec<PageIdentity<'v>>,
}

pub(super) async fn search(State(ctx): State<Ctx>, Strict(q): Strict<SearchQuery>) -> Result<Response, ApiError> {
    let view = latest(&ctx.app.views);
    ctx.compute.run(move || found(&view, &q).map(|body| Json(body).into_response())).await?
}

fn found<'v>(view: &'v View, q: &'v SearchQuery) -> Result<Found<'v>, ApiError> {
    let folded = engagement_core::view::search::fold(&q.q);
    if folded.trim().is_empty() || folded.len() > MAX_QUERY_BYTES {
        return Err(ApiError::bad(format!("q must hold 1 to {MAX_QUERY_BYTES} bytes of text once folded")));
    }
    let (pages, total) = view.search(&folded, q.limit);
    let pages = pages.into_iter().map(|p| PageIdentity::of(view, p)).collect();
    Ok(Found { query: &q.q, total, pages })
}
