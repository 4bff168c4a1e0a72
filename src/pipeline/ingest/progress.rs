//! Progress of consumption: per owned partition, the offset after the last
//! applied message and the partition's ends; from them the lag and the
//! readiness. Pure bookkeeping: the loop feeds it what the source says.

use super::{Offsets, Record};
use crate::pipeline::status::Readiness;

/// One owned partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Partition {
    /// Offset after the last message applied; `None` before the first
    /// (consumption starts at the earliest offset).
    next: Option<i64>,
    /// (low, high) offsets when known.
    ends: Option<(i64, i64)>,
}

impl Partition {
    /// Messages between the position and the end. A position before the
    /// log start (a history gap: retention deleted what it needed) counts
    /// from the log start: what is gone will never be consumed.
    fn lag(&self) -> Option<u64> {
        let (low, high) = self.ends?;
        Some(lag(self.next.unwrap_or(low), (low, high)))
    }
}

/// Messages between position `next` and the end `high`, counted from the
/// log start `low` when `next` lies before it (shared by both modes).
pub fn lag(next: i64, (low, high): (i64, i64)) -> u64 {
    (high - next.max(low)).max(0) as u64
}

/// Progress over the partitions this instance owns, indexed by partition
/// number (partitions are dense, `0..n`).
#[derive(Debug, Default)]
pub struct Progress {
    partitions: Vec<Option<Partition>>,
    /// Ready once every owned partition lags at most this much.
    ready_max_lag: u64,
    /// Set while the topic is missing.
    topic_missing: Option<String>,
}

impl Progress {
    pub fn new(ready_max_lag: u64) -> Progress {
        Progress { ready_max_lag, ..Progress::default() }
    }

    /// Number of partitions ever assigned (the next new one's number).
    pub fn known(&self) -> usize {
        self.partitions.len()
    }

    pub fn owned(&self) -> impl Iterator<Item = i32> + '_ {
        self.partitions.iter().enumerate().filter(|(_, p)| p.is_some()).map(|(i, _)| i as i32)
    }

    /// Starts tracking `partition`, consumed from `start` (`None`: earliest).
    pub fn assigned(&mut self, partition: i32, start: Option<i64>) {
        let i = partition as usize;
        if self.partitions.len() <= i {
            self.partitions.resize(i + 1, None);
        }
        self.partitions[i] = Some(Partition { next: start, ends: None });
        self.topic_missing = None;
    }

    /// Stops tracking `partition`: its offsets are never committed again.
    #[cfg(test)]
    pub fn revoked(&mut self, partition: i32) {
        if let Some(p) = self.partitions.get_mut(partition as usize) {
            *p = None;
        }
    }

    pub fn topic_missing(&mut self, topic: &str) {
        self.topic_missing = Some(topic.to_owned());
    }

    /// Records that every message of `batch` was applied.
    pub fn applied<'a>(&mut self, batch: impl IntoIterator<Item = Record<'a>>) {
        for r in batch {
            if let Some(Some(p)) = self.partitions.get_mut(r.partition as usize) {
                p.next = Some(r.offset + 1);
            }
        }
    }

    /// Moves a partition's next offset up to the consumer's `position`.
    /// Between the last applied message and the position lie only offsets
    /// the consumer never hands over (transaction markers, aborted
    /// messages): without this, the committed offset and the lag would stop
    /// short of them forever. Call only when every message polled so far
    /// has been applied, or offsets would pass unapplied messages.
    pub fn position(&mut self, partition: i32, position: i64) {
        if let Some(Some(p)) = self.partitions.get_mut(partition as usize) {
            if p.next.is_none_or(|next| position > next) {
                p.next = Some(position);
            }
        }
    }

    /// Records a partition's ends as the source reports them.
    pub fn ends(&mut self, partition: i32, ends: (i64, i64)) {
        if let Some(Some(p)) = self.partitions.get_mut(partition as usize) {
            p.ends = Some(ends);
        }
    }

    pub fn ends_known(&self, partition: i32) -> bool {
        matches!(self.partitions.get(partition as usize), Some(Some(Partition { ends: Some(_), .. })))
    }

    /// Lag per owned partition whose end is known.
    pub fn lags(&self) -> impl Iterator<Item = (i32, u64)> + '_ {
        self.partitions.iter().enumerate().filter_map(|(i, p)| Some((i as i32, p.as_ref()?.lag()?)))
    }

    /// The offset after the last applied message, per owned partition.
    pub fn applied_offsets(&self) -> Offsets {
        self.partitions.iter().enumerate().filter_map(|(i, p)| Some((i as i32, p.as_ref()?.next?))).collect()
    }

    /// The offsets of `durable` that may be committed: those of partitions
    /// still owned (a revoked partition's offsets belong to its new owner).
    pub fn committable(&self, durable: &Offsets) -> Offsets {
        let owned = |p: i32| matches!(self.partitions.get(p as usize), Some(Some(_)));
        durable.iter().copied().filter(|(p, _)| owned(*p)).collect()
    }

    /// Readiness judged from the partitions alone (restoring and stopping
    /// are the loop's to say).
    pub fn readiness(&self) -> Readiness {
        if let Some(topic) = &self.topic_missing {
            return Readiness::WaitingForTopic { topic: topic.clone() };
        }
        let owned: Vec<&Partition> = self.partitions.iter().flatten().collect();
        if owned.is_empty() {
            return Readiness::Starting;
        }
        let Some(lags) = owned.iter().map(|p| p.lag()).collect::<Option<Vec<u64>>>() else {
            return Readiness::PartitionEndsUnknown;
        };
        if lags.iter().all(|l| *l <= self.ready_max_lag) {
            Readiness::Ready
        } else {
            Readiness::CatchingUp { behind: lags.iter().sum() }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(partition: i32, offset: i64) -> Record<'static> {
        Record { partition, offset, timestamp: None, key: None, payload: b"" }
    }

    #[test]
    fn readiness_follows_the_lag_of_every_partition() {
        let mut p = Progress::new(1);
        assert_eq!(p.readiness(), Readiness::Starting);
        p.topic_missing("t");
        assert_eq!(p.readiness(), Readiness::WaitingForTopic { topic: "t".into() });
        p.assigned(0, None);
        p.assigned(1, Some(5));
        assert_eq!(p.readiness(), Readiness::PartitionEndsUnknown);
        p.ends(0, (0, 10));
        p.ends(1, (0, 8));
        assert_eq!(p.readiness(), Readiness::CatchingUp { behind: 13 });
        p.applied([rec(0, 8), rec(1, 5)]);
        assert_eq!(p.readiness(), Readiness::CatchingUp { behind: 1 + 2 });
        p.applied([rec(1, 6)]);
        assert_eq!(p.readiness(), Readiness::Ready, "every partition within the bound of 1");
        assert_eq!(p.lags().collect::<Vec<_>>(), vec![(0, 1), (1, 1)]);
    }

    #[test]
    fn a_position_before_the_log_start_lags_from_the_log_start() {
        let mut p = Progress::new(0);
        p.assigned(0, Some(1_000));
        p.ends(0, (45_453, 45_453));
        assert_eq!(p.readiness(), Readiness::Ready, "everything it needed is gone; nothing is left to read");
        p.ends(0, (45_453, 45_460));
        assert_eq!(p.readiness(), Readiness::CatchingUp { behind: 7 });
    }

    #[test]
    fn the_position_carries_offsets_past_what_is_never_delivered() {
        let mut p = Progress::new(0);
        p.assigned(0, None);
        p.ends(0, (0, 153));
        p.applied([rec(0, 151)]);
        assert_eq!(p.readiness(), Readiness::CatchingUp { behind: 1 }, "a commit marker at the end");
        p.position(0, 153);
        assert_eq!(p.readiness(), Readiness::Ready);
        assert_eq!(p.applied_offsets(), vec![(0, 153)]);
        p.position(0, 100);
        assert_eq!(p.applied_offsets(), vec![(0, 153)], "never backwards");
        p.position(3, 7);
        assert_eq!(p.applied_offsets(), vec![(0, 153)], "only owned partitions");
    }

    #[test]
    fn only_owned_partitions_are_committable() {
        let mut p = Progress::new(0);
        p.assigned(0, None);
        p.assigned(2, Some(40));
        p.applied([rec(0, 3), rec(1, 99)]);
        assert_eq!(p.applied_offsets(), vec![(0, 4), (2, 40)], "partition 1 is not owned");
        p.revoked(2);
        assert_eq!(p.committable(&vec![(0, 4), (2, 40)]), vec![(0, 4)]);
        assert_eq!(p.owned().collect::<Vec<_>>(), vec![0]);
    }
}
