//! The aggregation engine: applies decoded events to per-post state and
//! per-page, per-window totals (docs/events.md#semantics). Pure: time
//! arrives only inside events, and the watermark is the greatest
//! `observed_at` seen.
//!
//! Layout: posts ([`posts`]) are 32-byte records grouped by publication day;
//! pages ([`pages`]) and their per-quarter totals ([`quarters`]) live in
//! copy-on-write columns ([`column`]); the rolling window and its
//! predecessor are kept by two edges ([`rolling`]). A [`Snapshot`] of
//! everything a view or a checkpoint needs is a list of shared chunks, so
//! taking one never pauses the writer for long.
//!
//! Bounds: every structure that input can grow is capped by [`Limits`]. An
//! event that would grow a structure past its cap is rejected with
//! [`Outcome::Rejected`] naming the [`Bound`], changes nothing, and is
//! counted per bound by the shell.
//!
//! A post's publication time (hence its quarter) is fixed by its first
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
mod index;
mod limits;
pub mod pages;
mod persist;
mod posts;
pub mod quarters;
mod rolling;
mod snapshot;
mod tops;

pub use crate::codec::DecodeError;
pub use batch::{Batch, Message, decode_batch, recycle};
pub use changes::Changed;
pub use limits::{Bound, Limits, MAX_EVENT_IDS, MAX_RETAINED_QUARTERS, Outcome, Usage};
pub use pages::{Ident, Named, PageState, TopCandidate};
pub use persist::STATE_VERSION;
pub use posts::{MAX_PAGES, MAX_POSTS, Post, post_hash, post_key};
pub use quarters::{Sample, Slot, Totals};
pub use rolling::Edge;
pub use snapshot::Snapshot;
pub use tops::{ID_MAX, TOP_MAX, TopList, TopPost};

use crate::event::{Counts, Event, Tracking};
use crate::window::{Calendar, DAY_MS, Millis, Quarter};
use changes::Changes;
use event_ids::{EventIds, Remembered, event_key};
use pages::Pages;
use posts::{PostTable, day_of};
use quarters::Quarters;

/// The engine. One writer owns it; readers get snapshots.
#[derive(Debug)]
pub struct Engine {
    limits: Limits,
    watermark: Option<Millis>,
    /// The quarter containing the watermark, and when it ends.
    current: Option<(Quarter, Millis)>,
    /// Quarter boundaries around the current quarter.
    calendar: Calendar,
    pages: Pages,
    quarters: Quarters,
    posts: PostTable,
    event_ids: EventIds,
    /// The start of the rolling window, and of its predecessor.
    edges: Option<[Edge; 2]>,
    batch: Batch,
    /// Pages changed since the last look (shard mode only).
    changes: Changes,
}

impl Engine {
    /// # Panics
    /// When `limits` fail [`Limits::validate`]; configuration is checked
    /// before an engine is built.
    pub fn new(limits: Limits) -> Engine {
        limits.validate().expect("engine limits are validated with the configuration");
        Engine {
            pages: Pages::new(limits.max_pages, limits.max_platforms as usize, limits.top_posts as usize),
            quarters: Quarters::new(limits.retained_quarters as usize + 1),
            posts: PostTable::default(),
            event_ids: EventIds::new(limits.max_event_ids as usize),
            watermark: None,
            current: None,
            calendar: Calendar::around(Quarter::containing(0), 0),
            edges: None,
            batch: Batch::default(),
            changes: Changes::default(),
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
        self.current.map(|(q, _)| q)
    }

    /// The oldest retained quarter.
    pub fn oldest(&self) -> Option<Quarter> {
        Some(self.current()?.minus(self.limits.retained_quarters))
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
                + self.quarters.heap_bytes()
                + self.posts.heap_bytes()
                + self.event_ids.heap_bytes(),
        }
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
    /// event (totals, followers, name, top posts) or by the rolling window
    /// moving past one of their posts; and the pages freed.
    pub fn take_changes(&mut self) -> Changed {
        let pages = &self.pages;
        self.changes.take(|p| pages.ident(p).platform != u16::MAX)
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
        self.advance_watermark(ev.observed_at);
        let oldest = self.oldest().expect("the watermark was just set");
        let known = keys.map(|k| (k.platform, k.page));
        let (page, page_key) = match self.pages.intern_keyed(&ev.platform, &ev.page_id, known) {
            Ok(found) => found,
            Err(rejected) => return Outcome::Rejected(rejected.into()),
        };
        if let Some(partition) = partition {
            self.pages.note_partition(page, partition);
        }
        self.changes.mark(page);
        self.observe_page(page, ev, oldest);
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
        let quarter = self.calendar.quarter_of(published);
        if quarter < oldest {
            return Outcome::Expired;
        }
        let Some((slot, post)) = found else {
            return self.add_post(page, key, hash, quarter, ev);
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
                self.note_change(&post, &updated, quarter, &ev.post_id);
                Outcome::Applied
            }
            Err(unchanged) => unchanged,
        }
    }

    fn advance_watermark(&mut self, observed: Millis) {
        if self.watermark.is_some_and(|w| observed <= w) {
            return;
        }
        self.watermark = Some(observed);
        if self.current.is_none_or(|(_, end)| observed >= end) {
            let q = Quarter::containing(observed);
            let had_one = self.current.is_some();
            self.current = Some((q, q.end()));
            self.calendar = Calendar::around(q, self.limits.retained_quarters + 1);
            if had_one {
                self.forget_expired();
            }
        }
        self.advance_edges(observed);
    }

    /// Moves the rolling window's start and its predecessor's with the
    /// watermark.
    fn advance_edges(&mut self, watermark: Millis) {
        let span = Millis::from(self.limits.rolling_days) * DAY_MS;
        let (s, s2) = (watermark - span, watermark - 2 * span);
        let edges = self.edges.get_or_insert_with(|| [Edge::new(s), Edge::new(s2)]);
        edges[0].advance(s, &self.posts, &self.pages, &self.quarters, &mut self.changes);
        edges[1].advance(s2, &self.posts, &self.pages, &self.quarters, &mut self.changes);
    }

    /// Frees posts, event ids, quarters and pages out of retention.
    fn forget_expired(&mut self) {
        let oldest = self.oldest().expect("called after the watermark is set");
        let cutoff = day_of(oldest.start());
        while let Some(day) = self.posts.first_day().filter(|d| *d < cutoff) {
            let pages = &self.pages;
            self.posts.remove_day(day, |p| post_key(pages.key(p.page), p.hash));
        }
        self.event_ids.forget_before(oldest);
        if self.changes.is_on() {
            // Pages with figures in a quarter that goes change.
            for t in self.quarters.ring.iter().flatten().filter(|t| t.quarter < oldest) {
                t.slots.iter().for_each(|s| self.changes.mark(s.page));
            }
        }
        self.quarters.forget_before(oldest);
        let gone: Vec<u32> = self.pages.live().filter(|p| self.page_is_empty(*p, oldest)).collect();
        for p in gone {
            if self.changes.is_on() {
                let ident = self.pages.ident(p);
                self.changes.freed(&self.pages.platforms()[usize::from(ident.platform)], &ident.id);
            }
            self.pages.free(p);
        }
    }

    /// No slot in a retained quarter, no recent name or follower sample.
    fn page_is_empty(&self, p: u32, oldest: Quarter) -> bool {
        let state = self.pages.state(p);
        let recent = |at: Millis| at >= oldest.start();
        let has_slot = self.quarters.ring.iter().flatten().any(|t| {
            let dir = state.slots[self.quarters.position(t.quarter)];
            self.quarters.slot(t.quarter, p, dir).is_some()
        });
        !has_slot
            && !self.pages.name(p).is_some_and(|n| recent(n.at))
            && !state.followers.get().is_some_and(|s| recent(s.at))
    }

    /// The slot of page `p` in quarter `q`, created if missing; its index.
    fn slot_of(&mut self, p: u32, q: Quarter) -> usize {
        let pos = self.quarters.position(q);
        let dir = self.pages.state(p).slots[pos];
        if self.quarters.slot(q, p, dir).is_some() {
            return dir as usize - 1;
        }
        let i = self.quarters.table_mut(q).slots.push(Slot::new(p));
        self.pages.state_mut(p).slots[pos] = i as u32 + 1;
        i
    }

    fn slot_mut(&mut self, q: Quarter, i: usize) -> &mut Slot {
        self.quarters.table_mut(q).slots.get_mut(i)
    }

    fn observe_page(&mut self, page: u32, ev: &Event<'_>, oldest: Quarter) {
        let observed_in = self.calendar.quarter_of(ev.observed_at);
        if observed_in < oldest {
            return;
        }
        if let Some(f) = ev.followers {
            let sample = Sample { at: ev.observed_at, value: f };
            self.pages.state_mut(page).followers.merge(sample);
            let i = self.slot_of(page, observed_in);
            self.slot_mut(observed_in, i).followers.merge(sample);
        }
        if let Some(name) = &ev.page_name {
            self.pages.observe_name(page, ev.observed_at, name);
        }
    }

    fn add_post(&mut self, page: u32, key: u64, hash: u64, quarter: Quarter, ev: &Event<'_>) -> Outcome {
        if self.posts.len() >= self.limits.max_posts as usize {
            return Outcome::Rejected(Bound::Posts);
        }
        if let (Tracking::Delta, Some(id)) = (ev.kind, &ev.event_id) {
            if self.event_ids.insert(quarter, event_key(page, hash, id)) == Remembered::Full {
                return Outcome::Rejected(Bound::EventIds);
            }
        }
        let post =
            Post { page, hash, kind: ev.kind, published: ev.published_at, observed: ev.observed_at, counts: ev.counts };
        let pages = &self.pages;
        let Some(post_slot) = self.posts.insert(key, &post, |p| post_key(pages.key(p.page), p.hash)) else {
            return Outcome::Rejected(Bound::Posts);
        };
        let i = self.slot_of(page, quarter);
        let slot = self.slot_mut(quarter, i);
        let mut totals = slot.totals();
        totals.add_post(&post.counts);
        slot.set_totals(totals);
        for edge in self.edges.iter_mut().flatten() {
            edge.post_added(quarter, i, post.published, &post.counts, (page, post_slot));
        }
        let candidate = TopCandidate { hash, id: &ev.post_id, old: None, interactions: post.counts.interactions() };
        self.pages.note_top_post(page, quarter, candidate);
        Outcome::Applied
    }

    fn apply_delta(&mut self, post: Post, quarter: Quarter, ev: &Event<'_>) -> Result<Post, Outcome> {
        if let Some(id) = &ev.event_id {
            match self.event_ids.insert(quarter, event_key(post.page, post.hash, id)) {
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

    fn note_change(&mut self, old: &Post, new: &Post, quarter: Quarter, post_id: &str) {
        let i = self.slot_of(new.page, quarter);
        let slot = self.slot_mut(quarter, i);
        let mut totals = slot.totals();
        totals.apply_change(&old.counts, &new.counts);
        slot.set_totals(totals);
        for edge in self.edges.iter_mut().flatten() {
            edge.post_changed(quarter, i, new.published, &old.counts, &new.counts);
        }
        let candidate = TopCandidate {
            hash: new.hash,
            id: post_id,
            old: Some(old.counts.interactions()),
            interactions: new.counts.interactions(),
        };
        self.pages.note_top_post(new.page, quarter, candidate);
    }
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
