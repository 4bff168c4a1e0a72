//! The view: an immutable, query-ready picture of the engine at one
//! instant, published for HTTP, `/metrics` and rank-change detection.
//!
//! Building a view only takes a [`Snapshot`](crate::engine::Snapshot) (shared chunks: no copy of the
//! state), so the writer publishes it in microseconds. What queries need is
//! derived lazily, once per view, by whichever reader asks first:
//! - the pages in (platform, page_id) order, the tie order of every ranking;
//! - a [`Table`] per window the specification keeps (every retained period
//!   of every calendar kind, every rolling window and its predecessor): the
//!   pages with a post in the window, in that order (so a platform is a
//!   contiguous range), 4 bytes a page; a page's [`Row`] (its figures
//!   there) is computed when asked, from per-period totals and, for a
//!   rolling window and its predecessor, the rolling edges — per page,
//!   never per post;
//! - per (window, metric, platform, groups) asked for, the order of the
//!   rows, so a top-N answer is a slice and a rank a lookup;
//! - for a ranking within groups, its pages, from the [`Directory`] the
//!   preparer attached ([`View::attach`]), kept with the order.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, OnceLock};

pub mod search;
mod selection;
pub mod series;
mod source;

pub use selection::Selection;

use crate::directory::Directory;
use crate::engine::{Engine, Totals, Usage};
use crate::global::PageSet;
use crate::ranking::{Filter, Metric, order};
use crate::window::{CalendarKind, CalendarPeriod, Millis, Quarter, Rolling, WindowId, Windows};
use source::Source;

/// Which window a table holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Period {
    Calendar(CalendarPeriod),
    /// The rolling window of that many days.
    Rolling(u16),
    /// Its predecessor, for `previous_period_rank`.
    RollingPrevious(u16),
}

impl Period {
    /// The window's id as users name it, given the specification (the
    /// first rolling window is `rolling`); `None` for a predecessor.
    pub fn id(self, windows: &Windows) -> Option<WindowId> {
        match self {
            Period::Calendar(p) => Some(WindowId::Period(p)),
            Period::Rolling(d) if windows.rolling().first() == Some(&d) => Some(WindowId::Rolling(None)),
            Period::Rolling(d) => Some(WindowId::Rolling(Some(u32::from(d)))),
            Period::RollingPrevious(_) => None,
        }
    }
}

pub use crate::ranking::Row;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub period: Period,
    pub start: Millis,
    pub end: Millis,
    /// Pages in (platform, page_id) order; only pages with at least one post.
    pages: Vec<u32>,
    posts: u64,
}

impl Table {
    /// Pages with at least one post in the window.
    pub fn len(&self) -> usize {
        self.pages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pages.is_empty()
    }

    /// Posts in the window.
    pub fn posts(&self) -> u64 {
        self.posts
    }

    /// The pages, in (platform, page_id) order.
    pub fn pages(&self) -> &[u32] {
        &self.pages
    }
}

/// A page as the view shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageInfo<'v> {
    pub platform: &'v str,
    pub id: &'v str,
    pub name: Option<&'v str>,
    /// False when the page's events come from a partition that lost
    /// records before they were applied: its figures may be short.
    pub history_complete: bool,
}

/// The pages of a table (those a filter keeps) ordered by a metric, and
/// each one's rank.
#[derive(Debug)]
pub struct Order {
    /// The pages kept.
    pub selection: Selection,
    /// Indices into the selection, best first.
    pub rows: Vec<u32>,
    /// Per index into the selection, its 1-based rank.
    pub rank: Vec<u32>,
}

/// A ranking a view keeps the order of: the window's table, the metric,
/// the platform filter (`None`: all platforms), the groups (sorted; empty:
/// every page).
pub type RankingKey = (Period, Metric, Option<Arc<str>>, Arc<[String]>);

/// The directory of a view none was attached to.
static NO_DIRECTORY: LazyLock<Directory> = LazyLock::new(Directory::default);

/// Orders kept per view, at most: each costs 8 bytes per row, and the
/// keys come from queries.
pub const MAX_ORDERS: usize = 64;

#[derive(Debug)]
pub struct View {
    pub watermark: Option<Millis>,
    pub usage: Usage,
    src: Option<Source>,
    /// The windows kept.
    pub windows: Windows,
    /// Per calendar kind kept its retained periods (newest first), then per
    /// rolling window the window and its predecessor.
    periods: Vec<(Period, Millis, Millis)>,
    tables: Vec<OnceLock<Table>>,
    by_name: OnceLock<Vec<u32>>,
    folded: OnceLock<search::Folded>,
    orders: Mutex<HashMap<RankingKey, Arc<Order>>>,
    directory: OnceLock<Arc<Directory>>,
}

impl View {
    /// The view of an engine that has seen no event.
    pub fn empty() -> View {
        View::of(None)
    }

    /// Builds the view of `engine` as it is now (a snapshot: cheap).
    pub fn build(engine: &Engine) -> View {
        View::of(Some(Source::Engine(Box::new(engine.snapshot()))))
    }

    /// The view of shard mode's global page table.
    pub fn of_table(table: &crate::global::GlobalTable) -> View {
        View::of_pages(table.page_set())
    }

    /// The view of a set of pages read from the page-totals topic.
    pub fn of_pages(pages: PageSet) -> View {
        View::of(Some(Source::Pages(pages)))
    }

    fn of(src: Option<Source>) -> View {
        let watermark = src.as_ref().and_then(|s| s.watermark());
        let usage = src.as_ref().map(|s| s.usage()).unwrap_or_default();
        let mut periods = Vec::new();
        let windows = src.as_ref().map(Source::windows).unwrap_or_default();
        if let Some(wm) = watermark {
            for (kind, retention) in windows.calendar() {
                let current = kind.containing(wm);
                for back in 0..=retention {
                    let p = current.minus(back);
                    periods.push((Period::Calendar(p), p.start(), p.end()));
                }
            }
            for d in windows.rolling() {
                let r = Rolling::at(wm, u32::from(*d));
                let p = r.previous();
                periods.push((Period::Rolling(*d), r.start, r.end));
                periods.push((Period::RollingPrevious(*d), p.start, p.end));
            }
        }
        let tables = periods.iter().map(|_| OnceLock::new()).collect();
        View {
            watermark,
            usage,
            src,
            windows,
            periods,
            tables,
            by_name: OnceLock::new(),
            folded: OnceLock::new(),
            orders: Mutex::default(),
            directory: OnceLock::new(),
        }
    }

    /// Gives the view the directory its group rankings and page names
    /// read; the first call wins (the preparer makes it before publishing).
    pub fn attach(&self, directory: Arc<Directory>) {
        let _ = self.directory.set(directory);
    }

    /// The directory attached (an empty one before [`View::attach`]).
    pub fn directory(&self) -> &Directory {
        self.directory.get().map_or(&NO_DIRECTORY, |d| d)
    }

    fn src(&self) -> &Source {
        self.src.as_ref().expect("only a view with a watermark has tables")
    }

    /// Live pages in (platform, page_id) order.
    fn by_name(&self) -> &[u32] {
        self.by_name.get_or_init(|| {
            let Some(s) = &self.src else { return Vec::new() };
            let mut pages = s.live_pages();
            pages.sort_unstable_by(|a, b| (s.platform(*a), s.id(*a)).cmp(&(s.platform(*b), s.id(*b))));
            pages
        })
    }

    /// Page `p` as shown.
    pub fn page(&self, p: u32) -> PageInfo<'_> {
        let s = self.src();
        let (platform, id) = (s.platform(p), s.id(p));
        let seen = || s.name(p).filter(|n| self.cutoff().is_some_and(|c| n.at >= c)).map(|n| &*n.name);
        let name = self.directory().name_of(platform, id).or_else(seen);
        PageInfo { platform, id, name, history_complete: s.history_complete(p) }
    }

    /// How many pages may lack figures (`history_complete` false): O(pages)
    /// when a partition has a history gap, else none.
    pub fn incomplete_pages(&self) -> usize {
        self.src.as_ref().map_or(0, Source::incomplete_pages)
    }

    /// The top posts of the current quarter, by interactions, descending.
    pub fn top_posts(&self, p: u32) -> Vec<(&str, u64)> {
        let Some(current) = self.watermark.map(Quarter::containing) else { return Vec::new() };
        self.top_posts_of(p, current)
    }

    /// The top posts of quarter `q` (the current one or a kept one), by
    /// interactions, descending.
    pub fn top_posts_of(&self, p: u32, q: Quarter) -> Vec<(&str, u64)> {
        let mut posts = self.src().top_posts(p, q);
        posts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        posts
    }

    /// Posts published before this count in no window.
    fn cutoff(&self) -> Option<Millis> {
        Some(self.windows.cutoff(self.watermark?))
    }

    /// The number of page (platform, id).
    pub fn find_page(&self, platform: &str, id: &str) -> Option<u32> {
        let s = self.src.as_ref()?;
        let pages = self.by_name();
        let i = pages.binary_search_by(|p| (s.platform(*p), s.id(*p)).cmp(&(platform, id))).ok()?;
        Some(pages[i])
    }

    /// The pages whose folded id or name contains `folded` (a query folded
    /// by [`search::fold`]: case, accents, Arabic marks), in (platform, id)
    /// order: the first `limit` and how many match.
    pub fn search(&self, folded: &str, limit: usize) -> (Vec<u32>, usize) {
        let index = self.folded.get_or_init(|| {
            let Some(s) = &self.src else { return search::Folded::default() };
            search::Folded::new(self.by_name().iter().map(|&p| {
                let name = self.page(p).name.map(search::fold).unwrap_or_default();
                (p, format!("{}\0{name}", search::fold(s.id(p))))
            }))
        });
        index.find(folded, limit)
    }

    /// Every table, materialized: per calendar kind its retained periods
    /// newest first, then per rolling window the window and its predecessor.
    pub fn tables(&self) -> impl Iterator<Item = &Table> {
        (0..self.periods.len()).map(|i| self.table_at(i))
    }

    /// The tables users can name (every one but the rolling predecessors).
    pub fn windows(&self) -> impl Iterator<Item = &Table> {
        self.tables().filter(|t| !matches!(t.period, Period::RollingPrevious(_)))
    }

    /// The retained quarters' tables, newest (current) first.
    pub fn quarters(&self) -> impl Iterator<Item = &Table> {
        self.tables().filter(|t| matches!(t.period, Period::Calendar(p) if p.kind == CalendarKind::Quarter))
    }

    /// The current quarter's table, when quarters are kept.
    pub fn current(&self) -> Option<&Table> {
        self.table(WindowId::Relative { kind: CalendarKind::Quarter, back: 0 })
    }

    pub fn quarter(&self, q: Quarter) -> Option<&Table> {
        let p = CalendarPeriod { kind: CalendarKind::Quarter, index: q.index() };
        self.period_table(Period::Calendar(p))
    }

    /// The first rolling window's table.
    pub fn rolling(&self) -> Option<&Table> {
        self.table(WindowId::Rolling(None))
    }

    /// The table of `period`, when the view keeps it.
    pub fn period_table(&self, period: Period) -> Option<&Table> {
        self.position(period).map(|i| self.table_at(i))
    }

    /// The table a window id names, when the view holds it.
    pub fn table(&self, id: WindowId) -> Option<&Table> {
        let wm = self.watermark?;
        let period = match id {
            WindowId::Relative { kind, back } => Period::Calendar(kind.containing(wm).minus(u32::from(back))),
            WindowId::Period(p) => Period::Calendar(p),
            WindowId::Rolling(None) => Period::Rolling(*self.windows.rolling().first()?),
            WindowId::Rolling(Some(d)) => Period::Rolling(u16::try_from(d).ok()?),
        };
        self.period_table(period)
    }

    /// The table `previous_period_rank` compares a table with.
    pub fn predecessor(&self, t: &Table) -> Option<&Table> {
        match t.period {
            Period::Calendar(p) => self.period_table(Period::Calendar(p.previous())),
            Period::Rolling(d) => self.period_table(Period::RollingPrevious(d)),
            Period::RollingPrevious(_) => None,
        }
    }

    fn position(&self, period: Period) -> Option<usize> {
        self.periods.iter().position(|(p, _, _)| *p == period)
    }

    fn table_at(&self, i: usize) -> &Table {
        self.tables[i].get_or_init(|| {
            let (period, start, end) = self.periods[i];
            let mut posts = 0;
            let pages = self
                .by_name()
                .iter()
                .copied()
                .filter(|p| self.compute(period, *p).inspect(|r| posts += r.totals.posts).is_some())
                .collect();
            Table { period, start, end, pages, posts }
        })
    }

    /// Page `page`'s figures in the window of `period`; `None` without a
    /// post there.
    fn compute(&self, period: Period, page: u32) -> Option<Row> {
        let s = self.src();
        let row =
            |totals: Totals, followers: Option<u64>| (totals.posts > 0).then_some(Row { page, totals, followers });
        match period {
            Period::Calendar(p) => {
                let (totals, followers) = s.period(p, page)?;
                row(totals, followers.get().map(|f| f.value))
            }
            Period::Rolling(d) => {
                let edge = s.edge_at(d, 0)?;
                let wm = self.watermark.unwrap_or_default();
                let followers = s.followers(page).filter(|f| f.at >= edge && f.at <= wm).map(|f| f.value);
                row(s.since(page, d, 0), followers)
            }
            Period::RollingPrevious(d) => {
                let (edge, before) = (s.edge_at(d, 0)?, s.edge_at(d, 1)?);
                let totals = s.since(page, d, 1).minus(&s.since(page, d, 0));
                row(totals, previous_followers(s, page, before, edge))
            }
        }
    }

    /// The row of the `i`-th page of `t`.
    pub fn row_at(&self, t: &Table, i: usize) -> Row {
        let page = t.pages[i];
        self.compute(t.period, page).unwrap_or(Row { page, totals: Totals::default(), followers: None })
    }

    /// Every row of `t`, in page order (materialized: for tests and tools).
    pub fn rows(&self, t: &Table) -> Vec<Row> {
        (0..t.len()).map(|i| self.row_at(t, i)).collect()
    }

    /// The rows of `t` that `filter` keeps, in (platform, page_id) order,
    /// materialized (rankings are answered without this; tests and tools
    /// use it).
    pub fn filtered_rows(&self, t: &Table, filter: Filter<'_>) -> Vec<Row> {
        self.filtered(t, &filter).iter().map(|i| self.row_at(t, i)).collect()
    }

    /// The pages of `t` that `filter` keeps. A group no page is in keeps none.
    pub fn filtered(&self, t: &Table, filter: &Filter<'_>) -> Selection {
        let range = match filter.platform {
            None => 0..t.len(),
            Some(name) => {
                let platform = |p: &u32| self.src().platform(*p);
                let lo = t.pages.partition_point(|p| platform(p) < name);
                let hi = t.pages.partition_point(|p| platform(p) <= name);
                lo..hi
            }
        };
        if filter.groups.is_empty() {
            return Selection::Range(range);
        }
        let Some(members) = self.members(filter.groups) else { return Selection::Positions(Vec::new()) };
        let kept = |i: &usize| members.get(t.pages[*i] as usize).copied().unwrap_or(false);
        Selection::Positions(range.filter(kept).map(|i| i as u32).collect())
    }

    /// Per page number, whether the page is in every one of `groups`
    /// (`None`: a group no page is in). Found from the directory's side
    /// when the groups hold few pages (a pass over the directory and a
    /// binary search per member), else from the view's (a lookup per page).
    fn members(&self, groups: &[String]) -> Option<Vec<bool>> {
        let dir = self.directory();
        let ids = groups.iter().map(|g| dir.group(g)).collect::<Option<Vec<_>>>()?;
        let pages = self.by_name();
        let mut members = vec![false; pages.iter().max().map_or(0, |m| *m as usize + 1)];
        let smallest = ids.iter().map(|g| dir.group_pages(*g) as usize).min().unwrap_or(0);
        if smallest.saturating_mul(8) < pages.len() {
            for (platform, id) in dir.pages_in(&ids) {
                if let Some(p) = self.find_page(platform, id) {
                    members[p as usize] = true;
                }
            }
        } else {
            let s = self.src();
            for p in pages {
                members[*p as usize] = dir.has_all(s.platform(*p), s.id(*p), &ids);
            }
        }
        Some(members)
    }

    /// The pages of `t` that `filter` keeps, ordered by `metric`, with the
    /// rank of each; computed once per view and kept.
    pub fn order(&self, t: &Table, metric: Metric, filter: &Filter<'_>) -> Arc<Order> {
        let key = (t.period, metric, filter.platform.map(Arc::from), groups_key(filter.groups));
        if let Some(o) = self.orders.lock().expect("order cache lock").get(&key) {
            return o.clone();
        }
        let selection = self.filtered(t, filter);
        let rows: Vec<Row> = selection.iter().map(|i| self.row_at(t, i)).collect();
        let sorted = order(&rows, metric);
        let mut rank = vec![0; rows.len()];
        for (i, r) in sorted.iter().enumerate() {
            rank[*r as usize] = i as u32 + 1;
        }
        let computed = Arc::new(Order { selection, rows: sorted, rank });
        let mut orders = self.orders.lock().expect("order cache lock");
        if orders.len() >= MAX_ORDERS {
            return computed;
        }
        orders.entry(key).or_insert(computed).clone()
    }

    /// The rankings this view keeps orders of, for the next view to prepare.
    pub fn prepared(&self) -> Vec<RankingKey> {
        self.orders.lock().expect("order cache lock").keys().cloned().collect()
    }

    /// Computes, before anyone asks, the orders of `keys` (those the previous
    /// view was asked for) and of the rankings `/metrics` and rank-change
    /// detection always read (interactions, all platforms, in the windows
    /// that move with the watermark), with each one's predecessor (for
    /// `previous_period_rank`).
    pub fn prepare(&self, keys: &[RankingKey]) {
        let always = self
            .windows
            .relative()
            .into_iter()
            .filter_map(|w| Some((self.table(w)?.period, Metric::Interactions, None, groups_key(&[]))));
        let wanted: Vec<RankingKey> = always.chain(keys.iter().cloned()).take(MAX_ORDERS / 2).collect();
        for (period, metric, platform, groups) in wanted {
            let filter = Filter { platform: platform.as_deref(), groups: &groups };
            let Some(t) = self.position(period).map(|i| self.table_at(i)) else { continue };
            self.order(t, metric, &filter);
            if let Some(before) = self.predecessor(t) {
                self.order(before, metric, &filter);
            }
        }
    }

    /// Entries `offset .. offset + limit` of a ranking, with their ranks.
    pub fn ranking(
        &self,
        t: &Table,
        metric: Metric,
        filter: &Filter<'_>,
        offset: usize,
        limit: usize,
    ) -> Vec<(u32, Row)> {
        let o = self.order(t, metric, filter);
        let end = offset.saturating_add(limit).min(o.rows.len());
        (offset.min(end)..end).map(|i| (i as u32 + 1, self.row_at(t, o.selection.get(o.rows[i] as usize)))).collect()
    }

    /// The rank of page `page` in a ranking, if it has a post there.
    pub fn rank_of(&self, t: &Table, metric: Metric, filter: &Filter<'_>, page: u32) -> Option<u32> {
        let i = self.position_of(t, page)?;
        let o = self.order(t, metric, filter);
        Some(o.rank[o.selection.index_of(i)?])
    }

    /// The row of page `page` in `t`, if it has a post there.
    pub fn row(&self, t: &Table, page: u32) -> Option<Row> {
        self.position_of(t, page).map(|i| self.row_at(t, i))
    }

    /// Where page `page` stands in `t` (pages are in name order: a binary
    /// search).
    fn position_of(&self, t: &Table, page: u32) -> Option<usize> {
        let s = self.src.as_ref()?;
        let key = |p: u32| (s.platform(p), s.id(p));
        t.pages.binary_search_by(|p| key(*p).cmp(&key(page))).ok()
    }
}

/// A ranking key's groups: sorted and distinct, so that the same groups in
/// another order share one order.
fn groups_key(groups: &[String]) -> Arc<[String]> {
    let mut sorted = groups.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    sorted.into()
}

/// The previous window's follower count: the latest per-period sample that
/// lies in it (of any kind kept), which can miss a later sample of the same
/// period (an approximation that only affects `previous_period_rank` of
/// the per-follower metric for a rolling window; see docs/operations.md).
fn previous_followers(s: &Source, p: u32, start: Millis, end: Millis) -> Option<u64> {
    s.period_followers(p)
        .into_iter()
        .filter_map(|f| f.get())
        .filter(|f| f.at >= start && f.at < end)
        .max_by_key(|f| (f.at, f.value))
        .map(|f| f.value)
}
