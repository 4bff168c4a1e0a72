//! Shard mode's checkpoints: a partition's state in Kafka, written to the
//! same partition of a compacted state topic, so that whichever shard owns
//! the partition next restores it without the input topic's old events
//! (docs/scaling.md#shard-mode).
//!
//! A checkpoint writes what changed, not the state: a *base* (the
//! partition's engine in the format of replica mode's checkpoint file) now
//! and then, and between two bases one *increment* per checkpoint (what
//! changed since the last one, see
//! [`increment`](engagement_core::engine::Engine::take_increment)). Layout
//! per partition, under keys: the base's bytes in chunks `base/<slot>/<i>`,
//! each increment's in `inc/<slot>/<n>/<i>`, and one `manifest` naming the
//! slot, the base, the increments in order and the input offset the whole
//! covers. Every checkpoint writes its chunks, waits for the broker's
//! acknowledgement, then writes the manifest: compaction keeps the latest
//! value of each key, so what the manifest names is always whole. A new
//! base goes to the slot the manifest does not name; once its manifest is
//! acknowledged, the older slot's keys are deleted (tombstones), so the
//! topic holds at most two bases and the increments of one.
//!
//! A new base is written when the increments since the last one add up to
//! a quarter of its size ([`BASE_AFTER`]), or number [`MAX_INCREMENTS`]:
//! a checkpoint costs about what changed, and a restore reads at most 1.25 × the
//! state and applies at most that many increments.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

use crate::config::KafkaConfig;
use crate::kafka::DeliveryCount;
use engagement_core::engine::{DecodeError, Engine, Limits, OLDEST_STATE_VERSION, STATE_VERSION};

/// Bytes per chunk: under the broker's default 1 MB record limit.
const CHUNK: usize = 512 * 1024;
const MANIFEST: &[u8] = b"manifest";
/// Version 1 named one whole state in `chunk/<slot>/<i>`; it is still read.
const MANIFEST_VERSION: u8 = 2;
/// A base is due when the increments since the last one reach this
/// fraction of its size (1/4).
pub const BASE_AFTER: usize = 4;
/// A base is due after this many increments.
pub const MAX_INCREMENTS: usize = 64;

/// What a manifest names: the slot, the base's chunks and bytes, each
/// increment's chunks and bytes, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layout {
    pub slot: u8,
    /// The engine format of the base (an older build's base is read too).
    state: u32,
    /// Written by version 1: the base's keys are `chunk/<slot>/<i>`.
    legacy: bool,
    pub base: (u32, u64),
    pub increments: Vec<(u32, u64)>,
}

impl Layout {
    /// Whether the next save should be a base rather than an increment.
    pub fn base_due(&self) -> bool {
        let since: u64 = self.increments.iter().map(|(_, b)| *b).sum();
        self.legacy
            || self.base.0 == 0
            || self.increments.len() >= MAX_INCREMENTS
            || since.saturating_mul(BASE_AFTER as u64) >= self.base.1
    }

    fn base_key(&self, i: u32) -> Vec<u8> {
        let prefix = if self.legacy { "chunk" } else { "base" };
        format!("{prefix}/{}/{i}", self.slot).into_bytes()
    }

    fn increment_key(&self, n: usize, i: u32) -> Vec<u8> {
        format!("inc/{}/{n}/{i}", self.slot).into_bytes()
    }

    /// Every key this layout names.
    fn keys(&self) -> Vec<Vec<u8>> {
        let base = (0..self.base.0).map(|i| self.base_key(i));
        let incs = self.increments.iter().enumerate().flat_map(|(n, (c, _))| (0..*c).map(move |i| (n, i)));
        base.chain(incs.map(|(n, i)| self.increment_key(n, i))).collect()
    }

    fn encode(&self, next_offset: i64) -> Vec<u8> {
        let mut m = vec![MANIFEST_VERSION, self.slot];
        m.extend_from_slice(&self.state.to_le_bytes());
        m.extend_from_slice(&next_offset.to_le_bytes());
        m.extend_from_slice(&self.base.0.to_le_bytes());
        m.extend_from_slice(&self.base.1.to_le_bytes());
        m.extend_from_slice(&(self.increments.len() as u32).to_le_bytes());
        for (chunks, bytes) in &self.increments {
            m.extend_from_slice(&chunks.to_le_bytes());
            m.extend_from_slice(&bytes.to_le_bytes());
        }
        m
    }

    /// The layout and the input offset a manifest names.
    fn decode(m: &[u8]) -> anyhow::Result<(Layout, i64)> {
        let mut r = engagement_core::codec::Reader(m);
        let (version, slot) = (r.u8()?, r.u8()?);
        anyhow::ensure!(version == 1 || version == MANIFEST_VERSION, "unknown state manifest version {version}");
        let state = r.u32()?;
        if !(OLDEST_STATE_VERSION..=STATE_VERSION).contains(&state) {
            let (oldest, newest) = (OLDEST_STATE_VERSION, STATE_VERSION);
            return Err(Rebuild(format!("state format {state}, this build reads {oldest} to {newest}")).into());
        }
        if version == 1 {
            let (chunks, bytes, next) = (r.u32()?, r.u64()?, r.i64()?);
            let layout = Layout { slot, state, legacy: true, base: (chunks, bytes), increments: Vec::new() };
            return Ok((layout, next));
        }
        let next = r.i64()?;
        let base = (r.u32()?, r.u64()?);
        let n = r.u32()? as usize;
        anyhow::ensure!(n <= MAX_INCREMENTS, "a state manifest naming {n} increments");
        let increments = (0..n).map(|_| Ok((r.u32()?, r.u64()?))).collect::<anyhow::Result<_>>()?;
        Ok((Layout { slot, state, legacy: false, base, increments }, next))
    }
}

/// A restored partition: its engine, the input offset to go on from, and
/// what its manifest names.
pub struct Restored {
    pub engine: Engine,
    pub next_offset: i64,
    pub layout: Layout,
}

/// Writes partitions' state; one per shard.
pub struct CheckpointWriter {
    producer: BaseProducer<DeliveryCount>,
    topic: String,
}

impl CheckpointWriter {
    pub fn new(cfg: &KafkaConfig, topic: String) -> anyhow::Result<CheckpointWriter> {
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
        Ok(CheckpointWriter { producer, topic })
    }

    /// Saves `base` (an engine) for `partition` in the slot `layout` does
    /// not name, covering the input up to `next_offset`; returns the new
    /// layout once the broker acknowledged all of it, or an error (then
    /// the manifest still names `layout`). The keys of `layout` are
    /// deleted afterwards.
    pub fn save_base(
        &self,
        partition: i32,
        layout: &Layout,
        base: &[u8],
        next_offset: i64,
        timeout: Duration,
    ) -> anyhow::Result<Layout> {
        let slot = if layout.base.0 == 0 { layout.slot } else { 1 - layout.slot.min(1) };
        let mut new =
            Layout { slot, state: STATE_VERSION, legacy: false, base: (0, base.len() as u64), increments: Vec::new() };
        new.base.0 = base.chunks(CHUNK).len() as u32;
        let keys = (0..new.base.0).map(|i| new.base_key(i));
        self.write(partition, keys.zip(base.chunks(CHUNK)), &new, next_offset, timeout)?;
        // The older slot's keys go: the new base is whole and named. A
        // tombstone lost here leaves unused keys behind (at most one base
        // and its increments); the checkpoint stands either way.
        if layout.base.0 > 0 {
            let failed = self.producer.context().failed();
            let deleted = layout.keys().iter().try_for_each(|key| self.send(partition, key, None, timeout));
            if let Err(e) = deleted.and_then(|()| self.settle(failed, timeout)) {
                tracing::warn!(partition, error = %format!("{e:#}"),
                    "the older checkpoint's keys were not all deleted from the state topic: unused, they stay until a later base in that slot");
            }
        }
        Ok(new)
    }

    /// Saves `increment` for `partition` after those `layout` names,
    /// covering the input up to `next_offset`; the new layout once
    /// acknowledged.
    pub fn save_increment(
        &self,
        partition: i32,
        layout: &Layout,
        increment: &[u8],
        next_offset: i64,
        timeout: Duration,
    ) -> anyhow::Result<Layout> {
        let mut new = layout.clone();
        let n = new.increments.len();
        new.increments.push((increment.chunks(CHUNK).len() as u32, increment.len() as u64));
        let keys = (0..).map(|i| new.increment_key(n, i));
        self.write(partition, keys.zip(increment.chunks(CHUNK)), &new, next_offset, timeout)?;
        Ok(new)
    }

    /// Writes chunks, then (once they are acknowledged) the manifest.
    fn write<'a>(
        &self,
        partition: i32,
        chunks: impl Iterator<Item = (Vec<u8>, &'a [u8])>,
        layout: &Layout,
        next_offset: i64,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let failed = self.producer.context().failed();
        for (key, chunk) in chunks {
            self.send(partition, &key, Some(chunk), timeout)?;
        }
        self.settle(failed, timeout).context("state chunks")?;
        self.send(partition, MANIFEST, Some(&layout.encode(next_offset)), timeout)?;
        self.settle(failed, timeout).context("state manifest")
    }

    /// Sends one record (`None`: a tombstone).
    fn send(&self, partition: i32, key: &[u8], payload: Option<&[u8]>, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let mut record = BaseRecord::<[u8], [u8], ()>::to(&self.topic).partition(partition).key(key);
        if let Some(payload) = payload {
            record = record.payload(payload);
        }
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
pub struct CheckpointReader {
    consumer: BaseConsumer<crate::kafka::Logged>,
    topic: String,
}

impl CheckpointReader {
    pub fn new(cfg: &KafkaConfig, topic: String) -> anyhow::Result<CheckpointReader> {
        let defaults = super::reader_defaults("engagement-monitor-state-restore");
        let properties = cfg.properties.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        let mut config = crate::kafka::client_config(&cfg.brokers, &defaults, properties);
        config.set("group.id", format!("{}-state-restore", cfg.group_id));
        let consumer = config
            .create_with_context(crate::kafka::Logged)
            .map_err(|e| anyhow::anyhow!("cannot create the state reader: {}", crate::kafka::creation_error(&e)))?;
        Ok(CheckpointReader { consumer, topic })
    }

    /// Reads partition `partition` to its end and rebuilds the engine its
    /// manifest names: the base, then each increment in order; `None` when
    /// the partition holds none.
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
        let (layout, next_offset) = Layout::decode(manifest)?;
        let gather = |keys: &mut dyn Iterator<Item = Vec<u8>>, len: u64| -> anyhow::Result<Vec<u8>> {
            let mut bytes = Vec::with_capacity((len as usize).min(1 << 30));
            for key in keys {
                bytes.extend_from_slice(latest.get(&key).context("a state chunk is missing")?);
            }
            anyhow::ensure!(bytes.len() as u64 == len, "a state part has {} bytes, not {len}", bytes.len());
            Ok(bytes)
        };
        let base = gather(&mut (0..layout.base.0).map(|i| layout.base_key(i)), layout.base.1)?;
        let mut engine = Engine::decode_version(&base[..], limits, layout.state).map_err(|e| match e {
            DecodeError::Windows { .. } => anyhow::Error::new(Rebuild(e.to_string())),
            e => anyhow::Error::new(e).context("decoding the state"),
        })?;
        drop(base);
        for (n, (chunks, len)) in layout.increments.iter().enumerate() {
            let bytes = gather(&mut (0..*chunks).map(|i| layout.increment_key(n, i)), *len)?;
            engine.apply_increment(&bytes).with_context(|| format!("applying increment {n} of the state"))?;
        }
        Ok(Some(Restored { engine, next_offset, layout }))
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

/// A partition state that is sound but not this build's to use: of another
/// format version, or written under other windows. The partition is
/// rebuilt by replaying its input from the earliest offset, not resumed
/// from the group's committed offset (which would leave out what came
/// before it).
#[derive(Debug, thiserror::Error)]
#[error("{0}; the partition is rebuilt from the earliest offset of its input")]
pub struct Rebuild(pub String);
