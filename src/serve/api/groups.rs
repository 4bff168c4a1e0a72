//! `GET /v1/groups`: the page directory's dimensions and values with their
//! page counts, and the groups `ranking.groups` watches; and what the other
//! endpoints say of groups: a page's groups, an unknown group's 404.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use engagement_core::directory::Directory;
use engagement_core::view::View;

use super::params::{NoParams, Strict};
use super::{ApiError, Ctx};
use crate::serve::published::latest;

#[derive(Serialize)]
pub(super) struct GroupsJson {
    /// `ranking.groups`: watched, exported, and the leaderboard's default.
    configured: Vec<String>,
    pages: usize,
    dimensions: Vec<DimensionJson>,
}

#[derive(Serialize)]
struct DimensionJson {
    name: String,
    values: Vec<ValueJson>,
}

#[derive(Serialize)]
struct ValueJson {
    value: String,
    pages: u32,
}

pub(super) async fn groups(State(ctx): State<Ctx>, Strict(_): Strict<NoParams>) -> Result<Json<GroupsJson>, ApiError> {
    let view = latest(&ctx.app.views);
    let configured = ctx.app.groups.to_vec();
    ctx.compute.run(move || Json(listing(view.directory(), configured))).await
}

fn listing(d: &Directory, configured: Vec<String>) -> GroupsJson {
    let dimensions = d
        .listing()
        .into_iter()
        .map(|(name, values)| DimensionJson {
            name: name.to_owned(),
            values: values.into_iter().map(|(v, pages)| ValueJson { value: v.to_owned(), pages }).collect(),
        })
        .collect();
    GroupsJson { configured, pages: d.len(), dimensions }
}

/// A page's groups, by dimension.
pub(super) type PageGroups<'v> = BTreeMap<&'v str, Vec<&'v str>>;

pub(super) fn of_page<'v>(view: &'v View, platform: &str, page_id: &str) -> PageGroups<'v> {
    let mut groups = PageGroups::new();
    for (dim, value) in view.directory().groups_of(platform, page_id) {
        groups.entry(dim).or_default().push(value);
    }
    groups
}

/// A 404 for the first of `groups` no page is in, naming the dimensions
/// that exist.
pub(super) fn check_known(view: &View, groups: &[String]) -> Result<(), ApiError> {
    let d = view.directory();
    let Some(unknown) = groups.iter().find(|g| d.group(g).is_none()) else { return Ok(()) };
    let dims: Vec<&str> = d.listing().into_keys().collect();
    let known = if dims.is_empty() { "none (the page directory is empty)".to_owned() } else { dims.join(", ") };
    Err(ApiError::not_found(format!("no page is in group {unknown}; known dimensions: {known}")))
}

#[cfg(test)]
mod tests;
