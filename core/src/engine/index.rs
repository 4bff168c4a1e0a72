//! An open-addressing hash index from 64-bit keys to dense `u32` ids (post
//! slots, page numbers), in [`SUBTABLES`] independent sub-tables.
//!
//! Why not a general hash map: an entry is 4 bytes — the id and a few
//! bits of the key as a tag — so the index costs ~6–7 bytes per entry at
//! its load factors; the address of a key's home bucket is known from the
//! key alone, so a batch can prefetch it before it is needed; and a
//! sub-table grows alone, so growing never pauses for more than one
//! sub-table's worth of entries.
//!
//! Sizes: a sub-table doubles when it is 4/5 full. Were every size a
//! power of two, the sub-tables (filled evenly by the hash) would all
//! double at the same moment and the index would cost 10 bytes an entry
//! right after, 5 right before. Instead sub-table `s`'s sizes are
//! `2^(k + s/1024)`, so growths spread evenly over each doubling of the
//! whole: the load stays near its mean (≈ 0.58, ~7 bytes an entry) at any
//! size. A key's home bucket is its low 32 bits scaled to the table size.
//!
//! The index does not store keys. Whoever owns the ids says what the key of
//! an id is (`key_of`) when a sub-table grows, and whether an id matches a
//! lookup (`is`), which the tag makes rare for a wrong id (1 in 2^tag bits).

/// Sub-tables, chosen by the top bits of the key.
pub const SUBTABLES: usize = 1024;
const SUB_SHIFT: u32 = 64 - SUBTABLES.trailing_zeros();
const MIN_BUCKETS: usize = 8;
const EMPTY: u32 = 0;
const REMOVED: u32 = u32::MAX;

/// The index, for ids of `id_bits` bits (the rest of each entry is tag).
#[derive(Debug, Clone)]
pub struct Index {
    tables: Vec<Vec<u32>>,
    /// Live entries and removed markers, per sub-table.
    counts: Vec<(u32, u32)>,
    id_bits: u32,
    len: usize,
}

impl Index {
    /// An index for ids below `2^id_bits - 1`.
    pub fn new(id_bits: u32) -> Index {
        assert!((8..=30).contains(&id_bits), "id_bits leaves room for a tag");
        Index { tables: vec![Vec::new(); SUBTABLES], counts: vec![(0, 0); SUBTABLES], id_bits, len: 0 }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Largest id the index can hold.
    pub fn max_id(&self) -> u32 {
        (1 << self.id_bits) - 2
    }

    fn sub(key: u64) -> usize {
        (key >> SUB_SHIFT) as usize
    }

    fn tag(&self, key: u64) -> u32 {
        // The top bits choose the sub-table and the low bits the bucket; the
        // tag comes from bits 32.. that neither uses.
        ((key >> 32) as u32) << self.id_bits
    }

    fn entry(&self, key: u64, id: u32) -> u32 {
        self.tag(key) | (id + 1)
    }

    fn id_of(&self, entry: u32) -> u32 {
        (entry & ((1 << self.id_bits) - 1)) - 1
    }

    /// Hints the CPU to load `key`'s home bucket.
    #[inline]
    pub fn prefetch(&self, key: u64) {
        let t = &self.tables[Self::sub(key)];
        if !t.is_empty() {
            super::column::prefetch(&t[home(key, t.len())]);
        }
    }

    /// The id whose entry matches `key`'s tag and that `is` confirms.
    pub fn find(&self, key: u64, mut is: impl FnMut(u32) -> bool) -> Option<u32> {
        let t = &self.tables[Self::sub(key)];
        if t.is_empty() {
            return None;
        }
        let (tag, tag_mask) = (self.tag(key), !((1u32 << self.id_bits) - 1));
        let mut i = home(key, t.len());
        loop {
            let e = t[i];
            if e == EMPTY {
                return None;
            }
            if e != REMOVED && e & tag_mask == tag && is(self.id_of(e)) {
                return Some(self.id_of(e));
            }
            i = next(i, t.len());
        }
    }

    /// The first id whose tag matches, unconfirmed: a prefetch hint.
    #[inline]
    pub fn guess(&self, key: u64) -> Option<u32> {
        let t = &self.tables[Self::sub(key)];
        if t.is_empty() {
            return None;
        }
        let (tag, tag_mask) = (self.tag(key), !((1u32 << self.id_bits) - 1));
        let mut i = home(key, t.len());
        for _ in 0..4 {
            let e = t[i];
            if e == EMPTY {
                return None;
            }
            if e != REMOVED && e & tag_mask == tag {
                return Some(self.id_of(e));
            }
            i = next(i, t.len());
        }
        None
    }

    /// Adds `id` under `key`, which must not be present. `key_of` gives the
    /// key of any id already in the index, for growing the sub-table.
    pub fn insert(&mut self, key: u64, id: u32, key_of: impl Fn(u32) -> u64) {
        self.insert_prefetching(key, id, key_of, |_| {});
    }

    /// [`insert`](Self::insert), with a hint to load an id's record ahead
    /// of `key_of` needing it when a sub-table grows.
    pub fn insert_prefetching(&mut self, key: u64, id: u32, key_of: impl Fn(u32) -> u64, prefetch: impl Fn(u32)) {
        debug_assert!(id <= self.max_id());
        let s = Self::sub(key);
        let (live, removed) = self.counts[s];
        let buckets = self.tables[s].len();
        if (live + removed + 1) as usize * 5 > buckets * 4 {
            self.rebuild(s, (live as usize + 1).max(MIN_BUCKETS / 2), &key_of, &prefetch);
        }
        let entry = self.entry(key, id);
        let t = &mut self.tables[s];
        let mut i = home(key, t.len());
        while t[i] != EMPTY && t[i] != REMOVED {
            i = next(i, t.len());
        }
        if t[i] == REMOVED {
            self.counts[s].1 -= 1;
        }
        t[i] = entry;
        self.counts[s].0 += 1;
        self.len += 1;
    }

    /// Removes `id` (stored under `key`); false when it is not there.
    pub fn remove(&mut self, key: u64, id: u32) -> bool {
        let s = Self::sub(key);
        let want = self.tag(key) | (id + 1);
        let t = &mut self.tables[s];
        if t.is_empty() {
            return false;
        }
        let mut i = home(key, t.len());
        loop {
            match t[i] {
                EMPTY => return false,
                e if e == want => {
                    t[i] = REMOVED;
                    self.counts[s].0 -= 1;
                    self.counts[s].1 += 1;
                    self.len -= 1;
                    return true;
                }
                _ => i = next(i, t.len()),
            }
        }
    }

    /// Makes room in every sub-table for `n` more entries spread evenly,
    /// so that loading a checkpoint never grows a table.
    pub fn reserve(&mut self, n: usize, key_of: impl Fn(u32) -> u64) {
        let per_table = n.div_ceil(SUBTABLES) + n.div_ceil(SUBTABLES) / 8 + 4;
        for s in 0..SUBTABLES {
            let want = self.counts[s].0 as usize + per_table;
            if want * 5 > self.tables[s].len() * 4 {
                self.rebuild(s, want, &key_of, &|_| {});
            }
        }
    }

    /// Rehashes sub-table `s` into the smallest of its sizes holding
    /// `live` entries at most 5/8 full, dropping removed markers.
    fn rebuild(&mut self, s: usize, live: usize, key_of: &impl Fn(u32) -> u64, prefetch: &impl Fn(u32)) {
        let buckets = size_for(s, live * 8 / 5);
        let old = std::mem::replace(&mut self.tables[s], vec![EMPTY; buckets]);
        // Keys come from the owner's records: visiting ids in order turns
        // random reads into mostly sequential ones.
        let mut ids: Vec<u32> =
            old.into_iter().filter(|e| *e != EMPTY && *e != REMOVED).map(|e| self.id_of(e)).collect();
        ids.sort_unstable();
        for (n, &id) in ids.iter().enumerate() {
            // The ids' records are scattered: overlap their loads.
            if let Some(&ahead) = ids.get(n + 8) {
                prefetch(ahead);
            }
            let key = key_of(id);
            let mut i = home(key, buckets);
            while self.tables[s][i] != EMPTY {
                i = next(i, buckets);
            }
            self.tables[s][i] = self.entry(key, id);
        }
        self.counts[s].1 = 0;
    }

    pub fn heap_bytes(&self) -> usize {
        self.tables.iter().map(|t| t.capacity() * 4).sum::<usize>() + self.tables.capacity() * 24 + SUBTABLES * 8
    }
}

/// A key's home bucket in a table of `len`: its low 32 bits, scaled.
#[inline]
fn home(key: u64, len: usize) -> usize {
    (((key & 0xffff_ffff) * len as u64) >> 32) as usize
}

#[inline]
fn next(i: usize, len: usize) -> usize {
    if i + 1 == len { 0 } else { i + 1 }
}

/// The smallest size of sub-table `s` with at least `want` buckets: sizes
/// are `MIN_BUCKETS * 2^(k + s / SUBTABLES)`, rounded up.
fn size_for(s: usize, want: usize) -> usize {
    let offset = (s as f64 / SUBTABLES as f64).exp2();
    let mut size = MIN_BUCKETS as f64 * offset;
    while size.ceil() < want as f64 {
        size *= 2.0;
    }
    size.ceil() as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: u32) -> u64 {
        (u64::from(id) + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }

    #[test]
    fn insert_find_remove_through_growth() {
        let mut ix = Index::new(27);
        for id in 0..200_000 {
            ix.insert(key(id), id, key);
        }
        assert_eq!(ix.len(), 200_000);
        for id in (0..200_000).step_by(7) {
            assert_eq!(ix.find(key(id), |c| c == id), Some(id));
        }
        assert_eq!(ix.find(key(300_000), |c| key(c) == key(300_000)), None);
        for id in (0..200_000).step_by(2) {
            assert!(ix.remove(key(id), id));
        }
        assert!(!ix.remove(key(0), 0), "already removed");
        assert_eq!(ix.len(), 100_000);
        for id in 0..1000 {
            let found = ix.find(key(id), |c| c == id);
            assert_eq!(found, (id % 2 == 1).then_some(id));
        }
        for id in (0..200_000).step_by(2) {
            ix.insert(key(id), id, key);
        }
        assert!((0..200_000).step_by(13).all(|id| ix.find(key(id), |c| c == id) == Some(id)));
    }

    #[test]
    fn the_load_stays_near_its_mean_at_any_size() {
        let mut ix = Index::new(27);
        let mut id = 0;
        for target in [100_000u32, 150_000, 230_000, 320_000, 400_000] {
            while id < target {
                ix.insert(key(id), id, key);
                id += 1;
            }
            let buckets: usize = ix.tables.iter().map(Vec::len).sum();
            let load = id as f64 / buckets as f64;
            assert!((0.5..0.68).contains(&load), "load {load:.3} at {id} entries");
        }
    }

    #[test]
    fn colliding_keys_are_told_apart_by_the_owner() {
        let mut ix = Index::new(20);
        let same = 42u64 << 40;
        ix.insert(same, 1, |_| same);
        ix.insert(same, 2, |_| same);
        assert_eq!(ix.find(same, |c| c == 2), Some(2));
        assert_eq!(ix.find(same, |c| c == 1), Some(1));
        assert_eq!(ix.guess(same), Some(1));
    }
}
