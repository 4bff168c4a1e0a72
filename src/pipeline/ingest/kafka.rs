//! The Kafka side of ingest, and the only ingest code that talks to
//! rdkafka: the consumer's settings, assignment, polling batches, partition
//! ends (watermarks), the consumer's position and offset commits.
//!
//! Every partition of the topic is assigned to this instance by hand (the
//! ranking is global, see docs/operations.md#instances-and-offsets), so the
//! group id never splits partitions: it only carries committed offsets for
//! lag monitoring.

use std::ffi::CString;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::fetch_queue::{FetchQueue, MessageBatch};
use super::{Feed, Offsets, Record, Source};
use crate::config::KafkaConfig;
use crate::kafka::{CONSUMER_DEFAULTS, cached_ends};
use crate::serve::metrics::Metrics;
use crate::serve::metrics::labels::Attempt;
use crate::telemetry::events::{ClientError, CommitNotSent, Committed, ConsumerError, InternalEvent};
use engagement_core::engine::recycle;

/// Counts client errors and commit results, and notes when librdkafka
/// says that no broker can be reached.
struct Ctx(Arc<Metrics>, Arc<AtomicBool>);

impl ClientContext for Ctx {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        crate::kafka::log(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if crate::kafka::is_all_brokers_down(&error) {
            self.1.store(true, Relaxed);
        }
        ClientError { error: &error, reason }.emit(&self.0);
    }
}

impl ConsumerContext for Ctx {
    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        Committed(if result.is_ok() { Attempt::Ok } else { Attempt::Failed }).emit(&self.0);
    }
}

/// The client, shared by the source (ingest thread) and its feed (fetch
/// thread); librdkafka's handles are thread-safe.
struct Client {
    /// Declared before the consumer: dropped while the client still lives.
    fetched: FetchQueue,
    consumer: BaseConsumer<Ctx>,
    topic: String,
    topic_c: CString,
    metrics: Arc<Metrics>,
    /// Set by the client's callbacks when no broker can be reached.
    brokers_down: Arc<AtomicBool>,
}

impl Client {
    fn consumer_error(&self, e: KafkaError) {
        if crate::kafka::is_all_brokers_down(&e) {
            self.brokers_down.store(true, Relaxed);
        }
        ConsumerError(&e).emit(&self.metrics);
    }
}

/// The topic, consumed through librdkafka.
pub struct KafkaSource {
    client: Arc<Client>,
}

impl KafkaSource {
    pub fn new(cfg: &KafkaConfig, metrics: Arc<Metrics>) -> KafkaResult<KafkaSource> {
        let properties = cfg.properties.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        let mut config = crate::kafka::client_config(&cfg.brokers, &CONSUMER_DEFAULTS, properties);
        config.set("group.id", &cfg.group_id);
        let brokers_down = Arc::new(AtomicBool::new(false));
        let consumer: BaseConsumer<Ctx> = config.create_with_context(Ctx(metrics.clone(), brokers_down.clone()))?;
        let topic_c = CString::new(cfg.topic.clone()).unwrap_or_default();
        // SAFETY: the queue is dropped before the consumer (field order).
        let fetched = unsafe { FetchQueue::new(consumer.client().native_ptr(), topic_c.clone()) }
            .ok_or_else(|| KafkaError::ClientCreation("cannot create a fetch queue".into()))?;
        let client = Client { fetched, consumer, topic: cfg.topic.clone(), topic_c, metrics, brokers_down };
        Ok(KafkaSource { client: Arc::new(client) })
    }
}

/// The polling half: runs on the fetch thread.
pub struct KafkaFeed {
    client: Arc<Client>,
    /// Storage of the last batch, kept so that polling allocates nothing.
    messages: Vec<BorrowedMessage<'static>>,
    records: Vec<Record<'static>>,
    batch: MessageBatch,
}

fn record<'a>(m: &'a BorrowedMessage<'_>) -> Record<'a> {
    Record {
        partition: m.partition(),
        offset: m.offset(),
        timestamp: m.timestamp().to_millis(),
        key: m.key(),
        payload: m.payload().unwrap_or_default(),
    }
}

impl Feed for KafkaFeed {
    fn poll(&mut self, timeout: Duration, max: usize, f: &mut dyn FnMut(&[Record<'_>])) {
        let client = &*self.client;
        // The consumer's own queue: commit results, errors and, never in
        // practice, messages of a partition not forwarded to ours.
        let mut messages: Vec<BorrowedMessage<'_>> = recycle(std::mem::take(&mut self.messages));
        while messages.len() < max {
            match client.consumer.poll(Duration::ZERO) {
                Some(Ok(m)) => messages.push(m),
                Some(Err(e)) => client.consumer_error(e),
                None => break,
            }
        }
        let mut records: Vec<Record<'_>> = recycle(std::mem::take(&mut self.records));
        records.extend(messages.iter().map(record));
        let wait = if records.is_empty() { timeout } else { Duration::ZERO };
        if !records.is_empty() {
            f(&records);
        }
        self.records = recycle(records);
        self.messages = recycle(messages);
        client.fetched.consume(wait, max, &mut self.batch, &mut self.records, f, &mut |e| client.consumer_error(e));
    }

    fn positions(&mut self, out: &mut Vec<(i32, i64)>) {
        out.clear();
        // The client's own bookkeeping: no broker round trip.
        let Ok(positions) = self.client.consumer.position() else { return };
        for e in positions.elements_for_topic(&self.client.topic) {
            if let Offset::Offset(next) = e.offset() {
                out.push((e.partition(), next));
            }
        }
    }
}

impl Source for KafkaSource {
    type Feed = KafkaFeed;

    fn feed(&mut self) -> KafkaFeed {
        KafkaFeed {
            client: self.client.clone(),
            messages: Vec::new(),
            records: Vec::new(),
            batch: MessageBatch::default(),
        }
    }

    fn topic(&self) -> &str {
        &self.client.topic
    }

    fn partitions(&mut self) -> anyhow::Result<Option<usize>> {
        let topic = &self.client.topic;
        Ok(crate::kafka::partition_count(self.client.consumer.client(), topic, Duration::from_secs(2))?)
    }

    fn assign(&mut self, partitions: &[(i32, Option<i64>)]) -> anyhow::Result<()> {
        let mut tpl = TopicPartitionList::new();
        for (p, start) in partitions {
            if !self.client.fetched.forward(*p) {
                anyhow::bail!("cannot reach the fetch queue of partition {p}");
            }
            tpl.add_partition_offset(&self.client.topic, *p, start.map_or(Offset::Beginning, Offset::Offset))?;
        }
        Ok(self.client.consumer.incremental_assign(&tpl)?)
    }

    fn ends(&mut self, partition: i32, fetch: bool) -> Option<(i64, i64)> {
        let c = &self.client;
        if fetch {
            return c.consumer.fetch_watermarks(&c.topic, partition, Duration::from_millis(500)).ok();
        }
        cached_ends(c.consumer.client().native_ptr(), &c.topic_c, partition)
    }

    fn brokers_down(&mut self) -> bool {
        self.client.brokers_down.swap(false, Relaxed)
    }

    fn commit(&mut self, offsets: &Offsets) {
        let mut tpl = TopicPartitionList::new();
        for (p, next) in offsets {
            let _ = tpl.add_partition_offset(&self.client.topic, *p, Offset::Offset(*next));
        }
        if tpl.count() == 0 {
            return;
        }
        let native = self.client.consumer.client().native_ptr();
        if let Err(code) = super::fetch_queue::commit_async(native, tpl.ptr()) {
            CommitNotSent(&KafkaError::ConsumerCommit(code)).emit(&self.client.metrics);
        }
    }

    fn serve_until(&mut self, deadline: Instant, done: &mut dyn FnMut() -> bool) {
        while Instant::now() < deadline && !done() {
            let _ = self.client.consumer.poll(Duration::from_millis(50));
        }
    }
}
