//! The integration tests of the daemon binary, as one test binary: each
//! module was once its own `tests/*.rs` binary, and each of those linked
//! librdkafka again. Run one area with a filter, e.g.
//! `cargo test --test it daemon::`.
//!
//! The tests need the project's Kafka broker (`scripts/kafka.sh start`;
//! `scripts/test.sh` starts it); `support` has the shared helpers.
//! `broker_restart` stops that broker, so it is `#[ignore]`d here and
//! `scripts/test.sh` runs it on its own after everything else.

mod alerting;
mod bounds;
mod broker_restart;
mod daemon;
mod dashboard;
mod docs;
mod durability;
mod failover;
mod first_run;
mod groups;
mod history_gap;
mod hostile;
mod kits;
mod leaderboard;
mod logs;
mod produce_directory;
mod repartition;
mod secrets;
mod shards;
mod stack;
mod state_dir;
mod support;
mod transactions;
mod unreachable;
mod watermark;
mod web_config;
mod windows;
