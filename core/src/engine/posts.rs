//! The post table: one 32-byte record per tracked post, stored in chunks
//! that each belong to one publication day, and a 4-byte entry in an
//! [`Index`]. Grouping by publication day is what lets the rolling window
//! and retention work per day instead of scanning every post; the chunks
//! are shared copy-on-write, so a checkpoint snapshot is a list of pointers.
//!
//! A post is identified by its page (a dense page number) and a 52-bit hash
//! of its `post_id`. Two posts of the *same page* whose ids collide in 52
//! bits would be merged; the chance is about n²/2^53 for a page with n
//! posts (≈ 1e-6 at 100,000 posts on one page).
//!
//! Record, 4 × u64 (bits, low to high):
//! - `a`: id hash 52 | page bits 0..12
//! - `b`: page bits 12..23 | published within its day 27 | seen bits 0..24 | kind 1 | big 1
//! - `c`: seen bits 24..36 | reactions 28 | comments bits 0..24
//! - `d`: comments bits 24..28 | shares 28 | views 32
//!
//! "seen" is observed − published in ms (< 2^36 ms ≈ 795 days). A post with
//! reactions, comments or shares of 2^28 or more, or views of 2^32 or more,
//! has `big` set and keeps its counts in a side map.

use std::collections::{BTreeMap, HashMap};

use super::column::{CHUNK, Chunks, prefetch};
use super::index::Index;
use crate::event::{Counts, Tracking};
use crate::window::{DAY_MS, Millis};

/// Bits of the post-id hash kept per record.
pub const HASH_BITS: u32 = 52;
const HASH_MASK: u64 = (1 << HASH_BITS) - 1;
/// Pages are addressed with 23 bits.
pub const MAX_PAGES: u32 = (1 << 23) - 1;
/// Largest observed − published distance a record holds: 2^36 ms ≈ 795
/// days, more than the 8 quarters the longest allowed retention spans.
pub const MAX_SEEN_DELTA: Millis = (1 << 36) - 1;
/// Bits of a slot number (the index's id bits).
pub const SLOT_BITS: u32 = 27;
/// Most posts the table can hold: slot numbers also cover the unused tail
/// of each day's last chunk, hence the margin below 2^27.
pub const MAX_POSTS: u32 = 125_000_000;

const SMALL_COUNT: u64 = (1 << 28) - 1;

/// A post, unpacked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Post {
    pub page: u32,
    pub hash: u64,
    pub kind: Tracking,
    pub published: Millis,
    pub observed: Millis,
    pub counts: Counts,
}

/// The 52-bit hash that identifies a post within its page.
pub fn post_hash(post_id: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(post_id.as_bytes()) & HASH_MASK
}

/// The index key of a post: its page's key mixed with its hash.
pub fn post_key(page_key: u64, hash: u64) -> u64 {
    let mut x = page_key ^ hash.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^ (x >> 33)
}

#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub(super) struct Rec(pub(super) [u64; 4]);

impl Rec {
    fn page(&self) -> u32 {
        ((self.0[0] >> 52) | (self.0[1] & 0x7ff) << 12) as u32
    }

    pub(super) fn page_of(&self) -> u32 {
        self.page()
    }

    fn hash(&self) -> u64 {
        self.0[0] & HASH_MASK
    }

    pub(super) fn is_big(&self) -> bool {
        self.0[1] >> 63 == 1
    }

    pub(super) fn in_day(&self) -> Millis {
        (self.0[1] >> 11 & ((1 << 27) - 1)) as Millis
    }

    fn pack(p: &Post, day_start: Millis, big: bool) -> Rec {
        debug_assert!(p.page < MAX_PAGES && p.hash <= HASH_MASK);
        let seen = (p.observed - p.published).clamp(0, MAX_SEEN_DELTA) as u64;
        let in_day = (p.published - day_start) as u64;
        let page = u64::from(p.page);
        let small = |n: u64| if big { 0 } else { n };
        let (r, c, s, v) =
            (small(p.counts.reactions), small(p.counts.comments), small(p.counts.shares), small(p.counts.views));
        Rec([
            p.hash | (page & 0xfff) << 52,
            page >> 12
                | in_day << 11
                | (seen & 0xff_ffff) << 38
                | u64::from(p.kind == Tracking::Delta) << 62
                | u64::from(big) << 63,
            seen >> 24 | r << 12 | (c & 0xff_ffff) << 40,
            c >> 24 | s << 4 | v << 32,
        ])
    }

    pub(super) fn unpack(&self, day_start: Millis, big: Option<&Counts>) -> Post {
        let [_, b, c, d] = self.0;
        let published = day_start + self.in_day();
        let seen = (b >> 38 & 0xff_ffff | (c & 0xfff) << 24) as Millis;
        Post {
            page: self.page(),
            hash: self.hash(),
            kind: if b >> 62 & 1 == 1 { Tracking::Delta } else { Tracking::Snapshot },
            published,
            observed: published + seen,
            counts: big.copied().unwrap_or(Counts {
                reactions: c >> 12 & SMALL_COUNT,
                comments: c >> 40 | (d & 0xf) << 24,
                shares: d >> 4 & SMALL_COUNT,
                views: d >> 32,
            }),
        }
    }
}

fn needs_big(c: &Counts) -> bool {
    c.reactions > SMALL_COUNT || c.comments > SMALL_COUNT || c.shares > SMALL_COUNT || c.views > u64::from(u32::MAX)
}

/// One chunk of records; cloning keeps the full capacity.
#[derive(Debug)]
pub(super) struct Chunk(pub(super) Vec<Rec>);

impl super::column::Share for Chunk {
    fn make_mut(this: &mut std::sync::Arc<Chunk>) -> &mut Chunk {
        std::sync::Arc::make_mut(this)
    }
}

impl Clone for Chunk {
    fn clone(&self) -> Chunk {
        let mut v = Vec::with_capacity(CHUNK);
        v.extend_from_slice(&self.0);
        Chunk(v)
    }
}

/// The day a chunk belongs to, by chunk number.
pub(super) type Day = i32;

pub fn day_of(ms: Millis) -> Day {
    ms.div_euclid(DAY_MS) as Day
}

fn day_start(day: Day) -> Millis {
    Millis::from(day) * DAY_MS
}

/// Where post records live: chunks by publication day. Shared with
/// snapshots chunk by chunk.
#[derive(Debug, Clone, Default)]
pub(super) struct Arena {
    pub(super) chunks: Chunks<Chunk>,
    pub(super) day_of_chunk: Vec<Day>,
    /// Chunk numbers of each day, in allocation order (the last one is the
    /// one being filled).
    pub(super) days: BTreeMap<Day, Vec<u32>>,
    /// Each day's chunk being filled: the per-insert lookup, kept out of
    /// the ordered map.
    open: HashMap<Day, u32>,
    free: Vec<u32>,
}

impl Arena {
    fn rec(&self, slot: u32) -> &Rec {
        &self.chunks.get(slot as usize / CHUNK).expect("slot in a live chunk").0[slot as usize % CHUNK]
    }

    fn rec_mut(&mut self, slot: u32) -> &mut Rec {
        &mut self.chunks.get_mut(slot as usize / CHUNK).expect("slot in a live chunk").0[slot as usize % CHUNK]
    }

    fn day_start_of(&self, slot: u32) -> Millis {
        day_start(self.day_of_chunk[slot as usize / CHUNK])
    }

    /// A fresh slot in `day`, or `None` past `max_slot`.
    fn allocate(&mut self, day: Day, max_slot: u32) -> Option<u32> {
        if let Some(&c) = self.open.get(&day) {
            if let Some(chunk) = self.chunks.get_mut(c as usize).filter(|ch| ch.0.len() < CHUNK) {
                chunk.0.push(Rec::default());
                return Some(c * CHUNK as u32 + chunk.0.len() as u32 - 1);
            }
        }
        let c = match self.free.pop() {
            Some(c) => c,
            None => {
                let c = self.chunks.len() as u32;
                if (c as usize + 1) * CHUNK > max_slot as usize + 1 {
                    return None;
                }
                self.chunks.push(None);
                self.day_of_chunk.push(0);
                c
            }
        };
        let mut records = Vec::with_capacity(CHUNK);
        records.push(Rec::default());
        self.chunks.set(c as usize, Some(std::sync::Arc::new(Chunk(records))));
        self.day_of_chunk[c as usize] = day;
        self.days.entry(day).or_default().push(c);
        self.open.insert(day, c);
        Some(c * CHUNK as u32)
    }

    /// Slots of one day with their records.
    pub(super) fn day(&self, day: Day) -> impl Iterator<Item = (u32, &Rec)> {
        let chunks = self.days.get(&day).map(Vec::as_slice).unwrap_or_default();
        chunks.iter().flat_map(move |&c| {
            let recs = self.chunks.get(c as usize).map(|ch| ch.0.as_slice()).unwrap_or_default();
            recs.iter().enumerate().map(move |(i, r)| (c * CHUNK as u32 + i as u32, r))
        })
    }
}

fn read(arena: &Arena, big: &HashMap<u32, Counts>, slot: u32) -> Post {
    let rec = arena.rec(slot);
    let counts = if rec.is_big() { big.get(&slot) } else { None };
    rec.unpack(arena.day_start_of(slot), counts)
}

/// The table of tracked posts.
#[derive(Debug, Clone)]
pub struct PostTable {
    index: Index,
    pub(super) arena: Arena,
    pub(super) big: HashMap<u32, Counts>,
    live: usize,
}

impl Default for PostTable {
    fn default() -> PostTable {
        PostTable { index: Index::new(SLOT_BITS), arena: Arena::default(), big: HashMap::new(), live: 0 }
    }
}

impl PostTable {
    pub fn len(&self) -> usize {
        self.live
    }

    fn read(&self, slot: u32) -> Post {
        read(&self.arena, &self.big, slot)
    }

    /// Hints the CPU to load the index bucket of `key`.
    #[inline]
    pub fn prefetch_bucket(&self, key: u64) {
        self.index.prefetch(key);
    }

    /// Hints the CPU to load the record in `slot`.
    #[inline]
    pub fn prefetch_slot(&self, slot: u32) {
        if let Some(rec) = self.arena.chunks.get(slot as usize / CHUNK).and_then(|c| c.0.get(slot as usize % CHUNK)) {
            prefetch(rec);
        }
    }

    /// Hints the CPU to load the record `key` probably refers to.
    #[inline]
    pub fn prefetch_record(&self, key: u64) {
        if let Some(slot) = self.index.guess(key) {
            self.prefetch_slot(slot);
        }
    }

    pub fn find(&self, key: u64, page: u32, hash: u64) -> Option<(u32, Post)> {
        let arena = &self.arena;
        let slot = self.index.find(key, |s| {
            let r = arena.rec(s);
            r.hash() == hash && r.page() == page
        })?;
        Some((slot, self.read(slot)))
    }

    /// Adds a post that [`find`](Self::find) did not return; `None` when no
    /// slot number is left. `key_of` gives the key of a stored slot.
    pub fn insert(&mut self, key: u64, post: &Post, key_of: impl Fn(&Post) -> u64) -> Option<u32> {
        let slot = self.arena.allocate(day_of(post.published), self.index.max_id())?;
        self.write(slot, post);
        let Self { index, arena, big, .. } = self;
        let prefetch = |s: u32| {
            if let Some(rec) = arena.chunks.get(s as usize / CHUNK).and_then(|c| c.0.get(s as usize % CHUNK)) {
                prefetch(rec);
            }
        };
        index.insert_prefetching(key, slot, |s| key_of(&read(arena, big, s)), prefetch);
        self.live += 1;
        Some(slot)
    }

    /// Adds a record read from a checkpoint to `day`, without indexing it
    /// ([`index_all`](Self::index_all) does, once every record is in).
    pub(super) fn restore(&mut self, day: Day, rec: Rec, big: Option<Counts>) -> Option<u32> {
        if rec.in_day() >= DAY_MS || rec.is_big() != big.is_some() {
            return None;
        }
        let slot = self.arena.allocate(day, self.index.max_id())?;
        *self.arena.rec_mut(slot) = rec;
        if let Some(counts) = big {
            self.big.insert(slot, counts);
        }
        self.live += 1;
        Some(slot)
    }

    /// Indexes every record, sizing the index once for all of them.
    pub(super) fn index_all(&mut self, key_of: impl Fn(&Post) -> u64) -> Result<(), &'static str> {
        /// Posts between prefetching a key's bucket and inserting it: the
        /// index is far larger than the caches, and one miss at a time
        /// was most of a restore.
        const AHEAD: usize = 16;
        let Self { index, arena, big, .. } = self;
        index.reserve(self.live, |s| key_of(&read(arena, big, s)));
        let mut pending: std::collections::VecDeque<(u32, Rec, u64)> = std::collections::VecDeque::with_capacity(AHEAD);
        let insert = |index: &mut Index, (slot, rec, key): (u32, Rec, u64)| {
            let same = |s: u32| arena.rec(s).hash() == rec.hash() && arena.rec(s).page() == rec.page();
            if index.find(key, same).is_some() {
                return Err("post repeated");
            }
            index.insert(key, slot, |s| key_of(&read(arena, big, s)));
            Ok(())
        };
        for day in arena.days.keys() {
            for (slot, rec) in arena.day(*day) {
                let key = key_of(&read(arena, big, slot));
                index.prefetch(key);
                pending.push_back((slot, *rec, key));
                if pending.len() > AHEAD {
                    let next = pending.pop_front().expect("more than AHEAD pending");
                    insert(index, next)?;
                }
            }
        }
        pending.into_iter().try_for_each(|next| insert(index, next))
    }

    /// Replaces the post in `slot`; its page, hash and day must not change.
    pub fn update(&mut self, slot: u32, post: &Post) {
        self.write(slot, post);
    }

    fn write(&mut self, slot: u32, post: &Post) {
        let big = needs_big(&post.counts);
        let start = self.arena.day_start_of(slot);
        *self.arena.rec_mut(slot) = Rec::pack(post, start, big);
        if big {
            self.big.insert(slot, post.counts);
        } else if !self.big.is_empty() {
            self.big.remove(&slot);
        }
    }

    /// The page of the post in `slot`, if a post lives there.
    pub(super) fn live_page(&self, slot: u32) -> Option<u32> {
        let chunk = self.arena.chunks.get(slot as usize / CHUNK)?;
        Some(chunk.0.get(slot as usize % CHUNK)?.page())
    }

    /// The day, record and large counts of the post in `slot` (live).
    pub(super) fn raw(&self, slot: u32) -> (Day, Rec, Option<Counts>) {
        let rec = *self.arena.rec(slot);
        let big = if rec.is_big() { self.big.get(&slot).copied() } else { None };
        (self.arena.day_of_chunk[slot as usize / CHUNK], rec, big)
    }

    /// The posts published on `day`, with their slots.
    pub fn day(&self, day: Day) -> impl Iterator<Item = (u32, Post)> + '_ {
        let start = day_start(day);
        self.arena.day(day).map(move |(slot, rec)| {
            let big = if rec.is_big() { self.big.get(&slot) } else { None };
            (slot, rec.unpack(start, big))
        })
    }

    pub fn has_day(&self, day: Day) -> bool {
        self.arena.days.contains_key(&day)
    }

    /// The first day after `day` that holds posts.
    pub fn next_day_after(&self, day: Day) -> Option<Day> {
        self.arena.days.range(day + 1..).next().map(|(d, _)| *d)
    }

    /// The counts of the post in `slot`.
    pub fn counts(&self, slot: u32) -> Counts {
        self.read(slot).counts
    }

    /// The first day that holds posts.
    pub fn first_day(&self) -> Option<Day> {
        self.arena.days.keys().next().copied()
    }

    /// Removes every post of `day`; `key_of` gives each one's index key.
    pub fn remove_day(&mut self, day: Day, key_of: impl Fn(&Post) -> u64) {
        let posts: Vec<(u32, Post)> = self.day(day).collect();
        for (slot, post) in &posts {
            self.index.remove(key_of(post), *slot);
            self.big.remove(slot);
        }
        self.live -= posts.len();
        self.arena.open.remove(&day);
        for c in self.arena.days.remove(&day).unwrap_or_default() {
            self.arena.chunks.set(c as usize, None);
            self.arena.free.push(c);
        }
    }

    /// Every live post, by day.
    pub fn iter(&self) -> impl Iterator<Item = Post> + '_ {
        self.arena.days.keys().flat_map(move |d| self.day(*d).map(|(_, p)| p))
    }

    /// Heap bytes held, from capacities.
    pub fn heap_bytes(&self) -> usize {
        let chunks = self.arena.chunks.iter().flatten().count() * CHUNK * size_of::<Rec>();
        let big = self.big.capacity() * (size_of::<u32>() + size_of::<Counts>() + 1);
        chunks + big + self.index.heap_bytes() + self.arena.chunks.capacity() * 12
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(page: u32, id: &str, published: Millis, observed: Millis, r: u64) -> Post {
        Post {
            page,
            hash: post_hash(id),
            kind: Tracking::Snapshot,
            published,
            observed,
            counts: Counts { reactions: r, comments: 2, shares: 3, views: 4 },
        }
    }

    fn key(p: &Post) -> u64 {
        post_key(u64::from(p.page), p.hash)
    }

    #[test]
    fn record_is_32_bytes() {
        assert_eq!(size_of::<Rec>(), 32);
    }

    #[test]
    fn packing_round_trips_at_the_extremes() {
        let day = 20_000 * DAY_MS;
        let cases = [
            post(0, "a", day, day, 0),
            post(MAX_PAGES - 1, "b", day + DAY_MS - 1, day + DAY_MS - 1 + MAX_SEEN_DELTA, SMALL_COUNT),
            Post {
                kind: Tracking::Delta,
                counts: Counts { reactions: 1, comments: SMALL_COUNT, shares: SMALL_COUNT, views: u64::from(u32::MAX) },
                ..post(4_000_000, "c", day + 123, day + 456, 7)
            },
        ];
        for p in cases {
            assert_eq!(Rec::pack(&p, day, false).unpack(day, None), p);
        }
    }

    #[test]
    fn insert_find_update_by_day_and_remove_a_day() {
        let mut t = PostTable::default();
        let (d1, d2) = (20_000 * DAY_MS, 20_001 * DAY_MS);
        let a = post(1, "a", d1 + 5, d1 + 10, 5);
        let b = post(2, "a", d2 + 5, d2 + 10, 6);
        let sa = t.insert(key(&a), &a, key).unwrap();
        t.insert(key(&b), &b, key).unwrap();
        assert_eq!(t.find(key(&a), 1, a.hash), Some((sa, a)));
        assert_eq!(t.find(key(&b), 2, a.hash).unwrap().1, b, "same id on another page is another post");
        let a2 = Post { observed: d1 + 30, counts: Counts { reactions: 9, ..a.counts }, ..a };
        t.update(sa, &a2);
        assert_eq!(t.find(key(&a), 1, a.hash).unwrap().1, a2);
        assert_eq!(t.day(day_of(d1)).map(|(_, p)| p).collect::<Vec<_>>(), vec![a2]);
        assert_eq!((t.first_day(), t.next_day_after(day_of(d1))), (Some(day_of(d1)), Some(day_of(d2))));
        t.remove_day(day_of(d1), key);
        assert_eq!((t.len(), t.find(key(&a), 1, a.hash)), (1, None));
        assert_eq!(t.iter().collect::<Vec<_>>(), vec![b]);
    }

    #[test]
    fn counts_above_the_packed_width_live_in_the_side_map() {
        let mut t = PostTable::default();
        let day = 20_000 * DAY_MS;
        let mut p = post(1, "x", day, day + 1, (1 << 53) - 1);
        p.counts.views = 1 << 40;
        let s = t.insert(key(&p), &p, key).unwrap();
        assert_eq!(t.find(key(&p), 1, p.hash).unwrap().1, p);
        let small = Post { counts: Counts::default(), ..p };
        t.update(s, &small);
        assert_eq!(t.find(key(&p), 1, p.hash).unwrap().1, small);
        assert!(t.big.is_empty());
    }

    #[test]
    fn restored_records_are_all_indexed_and_a_repeat_is_refused() {
        let day = 20_000 * DAY_MS;
        let posts: Vec<Post> = (0..5_000u32).map(|i| post(i % 97, &i.to_string(), day, day + 1, i.into())).collect();
        let restored = |order: &[usize]| {
            let mut t = PostTable::default();
            for &i in order {
                let p = &posts[i];
                t.restore(day_of(day), Rec::pack(p, day, false), None).expect("room");
            }
            t.index_all(key).map(|()| t)
        };
        let t = restored(&(0..posts.len()).collect::<Vec<_>>()).expect("no repeat");
        for p in &posts {
            assert_eq!(t.find(key(p), p.page, p.hash).map(|(_, q)| q).as_ref(), Some(p));
        }
        // A repeat is found whether it follows the first at once, within
        // the prefetch distance, or far after it.
        for gap in [1, 5, 16, 17, 4_000] {
            let mut order: Vec<usize> = (0..posts.len()).collect();
            order.insert(100 + gap, 100);
            assert_eq!(restored(&order).err(), Some("post repeated"), "{gap} apart");
        }
    }

    #[test]
    fn many_posts_survive_index_growth() {
        let mut t = PostTable::default();
        let day = 20_000 * DAY_MS;
        for i in 0..200_000u32 {
            let p =
                post(i % 1000, &i.to_string(), day + Millis::from(i % 50) * DAY_MS, day + 10 * DAY_MS * 10, i.into());
            t.insert(key(&p), &p, key).unwrap();
        }
        for i in (0..200_000u32).step_by(7) {
            let hash = post_hash(&i.to_string());
            let (_, p) = t.find(post_key(u64::from(i % 1000), hash), i % 1000, hash).unwrap();
            assert_eq!(p.counts.reactions, u64::from(i));
        }
    }
}
