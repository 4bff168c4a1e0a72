//! Which pages of a table a ranking takes part in: a contiguous range
//! (every page, or one platform's, in (platform, page_id) order) or the
//! scattered positions of a group's pages.

use std::ops::Range;

/// The positions in a table of the pages a filter keeps, ascending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// Every page, or one platform's: contiguous in (platform, page_id) order.
    Range(Range<usize>),
    /// The pages in groups.
    Positions(Vec<u32>),
}

impl Selection {
    pub fn len(&self) -> usize {
        match self {
            Selection::Range(r) => r.len(),
            Selection::Positions(p) => p.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The table position of the `i`-th page kept.
    pub fn get(&self, i: usize) -> usize {
        match self {
            Selection::Range(r) => r.start + i,
            Selection::Positions(p) => p[i] as usize,
        }
    }

    /// Where table position `pos` stands among the pages kept.
    pub fn index_of(&self, pos: usize) -> Option<usize> {
        match self {
            Selection::Range(r) => r.contains(&pos).then(|| pos - r.start),
            Selection::Positions(p) => p.binary_search(&(pos as u32)).ok(),
        }
    }

    /// The table positions kept, ascending.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }
}
