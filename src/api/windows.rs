//! `GET /v1/windows`: the retained quarters, the rolling window and the
//! watermark. It takes no parameter, and refuses any like `/v1/rankings`
//! refuses unknown ones.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use engagement_core::view::{Table, View};
use engagement_core::window::format_rfc3339;

use super::params::{NoParams, Strict};
use super::rankings::WindowJson;
use super::{ApiError, Ctx};
use crate::published::latest;

pub(super) async fn windows(State(ctx): State<Ctx>, _: Strict<NoParams>) -> Result<Response, ApiError> {
    let view = latest(&ctx.app.views);
    let days = ctx.app.rolling_days;
    ctx.compute.run(move || Json(windows_json(&view, days)).into_response()).await
}

#[derive(Serialize)]
struct WindowsJson {
    watermark: Option<String>,
    quarters: Vec<Summary>,
    rolling: Option<RollingSummary>,
}

/// A window with the pages and posts published in it.
#[derive(Serialize)]
struct Summary {
    #[serde(flatten)]
    window: WindowJson,
    pages: usize,
    posts: u64,
}

#[derive(Serialize)]
struct RollingSummary {
    #[serde(flatten)]
    summary: Summary,
    days: u32,
}

fn windows_json(view: &View, days: u32) -> WindowsJson {
    WindowsJson {
        watermark: view.watermark.map(format_rfc3339),
        quarters: view.quarters().map(summary).collect(),
        rolling: view.rolling().map(|t| RollingSummary { summary: summary(t), days }),
    }
}

/// Sums the posts of every row: O(pages), hence run as a computation.
fn summary(t: &Table) -> Summary {
    Summary { window: WindowJson::of(t), pages: t.len(), posts: t.posts() }
}
