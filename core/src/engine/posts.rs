//! The per-post table: one 36-byte packed record per tracked post plus a
//! 4-byte slot in a hash index. This is the structure that grows with input,
//! so its layout is chosen for bytes per post (target ≤ 48, measured by the
//! `engine` bench with a counting allocator).
//!
//! A post is identified by its page (a dense page index) and a 52-bit hash of
//! its `post_id`. Two posts of the *same page* whose ids collide in 52 bits
//! would be merged; the chance is about n²/2^53 for a page with n posts
//! (≈ 1e-6 at 100,000 posts on one page).
//!
//! Record layout, 9 × u32 (bits, low to high):
//! - `a` (w0,w1): id hash 52 | page bits 0..12
//! - `b` (w2,w3): published 47 | page bits 12..23 | kind 1 | big 1 | seen-delta bits 0..4
//! - `c` (w4):    seen-delta bits 4..36 (observed − published, ms; < 795 days)
//! - w5..w8: reactions, comments, shares, views as u32; a post with any count
//!   above u32::MAX has `big` set and keeps its counts in a side map.

use std::io::{self, Read, Write};

use hashbrown::HashTable;

use crate::codec::{DecodeError, Reader, Writer};
use crate::event::{Counts, Tracking};
use crate::window::Millis;

/// Bits of the post-id hash kept per record.
pub const HASH_BITS: u32 = 52;
const HASH_MASK: u64 = (1 << HASH_BITS) - 1;
/// Pages are addressed with 23 bits; the all-ones value marks a free slot.
pub const MAX_PAGES: u32 = (1 << 23) - 1;
const FREE_PAGE: u32 = MAX_PAGES;
/// Largest observed − published distance a record holds: 2^36 ms ≈ 795 days,
/// more than the 8 quarters the longest allowed retention spans.
pub const MAX_SEEN_DELTA: Millis = (1 << 36) - 1;
const CHUNK: usize = 1 << 16;
const NONE: u32 = u32::MAX;

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

#[derive(Clone, Copy, Default)]
#[repr(C)]
struct Packed([u32; 9]);

impl Packed {
    fn a(&self) -> u64 {
        u64::from(self.0[0]) | u64::from(self.0[1]) << 32
    }
    fn b(&self) -> u64 {
        u64::from(self.0[2]) | u64::from(self.0[3]) << 32
    }
    fn page(&self) -> u32 {
        ((self.a() >> 52) | (self.b() >> 47 & 0x7ff) << 12) as u32
    }
    fn hash(&self) -> u64 {
        self.a() & HASH_MASK
    }
    fn is_big(&self) -> bool {
        self.b() >> 59 & 1 == 1
    }

    fn pack(p: &Post, big: bool) -> Packed {
        debug_assert!(p.page < FREE_PAGE && p.hash <= HASH_MASK);
        let seen = (p.observed - p.published).clamp(0, MAX_SEEN_DELTA) as u64;
        let page = u64::from(p.page);
        let a = p.hash | (page & 0xfff) << 52;
        let b = p.published as u64
            | (page >> 12) << 47
            | u64::from(p.kind == Tracking::Delta) << 58
            | u64::from(big) << 59
            | (seen & 0xf) << 60;
        let small = |n: u64| if big { 0 } else { n as u32 };
        Packed([
            a as u32,
            (a >> 32) as u32,
            b as u32,
            (b >> 32) as u32,
            (seen >> 4) as u32,
            small(p.counts.reactions),
            small(p.counts.comments),
            small(p.counts.shares),
            small(p.counts.views),
        ])
    }

    fn unpack(&self, big: Option<&Counts>) -> Post {
        let b = self.b();
        let published = (b & ((1 << 47) - 1)) as Millis;
        let seen = (b >> 60) as Millis | Millis::from(self.0[4]) << 4;
        let w = &self.0;
        Post {
            page: self.page(),
            hash: self.hash(),
            kind: if b >> 58 & 1 == 1 { Tracking::Delta } else { Tracking::Snapshot },
            published,
            observed: published + seen,
            counts: big.copied().unwrap_or(Counts {
                reactions: w[5].into(),
                comments: w[6].into(),
                shares: w[7].into(),
                views: w[8].into(),
            }),
        }
    }
}

fn needs_big(c: &Counts) -> bool {
    let max = u64::from(u32::MAX);
    c.reactions > max || c.comments > max || c.shares > max || c.views > max
}

/// Index hash of a (page, id hash) pair: a 64-bit finaliser so that the
/// high bits hashbrown uses for its control bytes vary too.
fn index_hash(page: u32, hash: u64) -> u64 {
    let mut x = hash ^ u64::from(page).rotate_right(12);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x
}

/// Where a post lives; valid until the post is removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot(u32);

/// The table of tracked posts.
#[derive(Default)]
pub struct PostTable {
    index: HashTable<u32>,
    chunks: Vec<Vec<Packed>>,
    free_head: Option<u32>,
    live: usize,
    big: std::collections::HashMap<u32, Counts>,
}

impl PostTable {
    pub fn len(&self) -> usize {
        self.live
    }

    fn at(&self, i: u32) -> &Packed {
        &self.chunks[i as usize / CHUNK][i as usize % CHUNK]
    }

    fn at_mut(&mut self, i: u32) -> &mut Packed {
        &mut self.chunks[i as usize / CHUNK][i as usize % CHUNK]
    }

    fn read(&self, i: u32) -> Post {
        let rec = self.at(i);
        rec.unpack(if rec.is_big() { self.big.get(&i) } else { None })
    }

    pub fn find(&self, page: u32, hash: u64) -> Option<(Slot, Post)> {
        let h = index_hash(page, hash);
        let i = *self.index.find(h, |&i| {
            let r = self.at(i);
            r.hash() == hash && r.page() == page
        })?;
        Some((Slot(i), self.read(i)))
    }

    /// Adds a post that [`find`](Self::find) did not return.
    pub fn insert(&mut self, post: &Post) -> Slot {
        let i = self.allocate();
        self.write(i, post);
        let Self { index, chunks, .. } = self;
        index.insert_unique(index_hash(post.page, post.hash), i, |&j| {
            let r = &chunks[j as usize / CHUNK][j as usize % CHUNK];
            index_hash(r.page(), r.hash())
        });
        self.live += 1;
        Slot(i)
    }

    /// Adds `post` unless a post with its page and hash exists, with one
    /// probe of the index (restoring a checkpoint inserts millions).
    fn insert_new(&mut self, post: &Post) -> bool {
        let i = self.allocate();
        self.write(i, post);
        let Self { index, chunks, .. } = self;
        let at = |j: u32| &chunks[j as usize / CHUNK][j as usize % CHUNK];
        let same = |&j: &u32| at(j).hash() == post.hash && at(j).page() == post.page;
        let hasher = |&j: &u32| index_hash(at(j).page(), at(j).hash());
        match index.entry(index_hash(post.page, post.hash), same, hasher) {
            hashbrown::hash_table::Entry::Occupied(_) => {
                self.remove_slot(i);
                false
            }
            hashbrown::hash_table::Entry::Vacant(v) => {
                v.insert(i);
                self.live += 1;
                true
            }
        }
    }

    /// Replaces the post in `slot`; its page and hash must not change.
    pub fn update(&mut self, slot: Slot, post: &Post) {
        debug_assert_eq!((self.at(slot.0).page(), self.at(slot.0).hash()), (post.page, post.hash));
        self.write(slot.0, post);
    }

    fn write(&mut self, i: u32, post: &Post) {
        let big = needs_big(&post.counts);
        *self.at_mut(i) = Packed::pack(post, big);
        if big {
            self.big.insert(i, post.counts);
        } else if !self.big.is_empty() {
            self.big.remove(&i);
        }
    }

    fn allocate(&mut self) -> u32 {
        if let Some(i) = self.free_head {
            let next = self.at(i).0[0];
            self.free_head = (next != NONE).then_some(next);
            return i;
        }
        if self.chunks.last().is_none_or(|c| c.len() == CHUNK) {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        let chunk = self.chunks.len() - 1;
        let last = &mut self.chunks[chunk];
        last.push(Packed::default());
        (chunk * CHUNK + last.len() - 1) as u32
    }

    /// Removes every post for which `expired` is true and returns them.
    pub fn remove_where(&mut self, mut expired: impl FnMut(&Post) -> bool) -> Vec<Post> {
        let mut removed = Vec::new();
        for i in 0..self.slots() {
            if self.at(i).page() == FREE_PAGE {
                continue;
            }
            let post = self.read(i);
            if expired(&post) {
                self.remove(i, &post);
                removed.push(post);
            }
        }
        removed
    }

    fn remove(&mut self, i: u32, post: &Post) {
        let h = index_hash(post.page, post.hash);
        if let Ok(entry) = self.index.find_entry(h, |&j| j == i) {
            entry.remove();
        }
        self.remove_slot(i);
        self.live -= 1;
    }

    /// Puts slot `i` on the free list (its index entry is already gone).
    fn remove_slot(&mut self, i: u32) {
        self.big.remove(&i);
        let mut free = Packed::default();
        free.0[0] = self.free_head.unwrap_or(NONE);
        free.0[3] = u32::MAX; // page bits all ones: a free slot
        free.0[1] = u32::MAX;
        *self.at_mut(i) = free;
        self.free_head = Some(i);
    }

    fn slots(&self) -> u32 {
        self.chunks.iter().map(Vec::len).sum::<usize>() as u32
    }

    /// Every live post, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = Post> + '_ {
        (0..self.slots()).filter(|&i| self.at(i).page() != FREE_PAGE).map(|i| self.read(i))
    }

    /// Heap bytes held, from capacities (the bench checks it against a
    /// counting allocator).
    pub fn heap_bytes(&self) -> usize {
        let records = self.chunks.iter().map(Vec::capacity).sum::<usize>() * size_of::<Packed>();
        let index = (self.index.capacity() * 8 / 7).next_power_of_two() * (size_of::<u32>() + 1);
        let big = self.big.capacity() * (size_of::<u32>() + size_of::<Counts>() + 1);
        records + index + big + self.chunks.capacity() * size_of::<Vec<Packed>>()
    }
}

impl PostTable {
    /// Writes every live post: the 36-byte record, then its 32 bytes of
    /// counts when they live in the side map.
    pub(super) fn encode<W: Write>(&self, w: &mut Writer<W>) -> io::Result<()> {
        w.len(self.live)?;
        let mut buf = [0u8; 36];
        for i in 0..self.slots() {
            let rec = self.at(i);
            if rec.page() == FREE_PAGE {
                continue;
            }
            for (chunk, word) in buf.chunks_exact_mut(4).zip(rec.0) {
                chunk.copy_from_slice(&word.to_le_bytes());
            }
            w.bytes(&buf)?;
            if rec.is_big() {
                let c = self.big.get(&i).copied().unwrap_or_default();
                for v in [c.reactions, c.comments, c.shares, c.views] {
                    w.u64(v)?;
                }
            }
        }
        Ok(())
    }

    /// Reads what [`encode`](Self::encode) wrote. `page_ok` says whether a
    /// page index refers to a restored page.
    /// Reads what [`encode`](Self::encode) wrote. `page_ok` says whether a
    /// page index refers to a restored page; posts `retained` refuses are
    /// skipped (they fell out of retention).
    pub(super) fn decode<R: Read>(
        r: &mut Reader<R>,
        max_posts: usize,
        page_ok: impl Fn(u32) -> bool,
        retained: impl Fn(&Post) -> bool,
    ) -> Result<PostTable, DecodeError> {
        let n = r.len(max_posts, "post count")?;
        let mut table = PostTable::default();
        table.index.reserve(n, |_| 0);
        let mut buf = [0u8; 36];
        for _ in 0..n {
            r.bytes(&mut buf)?;
            let mut words = [0u32; 9];
            for (word, chunk) in words.iter_mut().zip(buf.chunks_exact(4)) {
                *word = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            }
            let rec = Packed(words);
            let big = if rec.is_big() {
                Some(Counts { reactions: r.u64()?, comments: r.u64()?, shares: r.u64()?, views: r.u64()? })
            } else {
                None
            };
            let post = rec.unpack(big.as_ref());
            if !page_ok(post.page) {
                return Err(DecodeError::Range("post page"));
            }
            if retained(&post) && !table.insert_new(&post) {
                return Err(DecodeError::Range("post repeated"));
            }
        }
        Ok(table)
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

    #[test]
    fn record_is_36_bytes() {
        assert_eq!(size_of::<Packed>(), 36);
    }

    #[test]
    fn packing_round_trips_at_the_extremes() {
        let cases = [
            post(0, "a", 0, 0, 0),
            post(MAX_PAGES - 1, "b", (1 << 47) - 1 - MAX_SEEN_DELTA, (1 << 47) - 1, u32::MAX.into()),
            Post {
                kind: Tracking::Delta,
                ..post(4_000_000, "c", 1_752_487_200_123, 1_752_487_200_123 + MAX_SEEN_DELTA, 7)
            },
        ];
        for p in cases {
            assert_eq!(Packed::pack(&p, false).unpack(None), p);
        }
    }

    #[test]
    fn insert_find_update_remove() {
        let mut t = PostTable::default();
        let a = post(1, "a", 10, 20, 5);
        let b = post(2, "a", 10, 20, 6);
        let sa = t.insert(&a);
        t.insert(&b);
        assert_eq!(t.find(1, a.hash), Some((sa, a)));
        assert_eq!(t.find(2, a.hash).unwrap().1, b, "same id on another page is another post");
        let a2 = Post { observed: 30, counts: Counts { reactions: 9, ..a.counts }, ..a };
        t.update(sa, &a2);
        assert_eq!(t.find(1, a.hash).unwrap().1, a2);
        let removed = t.remove_where(|p| p.page == 1);
        assert_eq!((removed, t.len()), (vec![a2], 1));
        assert_eq!(t.find(1, a.hash), None);
        let c = post(3, "c", 1, 2, 3);
        let sc = t.insert(&c);
        assert_eq!(sc, sa, "freed slots are reused");
        assert_eq!(t.iter().collect::<Vec<_>>(), vec![c, b]);
    }

    #[test]
    fn counts_above_u32_live_in_the_side_map() {
        let mut t = PostTable::default();
        let mut p = post(1, "x", 0, 1, (1 << 53) - 1);
        p.counts.views = 1 << 40;
        let s = t.insert(&p);
        assert_eq!(t.find(1, p.hash).unwrap().1, p);
        let small = Post { counts: Counts::default(), ..p };
        t.update(s, &small);
        assert_eq!(t.find(1, p.hash).unwrap().1, small);
        assert!(t.big.is_empty());
    }

    #[test]
    fn many_posts_survive_index_growth() {
        let mut t = PostTable::default();
        for i in 0..200_000u32 {
            t.insert(&post(i % 1000, &i.to_string(), i.into(), i.into(), i.into()));
        }
        for i in (0..200_000u32).step_by(7) {
            let (_, p) = t.find(i % 1000, post_hash(&i.to_string())).unwrap();
            assert_eq!(p.counts.reactions, u64::from(i));
        }
    }
}
