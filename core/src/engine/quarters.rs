//! Per-quarter page totals: for each retained quarter, one slot per page
//! with at least one post or follower sample in that quarter, in a column
//! shared copy-on-write with views and checkpoints. Pages without data in
//! a quarter cost nothing there (their directory entry in the page state
//! is 4 bytes).

use crate::event::Counts;
use crate::window::{Millis, Quarter};

use super::column::Column;

/// Sums over a set of posts. Sums saturate at `u64::MAX` rather than wrap:
/// hostile input can reach it, and a saturated figure is honest where a
/// wrapped one lies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub reactions: u64,
    pub comments: u64,
    pub shares: u64,
    pub views: u64,
    pub posts: u64,
}

impl Totals {
    pub fn interactions(&self) -> u64 {
        self.reactions.saturating_add(self.comments).saturating_add(self.shares)
    }

    pub fn add_post(&mut self, c: &Counts) {
        self.add(c, 1);
    }

    pub fn remove_post(&mut self, c: &Counts) {
        self.sub(c, 1);
    }

    /// Replaces one post's counts `old` by `new` in the sums.
    pub fn apply_change(&mut self, old: &Counts, new: &Counts) {
        self.sub(old, 0);
        self.add(new, 0);
    }

    fn add(&mut self, c: &Counts, posts: u64) {
        self.reactions = self.reactions.saturating_add(c.reactions);
        self.comments = self.comments.saturating_add(c.comments);
        self.shares = self.shares.saturating_add(c.shares);
        self.views = self.views.saturating_add(c.views);
        self.posts = self.posts.saturating_add(posts);
    }

    /// Subtracting from a saturated sum leaves it saturated.
    fn sub(&mut self, c: &Counts, posts: u64) {
        let sub = |t: &mut u64, x: u64| {
            if *t != u64::MAX {
                *t = t.saturating_sub(x);
            }
        };
        sub(&mut self.reactions, c.reactions);
        sub(&mut self.comments, c.comments);
        sub(&mut self.shares, c.shares);
        sub(&mut self.views, c.views);
        sub(&mut self.posts, posts);
    }

    /// `self + other`, saturating.
    pub fn plus(mut self, o: &Totals) -> Totals {
        self.add(&Counts { reactions: o.reactions, comments: o.comments, shares: o.shares, views: o.views }, o.posts);
        self
    }

    /// `self - other`, saturating at zero (and staying saturated at max).
    pub fn minus(mut self, o: &Totals) -> Totals {
        self.sub(&Counts { reactions: o.reactions, comments: o.comments, shares: o.shares, views: o.views }, o.posts);
        self
    }
}

/// A value observed at an instant; `at == NONE` means no observation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    pub at: Millis,
    pub value: u64,
}

impl Sample {
    pub const NONE: Sample = Sample { at: Millis::MIN, value: 0 };

    pub fn get(&self) -> Option<Sample> {
        (self.at != Millis::MIN).then_some(*self)
    }

    /// Keeps the later of two samples (ties: the larger value), so merging
    /// is idempotent and independent of order.
    pub fn merge(&mut self, new: Sample) {
        if (new.at, new.value) > (self.at, self.value) {
            *self = new;
        }
    }
}

impl Default for Sample {
    fn default() -> Sample {
        Sample::NONE
    }
}

/// One page's figures in one quarter, packed to 56 bytes (a quarter's
/// post count fits in 32 bits: the post table holds fewer than 2^27).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Slot {
    pub page: u32,
    posts: u32,
    sums: [u64; 4],
    /// The latest follower count observed in the quarter.
    pub followers: Sample,
}

impl Slot {
    pub fn new(page: u32) -> Slot {
        Slot { page, ..Slot::default() }
    }

    pub fn totals(&self) -> Totals {
        let [reactions, comments, shares, views] = self.sums;
        Totals { reactions, comments, shares, views, posts: u64::from(self.posts) }
    }

    pub fn set_totals(&mut self, t: Totals) {
        self.sums = [t.reactions, t.comments, t.shares, t.views];
        self.posts = u32::try_from(t.posts).unwrap_or(u32::MAX);
    }
}

/// The slots of one quarter.
#[derive(Debug, Clone)]
pub struct QuarterTable {
    pub quarter: Quarter,
    pub slots: Column<Slot>,
}

/// Retained quarters by ring position (`quarter index mod ring`).
#[derive(Debug, Clone)]
pub struct Quarters {
    pub ring: Vec<Option<QuarterTable>>,
}

impl Quarters {
    pub fn new(ring: usize) -> Quarters {
        Quarters { ring: vec![None; ring] }
    }

    pub fn position(&self, q: Quarter) -> usize {
        q.index().rem_euclid(self.ring.len() as i32) as usize
    }

    pub fn table(&self, q: Quarter) -> Option<&QuarterTable> {
        self.ring[self.position(q)].as_ref().filter(|t| t.quarter == q)
    }

    /// The slot `dir` (a page's directory entry for `q`'s ring position)
    /// points to, if it is this page's slot in `q`.
    pub fn slot(&self, q: Quarter, page: u32, dir: u32) -> Option<&Slot> {
        let t = self.table(q)?;
        let i = dir.checked_sub(1)? as usize;
        (i < t.slots.len()).then(|| t.slots.get(i)).filter(|s| s.page == page)
    }

    /// Hints the CPU to load the slot `dir` points to in `q`.
    #[inline]
    pub fn prefetch(&self, q: Quarter, dir: u32) {
        if let (Some(t), Some(i)) = (self.table(q), dir.checked_sub(1)) {
            t.slots.prefetch(i as usize);
        }
    }

    /// The table of `q`, replacing an older quarter at its ring position.
    pub fn table_mut(&mut self, q: Quarter) -> &mut QuarterTable {
        let pos = self.position(q);
        let t = &mut self.ring[pos];
        if t.as_ref().is_none_or(|t| t.quarter != q) {
            *t = Some(QuarterTable { quarter: q, slots: Column::default() });
        }
        t.as_mut().expect("just ensured")
    }

    /// Drops every quarter before `oldest`.
    pub fn forget_before(&mut self, oldest: Quarter) {
        for t in &mut self.ring {
            if t.as_ref().is_some_and(|t| t.quarter < oldest) {
                *t = None;
            }
        }
    }

    pub fn heap_bytes(&self) -> usize {
        self.ring.iter().flatten().map(|t| t.slots.heap_bytes()).sum()
    }
}
