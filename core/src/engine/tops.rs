//! Pages' top lists, in blocks of a few sizes rather than one allocation
//! each.
//!
//! A list lives in a block of its size class: capacities 1, 2, 4, ... below
//! the configured maximum, then the maximum. A list that outgrows its block
//! moves to a block of the next class, and the block it leaves goes on its
//! class's free list for the next list that grows into that size. So a
//! list costs at most twice its entries, and once the free lists hold
//! blocks, growing a list allocates nothing: the steady state reuses what
//! other lists left behind.
//!
//! Each class's blocks are runs of entries in one [`Column`], laid out so
//! that no block straddles a chunk; snapshots share them chunk by chunk
//! like every other column.
//!
//! Bound: blocks are never returned to the allocator, so a class holds as
//! many blocks as the most lists of its size at one time (at most one list
//! per page at any time, plus the free blocks those lists left).

use compact_str::CompactString;

use super::column::{CHUNK, Column};
use crate::window::Quarter;

/// The most entries a list can have, whatever the configuration.
pub const TOP_MAX: usize = 100;

/// A post in a page's top list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopPost {
    pub hash: u64,
    pub interactions: u64,
    pub id: CompactString,
}

/// The top posts of one quarter (the latest one a post was noted for).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopList<'a> {
    pub quarter: Quarter,
    pub posts: &'a [TopPost],
}

/// Where a page's list is: the first `len` entries of block `block` of
/// class `class`. A `len` of 0 is no list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TopRef {
    block: u32,
    class: u8,
    len: u8,
}

impl TopRef {
    pub fn len(self) -> usize {
        usize::from(self.len)
    }

    pub fn is_empty(self) -> bool {
        self.len == 0
    }
}

/// The blocks of every class: what snapshots share.
#[derive(Debug, Clone, Default)]
pub struct TopBlocks {
    /// Per class: its block capacity and its entries.
    classes: Vec<(usize, Column<TopPost>)>,
}

/// Where block `block` of capacity `cap` starts in its column: blocks are
/// packed `CHUNK / cap` to a chunk, so none straddles two.
fn start(cap: usize, block: u32) -> usize {
    let per = CHUNK / cap;
    (block as usize / per) * CHUNK + (block as usize % per) * cap
}

impl TopBlocks {
    /// The entries of list `r`.
    pub fn get(&self, r: TopRef) -> &[TopPost] {
        if r.is_empty() {
            return &[];
        }
        let (cap, column) = &self.classes[usize::from(r.class)];
        column.run(start(*cap, r.block), r.len())
    }

    /// The entries of list `r`, their chunk copied first if a snapshot
    /// shares it.
    fn get_mut(&mut self, r: TopRef) -> &mut [TopPost] {
        if r.is_empty() {
            return &mut [];
        }
        let (cap, column) = &mut self.classes[usize::from(r.class)];
        column.run_mut(start(*cap, r.block), r.len())
    }

    fn heap_bytes(&self) -> usize {
        self.classes.iter().map(|(_, c)| c.heap_bytes()).sum()
    }
}

/// The blocks and, per class, the free ones and how many there are.
#[derive(Debug, Clone)]
pub struct TopSlab {
    blocks: TopBlocks,
    free: Vec<Vec<u32>>,
    count: Vec<u32>,
}

impl TopSlab {
    /// Blocks for lists of at most `max` entries (at most [`TOP_MAX`]).
    pub fn new(max: usize) -> TopSlab {
        let max = max.min(TOP_MAX);
        let mut caps = Vec::new();
        let mut cap = 1;
        while cap < max {
            caps.push(cap);
            cap *= 2;
        }
        if max > 0 {
            caps.push(max);
        }
        TopSlab {
            free: caps.iter().map(|_| Vec::new()).collect(),
            count: caps.iter().map(|_| 0).collect(),
            blocks: TopBlocks { classes: caps.into_iter().map(|c| (c, Column::default())).collect() },
        }
    }

    /// The most entries a list can hold.
    pub fn max(&self) -> usize {
        self.blocks.classes.last().map_or(0, |(cap, _)| *cap)
    }

    pub fn blocks(&self) -> &TopBlocks {
        &self.blocks
    }

    pub fn get(&self, r: TopRef) -> &[TopPost] {
        self.blocks.get(r)
    }

    pub fn get_mut(&mut self, r: TopRef) -> &mut [TopPost] {
        self.blocks.get_mut(r)
    }

    /// A block of class `class`: a free one, or a new one at the end.
    fn block(&mut self, class: usize) -> u32 {
        if let Some(b) = self.free[class].pop() {
            return b;
        }
        let b = self.count[class];
        self.count[class] += 1;
        let (cap, column) = &mut self.blocks.classes[class];
        let end = start(*cap, b) + *cap;
        column.resize(end, TopPost::default());
        b
    }

    /// A new list of `posts`; the ones past [`max`](Self::max) are left out.
    pub fn create(&mut self, posts: impl IntoIterator<Item = TopPost>) -> TopRef {
        let mut r = TopRef::default();
        for post in posts.into_iter().take(self.max()) {
            r = self.push(r, post);
        }
        r
    }

    /// Appends `post` to list `r` (shorter than [`max`](Self::max)), moving
    /// the list to a block of the next class when its block is full.
    pub fn push(&mut self, r: TopRef, post: TopPost) -> TopRef {
        debug_assert!(r.len() < self.max());
        if r.is_empty() {
            let block = self.block(0);
            let list = TopRef { block, class: 0, len: 1 };
            self.blocks.get_mut(list)[0] = post;
            return list;
        }
        let class = usize::from(r.class);
        if r.len() < self.blocks.classes[class].0 {
            let list = TopRef { len: r.len + 1, ..r };
            self.blocks.get_mut(list)[r.len()] = post;
            return list;
        }
        let block = self.block(class + 1);
        let list = TopRef { block, class: r.class + 1, len: r.len + 1 };
        for i in 0..r.len() {
            let moved = std::mem::take(&mut self.blocks.get_mut(r)[i]);
            self.blocks.get_mut(list)[i] = moved;
        }
        self.blocks.get_mut(list)[r.len()] = post;
        self.free[class].push(r.block);
        list
    }

    /// Frees list `r`'s block (and its entries' heap).
    pub fn release(&mut self, r: TopRef) {
        if r.is_empty() {
            return;
        }
        for post in self.blocks.get_mut(r) {
            *post = TopPost::default();
        }
        self.free[usize::from(r.class)].push(r.block);
    }

    /// Heap bytes of the blocks and free lists (not the ids' own heap).
    pub fn heap_bytes(&self) -> usize {
        self.blocks.heap_bytes() + self.free.iter().map(|f| f.capacity() * 4).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(n: u64) -> TopPost {
        TopPost { hash: n, interactions: n * 10, id: CompactString::new(format!("post-{n}")) }
    }

    fn hashes(slab: &TopSlab, r: TopRef) -> Vec<u64> {
        slab.get(r).iter().map(|p| p.hash).collect()
    }

    #[test]
    fn classes_double_up_to_the_maximum() {
        let caps = |max| TopSlab::new(max).blocks.classes.iter().map(|(c, _)| *c).collect::<Vec<_>>();
        assert_eq!(caps(10), [1, 2, 4, 8, 10]);
        assert_eq!(caps(8), [1, 2, 4, 8]);
        assert_eq!(caps(1), [1]);
        assert_eq!(caps(0), Vec::<usize>::new());
        assert_eq!(caps(1000).last(), Some(&TOP_MAX));
    }

    #[test]
    fn blocks_never_straddle_a_chunk() {
        for cap in [1, 3, 10, 100] {
            for b in 0..5000u32 {
                let s = start(cap, b);
                assert_eq!(s / CHUNK, (s + cap - 1) / CHUNK, "cap {cap} block {b}");
                if b > 0 {
                    assert!(s >= start(cap, b - 1) + cap, "blocks do not overlap");
                }
            }
        }
    }

    #[test]
    fn a_growing_list_keeps_its_entries_and_frees_what_it_leaves() {
        let mut slab = TopSlab::new(10);
        let mut r = TopRef::default();
        for n in 0..10 {
            r = slab.push(r, post(n));
            assert_eq!(hashes(&slab, r), (0..=n).collect::<Vec<_>>());
        }
        assert_eq!(usize::from(r.class), 4, "a full list is in the largest class");
        assert_eq!(slab.free.iter().map(Vec::len).collect::<Vec<_>>(), [1, 1, 1, 1, 0]);
        assert!(slab.blocks.classes[0].1.get(0).id.is_empty(), "moved entries leave nothing behind");
        // A second list grows into the blocks the first one left.
        let mut other = TopRef::default();
        for n in 0..9 {
            other = slab.push(other, post(100 + n));
        }
        assert_eq!(slab.count, [1, 1, 1, 1, 2], "a new block only in the largest class");
        assert_eq!(hashes(&slab, other), (100..109).collect::<Vec<_>>());
        assert_eq!(hashes(&slab, r), (0..10).collect::<Vec<_>>(), "the first list is untouched");
        slab.release(r);
        assert_eq!(slab.free[4], [0]);
        assert!(slab.get(TopRef::default()).is_empty());
    }

    #[test]
    fn a_snapshot_keeps_the_lists_it_was_taken_with() {
        let mut slab = TopSlab::new(4);
        let mut lists: Vec<TopRef> = (0..600).map(|n| slab.create([post(n)])).collect();
        let snapshot = slab.blocks().clone();
        let before = lists.clone();
        for (i, r) in lists.iter_mut().enumerate() {
            *r = slab.push(*r, post(1000 + i as u64));
            slab.get_mut(*r)[0].interactions = 1;
        }
        for (i, r) in before.iter().enumerate() {
            let posts = snapshot.get(*r);
            assert_eq!((posts.len(), posts[0].hash, posts[0].interactions), (1, i as u64, i as u64 * 10));
        }
        assert_eq!(
            slab.get(lists[7]).iter().map(|p| (p.hash, p.interactions)).collect::<Vec<_>>(),
            [(7, 1), (1007, 10070)]
        );
    }

    #[test]
    fn create_keeps_at_most_the_maximum() {
        let mut slab = TopSlab::new(3);
        let r = slab.create((0..7).map(post));
        assert_eq!(hashes(&slab, r), [0, 1, 2]);
        assert!(TopSlab::new(0).create([post(1)]).is_empty());
    }
}
