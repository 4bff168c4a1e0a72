//! engagement-monitor: ranks social-media pages by engagement, live from
//! Kafka. This crate is the shell that wires the pure core
//! ([`engagement_core`]: events, windows, the engine, views, rankings) to
//! the world. docs/architecture.md follows one message through it.
//!
//! The top of `src/` is its rooms, each a folder:
//!
//! - [`pipeline`]: events in, state kept: replica mode ([`pipeline::ingest`])
//!   and shard mode ([`pipeline::shard`]), checkpoints, readiness.
//! - [`serve`]: answers out: the published view, the HTTP API, metrics.
//! - [`alerts`]: rank changes of the watched rankings, and the producer of
//!   rank-change events and dead letters.
//! - [`directory`]: the page directory (groups of pages) from a topic or a file.
//! - [`config`]: layered, validated configuration; [`kafka`]: the one place a
//!   Kafka client configuration is built; [`telemetry`]: logging and the
//!   typed events that log and count.
//! - [`run`]: the command line, the daemon's start and stop, signals;
//!   [`tools`]: the demo, `produce`, `repartition`.
pub mod alerts;

/// The git revision the binary was built from (build.rs): twelve hex
/// digits, `-dirty` when the tree had changes, or `unknown`.
pub const REVISION: &str = env!("ENGAGEMENT_BUILD_REVISION");
pub mod config;
pub mod directory;
pub mod kafka;
pub mod pipeline;
pub mod run;
pub mod serve;
pub mod telemetry;
pub mod tools;
