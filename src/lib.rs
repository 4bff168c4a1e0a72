//! engagement-monitor: ranks social-media pages by engagement, live from Kafka.
//!
//! The core is pure (no I/O, no clock, no Kafka/HTTP types):
//! - [`window`]: UTC quarters, the rolling window, timestamp parsing.
//! - [`event`]: SPEC §2 wire format, decoded borrowed; static invalid reasons.
//! - [`engine`]: applies events to per-post and per-page state, within bounds.
//! - [`view`]: the immutable, query-ready picture readers are given.
//! - [`ranking`]: SPEC §3 ordering, top-k, ranks, and top-N diffs (SPEC §5).
//! - [`synth`]: synthetic events (the SPEC §1 table, random streams).
pub mod engine;
pub mod event;
pub mod ranking;
pub mod synth;
pub mod view;
pub mod window;
