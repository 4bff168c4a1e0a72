//! Messages the daemon writes to Kafka: dead letters (invalid or rejected
//! events, copied unchanged with the reason in a header) and rank-change
//! events. Sending never blocks consumption: the producer's queue is
//! bounded, and a message that does not fit is dropped and counted.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};

use crate::config::KafkaConfig;
use crate::metrics::Metrics;
use crate::metrics::labels::{Delivery, Topic};
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
        Ok(Publisher {
            producer,
            dead_letter_topic: cfg.dead_letter_topic.clone(),
            rank_events_topic: cfg.rank_events_topic.clone(),
            metrics,
        })
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

    /// Publishes one rank-change event, keyed by `platform/page_id`.
    pub fn rank_event(&self, key: &str, json: &[u8]) {
        let Some(topic) = self.rank_events_topic.as_deref() else {
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
