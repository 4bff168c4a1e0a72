//! Messages the daemon writes to Kafka: dead letters (invalid or rejected
//! events, copied unchanged with the reason in a header) and rank-change
//! events. Sending never blocks consumption: the producer's queue is
//! bounded, and a message that does not fit is dropped and counted.
//!
//! One instance of a fleet publishes the rank events: every replica in
//! replica mode (each is a fleet of one), the owner of input partition 0 in
//! shard mode, which moves with that partition (docs/scaling.md#rank-change-events).
//! The publisher can read back what the topic holds since an instant, for
//! the instance that takes the publishing over.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};

use crate::config::KafkaConfig;
use crate::serve::metrics::Metrics;
use crate::serve::metrics::labels::{Delivery, Topic};
use crate::telemetry::events::{ClientError, DeliveryFailed, InternalEvent, Produced};

/// Counts deliveries (the per-message opaque value is the [`Topic`]) and
/// logs failed ones, at most one line per [`FAILURE_LOG_EVERY`].
pub struct Deliveries(Arc<Metrics>, std::sync::Mutex<Option<std::time::Instant>>);

/// How often a failed delivery is logged at most (all are counted).
const FAILURE_LOG_EVERY: Duration = Duration::from_secs(10);

impl ClientContext for Deliveries {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        crate::kafka::log(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        ClientError { error: &error, reason }.emit(&self.0);
    }
}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = Box<Topic>;

    fn delivery(&self, result: &DeliveryResult<'_>, topic: Box<Topic>) {
        let delivery = if result.is_ok() { Delivery::Delivered } else { Delivery::Failed };
        if let Err((error, message)) = result {
            let mut last = self.1.lock().unwrap_or_else(|e| e.into_inner());
            if last.is_none_or(|at| at.elapsed() >= FAILURE_LOG_EVERY) {
                *last = Some(std::time::Instant::now());
                DeliveryFailed { kind: *topic, topic: rdkafka::Message::topic(message), error }.emit(&self.0);
            }
        }
        Produced(*topic, delivery).emit(&self.0);
    }
}

/// The producer's settings: its queue bounded by count and by bytes (a
/// dead letter can be as large as `events.max_payload_bytes`), so a slow
/// or absent broker costs at most `kafka.producer_queue_kbytes` of memory.
fn producer_config(cfg: &KafkaConfig) -> ClientConfig {
    let messages = cfg.producer_queue_messages.to_string();
    let kbytes = cfg.producer_queue_kbytes.to_string();
    let defaults = [
        ("client.id", "engagement-monitor-publisher"),
        ("queue.buffering.max.messages", messages.as_str()),
        ("queue.buffering.max.kbytes", kbytes.as_str()),
        ("linger.ms", "20"),
        ("compression.type", "lz4"),
        ("message.timeout.ms", "60000"),
    ];
    let properties = cfg.properties.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    crate::kafka::client_config(&cfg.brokers, &defaults, properties)
}

/// Where dead letters and rank events go; a missing topic disables that kind.
pub struct Publisher {
    producer: Option<ThreadedProducer<Deliveries>>,
    dead_letter_topic: Option<String>,
    rank_events_topic: Option<String>,
    /// Whether this instance publishes the rank events (see the module docs).
    publishing: AtomicBool,
    kafka: KafkaConfig,
    metrics: Arc<Metrics>,
}

/// Where an invalid event came from, for the dead-letter headers.
pub struct Origin<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<&'a [u8]>,
}

impl Publisher {
    pub fn new(cfg: &KafkaConfig, metrics: Arc<Metrics>) -> Result<Publisher, KafkaError> {
        let producer = if cfg.dead_letter_topic.is_some() || cfg.rank_events_topic.is_some() {
            Some(producer_config(cfg).create_with_context(Deliveries(metrics.clone(), Default::default()))?)
        } else {
            None
        };
        let publishing = cfg.rank_events_topic.is_some();
        metrics.ranking.publishing.set(i64::from(publishing));
        Ok(Publisher {
            producer,
            dead_letter_topic: cfg.dead_letter_topic.clone(),
            rank_events_topic: cfg.rank_events_topic.clone(),
            publishing: AtomicBool::new(publishing),
            kafka: cfg.clone(),
            metrics,
        })
    }

    /// Makes this instance the fleet's rank-event publisher, or not: when
    /// it stops, what it queued is flushed first (for at most `flush`).
    /// Says whether that changed anything.
    pub fn set_publishing(&self, on: bool, flush: Duration) -> bool {
        let on = on && self.rank_events_topic.is_some();
        if on == self.publishing.load(Relaxed) {
            return false;
        }
        if !on {
            self.flush(flush);
        }
        self.publishing.store(on, Relaxed);
        self.metrics.ranking.publishing.set(i64::from(on));
        true
    }

    /// Whether this instance publishes the rank events now.
    pub fn publishing(&self) -> bool {
        self.publishing.load(Relaxed)
    }

    /// The rank events the topic holds with a timestamp from `since` on,
    /// read to the end of every partition within `timeout`. Blocking.
    pub fn rank_events_since(&self, since: SystemTime, timeout: Duration) -> anyhow::Result<Vec<Vec<u8>>> {
        let Some(topic) = self.rank_events_topic.as_deref() else { return Ok(Vec::new()) };
        let deadline = Instant::now() + timeout;
        let properties = self.kafka.properties.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        let defaults = [("client.id", "engagement-monitor-rank-events-reader"), ("enable.auto.commit", "false")];
        let mut config = crate::kafka::client_config(&self.kafka.brokers, &defaults, properties);
        config.set("group.id", format!("{}-rank-events-reader", self.kafka.group_id));
        let consumer: BaseConsumer<crate::kafka::Logged> = config
            .create_with_context(crate::kafka::Logged)
            .map_err(|e| anyhow::anyhow!("cannot create the reader: {}", crate::kafka::creation_error(&e)))?;
        let metadata = consumer.fetch_metadata(Some(topic), timeout).context("the rank-events topic's metadata")?;
        let partitions: Vec<i32> =
            metadata.topics().iter().flat_map(|t| t.partitions().iter().map(|p| p.id())).collect();
        let since_ms = since.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        let mut at = TopicPartitionList::new();
        for &p in &partitions {
            at.add_partition_offset(topic, p, Offset::Offset(since_ms))?;
        }
        let starts = consumer.offsets_for_times(at, timeout).context("the offsets of that instant")?;
        let mut ends = std::collections::HashMap::new();
        for &p in &partitions {
            let (_, high) = consumer.fetch_watermarks(topic, p, timeout).context("the topic's ends")?;
            ends.insert(p, high);
        }
        let mut assign = TopicPartitionList::new();
        let mut pending = std::collections::HashMap::new();
        for e in starts.elements() {
            let high = ends.get(&e.partition()).copied().unwrap_or(0);
            // No message that late: the offset is the end (or unknown).
            let start = match e.offset() {
                Offset::Offset(o) if o < high => o,
                _ => continue,
            };
            assign.add_partition_offset(topic, e.partition(), Offset::Offset(start))?;
            pending.insert(e.partition(), high);
        }
        let mut out = Vec::new();
        if pending.is_empty() {
            return Ok(out);
        }
        consumer.assign(&assign)?;
        while !pending.is_empty() {
            anyhow::ensure!(Instant::now() < deadline, "timed out reading the rank-events topic");
            let Some(m) = consumer.poll(Duration::from_millis(200)) else { continue };
            let m = m.context("reading the rank-events topic")?;
            if let Some(v) = m.payload() {
                out.push(v.to_vec());
            }
            if pending.get(&m.partition()).is_some_and(|high| m.offset() + 1 >= *high) {
                pending.remove(&m.partition());
            }
        }
        Ok(out)
    }

    /// Copies an event that was not applied to the dead-letter topic.
    pub fn dead_letter(&self, payload: &[u8], origin: &Origin<'_>, reason: &'static str) {
        let Some(topic) = self.dead_letter_topic.as_deref() else {
            return;
        };
        let partition = origin.partition.to_string();
        let offset = origin.offset.to_string();
        let headers = OwnedHeaders::new_with_capacity(4)
            .insert(Header { key: "reason", value: Some(reason) })
            .insert(Header { key: "source_topic", value: Some(origin.topic) })
            .insert(Header { key: "source_partition", value: Some(&partition) })
            .insert(Header { key: "source_offset", value: Some(&offset) });
        let mut record =
            BaseRecord::with_opaque_to(topic, Box::new(Topic::DeadLetter)).payload(payload).headers(headers);
        if let Some(k) = origin.key {
            record = record.key(k);
        }
        self.send(Topic::DeadLetter, record);
    }

    /// Publishes one rank-change event, keyed by `platform/page_id`, when
    /// this instance is the fleet's publisher.
    pub fn rank_event(&self, key: &str, json: &[u8]) {
        let Some(topic) = self.rank_events_topic.as_deref().filter(|_| self.publishing()) else {
            return;
        };
        let record = BaseRecord::with_opaque_to(topic, Box::new(Topic::RankEvent)).payload(json).key(key.as_bytes());
        self.send(Topic::RankEvent, record);
    }

    fn send(&self, topic: Topic, record: BaseRecord<'_, [u8], [u8], Box<Topic>>) {
        let Some(p) = &self.producer else { return };
        let delivery = match p.send(record) {
            Ok(()) => Delivery::Queued,
            Err(_) => Delivery::Dropped,
        };
        Produced(topic, delivery).emit(&self.metrics);
    }

    /// Waits up to `timeout` for queued messages to be delivered.
    pub fn flush(&self, timeout: Duration) {
        if let Some(p) = &self.producer {
            let _ = p.flush(timeout);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn the_queue_is_bounded_by_count_and_bytes() {
        let mut cfg = Config::default().kafka;
        cfg.producer_queue_kbytes = 2048;
        let c = producer_config(&cfg);
        assert_eq!(c.get("queue.buffering.max.kbytes"), Some("2048"));
        assert_eq!(c.get("queue.buffering.max.messages"), Some("100000"));
    }
}
