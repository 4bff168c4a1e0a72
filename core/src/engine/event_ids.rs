//! Remembered `event_id`s of applied deltas, grouped by the publication
//! quarter of their post so that a quarter's ids are freed with the quarter.
//! Ids are stored as 64-bit hashes of (page, post, event_id): two different
//! ids of one post collide with probability about n²/2^65.
//!
//! Each quarter keeps its ids in a log (a column shared copy-on-write, so a
//! checkpoint snapshot copies nothing) and an [`Index`] over the log.

use super::column::Column;
use super::index::Index;
use crate::window::Quarter;

/// Bits of a position in a quarter's log.
const POSITION_BITS: u32 = 27;

/// The ids of one quarter.
#[derive(Debug, Clone)]
pub struct QuarterIds {
    pub quarter: Quarter,
    pub log: Column<u64>,
    index: Index,
}

impl QuarterIds {
    fn new(quarter: Quarter) -> QuarterIds {
        QuarterIds { quarter, log: Column::default(), index: Index::new(POSITION_BITS) }
    }

    fn contains(&self, key: u64) -> bool {
        let log = &self.log;
        self.index.find(key, |i| *log.get(i as usize) == key).is_some()
    }

    fn add(&mut self, key: u64) {
        let i = self.log.push(key) as u32;
        let log = &self.log;
        self.index.insert(key, i, |j| *log.get(j as usize));
    }
}

/// The event-id memory, bounded by `max` ids in total.
#[derive(Debug, Clone)]
pub struct EventIds {
    pub(super) sets: Vec<QuarterIds>,
    len: usize,
    max: usize,
}

/// What [`EventIds::insert`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remembered {
    New,
    Seen,
    Full,
}

pub fn event_key(page: u32, post_hash: u64, event_id: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(event_id.as_bytes(), post_hash ^ u64::from(page) << 52)
}

impl EventIds {
    pub fn new(max: usize) -> EventIds {
        EventIds { sets: Vec::new(), len: 0, max: max.min((1 << POSITION_BITS) - 2) }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Remembers `key` unless it is known or the bound is reached.
    pub fn insert(&mut self, quarter: Quarter, key: u64) -> Remembered {
        let set = self.sets.iter().position(|s| s.quarter == quarter);
        if set.is_some_and(|i| self.sets[i].contains(key)) {
            return Remembered::Seen;
        }
        if self.len >= self.max {
            return Remembered::Full;
        }
        let i = set.unwrap_or_else(|| {
            self.sets.push(QuarterIds::new(quarter));
            self.sets.len() - 1
        });
        self.sets[i].add(key);
        self.len += 1;
        Remembered::New
    }

    /// Restores one remembered id (from a checkpoint); false when it was
    /// already there or the bound is reached.
    pub(super) fn restore(&mut self, quarter: Quarter, key: u64) -> bool {
        self.insert(quarter, key) == Remembered::New
    }

    pub fn forget_before(&mut self, oldest: Quarter) {
        self.sets.retain(|s| s.quarter >= oldest);
        self.len = self.sets.iter().map(|s| s.log.len()).sum();
    }

    pub fn heap_bytes(&self) -> usize {
        self.sets.iter().map(|s| s.log.heap_bytes() + s.index.heap_bytes()).sum()
    }
}
