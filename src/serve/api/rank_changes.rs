//! `GET /v1/rank-changes`: the latest changes of the watched rankings
//! (docs/api.md#rank-changes), newest first, at most
//! [`RECENT`](crate::serve::metrics::watches::RECENT). Read-only: the ranking loop
//! records them (src/serve/metrics/watches.rs); this only lists them. Kept apart
//! from the other handlers so that it registers with one route.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::Ctx;
use super::params::{NoParams, Strict};
use crate::alerts::rank_changes::RankEvent;
use engagement_core::window::format_rfc3339;

/// Every recent change as its rank-change event, with when it was seen.
/// It takes no parameters, and refuses any like every endpoint does.
pub(super) async fn recent(State(ctx): State<Ctx>, _: Strict<NoParams>) -> Json<Value> {
    let changes: Vec<Value> = ctx
        .app
        .metrics
        .watches
        .recent()
        .iter()
        .map(|r| {
            let mut v = serde_json::to_value(RankEvent::of(&r.change)).unwrap_or(Value::Null);
            let at = r.at.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            v["seen_at"] = format_rfc3339(at.as_millis() as i64).into();
            v
        })
        .collect();
    Json(json!({ "changes": changes }))
}
