//! `engagement-monitor repartition`: copies a topic into one keyed by page
//! (each event's `page_id`, as the specification asks of producers), so that
//! every page's events land in one partition. Producers that cannot key by
//! page run it once to move history into a page-keyed topic (docs/cli.md).
//!
//! What the source holds when the command starts is copied: every
//! partition from its first retained offset to the end it had then, in
//! order within each source partition, with values, timestamps and headers
//! kept. A value whose `page_id` cannot be read (not JSON, no such string
//! field) keeps its original key: the daemon dead-letters it as it would
//! have in the source topic. The copy is not transactional: run it again
//! into a fresh topic if it fails half way.

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

use crate::kafka::{DeliveryCount, Logged, client_config, creation_error, send_waiting};

#[derive(Debug, Clone)]
pub struct Options {
    pub brokers: String,
    pub from: String,
    pub to: String,
    /// Partitions of the target when it has to be created (default: as
    /// many as the source).
    pub partitions: Option<i32>,
    pub properties: Vec<(String, String)>,
}

/// What was copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub copied: u64,
    /// Copied with their original key: no `page_id` could be read.
    pub unkeyed: u64,
    pub failed: u64,
    pub elapsed: Duration,
}

/// The key of an event: its `page_id`, when the value is a JSON object
/// with a string `page_id` (other fields are skipped unread).
pub fn page_key(value: &[u8]) -> Option<Cow<'_, str>> {
    #[derive(serde::Deserialize)]
    struct Keyed<'a> {
        #[serde(borrow)]
        page_id: Option<Cow<'a, str>>,
    }
    serde_json::from_slice::<Keyed<'_>>(value).ok()?.page_id
}

/// The partitions of `topic` and the end offset each had, for those with
/// records.
fn ends(consumer: &BaseConsumer<Logged>, topic: &str) -> anyhow::Result<(i32, HashMap<i32, i64>)> {
    let timeout = Duration::from_secs(10);
    let metadata = consumer.fetch_metadata(Some(topic), timeout).context("reading the source topic's metadata")?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    anyhow::ensure!(!partitions.is_empty(), "topic {topic} does not exist or has no partitions");
    let mut ends = HashMap::new();
    for &p in &partitions {
        let (low, high) = consumer.fetch_watermarks(topic, p, timeout).context("reading the source's offsets")?;
        if high > low {
            ends.insert(p, high);
        }
    }
    Ok((partitions.len() as i32, ends))
}

/// Copies `opts.from` into `opts.to` keyed by page; returns when every
/// copied record is acknowledged or failed.
pub fn run(opts: &Options) -> anyhow::Result<Summary> {
    anyhow::ensure!(opts.from != opts.to, "the source and the target must be different topics");
    let props = || opts.properties.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    let consumer_defaults = [
        ("group.id", "engagement-monitor-repartition"),
        ("enable.auto.commit", "false"),
        ("enable.partition.eof", "false"),
        ("isolation.level", "read_committed"),
    ];
    let consumer: BaseConsumer<Logged> = client_config(&opts.brokers, &consumer_defaults, props())
        .create_with_context(Logged)
        .map_err(|e| anyhow::anyhow!("cannot create the consumer: {}", creation_error(&e)))?;
    let (partitions, remaining) = ends(&consumer, &opts.from)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let target_partitions = opts.partitions.unwrap_or(partitions);
    runtime.block_on(crate::tools::produce::ensure_topic(
        &opts.brokers,
        &opts.to,
        target_partitions,
        &opts.properties,
    ))?;

    let producer_defaults = [
        ("enable.idempotence", "true"),
        ("compression.type", "lz4"),
        ("linger.ms", "20"),
        ("queue.buffering.max.kbytes", "1048576"),
    ];
    let producer: ThreadedProducer<DeliveryCount> = client_config(&opts.brokers, &producer_defaults, props())
        .create_with_context(DeliveryCount::default())
        .map_err(|e| anyhow::anyhow!("cannot create the producer: {}", creation_error(&e)))?;

    let mut tpl = TopicPartitionList::new();
    for &p in remaining.keys() {
        tpl.add_partition_offset(&opts.from, p, Offset::Beginning)?;
    }
    consumer.assign(&tpl).context("assigning the source partitions")?;
    let started = Instant::now();
    let (copied, unkeyed) = copy(&consumer, &producer, remaining, &opts.to)?;
    producer.flush(Duration::from_secs(120)).context("waiting for the broker to acknowledge the copy")?;
    let failed = producer.context().failed();
    Ok(Summary { copied, unkeyed, failed, elapsed: started.elapsed() })
}

/// Reads the assigned partitions until each reaches its end in
/// `remaining`, sending every record to `to` keyed by page; returns the
/// records copied and those that kept their key.
fn copy(
    consumer: &BaseConsumer<Logged>,
    producer: &ThreadedProducer<DeliveryCount>,
    mut remaining: HashMap<i32, i64>,
    to: &str,
) -> anyhow::Result<(u64, u64)> {
    let (mut copied, mut unkeyed) = (0u64, 0u64);
    while !remaining.is_empty() {
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            // A partition may end with records that are never delivered
            // (transaction markers, aborted records): its position says so.
            for p in consumer.position()?.elements() {
                if let Offset::Offset(at) = p.offset() {
                    if remaining.get(&p.partition()).is_some_and(|end| at >= *end) {
                        remaining.remove(&p.partition());
                    }
                }
            }
            continue;
        };
        let message = message.context("reading the source topic")?;
        let Some(&end) = remaining.get(&message.partition()) else { continue };
        if message.offset() >= end {
            remaining.remove(&message.partition());
            continue;
        }
        let key = page_key(message.payload().unwrap_or_default());
        unkeyed += u64::from(key.is_none());
        // A null value (a tombstone) stays null.
        let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(to);
        record.payload = message.payload();
        record.key = key.as_deref().map(str::as_bytes).or(message.key());
        record.timestamp = message.timestamp().to_millis();
        record.headers = message.headers().map(rdkafka::message::BorrowedHeaders::detach);
        send_waiting(producer, record).context("producing to the target topic")?;
        copied += 1;
        if message.offset() + 1 >= end {
            remaining.remove(&message.partition());
        }
    }
    Ok((copied, unkeyed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_the_page_id_when_it_can_be_read() {
        assert_eq!(
            page_key(br#"{"post_id":"p","page_id":"whitehouse","x":[1,{"y":2}]}"#).as_deref(),
            Some("whitehouse")
        );
        assert_eq!(page_key(br#"{"page_id":"a\"b\u00e9"}"#).as_deref(), Some("a\"bé"));
        for bad in [&b"not json"[..], br#"{"page_id":7}"#, br#"{"post_id":"p"}"#, br#"[1]"#, b""] {
            assert_eq!(page_key(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }
}
