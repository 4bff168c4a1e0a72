//! engagement-monitor: ranks social-media pages by engagement, live from
//! Kafka. This crate is the shell that wires the pure core
//! ([`engagement_core`]: events, windows, the engine, views, rankings) to
//! the world. docs/architecture.md follows one message through it.
//!
//! - [`cli`], [`config`]: the command line; layered, validated configuration.
//! - [`ingest`]: the thread that owns the engine: Kafka → decode → apply,
//!   progress and readiness, checkpoints, offset commits.
//! - [`checkpoint`]: the checkpoint file: versioned, checksummed, atomic.
//! - [`published`]: the one publication of the view; [`status`]: readiness.
//! - [`rank_changes`]: the changes of the watched rankings, detected over
//!   successive views; counted, held for alerts, listed and published.
//! - [`directory`]: the page directory (groups of pages) from a topic or a file.
//! - [`publisher`]: dead letters and rank-change events to Kafka, never blocking.
//! - [`api`]: the HTTP router; [`metrics`]: every metric, scrape-time collectors.
//! - [`telemetry`]: logging setup and the typed events that log and count.
//! - [`kafka`]: the one place a Kafka client configuration is built.
//! - [`daemon`]: starts the parts and stops them in order; [`shutdown`]: signals.
//! - [`produce`]: synthetic events to a real topic, for demos and load tests;
//!   [`repartition`]: copies a topic into one keyed by page.
//! - [`demo`]: the pipeline on librdkafka's in-process mock cluster.
pub mod api;
pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod directory;
pub mod ingest;
pub mod kafka;
pub mod metrics;
pub mod produce;
pub mod published;
pub mod publisher;
pub mod rank_changes;
pub mod repartition;
pub mod shard;
pub mod shutdown;
pub mod status;
pub mod telemetry;
