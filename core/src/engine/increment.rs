//! What changed since the last checkpoint, as bytes a restored engine can take
//! in: shard mode writes a full state (a base, see [`persist`](super::persist))
//! now and then and, between two bases, one increment per interval whose size
//! follows the change, not the state (docs/scaling.md#shard-mode).
//!
//! An increment holds the watermark, the watermark guards, the history
//! gaps, the event ids remembered since the last increment, the pages
//! freed, and for each page an event reached: its number (and identity when
//! new), its partition, its follower sample and name when observed since,
//! its top list when it changed, its follower samples per period observed
//! since, and the records of its posts that were added or changed. Applying it
//! moves the watermark first (days expire, periods roll, rolling edges
//! pass the posts already held), then writes each post record as it is,
//! adjusting every table and edge by the difference from the record held,
//! as an event would. Totals are sums over posts and samples merge by
//! (time, value), so the result answers as the engine that wrote the
//! increment does (`core/tests/increments.rs` checks it against a plain restore).
//!
//! "Observed since" means at or after the earliest `observed_at` of the
//! events applied since the last increment: every sample merged since carries
//! such a time, so the test keeps all of them and only a few more.
//!
//! Bounds: a bit per post slot and per page number, and the lists of
//! those marked between two increments; reading checks every count against
//! the engine's limits, like a checkpoint.

use std::io;

use super::changes::Marks;
use super::persist::{read_gaps, read_guards, read_windows, write_gaps, write_guards, write_windows};
use super::posts::Rec;
use super::tops::{ID_MAX, OwnedTopPost, TOP_MAX};
use super::{DAY_MS, Engine};
use crate::codec::{DecodeError, Reader, Writer};
use crate::event::Counts;
use crate::window::{CalendarKind, CalendarPeriod, Millis, Quarter};

/// Format version of an increment: 2 carries the kept top lists of
/// earlier quarters; 1 (without them) is read too.
pub const INCREMENT_VERSION: u8 = 2;

/// What changed since the last increment (or base).
#[derive(Debug, Clone, Default)]
pub(super) struct Pending {
    /// Pages an event reached.
    pub(super) pages: Marks,
    /// Pages whose top list changed members (or quarter).
    pub(super) tops: Marks,
    /// Pages whose top list changed only the interactions of listed posts.
    pub(super) top_counts: Marks,
    /// Pages whose kept top list of an earlier quarter changed.
    pub(super) kept_tops: Marks,
    /// Pages added (their numbers are new to the reader).
    pub(super) new_pages: Marks,
    /// Post slots written.
    pub(super) posts: Marks,
    /// The earliest `observed_at` of the events applied.
    pub(super) since: Millis,
    /// Per quarter of remembered event ids, how many the last increment covered.
    ids: Vec<(Quarter, usize)>,
    /// Pages freed, in order: number, platform, id.
    pub(super) freed: Vec<(u32, std::sync::Arc<str>, Box<str>)>,
}

impl Pending {
    /// Nothing noted yet; `ids` says how many event ids are covered already.
    fn after(ids: Vec<(Quarter, usize)>) -> Pending {
        Pending { since: Millis::MAX, ids, ..Pending::default() }
    }

    #[inline]
    pub(super) fn top_changed(&mut self, page: u32, change: super::TopChange) {
        match change {
            super::TopChange::None => {}
            super::TopChange::Counts => self.top_counts.mark(page),
            super::TopChange::Members => self.tops.mark(page),
        }
    }
}

/// Page header flags.
const IDENT: u8 = 1;
const FOLLOWERS: u8 = 2;
const NAME: u8 = 4;
const TOP: u8 = 8;
const TOP_COUNTS: u8 = 16;
/// The page's kept top lists of earlier quarters follow its posts (format 2).
const KEPT: u8 = 32;

/// What an increment held, for the caller to count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IncrementSize {
    pub pages: usize,
    pub posts: usize,
}

impl Engine {
    /// Starts noting what changes, so that [`take_increment`](Self::take_increment)
    /// can write it; what the engine holds now is the base.
    pub fn track_increments(&mut self) {
        self.increment = Some(Box::new(Pending::after(self.id_marks())));
    }

    /// Per quarter of remembered event ids, how many there are now.
    fn id_marks(&self) -> Vec<(Quarter, usize)> {
        self.event_ids.sets.iter().map(|s| (s.quarter, s.log.len())).collect()
    }

    /// Whether an increment has anything to say (an event was applied since the
    /// last one).
    pub fn increment_pending(&self) -> bool {
        self.increment.as_ref().is_some_and(|d| !d.pages.is_empty() || d.since != Millis::MAX)
    }

    /// Writes what changed since the last increment (or since
    /// [`track_increments`](Self::track_increments)) and starts over; an empty increment
    /// when tracking is off.
    pub fn take_increment(&mut self, out: &mut Vec<u8>) -> IncrementSize {
        let Some(mut marks) = self.increment.take() else {
            self.write_increment(out, &mut Pending::after(Vec::new())).expect("writes to a Vec");
            return IncrementSize::default();
        };
        let size = self.write_increment(out, &mut marks).expect("writes to a Vec");
        // The lists were taken while writing; what is left to restart is
        // the earliest observation and the event ids covered.
        (marks.since, marks.ids) = (Millis::MAX, self.id_marks());
        self.increment = Some(marks);
        size
    }

    fn write_increment(&self, out: &mut Vec<u8>, marks: &mut Pending) -> io::Result<IncrementSize> {
        let mut w = Writer(out);
        w.u8(INCREMENT_VERSION)?;
        w.sample(self.watermark.map(|wm| (wm, 0)))?;
        write_windows(&mut w, &self.limits.windows)?;
        write_guards(&mut w, &self.guards)?;
        write_gaps(&mut w, &self.gaps)?;
        w.u32(self.event_ids.sets.len() as u32)?;
        for s in &self.event_ids.sets {
            let from = marks.ids.iter().find(|(q, _)| *q == s.quarter).map_or(0, |(_, n)| *n).min(s.log.len());
            w.i32(s.quarter.index())?;
            w.u32((s.log.len() - from) as u32)?;
            for i in from..s.log.len() {
                w.u64(*s.log.get(i))?;
            }
        }
        let platforms = self.pages.platforms();
        w.u32(platforms.len() as u32)?;
        for p in platforms {
            w.str(p)?;
        }
        let freed = std::mem::take(&mut marks.freed);
        w.u32(freed.len() as u32)?;
        for (p, platform, id) in &freed {
            w.u32(*p)?;
            w.str(platform)?;
            w.str(id)?;
        }
        // The posts written, by page.
        let mut posts: Vec<(u32, u32)> = Vec::with_capacity(marks.posts.len());
        for slot in marks.posts.take() {
            if let Some(page) = self.posts.live_page(slot) {
                posts.push((page, slot));
            }
        }
        posts.sort_unstable();
        let sorted = |m: &mut Marks| {
            let mut v = m.take();
            v.sort_unstable();
            v
        };
        let (tops, top_counts, new_pages) =
            (sorted(&mut marks.tops), sorted(&mut marks.top_counts), sorted(&mut marks.new_pages));
        let kept_tops = sorted(&mut marks.kept_tops);
        let has = |v: &[u32], p: u32| v.binary_search(&p).is_ok();
        let mut pages = marks.pages.take();
        pages.retain(|p| self.pages.is_live(*p));
        pages.sort_unstable();
        w.u32(pages.len() as u32)?;
        let since = marks.since;
        let mut next = 0;
        for &p in &pages {
            let state = self.pages.state(p);
            let followers = state.followers.get().filter(|s| s.at >= since);
            let name = self.pages.name(p).filter(|n| n.at >= since);
            let top = self.pages.top(p);
            let mut flags = 0;
            flags |= if has(&new_pages, p) { IDENT } else { 0 };
            flags |= if followers.is_some() { FOLLOWERS } else { 0 };
            flags |= if name.is_some() { NAME } else { 0 };
            flags |= match &top {
                Some(_) if has(&tops, p) => TOP,
                Some(_) if has(&top_counts, p) => TOP_COUNTS,
                _ => 0,
            };
            flags |= if has(&kept_tops, p) { KEPT } else { 0 };
            w.u32(p)?;
            w.u8(flags)?;
            w.u16(state.partition().map_or(u16::MAX, |p| p as u16))?;
            w.u8(u8::from(state.split()))?;
            if flags & IDENT != 0 {
                let ident = self.pages.ident(p);
                w.u16(ident.platform)?;
                w.str(&ident.id)?;
            }
            if let Some(s) = followers {
                w.i64(s.at)?;
                w.u64(s.value)?;
            }
            if let Some(n) = name {
                w.i64(n.at)?;
                w.str(&n.name)?;
            }
            if let Some(t) = top.filter(|_| flags & (TOP | TOP_COUNTS) != 0) {
                w.i32(t.quarter.index())?;
                w.u32(t.len() as u32)?;
                for post in t.posts() {
                    w.u64(post.hash)?;
                    w.u64(post.interactions)?;
                    if flags & TOP != 0 {
                        w.str(post.id)?;
                    }
                }
            }
            let samples: Vec<(u8, i32, Millis, u64)> = self
                .periods
                .iter()
                .flat_map(|k| k.ring.iter().flatten())
                .filter_map(|t| {
                    let s = t.slot(p)?.1.followers.get().filter(|s| s.at >= since)?;
                    Some((t.period.kind as u8, t.period.index, s.at, s.value))
                })
                .collect();
            // Most are the page's own latest sample: a flag says so.
            let latest = state.followers.get().map(|s| (s.at, s.value));
            w.u32(samples.len() as u32)?;
            for (kind, index, at, value) in samples {
                w.u8(kind)?;
                w.i32(index)?;
                if Some((at, value)) == latest {
                    w.u8(0)?;
                } else {
                    w.u8(1)?;
                    w.i64(at)?;
                    w.u64(value)?;
                }
            }
            while next < posts.len() && posts[next].0 < p {
                next += 1;
            }
            let first = next;
            while next < posts.len() && posts[next].0 == p {
                next += 1;
            }
            w.u32((next - first) as u32)?;
            for &(_, slot) in &posts[first..next] {
                let (day, rec, big) = self.posts.raw(slot);
                w.i32(day)?;
                for word in rec.0 {
                    w.u64(word)?;
                }
                if let Some(c) = big {
                    for v in [c.reactions, c.comments, c.shares, c.views] {
                        w.u64(v)?;
                    }
                }
            }
            if flags & KEPT != 0 {
                self.write_kept_tops(&mut w, p)?;
            }
        }
        Ok(IncrementSize { pages: pages.len(), posts: posts.len() })
    }

    /// Takes in an increment written by [`take_increment`](Self::take_increment) of an
    /// engine that held what this one holds when that increment started.
    /// Damaged or hostile bytes fail with an error; the engine may then
    /// hold part of the increment and must be rebuilt.
    pub fn apply_increment(&mut self, bytes: &[u8]) -> Result<IncrementSize, DecodeError> {
        let mut r = Reader(bytes);
        if !(1..=INCREMENT_VERSION).contains(&r.u8()?) {
            return Err(DecodeError::Range("increment version"));
        }
        let watermark = r.sample()?.map(|(wm, _)| wm);
        let stored = read_windows(&mut r)?;
        if stored != self.limits.windows {
            let configured = self.limits.windows.describe_fully();
            return Err(DecodeError::Windows { stored: stored.describe_fully(), configured });
        }
        let guards = read_guards(&mut r)?;
        let gaps = read_gaps(&mut r)?;
        let mut ids = Vec::new();
        for _ in 0..bounded(r.u32()?, self.periods[0].ring.len(), "event id quarters")? {
            let q = Quarter::from_index(r.i32()?);
            for _ in 0..bounded(r.u32()?, self.limits.max_event_ids as usize, "event id count")? {
                ids.push((q, r.u64()?));
            }
        }
        if let Some(wm) = watermark {
            self.advance_watermark_freeing(wm, false);
        }
        self.guards = guards;
        self.gaps = gaps;
        for (q, key) in ids {
            self.event_ids.restore(q, key);
        }
        let mut platforms = Vec::new();
        for _ in 0..bounded(r.u32()?, self.limits.max_platforms as usize, "platform count")? {
            platforms.push(r.str(32, "platform")?);
        }
        // The pages the writer freed, where this engine holds them still.
        for _ in 0..bounded(r.u32()?, super::posts::MAX_PAGES as usize, "freed pages")? {
            let (p, platform, id) = (r.u32()?, r.str(32, "platform")?, r.str(128, "page id")?);
            if self.pages.is_live(p) && self.pages.lookup(&platform, &id) == Some(p) {
                self.free_page(p);
            }
        }
        let pages = bounded(r.u32()?, super::posts::MAX_PAGES as usize, "page count")?;
        let mut size = IncrementSize { pages, posts: 0 };
        for _ in 0..pages {
            let (p, flags, partition, split) = (r.u32()?, r.u8()?, r.u16()?, r.u8()?);
            if flags & IDENT != 0 {
                let platform = platforms.get(usize::from(r.u16()?)).ok_or(DecodeError::Range("page platform"))?;
                let id = r.str(128, "page id")?;
                if !self.pages.intern_at(p, platform, &id) {
                    return Err(DecodeError::Range("a page under another number, or past the limits"));
                }
            } else if !self.pages.is_live(p) {
                return Err(DecodeError::Range("an increment names a page this engine does not hold"));
            }
            if split > 1 {
                return Err(DecodeError::Range("split flag"));
            }
            self.pages.set_partition(p, partition, split == 1);
            let latest = if flags & FOLLOWERS != 0 {
                let s = super::Sample { at: r.i64()?, value: r.u64()? };
                self.pages.state_mut(p).followers.merge(s);
                Some(s)
            } else {
                None
            };
            if flags & NAME != 0 {
                let at = r.i64()?;
                self.pages.observe_name(p, at, &r.str(256, "page name")?);
            }
            if flags & (TOP | TOP_COUNTS) != 0 {
                let quarter = Quarter::from_index(r.i32()?);
                let n = bounded(r.u32()?, TOP_MAX, "top posts")?;
                if flags & TOP != 0 {
                    let mut posts = Vec::with_capacity(n);
                    for _ in 0..n {
                        let (hash, interactions) = (r.u64()?, r.u64()?);
                        posts.push(OwnedTopPost { hash, interactions, id: r.str(ID_MAX, "post id")? });
                    }
                    self.pages.restore_top(p, quarter, posts);
                } else {
                    let counts = (0..n).map(|_| Ok((r.u64()?, r.u64()?))).collect::<Result<Vec<_>, DecodeError>>()?;
                    if !self.pages.restore_top_counts(p, quarter, &counts) {
                        return Err(DecodeError::Range("a top list this engine does not hold"));
                    }
                }
            }
            for _ in 0..bounded(r.u32()?, self.periods.iter().map(|k| k.ring.len()).sum(), "period samples")? {
                let kind = *CalendarKind::ALL.get(usize::from(r.u8()?)).ok_or(DecodeError::Range("period kind"))?;
                let period = CalendarPeriod { kind, index: r.i32()? };
                let sample = match r.u8()? {
                    0 => latest.ok_or(DecodeError::Range("period sample"))?,
                    1 => super::Sample { at: r.i64()?, value: r.u64()? },
                    _ => return Err(DecodeError::Range("period sample flag")),
                };
                let k = self.periods.iter().position(|k| k.kind == kind).ok_or(DecodeError::Range("period kind"))?;
                if self.periods[k].keeps(period) {
                    self.slot_of(k, period, p).1.followers.merge(sample);
                }
            }
            let n = bounded(r.u32()?, self.limits.max_posts as usize, "post count")?;
            for _ in 0..n {
                let day = r.i32()?;
                let mut words = [0u64; 4];
                for w in &mut words {
                    *w = r.u64()?;
                }
                let rec = Rec(words);
                let big = if rec.is_big() {
                    Some(Counts { reactions: r.u64()?, comments: r.u64()?, shares: r.u64()?, views: r.u64()? })
                } else {
                    None
                };
                if rec.in_day() >= DAY_MS {
                    return Err(DecodeError::Range("post record"));
                }
                let post = super::Post { page: p, ..rec.unpack(Millis::from(day) * DAY_MS, big.as_ref()) };
                self.upsert(post)?;
            }
            size.posts += n;
            // After the posts: they make the slots the lists are kept in.
            if flags & KEPT != 0 {
                self.read_kept_tops(&mut r, p)?;
            }
        }
        Ok(size)
    }

    /// Makes the engine hold `post` as it is, adjusting the tables and
    /// edges by the difference from the record held, as an event would.
    fn upsert(&mut self, post: super::Post) -> Result<(), DecodeError> {
        let key = super::post_key(self.pages.key(post.page), post.hash);
        let at = self.periods_of(post.published);
        let quarter = at[0];
        if post.published < self.cutoff || !self.periods[0].keeps(quarter) {
            return Ok(());
        }
        match self.posts.find(key, post.page, post.hash) {
            Some((_, old)) if old == post => {}
            Some((_, old)) if old.published != post.published || old.kind != post.kind => {
                return Err(DecodeError::Range("post changed its publication or kind"));
            }
            Some((slot, old)) => {
                self.posts.update(slot, &post);
                self.count_changed(&old, &post, &at);
            }
            None => {
                if self.posts.len() >= self.limits.max_posts as usize {
                    return Err(DecodeError::Range("more posts than engine.max_posts"));
                }
                let pages = &self.pages;
                let slot = self
                    .posts
                    .insert(key, &post, |p| super::post_key(pages.key(p.page), p.hash))
                    .ok_or(DecodeError::Range("more posts than the post table holds"))?;
                self.count_added(&post, slot, &at);
            }
        }
        Ok(())
    }
}

impl Engine {
    /// Page `p`'s kept top lists of earlier quarters, each with its quarter.
    fn write_kept_tops(&self, w: &mut Writer<&mut Vec<u8>>, p: u32) -> io::Result<()> {
        let kept: Vec<_> = self.periods[0]
            .ring
            .iter()
            .flatten()
            .filter_map(|t| {
                let (i, _) = t.slot(p)?;
                let list = t.top(i);
                (!list.is_empty()).then(|| (Quarter::from_index(t.period.index), list))
            })
            .collect();
        w.u32(kept.len() as u32)?;
        for (q, list) in kept {
            super::persist::write_top(w, self.pages.list(q, list))?;
        }
        Ok(())
    }

    /// Reads what [`write_kept_tops`](Self::write_kept_tops) wrote, into the
    /// slots page `p` has in those quarters.
    fn read_kept_tops(&mut self, r: &mut Reader<&[u8]>, p: u32) -> Result<(), DecodeError> {
        for _ in 0..bounded(r.u32()?, self.periods[0].ring.len(), "kept top lists")? {
            let (quarter, posts) = super::persist::decode_top(r)?;
            let q = CalendarPeriod { kind: CalendarKind::Quarter, index: quarter.index() };
            // A quarter this engine no longer holds (or not yet: a base
            // keeps only the retained ones) has nothing to keep it in.
            let Some(slot) = self.periods[0].slot_index(q, p) else { continue };
            self.restore_kept_top(quarter, slot, posts)?;
        }
        Ok(())
    }
}

fn bounded(n: u32, max: usize, what: &'static str) -> Result<usize, DecodeError> {
    usize::try_from(n).ok().filter(|n| *n <= max).ok_or(DecodeError::Range(what))
}
