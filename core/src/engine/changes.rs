//! Which pages changed since the last look, for shard mode: a shard
//! publishes only those pages' figures (docs/scaling.md). Off by default;
//! when off, marking costs one branch.
//!
//! Bounds: one bit per page number (the page table's bound) and one entry
//! per changed page between two looks; freed pages' identities until the
//! next look (at most the page bound).

use std::sync::Arc;

#[derive(Debug, Clone, Default)]
pub struct Changes {
    on: bool,
    marks: Marks,
    freed: Vec<(Arc<str>, Box<str>)>,
}

/// A set of numbers (pages, post slots) noted since the last take: a bit
/// per number and the list of those marked, in marking order.
#[derive(Debug, Clone, Default)]
pub struct Marks {
    bits: Vec<u64>,
    list: Vec<u32>,
}

impl Marks {
    #[inline]
    pub fn mark(&mut self, n: u32) {
        let (word, bit) = (n as usize / 64, 1u64 << (n % 64));
        if word >= self.bits.len() {
            self.bits.resize(word + 1, 0);
        }
        if self.bits[word] & bit == 0 {
            self.bits[word] |= bit;
            self.list.push(n);
        }
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The numbers marked since the last take, in marking order.
    pub fn take(&mut self) -> Vec<u32> {
        let list = std::mem::take(&mut self.list);
        for n in &list {
            self.bits[*n as usize / 64] &= !(1u64 << (n % 64));
        }
        list
    }
}

/// What changed between two looks.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changed {
    /// Pages (by number) whose figures may have changed.
    pub pages: Vec<u32>,
    /// Pages freed (by platform and id): their figures are gone.
    pub freed: Vec<(Arc<str>, Box<str>)>,
}

impl Changes {
    pub fn start(&mut self) {
        self.on = true;
    }

    pub fn is_on(&self) -> bool {
        self.on
    }

    #[inline]
    pub fn mark(&mut self, page: u32) {
        if self.on {
            self.marks.mark(page);
        }
    }

    pub fn freed(&mut self, platform: &Arc<str>, id: &str) {
        if self.on {
            self.freed.push((platform.clone(), id.into()));
        }
    }

    /// What changed since the last call; `live` tells which page numbers
    /// are still in use (a freed number may have been reused since).
    pub fn take(&mut self, live: impl Fn(u32) -> bool) -> Changed {
        let mut pages = self.marks.take();
        pages.retain(|p| live(*p));
        pages.sort_unstable();
        Changed { pages, freed: std::mem::take(&mut self.freed) }
    }
}
