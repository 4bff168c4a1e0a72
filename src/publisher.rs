//! Messages the daemon writes to Kafka: dead letters (invalid or refused
//! events, copied unchanged with the reason in a header) and rank-change
//! events (SPEC §5). Sending never blocks consumption: the producer's queue
//! is bounded, and a message that does not fit is dropped and counted.

use std::sync::Arc;

use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use std::time::Duration;

use crate::config::KafkaConfig;
use crate::metrics::Metrics;

/// Which topic a message is for (a metric label value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    DeadLetter,
    RankEvent,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::DeadLetter => "dead_letter",
            Kind::RankEvent => "rank_event",
        }
    }
}

/// Counts deliveries; the per-message opaque value is the [`Kind`].
pub struct Deliveries(Arc<Metrics>);

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = Box<Kind>;

    fn delivery(&self, result: &DeliveryResult<'_>, kind: Box<Kind>) {
        let outcome = if result.is_ok() { "delivered" } else { "failed" };
        self.0.produced.with_label_values(&[kind.as_str(), outcome]).inc();
    }
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
            let mut c = ClientConfig::new();
            c.set("bootstrap.servers", &cfg.brokers)
                .set("client.id", "engagement-monitor-publisher")
                .set("queue.buffering.max.messages", cfg.producer_queue_messages.to_string())
                .set("linger.ms", "20")
                .set("compression.type", "lz4")
                .set("message.timeout.ms", "60000");
            for (k, v) in &cfg.properties {
                c.set(k, v);
            }
            Some(c.create_with_context(Deliveries(metrics.clone()))?)
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

    pub fn dead_letters_enabled(&self) -> bool {
        self.dead_letter_topic.is_some()
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
            BaseRecord::with_opaque_to(topic, Box::new(Kind::DeadLetter)).payload(payload).headers(headers);
        if let Some(k) = origin.key {
            record = record.key(k);
        }
        self.send(Kind::DeadLetter, record);
    }

    /// Publishes one rank-change event, keyed by `platform/page_id`.
    pub fn rank_event(&self, key: &str, json: &[u8]) {
        let Some(topic) = self.rank_events_topic.as_deref() else {
            return;
        };
        let record = BaseRecord::with_opaque_to(topic, Box::new(Kind::RankEvent)).payload(json).key(key.as_bytes());
        self.send(Kind::RankEvent, record);
    }

    fn send(&self, kind: Kind, record: BaseRecord<'_, [u8], [u8], Box<Kind>>) {
        let Some(p) = &self.producer else { return };
        let result = match p.send(record) {
            Ok(()) => "queued",
            Err(_) => "dropped",
        };
        self.metrics.produced.with_label_values(&[kind.as_str(), result]).inc();
    }

    /// Waits up to `timeout` for queued messages to be delivered.
    pub fn flush(&self, timeout: Duration) {
        if let Some(p) = &self.producer {
            let _ = p.flush(timeout);
        }
    }
}
