//! The typed events of shard mode (docs/scaling.md): each logs and counts
//! in one call, as in [`events`](super::events).

use std::time::Duration;

use crate::serve::metrics::Metrics;
use crate::serve::metrics::labels::Attempt;
use crate::telemetry::events::InternalEvent;

/// The group moved partitions to or from this shard.
pub struct PartitionsMoved<'a> {
    pub topic: &'a str,
    pub assigned: bool,
    pub partitions: &'a [i32],
    pub owned: usize,
}

impl InternalEvent for PartitionsMoved<'_> {
    fn emit(self, m: &Metrics) {
        m.shard.owned.set(self.owned as i64);
        if !self.assigned {
            for p in self.partitions {
                let _ = m.consumer.lag.remove_label_values(&[self.topic, &p.to_string()]);
            }
        }
        let what = if self.assigned { "partitions assigned" } else { "partitions revoked: their engines are dropped" };
        tracing::info!(partitions = ?self.partitions, owned = self.owned, "{what}");
        if self.owned == 0 {
            tracing::warn!(
                "this shard owns no partition of the topic: it answers from the page-totals topic and consumes nothing"
            );
        }
    }
}

/// A partition's engine was restored from the state topic (or started
/// empty when the topic holds none for it).
pub struct PartitionRestored {
    pub partition: i32,
    pub state_offset: i64,
    pub start: i64,
    pub posts: usize,
    /// Increments applied over the base.
    pub increments: usize,
    pub took: Duration,
}

impl InternalEvent for PartitionRestored {
    fn emit(self, _: &Metrics) {
        let took_ms = self.took.as_millis() as u64;
        tracing::info!(
            partition = self.partition,
            state_offset = self.state_offset,
            start = self.start,
            posts = self.posts,
            increments = self.increments,
            took_ms,
            "partition assigned and restored"
        );
    }
}

/// A partition's state was saved to the state topic, or not.
pub struct CheckpointSaved<'a> {
    pub partition: i32,
    /// A base (the whole state) rather than an increment.
    pub base: bool,
    pub bytes: usize,
    pub error: Option<&'a anyhow::Error>,
}

impl InternalEvent for CheckpointSaved<'_> {
    fn emit(self, m: &Metrics) {
        let result = if self.error.is_none() { Attempt::Ok } else { Attempt::Failed };
        m.shard.checkpoints.with_label_values(&[result.as_str()]).inc();
        let kind = if self.base { "base" } else { "increment" };
        match self.error {
            None => {
                m.shard.checkpoint_bytes.with_label_values(&[kind]).inc_by(self.bytes as u64);
                tracing::debug!(partition = self.partition, kind, bytes = self.bytes, "partition checkpoint saved");
            }
            Some(e) => tracing::warn!(partition = self.partition, error = %format!("{e:#}"),
                "saving the partition's state failed; its offset is not committed"),
        }
    }
}

/// Where the shard stands: posts held, messages applied but unsaved, page records
/// published since the last report.
pub struct ShardProgress {
    pub posts: usize,
    pub unsaved: u64,
    pub records: u64,
}

impl InternalEvent for ShardProgress {
    fn emit(self, m: &Metrics) {
        m.shard.posts.set(self.posts as i64);
        m.shard.unsaved.set(i64::try_from(self.unsaved).unwrap_or(i64::MAX));
        m.shard.records.inc_by(self.records);
    }
}

/// The global table's reader is this far behind the page-totals topic.
pub struct TotalsLag(pub u64);

impl InternalEvent for TotalsLag {
    fn emit(self, m: &Metrics) {
        m.shard.totals_lag.set(i64::try_from(self.0).unwrap_or(i64::MAX));
    }
}

/// Page-totals records the table refused (damaged, or over `engine.max_pages`).
pub struct TotalsRefused<'a> {
    pub topic: &'a str,
    pub refused: u64,
}

impl InternalEvent for TotalsRefused<'_> {
    fn emit(self, m: &Metrics) {
        m.shard.totals_refused.inc();
        if self.refused.is_power_of_two() {
            tracing::warn!(
                refused = self.refused,
                topic = self.topic,
                "page-totals records refused (damaged, or over engine.max_pages)"
            );
        }
    }
}

/// A partition's state in the state topic cannot be used. Damaged: the
/// partition starts without it, from the group's committed offset, and its
/// earlier history is missing. Sound but of another format version or
/// other windows (`rebuild`): the partition is rebuilt from the earliest
/// offset of the input (a gap there is counted when the input is read).
pub struct CheckpointUnusable<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub error: &'a anyhow::Error,
    pub rebuild: bool,
}

impl InternalEvent for CheckpointUnusable<'_> {
    fn emit(self, m: &Metrics) {
        let (topic, partition, error) = (self.topic, self.partition, format!("{:#}", self.error));
        if self.rebuild {
            tracing::error!(
                topic,
                partition,
                error,
                "the partition's checkpoint is not this build's to use: rebuilding the partition"
            );
            return;
        }
        m.consumer.history_gaps.inc();
        tracing::error!(
            topic,
            partition,
            error,
            "the partition's checkpoint cannot be used: its history is missing from the totals; continuing from the \
             group's committed offset"
        );
    }
}

/// What this instance knows of every partition's owner: how many are
/// silent past `cluster.partition_silent_after`, and the age of each heard
/// partition's last heartbeat.
pub struct OwnersHeard<'a> {
    pub unowned: usize,
    pub ages: &'a [(i32, f64)],
}

impl InternalEvent for OwnersHeard<'_> {
    fn emit(self, m: &Metrics) {
        m.shard.unowned.set(self.unowned as i64);
        for (p, age) in self.ages {
            m.shard.record_age.with_label_values(&[&p.to_string()]).set(*age);
        }
    }
}

/// A partition's owner fell silent: nobody publishes its pages, and every
/// instance serves their last figures until a new owner takes over.
pub struct PartitionSilent<'a> {
    pub partition: i32,
    pub owner: Option<&'a str>,
    pub silent_for: Duration,
}

impl InternalEvent for PartitionSilent<'_> {
    fn emit(self, _: &Metrics) {
        tracing::warn!(
            partition = self.partition,
            last_owner = self.owner.unwrap_or("unknown"),
            silent_s = self.silent_for.as_secs(),
            "partition silent: no owner has published it for cluster.partition_silent_after; its pages keep their \
             last figures until the group moves it"
        );
    }
}

/// A silent partition's owner (the same or a new one) speaks again.
pub struct PartitionSpeaks<'a> {
    pub partition: i32,
    pub owner: Option<&'a str>,
}

impl InternalEvent for PartitionSpeaks<'_> {
    fn emit(self, _: &Metrics) {
        tracing::info!(partition = self.partition, owner = self.owner.unwrap_or("unknown"), "partition owned again");
    }
}

/// The group gave this shard partitions after its first assignment: it
/// takes them over from the instance their last heartbeat names. At WARN
/// when that owner had been silent for `cluster.partition_silent_after`
/// (or is unknown): it failed. At INFO when it was still speaking: a
/// rebalance handed them over (the group grew, say).
pub struct PartitionsTakenOver<'a> {
    pub partitions: &'a [i32],
    pub last_owner: Option<&'a str>,
    pub silent_for: Option<Duration>,
    pub failed: bool,
}

impl InternalEvent for PartitionsTakenOver<'_> {
    fn emit(self, _: &Metrics) {
        let (partitions, last_owner) = (self.partitions, self.last_owner.unwrap_or("unknown"));
        let silent_s = self.silent_for.map(|d| d.as_secs());
        if self.failed {
            tracing::warn!(?partitions, last_owner, silent_s, "taking over partitions");
        } else {
            tracing::info!(?partitions, last_owner, silent_s, "partitions handed over by a live owner");
        }
    }
}

/// This shard started or stopped publishing the fleet's rank events, as it
/// gained or lost the designated partition.
pub struct RankEventsPublisher {
    pub on: bool,
    pub partition: i32,
}

impl InternalEvent for RankEventsPublisher {
    fn emit(self, _: &Metrics) {
        match self.on {
            true => tracing::info!(partition = self.partition, "this shard now publishes the fleet's rank events"),
            false => {
                tracing::info!(partition = self.partition, "this shard no longer publishes the fleet's rank events")
            }
        }
    }
}

/// The broker refused a page record, a tombstone or a heartbeat.
pub struct PageRecordFailed<'a> {
    pub error: &'a rdkafka::error::KafkaError,
    pub heartbeat: bool,
    /// Whether the page is kept to be published again at the next cycle.
    pub kept: bool,
    /// Whether to log (rate-limited by the caller; every one is counted).
    pub log: bool,
}

impl InternalEvent for PageRecordFailed<'_> {
    fn emit(self, m: &Metrics) {
        m.shard.deliveries.with_label_values(&["failed"]).inc();
        if !self.log {
            return;
        }
        let error = self.error;
        match (self.heartbeat, self.kept) {
            (true, _) => tracing::warn!(%error,
                "a heartbeat was refused by the page-totals topic; the next cycle sends another"),
            (false, true) => tracing::warn!(%error,
                "a page record was refused by the page-totals topic; the page is published again at the next cycle"),
            (false, false) => tracing::warn!(%error,
                "a page record was refused and too many wait already: the page is published again when it changes"),
        }
    }
}
