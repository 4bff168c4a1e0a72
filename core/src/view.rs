//! The view: an immutable, query-ready picture of the engine at one instant,
//! built by the writer and published for HTTP and `/metrics` to read.
//!
//! Pages are sorted by (platform, page_id), so the tie order of docs/api.md#ordering is the
//! page index order, a platform filter is a contiguous range of pages, and a
//! page is found by binary search. Each window is a [`Table`] of rows, one per
//! page with at least one post in the window, in page order.

use std::sync::Arc;

use crate::engine::{Engine, Totals, Usage};
use crate::window::{Millis, Quarter, Rolling, Window};

/// A page as the view shows it.
#[derive(Debug, Clone)]
pub struct PageInfo {
    pub platform: Arc<str>,
    pub id: Arc<str>,
    pub name: Option<Arc<str>>,
    /// Top posts of the current quarter, by interactions, descending.
    pub top_posts: Vec<(Arc<str>, u64)>,
}

/// Which window a table holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Quarter(Quarter),
    Rolling,
    /// The rolling window's predecessor, for `previous_period_rank`.
    RollingPrevious,
}

/// One page's figures in one window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    /// Index into [`View::pages`].
    pub page: u32,
    pub totals: Totals,
    pub followers: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub period: Period,
    pub start: Millis,
    pub end: Millis,
    /// Rows in page order; only pages with at least one post.
    pub rows: Vec<Row>,
}

impl Table {
    pub fn row(&self, page: u32) -> Option<&Row> {
        self.rows.binary_search_by_key(&page, |r| r.page).ok().map(|i| &self.rows[i])
    }

    pub fn posts(&self) -> u64 {
        self.rows.iter().map(|r| r.totals.posts).sum()
    }
}

#[derive(Debug, Clone)]
pub struct View {
    pub watermark: Option<Millis>,
    pub pages: Vec<PageInfo>,
    /// Retained quarters, newest (current) first.
    pub quarters: Vec<Table>,
    pub rolling: Option<Table>,
    pub rolling_previous: Option<Table>,
    pub usage: Usage,
}

impl View {
    /// The view of an engine that has seen no event.
    pub fn empty() -> View {
        View {
            watermark: None,
            pages: Vec::new(),
            quarters: Vec::new(),
            rolling: None,
            rolling_previous: None,
            usage: Usage::default(),
        }
    }

    pub fn current(&self) -> Option<&Table> {
        self.quarters.first()
    }

    /// The table a user-facing window names, when the view holds it.
    pub fn table(&self, w: Window) -> Option<&Table> {
        match w {
            Window::Current => self.quarters.first(),
            Window::Previous => self.quarters.get(1),
            Window::Rolling => self.rolling.as_ref(),
            Window::Quarter(q) => self.quarter(q),
        }
    }

    pub fn quarter(&self, q: Quarter) -> Option<&Table> {
        self.quarters.iter().find(|t| t.period == Period::Quarter(q))
    }

    /// The table `previous_period_rank` compares a table with.
    pub fn predecessor(&self, t: &Table) -> Option<&Table> {
        match t.period {
            Period::Quarter(q) => self.quarter(q.previous()),
            Period::Rolling => self.rolling_previous.as_ref(),
            Period::RollingPrevious => None,
        }
    }

    /// The index of (platform, id) in [`pages`](Self::pages).
    pub fn find_page(&self, platform: &str, id: &str) -> Option<u32> {
        self.pages.binary_search_by(|p| (&*p.platform, &*p.id).cmp(&(platform, id))).ok().map(|i| i as u32)
    }

    /// The page indices of one platform: a contiguous range.
    pub fn platform_range(&self, platform: &str) -> std::ops::Range<u32> {
        let lo = self.pages.partition_point(|p| &*p.platform < platform);
        let hi = self.pages.partition_point(|p| &*p.platform <= platform);
        lo as u32..hi as u32
    }

    /// Builds the view of `engine` as it is now.
    pub fn build(engine: &Engine) -> View {
        let Some(watermark) = engine.watermark() else {
            return View { usage: engine.usage(), ..View::empty() };
        };
        let mut live: Vec<(u32, &crate::engine::Page)> = engine.pages().iter().collect();
        let platforms = engine.pages().platforms();
        live.sort_unstable_by(|a, b| {
            (&*platforms[usize::from(a.1.platform)], a.1.id.as_str())
                .cmp(&(&*platforms[usize::from(b.1.platform)], b.1.id.as_str()))
        });
        let mut position = vec![u32::MAX; live.iter().map(|(i, _)| *i as usize + 1).max().unwrap_or(0)];
        for (view_idx, (engine_idx, _)) in live.iter().enumerate() {
            position[*engine_idx as usize] = view_idx as u32;
        }
        let current = Quarter::containing(watermark);
        let oldest = current.minus(engine.limits().retained_quarters);
        let quarters =
            (0..=engine.limits().retained_quarters).map(|back| quarter_table(&live, current.minus(back))).collect();
        let (rolling, rolling_previous) = rolling_tables(engine, &live, &position, watermark);
        let pages = live
            .iter()
            .map(|(_, p)| {
                let mut top_posts: Vec<_> = p
                    .top_posts(current)
                    .iter()
                    .map(|t| (Arc::<str>::from(t.post_id.as_str()), t.interactions))
                    .collect();
                top_posts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                PageInfo {
                    platform: platforms[usize::from(p.platform)].clone(),
                    id: Arc::from(p.id.as_str()),
                    name: p.name_since(oldest).cloned(),
                    top_posts,
                }
            })
            .collect();
        View {
            watermark: Some(watermark),
            pages,
            quarters,
            rolling: Some(rolling),
            rolling_previous: Some(rolling_previous),
            usage: engine.usage(),
        }
    }
}

fn quarter_table(live: &[(u32, &crate::engine::Page)], q: Quarter) -> Table {
    let rows = live
        .iter()
        .enumerate()
        .filter_map(|(i, (_, page))| {
            let slot = page.slot(q)?;
            (slot.totals.posts > 0).then(|| Row {
                page: i as u32,
                totals: slot.totals,
                followers: slot.followers.as_ref().map(|s| s.value),
            })
        })
        .collect();
    Table { period: Period::Quarter(q), start: q.start(), end: q.end(), rows }
}

/// The rolling window and its predecessor, from one pass over all posts.
///
/// Followers: the rolling window uses the page's latest sample when it lies
/// in the window (exact). The predecessor uses the latest per-quarter sample
/// that lies in it, which can miss a later sample of the same quarter: an
/// approximation that only affects `previous_period_rank` of the per-follower
/// metric for `window=rolling`.
fn rolling_tables(
    engine: &Engine,
    live: &[(u32, &crate::engine::Page)],
    position: &[u32],
    wm: Millis,
) -> (Table, Table) {
    let r = Rolling::at(wm, engine.limits().rolling_days);
    let p = r.previous();
    let mut now = vec![Totals::default(); live.len()];
    let mut before = vec![Totals::default(); live.len()];
    for post in engine.posts() {
        let i = position[post.page as usize] as usize;
        if post.published >= r.start {
            now[i].add_post(&post.counts);
        } else if post.published >= p.start {
            before[i].add_post(&post.counts);
        }
    }
    let rows = |totals: Vec<Totals>, followers: &dyn Fn(&crate::engine::Page) -> Option<u64>| {
        totals
            .into_iter()
            .enumerate()
            .filter(|(_, t)| t.posts > 0)
            .map(|(i, totals)| Row { page: i as u32, totals, followers: followers(live[i].1) })
            .collect()
    };
    let in_window = |s: &crate::engine::Sample<u64>, w: Rolling| s.at >= w.start && s.at <= w.end;
    let rolling = rows(now, &|page| page.followers.as_ref().filter(|s| in_window(s, r)).map(|s| s.value));
    let previous = rows(before, &|page| {
        let slots = (0..=engine.limits().retained_quarters).filter_map(|b| page.slot(Quarter::containing(wm).minus(b)));
        slots.filter_map(|s| s.followers.as_ref()).filter(|s| s.at >= p.start && s.at < p.end).max().map(|s| s.value)
    });
    (
        Table { period: Period::Rolling, start: r.start, end: r.end, rows: rolling },
        Table { period: Period::RollingPrevious, start: p.start, end: p.end, rows: previous },
    )
}
