//! engagement-core: the pure core of engagement-monitor. No I/O, no clock,
//! no Kafka, HTTP or Prometheus types; time arrives as an argument.
//!
//! - [`window`]: UTC calendar periods (quarters, months, ISO weeks, years),
//!   rolling windows, timestamps, the windows kept ([`window::Windows`]) and
//!   the ids that name them ([`window::WindowId`]).
//! - [`event`]: the wire format of one engagement event, decoded borrowed.
//! - [`engine`]: applies events to per-post and per-page state, within bounds.
//! - [`directory`]: which groups each page belongs to, from directory records.
//! - [`codec`]: the little-endian binary codec of checkpoints.
//! - [`global`]: shard mode's page records and the table of every page.
//! - [`view`]: the immutable, query-ready picture readers are given.
//! - [`ranking`]: metrics, the ranking order, top-k and ranks.
//! - [`synth`]: synthetic events (the reference table, random streams).
pub mod codec;
pub mod directory;
pub mod engine;
pub mod event;
pub mod global;
pub mod ranking;
pub mod synth;
pub mod view;
pub mod window;
