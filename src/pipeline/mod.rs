//! Events in, state kept: the partition pipelines and what they save.
//!
//! - [`ingest`]: replica mode, every partition into one engine: the fetch
//!   thread (poll, copy, decode) and the loop that applies, tallies,
//!   publishes views, checkpoints and commits.
//! - [`shard`]: shard mode, the group's partitions into one engine each,
//!   page records to and from the page-totals topic, checkpoints in the
//!   state topic.
//! - [`checkpoint`]: replica mode's checkpoint file.
//! - [`status`]: readiness, written here and read by the HTTP layer.
pub mod checkpoint;
pub mod ingest;
pub mod shard;
pub mod status;
