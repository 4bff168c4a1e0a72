//! Where a view reads pages from: one engine's snapshot, or shard mode's
//! global page table (see [`global`](crate::global)). Both answer the same
//! questions, so every ranking and page answer is computed by one code.

use crate::engine::{Named, Sample, Snapshot, Totals, Usage};
use crate::global::{PageRecord, PageSet};
use crate::window::{CalendarPeriod, DAY_MS, Millis, Quarter, Windows};

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

    pub fn windows(&self) -> Windows {
        match self {
            Source::Engine(s) => s.limits.windows,
            Source::Pages(s) => s.windows,
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

    /// Whether page `p`'s figures are whole: none of its input partitions
    /// lost records before they were applied (see
    /// [`gaps`](crate::engine::gaps)).
    pub fn history_complete(&self, p: u32) -> bool {
        match self {
            Source::Engine(s) => s.history_complete(p),
            Source::Pages(s) => s.history_complete(Self::record(s, p)),
        }
    }

    /// How many pages may lack figures (`history_complete` false).
    pub fn incomplete_pages(&self) -> usize {
        match self {
            Source::Engine(s) if s.gaps.is_empty() => 0,
            Source::Pages(s) if s.gaps.is_empty() => 0,
            _ => self.live_pages().into_iter().filter(|p| !self.history_complete(*p)).count(),
        }
    }

    /// The page's top posts of quarter `q`: its live list, or the one kept
    /// for an earlier quarter.
    pub fn top_posts(&self, p: u32, q: Quarter) -> Vec<(&str, u64)> {
        match self {
            Source::Engine(s) => {
                s.top_of(p, q).map(|t| t.posts().map(|p| (p.id, p.interactions)).collect()).unwrap_or_default()
            }
            Source::Pages(s) => {
                let r = Self::record(s, p);
                let list = r.top.iter().chain(&r.kept).find(|(tq, _)| *tq == q);
                list.map(|(_, posts)| posts.iter().map(|(id, n)| (&**id, *n)).collect()).unwrap_or_default()
            }
        }
    }

    /// The page's days with posts (days since the epoch) and their
    /// figures, in day order.
    pub fn days(&self, p: u32) -> Vec<(i32, Totals)> {
        match self {
            Source::Engine(s) => s.days(p).collect(),
            Source::Pages(s) => Self::record(s, p).days.clone(),
        }
    }

    /// The latest follower sample overall.
    pub fn followers(&self, p: u32) -> Option<Sample> {
        match self {
            Source::Engine(s) => s.followers(p),
            Source::Pages(s) => Self::record(s, p).followers.get(),
        }
    }

    /// The page's totals and follower sample in period `period`, if it has a slot there.
    pub fn period(&self, period: CalendarPeriod, p: u32) -> Option<(Totals, Sample)> {
        match self {
            Source::Engine(s) => s.slot(period, p).map(|(_, slot)| (slot.totals(), slot.followers)),
            Source::Pages(s) => {
                Self::record(s, p).periods.iter().find(|f| f.period == period).map(|f| (f.totals, f.followers))
            }
        }
    }

    /// The follower samples of every period (of every kind) of page `p`.
    pub fn period_followers(&self, p: u32) -> Vec<Sample> {
        match self {
            Source::Engine(s) => s.periods().filter_map(|q| s.slot(q, p)).map(|(_, slot)| slot.followers).collect(),
            Source::Pages(s) => Self::record(s, p).periods.iter().map(|f| f.followers).collect(),
        }
    }

    /// The start of the rolling window of `days` (`edge` 0) or of its
    /// predecessor (1).
    pub fn edge_at(&self, days: u16, edge: usize) -> Option<Millis> {
        match self {
            Source::Engine(s) => s.edges_of(u32::from(days)).map(|e| e[edge].at),
            Source::Pages(s) => {
                let span = Millis::from(days) * DAY_MS;
                s.watermark.map(|wm| wm - (edge as i64 + 1) * span)
            }
        }
    }

    /// Totals of page `p`'s posts published at or after edge `edge` of the
    /// rolling window of `days`.
    pub fn since(&self, p: u32, days: u16, edge: usize) -> Totals {
        match self {
            Source::Engine(s) => s.edges_of(u32::from(days)).map(|e| s.since(p, &e[edge])).unwrap_or_default(),
            Source::Pages(s) => {
                let since = Self::record(s, p).since.iter().find(|(d, _)| *d == days);
                since.map(|(_, t)| t[edge]).unwrap_or_default()
            }
        }
    }
}
