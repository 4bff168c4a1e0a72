//! Where a view reads pages from: one engine's snapshot, or shard mode's
//! global page table (see [`global`](crate::global)). Both answer the same
//! questions, so every ranking and page answer is computed by one code.

use crate::engine::{Named, Sample, Snapshot, Totals, Usage};
use crate::global::{PageRecord, PageSet};
use crate::window::{DAY_MS, Millis, Quarter};

#[derive(Debug)]
pub(super) enum Source {
    /// Boxed: a snapshot is large, and a view holds one source.
    Engine(Box<Snapshot>),
    Pages(PageSet),
}

impl Source {
    pub fn watermark(&self) -> Option<Millis> {
        match self {
            Source::Engine(s) => s.watermark,
            Source::Pages(s) => s.watermark,
        }
    }

    pub fn usage(&self) -> Usage {
        match self {
            Source::Engine(s) => s.usage,
            Source::Pages(s) => Usage { pages: s.held, split_pages: s.split_pages, ..Usage::default() },
        }
    }

    /// (retained quarters, rolling days).
    pub fn windows(&self) -> (u32, u32) {
        match self {
            Source::Engine(s) => (s.limits.retained_quarters, s.limits.rolling_days),
            Source::Pages(s) => (s.retained_quarters, s.rolling_days),
        }
    }

    pub fn live_pages(&self) -> Vec<u32> {
        match self {
            Source::Engine(s) => s.pages().collect(),
            Source::Pages(s) => {
                s.pages.iter().enumerate().filter(|(_, r)| r.is_some()).map(|(p, _)| p as u32).collect()
            }
        }
    }

    fn record(s: &PageSet, p: u32) -> &PageRecord {
        s.pages.get(p as usize).as_deref().expect("a view only asks for its live pages")
    }

    pub fn platform(&self, p: u32) -> &str {
        match self {
            Source::Engine(s) => s.platform(p),
            Source::Pages(s) => &Self::record(s, p).platform,
        }
    }

    pub fn id(&self, p: u32) -> &str {
        match self {
            Source::Engine(s) => &s.ident(p).id,
            Source::Pages(s) => &Self::record(s, p).id,
        }
    }

    pub fn name(&self, p: u32) -> Option<&Named> {
        match self {
            Source::Engine(s) => s.name(p),
            Source::Pages(s) => Self::record(s, p).name.as_ref(),
        }
    }

    /// The page's top posts if its list is of quarter `q`.
    pub fn top_posts(&self, p: u32, q: Quarter) -> Vec<(&str, u64)> {
        match self {
            Source::Engine(s) => s
                .top(p)
                .filter(|t| t.quarter == q)
                .map(|t| t.posts().map(|p| (p.id, p.interactions)).collect())
                .unwrap_or_default(),
            Source::Pages(s) => match &Self::record(s, p).top {
                Some((tq, posts)) if *tq == q => posts.iter().map(|(id, n)| (&**id, *n)).collect(),
                _ => Vec::new(),
            },
        }
    }

    /// The latest follower sample overall.
    pub fn followers(&self, p: u32) -> Option<Sample> {
        match self {
            Source::Engine(s) => s.followers(p),
            Source::Pages(s) => Self::record(s, p).followers.get(),
        }
    }

    /// The page's totals and follower sample in quarter `q`, if it has a slot there.
    pub fn quarter(&self, q: Quarter, p: u32) -> Option<(Totals, Sample)> {
        match self {
            Source::Engine(s) => s.slot(q, p).map(|(_, slot)| (slot.totals(), slot.followers)),
            Source::Pages(s) => {
                Self::record(s, p).quarters.iter().find(|f| f.quarter == q).map(|f| (f.totals, f.followers))
            }
        }
    }

    /// The follower samples of every quarter of page `p`.
    pub fn quarter_followers(&self, p: u32) -> Vec<Sample> {
        match self {
            Source::Engine(s) => s.quarters().filter_map(|q| s.slot(q, p)).map(|(_, slot)| slot.followers).collect(),
            Source::Pages(s) => Self::record(s, p).quarters.iter().map(|f| f.followers).collect(),
        }
    }

    /// The start of the rolling window (`edge` 0) or of its predecessor (1).
    pub fn edge_at(&self, edge: usize) -> Option<Millis> {
        match self {
            Source::Engine(s) => s.edges.as_ref().map(|e| e[edge].at),
            Source::Pages(s) => {
                let span = Millis::from(s.rolling_days) * DAY_MS;
                s.watermark.map(|wm| wm - (edge as i64 + 1) * span)
            }
        }
    }

    /// Totals of page `p`'s posts published at or after edge `edge`.
    pub fn since(&self, p: u32, edge: usize) -> Totals {
        match self {
            Source::Engine(s) => s.edges.as_ref().map(|e| s.since(p, &e[edge])).unwrap_or_default(),
            Source::Pages(s) => Self::record(s, p).since[edge],
        }
    }
}
