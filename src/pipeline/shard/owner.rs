//! The partitions this shard owns: Kafka's consumer group decides which
//! (cooperative-sticky assignment, static membership), and for each one
//! the shard keeps its own engine. A partition that arrives is restored
//! from the state topic and applied from the offset its state covers (see
//! [`checkpoint`](super::checkpoint)); one that leaves is dropped whole.
//! Records are polled, copied and decoded on the fetch thread (replica
//! mode's [`Fetcher`], reading the group's fetch queue) while the previous
//! batch is applied here, in runs of one partition.
//!
//! Once per ranking interval, each caught-up partition publishes the pages
//! that changed to the page-totals topic (see
//! [`global`](engagement_core::global)), and every owned partition its
//! heartbeat (see [`heartbeat`](super::heartbeat)), with its watermark once
//! caught up; once per
//! checkpoint interval, each partition's state is saved to the state topic
//! and, once the broker acknowledged it, its offset is committed.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

use engagement_core::engine::{Engine, Outcome};
use engagement_core::event::{DecodeContext, Event, Invalid};
use engagement_core::global::{PageRecord, page_key};

use super::checkpoint::{CheckpointReader, CheckpointWriter, Layout};
use super::group::{Ctx, GroupFeed, Moved, group_consumer};
use super::heartbeat::Heartbeat;
use super::records::Deliveries;
use super::{Shared, Topics, watermark_key};
use crate::pipeline::ingest::{Decoded, FetchQueue, Fetched, Fetcher, Polling, Record, Tally};
use crate::telemetry::events::{CommitNotSent, ConsumerError, HistoryGap, InternalEvent, LagObserved};
use crate::telemetry::shard::{
    CheckpointSaved, CheckpointUnusable, PartitionRestored, PartitionsMoved, PartitionsTakenOver, RankEventsPublisher,
    ShardProgress,
};

/// The input partition whose owner publishes the fleet's rank events.
const PUBLISHER_PARTITION: i32 = 0;
/// How long a shard that stops publishing waits for its queued rank events.
const PUBLISHER_FLUSH: Duration = Duration::from_secs(5);

/// Least time between two ticks.
const TICK: Duration = Duration::from_millis(200);
/// Most messages in one batch from the fetch thread.
const BATCH: usize = 4096;
/// How long the fetch thread waits for the first message of a batch.
const POLL_WAIT: Duration = Duration::from_millis(100);
/// Most time between two polls of the consumer's own queue, even when
/// nothing waits in it (librdkafka leaves the group when it is not polled
/// within `max.poll.interval.ms`).
const SERVE_EVERY: Duration = Duration::from_secs(5);
/// How long a checkpoint or a restore may take before it is given up.
const STATE_TIMEOUT: Duration = Duration::from_secs(60);

/// One owned partition.
struct Part {
    engine: Engine,
    /// The next input offset to apply.
    next: i64,
    /// What the state topic's manifest names (the last save's, or the
    /// restored one's).
    layout: Layout,
    /// Whether the next save must be a base: nothing saved yet, or an
    /// increment was lost (a failed save took it).
    base_due: bool,
    /// The input offset the state topic holds the state up to.
    saved: i64,
    caught_up: bool,
    /// Caught up, and the broker acknowledged the pages published then:
    /// its heartbeats say ready (and carry its watermark) from then on.
    announced: bool,
}

/// What the owner needs from the daemon.
pub struct OwnerParts {
    pub config: Arc<crate::config::Config>,
    pub metrics: Arc<crate::serve::metrics::Metrics>,
    pub publisher: Arc<crate::alerts::publisher::Publisher>,
    pub shutdown: tokio_util::sync::CancellationToken,
}

/// The loop's state.
pub struct Owner {
    /// Declared before the consumer: dropped while the client still lives.
    queue: Arc<FetchQueue>,
    consumer: Arc<BaseConsumer<Ctx>>,
    /// This shard's instance id, named in its heartbeats.
    instance: String,
    /// The input topic, for librdkafka's C API.
    topic_c: std::ffi::CString,
    parts: HashMap<i32, Part>,
    writer: CheckpointWriter,
    reader: CheckpointReader,
    totals: ThreadedProducer<Deliveries>,
    topics: Topics,
    io: OwnerParts,
    shared: Arc<Shared>,
    cx: DecodeContext,
    tally: Tally,
    /// The last run's results (kept to reuse the allocation).
    outcomes: Vec<Result<Outcome, Invalid>>,
    /// Whether the table had caught up at the last tick.
    table_seen: bool,
    /// Page records sent since the last progress report.
    records: u64,
    /// The last page record encoded (the allocation reused).
    encoded: Vec<u8>,
    next_publish: Instant,
    next_save: Instant,
}

impl Owner {
    pub fn new(io: OwnerParts, topics: Topics, shared: Arc<Shared>) -> anyhow::Result<Owner> {
        let cfg = &io.config;
        let k = &cfg.kafka;
        let instance = cfg.cluster.instance_id();
        let (consumer, queue) = group_consumer(k, &io.metrics, &instance)?;
        let writer = CheckpointWriter::new(k, topics.state.clone())?;
        let reader = CheckpointReader::new(k, topics.state.clone())?;
        // A partition that catches up publishes every page it holds at
        // once: librdkafka's default queue (100,000 messages) would make
        // this thread wait for the broker's acknowledgements in the middle
        // of it. The queue is bounded by its bytes instead.
        let totals_defaults = [
            ("client.id", "engagement-monitor-totals"),
            ("compression.type", "lz4"),
            ("linger.ms", "20"),
            ("queue.buffering.max.messages", "2000000"),
            ("queue.buffering.max.kbytes", "262144"),
        ];
        let properties = k.properties.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        let totals = crate::kafka::client_config(&k.brokers, &totals_defaults, properties)
            .create_with_context(Deliveries::new(io.metrics.clone()))
            .map_err(|e| anyhow::anyhow!("cannot create the totals producer: {}", crate::kafka::creation_error(&e)))?;
        let cx = cfg.events.decode_context();
        tracing::info!(instance = %instance, group = %k.group_id, topic = %k.topic, state = %topics.state,
            totals = %topics.totals, "shard mode: joining the group");
        let (now, checkpoint_interval) = (Instant::now(), cfg.state.checkpoint_interval);
        let tally = Tally::new(io.metrics.clone(), io.publisher.clone(), k.topic.clone());
        let topic_c = std::ffi::CString::new(k.topic.clone())?;
        // Last: from here on, `Owner`'s Drop takes the handle out again.
        *consumer.context().queue.lock().unwrap_or_else(|e| e.into_inner()) = Some(queue.clone());
        Ok(Owner {
            queue,
            consumer: Arc::new(consumer),
            instance,
            topic_c,
            parts: HashMap::new(),
            writer,
            reader,
            totals,
            topics,
            io,
            shared,
            cx,
            tally,
            outcomes: Vec::new(),
            table_seen: false,
            records: 0,
            encoded: Vec::new(),
            next_publish: now,
            next_save: now + checkpoint_interval,
        })
    }

    /// Consumes until shutdown, then saves every partition and commits.
    ///
    /// The fetch thread polls, copies and decodes; this loop applies. The
    /// consumer's own queue (rebalances, commit results, errors) is polled
    /// here, with the fetch thread paused (see [`Fetcher::pause`]): every
    /// batch polled before an assignment change is applied before it is
    /// handled, and none is polled until it was.
    pub fn run(&mut self) -> anyhow::Result<()> {
        let stopped = || anyhow::anyhow!("the fetch thread stopped; consumption cannot go on");
        let feed = GroupFeed::new(self.queue.clone(), self.io.metrics.clone());
        let polling = Polling { wait: POLL_WAIT, batch: BATCH, cx: self.cx };
        let mut fetcher =
            Fetcher::spawn(feed, polling).map_err(|e| anyhow::anyhow!("cannot start the fetch thread: {e}"))?;
        let (mut next_tick, mut next_serve) = (Instant::now(), Instant::now());
        let native = self.consumer.client().native_ptr();
        while !self.io.shutdown.is_cancelled() {
            let now = Instant::now();
            if now >= next_serve || crate::pipeline::ingest::consumer_queue_len(native) > 0 {
                fetcher.pause(&mut |f| self.apply_decoded(&f.decoded)).map_err(|_| stopped())?;
                let served = self.serve_group();
                fetcher.resume();
                served?;
                next_serve = now + SERVE_EVERY;
            }
            if let Some(f) = fetcher.next(POLL_WAIT).map_err(|_| stopped())? {
                self.apply_decoded(&f.decoded);
                fetcher.recycle(f);
            }
            if Instant::now() >= next_tick {
                self.tick();
                next_tick = Instant::now() + TICK;
            }
        }
        fetcher.stop(&mut |f: Fetched| self.apply_decoded(&f.decoded));
        self.checkpoint_all();
        Ok(())
    }

    /// Polls the consumer's own queue (the group's callbacks run in it),
    /// then handles the assignment changes they noted.
    fn serve_group(&mut self) -> anyhow::Result<()> {
        while let Some(polled) = self.consumer.poll(Duration::ZERO) {
            if let Err(e) = polled {
                ConsumerError(&e).emit(&self.io.metrics);
            }
        }
        if self.has_moved() { self.moved() } else { Ok(()) }
    }

    /// Whether the last poll changed the assignment.
    fn has_moved(&self) -> bool {
        let ctx = self.consumer.context();
        let moved = !ctx.moved.lock().unwrap_or_else(|e| e.into_inner()).is_empty();
        moved || !ctx.unforwarded.lock().unwrap_or_else(|e| e.into_inner()).is_empty()
    }

    /// Handles the assignment changes the last poll made.
    fn moved(&mut self) -> anyhow::Result<()> {
        let ctx = self.consumer.context();
        let unforwarded = std::mem::take(&mut *ctx.unforwarded.lock().unwrap_or_else(|e| e.into_inner()));
        anyhow::ensure!(unforwarded.is_empty(), "cannot reach the fetch queue of partitions {unforwarded:?}");
        let moved = std::mem::take(&mut *ctx.moved.lock().unwrap_or_else(|e| e.into_inner()));
        for m in moved {
            let first = !self.shared.assigned.swap(true, Relaxed);
            match m {
                Moved::Revoked(ps) => {
                    for p in &ps {
                        self.parts.remove(p);
                    }
                    if ps.contains(&PUBLISHER_PARTITION) {
                        self.publishes(false);
                    }
                    let topic = &self.io.config.kafka.topic;
                    PartitionsMoved { topic, assigned: false, partitions: &ps, owned: self.parts.len() }
                        .emit(&self.io.metrics);
                }
                Moved::Assigned(ps) => {
                    if !first && !ps.is_empty() {
                        self.taking_over(&ps);
                    }
                    for &p in &ps {
                        self.restore(p)?;
                    }
                    if ps.contains(&PUBLISHER_PARTITION) {
                        self.publishes(true);
                    }
                    let topic = &self.io.config.kafka.topic;
                    PartitionsMoved { topic, assigned: true, partitions: &ps, owned: self.parts.len() }
                        .emit(&self.io.metrics);
                }
            }
        }
        Ok(())
    }

    /// Makes this shard the fleet's rank-event publisher, or not, as it
    /// gains or loses [`PUBLISHER_PARTITION`].
    fn publishes(&self, on: bool) {
        if self.io.publisher.set_publishing(on, PUBLISHER_FLUSH) {
            RankEventsPublisher { on, partition: PUBLISHER_PARTITION }.emit(&self.io.metrics);
        }
    }

    /// Says which partitions a later assignment takes over, grouped by the
    /// owner their last heartbeat names, and how long it has been silent
    /// (a first assignment is a start, said by [`PartitionsMoved`]).
    fn taking_over(&self, ps: &[i32]) {
        let now = crate::pipeline::ingest::wall_ms();
        let mut by_owner: Vec<(Option<String>, Option<Duration>, Vec<i32>)> = Vec::new();
        let partitions = self.shared.partitions();
        for &p in ps {
            let beat = partitions.last(p);
            let owner = beat.and_then(|b| b.owner.clone());
            let silent = beat.map(|b| Duration::from_millis((now - b.sent_ms).max(0).unsigned_abs()));
            match by_owner.iter_mut().find(|(o, ..)| *o == owner) {
                Some((_, longest, taken)) => {
                    *longest = (*longest).max(silent);
                    taken.push(p);
                }
                None => by_owner.push((owner, silent, vec![p])),
            }
        }
        drop(partitions);
        let silent_after = self.io.config.cluster.partition_silent_after;
        for (owner, silent_for, taken) in &by_owner {
            // A live owner hands partitions over when the group grows: no failure.
            let failed = silent_for.is_none_or(|s| s >= silent_after);
            let last_owner = owner.as_deref();
            PartitionsTakenOver { partitions: taken, last_owner, silent_for: *silent_for, failed }
                .emit(&self.io.metrics);
        }
    }

    /// Restores partition `p` from the state topic and seeks it to the
    /// offset its state covers (or the group's committed offset, which is
    /// never ahead of the state).
    fn restore(&mut self, p: i32) -> anyhow::Result<()> {
        let started = Instant::now();
        let limits = self.io.config.engine;
        let mut rebuild = false;
        let restored = self.reader.restore(p, limits, STATE_TIMEOUT).unwrap_or_else(|error| {
            rebuild = error.downcast_ref::<super::checkpoint::Rebuild>().is_some();
            CheckpointUnusable { topic: &self.topics.state, partition: p, error: &error, rebuild }
                .emit(&self.io.metrics);
            None
        });
        let restored_any = restored.is_some();
        let (mut engine, next, layout) = match restored {
            Some(r) => (r.engine, r.next_offset, r.layout),
            None => (Engine::new(limits), 0, Layout::default()),
        };
        engine.track_changes();
        engine.track_increments();
        // The state covers the input up to `next`: messages before it are
        // skipped (the group's committed offset is never ahead of it).
        // Without a state, the partition starts where the group left it;
        // with one this build cannot use, from the beginning.
        if rebuild {
            // The fetch started at the group's offset when the partition
            // was assigned; nothing of it was read yet (this loop reads the
            // fetch queue), and what was fetched before the seek is
            // discarded by the client.
            let topic = &self.io.config.kafka.topic;
            if let Err(e) = self.consumer.seek(topic, p, Offset::Beginning, Duration::from_secs(10)) {
                anyhow::bail!("cannot seek partition {p} to its beginning to rebuild its state: {e}");
            }
        }
        let committed = if restored_any || rebuild { None } else { self.committed(p) };
        let start = if restored_any { next } else { committed.unwrap_or(0) };
        if committed.is_some_and(|c| c > 0) {
            tracing::warn!(partition = p, committed = ?committed, topic = %self.topics.state,
                "no state for a partition the group has consumed: its earlier events are missing from the totals");
        }
        if self.check_history(p, start) {
            engine.note_gap(p as u32);
        }
        let (posts, increments) = (engine.usage().posts, layout.increments.len());
        PartitionRestored { partition: p, state_offset: next, start, posts, increments, took: started.elapsed() }
            .emit(&self.io.metrics);
        let base_due = !restored_any;
        let part = Part { engine, next: start, layout, base_due, saved: next, caught_up: false, announced: false };
        self.parts.insert(p, part);
        Ok(())
    }

    /// Counts a gap when the input no longer holds the offset partition
    /// `p` must start from (retention cut it before a state was saved);
    /// whether it found one.
    fn check_history(&self, p: i32, start: i64) -> bool {
        let topic = &self.io.config.kafka.topic;
        match self.consumer.fetch_watermarks(topic, p, Duration::from_secs(5)) {
            Ok((earliest, _)) if start < earliest => {
                HistoryGap { topic, partition: p, needed: start, earliest }.emit(&self.io.metrics);
                true
            }
            _ => false,
        }
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

    /// Applies a decoded batch, one run of consecutive records of one
    /// partition at a time (a batch holds long runs).
    fn apply_decoded(&mut self, batch: &Decoded) {
        let records: Vec<Record<'_>> = batch.records().collect();
        let (events, partitions) = (batch.events(), batch.partitions());
        let mut start = 0;
        while start < records.len() {
            let partition = records[start].partition;
            let n = records[start..].iter().position(|r| r.partition != partition).unwrap_or(records.len() - start);
            let end = start + n;
            self.apply_run(&records[start..end], &events[start..end], &partitions[start..end]);
            start = end;
        }
    }

    /// Applies decoded events of one partition (the engine overlaps the
    /// memory accesses of consecutive events), then counts.
    fn apply_run(&mut self, run: &[Record<'_>], events: &[Result<Event<'_>, Invalid>], partitions: &[u32]) {
        let Some(part) = run.first().and_then(|r| self.parts.get_mut(&r.partition)) else { return };
        // Records before `next` are already in the restored state:
        // applying them again would change nothing but the counts.
        let skip = run.iter().position(|r| r.offset >= part.next).unwrap_or(run.len());
        let (run, events, partitions) = (&run[skip..], &events[skip..], &partitions[skip..]);
        let Some(last) = run.last() else { return };
        part.next = last.offset + 1;
        self.outcomes.clear();
        part.engine.apply_decoded(events, partitions, &mut self.outcomes);
        self.tally.count(run.iter().copied(), &self.outcomes);
        self.tally.notices(part.engine.take_notices());
    }

    /// Counts, follows the topic's watermark, notes lag, publishes and saves when due.
    fn tick(&mut self) {
        self.tally.flush();
        // Read before the watermark: once it says caught up, the watermark
        // read next is the topic's (Acquire pairs with the table's Release).
        let table_ready = self.shared.table_caught_up.load(Acquire);
        let own = self.parts.values().filter_map(|p| p.engine.watermark()).max();
        let global = self.shared.watermark().max(own);
        let ready_max_lag = self.io.config.ranking.ready_max_lag;
        let mut behind = 0;
        let mut newly_caught_up = false;
        for (&p, part) in &mut self.parts {
            if let Some(wm) = global {
                part.engine.advance_to(wm);
            }
            // The ends cached from the last fetch response: a request would
            // wait behind the connection's pending fetch (up to
            // fetch.wait.max.ms each). Asked of the broker only while unknown.
            let topic = &self.io.config.kafka.topic;
            let high = crate::kafka::cached_ends(self.consumer.client().native_ptr(), &self.topic_c, p)
                .or_else(|| self.consumer.fetch_watermarks(topic, p, Duration::from_millis(500)).ok());
            let lag = high.map_or(u64::MAX, |ends| crate::pipeline::ingest::lag(part.next, ends));
            if lag != u64::MAX {
                LagObserved { topic, partition: p, lag: lag as i64 }.emit(&self.io.metrics);
            }
            newly_caught_up |= !part.caught_up && lag <= ready_max_lag;
            part.caught_up = part.caught_up || lag <= ready_max_lag;
            if part.caught_up {
                part.engine.close_gap(p as u32);
            }
            behind += lag.min(u64::MAX / 1024);
        }
        self.shared.behind.store(behind, Relaxed);
        let unsaved = self.parts.values().map(|p| (p.next - p.saved).max(0) as u64).sum();
        let posts = self.parts.values().map(|p| p.engine.usage().posts).sum();
        ShardProgress { posts, unsaved, records: std::mem::take(&mut self.records) }.emit(&self.io.metrics);
        let caught_up = self.shared.assigned.load(Relaxed) && self.parts.values().all(|p| p.caught_up);
        let now = Instant::now();
        // A partition that has just caught up publishes at once (readiness
        // waits for its pages), and so does all that waited for the table.
        let table_just_ready = table_ready && !self.table_seen;
        self.table_seen = table_ready;
        if now >= self.next_publish || newly_caught_up || table_just_ready {
            self.publish();
            self.next_publish = now + self.io.config.ranking.interval;
        }
        // Ready once every owned page is in the page-totals topic: published
        // (above, the table being caught up) and acknowledged.
        if caught_up && self.table_seen && !self.shared.owned_ready.load(Relaxed) {
            self.publish();
            if self.totals.flush(Duration::from_secs(10)).is_ok() {
                self.shared.owned_ready.store(true, Release);
            }
        }
        if now >= self.next_save {
            self.checkpoint_all();
            self.next_save = Instant::now() + self.io.config.state.checkpoint_interval;
        }
    }

    /// Publishes the changed pages of each caught-up partition, then every
    /// owned partition's heartbeat. No page (and no watermark) before the
    /// table has read the page-totals topic once: until then the topic's
    /// watermark is unknown, and pages published at an older one (a
    /// restored state's, say) would move the rolling figures back and
    /// forth, raising rank changes.
    fn publish(&mut self) {
        if self.table_seen {
            self.publish_pages();
            // A partition says it is ready only once the broker holds the
            // pages it published on catching up: an instance that reads
            // every partition ready may then take the topic as whole. The
            // wait for the broker comes once every owned partition has
            // caught up: while one is behind it would hold up applying.
            let all_caught_up = self.parts.values().all(|p| p.caught_up);
            if all_caught_up
                && self.parts.values().any(|p| !p.announced)
                && self.totals.flush(Duration::from_secs(10)).is_ok()
            {
                self.parts.values_mut().for_each(|p| p.announced = true);
            }
        }
        let (topic, sent_ms) = (&self.topics.totals, crate::pipeline::ingest::wall_ms());
        for (&p, part) in &self.parts {
            let ready = part.announced;
            let watermark = part.engine.watermark().filter(|_| ready);
            let history_gap = !part.engine.gaps().is_empty();
            let beat = Heartbeat { watermark, sent_ms, owner: Some(self.instance.clone()), history_gap, ready };
            let (key, value) = (watermark_key(p), beat.encode());
            let _ = crate::kafka::send_waiting(&self.totals, BaseRecord::to(topic).key(&key).payload(&value));
        }
    }

    fn publish_pages(&mut self) {
        self.publish_again();
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
                rec.encode_into(&mut self.encoded);
                let key = rec.key();
                let record = BaseRecord::to(topic).key(&key).payload(&self.encoded);
                let _ = crate::kafka::send_waiting(&self.totals, record);
                self.records += 1;
            }
        }
    }

    /// Marks the pages whose records the broker refused as changed, so that
    /// this cycle publishes them again with their latest figures; a refused
    /// tombstone is sent again unless an owned engine holds the page again.
    /// A page of a partition this shard no longer owns is its new owner's.
    fn publish_again(&mut self) {
        for r in self.totals.context().take_refused() {
            let Some((platform, id)) = r.page() else { continue };
            let held = match r.partition {
                Some(p) => match self.parts.get_mut(&(p as i32)) {
                    Some(part) => part.engine.mark_changed(platform, id),
                    None => continue,
                },
                None => self.parts.values_mut().any(|part| part.engine.mark_changed(platform, id)),
            };
            if !held {
                // Freed since (or a refused tombstone): its tombstone is due.
                let tombstone = BaseRecord::<_, [u8], _>::to(&self.topics.totals).key(&r.key);
                let _ = crate::kafka::send_waiting(&self.totals, tombstone);
            }
        }
    }

    /// Saves every partition whose state moved (what changed since the
    /// last save, or a new base when one is due: see [`checkpoint`](super::checkpoint)),
    /// then commits each owned partition's saved offset (again when
    /// unchanged: a commit refused during a rebalance is repaired by the
    /// next).
    fn checkpoint_all(&mut self) {
        let mut commit = TopicPartitionList::new();
        for (&p, part) in &mut self.parts {
            if part.next > part.saved {
                let mut bytes = Vec::new();
                let base = part.base_due || part.layout.base_due();
                let saved = if base {
                    let encoded = part.engine.durable_snapshot().encode(&mut bytes).map_err(anyhow::Error::from);
                    part.engine.track_increments();
                    encoded.and_then(|()| self.writer.save_base(p, &part.layout, &bytes, part.next, STATE_TIMEOUT))
                } else {
                    part.engine.take_increment(&mut bytes);
                    self.writer.save_increment(p, &part.layout, &bytes, part.next, STATE_TIMEOUT)
                };
                let error = saved.as_ref().err();
                CheckpointSaved { partition: p, base, bytes: bytes.len(), error }.emit(&self.io.metrics);
                match saved {
                    Ok(layout) => {
                        part.layout = layout;
                        part.base_due = false;
                        part.saved = part.next;
                    }
                    // What the increment held is gone from the engine's notes.
                    Err(_) => part.base_due = true,
                }
            }
            if part.saved > 0 {
                let _ = commit.add_partition_offset(&self.io.config.kafka.topic, p, Offset::Offset(part.saved));
            }
        }
        if commit.count() > 0 {
            let native = self.consumer.client().native_ptr();
            if let Err(code) = crate::pipeline::ingest::commit_async(native, commit.ptr()) {
                CommitNotSent(&rdkafka::error::KafkaError::ConsumerCommit(code)).emit(&self.io.metrics);
            }
        }
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        // The queue must go before the consumer: the context's handle too.
        self.consumer.context().queue.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}
