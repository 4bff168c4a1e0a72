//! The watermark guard (docs/events.md#watermark-jumps): one event must
//! not be able to move the watermark far ahead, since moving it drops the
//! periods that fall out of retention for good. Each input partition is
//! judged on its own, against the greatest `observed_at` taken from it, so
//! that the verdicts depend on each partition's order alone, not on how a
//! consumer interleaves partitions, and a replay gives the same answers.
//! An event observed more than `max_watermark_jump` past its partition's
//! watermark is refused (and dead-lettered by the caller) until the
//! partition corroborates the jump: `quorum` such events arrive before
//! `FORGET_AFTER × quorum` events within the watermark do.
//! The event that completes the quorum is applied and moves the watermark;
//! the ones refused before it stay on the dead-letter topic. A jump the
//! stream does not follow is forgotten.
//!
//! What an engine noticed on the way (a jump held, taken or forgotten, a
//! period dropped by retention) is queued as [`Notice`]s for the caller to
//! log and count.

use crate::window::{CalendarPeriod, Millis};

/// Within-watermark events, per event of the quorum, after which the
/// events past a jump are forgotten.
pub const FORGET_AFTER: u32 = 10;

/// Notices an engine keeps until they are taken; more are dropped (and
/// counted in the next one that fits).
pub const MAX_NOTICES: usize = 64;

/// Something the caller should log and count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// An event past the jump was refused: the first of a possible jump.
    JumpHeld { watermark: Millis, observed: Millis, quorum: u32 },
    /// `events` events past the jump corroborated it; the watermark moved.
    JumpTaken { from: Millis, to: Millis, events: u32 },
    /// The stream went on within the watermark: the `refused` events past
    /// the jump were an outlier.
    JumpForgotten { watermark: Millis, refused: u32 },
    /// Retention dropped the figures of `period` (`pages` pages had some).
    PeriodDropped { period: CalendarPeriod, pages: usize, watermark: Millis },
}

/// What the guard says of one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Apply it.
    Take,
    /// Refuse it: it jumps the watermark, uncorroborated.
    Refuse,
}

/// One partition's watermark (the greatest `observed_at` taken from it),
/// the events past a jump seen so far, and those within since the first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Guard {
    pub watermark: Option<Millis>,
    pub past: u32,
    pub within: u32,
}

impl Guard {
    /// Judges an event observed at `observed`, with the jump allowed
    /// `max_jump` ms (0: any) and `quorum`; queues notices. A taken event
    /// moves the partition's watermark.
    pub fn judge(&mut self, observed: Millis, limits: (Millis, u32), notices: &mut Notices) -> Verdict {
        let verdict = self.verdict(observed, limits, notices);
        if verdict == Verdict::Take && self.watermark.is_none_or(|w| observed > w) {
            self.watermark = Some(observed);
        }
        verdict
    }

    fn verdict(&mut self, observed: Millis, (max_jump, quorum): (Millis, u32), notices: &mut Notices) -> Verdict {
        let Some(w) = self.watermark.filter(|_| max_jump > 0) else { return Verdict::Take };
        if observed <= w.saturating_add(max_jump) {
            if self.past > 0 {
                self.within += 1;
                if self.within >= FORGET_AFTER.saturating_mul(quorum) {
                    notices.push(Notice::JumpForgotten { watermark: w, refused: self.past });
                    (self.past, self.within) = (0, 0);
                }
            }
            return Verdict::Take;
        }
        self.past += 1;
        if self.past == 1 {
            notices.push(Notice::JumpHeld { watermark: w, observed, quorum });
        }
        if self.past < quorum {
            return Verdict::Refuse;
        }
        notices.push(Notice::JumpTaken { from: w, to: observed, events: self.past });
        (self.past, self.within) = (0, 0);
        Verdict::Take
    }
}

/// Most partitions guarded apart; the events of further ones share one
/// guard (a topic of more partitions than this is not expected).
pub const MAX_GUARDED_PARTITIONS: usize = 4096;

/// The guards of the partitions an engine consumes, by partition; events
/// without a partition (tests, shard mode's one-partition engines) share
/// the guard of [`NO_PARTITION`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Guards(pub Vec<(u32, Guard)>);

/// The partition of events applied without one.
pub const NO_PARTITION: u32 = u32::MAX;

impl Guards {
    pub fn of(&mut self, partition: Option<u32>) -> &mut Guard {
        let mut p = partition.unwrap_or(NO_PARTITION);
        // Events come in runs of one partition: the last one first.
        if self.0.last().is_some_and(|(q, _)| *q == p) {
            return &mut self.0.last_mut().expect("just checked").1;
        }
        if self.0.len() >= MAX_GUARDED_PARTITIONS && !self.0.iter().any(|(q, _)| *q == p) {
            p = NO_PARTITION;
        }
        // The guard asked for goes last (the order means nothing).
        match self.0.iter().position(|(q, _)| *q == p) {
            Some(i) => {
                let last = self.0.len() - 1;
                self.0.swap(i, last);
            }
            None => self.0.push((p, Guard::default())),
        }
        &mut self.0.last_mut().expect("one at least").1
    }
}

/// A bounded queue of notices.
#[derive(Debug, Default)]
pub struct Notices {
    queue: Vec<Notice>,
    dropped: u64,
}

impl Notices {
    pub fn push(&mut self, n: Notice) {
        if self.queue.len() < MAX_NOTICES {
            self.queue.push(n);
        } else {
            self.dropped += 1;
        }
    }

    /// The notices queued, and how many did not fit since the last take.
    pub fn take(&mut self) -> (Vec<Notice>, u64) {
        (std::mem::take(&mut self.queue), std::mem::take(&mut self.dropped))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Millis = 86_400_000;

    /// A guard whose partition's watermark is `w`.
    fn at(w: Millis) -> Guard {
        Guard { watermark: Some(w), ..Guard::default() }
    }

    #[test]
    fn a_jump_is_refused_until_a_quorum_of_events_past_it_corroborates_it() {
        let (mut g, mut n) = (at(100 * DAY), Notices::default());
        let limits = (7 * DAY, 3);
        assert_eq!(g.judge(106 * DAY, limits, &mut n), Verdict::Take, "within the jump");
        assert_eq!(g.watermark, Some(106 * DAY), "and it moves the partition's watermark");
        assert_eq!(Guard::default().judge(999 * DAY, limits, &mut n), Verdict::Take, "a partition's first event");
        assert_eq!(g.judge(500 * DAY, limits, &mut n), Verdict::Refuse);
        assert_eq!(g.watermark, Some(106 * DAY), "a refused event moves nothing");
        assert_eq!(g.judge(101 * DAY, limits, &mut n), Verdict::Take, "the stream goes on");
        assert_eq!(g.judge(500 * DAY, limits, &mut n), Verdict::Refuse);
        assert_eq!(g.judge(501 * DAY, limits, &mut n), Verdict::Take, "the third past it: taken");
        let (notices, dropped) = n.take();
        assert_eq!(
            notices,
            [
                Notice::JumpHeld { watermark: 106 * DAY, observed: 500 * DAY, quorum: 3 },
                Notice::JumpTaken { from: 106 * DAY, to: 501 * DAY, events: 3 }
            ]
        );
        assert_eq!(dropped, 0);
        assert_eq!(g, at(501 * DAY), "a new jump starts afresh");
        assert_eq!(g.judge(5000 * DAY, (0, 3), &mut n), Verdict::Take, "no bound: taken at once");
    }

    #[test]
    fn an_outlier_is_forgotten_once_the_stream_goes_on_within_the_watermark() {
        let (mut g, mut n) = (at(100 * DAY), Notices::default());
        let limits = (7 * DAY, 2);
        assert_eq!(g.judge(400 * DAY, limits, &mut n), Verdict::Refuse);
        for _ in 0..FORGET_AFTER * 2 {
            assert_eq!(g.judge(100 * DAY, limits, &mut n), Verdict::Take);
        }
        assert_eq!(g.judge(400 * DAY, limits, &mut n), Verdict::Refuse, "counted afresh, not the second of two");
        let notices = n.take().0;
        assert_eq!(notices[1], Notice::JumpForgotten { watermark: 100 * DAY, refused: 1 });
        assert_eq!(notices.len(), 3);
    }

    #[test]
    fn partitions_are_guarded_apart_and_their_number_is_bounded() {
        let mut guards = Guards::default();
        guards.of(Some(3)).watermark = Some(5);
        assert_eq!(guards.of(Some(3)).watermark, Some(5));
        assert_eq!(guards.of(Some(4)).watermark, None);
        assert_eq!(guards.of(None).watermark, None);
        for p in 0..MAX_GUARDED_PARTITIONS as u32 * 2 {
            guards.of(Some(p));
        }
        assert_eq!(guards.0.len(), MAX_GUARDED_PARTITIONS, "further partitions share one guard");
    }

    #[test]
    fn notices_are_bounded_and_what_does_not_fit_is_counted() {
        let mut n = Notices::default();
        for _ in 0..MAX_NOTICES + 5 {
            n.push(Notice::JumpForgotten { watermark: 0, refused: 1 });
        }
        let (queue, dropped) = n.take();
        assert_eq!((queue.len(), dropped), (MAX_NOTICES, 5));
        assert_eq!(n.take(), (Vec::new(), 0));
    }
}
