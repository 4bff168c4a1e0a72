//! Who owns each input partition, as far as this instance can tell. Every
//! publish cycle (`ranking.interval`), the owner of a partition writes its
//! heartbeat to the page-totals topic under the partition's watermark key
//! (`\0wm<p>`): the partition's watermark once it is caught up, the owner's
//! instance id and the wall-clock time it was sent. Every instance's table
//! reads it, so each knows, per partition, when its owner last spoke and
//! who it was; a partition silent for `cluster.partition_silent_after`
//! counts as unowned (docs/operations.md#shard-mode).
//!
//! Pure: time is an argument.

use std::time::Duration;

use engagement_core::window::Millis;

/// What an owner says about one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heartbeat {
    /// The partition's watermark; `None` until it is caught up.
    pub watermark: Option<Millis>,
    /// When the owner sent it (its wall clock, ms since the epoch).
    pub sent_ms: i64,
    /// The owner's instance id; `None` in a record of an older build.
    pub owner: Option<String>,
    /// Whether the partition's state lost input records before they were
    /// applied (a history gap whose windows have not moved past it): every
    /// instance marks its pages (`history_complete: false`).
    pub history_gap: bool,
    /// Whether the owner has caught up on the partition and the broker
    /// acknowledged its pages: an instance that reads this (or a watermark,
    /// which an owner sends only then) may count the partition's pages as
    /// in the topic. An empty partition has no watermark but is ready.
    pub ready: bool,
}

/// Instance ids are at most 249 bytes (config/mod.rs checks them).
const MAX_OWNER: usize = 255;
/// Appended when the partition has a history gap.
const GAP: &[u8] = b"/gap";
/// Appended (before [`GAP`]) when the owner is ready on the partition.
const READY: &[u8] = b"/ready";

impl Heartbeat {
    /// The record value: watermark (`i64::MIN`: none) and send time, both
    /// little-endian, then the owner's id, then `/ready` when the owner is
    /// ready on it, then `/gap` when the partition has a history gap
    /// (instance ids never hold a `/`; an older build reads them as part of
    /// the owner's id).
    pub fn encode(&self) -> Vec<u8> {
        let mut v = self.watermark.unwrap_or(i64::MIN).to_le_bytes().to_vec();
        v.extend_from_slice(&self.sent_ms.to_le_bytes());
        v.extend_from_slice(self.owner.as_deref().unwrap_or_default().as_bytes());
        if self.ready {
            v.extend_from_slice(READY);
        }
        if self.history_gap {
            v.extend_from_slice(GAP);
        }
        v
    }

    /// Reads a record value. An older build's value is the watermark alone
    /// (8 bytes): its send time is the record's timestamp `record_ms`. A
    /// watermark says ready too: older builds send no `/ready`, but a
    /// watermark only once caught up.
    pub fn decode(value: &[u8], record_ms: Option<i64>) -> Option<Heartbeat> {
        let at = |i: usize| value.get(i..i + 8).and_then(|b| b.try_into().ok()).map(i64::from_le_bytes);
        if value.len() == 8 {
            let watermark = at(0);
            let ready = watermark.is_some();
            return Some(Heartbeat { watermark, sent_ms: record_ms?, owner: None, history_gap: false, ready });
        }
        let (watermark, sent_ms) = (at(0)?, at(8)?);
        let rest = value.get(16..)?;
        let (rest, history_gap) = match rest.strip_suffix(GAP) {
            Some(owner) => (owner, true),
            None => (rest, false),
        };
        let (rest, ready_flag) = match rest.strip_suffix(READY) {
            Some(owner) => (owner, true),
            None => (rest, false),
        };
        let owner = std::str::from_utf8(rest).ok().filter(|o| !o.is_empty() && o.len() <= MAX_OWNER)?;
        let watermark = Some(watermark).filter(|w| *w != i64::MIN);
        let ready = ready_flag || watermark.is_some();
        Some(Heartbeat { watermark, sent_ms, owner: Some(owner.into()), history_gap, ready })
    }
}

/// A partition that fell silent or spoke again, as [`Partitions::check`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Silent { partition: i32, owner: Option<String>, silent_ms: i64 },
    Speaking { partition: i32, owner: Option<String> },
}

/// The last heartbeat of each input partition.
#[derive(Debug)]
pub struct Partitions {
    last: Vec<Option<Heartbeat>>,
    silent: Vec<bool>,
    silent_after_ms: i64,
    /// When checking began: a partition never heard from is silent from then.
    since_ms: Option<i64>,
}

impl Partitions {
    /// Partitions `0..count` of the input, none heard yet.
    pub fn new(count: i32, silent_after: Duration) -> Partitions {
        let n = usize::try_from(count).unwrap_or(0);
        let silent_after_ms = i64::try_from(silent_after.as_millis()).unwrap_or(i64::MAX);
        Partitions { last: vec![None; n], silent: vec![false; n], silent_after_ms, since_ms: None }
    }

    pub fn count(&self) -> usize {
        self.last.len()
    }

    /// Notes a heartbeat of `partition`; one beyond the input's partition
    /// count at start (the topic grew) is ignored.
    pub fn heard(&mut self, partition: i32, beat: Heartbeat) {
        if let Some(last) = usize::try_from(partition).ok().and_then(|p| self.last.get_mut(p)) {
            *last = Some(beat);
        }
    }

    /// Partitions whose owner has not said it is ready (or not spoken), by
    /// the last heartbeat heard of each. None: every partition's pages are
    /// in the topic, and a table read to its ends holds the whole input.
    pub fn not_ready(&self) -> usize {
        self.last.iter().filter(|b| !b.as_ref().is_some_and(|b| b.ready)).count()
    }

    /// The last heartbeat of `partition`.
    pub fn last(&self, partition: i32) -> Option<&Heartbeat> {
        usize::try_from(partition).ok().and_then(|p| self.last.get(p)?.as_ref())
    }

    /// Starts judging silence at `now_ms` (once the table has read the
    /// topic: before, old heartbeats would look silent). Later calls
    /// change nothing.
    pub fn start(&mut self, now_ms: i64) {
        self.since_ms.get_or_insert(now_ms);
    }

    /// How long `partition`'s owner has been silent at `now_ms`.
    fn silent_for(&self, p: usize, now_ms: i64) -> Option<i64> {
        let since = self.since_ms?;
        let heard = self.last[p].as_ref().map_or(since, |b| b.sent_ms);
        Some((now_ms - heard).max(0))
    }

    /// Partitions silent longer than the threshold at `now_ms`; 0 before [`Partitions::start`].
    pub fn unowned(&self, now_ms: i64) -> usize {
        (0..self.count()).filter(|&p| self.silent_for(p, now_ms).is_some_and(|s| s > self.silent_after_ms)).count()
    }

    /// Seconds since each heard partition's last heartbeat was sent.
    pub fn ages(&self, now_ms: i64) -> impl Iterator<Item = (i32, f64)> + '_ {
        let age = move |b: &Heartbeat| (now_ms - b.sent_ms).max(0) as f64 / 1000.0;
        self.last.iter().enumerate().filter_map(move |(p, b)| Some((p as i32, age(b.as_ref()?))))
    }

    /// The partitions that fell silent or spoke again since the last check.
    pub fn check(&mut self, now_ms: i64) -> Vec<Change> {
        let mut changes = Vec::new();
        for p in 0..self.count() {
            let Some(silent_ms) = self.silent_for(p, now_ms) else { return changes };
            let silent = silent_ms > self.silent_after_ms;
            if silent == self.silent[p] {
                continue;
            }
            self.silent[p] = silent;
            let (partition, owner) = (p as i32, self.last[p].as_ref().and_then(|b| b.owner.clone()));
            changes.push(if silent {
                Change::Silent { partition, owner, silent_ms }
            } else {
                Change::Speaking { partition, owner }
            });
        }
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn beat(sent_ms: i64, owner: &str) -> Heartbeat {
        Heartbeat { watermark: Some(7), sent_ms, owner: Some(owner.into()), history_gap: false, ready: true }
    }

    #[test]
    fn a_heartbeat_round_trips_and_an_old_watermark_still_reads() {
        let gap = Heartbeat { watermark: None, sent_ms: 5, owner: Some("a".into()), history_gap: true, ready: false };
        let empty_ready = Heartbeat { ready: true, ..gap.clone() };
        for b in [beat(1_700_000_000_000, "shard-2"), gap.clone(), empty_ready] {
            assert_eq!(Heartbeat::decode(&b.encode(), None), Some(b));
        }
        let old = Heartbeat::decode(&42i64.to_le_bytes(), Some(99));
        let want = Heartbeat { watermark: Some(42), sent_ms: 99, owner: None, history_gap: false, ready: true };
        assert_eq!(old, Some(want), "a watermark says ready");
        // The previous build's value: no `/ready`, ready by its watermark alone.
        let mut previous = 7i64.to_le_bytes().to_vec();
        previous.extend_from_slice(&5i64.to_le_bytes());
        previous.extend_from_slice(b"a/gap");
        let previous = Heartbeat::decode(&previous, None).unwrap();
        assert_eq!((previous.owner.as_deref(), previous.ready, previous.history_gap), (Some("a"), true, true));
        assert_eq!(Heartbeat::decode(&42i64.to_le_bytes(), None), None, "no time, no heartbeat");
        for bad in [&b""[..], b"short", &[0; 16], &[0; 12]] {
            assert_eq!(Heartbeat::decode(bad, Some(1)), None, "{bad:?}");
        }
        let mut not_utf8 = beat(1, "x").encode();
        not_utf8.push(0xff);
        assert_eq!(Heartbeat::decode(&not_utf8, None), None);
    }

    #[test]
    fn a_partition_is_unowned_once_silent_longer_than_the_threshold() {
        let mut ps = Partitions::new(3, Duration::from_secs(30));
        assert_eq!(ps.unowned(1_000_000), 0, "nothing is judged before the table has read the topic");
        assert!(ps.check(1_000_000).is_empty());
        ps.heard(0, beat(100_000, "a"));
        ps.heard(1, beat(100_000, "b"));
        ps.heard(7, beat(100_000, "z"));
        ps.start(100_000);
        assert_eq!(ps.unowned(130_000), 0, "at the threshold, not yet");
        assert!(ps.check(130_000).is_empty());
        ps.heard(0, beat(125_000, "a"));
        assert_eq!(ps.unowned(131_000), 2, "b's partition, and 2 that nobody ever claimed");
        let silent = ps.check(131_000);
        assert_eq!(silent[0], Change::Silent { partition: 1, owner: Some("b".into()), silent_ms: 31_000 });
        assert_eq!(silent[1], Change::Silent { partition: 2, owner: None, silent_ms: 31_000 });
        assert!(ps.check(140_000).is_empty(), "said once");
        ps.heard(1, beat(141_000, "a"));
        assert_eq!(ps.check(141_000), vec![Change::Speaking { partition: 1, owner: Some("a".into()) }]);
        assert_eq!(ps.ages(141_500).collect::<Vec<_>>(), vec![(0, 16.5), (1, 0.5)]);
        assert_eq!(ps.last(1).and_then(|b| b.owner.as_deref()), Some("a"));
        assert_eq!(ps.last(9), None);
    }
}
