//! `GET /v1/windows`: every window the configuration keeps, with its
//! bounds and the pages and posts published in it, and the watermark. It
//! takes no parameter, and refuses any like `/v1/rankings` refuses unknown
//! ones.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use engagement_core::view::{Period, Table, View};
use engagement_core::window::{WindowId, format_rfc3339};

use super::fields::WindowJson;
use super::params::{NoParams, Strict};
use super::{ApiError, Ctx};
use crate::serve::published::latest;

pub(super) async fn windows(State(ctx): State<Ctx>, _: Strict<NoParams>) -> Result<Response, ApiError> {
    let view = latest(&ctx.app.views);
    ctx.compute.run(move || Json(windows_json(&view)).into_response()).await
}

#[derive(Serialize)]
struct WindowsJson {
    watermark: Option<String>,
    /// What the configuration keeps: calendar kinds with the periods kept
    /// (the current one included), rolling windows in days.
    configured: Configured,
    /// Every window users can name, calendar kinds first (each newest
    /// first), then the rolling windows.
    windows: Vec<Summary>,
    /// The quarters of `windows` (as before windows were configurable).
    quarters: Vec<Summary>,
    /// The first rolling window.
    rolling: Option<Summary>,
}

#[derive(Serialize)]
struct Configured {
    calendar: Vec<Kept>,
    rolling_days: Vec<u16>,
}

#[derive(Serialize)]
struct Kept {
    kind: &'static str,
    periods: u32,
}

/// A window with the pages and posts published in it.
#[derive(Serialize)]
struct Summary {
    #[serde(flatten)]
    window: WindowJson,
    /// `quarter`, `month`, `week`, `year` or `rolling`.
    kind: &'static str,
    /// The relative ids that name it now (`current`, `previous-month`, ...).
    names: Vec<String>,
    /// A rolling window's length.
    #[serde(skip_serializing_if = "Option::is_none")]
    days: Option<u16>,
    pages: usize,
    posts: u64,
}

fn windows_json(view: &View) -> WindowsJson {
    let spec = &view.windows;
    WindowsJson {
        watermark: view.watermark.map(format_rfc3339),
        configured: Configured {
            calendar: spec.calendar().map(|(k, r)| Kept { kind: k.as_str(), periods: r + 1 }).collect(),
            rolling_days: spec.rolling().to_vec(),
        },
        windows: view.windows().map(|t| summary(view, t)).collect(),
        quarters: view.quarters().map(|t| summary(view, t)).collect(),
        rolling: view.rolling().map(|t| summary(view, t)),
    }
}

/// Sums the posts of every row: O(pages), hence run as a computation.
fn summary(view: &View, t: &Table) -> Summary {
    let (kind, days) = match t.period {
        Period::Calendar(p) => (p.kind.as_str(), None),
        Period::Rolling(d) | Period::RollingPrevious(d) => ("rolling", Some(d)),
    };
    let names = view
        .windows
        .relative()
        .into_iter()
        .filter(|id| view.table(*id).is_some_and(|x| x.period == t.period))
        .map(|id: WindowId| id.to_string())
        .collect();
    Summary { window: WindowJson::of(t, &view.windows), kind, names, days, pages: t.len(), posts: t.posts() }
}
