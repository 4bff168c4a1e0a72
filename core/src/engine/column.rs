//! `Column<T>`: a vector in fixed-size chunks, each shared copy-on-write.
//!
//! The engine keeps everything a view or a checkpoint needs in columns, so
//! that taking a snapshot is cloning the list of chunk pointers — O(len /
//! [`CHUNK`]), microseconds for millions of entries — instead of copying
//! the state. After a snapshot, the first write to a chunk copies that
//! chunk once (`Arc::make_mut`); chunks nobody writes stay shared.
//!
//! Writes are the hot path, and `Arc::make_mut` is an atomic
//! read-modify-write each time. So each chunk also has a flag, set once
//! the writer has made the chunk its own and cleared by every snapshot;
//! while it is set, a write goes straight to the chunk.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

/// Entries per chunk.
pub const CHUNK: usize = 1024;

/// What a chunk is: something an `Arc` holds that the writer can make its
/// own (a copy when a snapshot shares it).
pub trait Share {
    fn make_mut(this: &mut Arc<Self>) -> &mut Self;
}

impl<T: Clone> Share for [T] {
    fn make_mut(this: &mut Arc<[T]>) -> &mut [T] {
        Arc::make_mut(this)
    }
}

/// Chunks shared copy-on-write with snapshots; a chunk may be absent
/// (freed). The writer's handle keeps a flag per chunk: set once it has
/// made the chunk its own, cleared by every snapshot (see the module docs).
#[derive(Debug)]
pub struct Chunks<C: ?Sized> {
    chunks: Vec<Option<Arc<C>>>,
    /// Cleared by `clone`, which takes `&self`, so never while a write
    /// holds `&mut self`.
    owned: Vec<AtomicBool>,
}

impl<C: ?Sized> Clone for Chunks<C> {
    /// A snapshot: shares every chunk.
    fn clone(&self) -> Chunks<C> {
        for flag in &self.owned {
            flag.store(false, Relaxed);
        }
        let owned = self.chunks.iter().map(|_| AtomicBool::new(false)).collect();
        Chunks { chunks: self.chunks.clone(), owned }
    }
}

impl<C: ?Sized> Default for Chunks<C> {
    fn default() -> Chunks<C> {
        Chunks { chunks: Vec::new(), owned: Vec::new() }
    }
}

impl<C: ?Sized + Share> Chunks<C> {
    pub fn len(&self) -> usize {
        self.chunks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.chunks.capacity()
    }

    #[inline]
    pub fn get(&self, c: usize) -> Option<&C> {
        self.chunks.get(c)?.as_deref()
    }

    /// Chunk `c`, copied first if a snapshot shares it.
    #[inline]
    pub fn get_mut(&mut self, c: usize) -> Option<&mut C> {
        let chunk = self.chunks.get_mut(c)?.as_mut()?;
        if self.owned[c].load(Relaxed) {
            debug_assert!(Arc::strong_count(chunk) == 1 && Arc::weak_count(chunk) == 0);
            // SAFETY: the flag is set only below, right after `make_mut` made
            // this the only reference to the chunk, and every clone of these
            // chunks (the only way they are shared) clears it first. So no
            // other reference to the chunk exists, and `&mut self` makes this
            // one exclusive: what `Arc::get_mut` would check.
            return Some(unsafe { &mut *Arc::as_ptr(chunk).cast_mut() });
        }
        self.owned[c].store(true, Relaxed);
        Some(C::make_mut(chunk))
    }

    pub fn push(&mut self, chunk: Option<Arc<C>>) {
        self.chunks.push(None);
        self.owned.push(AtomicBool::new(false));
        self.set(self.chunks.len() - 1, chunk);
    }

    /// Replaces chunk `c` (freeing it with `None`).
    pub fn set(&mut self, c: usize, chunk: Option<Arc<C>>) {
        self.chunks[c] = chunk;
        self.owned[c] = AtomicBool::new(false);
    }

    pub fn iter(&self) -> impl Iterator<Item = Option<&C>> {
        self.chunks.iter().map(Option::as_deref)
    }
}

/// Entries in chunks of [`CHUNK`], each allocated whole (its tail holds
/// defaults until pushed): an entry is one load of the chunk's pointer
/// (with its length, in the list) away.
#[derive(Debug, Clone)]
pub struct Column<T> {
    chunks: Chunks<[T]>,
    len: usize,
}

impl<T> Default for Column<T> {
    fn default() -> Column<T> {
        Column { chunks: Chunks::default(), len: 0 }
    }
}

impl<T: Clone + Default> Column<T> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn get(&self, i: usize) -> &T {
        debug_assert!(i < self.len);
        &self.chunks.get(i / CHUNK).expect("an entry below len")[i % CHUNK]
    }

    /// The entry, copying its chunk first if a snapshot shares it.
    pub fn get_mut(&mut self, i: usize) -> &mut T {
        debug_assert!(i < self.len);
        &mut self.chunks.get_mut(i / CHUNK).expect("an entry below len")[i % CHUNK]
    }

    /// The `len` entries from `start`, which lie in one chunk.
    #[inline]
    pub fn run(&self, start: usize, len: usize) -> &[T] {
        let at = start % CHUNK;
        &self.chunks.get(start / CHUNK).expect("a run below len")[at..at + len]
    }

    /// [`run`](Self::run), copying its chunk first if a snapshot shares it.
    #[inline]
    pub fn run_mut(&mut self, start: usize, len: usize) -> &mut [T] {
        let at = start % CHUNK;
        &mut self.chunks.get_mut(start / CHUNK).expect("a run below len")[at..at + len]
    }

    /// Appends `v`; returns its index.
    pub fn push(&mut self, v: T) -> usize {
        let i = self.len;
        if i % CHUNK == 0 {
            self.chunks.push(Some((0..CHUNK).map(|_| T::default()).collect()));
        }
        self.chunks.get_mut(i / CHUNK).expect("a chunk was just ensured")[i % CHUNK] = v;
        self.len += 1;
        i
    }

    /// Grows the column to `len` entries with `fill`.
    pub fn resize(&mut self, len: usize, fill: T) {
        while self.len < len {
            self.push(fill.clone());
        }
    }

    /// Hints the CPU to load entry `i` (no effect on what is read).
    #[inline]
    pub fn prefetch(&self, i: usize) {
        if let Some(entry) = self.chunks.get(i / CHUNK).and_then(|c| c.get(i % CHUNK)) {
            prefetch(entry);
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.chunks.iter().flatten().flat_map(|c| c.iter()).take(self.len)
    }

    /// Heap bytes held (chunks at full capacity), shared or not.
    pub fn heap_bytes(&self) -> usize {
        self.chunks.len() * (CHUNK * size_of::<T>() + 2 * size_of::<usize>())
            + self.chunks.capacity() * (size_of::<Arc<[T]>>() + 1)
    }
}

/// Asks the CPU to bring the cache lines of `r` closer (both, when it
/// straddles two); never faults.
#[inline(always)]
pub fn prefetch<T>(r: &T) {
    let start = (r as *const T).cast::<u8>();
    prefetch_line(start);
    let last = start.wrapping_add(size_of::<T>().saturating_sub(1));
    if (last as usize) / 64 != (start as usize) / 64 {
        prefetch_line(last);
    }
}

/// [`prefetch`] for the first `max_lines` cache lines of a slice.
#[inline]
pub fn prefetch_slice<T>(s: &[T], max_lines: usize) {
    let start = s.as_ptr().cast::<u8>();
    let lines = (size_of_val(s) + (start as usize % 64)).div_ceil(64).min(max_lines);
    for i in 0..lines {
        prefetch_line(start.wrapping_add(i * 64));
    }
}

#[inline(always)]
fn prefetch_line(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetching is a hint: it reads nothing and cannot fault,
    // whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_keeps_its_values_while_the_column_changes() {
        let mut c = Column::default();
        for i in 0..3000u32 {
            c.push(i);
        }
        let snap = c.clone();
        *c.get_mut(5) = 99;
        *c.get_mut(2999) = 7;
        c.push(3000);
        assert_eq!((*snap.get(5), *snap.get(2999), snap.len()), (5, 2999, 3000));
        assert_eq!((*c.get(5), *c.get(2999), c.len()), (99, 7, 3001));
        assert!(std::ptr::eq(c.chunks.get(1).unwrap(), snap.chunks.get(1).unwrap()), "an untouched chunk stays shared");
        assert_eq!(c.iter().copied().take(6).collect::<Vec<_>>(), vec![0, 1, 2, 3, 4, 99]);
    }

    #[test]
    fn every_snapshot_keeps_the_values_it_was_taken_with() {
        let mut c = Column::default();
        c.resize(2048, 0u32);
        let mut snaps = Vec::new();
        for round in 1..=5u32 {
            // Several writes per round: the first takes the chunk back, the
            // others go straight to it.
            for i in [0, 1, 1500] {
                *c.get_mut(i) = round;
            }
            snaps.push((round, c.clone()));
            let twice = c.clone();
            drop(twice);
        }
        for (round, snap) in &snaps {
            assert_eq!((*snap.get(0), *snap.get(1), *snap.get(1500), *snap.get(2)), (*round, *round, *round, 0));
        }
    }
}
