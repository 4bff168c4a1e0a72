//! The aggregation engine: applies decoded events to per-post state and
//! per-page, per-window totals (docs/events.md#semantics). Pure: time
//! arrives only inside events, and the watermark is the greatest
//! `observed_at` seen.
//!
//! Layout: posts ([`posts`]) are 32-byte records grouped by publication day;
//! pages ([`pages`]) and their totals per period of each calendar kind kept
//! ([`periods`]) live in copy-on-write columns ([`column`]); each rolling
//! window and its predecessor are kept by two edges ([`rolling`]). Which
//! windows are kept is the [`Windows`](crate::window::Windows) of the
//! limits (docs/windows.md). A [`Snapshot`] of everything a view or a
//! checkpoint needs is a list of shared chunks, so taking one never pauses
//! the writer for long.
//!
//! Bounds: every structure that input can grow is capped by [`Limits`]. An
//! event that would grow a structure past its cap is rejected with
//! [`Outcome::Rejected`] naming the [`Bound`], changes nothing, and is
//! counted per bound by the shell.
//!
//! A post's publication time (hence its period of every kind) is fixed by its first
//! event; a later event carrying another `published_at` is applied to the
//! post as first published.
//!
//! Page-level observations (follower counts, page names) are merged from
//! every valid event that reaches a page, whatever becomes of its post
//! counts: the later `(observed_at, value)` wins, so the merge is idempotent
//! and order-independent, like snapshots.

mod batch;
mod changes;
pub mod column;
mod event_ids;
pub mod gaps;
mod increment;
mod index;
pub mod jump;
mod limits;
pub mod pages;
pub mod periods;
mod persist;
mod posts;
mod rolling;
pub mod series;
mod snapshot;
mod tops;

pub use crate::codec::DecodeError;
pub use batch::{Batch, Message, decode_batch, recycle};
pub use changes::Changed;
pub use increment::{INCREMENT_VERSION, IncrementSize};
pub use limits::{Bound, Limits, MAX_EVENT_IDS, Outcome, Usage};
pub use pages::{Ident, Named, PageState, TopCandidate, TopChange};
pub use periods::{PeriodTable, Periods, Sample, Slot, Totals};
pub use persist::{OLDEST_STATE_VERSION, STATE_VERSION};
pub use posts::{MAX_PAGES, MAX_POSTS, Post, post_hash, post_key};
pub use rolling::Edge;
pub use snapshot::{EdgeView, Snapshot};
pub use tops::{ID_MAX, TOP_MAX, TopList, TopPost};

use crate::event::{Counts, Event, Tracking};
use crate::window::{CalendarKind, CalendarPeriod, DAY_MS, Millis, Quarter};
use changes::Changes;
use event_ids::{EventIds, Remembered, event_key};
use pages::{Noted, Pages};
use posts::{PostTable, day_of};
use tops::TopRef;

/// Most calendar kinds an engine keeps.
const MAX_KINDS: usize = CalendarKind::ALL.len();

/// Per kind an engine keeps (in its order; quarters first), a period;
/// the unused tail repeats the quarter.
type PeriodsAt = [CalendarPeriod; MAX_KINDS];

/// The engine. One writer owns it; readers get snapshots.
#[derive(Debug)]
pub struct Engine {
    limits: Limits,
    watermark: Option<Millis>,
    /// The start of the day after the watermark's: when the cutoff and the
    /// current periods are next looked at.
    next_day: Millis,
    /// Posts published before this instant count in no window
    /// ([`Windows::cutoff`](crate::window::Windows::cutoff)).
    cutoff: Millis,
    /// Per calendar kind kept, its retained periods: quarters first, always
    /// (over every quarter the windows reach: rolling windows and top lists
    /// are kept per quarter), then the other configured kinds.
    periods: Vec<periods::Periods>,
    pages: Pages,
    posts: PostTable,
    /// Per page, its figures per publication day (see [`series`]).
    series: series::DaySeries,
    event_ids: EventIds,
    /// Per rolling duration (in the specification's order), the start of the
    /// window and of its predecessor; empty before the first event.
    edges: Vec<[Edge; 2]>,
    batch: Batch,
    /// Pages changed since the last look (shard mode only).
    changes: Changes,
    /// What changed since the last increment (shard mode only; see [`increment`]).
    increment: Option<Box<increment::Pending>>,
    /// Per input partition, its watermark and the events past a jump
    /// waiting for corroboration.
    guards: jump::Guards,
    /// What happened that the caller should log and count.
    notices: jump::Notices,
    /// Input partitions that lost records before they were applied.
    gaps: gaps::Gaps,
    /// The limits' jump allowed (ms) and quorum, converted once.
    jump: (Millis, u32),
}

impl Engine {
    /// # Panics
    /// When `limits` fail [`Limits::validate`]; configuration is checked
    /// before an engine is built.
    pub fn new(limits: Limits) -> Engine {
        limits.validate().expect("engine limits are validated with the configuration");
        let w = limits.windows;
        let quarters = periods::Periods::new(CalendarKind::Quarter, w.quarter_span() - 1);
        let others =
            w.calendar().filter(|(k, _)| *k != CalendarKind::Quarter).map(|(k, r)| periods::Periods::new(k, r));
        Engine {
            pages: Pages::new(limits.max_pages, limits.max_platforms as usize, limits.top_posts as usize),
            periods: std::iter::once(quarters).chain(others).collect(),
            posts: PostTable::default(),
            series: series::DaySeries::new((w.quarter_span() as usize).next_power_of_two()),
            event_ids: EventIds::new(limits.max_event_ids as usize),
            watermark: None,
            next_day: Millis::MIN,
            cutoff: Millis::MIN,
            edges: Vec::new(),
            batch: Batch::default(),
            changes: Changes::default(),
            increment: None,
            guards: jump::Guards::default(),
            notices: jump::Notices::default(),
            gaps: gaps::Gaps::default(),
            jump: (
                limits.max_watermark_jump.as_millis().min(Millis::MAX as u128) as Millis,
                limits.watermark_jump_quorum,
            ),
            limits,
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn watermark(&self) -> Option<Millis> {
        self.watermark
    }

    /// The quarter containing the watermark.
    pub fn current(&self) -> Option<Quarter> {
        Some(Quarter::containing(self.watermark?))
    }

    /// Posts published before this count in no window (`None` before the
    /// first event).
    pub fn cutoff(&self) -> Option<Millis> {
        self.watermark.map(|_| self.cutoff)
    }

    pub fn posts(&self) -> impl Iterator<Item = Post> + '_ {
        self.posts.iter()
    }

    pub fn usage(&self) -> Usage {
        Usage {
            pages: self.pages.len(),
            posts: self.posts.len(),
            platforms: self.pages.platforms().len(),
            event_ids: self.event_ids.len(),
            split_pages: self.pages.split(),
            heap_bytes: self.pages.heap_bytes()
                + self.periods.iter().map(periods::Periods::heap_bytes).sum::<usize>()
                + self.edges.iter().flatten().map(Edge::heap_bytes).sum::<usize>()
                + self.posts.heap_bytes()
                + self.series.heap_bytes()
                + self.event_ids.heap_bytes(),
        }
    }

    /// Heap bytes the pages' figures per day hold (see [`series`]).
    pub fn series_bytes(&self) -> usize {
        self.series.heap_bytes()
    }

    /// Starts noting which pages change (see [`take_changes`](Self::take_changes)),
    /// and counts every live page as changed.
    pub fn track_changes(&mut self) {
        self.changes.start();
        self.mark_all_changed();
    }

    /// Counts every live page as changed (after a restore, say).
    pub fn mark_all_changed(&mut self) {
        let live: Vec<u32> = self.pages.live().collect();
        for p in live {
            self.changes.mark(p);
        }
    }

    /// The pages changed since the last call, when tracking is on: by an
    /// event (totals, followers, name, top posts) or by a rolling window
    /// moving past one of their posts; and the pages freed.
    pub fn take_changes(&mut self) -> Changed {
        let pages = &self.pages;
        self.changes.take(|p| pages.ident(p).platform != u16::MAX)
    }

    /// Marks page (platform, id) changed, so that the next
    /// [`take_changes`](Self::take_changes) lists it again (shard mode: its
    /// record did not reach the page-totals topic); false when it is not held.
    pub fn mark_changed(&mut self, platform: &str, id: &str) -> bool {
        let Some(p) = self.pages.lookup(platform, id) else { return false };
        self.changes.mark(p);
        true
    }

    /// What the engine noticed since the last call (jumps of the watermark
    /// held, taken or forgotten; periods dropped by retention), and how
    /// many notices did not fit the bounded queue.
    pub fn take_notices(&mut self) -> (Vec<jump::Notice>, u64) {
        self.notices.take()
    }

    /// Input partition `partition` lost records before they were applied
    /// (see [`gaps`]).
    pub fn note_gap(&mut self, partition: u32) {
        self.gaps.note(partition);
    }

    /// Partition `partition` has caught up: its open gap ends at the
    /// watermark.
    pub fn close_gap(&mut self, partition: u32) {
        self.gaps.close(partition, self.watermark);
    }

    pub fn gaps(&self) -> &gaps::Gaps {
        &self.gaps
    }

    /// Moves the watermark to `at` if it is ahead (shard mode: every
    /// partition's engine follows the greatest watermark of the topic).
    pub fn advance_to(&mut self, at: Millis) {
        self.advance_watermark(at);
    }

    /// Applies one valid event and says what became of it.
    pub fn apply(&mut self, ev: &Event<'_>) -> Outcome {
        self.apply_keyed(ev, None, None)
    }

    /// [`apply`](Self::apply) with the event's keys when the caller already
    /// computed them (a batch does, to prefetch).
    fn apply_keyed(&mut self, ev: &Event<'_>, keys: Option<batch::Keys>, partition: Option<u32>) -> Outcome {
        if self.guards.of(partition).judge(ev.observed_at, self.jump, &mut self.notices) == jump::Verdict::Refuse {
            return Outcome::Rejected(Bound::WatermarkJump);
        }
        self.advance_watermark(ev.observed_at);
        let known = keys.map(|k| (k.platform, k.page));
        let live = self.pages.len();
        let (page, page_key) = match self.pages.intern_keyed(&ev.platform, &ev.page_id, known) {
            Ok(found) => found,
            Err(rejected) => return Outcome::Rejected(rejected.into()),
        };
        if let Some(partition) = partition {
            self.pages.note_partition(page, partition);
        }
        self.changes.mark(page);
        if let Some(d) = &mut self.increment {
            d.pages.mark(page);
            if self.pages.len() > live {
                d.new_pages.mark(page);
            }
        }
        self.observe_page(page, ev);
        let (hash, key) = match keys {
            Some(k) => (k.post_hash, k.post),
            None => {
                let hash = post_hash(&ev.post_id);
                (hash, post_key(page_key, hash))
            }
        };
        let found = self.posts.find(key, page, hash);
        // A post's publication time is fixed by its first event.
        let published = found.map_or(ev.published_at, |(_, p)| p.published);
        let at = match keys {
            Some(k) if k.published == published => k.periods,
            _ => self.periods_of(published),
        };
        let quarter = at[0];
        if published < self.cutoff || !self.periods[0].keeps(quarter) {
            return Outcome::Expired;
        }
        let Some((slot, post)) = found else {
            return self.add_post(page, key, hash, &at, ev);
        };
        if post.kind != ev.kind {
            return Outcome::Conflict;
        }
        let updated = match ev.kind {
            Tracking::Snapshot => apply_snapshot(post, ev),
            Tracking::Delta => self.apply_delta(post, quarter, ev),
        };
        match updated {
            Ok(updated) => {
                self.posts.update(slot, &updated);
                if let Some(d) = &mut self.increment {
                    d.posts.mark(slot);
                }
                self.note_change(&post, &updated, &at, &ev.post_id);
                Outcome::Applied
            }
            Err(unchanged) => unchanged,
        }
    }

    fn advance_watermark(&mut self, observed: Millis) {
        self.advance_watermark_freeing(observed, true);
    }

    /// [`advance_watermark`](Self::advance_watermark); `free` false leaves
    /// the pages without figures in place (an increment names the pages its
    /// writer freed: see [`increment`]).
    fn advance_watermark_freeing(&mut self, observed: Millis, free: bool) {
        if self.watermark.is_some_and(|w| observed <= w) {
            return;
        }
        self.watermark = Some(observed);
        if observed >= self.next_day {
            self.next_day = (Millis::from(day_of(observed)) + 1) * DAY_MS;
            self.new_day(observed, free);
        }
        self.advance_edges(observed);
    }

    /// Moves each rolling window's start and its predecessor's with the
    /// watermark.
    fn advance_edges(&mut self, watermark: Millis) {
        if self.edges.is_empty() {
            let days = self.limits.windows.rolling();
            let edge = |d: u16, n: i64| Edge::new(watermark - n * Millis::from(d) * DAY_MS);
            self.edges = days.iter().map(|d| [edge(*d, 1), edge(*d, 2)]).collect();
        }
        for (d, [start, before]) in self.limits.windows.rolling().iter().zip(&mut self.edges) {
            let span = Millis::from(*d) * DAY_MS;
            start.advance(watermark - span, &self.posts, &self.periods[0], &mut self.changes);
            before.advance(watermark - 2 * span, &self.posts, &self.periods[0], &mut self.changes);
        }
    }

    /// The watermark entered a new day: moves each kind's current period,
    /// dropping the periods out of retention, and the cutoff, freeing the
    /// posts and event ids before it; when a quarter was dropped, frees the
    /// pages left without figures.
    fn new_day(&mut self, wm: Millis, free: bool) {
        let first = self.cutoff == Millis::MIN;
        let was = self.periods[0].current();
        if !first {
            self.quarters_leaving_view(was, wm);
        }
        let (pages, changes, notices) = (&mut self.pages, &mut self.changes, &mut self.notices);
        // Quarters are kept past their retention when other windows reach
        // further: they were reported as they left the view.
        let quarter_dropped = self.periods[0].advance(
            wm,
            |p| {
                let state = pages.state_mut(p);
                state.quarters = state.quarters.saturating_sub(1);
                changes.mark(p);
            },
            |_, _| {},
        );
        for kind in &mut self.periods[1..] {
            let dropped = |period, pages| {
                if !first {
                    notices.push(jump::Notice::PeriodDropped { period, pages, watermark: wm });
                }
            };
            kind.advance(wm, |p| changes.mark(p), dropped);
        }
        self.release_kept_tops();
        self.cutoff = self.limits.windows.cutoff(wm);
        self.gaps.expire(self.cutoff);
        let quarters = &self.periods[0];
        self.series.retain(|q| quarters.table(q).is_some());
        let day = day_of(self.cutoff);
        while let Some(d) = self.posts.first_day().filter(|d| *d < day) {
            let pages = &self.pages;
            self.posts.remove_day(d, |p| post_key(pages.key(p.page), p.hash));
        }
        self.event_ids.forget_before(Quarter::containing(self.cutoff));
        if quarter_dropped && !first && free {
            self.free_empty_pages();
        }
    }

    /// Notes the configured quarters that leave the view as the watermark
    /// moves from quarter `was` to `wm`'s: those between the oldest
    /// retained before and the oldest retained now, when they had figures.
    fn quarters_leaving_view(&mut self, was: Option<CalendarPeriod>, wm: Millis) {
        let (Some(was), Some(kept)) = (was, self.limits.windows.retention(CalendarKind::Quarter)) else { return };
        let quarters = &self.periods[0];
        let mut p = quarters.period_of(wm).minus(kept + 1);
        while p >= was.minus(kept) {
            if let Some(t) = quarters.table(p).filter(|t| !t.slots.is_empty()) {
                self.notices.push(jump::Notice::PeriodDropped { period: p, pages: t.slots.len(), watermark: wm });
            }
            p = p.minus(1);
        }
    }

    /// Frees the pages with no figures in a kept quarter and no recent name
    /// or follower sample.
    fn free_empty_pages(&mut self) {
        let cutoff = self.cutoff;
        let empty = |p: u32| {
            let state = self.pages.state(p);
            state.quarters == 0
                && self.pages.name(p).is_none_or(|n| n.at < cutoff)
                && state.followers.get().is_none_or(|s| s.at < cutoff)
        };
        let gone: Vec<u32> = self.pages.live().filter(|p| empty(*p)).collect();
        for p in gone {
            if self.changes.is_on() {
                let ident = self.pages.ident(p);
                self.changes.freed(&self.pages.platforms()[usize::from(ident.platform)], &ident.id);
            }
            if let Some(d) = &mut self.increment {
                let ident = self.pages.ident(p);
                d.freed.push((
                    p,
                    self.pages.platforms()[usize::from(ident.platform)].clone(),
                    ident.id.as_str().into(),
                ));
            }
            self.free_page(p);
        }
    }

    fn free_page(&mut self, p: u32) {
        for t in self.periods[0].ring.iter().flatten() {
            if let Some((i, _)) = t.slot(p) {
                self.series.clear(t.period, i, p);
            }
        }
        self.periods.iter_mut().for_each(|k| k.clear(p));
        self.release_kept_tops();
        self.pages.free(p);
    }

    /// Page `page`'s slot in period `period` of kind `k`, added if missing;
    /// its index.
    fn slot_of(&mut self, k: usize, period: CalendarPeriod, page: u32) -> (usize, &mut Slot) {
        let (i, added, slot) = self.periods[k].slot_or_add(period, page);
        if added && k == 0 {
            self.pages.state_mut(page).quarters += 1;
        }
        (i, slot)
    }

    fn observe_page(&mut self, page: u32, ev: &Event<'_>) {
        if ev.observed_at < self.cutoff {
            return;
        }
        if let Some(d) = &mut self.increment {
            d.since = d.since.min(ev.observed_at);
        }
        if let Some(f) = ev.followers {
            let sample = Sample { at: ev.observed_at, value: f };
            self.pages.state_mut(page).followers.merge(sample);
            for k in 0..self.periods.len() {
                if let Some(period) = self.periods[k].retained(ev.observed_at) {
                    self.slot_of(k, period, page).1.followers.merge(sample);
                }
            }
        }
        if let Some(name) = &ev.page_name {
            self.pages.observe_name(page, ev.observed_at, name);
        }
    }

    /// Per kind kept, the period holding the instant `ms`.
    fn periods_of(&self, ms: Millis) -> PeriodsAt {
        let quarter = self.periods[0].period_of(ms);
        let mut at = [quarter; MAX_KINDS];
        for (p, kind) in at.iter_mut().zip(&self.periods).skip(1) {
            *p = kind.period_of(ms);
        }
        at
    }

    fn add_post(&mut self, page: u32, key: u64, hash: u64, at: &PeriodsAt, ev: &Event<'_>) -> Outcome {
        let quarter = at[0];
        if self.posts.len() >= self.limits.max_posts as usize {
            return Outcome::Rejected(Bound::Posts);
        }
        if let (Tracking::Delta, Some(id)) = (ev.kind, &ev.event_id) {
            if self.event_ids.insert(as_quarter(quarter), event_key(page, hash, id)) == Remembered::Full {
                return Outcome::Rejected(Bound::EventIds);
            }
        }
        let post =
            Post { page, hash, kind: ev.kind, published: ev.published_at, observed: ev.observed_at, counts: ev.counts };
        let pages = &self.pages;
        let Some(post_slot) = self.posts.insert(key, &post, |p| post_key(pages.key(p.page), p.hash)) else {
            return Outcome::Rejected(Bound::Posts);
        };
        self.count_added(&post, post_slot, at);
        let candidate = TopCandidate { hash, id: &ev.post_id, old: None, interactions: post.counts.interactions() };
        self.note_top(page, quarter, &candidate);
        if let Some(d) = &mut self.increment {
            d.posts.mark(post_slot);
        }
        Outcome::Applied
    }

    /// Changes page `page`'s totals with `change` in the periods `at` of
    /// every kind that retains its one; the index of its quarter slot.
    fn add_to_periods(&mut self, page: u32, at: &PeriodsAt, change: impl Fn(&mut Totals)) -> usize {
        let mut quarter_slot = 0;
        for (k, &period) in at.iter().enumerate().take(self.periods.len()) {
            if !self.periods[k].keeps(period) {
                continue;
            }
            let (i, slot) = self.slot_of(k, period, page);
            let mut totals = slot.totals();
            change(&mut totals);
            slot.set_totals(totals);
            if k == 0 {
                quarter_slot = i;
            }
        }
        quarter_slot
    }

    /// Counts a post just stored in `slot` in its page's totals of the
    /// periods `at` and in the rolling edges.
    #[inline]
    fn count_added(&mut self, post: &Post, slot: u32, at: &PeriodsAt) {
        let i = self.add_to_periods(post.page, at, |t| t.add_post(&post.counts));
        self.series.change(at[0], i, post.page, day_of(post.published), |t| t.add_post(&post.counts));
        for edge in self.edges.iter_mut().flatten() {
            edge.post_added(at[0], i, post.published, &post.counts, (post.page, slot));
        }
    }

    /// Counts a stored post's change from `old` to `new` in its page's
    /// totals of the periods `at` and in the rolling edges.
    #[inline]
    fn count_changed(&mut self, old: &Post, new: &Post, at: &PeriodsAt) {
        let i = self.add_to_periods(new.page, at, |t| t.apply_change(&old.counts, &new.counts));
        let day = day_of(new.published);
        self.series.change(at[0], i, new.page, day, |t| t.apply_change(&old.counts, &new.counts));
        for edge in self.edges.iter_mut().flatten() {
            edge.post_changed(at[0], i, new.published, &old.counts, &new.counts);
        }
    }

    fn apply_delta(&mut self, post: Post, quarter: CalendarPeriod, ev: &Event<'_>) -> Result<Post, Outcome> {
        if let Some(id) = &ev.event_id {
            match self.event_ids.insert(as_quarter(quarter), event_key(post.page, post.hash, id)) {
                Remembered::New => {}
                Remembered::Seen => return Err(Outcome::Duplicate),
                Remembered::Full => return Err(Outcome::Rejected(Bound::EventIds)),
            }
        }
        let add = |a: u64, b: u64| a.saturating_add(b).min(crate::event::COUNT_LIMIT - 1);
        let c = post.counts;
        let counts = Counts {
            reactions: add(c.reactions, ev.counts.reactions),
            comments: add(c.comments, ev.counts.comments),
            shares: add(c.shares, ev.counts.shares),
            views: add(c.views, ev.counts.views),
        };
        Ok(Post { observed: post.observed.max(ev.observed_at), counts, ..post })
    }

    fn note_change(&mut self, old: &Post, new: &Post, at: &PeriodsAt, post_id: &str) {
        let quarter = at[0];
        self.count_changed(old, new, at);
        let candidate = TopCandidate {
            hash: new.hash,
            id: post_id,
            old: Some(old.counts.interactions()),
            interactions: new.counts.interactions(),
        };
        self.note_top(new.page, quarter, &candidate);
    }

    /// Notes a post for its page's top list of `quarter`: the live list,
    /// or, for a post of an earlier quarter, that quarter's kept list (in
    /// its table, while the quarter is kept). A live list that a later
    /// quarter's replaces is kept in its quarter's table the same way.
    fn note_top(&mut self, page: u32, quarter: CalendarPeriod, post: &TopCandidate<'_>) {
        let (change, kept_changed) = match self.pages.note_top_post(page, as_quarter(quarter), post) {
            Noted::Live(change) => (change, false),
            Noted::Began { old, quarter: was } => {
                let was = CalendarPeriod { kind: CalendarKind::Quarter, index: was.index() };
                self.keep_top(page, was, old);
                (TopChange::Members, true)
            }
            Noted::Earlier if !self.names_quarter(quarter) => (TopChange::None, false),
            Noted::Earlier => {
                let quarters = &mut self.periods[0];
                let Some(i) = quarters.slot_index(quarter, page) else { return };
                let Some(table) = quarters.table_for(quarter) else { return };
                let (list, change) = self.pages.offer(table.top(i), post);
                table.set_top(i, list);
                (TopChange::None, change != TopChange::None)
            }
        };
        if let Some(d) = &mut self.increment {
            d.top_changed(page, change);
            if kept_changed {
                d.kept_tops.mark(page);
            }
        }
    }

    /// Keeps `list`, page `page`'s top list of quarter `q`, in that
    /// quarter's table while it is kept (the page has a slot there: the
    /// list's posts were counted in it); frees it otherwise.
    fn keep_top(&mut self, page: u32, q: CalendarPeriod, list: TopRef) {
        if !self.names_quarter(q) {
            return self.pages.release_top(list);
        }
        let quarters = &mut self.periods[0];
        let slot = quarters.slot_index(q, page);
        match (slot, quarters.table_for(q)) {
            (Some(i), Some(table)) => {
                let replaced = table.set_top(i, list);
                self.pages.release_top(replaced);
            }
            _ => self.pages.release_top(list),
        }
    }

    /// The quarters the windows name, as (oldest, current): a list is kept
    /// for those only (a quarter table held longer, for the rolling
    /// windows' edges, is no window). `None` before the first event;
    /// oldest past current when no quarter is configured.
    fn named_quarters(&self) -> Option<(CalendarPeriod, CalendarPeriod)> {
        let current = self.periods[0].current()?;
        let oldest = match self.limits.windows.retention(CalendarKind::Quarter) {
            Some(kept) => current.minus(kept),
            None => CalendarPeriod { index: current.index + 1, ..current },
        };
        Some((oldest, current))
    }

    /// Whether quarter `q` is one the windows name.
    fn names_quarter(&self, q: CalendarPeriod) -> bool {
        self.named_quarters().is_some_and(|(oldest, current)| oldest <= q && q <= current)
    }

    /// Frees the kept top lists of dropped quarters, of quarters no window
    /// names any more, and of cleared slots.
    fn release_kept_tops(&mut self) {
        if let Some((oldest, _)) = self.named_quarters() {
            self.periods[0].release_tops_before(oldest);
        }
        for list in self.periods[0].take_released() {
            self.pages.release_top(list);
        }
    }
}

/// The quarter a period of kind quarter is.
fn as_quarter(p: CalendarPeriod) -> Quarter {
    Quarter::from_index(p.index)
}

/// The updated post, or the outcome that leaves it unchanged. A snapshot
/// is applied when (`observed_at`, interactions) is strictly greater. Two
/// snapshots equal on that pair but with other counts would make the
/// result depend on arrival order, so the counts themselves break the tie.
fn apply_snapshot(post: Post, ev: &Event<'_>) -> Result<Post, Outcome> {
    let key = |at: Millis, c: &Counts| (at, c.interactions(), c.reactions, c.comments, c.shares, c.views);
    if key(ev.observed_at, &ev.counts) <= key(post.observed, &post.counts) {
        return Err(Outcome::Stale);
    }
    Ok(Post { observed: ev.observed_at, counts: ev.counts, ..post })
}

#[cfg(test)]
mod tests;
