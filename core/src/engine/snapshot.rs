//! A snapshot of the engine: every column a view or a checkpoint reads,
//! shared chunk by chunk with the engine (see [`column`](super::column)).
//! Taking one costs a pointer copy per chunk; the engine keeps writing,
//! copying a chunk the first time it changes it afterwards.

use std::collections::HashMap;
use std::sync::Arc;

use super::column::Column;
use super::pages::{Ident, Named, PageState, top_list};
use super::periods::{PeriodTable, Sample, Slot, Totals};
use super::posts::Arena;
use super::tops::{TopBlocks, TopList, TopRef};
use super::{Engine, Limits, Usage};
use crate::event::Counts;
use crate::window::{CalendarKind, CalendarPeriod, Millis};

/// An edge of the rolling windows as of the snapshot.
#[derive(Debug, Clone)]
pub struct EdgeView {
    pub at: Millis,
    /// The quarter holding `at`.
    pub quarter: CalendarPeriod,
    left: Column<Totals>,
}

impl EdgeView {
    fn of(e: &super::rolling::Edge) -> EdgeView {
        EdgeView { at: e.at, quarter: e.quarter, left: e.left.clone() }
    }

    pub(super) fn left(&self) -> &Column<Totals> {
        &self.left
    }

    /// What of slot `slot` of quarter `q` lies before the edge.
    pub fn left_of(&self, q: CalendarPeriod, slot: usize) -> Totals {
        if q != self.quarter || slot >= self.left.len() {
            return Totals::default();
        }
        *self.left.get(slot)
    }
}

/// The posts and remembered event ids, for checkpoints only.
#[derive(Debug, Clone)]
pub(super) struct Durable {
    pub(super) arena: Arena,
    pub(super) big: HashMap<u32, Counts>,
    pub(super) event_ids: Vec<(crate::window::Quarter, Column<u64>)>,
}

#[derive(Debug, Clone)]
pub struct Snapshot {
    pub limits: Limits,
    pub watermark: Option<Millis>,
    pub usage: Usage,
    pub platforms: Vec<Arc<str>>,
    idents: Column<Ident>,
    states: Column<PageState>,
    names: Column<Option<Arc<Named>>>,
    tops: Column<TopRef>,
    top_blocks: TopBlocks,
    /// Every kept period with data: by kind, newest first.
    tables: Vec<PeriodTable>,
    /// Posts published before this count in no window.
    pub cutoff: Millis,
    pub(super) series: super::series::DaySeries,
    /// Per rolling duration of `limits.windows`, the start of the window
    /// and of its predecessor (empty before the first event).
    pub edges: Vec<[EdgeView; 2]>,
    /// Each input partition's watermark and pending jump.
    pub(super) guards: super::jump::Guards,
    /// Partitions that lost records (see [`gaps`](super::gaps)).
    pub gaps: super::gaps::Gaps,
    pub(super) durable: Option<Durable>,
}

impl Engine {
    /// What a view needs.
    pub fn snapshot(&self) -> Snapshot {
        let mut tables: Vec<PeriodTable> = self.periods.iter().flat_map(|k| k.ring.iter().flatten().cloned()).collect();
        tables.sort_by_key(|t| (t.period.kind, std::cmp::Reverse(t.period.index)));
        Snapshot {
            limits: self.limits,
            watermark: self.watermark,
            usage: self.usage(),
            platforms: self.pages.platforms.clone(),
            idents: self.pages.idents.clone(),
            states: self.pages.states.clone(),
            names: self.pages.names.clone(),
            tops: self.pages.tops.clone(),
            top_blocks: self.pages.top_blocks.blocks().clone(),
            tables,
            cutoff: self.cutoff,
            series: self.series.clone(),
            edges: self.edges.iter().map(|[s, s2]| [EdgeView::of(s), EdgeView::of(s2)]).collect(),
            guards: self.guards.clone(),
            gaps: self.gaps.clone(),
            durable: None,
        }
    }

    /// What a checkpoint needs: the view's columns, the posts and the
    /// remembered event ids.
    pub fn durable_snapshot(&self) -> Snapshot {
        let event_ids = self.event_ids.sets.iter().map(|s| (s.quarter, s.log.clone())).collect();
        let durable = Durable { arena: self.posts.arena.clone(), big: self.posts.big.clone(), event_ids };
        Snapshot { durable: Some(durable), ..self.snapshot() }
    }
}

impl Snapshot {
    /// Every kept period's table: by kind, newest first.
    pub(super) fn tables(&self) -> &[PeriodTable] {
        &self.tables
    }

    /// Numbers of the pages in use.
    pub fn pages(&self) -> impl Iterator<Item = u32> + '_ {
        self.idents.iter().enumerate().filter(|(_, i)| i.platform != u16::MAX).map(|(p, _)| p as u32)
    }

    /// One past the largest page number.
    pub fn page_bound(&self) -> u32 {
        self.idents.len() as u32
    }

    pub fn ident(&self, p: u32) -> &Ident {
        self.idents.get(p as usize)
    }

    pub fn platform(&self, p: u32) -> &Arc<str> {
        &self.platforms[usize::from(self.ident(p).platform)]
    }

    pub fn name(&self, p: u32) -> Option<&Named> {
        self.names.get(p as usize).as_deref()
    }

    pub fn top(&self, p: u32) -> Option<TopList<'_>> {
        top_list(self.states.get(p as usize), *self.tops.get(p as usize), &self.top_blocks)
    }

    /// Page `p`'s top list of quarter `q`: its live list when that is of
    /// `q`, else the one kept in `q`'s table, if any.
    pub fn top_of(&self, p: u32, q: crate::window::Quarter) -> Option<TopList<'_>> {
        if let Some(live) = self.top(p).filter(|t| t.quarter == q) {
            return Some(live);
        }
        let table =
            self.tables.iter().find(|t| t.period.kind == CalendarKind::Quarter && t.period.index == q.index())?;
        let (i, _) = table.slot(p)?;
        let list = table.top(i);
        (!list.is_empty()).then(|| self.list(q, list))
    }

    /// List `list` of quarter `q`, read from this snapshot's blocks.
    pub(super) fn list(&self, q: crate::window::Quarter, list: TopRef) -> TopList<'_> {
        TopList::new(q, list, &self.top_blocks)
    }

    pub(super) fn state(&self, p: u32) -> &PageState {
        self.states.get(p as usize)
    }

    /// Whether page `p` may lack figures: its events come from a partition
    /// with a history gap.
    pub fn history_complete(&self, p: u32) -> bool {
        let state = self.states.get(p as usize);
        !self.gaps.cover(state.partition(), state.split())
    }

    /// The page's latest follower sample overall.
    pub fn followers(&self, p: u32) -> Option<Sample> {
        self.states.get(p as usize).followers.get()
    }

    /// Every kept period with data: by kind, newest first.
    pub fn periods(&self) -> impl Iterator<Item = CalendarPeriod> + '_ {
        self.tables.iter().map(|t| t.period)
    }

    /// Page `p`'s slot in period `period`, with its index in the table.
    pub fn slot(&self, period: CalendarPeriod, p: u32) -> Option<(usize, &Slot)> {
        // The tables are sorted by kind, then newest first.
        let key = |t: &PeriodTable| (t.period.kind, std::cmp::Reverse(t.period.index));
        let i = self.tables.binary_search_by_key(&(period.kind, std::cmp::Reverse(period.index)), key).ok()?;
        self.tables[i].slot(p)
    }

    /// Totals of page `p`'s posts published at or after `edge.at`.
    pub fn since(&self, p: u32, edge: &EdgeView) -> Totals {
        let mut sum = Totals::default();
        let after = |t: &&PeriodTable| t.period.kind == CalendarKind::Quarter && t.period >= edge.quarter;
        for t in self.tables.iter().filter(after) {
            if let Some((i, slot)) = t.slot(p) {
                sum = sum.plus(&slot.totals().minus(&edge.left_of(t.period, i)));
            }
        }
        sum
    }

    /// Page `p`'s days with posts (days since the epoch) and their
    /// figures, in day order.
    pub fn days(&self, p: u32) -> impl Iterator<Item = (i32, Totals)> + '_ {
        let cutoff = super::posts::day_of(self.cutoff);
        // Quarters oldest first; each gives its days in order.
        let quarters = self.tables.iter().rev().filter(|t| t.period.kind == CalendarKind::Quarter);
        quarters
            .filter_map(move |t| Some((t.period, t.slot(p)?.0)))
            .flat_map(move |(q, i)| self.series.days(q, i, p))
            .filter(move |(d, _)| *d >= cutoff)
    }

    /// The edges of the rolling window of `days`.
    pub fn edges_of(&self, days: u32) -> Option<&[EdgeView; 2]> {
        let at = self.limits.windows.rolling().iter().position(|d| u32::from(*d) == days)?;
        self.edges.get(at)
    }
}
