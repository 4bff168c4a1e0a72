//! Per-period page totals: for each calendar kind the engine keeps and each
//! retained period of it, one slot per page with at least one post or
//! follower sample in that period, in a column shared copy-on-write with
//! views and checkpoints, and an index from page number to slot (4 bytes
//! per page number below the largest one with a slot there).

use crate::event::Counts;
use crate::window::{Bounds, CalendarKind, CalendarPeriod, Millis};

use super::column::Column;
use super::tops::TopRef;

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

/// The slots of one period.
#[derive(Debug, Clone)]
pub struct PeriodTable {
    pub period: CalendarPeriod,
    pub slots: Column<Slot>,
    /// Per page number: 1 + the page's slot, or 0.
    index: Column<u32>,
    /// Quarters only: per slot, the page's top list of this quarter once
    /// its live list has gone on to a later quarter (see
    /// [`pages`](super::pages)); as long as the last slot with one.
    pub(super) tops: Column<TopRef>,
}

impl PeriodTable {
    pub(super) fn new(period: CalendarPeriod) -> PeriodTable {
        PeriodTable { period, slots: Column::default(), index: Column::default(), tops: Column::default() }
    }

    /// The kept top list of slot `i` (empty: none).
    pub fn top(&self, i: usize) -> TopRef {
        if i < self.tops.len() { *self.tops.get(i) } else { TopRef::default() }
    }

    /// Sets the kept top list of slot `i`; returns the one it replaces.
    pub(super) fn set_top(&mut self, i: usize, list: TopRef) -> TopRef {
        if i >= self.tops.len() {
            if list.is_empty() {
                return TopRef::default();
            }
            self.tops.resize(i + 1, TopRef::default());
        }
        std::mem::replace(self.tops.get_mut(i), list)
    }

    /// Page `page`'s slot, with its index in the table.
    #[inline]
    pub fn slot(&self, page: u32) -> Option<(usize, &Slot)> {
        let p = page as usize;
        let i = (p < self.index.len()).then(|| *self.index.get(p))?.checked_sub(1)? as usize;
        (i < self.slots.len()).then(|| (i, self.slots.get(i))).filter(|(_, s)| s.page == page)
    }

    /// Page `page`'s slot, added if it has none; whether it was added.
    fn slot_or_add(&mut self, page: u32) -> (usize, bool) {
        match self.slot(page) {
            Some((i, _)) => (i, false),
            None => (self.insert(Slot::new(page)), true),
        }
    }

    /// Appends a restored slot; false when its page already has one.
    pub(super) fn restore(&mut self, slot: Slot) -> bool {
        self.slot(slot.page).is_none() && {
            self.insert(slot);
            true
        }
    }

    /// Appends the slot of a page that has none here; its index.
    fn insert(&mut self, slot: Slot) -> usize {
        let p = slot.page as usize;
        let i = self.slots.push(slot);
        if p >= self.index.len() {
            self.index.resize(p + 1, 0);
        }
        *self.index.get_mut(p) = i as u32 + 1;
        i
    }

    /// Forgets page `page`'s slot (its number is about to be reused); its
    /// kept top list, if any, is returned to be freed.
    fn clear(&mut self, page: u32) -> TopRef {
        let Some((i, _)) = self.slot(page) else { return TopRef::default() };
        *self.index.get_mut(page as usize) = 0;
        self.set_top(i, TopRef::default())
    }

    fn heap_bytes(&self) -> usize {
        self.slots.heap_bytes() + self.index.heap_bytes() + self.tops.heap_bytes()
    }
}

/// The retained periods of one calendar kind, by ring position
/// (`index mod ring`, a power of two at least `retention + 1`): the current
/// period and `retention` before it.
#[derive(Debug, Clone)]
pub struct Periods {
    pub kind: CalendarKind,
    retention: u32,
    pub ring: Vec<Option<PeriodTable>>,
    /// The period holding the watermark.
    current: Option<CalendarPeriod>,
    bounds: Bounds,
    /// Kept top lists of dropped tables and cleared slots, for the engine
    /// to free ([`Periods::take_released`]).
    released: Vec<TopRef>,
}

impl Periods {
    pub fn new(kind: CalendarKind, retention: u32) -> Periods {
        let epoch = kind.containing(0);
        Periods {
            kind,
            retention,
            // A power of two: the position is a mask, not a division.
            ring: vec![None; (retention as usize + 1).next_power_of_two()],
            current: None,
            bounds: Bounds::around(epoch, 0),
            released: Vec::new(),
        }
    }

    fn position(&self, p: CalendarPeriod) -> usize {
        (p.index as usize) & (self.ring.len() - 1)
    }

    pub fn table(&self, p: CalendarPeriod) -> Option<&PeriodTable> {
        self.ring[self.position(p)].as_ref().filter(|t| t.period == p)
    }

    fn table_mut(&mut self, p: CalendarPeriod) -> &mut PeriodTable {
        let pos = self.position(p);
        let t = &mut self.ring[pos];
        if t.as_ref().is_none_or(|t| t.period != p) {
            *t = Some(PeriodTable::new(p));
        }
        t.as_mut().expect("just ensured")
    }

    /// The period holding the watermark.
    pub fn current(&self) -> Option<CalendarPeriod> {
        self.current
    }

    /// The oldest retained period.
    pub fn oldest(&self) -> Option<CalendarPeriod> {
        Some(self.current?.minus(self.retention))
    }

    /// The period of this kind containing the instant `ms`.
    #[inline]
    pub fn period_of(&self, ms: Millis) -> CalendarPeriod {
        self.bounds.period_of(ms)
    }

    /// Whether period `p` (of this kind) is retained.
    #[inline]
    pub fn keeps(&self, p: CalendarPeriod) -> bool {
        self.current.is_some_and(|c| p <= c && p.index >= c.index - self.retention as i32)
    }

    /// The retained period containing the instant `ms`, if there is one.
    #[inline]
    pub fn retained(&self, ms: Millis) -> Option<CalendarPeriod> {
        Some(self.period_of(ms)).filter(|p| self.keeps(*p))
    }

    /// Page `page`'s slot in period `p` (retained), added if missing;
    /// whether it was added.
    pub fn slot_or_add(&mut self, p: CalendarPeriod, page: u32) -> (usize, bool, &mut Slot) {
        let t = self.table_mut(p);
        let (i, added) = t.slot_or_add(page);
        (i, added, t.slots.get_mut(i))
    }

    /// Page `page`'s slot in period `p`.
    #[inline]
    pub fn slot(&self, p: CalendarPeriod, page: u32) -> Option<(usize, &Slot)> {
        self.table(p)?.slot(page)
    }

    /// Hints the CPU to load page `page`'s index entry in period `p`.
    #[inline]
    pub fn prefetch_entry(&self, p: CalendarPeriod, page: u32) {
        if let Some(t) = self.table(p) {
            t.index.prefetch(page as usize);
        }
    }

    /// Hints the CPU to load page `page`'s slot in period `p` (reads its
    /// index entry, which should be on its way already); the slot's index.
    #[inline]
    pub fn prefetch_slot(&self, p: CalendarPeriod, page: u32) -> Option<usize> {
        let i = self.slot_index(p, page)?;
        self.table(p)?.slots.prefetch(i);
        Some(i)
    }

    /// The number of page `page`'s slot in period `p` (from its index
    /// entry alone, which should be in the cache).
    #[inline]
    pub fn slot_index(&self, p: CalendarPeriod, page: u32) -> Option<usize> {
        let t = self.table(p)?;
        let e = page as usize;
        (e < t.index.len()).then(|| *t.index.get(e)).and_then(|d| d.checked_sub(1)).map(|i| i as usize)
    }

    /// Moves the current period to the one holding `wm` and drops the
    /// tables out of retention; the pages with a slot in a dropped table
    /// are passed to `dropped`, each table's period and page count to
    /// `retired`. True when the current period changed.
    pub fn advance(
        &mut self,
        wm: Millis,
        mut dropped: impl FnMut(u32),
        mut retired: impl FnMut(CalendarPeriod, usize),
    ) -> bool {
        let now = self.kind.containing(wm);
        if self.current.is_some_and(|c| c >= now) {
            return false;
        }
        self.current = Some(now);
        self.bounds = Bounds::around(now, self.retention + 1);
        let oldest = now.minus(self.retention);
        for t in &mut self.ring {
            if t.as_ref().is_some_and(|t| t.period < oldest) {
                let gone = t.take().expect("just checked");
                gone.slots.iter().for_each(|s| dropped(s.page));
                self.released.extend(gone.tops.iter().filter(|r| !r.is_empty()));
                retired(gone.period, gone.slots.len());
            }
        }
        true
    }

    /// Sets the current period when restoring (no table is dropped).
    pub(super) fn restore_current(&mut self, wm: Millis) {
        self.advance(wm, |_| {}, |_, _| {});
    }

    /// Restores a period's table; false when it is out of the ring or there twice.
    pub(super) fn restore_table(&mut self, table: PeriodTable) -> bool {
        let pos = self.position(table.period);
        if self.ring[pos].is_some() || table.period.kind != self.kind {
            return false;
        }
        self.ring[pos] = Some(table);
        true
    }

    /// Forgets page `page` in every table.
    pub fn clear(&mut self, page: u32) {
        for t in self.ring.iter_mut().flatten() {
            let list = t.clear(page);
            if !list.is_empty() {
                self.released.push(list);
            }
        }
    }

    /// Lets go of the kept top lists of the tables of periods before `p`.
    pub(super) fn release_tops_before(&mut self, p: CalendarPeriod) {
        for t in self.ring.iter_mut().flatten().filter(|t| t.period < p && !t.tops.is_empty()) {
            self.released.extend(t.tops.iter().filter(|r| !r.is_empty()));
            t.tops = Column::default();
        }
    }

    /// The kept top lists let go since the last call, to be freed.
    pub(super) fn take_released(&mut self) -> Vec<TopRef> {
        std::mem::take(&mut self.released)
    }

    /// The table of period `p`, when the ring holds it.
    pub(super) fn table_for(&mut self, p: CalendarPeriod) -> Option<&mut PeriodTable> {
        let pos = self.position(p);
        self.ring[pos].as_mut().filter(|t| t.period == p)
    }

    /// Whether page `page` has a slot in a retained table.
    pub fn has_slot(&self, page: u32) -> bool {
        self.ring.iter().flatten().any(|t| t.slot(page).is_some())
    }

    pub fn heap_bytes(&self) -> usize {
        self.ring.iter().flatten().map(PeriodTable::heap_bytes).sum()
    }
}
