//! The endpoints outside `/v1`: the leaderboard page with its
//! Content-Security-Policy, `/metrics`, and the liveness and readiness
//! checks (cheap, and exempt from the concurrency limit).

use std::sync::LazyLock;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use base64::Engine as _;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{ApiError, Ctx};
use crate::serve::metrics;

const PAGE: &str = include_str!("../leaderboard.html");

/// Computed from the page itself, so that editing its inline script or
/// style cannot leave a stale hash behind.
static PAGE_POLICY: LazyLock<HeaderValue> = LazyLock::new(|| {
    HeaderValue::from_str(&content_security_policy(PAGE)).expect("hashes and keywords are visible ASCII")
});

pub(super) async fn landing() -> Response {
    ([(header::CONTENT_SECURITY_POLICY, PAGE_POLICY.clone())], Html(PAGE)).into_response()
}

/// Exactly what the page uses: its inline `<script>` and `<style>` blocks
/// and inline event handlers (by hash), a `data:` favicon, and `fetch` to
/// this origin. Everything else, including being framed, is refused.
fn content_security_policy(page: &str) -> String {
    let hashes = |blocks: Vec<&str>| blocks.into_iter().map(sha256).collect::<Vec<_>>().join(" ");
    let scripts = hashes(blocks(page, "<script>", "</script>"));
    let handlers = hashes(event_handlers(page));
    let styles = hashes(blocks(page, "<style>", "</style>"));
    let handlers = if handlers.is_empty() { String::new() } else { format!(" 'unsafe-hashes' {handlers}") };
    format!(
        "default-src 'none'; script-src {scripts}{handlers}; style-src {styles}; img-src data:; \
         connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
}

fn sha256(text: &str) -> String {
    format!("'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes())))
}

/// The text between each `open` tag and the following `close` tag.
fn blocks<'p>(page: &'p str, open: &str, close: &str) -> Vec<&'p str> {
    page.split(open).skip(1).filter_map(|rest| rest.split_once(close).map(|(inner, _)| inner)).collect()
}

/// The values of inline event-handler attributes such as `onsubmit="…"`.
fn event_handlers(page: &str) -> Vec<&str> {
    page.split(" on")
        .skip(1)
        .filter_map(|rest| {
            let (name, value) = rest.split_once("=\"")?;
            let is_handler = !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase());
            is_handler.then(|| value.split_once('"').map(|(v, _)| v)).flatten()
        })
        .collect()
}

pub(super) async fn metrics_text(State(ctx): State<Ctx>) -> Result<Response, ApiError> {
    let body = ctx.compute.run(move || ctx.app.metrics.render()).await?;
    Ok(([(header::CONTENT_TYPE, HeaderValue::from_static(metrics::CONTENT_TYPE))], body).into_response())
}

#[derive(Serialize)]
pub(super) struct Health {
    status: &'static str,
}

pub(super) async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

#[derive(Serialize)]
pub(super) struct Readiness {
    status: &'static str,
    reason: String,
}

pub(super) async fn readyz(State(ctx): State<Ctx>) -> (StatusCode, Json<Readiness>) {
    let readiness = ctx.app.status.borrow().clone();
    let code = if readiness.is_ready() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let mut reason = readiness.reason();
    // A shard the group gave no partition answers from the page-totals
    // topic like the others, but consumes nothing: ready, and says so.
    if ctx.app.shard && readiness.is_ready() && ctx.app.metrics.shard.owned.get() == 0 {
        let idle = "this shard owns no partition of the topic (the group gave them all to other shards)";
        reason = if reason.is_empty() { idle.to_owned() } else { format!("{reason}; {idle}") };
    }
    (code, Json(Readiness { status: readiness.phase().as_str(), reason }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_hashes_every_inline_block_and_handler() {
        let page = "<style>a{}</style><form onsubmit=\"return false\"><script>x()</script><script>y()</script>";
        let policy = content_security_policy(page);
        for needle in [sha256("x()"), sha256("y()"), sha256("a{}"), sha256("return false")] {
            assert!(policy.contains(&needle), "{needle} not in {policy}");
        }
        // The well-known SHA-256 of the empty string, in base64.
        assert_eq!(sha256(""), "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='");
    }
}
