//! Shard mode (`cluster.mode = "shard"`, docs/scaling.md): instances of
//! one group split the input partitions and answer for the whole topic.
//!
//! - [`group`]: the group's consumer and its callbacks.
//! - [`heartbeat`]: who owns each partition, from the owners' heartbeats.
//! - [`owner`]: the partitions this shard owns, one engine each; publishes
//!   their changed pages and checkpoints them.
//! - [`checkpoint`]: a partition's checkpoints in the compacted state
//!   topic: a base and the increments after it.
//! - [`table`]: every page of the topic from the page-totals topic, the
//!   views built from it, and readiness.
//!
//! Three threads: `shard` (owner), `fetch` (its fetch thread) and
//! `totals` (table). The owner and the table share the
//! topic's greatest watermark (the table reads it, the owner moves its
//! engines to it), whether the owned partitions are caught up, and each
//! partition's last heartbeat (the table notes it, the owner names the
//! last owner of a partition it takes over).

pub mod checkpoint;
mod group;
mod heartbeat;
mod owner;
mod records;
mod table;

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::error::RDKafkaErrorCode;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::pipeline::ingest::Parts;
use engagement_core::window::Millis;

/// What the two threads share.
#[derive(Debug)]
pub struct Shared {
    /// The greatest watermark of the topic (`i64::MIN`: none yet).
    watermark: AtomicI64,
    /// Whether the table has read the page-totals topic to its end once:
    /// only then is the topic's watermark known.
    table_caught_up: AtomicBool,
    /// Whether the group has assigned this shard its partitions once.
    assigned: AtomicBool,
    /// Whether every owned partition has caught up once and its pages are
    /// in the page-totals topic (published and acknowledged).
    owned_ready: AtomicBool,
    /// Messages the owned partitions are behind.
    behind: AtomicU64,
    /// Each input partition's last heartbeat.
    partitions: Mutex<heartbeat::Partitions>,
}

impl Shared {
    fn watermark(&self) -> Option<Millis> {
        Some(self.watermark.load(Relaxed)).filter(|w| *w != i64::MIN)
    }

    fn set_watermark(&self, at: Option<Millis>) {
        if let Some(at) = at {
            self.watermark.fetch_max(at, Relaxed);
        }
    }

    fn partitions(&self) -> std::sync::MutexGuard<'_, heartbeat::Partitions> {
        self.partitions.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The topics shard mode writes.
#[derive(Debug, Clone)]
pub struct Topics {
    pub state: String,
    pub totals: String,
}

/// The key of partition `p`'s watermark and heartbeat in the page-totals
/// topic. Page keys start with the platform's name, never with a zero byte.
pub fn watermark_key(p: i32) -> Vec<u8> {
    let mut k = b"\0wm".to_vec();
    k.extend_from_slice(&(p as u32).to_be_bytes());
    k
}

/// The partition whose watermark `key` is (see [`watermark_key`]).
fn watermark_partition(key: &[u8]) -> Option<i32> {
    let rest: [u8; 4] = key.strip_prefix(b"\0wm")?.try_into().ok()?;
    i32::try_from(u32::from_be_bytes(rest)).ok()
}

/// The settings of a consumer that reads topics by hand (no group
/// assignment, no commits): replica mode's fetch sizing, its own client id.
fn reader_defaults(client_id: &'static str) -> Vec<(&'static str, &'static str)> {
    let mut defaults = crate::kafka::CONSUMER_DEFAULTS.to_vec();
    defaults.retain(|(k, _)| *k != "client.id");
    defaults.push(("client.id", client_id));
    defaults
}

/// Starts shard mode; the receiver yields once both threads stopped.
pub fn spawn(parts: Parts) -> std::io::Result<oneshot::Receiver<anyhow::Result<()>>> {
    crate::pipeline::ingest::spawn_reporting("shard", move || run(parts))
}

fn run(parts: Parts) -> anyhow::Result<()> {
    let Parts { config: cfg, views, status, metrics, publisher, shutdown } = parts;
    // Until the group gives it the designated partition (owner.rs).
    publisher.set_publishing(false, Duration::ZERO);
    let topics =
        Topics { state: cfg.cluster.state_topic(&cfg.kafka.topic), totals: cfg.cluster.totals_topic(&cfg.kafka.topic) };
    let input_partitions = ensure_topics(&cfg, &topics, &shutdown)?;
    let shared = Arc::new(Shared {
        watermark: AtomicI64::new(i64::MIN),
        table_caught_up: AtomicBool::new(false),
        assigned: AtomicBool::new(false),
        owned_ready: AtomicBool::new(false),
        behind: AtomicU64::new(0),
        partitions: Mutex::new(heartbeat::Partitions::new(input_partitions, cfg.cluster.partition_silent_after)),
    });
    let stop_table = shutdown.child_token();
    let table_parts = table::TableParts {
        config: cfg.clone(),
        views,
        status,
        metrics: metrics.clone(),
        shutdown: stop_table.clone(),
    };
    let (t_topics, t_shared, t_shutdown) = (topics.clone(), shared.clone(), shutdown.clone());
    let table = std::thread::Builder::new().name("totals".into()).spawn(move || {
        let r = table::run(table_parts, t_topics, t_shared);
        if r.is_err() {
            // Without the table the instance answers nothing: stop it all.
            t_shutdown.cancel();
        }
        r
    })?;
    let owner_parts = owner::OwnerParts { config: cfg, metrics, publisher, shutdown };
    let owned = owner::Owner::new(owner_parts, topics, shared).and_then(|mut o| o.run());
    stop_table.cancel();
    let tabled = table.join().unwrap_or_else(|_| Err(anyhow::anyhow!("the totals thread died")));
    owned.and(tabled)
}

/// The partition count of `topic`, waiting while it does not exist.
fn partition_count<C: rdkafka::ClientContext>(
    client: &rdkafka::client::Client<C>,
    topic: &str,
    shutdown: &CancellationToken,
) -> anyhow::Result<i32> {
    loop {
        anyhow::ensure!(!shutdown.is_cancelled(), "stopped while waiting for topic {topic}");
        if let Ok(Some(n)) = crate::kafka::partition_count(client, topic, Duration::from_secs(5)) {
            return Ok(n as i32);
        }
        tracing::info!(topic, "waiting for the topic to exist");
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Creates the state topic (as many partitions as the input: partition p's
/// state lives in partition p) and the page-totals topic, both compacted,
/// unless they exist; returns the input's partition count.
fn ensure_topics(cfg: &Config, topics: &Topics, shutdown: &CancellationToken) -> anyhow::Result<i32> {
    let k = &cfg.kafka;
    let properties = k.properties.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    let c = crate::kafka::client_config(&k.brokers, &[], properties);
    let admin: AdminClient<crate::kafka::Logged> = c
        .create_with_context(crate::kafka::Logged)
        .map_err(|e| anyhow::anyhow!("cannot create the admin client: {}", crate::kafka::creation_error(&e)))?;
    let input = partition_count(admin.inner(), &k.topic, shutdown)?;
    let state = NewTopic::new(&topics.state, input, TopicReplication::Fixed(-1))
        .set("cleanup.policy", "compact")
        .set("max.message.bytes", "1048576");
    let totals =
        NewTopic::new(&topics.totals, input.min(6), TopicReplication::Fixed(-1)).set("cleanup.policy", "compact");
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let results = runtime.block_on(admin.create_topics([&state, &totals], &opts)).context("creating shard topics")?;
    for r in results {
        match r {
            Ok(t) => tracing::info!(topic = %t, "created"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, e)) => anyhow::bail!("cannot create topic {t}: {e}"),
        }
    }
    let state_partitions = partition_count(admin.inner(), &topics.state, shutdown)?;
    anyhow::ensure!(
        state_partitions == input,
        "the state topic {} has {state_partitions} partitions and the input {} has {input}: they must match",
        topics.state,
        k.topic
    );
    Ok(input)
}
