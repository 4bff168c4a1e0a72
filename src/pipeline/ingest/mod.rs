//! Ingest: one dedicated OS thread that owns the engine (one writer;
//! readers get published views). It restores the newest checkpoint, then
//! runs the consume loop until shutdown, then stops in order.
//!
//! - [`kafka`]: the only ingest code that talks to rdkafka.
//! - [`consume`]: the loop: poll a batch → decode → apply → count, then a
//!   housekeeping tick (publish the view, readiness, checkpoint, commit).
//! - [`fetcher`]: the fetch thread: polls the source's [`Feed`], copies
//!   and decodes each batch while the loop applies the previous one.
//! - [`preparer`]: the thread between the writer and the published view:
//!   sorts each view before it is published.
//! - [`progress`]: offsets per partition, lag, readiness.
//! - [`broker`]: whether the brokers can be reached, and reporting it.
//! - [`checkpoints`]: restore at start, the checkpoint schedule and the
//!   thread that makes checkpoints durable.
//!
//! Offsets are committed to Kafka only from what is applied (without a
//! state directory) or from durable checkpoints (with one), never ahead of
//! the state they belong to; they are for lag monitoring, not a restart
//! point.

mod broker;
mod checkpoints;
mod consume;
mod fetch_queue;
mod fetcher;
mod kafka;
mod preparer;
mod progress;
mod tally;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::alerts::publisher::Publisher;
use crate::config::Config;
use crate::pipeline::status::StatusTx;
use crate::serve::metrics::Metrics;

pub use crate::pipeline::checkpoint::Offsets;
pub(crate) use fetch_queue::{FetchQueue, MessageBatch, commit_async, consumer_queue_len};
pub(crate) use fetcher::{Decoded, Fetched, Fetcher, Polling, wall_ms};
pub use preparer::Preparer;
pub(crate) use progress::lag;
pub(crate) use tally::Tally;

/// One message as ingest sees it, borrowed from the client's buffers.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    pub partition: i32,
    pub offset: i64,
    /// The message timestamp (the default `observed_at`).
    pub timestamp: Option<i64>,
    pub key: Option<&'a [u8]>,
    /// Empty for a tombstone.
    pub payload: &'a [u8],
}

/// Where messages come from: Kafka in production, a scripted fake in the
/// unit tests of the loop. The source stays on the ingest thread; its
/// [`Feed`] runs on the fetch thread.
pub trait Source {
    type Feed: Feed;
    /// The polling half, handed to the fetch thread once.
    fn feed(&mut self) -> Self::Feed;
    fn topic(&self) -> &str;
    /// The topic's partition count; `None` while the topic does not exist.
    fn partitions(&mut self) -> anyhow::Result<Option<usize>>;
    /// Starts consuming `partitions`, each at its offset (`None`: earliest).
    fn assign(&mut self, partitions: &[(i32, Option<i64>)]) -> anyhow::Result<()>;
    /// A partition's (low, high) offsets: the client's cached values, or
    /// the broker's answer when `fetch` (a round trip; use sparingly).
    fn ends(&mut self, partition: i32, fetch: bool) -> Option<(i64, i64)>;
    /// Whether the client said, since the last call, that no broker at all
    /// can be reached.
    fn brokers_down(&mut self) -> bool;
    /// Commits `offsets` asynchronously; results arrive as events.
    fn commit(&mut self, offsets: &Offsets);
    /// Serves the client (commit callbacks) until `done` or `deadline`.
    fn serve_until(&mut self, deadline: Instant, done: &mut dyn FnMut() -> bool);
}

/// The polling half of a source.
pub trait Feed: Send + 'static {
    /// Waits up to `timeout` for messages and hands them to `f`, at most
    /// `max` per call of `f`; `f` may be called more than once, or not at
    /// all when none arrived.
    fn poll(&mut self, timeout: Duration, max: usize, f: &mut dyn FnMut(&[Record<'_>]));
    /// Each assigned partition's next offset to hand over (`out` is
    /// cleared first). It moves past what is never handed over:
    /// transaction markers and aborted messages.
    fn positions(&mut self, out: &mut Vec<(i32, i64)>);
}

/// What the ingest thread needs, handed over by the daemon.
pub struct Parts {
    pub config: Arc<Config>,
    /// Where built views go to be prepared and published.
    pub views: Preparer,
    pub status: Arc<StatusTx>,
    pub metrics: Arc<Metrics>,
    pub publisher: Arc<Publisher>,
    pub shutdown: CancellationToken,
}

/// Starts ingest on its own thread. The receiver yields once it has
/// stopped consuming and committed (the Kafka client may still be closing).
pub fn spawn(parts: Parts) -> std::io::Result<oneshot::Receiver<anyhow::Result<()>>> {
    spawn_reporting("ingest", move || run(parts))
}

/// Runs `work` on a thread named `name`; the receiver yields its result.
pub(crate) fn spawn_reporting(
    name: &str,
    work: impl FnOnce() -> anyhow::Result<()> + Send + 'static,
) -> std::io::Result<oneshot::Receiver<anyhow::Result<()>>> {
    let (done, rx) = oneshot::channel();
    std::thread::Builder::new().name(name.into()).spawn(move || {
        let _ = done.send(work());
    })?;
    Ok(rx)
}

fn run(parts: Parts) -> anyhow::Result<()> {
    let source = kafka::KafkaSource::new(&parts.config.kafka, parts.metrics.clone())
        .map_err(|e| anyhow::anyhow!("cannot create the Kafka consumer: {}", crate::kafka::creation_error(&e)))?;
    let restored = checkpoints::restore(&parts)?;
    let mut consume = consume::Consume::new(source, parts, restored)?;
    let ran = consume.run();
    // Stops in order even then: what was applied is checkpointed.
    let stopped = consume.stop();
    ran.and(stopped)
}

#[cfg(test)]
mod tests;
