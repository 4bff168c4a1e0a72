//! The global page table: every instance reads the page-totals topic from
//! its beginning (no group: each instance reads all of it), keeps the
//! latest figures of every page and the greatest watermark its input
//! partitions published, and publishes views of it once per ranking interval. The
//! instance turns ready once it has read the topic to its end and its own
//! partitions are caught up; rank changes are detected only from then on,
//! so a restart or a rebalance raises none. It also notes each partition's
//! heartbeat and says which partitions fell silent (see
//! [`heartbeat`](super::heartbeat)).

use std::sync::Arc;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::time::{Duration, Instant};

use rdkafka::message::Message;

use engagement_core::global::{GlobalTable, PageRecord};
use engagement_core::view::View;

use super::heartbeat::{Change, Heartbeat};
use super::{Shared, Topics, watermark_partition};
use crate::config::Config;
use crate::pipeline::ingest::Preparer;
use crate::pipeline::status::{Readiness, StatusTx};
use crate::telemetry::events::InternalEvent;
use crate::telemetry::shard::{OwnersHeard, PartitionSilent, PartitionSpeaks, TotalsLag, TotalsRefused};
use tokio_util::sync::CancellationToken;

/// What the table thread needs.
pub struct TableParts {
    pub config: Arc<Config>,
    pub views: Preparer,
    pub status: Arc<StatusTx>,
    pub metrics: Arc<crate::serve::metrics::Metrics>,
    pub shutdown: CancellationToken,
}

pub fn run(io: TableParts, topics: Topics, shared: Arc<Shared>) -> anyhow::Result<()> {
    let mut reader = Reader::new(&io, &topics.totals)?;
    let (mut changed, mut ready) = (true, false);
    let mut directory_version = io.views.directory().version();
    let (mut next_view, mut next_owners) = (Instant::now(), Instant::now());
    // Since when the table has read changes without a pause.
    let mut reading: Option<Instant> = None;
    // Since when this instance would be ready but for another partition's
    // owner: after `cluster.partition_silent_after` it turns ready anyway,
    // so that an owner that never says ready (an older build's empty
    // partition, a wedged shard) cannot keep the fleet out of service.
    let mut waiting_for_owners: Option<Instant> = None;
    while !io.shutdown.is_cancelled() {
        if reader.poll(&io, &shared)? {
            shared.set_watermark(reader.table.watermark());
            changed = true;
            // A burst of page records (an owner republishing its pages, a
            // moving watermark) is read whole before a view is built, so
            // a view does not mix pages half-way through one; but for at
            // most DRAIN, since on a busy topic records never pause.
            let since = *reading.get_or_insert_with(Instant::now);
            if since.elapsed() < DRAIN {
                continue;
            }
        }
        // The work below is timed, never held back by heartbeats: they come
        // every ranking interval from every owner, so waiting for a quiet
        // poll could wait for ever (a joining shard never turned ready).
        reading = None;
        if Instant::now() >= next_owners {
            watch_owners(&io, &shared);
            next_owners = Instant::now() + OWNERS_EVERY;
        }
        if Instant::now() < next_view {
            continue;
        }
        // Until ready, readiness is looked at every poll interval.
        next_view = Instant::now() + if ready { io.config.ranking.interval } else { Duration::from_millis(100) };
        // Read before the ends are asked for: the shard's own pages were
        // acknowledged before it was set, so those ends include them.
        let owned_ready = shared.owned_ready.load(Acquire);
        // Likewise every partition's owner said ready before the ends are
        // asked for: its pages were acknowledged before it said so.
        let silent_after = io.config.cluster.partition_silent_after;
        let waited_out = waiting_for_owners.is_some_and(|since| since.elapsed() >= silent_after);
        let owners_not_ready = if ready { 0 } else { shared.partitions().not_ready() };
        let fleet_ready = ready || waited_out || owners_not_ready == 0;
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
            let directory_loaded = io.views.directory().loaded();
            let here = owned_ready && totals_lag == 0;
            let whole = here && fleet_ready;
            if here && !fleet_ready {
                waiting_for_owners.get_or_insert_with(Instant::now);
            }
            if whole && behind <= io.config.ranking.ready_max_lag && directory_loaded {
                if owners_not_ready > 0 {
                    tracing::warn!(waited = ?silent_after,
                        "turning ready although some partition's owner has not said it is ready: its pages may be missing");
                }
                // This view is ready: it is the rank changes' baseline, so
                // the first change after the start is reported, however
                // soon it comes (as in replica mode). Had the baseline
                // waited for the next view, a change read before it would
                // have become part of it, unreported.
                io.views.publish(Arc::new(View::of_table(&reader.table)), true, Some(0));
                (ready, changed) = (true, false);
            } else if here && !fleet_ready {
                io.status.send_replace(Readiness::WaitingForOwners { partitions: owners_not_ready });
            } else if !directory_loaded && whole {
                let source = io.views.directory().source().to_owned();
                io.status.send_replace(Readiness::LoadingDirectory { source });
            } else if shared.assigned.load(Relaxed) {
                io.status.send_replace(Readiness::CatchingUp { behind });
            }
        } else if changed || io.views.directory().version() != directory_version {
            // A directory change shows in the next view, as in replica mode.
            directory_version = io.views.directory().version();
            io.views.publish(Arc::new(View::of_table(&reader.table)), true, None);
            changed = false;
        }
    }
    io.status.send_replace(Readiness::Stopping);
    Ok(())
}

/// Longest a burst of page records is read before the timed work runs.
const DRAIN: Duration = Duration::from_millis(250);

/// How often the partitions' silence is judged and their ages exported.
const OWNERS_EVERY: Duration = Duration::from_millis(500);

/// Judges each partition's silence (once the table has read the topic:
/// before, old heartbeats would look silent), logs what changed and
/// exports the unowned count and each partition's heartbeat age.
fn watch_owners(io: &TableParts, shared: &Shared) {
    let now = crate::pipeline::ingest::wall_ms();
    let mut partitions = shared.partitions();
    if shared.table_caught_up.load(Acquire) {
        partitions.start(now);
    }
    for change in partitions.check(now) {
        match change {
            Change::Silent { partition, owner, silent_ms } => {
                let silent_for = Duration::from_millis(silent_ms.unsigned_abs());
                PartitionSilent { partition, owner: owner.as_deref(), silent_for }.emit(&io.metrics);
            }
            Change::Speaking { partition, owner } => {
                PartitionSpeaks { partition, owner: owner.as_deref() }.emit(&io.metrics);
            }
        }
    }
    let ages: Vec<(i32, f64)> = partitions.ages(now).collect();
    OwnersHeard { unowned: partitions.unowned(now), ages: &ages }.emit(&io.metrics);
}

/// The page-totals topic, read from its beginning into the table.
struct Reader {
    topic: crate::kafka::TopicReader,
    table: GlobalTable,
    refused: u64,
}

impl Reader {
    fn new(io: &TableParts, topic: &str) -> anyhow::Result<Reader> {
        let k = &io.config.kafka;
        let count = |client: &_| super::partition_count(client, topic, &io.shutdown);
        let topic = crate::kafka::TopicReader::new(k, topic, "totals-reader", count)?;
        Ok(Reader { topic, table: GlobalTable::new(io.config.engine), refused: 0 })
    }

    /// Reads one record into the table, or a heartbeat into `shared`; says
    /// whether the table changed (a page, a tombstone, a refused record, a
    /// watermark that moved or a partition's history gap reported or gone).
    fn poll(&mut self, io: &TableParts, shared: &Shared) -> anyhow::Result<bool> {
        let Some(m) = self.topic.poll(Duration::from_millis(100))? else { return Ok(false) };
        let (key, value) = (m.key().unwrap_or_default(), m.payload());
        let Some(p) = watermark_partition(key) else {
            if !apply(&mut self.table, key, value) {
                self.refused(io);
            }
            return Ok(true);
        };
        let Some(beat) = value.and_then(|v| Heartbeat::decode(v, m.timestamp().to_millis())) else {
            self.refused(io);
            return Ok(true);
        };
        let before = self.table.watermark();
        if let Some(at) = beat.watermark {
            self.table.set_watermark(at);
        }
        // The partitions whose owners report a history gap mark their pages.
        let gap_changed = self.table.note_gap(p as u32, beat.history_gap);
        shared.partitions().heard(p, beat);
        Ok(self.table.watermark() != before || gap_changed)
    }

    fn refused(&mut self, io: &TableParts) {
        self.refused += 1;
        TotalsRefused { topic: self.topic.topic(), refused: self.refused }.emit(&io.metrics);
    }

    fn lag(&self, exact: bool) -> u64 {
        self.topic.lag(exact)
    }
}

/// Applies one page record or tombstone; `false` when it was refused.
fn apply(table: &mut GlobalTable, key: &[u8], value: Option<&[u8]>) -> bool {
    match value {
        None => {
            table.remove(key);
            true
        }
        Some(v) => PageRecord::decode(v).ok().is_some_and(|r| table.put(r).is_ok()),
    }
}
