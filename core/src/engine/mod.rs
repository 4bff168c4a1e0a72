//! The aggregation engine: applies decoded events to per-post state and
//! per-page, per-window totals (docs/events.md#semantics). Pure: time arrives only
//! inside events, and the watermark is the greatest `observed_at` seen.
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

mod event_ids;
mod pages;
mod posts;

pub use crate::codec::DecodeError;

pub use pages::{Page, Pages, QuarterSlot, Sample, TopCandidate, TopPost, Totals};
pub use posts::{MAX_PAGES, Post, post_hash};

use crate::event::{Event, Tracking};
use crate::window::{Calendar, Millis, Quarter};
use event_ids::{EventIds, Remembered, event_key};
use pages::PageRefused;
use posts::PostTable;

/// Caps on what input can grow, and the window settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Earlier quarters kept besides the current one (default 4).
    pub retained_quarters: u32,
    /// Length of the rolling window in days (default 90).
    pub rolling_days: u32,
    pub max_pages: u32,
    pub max_posts: u32,
    pub max_platforms: u32,
    pub max_event_ids: u32,
    /// Posts listed per page by the page endpoint.
    pub top_posts: u32,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            retained_quarters: 4,
            rolling_days: 90,
            max_pages: 1_000_000,
            max_posts: 50_000_000,
            max_platforms: 64,
            max_event_ids: 20_000_000,
            top_posts: 10,
        }
    }
}

/// Largest `retained_quarters`: a post record stores observed − published
/// in 36 bits of milliseconds (795 days), which covers 8 quarters.
pub const MAX_RETAINED_QUARTERS: u32 = 7;

impl Limits {
    /// The configured cap of one bound.
    pub fn bound(&self, b: Bound) -> u32 {
        match b {
            Bound::Pages => self.max_pages,
            Bound::Posts => self.max_posts,
            Bound::Platforms => self.max_platforms,
            Bound::EventIds => self.max_event_ids,
        }
    }

    /// Checks the limits against what the engine can represent.
    pub fn validate(&self) -> Result<(), &'static str> {
        if self.retained_quarters > MAX_RETAINED_QUARTERS {
            return Err("retained_quarters must be at most 7");
        }
        if self.rolling_days == 0 || self.rolling_days > 366 {
            return Err("rolling_days must be between 1 and 366");
        }
        if self.max_pages == 0 || self.max_pages > MAX_PAGES - 1 {
            return Err("max_pages must be between 1 and 8388606");
        }
        if self.max_platforms == 0 || self.max_platforms > 1024 {
            return Err("max_platforms must be between 1 and 1024");
        }
        if self.top_posts > 100 {
            return Err("top_posts must be at most 100");
        }
        Ok(())
    }
}

/// Which cap rejected an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bound {
    Pages,
    Posts,
    Platforms,
    EventIds,
}

impl Bound {
    pub const ALL: [Bound; 4] = [Bound::Pages, Bound::Posts, Bound::Platforms, Bound::EventIds];

    pub const fn as_str(self) -> &'static str {
        match self {
            Bound::Pages => "pages",
            Bound::Posts => "posts",
            Bound::Platforms => "platforms",
            Bound::EventIds => "event_ids",
        }
    }

    /// The reason given for a rejected event (log field, dead-letter header).
    pub fn reason(self) -> &'static str {
        match self {
            Bound::Pages => "rejected at the page bound",
            Bound::Posts => "rejected at the post bound",
            Bound::Platforms => "rejected at the platform bound",
            Bound::EventIds => "rejected at the event id bound",
        }
    }
}

/// What became of an event (the `outcome` label of docs/metrics.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Applied,
    Stale,
    Duplicate,
    Conflict,
    Expired,
    Invalid,
    /// Refused at a capacity bound (see [`Bound`]); not in the product specification's list.
    Rejected(Bound),
}

impl Outcome {
    /// One outcome per label value, in the order they are exported.
    pub const EACH: [Outcome; 7] = [
        Outcome::Applied,
        Outcome::Stale,
        Outcome::Duplicate,
        Outcome::Conflict,
        Outcome::Expired,
        Outcome::Invalid,
        Outcome::Rejected(Bound::Pages),
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::Stale => "stale",
            Outcome::Duplicate => "duplicate",
            Outcome::Conflict => "conflict",
            Outcome::Expired => "expired",
            Outcome::Invalid => "invalid",
            Outcome::Rejected(_) => "rejected",
        }
    }

    /// Position of the outcome's label in [`EACH`](Self::EACH).
    pub const fn index(self) -> usize {
        match self {
            Outcome::Applied => 0,
            Outcome::Stale => 1,
            Outcome::Duplicate => 2,
            Outcome::Conflict => 3,
            Outcome::Expired => 4,
            Outcome::Invalid => 5,
            Outcome::Rejected(_) => 6,
        }
    }
}

impl From<PageRefused> for Bound {
    fn from(r: PageRefused) -> Bound {
        match r {
            PageRefused::Pages => Bound::Pages,
            PageRefused::Platforms => Bound::Platforms,
        }
    }
}

/// Sizes of the input-grown structures, for gauges against their bounds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub pages: usize,
    pub posts: usize,
    pub platforms: usize,
    pub event_ids: usize,
    pub heap_bytes: usize,
}

/// The engine. One writer owns it; readers get a [`crate::view::View`].
pub struct Engine {
    limits: Limits,
    watermark: Option<Millis>,
    /// The quarter containing the watermark, and when it ends.
    current: Option<(Quarter, Millis)>,
    /// Quarter boundaries around the current quarter.
    calendar: Calendar,
    pages: Pages,
    posts: PostTable,
    event_ids: EventIds,
}

impl Engine {
    /// # Panics
    /// When `limits` fail [`Limits::validate`]; configuration is checked
    /// before an engine is built.
    pub fn new(limits: Limits) -> Engine {
        limits.validate().expect("engine limits are validated with the configuration");
        Engine {
            pages: Pages::new(limits.max_pages, limits.max_platforms as usize, limits.retained_quarters as usize + 1),
            posts: PostTable::default(),
            event_ids: EventIds::new(limits.max_event_ids as usize),
            watermark: None,
            current: None,
            calendar: Calendar::around(Quarter::containing(0), 0),
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

    pub fn pages(&self) -> &Pages {
        &self.pages
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
            heap_bytes: self.pages.heap_bytes() + self.posts.heap_bytes() + self.event_ids.heap_bytes(),
        }
    }

    /// Applies one valid event and says what became of it.
    pub fn apply(&mut self, ev: &Event<'_>) -> Outcome {
        self.advance_watermark(ev.observed_at);
        let oldest = self.oldest().expect("the watermark was just set");
        let page = match self.pages.intern(&ev.platform, &ev.page_id) {
            Ok(p) => p,
            Err(refused) => return Outcome::Rejected(refused.into()),
        };
        self.observe_page(page, ev, oldest);
        let hash = post_hash(&ev.post_id);
        let found = self.posts.find(page, hash);
        // A post's publication time is fixed by its first event.
        let published = found.map_or(ev.published_at, |(_, p)| p.published);
        let quarter = self.calendar.quarter_of(published);
        if quarter < oldest {
            return Outcome::Expired;
        }
        let Some((slot, post)) = found else {
            return self.add_post(page, hash, quarter, ev);
        };
        if post.kind != ev.kind {
            return Outcome::Conflict;
        }
        let updated = match ev.kind {
            Tracking::Snapshot => self.apply_snapshot(post, ev),
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
        if self.current.is_some_and(|(_, end)| observed < end) {
            return;
        }
        let q = Quarter::containing(observed);
        let had_one = self.current.is_some();
        self.current = Some((q, q.end()));
        self.calendar = Calendar::around(q, self.limits.retained_quarters + 1);
        if had_one {
            self.forget_expired();
        }
    }

    /// Frees posts, event ids and page data of quarters out of retention.
    fn forget_expired(&mut self) {
        let oldest = self.oldest().expect("called after the watermark is set");
        let cutoff = oldest.start();
        self.posts.remove_where(|p| p.published < cutoff);
        self.event_ids.forget_before(oldest);
        self.pages.forget_before(oldest);
    }

    fn observe_page(&mut self, page: u32, ev: &Event<'_>, oldest: Quarter) {
        let observed_in = self.calendar.quarter_of(ev.observed_at);
        if observed_in < oldest {
            return;
        }
        let p = self.pages.get_mut(page);
        if let Some(f) = ev.followers {
            p.observe_followers(observed_in, ev.observed_at, f);
        }
        if let Some(name) = &ev.page_name {
            p.observe_name(ev.observed_at, name);
        }
    }

    fn add_post(&mut self, page: u32, hash: u64, quarter: Quarter, ev: &Event<'_>) -> Outcome {
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
        self.posts.insert(&post);
        let p = self.pages.get_mut(page);
        p.slot_mut(quarter).totals.add_post(&post.counts);
        let top = self.limits.top_posts as usize;
        let candidate = TopCandidate { hash, id: &ev.post_id, old: None, interactions: post.counts.interactions() };
        p.note_top_post(quarter, candidate, top);
        Outcome::Applied
    }

    /// The updated post, or the outcome that leaves it unchanged.
    /// A snapshot is applied when (`observed_at`, interactions) is
    /// strictly greater. Two snapshots equal on that pair but with other
    /// counts would make the result depend on arrival order, so the counts
    /// themselves break the tie.
    fn apply_snapshot(&self, post: Post, ev: &Event<'_>) -> Result<Post, Outcome> {
        let key =
            |at: Millis, c: &crate::event::Counts| (at, c.interactions(), c.reactions, c.comments, c.shares, c.views);
        if key(ev.observed_at, &ev.counts) <= key(post.observed, &post.counts) {
            return Err(Outcome::Stale);
        }
        Ok(Post { observed: ev.observed_at, counts: ev.counts, ..post })
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
        let counts = crate::event::Counts {
            reactions: add(c.reactions, ev.counts.reactions),
            comments: add(c.comments, ev.counts.comments),
            shares: add(c.shares, ev.counts.shares),
            views: add(c.views, ev.counts.views),
        };
        Ok(Post { observed: post.observed.max(ev.observed_at), counts, ..post })
    }

    fn note_change(&mut self, old: &Post, new: &Post, quarter: Quarter, post_id: &str) {
        let p = self.pages.get_mut(new.page);
        p.slot_mut(quarter).totals.apply_change(&old.counts, &new.counts);
        let top = self.limits.top_posts as usize;
        let candidate = TopCandidate {
            hash: new.hash,
            id: post_id,
            old: Some(old.counts.interactions()),
            interactions: new.counts.interactions(),
        };
        p.note_top_post(quarter, candidate, top);
    }
}

/// Checkpoint body format version of [`Engine::encode`].
pub const STATE_VERSION: u32 = 1;

impl Engine {
    /// Writes the complete state (see `checkpoint` for the file around it).
    pub fn encode<W: std::io::Write>(&self, out: W) -> std::io::Result<()> {
        let mut w = crate::codec::Writer(out);
        match self.watermark {
            None => w.u8(0)?,
            Some(wm) => {
                w.u8(1)?;
                w.i64(wm)?;
            }
        }
        self.pages.encode(&mut w)?;
        self.posts.encode(&mut w)?;
        self.event_ids.encode(&mut w)
    }

    /// Rebuilds an engine from [`encode`](Self::encode)'s output under the
    /// current `limits` (state beyond the current retention is dropped).
    pub fn decode<R: std::io::Read>(input: R, limits: Limits) -> Result<Engine, DecodeError> {
        let mut r = crate::codec::Reader(input);
        let mut e = Engine::new(limits);
        e.watermark = match r.u8()? {
            0 => None,
            1 => Some(r.i64()?)
                .filter(|w| crate::window::in_range(*w))
                .map(Ok)
                .unwrap_or(Err(DecodeError::Range("watermark")))?
                .into(),
            _ => return Err(DecodeError::Range("watermark flag")),
        };
        let ring = limits.retained_quarters as usize + 1;
        e.pages = Pages::decode(&mut r, limits.max_pages, limits.max_platforms as usize, ring)?;
        let oldest = e.watermark.map(|wm| Quarter::containing(wm).minus(limits.retained_quarters));
        let cutoff = oldest.map_or(i64::MIN, Quarter::start);
        let pages = &e.pages;
        e.posts =
            PostTable::decode(&mut r, limits.max_posts as usize, |p| pages.is_live(p), |p| p.published >= cutoff)?;
        e.event_ids = EventIds::decode(&mut r, limits.max_event_ids as usize)?;
        if let (Some(wm), Some(oldest)) = (e.watermark, oldest) {
            let q = Quarter::containing(wm);
            e.current = Some((q, q.end()));
            e.calendar = Calendar::around(q, limits.retained_quarters + 1);
            // Posts out of retention were skipped while decoding.
            e.event_ids.forget_before(oldest);
            e.pages.forget_before(oldest);
        }
        Ok(e)
    }
}

#[cfg(test)]
mod tests;
