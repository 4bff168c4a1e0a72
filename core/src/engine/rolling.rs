//! The rolling window and its predecessor, kept exact to the millisecond
//! without rescanning posts.
//!
//! Both windows are bounded by an *edge*: the rolling window holds the posts
//! published at or after `S = watermark − N days`, its predecessor those
//! published in `[S', S)` with `S' = S − N days`. An [`Edge`] at instant `at`
//! keeps, for the quarter that contains `at`, the totals of that quarter's
//! posts published *before* `at`, per page slot ("left"). A page's figures
//! for "published at or after `at`" are then the sum of its slots in the
//! quarters from `at`'s on, minus what has left; the view does that sum per
//! page, the engine never does it per post.
//!
//! When the watermark moves, each edge advances: the posts published in
//! `[old at, new at)` are added to "left". Posts are stored by publication
//! day; the day the edge is in is sorted by publication time once (a
//! cursor), so each post passes each edge exactly once, whatever the order
//! of events. Cost: proportional to the posts that leave, never to all.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::changes::Changes;
use super::column::Column;
use super::periods::{Periods, Totals};
use super::posts::{Day, PostTable, day_of};
use crate::event::Counts;
use crate::window::{CalendarKind, CalendarPeriod, DAY_MS, Millis};

/// The posts of the day an edge is in, by publication time.
#[derive(Debug, Clone)]
struct Cursor {
    day: Day,
    /// (published, page, post slot), sorted, as of when the edge entered
    /// the day.
    posts: Vec<(Millis, u32, u32)>,
    /// The first of `posts` not yet passed.
    next: usize,
    /// Posts of the day added later, not yet passed (a min-heap: adding one
    /// costs a logarithm, not a shift of the sorted list).
    late: BinaryHeap<Reverse<(Millis, u32, u32)>>,
}

impl Cursor {
    /// The next post to pass, from either list.
    fn peek(&self) -> Option<(Millis, u32, u32)> {
        let sorted = self.posts.get(self.next).copied();
        let late = self.late.peek().map(|r| r.0);
        match (sorted, late) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn pop(&mut self) {
        let sorted = self.posts.get(self.next).copied();
        match (sorted, self.late.peek().map(|r| r.0)) {
            (Some(a), Some(b)) if b < a => drop(self.late.pop()),
            (Some(_), _) => self.next += 1,
            (None, _) => drop(self.late.pop()),
        }
    }
}

/// One edge: what of its quarter was published before `at`.
#[derive(Debug, Clone)]
pub struct Edge {
    pub at: Millis,
    /// The quarter containing `at`, which `left` sums for.
    pub quarter: CalendarPeriod,
    /// Per slot of `quarter`'s table: totals of the page's posts of that
    /// quarter published before `at`.
    pub left: Column<Totals>,
    cursor: Option<Cursor>,
    /// Until this instant, advancing passes no post and enters no quarter:
    /// the common case is one comparison per event.
    horizon: Millis,
}

impl Edge {
    pub fn new(at: Millis) -> Edge {
        Edge { at, quarter: quarter_of(at), left: Column::default(), cursor: None, horizon: at }
    }

    pub fn heap_bytes(&self) -> usize {
        self.left.heap_bytes() + self.cursor.as_ref().map_or(0, |c| (c.posts.capacity() + c.late.capacity()) * 16)
    }

    /// What of slot `slot` of quarter `q` lies before the edge.
    pub fn left_of(&self, q: CalendarPeriod, slot: usize) -> Totals {
        if q != self.quarter || slot >= self.left.len() {
            return Totals::default();
        }
        *self.left.get(slot)
    }

    fn left_mut(&mut self, slot: usize) -> &mut Totals {
        if slot >= self.left.len() {
            self.left.resize(slot + 1, Totals::default());
        }
        self.left.get_mut(slot)
    }

    /// Hints the CPU to load what a post of quarter `q` published at
    /// `published`, in slot `slot`, would change here.
    #[inline]
    pub fn prefetch(&self, q: CalendarPeriod, slot: usize, published: Millis) {
        if q == self.quarter && published < self.at {
            self.left.prefetch(slot);
        }
    }

    /// A new post of quarter `q` in slot `slot` (its page's slot in `q`).
    pub fn post_added(&mut self, q: CalendarPeriod, slot: usize, published: Millis, counts: &Counts, post: (u32, u32)) {
        if published >= self.at && published < self.horizon {
            // A post where none was: the next advance must look.
            self.horizon = self.at;
        }
        if q == self.quarter && published < self.at {
            self.left_mut(slot).add_post(counts);
        } else if let Some(c) = self.cursor.as_mut().filter(|c| c.day == day_of(published) && published >= self.at) {
            c.late.push(Reverse((published, post.0, post.1)));
        }
    }

    /// A post's counts changed from `old` to `new`.
    pub fn post_changed(&mut self, q: CalendarPeriod, slot: usize, published: Millis, old: &Counts, new: &Counts) {
        if q == self.quarter && published < self.at {
            self.left_mut(slot).apply_change(old, new);
        }
    }

    /// Moves the edge forward to `to`, passing every post published in
    /// `[at, to)`. Days without posts are jumped over.
    pub fn advance(&mut self, to: Millis, posts: &PostTable, quarters: &Periods, changes: &mut Changes) {
        if to < self.horizon {
            self.at = self.at.max(to);
            return;
        }
        if let Some(c) = &self.cursor {
            let day_end = (Millis::from(c.day) + 1) * DAY_MS;
            if c.day == day_of(self.at) && to < day_end {
                self.pass(c.day, to, posts, quarters, changes);
                self.at = to;
                return;
            }
        }
        while self.at < to {
            self.enter(quarter_of(self.at));
            let day = day_of(self.at);
            let day_end = (Millis::from(day) + 1) * DAY_MS;
            let stop = to.min(day_end);
            if posts.has_day(day) {
                self.pass(day, stop, posts, quarters, changes);
            }
            self.at = stop;
            if stop == day_end {
                let next = posts.next_day_after(day).map_or(to, |d| (Millis::from(d) * DAY_MS).min(to));
                self.at = next.max(stop);
            }
        }
        self.enter(quarter_of(self.at));
        // Nothing to pass before the next day with posts or the next quarter.
        let day = day_of(self.at);
        if !posts.has_day(day) {
            let next_posts = posts.next_day_after(day).map_or(Millis::MAX, |d| Millis::from(d) * DAY_MS);
            self.horizon = next_posts.min(self.quarter.end());
        }
    }

    /// Starts summing for quarter `q` if the edge has just entered it:
    /// nothing of a quarter lies before an edge that has just entered it.
    fn enter(&mut self, q: CalendarPeriod) {
        if q != self.quarter {
            self.quarter = q;
            self.left = Column::default();
        }
    }

    /// Passes the posts of `day` published before `stop`.
    fn pass(&mut self, day: Day, stop: Millis, posts: &PostTable, quarters: &Periods, changes: &mut Changes) {
        if self.cursor.as_ref().is_none_or(|c| c.day != day) {
            let mut list: Vec<(Millis, u32, u32)> =
                posts.day(day).map(|(slot, p)| (p.published, p.page, slot)).collect();
            list.sort_unstable();
            let next = list.partition_point(|(p, _, _)| *p < self.at);
            self.cursor = Some(Cursor { day, posts: list, next, late: BinaryHeap::new() });
        }
        let mut cursor = self.cursor.take().expect("just ensured");
        while let Some((published, page, slot)) = cursor.peek() {
            if published >= stop {
                break;
            }
            cursor.pop();
            if let Some(&(_, _, ahead)) = cursor.posts.get(cursor.next + 8) {
                posts.prefetch_slot(ahead);
            }
            if let Some((i, _)) = quarters.slot(self.quarter, page) {
                let counts = posts.counts(slot);
                self.left_mut(i).add_post(&counts);
                changes.mark(page);
            }
        }
        self.cursor = Some(cursor);
    }
}

/// The quarter holding `ms`: edges sum per quarter, the kind the engine
/// always keeps.
pub fn quarter_of(ms: Millis) -> CalendarPeriod {
    CalendarKind::Quarter.containing(ms)
}
