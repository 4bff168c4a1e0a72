//! A partition's state in Kafka: the partition's engine, in the checkpoint
//! format, written to the same partition of a compacted state topic, so
//! that whichever shard owns the partition next restores it without the
//! input topic's old events (docs/scaling.md#state-that-moves).
//!
//! Layout per partition: the engine's bytes in chunks under the keys
//! `chunk/<slot>/<i>` and one `manifest` naming the slot, the chunk count,
//! the byte count and the input offset the state covers. A save writes the
//! slot the manifest does not name, waits for every chunk's acknowledgement,
//! then writes the manifest: compaction keeps the latest value of each key,
//! so the slot the manifest names is always whole.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

use crate::config::KafkaConfig;
use crate::kafka::DeliveryCount;
use engagement_core::engine::{DecodeError, Engine, Limits, STATE_VERSION};

/// Bytes per chunk: under the broker's default 1 MB record limit.
const CHUNK: usize = 512 * 1024;
const MANIFEST: &[u8] = b"manifest";
const MANIFEST_VERSION: u8 = 1;

/// A restored partition: its engine, the input offset to go on from, and
/// the slot its manifest names.
pub struct Restored {
    pub engine: Engine,
    pub next_offset: i64,
    pub slot: u8,
}

/// Writes partitions' state; one per shard.
pub struct StateWriter {
    producer: BaseProducer<DeliveryCount>,
    topic: String,
}

impl StateWriter {
    pub fn new(cfg: &KafkaConfig, topic: String) -> anyhow::Result<StateWriter> {
        let defaults = [
            ("client.id", "engagement-monitor-state"),
            ("acks", "all"),
            ("enable.idempotence", "true"),
            ("compression.type", "lz4"),
            ("linger.ms", "5"),
            ("message.max.bytes", "1000000"),
        ];
        let properties = cfg.properties.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        let producer = crate::kafka::client_config(&cfg.brokers, &defaults, properties)
            .create_with_context(DeliveryCount::default())
            .map_err(|e| anyhow::anyhow!("cannot create the state producer: {}", crate::kafka::creation_error(&e)))?;
        Ok(StateWriter { producer, topic })
    }

    /// Saves `bytes` (an engine) for `partition` in `slot`, covering the
    /// input up to `next_offset`; returns once the broker acknowledged all
    /// of it, or an error (then the manifest still names the older slot).
    pub fn save(
        &self,
        partition: i32,
        slot: u8,
        bytes: &[u8],
        next_offset: i64,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let failed = self.producer.context().failed();
        let chunks: Vec<&[u8]> = bytes.chunks(CHUNK).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            let key = format!("chunk/{slot}/{i}");
            self.send(partition, key.as_bytes(), chunk, timeout)?;
        }
        self.settle(failed, timeout).context("state chunks")?;
        let mut manifest = vec![MANIFEST_VERSION, slot];
        manifest.extend_from_slice(&STATE_VERSION.to_le_bytes());
        manifest.extend_from_slice(&(chunks.len() as u32).to_le_bytes());
        manifest.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        manifest.extend_from_slice(&next_offset.to_le_bytes());
        self.send(partition, MANIFEST, &manifest, timeout)?;
        self.settle(failed, timeout).context("state manifest")
    }

    fn send(&self, partition: i32, key: &[u8], payload: &[u8], timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let mut record = BaseRecord::to(&self.topic).partition(partition).key(key).payload(payload);
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((e, r)) if Instant::now() < deadline => {
                    tracing::debug!(error = %e, "state producer queue full");
                    record = r;
                    self.producer.poll(Duration::from_millis(50));
                }
                Err((e, _)) => anyhow::bail!("cannot send state of partition {partition}: {e}"),
            }
        }
    }

    fn settle(&self, failed_before: u64, timeout: Duration) -> anyhow::Result<()> {
        self.producer.flush(timeout).context("waiting for the broker's acknowledgements")?;
        let failed = self.producer.context().failed() - failed_before;
        anyhow::ensure!(failed == 0, "{failed} state records were not acknowledged");
        Ok(())
    }
}

/// Reads partitions of the state topic; one per shard, reused for every
/// partition that arrives.
pub struct StateReader {
    consumer: BaseConsumer<crate::kafka::Logged>,
    topic: String,
}

impl StateReader {
    pub fn new(cfg: &KafkaConfig, topic: String) -> anyhow::Result<StateReader> {
        let defaults = super::reader_defaults("engagement-monitor-state-restore");
        let properties = cfg.properties.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        let mut config = crate::kafka::client_config(&cfg.brokers, &defaults, properties);
        config.set("group.id", format!("{}-state-restore", cfg.group_id));
        let consumer = config
            .create_with_context(crate::kafka::Logged)
            .map_err(|e| anyhow::anyhow!("cannot create the state reader: {}", crate::kafka::creation_error(&e)))?;
        Ok(StateReader { consumer, topic })
    }

    /// Reads partition `partition` to its end and rebuilds the engine its
    /// manifest names; `None` when the partition holds none.
    pub fn restore(&self, partition: i32, limits: Limits, timeout: Duration) -> anyhow::Result<Option<Restored>> {
        let (topic, consumer) = (&self.topic, &self.consumer);
        let (low, high) = consumer.fetch_watermarks(topic, partition, timeout).context("state topic ends")?;
        if high <= low {
            return Ok(None);
        }
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, partition, Offset::Beginning)?;
        consumer.assign(&tpl)?;
        let read = self.read_to(high, low, timeout);
        consumer.unassign()?;
        let latest = read.with_context(|| format!("reading the state of partition {partition}"))?;
        let Some(manifest) = latest.get(MANIFEST) else { return Ok(None) };
        let (slot, chunks, len, next_offset) = read_manifest(manifest)?;
        let mut bytes = Vec::with_capacity(len.min(1 << 30));
        for i in 0..chunks {
            let chunk = latest.get(format!("chunk/{slot}/{i}").as_bytes()).context("a state chunk is missing")?;
            bytes.extend_from_slice(chunk);
        }
        anyhow::ensure!(bytes.len() == len, "the state of partition {partition} has {} bytes, not {len}", bytes.len());
        let engine = Engine::decode(&bytes[..], limits).map_err(|e| match e {
            DecodeError::Windows { .. } => anyhow::Error::new(Rebuild(e.to_string())),
            e => anyhow::Error::new(e).context("decoding the state"),
        })?;
        Ok(Some(Restored { engine, next_offset, slot }))
    }

    /// The latest value of each key of the assigned partition, up to `high`.
    fn read_to(&self, high: i64, low: i64, timeout: Duration) -> anyhow::Result<HashMap<Vec<u8>, Vec<u8>>> {
        let deadline = Instant::now() + timeout;
        let mut latest: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
        let mut next = low;
        while next < high {
            anyhow::ensure!(Instant::now() < deadline, "timed out");
            let Some(m) = self.consumer.poll(Duration::from_millis(200)) else { continue };
            let m = m.context("reading the state topic")?;
            next = m.offset() + 1;
            match (m.key(), m.payload()) {
                (Some(k), Some(v)) => drop(latest.insert(k.to_vec(), v.to_vec())),
                (Some(k), None) => drop(latest.remove(k)),
                _ => {}
            }
        }
        Ok(latest)
    }
}

/// (slot, chunks, bytes, next offset) of a manifest.
/// A partition state that is sound but not this build's to use: of another
/// format version, or written under other windows. The partition is
/// rebuilt by replaying its input from the earliest offset, not resumed
/// from the group's committed offset (which would leave out what came
/// before it).
#[derive(Debug, thiserror::Error)]
#[error("{0}; the partition is rebuilt from the earliest offset of its input")]
pub struct Rebuild(pub String);

fn read_manifest(m: &[u8]) -> anyhow::Result<(u8, usize, usize, i64)> {
    anyhow::ensure!(m.len() == 26 && m[0] == MANIFEST_VERSION, "unknown state manifest");
    let version = u32::from_le_bytes(m[2..6].try_into()?);
    if version != STATE_VERSION {
        return Err(Rebuild(format!("state format {version}, this build reads {STATE_VERSION}")).into());
    }
    let chunks = u32::from_le_bytes(m[6..10].try_into()?) as usize;
    let len = u64::from_le_bytes(m[10..18].try_into()?) as usize;
    let next = i64::from_le_bytes(m[18..26].try_into()?);
    Ok((m[1], chunks, len, next))
}
