//! Per page, its figures per publication day: what a page's series
//! (`/v1/pages/{platform}/{id}/series`) and comparisons are read from,
//! kept as events arrive so that a series costs the page's days, not a scan
//! of its posts.
//!
//! The days hang off the page's slot in the post's quarter, which every
//! event touches already: per quarter slot a [`DayRef`] of one cache line,
//! the days of the quarter with a post as a bitmap, the latest day's cell
//! and the earlier days' cells; per day with a post a [`Cell`] of 20
//! bytes, in day order. An event on the page's latest day touches that
//! line alone; an earlier day's cell has its place from the bitmap (the
//! days before it), so the batch loop prefetches the very line an event
//! will change (docs/architecture.md), and a new day shifts only the
//! cells after it. Sums above 2^32 − 1 make a cell *wide*: its figures move
//! to a side map, so every figure stays exact.
//!
//! The references are a [`Column`] per quarter, shared copy-on-write with
//! snapshots chunk by chunk like every other; a chunk copied after a
//! snapshot copies its pages' cells. A page's earlier cells grow by an
//! eighth plus four at a time, so their spare room stays small
//! (size-class blocks were tried: pages that grow together through a quarter each leave a block of
//! every size behind, five times the cells at the quarter's end).
//!
//! Cells follow the quarter tables: a quarter's days go when its table
//! does, a freed page's with it. Checkpoints carry them (format 6); a
//! checkpoint of an older format has them rebuilt from its posts.
//!
//! Bound: one reference (64 bytes, the latest cell in it) per quarter
//! slot, one cell per page and day with a post in a kept quarter, spare
//! room at most an eighth plus four cells.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::sync::Arc;

use super::column::{Column, prefetch, prefetch_slice};
use super::periods::Totals;
use super::posts::{Day, day_of};
use crate::codec::{DecodeError, Reader, Writer};
use crate::window::{CalendarKind, CalendarPeriod};

/// A page's posts of one day: 20 bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cell {
    /// The posts, or [`WIDE`]: the figures are in the side map.
    posts: u32,
    /// Reactions, comments, shares, views.
    sums: [u32; 4],
}

/// The post count of a wide cell.
const WIDE: u32 = u32::MAX;

impl Cell {
    /// The cell holding `t`, when it fits 20 bytes.
    fn narrow(t: &Totals) -> Option<Cell> {
        let n = |x: u64| u32::try_from(x).ok();
        let posts = n(t.posts).filter(|p| *p != WIDE)?;
        Some(Cell { posts, sums: [n(t.reactions)?, n(t.comments)?, n(t.shares)?, n(t.views)?] })
    }

    fn is_wide(&self) -> bool {
        self.posts == WIDE
    }

    /// The figures of a narrow cell.
    fn totals(&self) -> Totals {
        let [reactions, comments, shares, views] = self.sums.map(u64::from);
        Totals { reactions, comments, shares, views, posts: u64::from(self.posts) }
    }
}

/// A page's days in one quarter: which have a post (bit `d` for the
/// quarter's day `d`), the latest day's cell, and the earlier days' cells
/// in day order. One cache line: an event on the page's latest day (most
/// of a tracker's) reads and writes nothing else.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[repr(align(64))]
pub struct DayRef {
    bits: [u64; 2],
    latest: Cell,
    earlier: Vec<Cell>,
}

impl DayRef {
    fn len(&self) -> usize {
        (self.bits[0].count_ones() + self.bits[1].count_ones()) as usize
    }

    fn has(&self, d: usize) -> bool {
        self.bits[d / 64] >> (d % 64) & 1 == 1
    }

    /// The latest day with a post (`None` without one).
    fn last(&self) -> Option<usize> {
        match self.bits {
            [0, 0] => None,
            [w, 0] => Some(63 - w.leading_zeros() as usize),
            [_, w] => Some(127 - w.leading_zeros() as usize),
        }
    }

    /// The place of day `d`'s cell among the earlier ones: the days before it.
    fn place(&self, d: usize) -> usize {
        let below = |w: u64, n: usize| if n >= 64 { w.count_ones() } else { (w & ((1 << n) - 1)).count_ones() };
        (below(self.bits[0], d) + if d > 64 { below(self.bits[1], d - 64) } else { 0 }) as usize
    }

    /// Adds day `d` (not held) with a zero cell; the earlier cells'
    /// capacity change.
    fn add(&mut self, d: usize) -> isize {
        let before = self.earlier.capacity();
        match self.last() {
            None => self.latest = Cell::default(),
            Some(last) => {
                if self.earlier.len() == before {
                    self.earlier.reserve_exact(4 + before / 8);
                }
                if d > last {
                    self.earlier.push(std::mem::take(&mut self.latest));
                } else {
                    self.earlier.insert(self.place(d), Cell::default());
                }
            }
        }
        self.bits[d / 64] |= 1 << (d % 64);
        self.earlier.capacity() as isize - before as isize
    }

    /// The cell of day `d` (held).
    fn cell_mut(&mut self, d: usize) -> &mut Cell {
        if self.last() == Some(d) {
            return &mut self.latest;
        }
        let place = self.place(d);
        &mut self.earlier[place]
    }

    /// The quarter's days with a post, in order.
    fn days(&self) -> impl Iterator<Item = usize> + '_ {
        (0..128).filter(|d| self.has(*d))
    }

    /// The cells in day order.
    fn cells(&self) -> impl Iterator<Item = &Cell> {
        let latest = (self.len() > 0).then_some(&self.latest);
        self.earlier.iter().chain(latest)
    }
}

/// One quarter's references, by the pages' slot numbers in its table.
#[derive(Debug, Clone)]
struct QuarterDays {
    quarter: CalendarPeriod,
    first_day: Day,
    refs: Column<DayRef>,
}

/// Every page's days of every kept quarter, and the figures of the wide
/// cells.
#[derive(Debug, Clone, Default)]
pub struct DaySeries {
    /// By ring position (the quarter's index modulo the length).
    quarters: Vec<Option<QuarterDays>>,
    /// Cells allocated, over every page and quarter (for the usage figures).
    capacity: usize,
    wide: Arc<HashMap<(u32, Day), Totals>>,
}

impl DaySeries {
    /// Room for `ring` quarters at once (a power of two, as the quarter
    /// periods' ring).
    pub fn new(ring: usize) -> DaySeries {
        DaySeries { quarters: vec![None; ring], ..DaySeries::default() }
    }

    fn position(&self, q: CalendarPeriod) -> usize {
        (q.index as usize) & (self.quarters.len() - 1)
    }

    fn quarter(&self, q: CalendarPeriod) -> Option<&QuarterDays> {
        self.quarters.get(self.position(q))?.as_ref().filter(|d| d.quarter == q)
    }

    fn reference(&self, q: CalendarPeriod, slot: usize) -> Option<(&QuarterDays, &DayRef)> {
        let days = self.quarter(q)?;
        (slot < days.refs.len()).then(|| (days, days.refs.get(slot)))
    }

    /// Changes the figures of day `day` of the page `page`, whose slot in
    /// quarter `q` (holding the day) is `slot`, with `change`; adds the
    /// day's cell if it has none.
    #[inline]
    pub fn change(&mut self, q: CalendarPeriod, slot: usize, page: u32, day: Day, change: impl FnOnce(&mut Totals)) {
        let pos = self.position(q);
        if self.quarters[pos].as_ref().is_none_or(|d| d.quarter != q) {
            self.drop_quarter(pos);
            self.quarters[pos] =
                Some(QuarterDays { quarter: q, first_day: day_of(q.start()), refs: Column::default() });
        }
        let days = self.quarters[pos].as_mut().expect("just ensured");
        if slot >= days.refs.len() {
            days.refs.resize(slot + 1, DayRef::default());
        }
        let r = days.refs.get_mut(slot);
        let d = (day - days.first_day) as usize;
        debug_assert!(d < 92, "a day of the quarter");
        if !r.has(d) {
            self.capacity = self.capacity.wrapping_add_signed(r.add(d));
        }
        let cell = r.cell_mut(d);
        let key = (page, day);
        let mut totals = if cell.is_wide() { self.wide.get(&key).copied().unwrap_or_default() } else { cell.totals() };
        change(&mut totals);
        match Cell::narrow(&totals) {
            Some(narrow) if !cell.is_wide() => *cell = narrow,
            _ => {
                *cell = Cell { posts: WIDE, sums: [0; 4] };
                Arc::make_mut(&mut self.wide).insert(key, totals);
            }
        }
    }

    /// Hints the CPU to load the reference of slot `slot` of quarter `q`.
    #[inline]
    pub fn prefetch_reference(&self, q: CalendarPeriod, slot: usize) {
        if let Some(days) = self.quarter(q).filter(|d| slot < d.refs.len()) {
            days.refs.prefetch(slot);
        }
    }

    /// Hints the CPU to load the cell of day `day` of slot `slot` of
    /// quarter `q`, or where it would go (reads the reference, which
    /// should be on its way already).
    #[inline]
    pub fn prefetch_cell(&self, q: CalendarPeriod, slot: usize, day: Day) {
        let Some((days, r)) = self.reference(q, slot) else { return };
        let d = (day - days.first_day) as usize;
        // The latest day's cell is in the reference; an earlier one, or a
        // new day before the latest, is in the earlier cells.
        if r.last().is_some_and(|last| d < last) && !r.earlier.is_empty() {
            let cells = &r.earlier;
            let place = r.place(d).min(cells.len() - 1);
            if r.has(d) {
                prefetch(&cells[place]);
            } else {
                // A new day shifts the cells after it.
                prefetch_slice(&cells[place..], 8);
            }
        }
    }

    /// Drops the days of the quarters `kept` says no to.
    pub fn retain(&mut self, kept: impl Fn(CalendarPeriod) -> bool) {
        for pos in 0..self.quarters.len() {
            if self.quarters[pos].as_ref().is_some_and(|d| !kept(d.quarter)) {
                self.drop_quarter(pos);
            }
        }
    }

    /// Drops the days of the quarter at ring position `pos`, if any, with
    /// their wide cells.
    fn drop_quarter(&mut self, pos: usize) {
        let Some(gone) = self.quarters[pos].take() else { return };
        self.capacity -= gone.refs.iter().map(|r| r.earlier.capacity()).sum::<usize>();
        let days = gone.first_day..day_of(gone.quarter.end());
        if self.wide.keys().any(|(_, d)| days.contains(d)) {
            Arc::make_mut(&mut self.wide).retain(|(_, d), _| !days.contains(d));
        }
    }

    /// Drops page `page`'s days of quarter `q`, where its slot is `slot`.
    pub fn clear(&mut self, q: CalendarPeriod, slot: usize, page: u32) {
        let pos = self.position(q);
        let Some(days) = self.quarters[pos].as_mut().filter(|d| d.quarter == q && slot < d.refs.len()) else {
            return;
        };
        let r = std::mem::take(days.refs.get_mut(slot));
        let first = days.first_day;
        self.capacity -= r.earlier.capacity();
        if r.cells().any(Cell::is_wide) {
            let map = Arc::make_mut(&mut self.wide);
            r.days().for_each(|d| _ = map.remove(&(page, first + d as Day)));
        }
    }

    /// The days with posts of page `page` in quarter `q`, where its slot is
    /// `slot`, and their figures, in day order.
    pub fn days(&self, q: CalendarPeriod, slot: usize, page: u32) -> impl Iterator<Item = (Day, Totals)> + '_ {
        let found = self.reference(q, slot);
        let cells = found.into_iter().flat_map(|(_, r)| r.cells());
        let days = found.into_iter().flat_map(|(d, r)| r.days().map(move |x| d.first_day + x as Day));
        days.zip(cells).map(move |(day, c)| {
            let totals =
                if c.is_wide() { self.wide.get(&(page, day)).copied().unwrap_or_default() } else { c.totals() };
            (day, totals)
        })
    }

    /// Writes the days (checkpoint format 6): per quarter with days, its
    /// index and references (the bitmap, then each cell's five numbers);
    /// then the wide cells' figures.
    pub(super) fn write<W: Write>(&self, w: &mut Writer<W>) -> io::Result<()> {
        let kept: Vec<&QuarterDays> = self.quarters.iter().flatten().collect();
        w.len(kept.len())?;
        for q in kept {
            w.i32(q.quarter.index)?;
            w.len(q.refs.len())?;
            for r in q.refs.iter() {
                w.u64(r.bits[0])?;
                w.u64(r.bits[1])?;
                for c in r.cells() {
                    w.u32(c.posts)?;
                    c.sums.iter().try_for_each(|s| w.u32(*s))?;
                }
            }
        }
        w.len(self.wide.len())?;
        for ((page, day), t) in self.wide.iter() {
            w.u32(*page)?;
            w.i32(*day)?;
            [t.reactions, t.comments, t.shares, t.views, t.posts].iter().try_for_each(|v| w.u64(*v))?;
        }
        Ok(())
    }

    /// Reads what [`write`](Self::write) wrote; `slots` gives the slots of
    /// a kept quarter's table (the most references it can have).
    pub(super) fn read<R: Read>(
        &mut self,
        r: &mut Reader<R>,
        slots: impl Fn(CalendarPeriod) -> Option<usize>,
        max_cells: usize,
    ) -> Result<(), DecodeError> {
        for _ in 0..r.len(self.quarters.len(), "series quarters")? {
            let quarter = CalendarPeriod { kind: CalendarKind::Quarter, index: r.i32()? };
            let bound = slots(quarter).ok_or(DecodeError::Range("series of a quarter not kept"))?;
            let pos = self.position(quarter);
            if self.quarters[pos].is_some() {
                return Err(DecodeError::Range("series quarter repeated"));
            }
            let mut refs = Column::default();
            for _ in 0..r.len(bound, "series references")? {
                let bits = [r.u64()?, r.u64()?];
                // A quarter has at most 92 days: bits 0 to 91.
                if bits[1] >> 28 != 0 {
                    return Err(DecodeError::Range("series days"));
                }
                let n = (bits[0].count_ones() + bits[1].count_ones()) as usize;
                let mut earlier = Vec::with_capacity(n.saturating_sub(1));
                let mut latest = Cell::default();
                for i in 0..n {
                    let cell = Cell { posts: r.u32()?, sums: [r.u32()?, r.u32()?, r.u32()?, r.u32()?] };
                    if i + 1 < n { earlier.push(cell) } else { latest = cell }
                }
                self.capacity += earlier.capacity();
                refs.push(DayRef { bits, latest, earlier });
            }
            self.quarters[pos] = Some(QuarterDays { quarter, first_day: day_of(quarter.start()), refs });
        }
        let n = r.len(max_cells, "wide series cells")?;
        if n > 0 {
            let map = Arc::make_mut(&mut self.wide);
            for _ in 0..n {
                let key = (r.u32()?, r.i32()?);
                let [reactions, comments, shares, views, posts] = [r.u64()?, r.u64()?, r.u64()?, r.u64()?, r.u64()?];
                map.insert(key, Totals { reactions, comments, shares, views, posts });
            }
        }
        Ok(())
    }

    /// Heap bytes held: the references, the earlier cells and the wide map.
    pub fn heap_bytes(&self) -> usize {
        self.quarters.iter().flatten().map(|d| d.refs.heap_bytes()).sum::<usize>()
            + self.capacity * size_of::<Cell>()
            + self.wide.capacity() * (size_of::<(u32, Day)>() + size_of::<Totals>() + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::window::Quarter;

    fn q3() -> CalendarPeriod {
        CalendarPeriod { kind: CalendarKind::Quarter, index: Quarter::new(2025, 3).unwrap().index() }
    }

    /// 2025-07-01.
    const FIRST: Day = 20_270;

    fn add(s: &mut DaySeries, slot: usize, page: u32, day: Day, views: u64) {
        let t = Totals { reactions: 3, comments: 2, shares: 1, views, posts: 1 };
        s.change(q3(), slot, page, day, |x| *x = x.plus(&t));
    }

    fn days(s: &DaySeries, slot: usize, page: u32) -> Vec<(Day, u64)> {
        s.days(q3(), slot, page).map(|(d, t)| (d, t.posts)).collect()
    }

    #[test]
    fn cells_stay_in_day_order_whatever_order_days_arrive_in() {
        let mut s = DaySeries::new(8);
        for day in [10, 0, 5, 10, 1, 0, 91, 64, 63, 65] {
            add(&mut s, 3, 7, FIRST + day, 1);
        }
        let want: Vec<(Day, u64)> =
            [(0, 2), (1, 1), (5, 1), (10, 2), (63, 1), (64, 1), (65, 1), (91, 1)].map(|(d, n)| (FIRST + d, n)).to_vec();
        assert_eq!(days(&s, 3, 7), want);
        assert_eq!(days(&s, 2, 6), [], "a slot without posts has no day");
    }

    #[test]
    fn a_quarter_of_days_in_any_order_keeps_little_spare_room() {
        let mut s = DaySeries::new(8);
        for day in (0..92).rev() {
            add(&mut s, 0, 1, FIRST + day, 1);
        }
        assert_eq!(days(&s, 0, 1).len(), 92);
        assert!(days(&s, 0, 1).iter().enumerate().all(|(i, (d, n))| *d == FIRST + i as Day && *n == 1));
        assert!(s.capacity <= 92 + 4 + 92 / 8, "{} cells allocated for 92", s.capacity);
        s.clear(q3(), 0, 1);
        assert_eq!(s.capacity, 0);
    }

    #[test]
    fn figures_past_32_bits_stay_exact_in_a_wide_cell() {
        let mut s = DaySeries::new(8);
        add(&mut s, 0, 1, FIRST + 3, 4_000_000_000);
        add(&mut s, 0, 1, FIRST + 3, 4_000_000_000);
        add(&mut s, 0, 1, FIRST + 4, 5);
        let got: Vec<(Day, u64, u64)> = s.days(q3(), 0, 1).map(|(d, t)| (d, t.views, t.posts)).collect();
        assert_eq!(got, [(FIRST + 3, 8_000_000_000, 2), (FIRST + 4, 5, 1)]);
        assert_eq!(s.wide.len(), 1);
        s.clear(q3(), 0, 1);
        assert!(s.wide.is_empty(), "a cleared wide cell leaves the side map");
        assert_eq!(days(&s, 0, 1), []);
    }

    #[test]
    fn a_quarter_not_kept_is_dropped_with_its_blocks() {
        let mut s = DaySeries::new(8);
        add(&mut s, 0, 1, FIRST, 5_000_000_000);
        s.retain(|q| q != q3());
        assert!(s.quarter(q3()).is_none() && s.wide.is_empty());
        assert_eq!(s.capacity, 0);
    }

    #[test]
    fn a_snapshot_keeps_its_cells_while_the_writer_changes_them() {
        let mut s = DaySeries::new(8);
        add(&mut s, 0, 0, FIRST + 10, 1);
        let snap = s.clone();
        add(&mut s, 0, 0, FIRST + 10, 1);
        add(&mut s, 0, 0, FIRST + 11, 1);
        assert_eq!(days(&snap, 0, 0), [(FIRST + 10, 1)]);
        assert_eq!(days(&s, 0, 0), [(FIRST + 10, 2), (FIRST + 11, 1)]);
    }
}
