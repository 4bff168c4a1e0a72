//! The consume loop: take the next batch from the fetch thread (polled and
//! decoded there), apply → count each message, record progress (the
//! batch's positions included); then, at most every 100 ms, a tick:
//! flush counts, assign new partitions, update lag and readiness, publish
//! the view when due, checkpoint, commit.
//!
//! Order that matters: the view is published before readiness turns on,
//! so whoever sees `/readyz` 200 sees caught-up answers; offsets are
//! committed only from what is applied (no state directory) or from a
//! durable checkpoint, and only for partitions still owned.

use std::sync::Arc;
use std::time::{Duration, Instant};

use engagement_core::engine::{Engine, Outcome};
use engagement_core::event::Invalid;
use engagement_core::view::View;

use super::broker::BrokerWatch;
use super::checkpoints::{Checkpointer, Restored};
use super::fetcher::{Fetched, Fetcher, Polling, Stopped};
use super::progress::Progress;
use super::{Offsets, Parts, Source, Tally};
use crate::config::redact_brokers;
use crate::pipeline::status::Readiness;
use crate::serve::metrics::labels::Attempt;
use crate::telemetry::events::{AssignmentFailed, HistoryGap, InternalEvent, LagObserved, PartitionsAssigned};

/// How long a poll waits for the first message of a batch.
const POLL_WAIT: Duration = Duration::from_millis(100);
/// Most messages handed over by one poll.
const BATCH: usize = 4096;
/// Least time between two ticks.
const TICK: Duration = Duration::from_millis(100);
/// Least time between two ticks while catching up and the source runs dry
/// (so that readiness is seen soon after the last message).
const EARLY_TICK: Duration = Duration::from_millis(10);
/// How soon a failed metadata request is retried.
const METADATA_RETRY: Duration = Duration::from_secs(2);
/// How long to wait for the final commit's answer at shutdown.
const LAST_COMMIT_WAIT: Duration = Duration::from_secs(2);

/// Apply → count for decoded batches.
struct Applier {
    engine: Engine,
    tally: Tally,
    /// The last batch's results (kept to reuse the allocation).
    results: Vec<Result<Outcome, Invalid>>,
}

impl Applier {
    /// Applies a decoded batch at once (the engine overlaps the memory
    /// accesses of consecutive events), then counts, dead-letters and
    /// records progress, positions included.
    fn apply(&mut self, fetched: &Fetched, progress: &mut Progress) {
        let batch = &fetched.decoded;
        self.results.clear();
        self.engine.apply_decoded(batch.events(), batch.partitions(), &mut self.results);
        self.tally.count(batch.records(), &self.results);
        self.tally.notices(self.engine.take_notices());
        progress.applied(batch.records());
        for &(partition, position) in &fetched.positions {
            progress.position(partition, position);
        }
    }

    fn flush(&mut self) {
        self.tally.flush();
    }
}

/// When the tick does what.
struct Schedule {
    next_tick: Instant,
    next_view: Instant,
    next_commit: Instant,
    next_metadata: Instant,
    next_ends_fetch: Instant,
}

/// The loop and everything it owns.
pub struct Consume<S> {
    source: S,
    /// Polls and decodes on its own thread.
    fetcher: Fetcher,
    applier: Applier,
    progress: Progress,
    checkpointer: Option<Checkpointer>,
    /// Where each partition starts, from the checkpoint.
    start: Offsets,
    /// Assigned partitions whose first offset needed is not yet compared
    /// with the earliest the broker keeps, with that offset.
    unchecked: Vec<(i32, Option<i64>)>,
    schedule: Schedule,
    broker: BrokerWatch,
    /// Whether the preparer was asked to turn the daemon ready.
    ready_requested: bool,
    parts: Arc<Parts>,
}

impl<S: Source> Consume<S> {
    pub fn new(mut source: S, parts: Parts, restored: Restored) -> anyhow::Result<Consume<S>> {
        let parts = Arc::new(parts);
        let cx = parts.config.events.decode_context();
        let polling = Polling { wait: POLL_WAIT, batch: BATCH, cx };
        let fetcher = Fetcher::spawn(source.feed(), polling)
            .map_err(|e| anyhow::anyhow!("cannot start the fetch thread: {e}"))?;
        let now = Instant::now();
        parts.status.send_replace(Readiness::Starting);
        Ok(Consume {
            ready_requested: false,
            source,
            fetcher,
            applier: Applier {
                engine: restored.engine,
                tally: Tally::new(parts.metrics.clone(), parts.publisher.clone(), parts.config.kafka.topic.clone()),
                results: Vec::new(),
            },
            progress: Progress::new(parts.config.ranking.ready_max_lag),
            checkpointer: restored.checkpointer,
            start: restored.start,
            unchecked: Vec::new(),
            schedule: Schedule {
                next_tick: now,
                next_view: now,
                next_commit: now + parts.config.kafka.commit_interval,
                next_metadata: now,
                next_ends_fetch: now,
            },
            broker: BrokerWatch::new(redact_brokers(&parts.config.kafka.brokers)),
            parts,
        })
    }

    /// Consumes until shutdown is requested. The first tick comes first:
    /// it assigns the partitions.
    /// Fails only if the fetch thread stops (a bug: it cannot on input).
    pub fn run(&mut self) -> anyhow::Result<()> {
        let mut last_tick = Instant::now();
        let mut dry = false;
        while !self.parts.shutdown.is_cancelled() {
            let now = Instant::now();
            let early = dry && !self.ready_requested && now >= last_tick + EARLY_TICK;
            if now >= self.schedule.next_tick || early {
                self.schedule.next_tick = now + TICK;
                last_tick = now;
                self.tick(now);
            }
            dry = self.poll().map_err(|_| anyhow::anyhow!("the fetch thread stopped; consumption cannot go on"))?;
        }
        Ok(())
    }

    /// Applies the next batch from the fetch thread, waiting for it up to
    /// the poll wait. Whether the source ran dry (or nothing came).
    pub(super) fn poll(&mut self) -> Result<bool, Stopped> {
        let Some(fetched) = self.fetcher.next(POLL_WAIT)? else { return Ok(true) };
        self.applier.apply(&fetched, &mut self.progress);
        let dry = fetched.dry;
        self.fetcher.recycle(fetched);
        Ok(dry)
    }

    /// Housekeeping as of `now`.
    pub(super) fn tick(&mut self, now: Instant) {
        self.applier.flush();
        if self.source.brokers_down() {
            self.broker.failed(now, "all broker connections are down", &self.parts.metrics);
        }
        if now >= self.schedule.next_metadata {
            self.schedule.next_metadata = now + self.parts.config.kafka.metadata_refresh;
            self.assign_new_partitions();
        }
        self.observe_ends(now);
        self.update_readiness(now);
        if now >= self.schedule.next_view {
            self.schedule.next_view = now + self.parts.config.ranking.interval;
            let ready = self.parts.status.borrow().is_ready();
            self.publish(ready, None);
        }
        self.commit_progress(now);
    }

    /// Assigns every partition of the topic not yet assigned, including
    /// ones added to the topic later.
    fn assign_new_partitions(&mut self) {
        let m = &self.parts.metrics;
        let metadata = self.source.partitions();
        let now = Instant::now();
        let count = match metadata {
            Ok(Some(n)) => {
                self.broker.answered(now, m);
                n
            }
            Ok(None) => {
                self.broker.answered(now, m);
                self.progress.topic_missing(self.source.topic());
                self.schedule.next_metadata = now + Duration::from_secs(1);
                return;
            }
            Err(e) => {
                // Retried soon, so that a broker back is noticed soon.
                self.schedule.next_metadata = now + METADATA_RETRY;
                return self.broker.failed(now, &e.to_string(), m);
            }
        };
        let from = self.progress.known();
        if count <= from {
            return;
        }
        let start_of = |p: i32| self.start.iter().find(|(q, _)| *q == p).map(|(_, o)| *o);
        let new: Vec<(i32, Option<i64>)> = (from as i32..count as i32).map(|p| (p, start_of(p))).collect();
        if let Err(e) = self.source.assign(&new) {
            return AssignmentFailed { what: "cannot assign partitions", error: &*e }.emit(m);
        }
        PartitionsAssigned { topic: self.source.topic(), from, to: count }.emit(m);
        // The first fetch responses bring the ends; ask the broker only if
        // they do not come.
        self.schedule.next_ends_fetch = now + Duration::from_secs(2);
        for (p, start) in new {
            self.progress.assigned(p, start);
            self.unchecked.push((p, start));
        }
    }

    /// Warns when offsets the state needs no longer exist (consumption
    /// continues from the earliest offset that does), once a partition's
    /// ends are first known.
    fn check_history(&mut self, partition: i32, (low, _): (i64, i64)) {
        let Some(i) = self.unchecked.iter().position(|(p, _)| *p == partition) else {
            return;
        };
        let needed = self.unchecked.swap_remove(i).1.unwrap_or(0);
        if needed < low {
            let topic = self.source.topic();
            HistoryGap { topic, partition, needed, earliest: low }.emit(&self.parts.metrics);
            // Its pages are marked until every window has moved past the
            // watermark the partition reaches once caught up.
            self.applier.engine.note_gap(partition as u32);
        }
    }

    /// Partition ends from the client's cache (its last fetch response);
    /// from the broker (at most every 2 s) for a partition whose end is not
    /// known yet.
    fn observe_ends(&mut self, now: Instant) {
        let may_fetch = now >= self.schedule.next_ends_fetch;
        let owned: Vec<i32> = self.progress.owned().collect();
        for p in owned {
            let ends = match self.source.ends(p, false) {
                None if may_fetch && !self.progress.ends_known(p) => {
                    self.schedule.next_ends_fetch = now + Duration::from_secs(2);
                    self.source.ends(p, true)
                }
                cached => cached,
            };
            if let Some(ends) = ends {
                self.check_history(p, ends);
                self.progress.ends(p, ends);
            }
        }
        let ready_max_lag = self.parts.config.ranking.ready_max_lag;
        for (partition, lag) in self.progress.lags() {
            LagObserved { topic: self.source.topic(), partition, lag: lag as i64 }.emit(&self.parts.metrics);
            if lag <= ready_max_lag {
                self.applier.engine.close_gap(partition as u32);
            }
        }
    }

    /// Turns ready once every partition is caught up, publishing the view
    /// first. Readiness is one-way: falling behind later shows in the lag.
    fn update_readiness(&mut self, now: Instant) {
        let ready = self.parts.status.borrow().is_ready();
        if ready {
            return;
        }
        if self.broker.is_unreachable() {
            let brokers = self.broker.brokers().to_owned();
            self.parts.status.send_replace(Readiness::BrokerUnreachable { brokers });
            return;
        }
        let directory = self.parts.views.directory();
        match self.progress.readiness() {
            Readiness::Ready if !directory.loaded() => {
                let source = directory.source().to_owned();
                self.parts.status.send_replace(Readiness::LoadingDirectory { source });
            }
            Readiness::Ready if !self.ready_requested => {
                // The preparer turns the daemon ready once this view is out.
                let behind = self.progress.lags().map(|(_, l)| l).sum();
                self.schedule.next_view = now + self.parts.config.ranking.interval;
                self.ready_requested = true;
                self.publish(true, Some(behind));
            }
            Readiness::Ready => {}
            other => {
                if let Readiness::WaitingForTopic { topic } = &other {
                    // Said once when it starts, and on every change back.
                    if !matches!(&*self.parts.status.borrow(), Readiness::WaitingForTopic { .. }) {
                        crate::telemetry::events::TopicMissing { topic }.emit(&self.parts.metrics);
                    }
                }
                self.parts.status.send_replace(other);
            }
        }
    }

    /// Builds the view (a snapshot: microseconds) and hands it to the
    /// preparer; `ready` tells the rank-change loop whether it may report
    /// changes against it.
    fn publish(&mut self, ready: bool, then_ready: Option<u64>) {
        let view = Arc::new(View::build(&self.applier.engine));
        self.parts.views.publish(view, ready, then_ready);
    }

    /// Checkpoints when a state directory is set (committing what became
    /// durable); otherwise commits what is applied, every commit interval.
    fn commit_progress(&mut self, now: Instant) {
        let offsets = self.progress.applied_offsets();
        let durable = match self.checkpointer.as_mut() {
            Some(c) => c.tick(now, &self.applier.engine, &offsets, &self.parts.metrics).map(|d| d.offsets),
            None if now >= self.schedule.next_commit => {
                self.schedule.next_commit = now + self.parts.config.kafka.commit_interval;
                Some(offsets)
            }
            None => None,
        };
        if let Some(durable) = durable {
            self.source.commit(&self.progress.committable(&durable));
        }
    }

    /// Stops intake in order: final counts and view, the last checkpoint,
    /// the last commit (waiting at most 2 s for its answer, so shutdown
    /// stays bounded without a broker). A failed last checkpoint is an
    /// error: nothing is committed and the process exits non-zero.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        let Self { fetcher, applier, progress, .. } = self;
        fetcher.stop(&mut |fetched| applier.apply(&fetched, progress));
        self.parts.status.send_replace(Readiness::Stopping);
        self.applier.flush();
        self.publish(false, None);
        let offsets = self.progress.applied_offsets();
        let m = self.parts.metrics.clone();
        let (durable, failed) = match self.checkpointer.as_mut() {
            None => (Some(offsets), None),
            Some(c) => match c.last(&self.applier.engine, &offsets, &m) {
                Ok(d) => (Some(d.offsets), None),
                Err(e) => (None, Some(e)),
            },
        };
        let commits =
            || Attempt::ALL.iter().map(|a| m.consumer.commits.with_label_values(&[a.as_str()]).get()).sum::<u64>();
        let before = commits();
        if let Some(durable) = durable {
            self.source.commit(&self.progress.committable(&durable));
        }
        self.source.serve_until(Instant::now() + LAST_COMMIT_WAIT, &mut || commits() != before);
        match failed {
            None => Ok(()),
            Some(e) => Err(anyhow::anyhow!(
                "final checkpoint failed ({e}); no offsets were committed and the next start resumes from the \
                 previous checkpoint: check that state.dir is writable"
            )),
        }
    }

    #[cfg(test)]
    pub(super) fn engine(&self) -> &Engine {
        &self.applier.engine
    }

    #[cfg(test)]
    pub(super) fn source_mut(&mut self) -> &mut S {
        &mut self.source
    }

    #[cfg(test)]
    pub(super) fn revoke(&mut self, partition: i32) {
        self.progress.revoked(partition);
    }
}
