//! Answers out: the published view, the HTTP API with the leaderboard
//! page, and every Prometheus metric.
//!
//! - [`published`]: the one channel of the latest view.
//! - [`api`]: the HTTP router, handlers and the page.
//! - [`metrics`]: metric families and scrape-time collectors.
pub mod api;
pub mod metrics;
pub mod published;
