//! `Column<T>`: a vector in fixed-size chunks, each shared copy-on-write.
//!
//! The engine keeps everything a view or a checkpoint needs in columns, so
//! that taking a snapshot is cloning the list of chunk pointers — O(len /
//! [`CHUNK`]), microseconds for millions of entries — instead of copying
//! the state. After a snapshot, the first write to a chunk copies that
//! chunk once (`Arc::make_mut`); chunks nobody writes stay shared.

use std::sync::Arc;

/// Entries per chunk.
pub const CHUNK: usize = 1024;

/// One chunk; cloning it keeps the full capacity, so pushes into a cloned
/// last chunk do not reallocate.
#[derive(Debug)]
struct Chunk<T>(Vec<T>);

impl<T: Clone> Clone for Chunk<T> {
    fn clone(&self) -> Chunk<T> {
        let mut v = Vec::with_capacity(CHUNK);
        v.extend_from_slice(&self.0);
        Chunk(v)
    }
}

#[derive(Debug)]
pub struct Column<T> {
    chunks: Vec<Arc<Chunk<T>>>,
    len: usize,
}

impl<T> Clone for Column<T> {
    /// A snapshot: shares every chunk.
    fn clone(&self) -> Column<T> {
        Column { chunks: self.chunks.clone(), len: self.len }
    }
}

impl<T> Default for Column<T> {
    fn default() -> Column<T> {
        Column { chunks: Vec::new(), len: 0 }
    }
}

impl<T: Clone> Column<T> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn get(&self, i: usize) -> &T {
        &self.chunks[i / CHUNK].0[i % CHUNK]
    }

    /// The entry, copying its chunk first if a snapshot shares it.
    pub fn get_mut(&mut self, i: usize) -> &mut T {
        &mut Arc::make_mut(&mut self.chunks[i / CHUNK]).0[i % CHUNK]
    }

    /// Appends `v`; returns its index.
    pub fn push(&mut self, v: T) -> usize {
        if self.len % CHUNK == 0 {
            self.chunks.push(Arc::new(Chunk(Vec::with_capacity(CHUNK))));
        }
        let last = self.chunks.last_mut().expect("a chunk was just ensured");
        Arc::make_mut(last).0.push(v);
        self.len += 1;
        self.len - 1
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
        if let Some(chunk) = self.chunks.get(i / CHUNK) {
            if let Some(entry) = chunk.0.get(i % CHUNK) {
                prefetch(entry);
            }
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.chunks.iter().flat_map(|c| c.0.iter())
    }

    /// Heap bytes held (chunks at full capacity), shared or not.
    pub fn heap_bytes(&self) -> usize {
        self.chunks.len() * (CHUNK * size_of::<T>() + 2 * size_of::<usize>())
            + self.chunks.capacity() * size_of::<Arc<Chunk<T>>>()
    }
}

/// Asks the CPU to bring the cache line of `r` closer; never faults.
#[inline(always)]
pub fn prefetch<T>(r: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetching is a hint; it reads nothing and cannot fault, and
    // `r` is a valid reference anyway.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>((r as *const T).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = r;
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
        assert!(Arc::ptr_eq(&c.chunks[1], &snap.chunks[1]), "an untouched chunk stays shared");
        assert_eq!(c.iter().copied().take(6).collect::<Vec<_>>(), vec![0, 1, 2, 3, 4, 99]);
    }
}
