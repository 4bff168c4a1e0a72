//! engagement-monitor: ranks social-media pages by engagement, live from Kafka.
//!
//! The core is pure (no I/O, no clock, no Kafka/HTTP types):
//! - [`window`]: UTC quarters, the rolling window, timestamp parsing.
//! - [`event`]: SPEC §2 wire format, decoded borrowed; static invalid reasons.
//! - [`engine`]: applies events to per-post and per-page state, within bounds.
//! - [`view`]: the immutable, query-ready picture readers are given.
//! - [`ranking`]: SPEC §3 ordering, top-k, ranks, and top-N diffs (SPEC §5).
//! - [`synth`]: synthetic events (the SPEC §1 table, random streams).
//!
//! The shell wires the core to the world:
//! - [`cli`], [`config`]: command line; layered, validated configuration.
//! - [`checkpoint`]: durable, checksummed state + offsets; atomic writes.
//! - [`telemetry`]: logs; [`metrics`]: every metric name, top-N collector.
//! - [`status`]: lifecycle phase and readiness shared by all parts.
//! - [`consumer`]: Kafka loop: poll → decode → apply → offsets; owns the engine.
//! - [`publisher`]: dead letters and rank-change events to Kafka, never blocking.
//! - [`ranker`]: SPEC §5 rank-change detection over successive views.
//! - [`api`]: the HTTP router of SPEC §3.
//! - [`daemon`]: starts the parts and stops them in order; [`shutdown`]: signals.
//! - [`produce`]: synthetic events to a real topic, for demos and load tests.
//! - [`demo`]: the pipeline on librdkafka's in-process mock cluster.
pub mod api;
pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod consumer;
pub mod daemon;
pub mod demo;

pub mod metrics;
pub mod produce;
pub mod publisher;
pub mod ranker;

pub mod shutdown;
pub mod status;

pub mod telemetry;
