//! The global page table: every instance reads the page-totals topic from
//! its beginning (no group: each instance reads all of it), keeps the
//! latest figures of every page and the greatest watermark its input
//! partitions published, and publishes views of it once per ranking interval. The
//! instance turns ready once it has read the topic to its end and its own
//! partitions are caught up; rank changes are detected only from then on,
//! so a restart or a rebalance raises none.

use std::sync::Arc;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use engagement_core::global::{GlobalTable, PageRecord};

use super::{Shared, Topics, is_watermark_key};
use crate::config::Config;
use crate::published::Preparer;
use crate::status::{Readiness, StatusTx};
use crate::telemetry::events::InternalEvent;
use crate::telemetry::shard::{TotalsLag, TotalsRefused};
use tokio_util::sync::CancellationToken;

/// What the table thread needs.
pub struct TableParts {
    pub config: Arc<Config>,
    pub views: Preparer,
    pub status: Arc<StatusTx>,
    pub metrics: Arc<crate::metrics::Metrics>,
    pub shutdown: CancellationToken,
}

pub fn run(io: TableParts, topics: Topics, shared: Arc<Shared>) -> anyhow::Result<()> {
    let mut reader = Reader::new(&io, &topics.totals)?;
    let (mut changed, mut ready) = (true, false);
    let mut next_view = Instant::now();
    while !io.shutdown.is_cancelled() {
        if reader.poll(&io)? {
            shared.set_watermark(reader.table.watermark());
            changed = true;
            continue;
        }
        if Instant::now() < next_view {
            continue;
        }
        // Until ready, readiness is looked at every poll interval.
        next_view = Instant::now() + if ready { io.config.ranking.interval } else { Duration::from_millis(100) };
        // Read before the ends are asked for: the shard's own pages were
        // acknowledged before it was set, so those ends include them.
        let owned_ready = shared.owned_ready.load(Acquire);
        // Until ready, the true ends: a stale cached end would call the
        // table complete while the shards' latest records are unread.
        let totals_lag = reader.lag(!ready);
        TotalsLag(totals_lag).emit(&io.metrics);
        if totals_lag == 0 {
            // Release: the watermarks read so far are seen with it.
            shared.table_caught_up.store(true, Release);
        }
        if !ready {
            let behind = totals_lag + shared.behind.load(Relaxed);
            if owned_ready && totals_lag == 0 && behind <= io.config.ranking.ready_max_lag {
                io.views.publish(Arc::new(reader.table.view()), false, Some(0));
                (ready, changed) = (true, false);
            } else if shared.assigned.load(Relaxed) {
                io.status.send_replace(Readiness::CatchingUp { behind });
            }
        } else if changed {
            io.views.publish(Arc::new(reader.table.view()), true, None);
            changed = false;
        }
    }
    io.status.send_replace(Readiness::Stopping);
    Ok(())
}

/// The page-totals topic, read from its beginning into the table.
struct Reader {
    consumer: BaseConsumer<crate::kafka::Logged>,
    /// Asks the broker for the partitions' true ends: a client of its own,
    /// with no fetch pending on its connection for the request to wait on.
    ends: BaseConsumer<crate::kafka::Logged>,
    topic: String,
    topic_c: std::ffi::CString,
    table: GlobalTable,
    /// Per partition, the next offset to read.
    next: Vec<i64>,
    refused: u64,
}

impl Reader {
    fn new(io: &TableParts, topic: &str) -> anyhow::Result<Reader> {
        let k = &io.config.kafka;
        let defaults = super::reader_defaults("engagement-monitor-totals-reader");
        let properties = k.properties.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        let mut config = crate::kafka::client_config(&k.brokers, &defaults, properties);
        config.set("group.id", format!("{}-totals-reader", k.group_id));
        let create = || -> anyhow::Result<BaseConsumer<crate::kafka::Logged>> {
            config
                .create_with_context(crate::kafka::Logged)
                .map_err(|e| anyhow::anyhow!("cannot create the totals reader: {}", crate::kafka::creation_error(&e)))
        };
        let (consumer, ends) = (create()?, create()?);
        let partitions = super::partition_count(consumer.client(), topic, &io.shutdown)?;
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition_offset(topic, p, Offset::Beginning)?;
        }
        consumer.assign(&tpl).context("assigning the page-totals topic")?;
        let table = GlobalTable::new(io.config.engine);
        let topic_c = std::ffi::CString::new(topic)?;
        let next = vec![0; partitions as usize];
        Ok(Reader { consumer, ends, topic: topic.into(), topic_c, table, next, refused: 0 })
    }

    /// Reads one record into the table; `false` when none came.
    fn poll(&mut self, io: &TableParts) -> anyhow::Result<bool> {
        let Some(m) = self.consumer.poll(Duration::from_millis(100)) else { return Ok(false) };
        let m = m.context("reading the page-totals topic")?;
        if let Some(n) = self.next.get_mut(m.partition() as usize) {
            *n = m.offset() + 1;
        }
        if !apply(&mut self.table, m.key().unwrap_or_default(), m.payload()) {
            self.refused += 1;
            TotalsRefused { topic: &self.topic, refused: self.refused }.emit(&io.metrics);
        }
        Ok(true)
    }

    /// Records between what was read and the end of each partition: the
    /// broker's true ends when `exact` (readiness depends on them), else the
    /// ends cached from the last fetch response (for the gauge).
    fn lag(&self, exact: bool) -> u64 {
        let mut behind = 0u64;
        for (p, n) in self.next.iter().enumerate() {
            let native = self.consumer.client().native_ptr();
            let cached = if exact { None } else { crate::ingest::cached_ends(native, &self.topic_c, p as i32) };
            let ends =
                cached.or_else(|| self.ends.fetch_watermarks(&self.topic, p as i32, Duration::from_millis(2000)).ok());
            match ends {
                Some((low, high)) => behind += (high - (*n).max(low)).max(0) as u64,
                None => return u64::MAX / 2,
            }
        }
        behind
    }
}

/// Applies one record; `false` when it was refused.
fn apply(table: &mut GlobalTable, key: &[u8], value: Option<&[u8]>) -> bool {
    if is_watermark_key(key) {
        let Some(at) = value.and_then(|v| v.try_into().ok()).map(i64::from_le_bytes) else { return false };
        table.set_watermark(at);
        return true;
    }
    match value {
        None => {
            table.remove(key);
            true
        }
        Some(v) => PageRecord::decode(v).ok().is_some_and(|r| table.put(r).is_ok()),
    }
}
