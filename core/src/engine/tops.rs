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
//! An entry is 40 bytes: hash, interactions and 24 bytes of id. Ids of up
//! to 23 bytes are stored there; longer ones (Facebook's `pageid_postid`
//! is 33 bytes) go to blocks of 8-byte units the same way (a class for
//! each count from 3 to 16 units, the 128 bytes an id may have), so that
//! they cost no allocation of their own either.
//!
//! Each class's blocks are runs in one [`Column`], laid out so that no
//! block straddles a chunk; snapshots share them chunk by chunk like every
//! other column, and the only allocations are the columns' new chunks.
//!
//! Bound: blocks are never returned to the allocator, so a class holds as
//! many blocks as the most lists (or ids) of its size at one time — at
//! most one list per page, of at most `top_posts` ids — plus the free
//! blocks they left.

use super::column::{CHUNK, Column};
use crate::window::Quarter;

/// The most entries a list can have, whatever the configuration.
pub const TOP_MAX: usize = 100;
/// The longest post id a list stores, in bytes (the decoder's bound).
pub const ID_MAX: usize = 128;

/// Where a run is: the first `len` items of the block of class `class`
/// that starts at item `offset` of chunk `chunk` of the class's column
/// (no division to find it). A `len` of 0 is nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Run {
    chunk: u32,
    offset: u16,
    class: u8,
    len: u8,
}

impl Run {
    fn start(self) -> usize {
        self.chunk as usize * CHUNK + usize::from(self.offset)
    }
}

impl Run {
    pub fn len(self) -> usize {
        usize::from(self.len)
    }

    pub fn is_empty(self) -> bool {
        self.len == 0
    }
}

/// Where a page's top list is.
pub type TopRef = Run;

/// An entry of a top list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TopEntry {
    pub hash: u64,
    pub interactions: u64,
    id: IdCell,
}

/// Ids this long at most are stored in the entry.
const INLINE: usize = 23;

/// A post id: byte 0 is its length; up to [`INLINE`] bytes follow it,
/// or else the run of units that holds it (block, class, units).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct IdCell([u8; 24]);

impl IdCell {
    fn len(&self) -> usize {
        usize::from(self.0[0])
    }

    fn inline(id: &[u8]) -> IdCell {
        let mut cell = [0; 24];
        cell[0] = id.len() as u8;
        cell[1..=id.len()].copy_from_slice(id);
        IdCell(cell)
    }

    fn in_blocks(len: usize, run: Run) -> IdCell {
        let mut cell = [0; 24];
        cell[0] = len as u8;
        cell[1..5].copy_from_slice(&run.chunk.to_le_bytes());
        cell[5..7].copy_from_slice(&run.offset.to_le_bytes());
        (cell[7], cell[8]) = (run.class, run.len);
        IdCell(cell)
    }

    /// The run holding a long id; empty for an id stored inline.
    fn run(&self) -> Run {
        if self.len() <= INLINE {
            return Run::default();
        }
        let c = &self.0;
        Run {
            chunk: u32::from_le_bytes([c[1], c[2], c[3], c[4]]),
            offset: u16::from_le_bytes([c[5], c[6]]),
            class: c[7],
            len: c[8],
        }
    }

    fn bytes<'a>(&'a self, ids: &'a Blocks<Unit>) -> &'a [u8] {
        let len = self.len();
        if len <= INLINE { &self.0[1..=len] } else { &ids.get(self.run()).as_flattened()[..len] }
    }
}

/// A post of a top list, as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopPost<'a> {
    pub hash: u64,
    pub interactions: u64,
    pub id: &'a str,
}

/// A post of a top list, owned (read from a checkpoint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedTopPost {
    pub hash: u64,
    pub interactions: u64,
    pub id: String,
}

type Unit = [u8; 8];

/// The blocks of every class of one kind of item: what snapshots share.
#[derive(Debug, Clone, Default)]
pub struct Blocks<T> {
    /// Per class: its block capacity and its items.
    classes: Vec<(usize, Column<T>)>,
}

/// Where block `block` of capacity `cap` starts in its column: blocks are
/// packed `CHUNK / cap` to a chunk, so none straddles two.
fn start(cap: usize, block: u32) -> usize {
    let per = CHUNK / cap;
    (block as usize / per) * CHUNK + (block as usize % per) * cap
}

impl<T: Clone + Default> Blocks<T> {
    /// The items of run `r`.
    #[inline]
    pub fn get(&self, r: Run) -> &[T] {
        if r.is_empty() {
            return &[];
        }
        self.classes[usize::from(r.class)].1.run(r.start(), r.len())
    }

    /// The items of run `r`, their chunk copied first if a snapshot shares
    /// it.
    #[inline]
    fn get_mut(&mut self, r: Run) -> &mut [T] {
        if r.is_empty() {
            return &mut [];
        }
        self.classes[usize::from(r.class)].1.run_mut(r.start(), r.len())
    }

    fn heap_bytes(&self) -> usize {
        self.classes.iter().map(|(_, c)| c.heap_bytes()).sum()
    }
}

impl<T: Clone + Copy + Default> Blocks<T> {
    /// No blocks yet, of classes 1, 2, 4, ... below `max`, then `max`.
    fn doubling(max: usize) -> Blocks<T> {
        let mut caps = Vec::new();
        let mut cap = 1;
        while cap < max {
            caps.push(cap);
            cap *= 2;
        }
        if max > 0 {
            caps.push(max);
        }
        Blocks::with_classes(caps)
    }

    fn with_classes(caps: Vec<usize>) -> Blocks<T> {
        Blocks { classes: caps.into_iter().map(|c| (c, Column::default())).collect() }
    }

    fn max(&self) -> usize {
        self.classes.last().map_or(0, |(cap, _)| *cap)
    }
}

/// Per class of some [`Blocks`], the free blocks (chunk, offset) and how
/// many blocks there are.
#[derive(Debug, Clone, Default)]
struct FreeLists {
    free: Vec<Vec<(u32, u16)>>,
    count: Vec<u32>,
}

impl FreeLists {
    fn new<T>(blocks: &Blocks<T>) -> FreeLists {
        FreeLists { free: blocks.classes.iter().map(|_| Vec::new()).collect(), count: vec![0; blocks.classes.len()] }
    }

    /// A block of class `class` (a free one, or a new one at the end), as
    /// an empty run.
    fn block<T: Clone + Default>(&mut self, blocks: &mut Blocks<T>, class: usize) -> Run {
        let (chunk, offset) = match self.free[class].pop() {
            Some(at) => at,
            None => {
                let b = self.count[class];
                self.count[class] += 1;
                let (cap, column) = &mut blocks.classes[class];
                let at = start(*cap, b);
                column.resize(at + *cap, T::default());
                ((at / CHUNK) as u32, (at % CHUNK) as u16)
            }
        };
        Run { chunk, offset, class: class as u8, len: 0 }
    }

    /// A run of `len` items (1 ..= max) in the smallest class that holds it.
    fn alloc<T: Clone + Default>(&mut self, blocks: &mut Blocks<T>, len: usize) -> Run {
        let class = blocks.classes.iter().position(|(cap, _)| *cap >= len).expect("len is at most max");
        Run { len: len as u8, ..self.block(blocks, class) }
    }

    /// Run `r` one item longer (shorter than max before), moved to a block
    /// of the next class when its block is full.
    fn grow<T: Clone + Copy + Default>(&mut self, blocks: &mut Blocks<T>, r: Run) -> Run {
        if r.is_empty() {
            return self.alloc(blocks, 1);
        }
        let class = usize::from(r.class);
        if r.len() < blocks.classes[class].0 {
            return Run { len: r.len + 1, ..r };
        }
        let grown = Run { len: r.len + 1, ..self.block(blocks, class + 1) };
        for i in 0..r.len() {
            let item = blocks.get(r)[i];
            blocks.get_mut(grown)[i] = item;
        }
        self.free[class].push((r.chunk, r.offset));
        grown
    }

    fn release(&mut self, r: Run) {
        if !r.is_empty() {
            self.free[usize::from(r.class)].push((r.chunk, r.offset));
        }
    }

    fn heap_bytes(&self) -> usize {
        self.free.iter().map(|f| f.capacity() * size_of::<(u32, u16)>()).sum::<usize>()
    }
}

/// What snapshots share of the top lists: the entries and the ids.
#[derive(Debug, Clone, Default)]
pub struct TopBlocks {
    entries: Blocks<TopEntry>,
    ids: Blocks<Unit>,
}

impl TopBlocks {
    /// The entries of list `r`.
    #[inline]
    pub fn get(&self, r: TopRef) -> &[TopEntry] {
        self.entries.get(r)
    }

    /// The id of an entry of a list of these blocks.
    pub fn id<'a>(&'a self, e: &'a TopEntry) -> &'a str {
        // Ids are written whole from a `&str` (`TopSlab::write`).
        std::str::from_utf8(e.id.bytes(&self.ids)).unwrap_or_default()
    }
}

/// The top lists' blocks, entries and ids, with their free lists.
#[derive(Debug, Clone)]
pub struct TopSlab {
    blocks: TopBlocks,
    free_entries: FreeLists,
    free_ids: FreeLists,
}

impl TopSlab {
    /// Blocks for lists of at most `max` entries (at most [`TOP_MAX`]).
    pub fn new(max: usize) -> TopSlab {
        // Ids longer than INLINE take 3 to 16 units, each count its class.
        let id_classes = (INLINE / 8 + 1..=ID_MAX / 8).collect();
        let blocks = TopBlocks { entries: Blocks::doubling(max.min(TOP_MAX)), ids: Blocks::with_classes(id_classes) };
        TopSlab { free_entries: FreeLists::new(&blocks.entries), free_ids: FreeLists::new(&blocks.ids), blocks }
    }

    /// The most entries a list can hold.
    pub fn max(&self) -> usize {
        self.blocks.entries.max()
    }

    /// What a snapshot takes (cloned, it shares every chunk).
    pub fn blocks(&self) -> &TopBlocks {
        &self.blocks
    }

    #[inline]
    pub fn get(&self, r: TopRef) -> &[TopEntry] {
        self.blocks.get(r)
    }

    /// Sets the interactions of entry `i` of list `r`.
    pub fn set_interactions(&mut self, r: TopRef, i: usize, interactions: u64) {
        self.blocks.entries.get_mut(r)[i].interactions = interactions;
    }

    /// Overwrites entry `i` of list `r`; the old id's block is freed.
    pub fn set(&mut self, r: TopRef, i: usize, hash: u64, interactions: u64, id: &str) {
        let old = self.blocks.entries.get(r)[i].id.run();
        self.free_ids.release(old);
        let entry = self.write(hash, interactions, id);
        self.blocks.entries.get_mut(r)[i] = entry;
    }

    /// An entry with `id` stored (cut at [`ID_MAX`] bytes, on a character
    /// boundary; the decoder never lets a longer one through).
    fn write(&mut self, hash: u64, interactions: u64, id: &str) -> TopEntry {
        let mut len = id.len().min(ID_MAX);
        while !id.is_char_boundary(len) {
            len -= 1;
        }
        let bytes = &id.as_bytes()[..len];
        if len <= INLINE {
            return TopEntry { hash, interactions, id: IdCell::inline(bytes) };
        }
        let run = self.free_ids.alloc(&mut self.blocks.ids, len.div_ceil(8));
        let units = self.blocks.ids.get_mut(run);
        for (unit, chunk) in units.iter_mut().zip(bytes.chunks(8)) {
            unit[..chunk.len()].copy_from_slice(chunk);
        }
        TopEntry { hash, interactions, id: IdCell::in_blocks(len, run) }
    }

    /// A new list of `posts`; the ones past [`max`](Self::max) are left out.
    pub fn create(&mut self, posts: &[OwnedTopPost]) -> TopRef {
        let mut r = TopRef::default();
        for post in posts.iter().take(self.max()) {
            r = self.push(r, post.hash, post.interactions, &post.id);
        }
        r
    }

    /// Appends a post to list `r` (shorter than [`max`](Self::max)).
    pub fn push(&mut self, r: TopRef, hash: u64, interactions: u64, id: &str) -> TopRef {
        debug_assert!(r.len() < self.max());
        let entry = self.write(hash, interactions, id);
        let list = self.free_entries.grow(&mut self.blocks.entries, r);
        self.blocks.entries.get_mut(list)[r.len()] = entry;
        list
    }

    /// Frees list `r` and its ids.
    pub fn release(&mut self, r: TopRef) {
        for e in self.blocks.entries.get(r) {
            self.free_ids.release(e.id.run());
        }
        self.free_entries.release(r);
    }

    /// Heap bytes of the blocks and free lists.
    pub fn heap_bytes(&self) -> usize {
        self.blocks.entries.heap_bytes()
            + self.blocks.ids.heap_bytes()
            + self.free_entries.heap_bytes()
            + self.free_ids.heap_bytes()
    }
}

/// The top posts of one quarter (the latest one a post was noted for).
#[derive(Debug, Clone, Copy)]
pub struct TopList<'a> {
    pub quarter: Quarter,
    entries: &'a [TopEntry],
    blocks: &'a TopBlocks,
}

impl<'a> TopList<'a> {
    pub(super) fn new(quarter: Quarter, list: TopRef, blocks: &'a TopBlocks) -> TopList<'a> {
        TopList { quarter, entries: blocks.get(list), blocks }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The posts, in list order.
    pub fn posts(&self) -> impl Iterator<Item = TopPost<'a>> + 'a {
        let blocks = self.blocks;
        self.entries.iter().map(move |e| TopPost { hash: e.hash, interactions: e.interactions, id: blocks.id(e) })
    }
}

#[cfg(test)]
mod tests;
