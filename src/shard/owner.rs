//! The partitions this shard owns: Kafka's consumer group decides which
//! (cooperative-sticky assignment, static membership), and for each one
//! the shard keeps its own engine. A partition that arrives is restored
//! from the state topic and consumed from the group's committed offset
//! (never after the state, see [`state`](super::state)); one that leaves
//! is dropped whole.
//!
//! Once per ranking interval, each caught-up partition publishes the pages
//! that changed to the page-totals topic (see
//! [`global`](engagement_core::global)) and its watermark; once per
//! checkpoint interval, each partition's state is saved to the state topic
//! and, once the broker acknowledged it, its offset is committed.

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaResult;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::{BaseRecord, ThreadedProducer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use engagement_core::engine::{Engine, Outcome};
use engagement_core::event::{DecodeContext, Invalid, decode};
use engagement_core::global::{PageRecord, page_key};
use engagement_core::window::Millis;

use super::state::{self, StateWriter};
use super::{Shared, Topics, watermark_key};
use crate::metrics::labels::Attempt;
use crate::publisher::Origin;
use crate::telemetry::events::{
    ClientError, CommitNotSent, Committed, ConsumerError, EventNotApplied, InternalEvent, LagObserved, NotApplied,
    OutcomesCounted,
};
use crate::telemetry::shard::{PartitionRestored, PartitionsMoved, ShardProgress, StateSaved};

/// Least time between two ticks.
const TICK: Duration = Duration::from_millis(200);
/// How long a state save or restore may take before it is given up.
const STATE_TIMEOUT: Duration = Duration::from_secs(60);

/// A change of assignment, noted by the group callbacks and handled by
/// the loop right after the poll that ran them.
enum Moved {
    Assigned(Vec<i32>),
    Revoked(Vec<i32>),
}

struct Ctx {
    parts: Arc<crate::metrics::Metrics>,
    moved: Mutex<Vec<Moved>>,
}

impl ClientContext for Ctx {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        crate::kafka::log(level, fac, message);
    }

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        ClientError { error: &error, reason }.emit(&self.parts);
    }
}

fn partitions(tpl: &TopicPartitionList) -> Vec<i32> {
    tpl.elements().iter().map(|e| e.partition()).collect()
}

impl ConsumerContext for Ctx {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, r: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = r {
            self.moved.lock().unwrap_or_else(|e| e.into_inner()).push(Moved::Revoked(partitions(tpl)));
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, r: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = r {
            self.moved.lock().unwrap_or_else(|e| e.into_inner()).push(Moved::Assigned(partitions(tpl)));
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, _: &TopicPartitionList) {
        Committed(if result.is_ok() { Attempt::Ok } else { Attempt::Failed }).emit(&self.parts);
    }
}

/// One owned partition.
struct Part {
    engine: Engine,
    /// The next input offset to apply.
    next: i64,
    /// The slot of the state topic the last save (or the restore) used.
    slot: u8,
    /// The input offset the state topic holds the state up to.
    saved: i64,
    /// The watermark last published for this partition.
    published_wm: Option<Millis>,
    caught_up: bool,
}

/// What the owner needs from the daemon.
pub struct OwnerParts {
    pub config: Arc<crate::config::Config>,
    pub metrics: Arc<crate::metrics::Metrics>,
    pub publisher: Arc<crate::publisher::Publisher>,
    pub shutdown: tokio_util::sync::CancellationToken,
}

/// The loop's state.
pub struct Owner {
    consumer: Arc<BaseConsumer<Ctx>>,
    parts: HashMap<i32, Part>,
    writer: StateWriter,
    totals: ThreadedProducer<crate::kafka::Logged>,
    topics: Topics,
    io: OwnerParts,
    shared: Arc<Shared>,
    cx: DecodeContext,
    tally: [u64; Outcome::EACH.len()],
    assigned_once: bool,
    /// Page records sent since the last progress report.
    records: u64,
    next_publish: Instant,
    next_save: Instant,
}

impl Owner {
    pub fn new(io: OwnerParts, topics: Topics, shared: Arc<Shared>) -> anyhow::Result<Owner> {
        let cfg = &io.config;
        let k = &cfg.kafka;
        let instance = cfg.cluster.instance_id();
        // Replica mode's consumer settings (offsets stored and committed by
        // the daemon only, fetches sized for throughput), then the group's.
        let mut defaults = super::reader_defaults("engagement-monitor-shard");
        defaults.push(("partition.assignment.strategy", "cooperative-sticky"));
        let properties = k.properties.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        let mut config = crate::kafka::client_config(&k.brokers, &defaults, properties);
        config.set("group.id", &k.group_id).set("group.instance.id", &instance);
        let ctx = Ctx { parts: io.metrics.clone(), moved: Mutex::default() };
        let consumer: BaseConsumer<Ctx> = config
            .create_with_context(ctx)
            .map_err(|e| anyhow::anyhow!("cannot create the Kafka consumer: {}", crate::kafka::creation_error(&e)))?;
        consumer.subscribe(&[&k.topic])?;
        let writer = StateWriter::new(k, topics.state.clone())?;
        let totals_defaults =
            [("client.id", "engagement-monitor-totals"), ("compression.type", "lz4"), ("linger.ms", "20")];
        let properties = k.properties.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        let totals = crate::kafka::client_config(&k.brokers, &totals_defaults, properties)
            .create_with_context(crate::kafka::Logged)
            .map_err(|e| anyhow::anyhow!("cannot create the totals producer: {}", crate::kafka::creation_error(&e)))?;
        let cx = DecodeContext {
            message_time: None,
            now: 0,
            max_skew: i64::try_from(cfg.events.max_future_skew.as_millis()).unwrap_or(i64::MAX),
            max_payload_bytes: cfg.events.max_payload_bytes,
        };
        tracing::info!(instance = %instance, group = %k.group_id, topic = %k.topic, state = %topics.state,
            totals = %topics.totals, "shard mode: joining the group");
        let (now, checkpoint_interval) = (Instant::now(), cfg.state.checkpoint_interval);
        Ok(Owner {
            consumer: Arc::new(consumer),
            parts: HashMap::new(),
            writer,
            totals,
            topics,
            io,
            shared,
            cx,
            tally: [0; Outcome::EACH.len()],
            assigned_once: false,
            records: 0,
            next_publish: now,
            next_save: now + checkpoint_interval,
        })
    }

    /// Consumes until shutdown, then saves every partition and commits.
    pub fn run(&mut self) -> anyhow::Result<()> {
        let mut next_tick = Instant::now();
        while !self.io.shutdown.is_cancelled() {
            let consumer = self.consumer.clone();
            let polled = consumer.poll(Duration::from_millis(100));
            self.moved()?;
            self.cx.now = now_ms();
            match polled {
                Some(Ok(m)) => self.apply(&m),
                Some(Err(e)) => ConsumerError(&e).emit(&self.io.metrics),
                None => {}
            }
            if Instant::now() >= next_tick {
                self.tick();
                next_tick = Instant::now() + TICK;
            }
        }
        self.save_all();
        Ok(())
    }

    /// Handles the assignment changes the last poll made.
    fn moved(&mut self) -> anyhow::Result<()> {
        let moved = std::mem::take(&mut *self.consumer.context().moved.lock().unwrap_or_else(|e| e.into_inner()));
        for m in moved {
            self.assigned_once = true;
            match m {
                Moved::Revoked(ps) => {
                    for p in &ps {
                        self.parts.remove(p);
                    }
                    let topic = &self.io.config.kafka.topic;
                    PartitionsMoved { topic, assigned: false, partitions: &ps, owned: self.parts.len() }
                        .emit(&self.io.metrics);
                }
                Moved::Assigned(ps) => {
                    for &p in &ps {
                        self.restore(p)?;
                    }
                    let topic = &self.io.config.kafka.topic;
                    PartitionsMoved { topic, assigned: true, partitions: &ps, owned: self.parts.len() }
                        .emit(&self.io.metrics);
                }
            }
        }
        Ok(())
    }

    /// Restores partition `p` from the state topic and seeks it to the
    /// offset its state covers (or the group's committed offset, which is
    /// never ahead of the state).
    fn restore(&mut self, p: i32) -> anyhow::Result<()> {
        let started = Instant::now();
        let limits = self.io.config.engine;
        let cfg = &self.io.config.kafka;
        let restored = state::restore(cfg, &self.topics.state, p, limits, STATE_TIMEOUT)
            .map_err(|e| anyhow::anyhow!("restoring partition {p} from {}: {e:#}", self.topics.state))?;
        let restored_any = restored.is_some();
        let (mut engine, next, slot) = match restored {
            Some(r) => (r.engine, r.next_offset, r.slot),
            None => (Engine::new(limits), 0, 1),
        };
        engine.track_changes();
        let committed = self.committed(p);
        // The state covers the input up to `next`: messages before it are
        // skipped (the group's committed offset is never ahead of it).
        // Without a state, the partition starts where the group left it.
        let start = if restored_any { next } else { committed.unwrap_or(0) };
        if !restored_any && committed.is_some_and(|c| c > 0) {
            tracing::warn!(partition = p, committed = ?committed, topic = %self.topics.state,
                "no state for a partition the group has consumed: its earlier events are missing from the totals");
        }
        let posts = engine.usage().posts;
        PartitionRestored { partition: p, state_offset: next, start, posts, took: started.elapsed() }
            .emit(&self.io.metrics);
        self.parts.insert(p, Part { engine, next: start, slot, saved: next, published_wm: None, caught_up: false });
        Ok(())
    }

    fn committed(&self, p: i32) -> Option<i64> {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&self.io.config.kafka.topic, p);
        let c = self.consumer.committed_offsets(tpl, Duration::from_secs(10)).ok()?;
        match c.find_partition(&self.io.config.kafka.topic, p)?.offset() {
            Offset::Offset(o) => Some(o),
            _ => None,
        }
    }

    fn apply(&mut self, m: &BorrowedMessage<'_>) {
        let p = m.partition();
        let Some(part) = self.parts.get_mut(&p) else { return };
        if m.offset() < part.next {
            // Already in the restored state: applying again would change
            // nothing but the counts.
            return;
        }
        part.next = m.offset() + 1;
        let payload = m.payload().unwrap_or_default();
        self.cx.message_time = m.timestamp().to_millis();
        let outcome = match decode(payload, &self.cx) {
            Ok(ev) => part.engine.apply(&ev),
            Err(Invalid(reason)) => {
                self.not_applied(m, NotApplied::Invalid(reason));
                Outcome::Invalid
            }
        };
        if let Outcome::Rejected(bound) = outcome {
            self.not_applied(m, NotApplied::Rejected(bound));
        }
        self.tally[outcome.index()] += 1;
    }

    fn not_applied(&self, m: &BorrowedMessage<'_>, why: NotApplied) {
        let (partition, offset) = (m.partition(), m.offset());
        EventNotApplied { why, partition, offset }.emit(&self.io.metrics);
        let origin = Origin { topic: &self.io.config.kafka.topic, partition, offset, key: m.key() };
        self.io.publisher.dead_letter(m.payload().unwrap_or_default(), &origin, why.reason());
    }

    /// Counts, follows the topic's watermark, notes lag, publishes and saves when due.
    fn tick(&mut self) {
        OutcomesCounted(&std::mem::take(&mut self.tally)).emit(&self.io.metrics);
        let own = self.parts.values().filter_map(|p| p.engine.watermark()).max();
        let global = self.shared.watermark().max(own);
        let ready_max_lag = self.io.config.ranking.ready_max_lag;
        let mut behind = 0;
        let mut newly_caught_up = false;
        for (&p, part) in &mut self.parts {
            if let Some(wm) = global {
                part.engine.advance_to(wm);
            }
            let high = self.consumer.fetch_watermarks(&self.io.config.kafka.topic, p, Duration::from_secs(1));
            let lag = high.map_or(u64::MAX, |(_, high)| (high - part.next).max(0) as u64);
            if lag != u64::MAX {
                LagObserved { topic: &self.io.config.kafka.topic, partition: p, lag: lag as i64 }
                    .emit(&self.io.metrics);
            }
            newly_caught_up |= !part.caught_up && lag <= ready_max_lag;
            part.caught_up = part.caught_up || lag <= ready_max_lag;
            behind += lag.min(u64::MAX / 1024);
        }
        self.shared.behind.store(behind, Relaxed);
        let unsaved = self.parts.values().map(|p| (p.next - p.saved).max(0) as u64).sum();
        let posts = self.parts.values().map(|p| p.engine.usage().posts).sum();
        ShardProgress { posts, unsaved, records: std::mem::take(&mut self.records) }.emit(&self.io.metrics);
        let ready = self.assigned_once && self.parts.values().all(|p| p.caught_up);
        self.shared.owned_ready.store(ready, Relaxed);
        let now = Instant::now();
        // A partition that has just caught up publishes at once: readiness
        // waits for its pages.
        if now >= self.next_publish || newly_caught_up {
            self.publish();
            self.next_publish = now + self.io.config.ranking.interval;
        }
        if now >= self.next_save {
            self.save_all();
            self.next_save = Instant::now() + self.io.config.state.checkpoint_interval;
        }
    }

    /// Publishes the changed pages and the watermark of each caught-up partition.
    fn publish(&mut self) {
        let topic = &self.topics.totals;
        for (&p, part) in &mut self.parts {
            if !part.caught_up {
                continue;
            }
            let changed = part.engine.take_changes();
            for (platform, id) in &changed.freed {
                let key = page_key(platform, id);
                let _ = crate::kafka::send_waiting(&self.totals, BaseRecord::<_, [u8], _>::to(topic).key(&key));
                self.records += 1;
            }
            let snap = part.engine.snapshot();
            for page in changed.pages {
                let Some(rec) = PageRecord::of(&snap, page, p as u32) else { continue };
                let (key, value) = (rec.key(), rec.encode());
                let _ = crate::kafka::send_waiting(&self.totals, BaseRecord::to(topic).key(&key).payload(&value));
                self.records += 1;
            }
            let wm = part.engine.watermark();
            if wm.is_some() && wm != part.published_wm {
                let value = wm.unwrap_or_default().to_le_bytes();
                let key = watermark_key(p);
                if crate::kafka::send_waiting(&self.totals, BaseRecord::to(topic).key(&key).payload(&value)).is_ok() {
                    part.published_wm = wm;
                }
            }
        }
    }

    /// Saves every partition whose state moved, then commits each owned
    /// partition's saved offset (again when unchanged: a commit refused
    /// during a rebalance is repaired by the next).
    fn save_all(&mut self) {
        let mut commit = TopicPartitionList::new();
        for (&p, part) in &mut self.parts {
            if part.next > part.saved {
                let mut bytes = Vec::new();
                let slot = 1 - part.slot;
                let saved = part
                    .engine
                    .durable_snapshot()
                    .encode(&mut bytes)
                    .map_err(anyhow::Error::from)
                    .and_then(|()| self.writer.save(p, slot, &bytes, part.next, STATE_TIMEOUT));
                StateSaved { partition: p, bytes: bytes.len(), error: saved.as_ref().err() }.emit(&self.io.metrics);
                if saved.is_ok() {
                    part.slot = slot;
                    part.saved = part.next;
                }
            }
            if part.saved > 0 {
                let _ = commit.add_partition_offset(&self.io.config.kafka.topic, p, Offset::Offset(part.saved));
            }
        }
        if commit.count() > 0 {
            let native = self.consumer.client().native_ptr();
            if let Err(code) = crate::ingest::commit_async(native, commit.ptr()) {
                CommitNotSent(&rdkafka::error::KafkaError::ConsumerCommit(code)).emit(&self.io.metrics);
            }
        }
    }
}

fn now_ms() -> Millis {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}
