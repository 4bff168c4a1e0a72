//! Remembered `event_id`s of applied deltas, grouped by the publication
//! quarter of their post so that a quarter's ids are freed with the quarter.
//! Ids are stored as 64-bit hashes of (page, post, event_id): two different
//! ids of one post collide with probability about n²/2^65.

use std::io::{self, Read, Write};

use hashbrown::HashTable;

use crate::codec::{DecodeError, Reader, Writer};
use crate::window::Quarter;

/// The event-id memory, bounded by `max` ids in total.
pub struct EventIds {
    sets: Vec<(Quarter, HashTable<u64>)>,
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
        EventIds { sets: Vec::new(), len: 0, max }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn contains(&self, quarter: Quarter, key: u64) -> bool {
        self.sets.iter().find(|(q, _)| *q == quarter).is_some_and(|(_, set)| set.find(key, |&k| k == key).is_some())
    }

    /// Remembers `key` unless it is known or the bound is reached.
    pub fn insert(&mut self, quarter: Quarter, key: u64) -> Remembered {
        if self.contains(quarter, key) {
            return Remembered::Seen;
        }
        if self.len >= self.max {
            return Remembered::Full;
        }
        let set = match self.sets.iter().position(|(q, _)| *q == quarter) {
            Some(i) => &mut self.sets[i].1,
            None => {
                self.sets.push((quarter, HashTable::new()));
                &mut self.sets.last_mut().expect("just pushed").1
            }
        };
        set.insert_unique(key, key, |&k| k);
        self.len += 1;
        Remembered::New
    }

    pub fn forget_before(&mut self, oldest: Quarter) {
        self.sets.retain(|(q, _)| *q >= oldest);
        self.len = self.sets.iter().map(|(_, s)| s.len()).sum();
    }

    pub fn heap_bytes(&self) -> usize {
        self.sets.iter().map(|(_, s)| (s.capacity() * 8 / 7).next_power_of_two() * 9).sum()
    }
}

impl EventIds {
    pub(super) fn encode<W: Write>(&self, w: &mut Writer<W>) -> io::Result<()> {
        w.len(self.sets.len())?;
        for (q, set) in &self.sets {
            w.i32(q.index())?;
            w.len(set.len())?;
            for k in set.iter() {
                w.u64(*k)?;
            }
        }
        Ok(())
    }

    pub(super) fn decode<R: Read>(r: &mut Reader<R>, max: usize) -> Result<EventIds, DecodeError> {
        let mut ids = EventIds::new(max);
        let sets = r.len(64, "event id sets")?;
        for _ in 0..sets {
            let q = Quarter::from_index(r.i32()?);
            let n = r.len(max.saturating_sub(ids.len), "event id count")?;
            for _ in 0..n {
                if ids.insert(q, r.u64()?) != Remembered::New {
                    return Err(DecodeError::Range("event id"));
                }
            }
        }
        Ok(ids)
    }
}
