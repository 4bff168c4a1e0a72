//! `GET /v1/pages/{platform}/{page_id}`: one page in every retained window.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use engagement_core::ranking::{Filter, Metric};
use engagement_core::view::{Period, Row, Table, View};
use engagement_core::window::{CalendarKind, Quarter, format_rfc3339};

use super::fields::{Figures, PageIdentity, WindowJson};
use super::{ApiError, Ctx};
use crate::serve::published::latest;

pub(super) async fn page(
    State(ctx): State<Ctx>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Response, ApiError> {
    // axum's own rejection (for example of %FF, not UTF-8) is text/plain.
    let Path((platform, page_id)) = path.map_err(|_| ApiError::bad("the path must be valid percent-encoded UTF-8"))?;
    let view = latest(&ctx.app.views);
    let answer = move || page_json(&view, &platform, &page_id).map(|body| Json(body).into_response());
    ctx.compute.run(answer).await?
}

#[derive(Serialize)]
struct PageJson<'v> {
    #[serde(flatten)]
    page: PageIdentity<'v>,
    watermark: Option<String>,
    windows: Vec<PageWindow<'v>>,
    top_posts: Vec<TopPost<'v>>,
}

/// The page in one window: the window, the page's figures there and its
/// rank by interactions (`None` without a post there); for a quarter, its
/// top posts (kept for every quarter the windows name).
#[derive(Serialize)]
struct PageWindow<'v> {
    #[serde(flatten)]
    window: WindowJson,
    #[serde(flatten)]
    figures: Figures,
    rank: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_posts: Option<Vec<TopPost<'v>>>,
}

#[derive(Serialize)]
struct TopPost<'v> {
    post_id: &'v str,
    interactions: u64,
}

fn page_json<'v>(view: &'v View, platform: &str, page_id: &str) -> Result<PageJson<'v>, ApiError> {
    let i = view.find_page(platform, page_id).ok_or_else(|| ApiError::not_found("unknown page"))?;
    let windows = view.windows().map(|t| page_window(view, t, i)).collect();
    Ok(PageJson {
        page: PageIdentity::of(view, i),
        watermark: view.watermark.map(format_rfc3339),
        windows,
        top_posts: posts(view.top_posts(i)),
    })
}

fn posts(list: Vec<(&str, u64)>) -> Vec<TopPost<'_>> {
    list.into_iter().map(|(id, n)| TopPost { post_id: id, interactions: n }).collect()
}

fn page_window<'v>(view: &'v View, t: &Table, page: u32) -> PageWindow<'v> {
    let empty = Row { page, totals: Default::default(), followers: None };
    let top_posts = match t.period {
        Period::Calendar(q) if q.kind == CalendarKind::Quarter => {
            Some(posts(view.top_posts_of(page, Quarter::from_index(q.index))))
        }
        _ => None,
    };
    PageWindow {
        window: WindowJson::of(t, &view.windows),
        figures: Figures::of(&view.row(t, page).unwrap_or(empty)),
        rank: view.rank_of(t, Metric::Interactions, &Filter::ALL, page),
        top_posts,
    }
}
