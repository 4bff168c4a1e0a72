//! Watch detection: for each configured watch (config/watches.rs), each of
//! its windows and each ranking of its scope (all platforms, one platform,
//! or each platform apart), compares the watched ranking in successive
//! views and says what changed: a new leader, a page entering or leaving
//! the top N, a watched page moving (docs/metrics.md#watches).
//!
//! Quiet while catching up, like the legacy rank changes: a ranking is
//! compared only between two views both built while the daemon was ready
//! and of the same period, so a restart, a replay or a quarter rollover
//! only moves the baseline. A ranking seen for the first time (a platform
//! that just appeared) only becomes a baseline too.
//!
//! Pure over views: no clock, no I/O; the caller counts, exports and
//! publishes what [`Detector::observe`] returns.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use engagement_core::ranking::{Filter, Metric};
use engagement_core::view::{Period, Row, Table, View};
use engagement_core::window::{CalendarPeriod, WindowId};

use crate::config::{MAX_PLATFORM_SCOPES, Scope, Watch};

/// What happened in a watched ranking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Another page is #1.
    Leader,
    /// A page is in the top N and was not at the previous run.
    Entered,
    /// A page was in the top N and is not any more.
    Exited,
    /// A watched page's rank changed.
    Moved,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Leader, Kind::Entered, Kind::Exited, Kind::Moved];

    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Leader => "leader",
            Kind::Entered => "entered",
            Kind::Exited => "exited",
            Kind::Moved => "moved",
        }
    }
}

/// The `scope` label of a ranking: `all` for every platform together, else
/// the platform. Unambiguous within one watch, whose rankings are either
/// all-platform or per platform.
pub fn scope_label(scope: Option<&str>) -> &str {
    scope.unwrap_or("all")
}

/// A page's place in a watched ranking.
#[derive(Debug, Clone, PartialEq)]
pub struct Placed {
    pub platform: Arc<str>,
    pub page_id: Arc<str>,
    pub page_name: Option<Arc<str>>,
    pub rank: u32,
    pub interactions: u64,
    /// The ranking metric's value (`None` where undefined, e.g. no followers).
    pub value: Option<f64>,
}

impl Placed {
    fn same_page(&self, other: &Placed) -> bool {
        self.platform == other.platform && self.page_id == other.page_id
    }
}

/// One watched ranking in one view: its top N and its watched pages.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Picture {
    pub period: Option<Period>,
    pub top: Vec<Placed>,
    /// Parallel to the watch's `pages`: `None` where the page has no rank here.
    pub watched: Vec<Option<Placed>>,
}

/// Which watched ranking: the watch (its index), the window, the scope.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RankingKey {
    pub watch: usize,
    pub window: WindowId,
    pub scope: Option<Arc<str>>,
}

/// One change, with what alerts, events and the API say about it.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchChange {
    pub key: RankingKey,
    pub watch: Arc<str>,
    /// The watch's groups, comma-separated (empty: every page).
    pub group: Arc<str>,
    pub metric: Metric,
    pub top_n: usize,
    /// The calendar period a relative window (`current`, `previous-month`,
    /// ...) stood for; `None` for rolling.
    pub period: Option<CalendarPeriod>,
    pub kind: Kind,
    /// The page; for [`Kind::Exited`], as it is now when it still has a row.
    pub page: Placed,
    /// Rank at the previous run; `None` when it was outside the top N (and not watched).
    pub old_rank: Option<u32>,
    /// Rank now; `None` when the page has no row in the ranking any more.
    pub new_rank: Option<u32>,
}

impl WatchChange {
    /// Places gained (negative: lost); a missing rank counts as `top_n + 1`.
    pub fn places_gained(&self) -> i64 {
        let at = |r: Option<u32>| r.map_or(self.top_n as i64 + 1, i64::from);
        at(self.old_rank) - at(self.new_rank)
    }
}

struct Baseline {
    ready: bool,
    picture: Arc<Picture>,
}

/// The last picture of every watched ranking.
pub struct Detector {
    watches: Arc<[Watch]>,
    baselines: HashMap<RankingKey, Baseline>,
}

impl Detector {
    pub fn new(watches: Arc<[Watch]>) -> Detector {
        Detector { watches, baselines: HashMap::new() }
    }

    pub fn watches(&self) -> &[Watch] {
        &self.watches
    }

    /// Takes the pictures of `view`, returns what changed since the last
    /// view (nothing unless both views were built while `ready`) and keeps
    /// the pictures as the new baselines.
    pub fn observe(&mut self, view: &View, ready: bool) -> Vec<WatchChange> {
        let mut changes = Vec::new();
        let mut seen = HashSet::new();
        for (i, watch) in self.watches.clone().iter().enumerate() {
            for window in watch.windows_in(&view.windows) {
                let table = view.table(window);
                for scope in scopes(view, table, &watch.scope) {
                    let key = RankingKey { watch: i, window, scope };
                    let picture = Arc::new(picture(view, table, watch, key.scope.as_deref()));
                    let new = Baseline { ready, picture: picture.clone() };
                    if let Some(old) = self.baselines.insert(key.clone(), new) {
                        let comparable = ready && old.ready && old.picture.period.is_some();
                        if comparable && old.picture.period == picture.period {
                            changes.extend(compare(&key, watch, &old.picture, &picture));
                        }
                    }
                    seen.insert(key);
                }
            }
        }
        // A platform that left a per-platform watch starts afresh if it returns.
        self.baselines.retain(|k, _| seen.contains(k));
        changes
    }

    /// The latest picture of every watched ranking, for the rank gauges.
    pub fn pictures(&self) -> impl Iterator<Item = (&RankingKey, &Arc<Picture>)> {
        self.baselines.iter().map(|(k, b)| (k, &b.picture))
    }
}

/// The rankings of a scope in `table`: every platform together, one
/// platform, or the [`MAX_PLATFORM_SCOPES`] platforms with the most pages
/// (ties by name), in name order.
fn scopes(view: &View, table: Option<&Table>, scope: &Scope) -> Vec<Option<Arc<str>>> {
    match scope {
        Scope::All => vec![None],
        Scope::Platform(p) => vec![Some(Arc::from(p.as_str()))],
        Scope::EachPlatform => {
            let Some(t) = table else { return Vec::new() };
            // Rows are in (platform, page_id) order: a platform is a run.
            let mut runs: Vec<(&str, usize)> = Vec::new();
            for &page in t.pages() {
                let platform = view.page(page).platform;
                match runs.last_mut() {
                    Some((p, n)) if *p == platform => *n += 1,
                    _ => runs.push((platform, 1)),
                }
            }
            runs.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
            runs.truncate(MAX_PLATFORM_SCOPES);
            runs.sort_by(|a, b| a.0.cmp(b.0));
            runs.into_iter().map(|(p, _)| Some(Arc::from(p))).collect()
        }
    }
}

fn placed(view: &View, metric: Metric, rank: u32, row: &Row) -> Placed {
    let p = view.page(row.page);
    Placed {
        platform: p.platform.into(),
        page_id: p.id.into(),
        page_name: p.name.map(Arc::from),
        rank,
        interactions: row.totals.interactions(),
        value: metric.value(row),
    }
}

/// The watched ranking `scope` of `table`: its top N and watched pages.
pub fn picture(view: &View, table: Option<&Table>, watch: &Watch, scope: Option<&str>) -> Picture {
    let Some(t) = table else { return Picture::default() };
    let filter = Filter { platform: scope, groups: &watch.groups };
    let top = view
        .ranking(t, watch.metric, &filter, 0, watch.top_n)
        .into_iter()
        .map(|(rank, row)| placed(view, watch.metric, rank, &row))
        .collect();
    let watched = watch
        .pages
        .iter()
        .map(|p| {
            let page = view.find_page(&p.platform, &p.page_id)?;
            let rank = view.rank_of(t, watch.metric, &filter, page)?;
            Some(placed(view, watch.metric, rank, &view.row(t, page)?))
        })
        .collect();
    Picture { period: Some(t.period), top, watched }
}

/// What changed from `old` to `new` in one watched ranking: the new
/// leader, then entries in rank order, exits, watched pages' moves.
fn compare(key: &RankingKey, watch: &Watch, old: &Picture, new: &Picture) -> Vec<WatchChange> {
    let change = |kind, page: &Placed, old_rank, new_rank| WatchChange {
        key: key.clone(),
        watch: Arc::from(watch.name.as_str()),
        group: Arc::from(watch.group_label()),
        metric: watch.metric,
        top_n: watch.top_n,
        period: match new.period {
            Some(Period::Calendar(p)) => Some(p),
            _ => None,
        },
        kind,
        page: page.clone(),
        old_rank,
        new_rank,
    };
    let find = |list: &[Placed], p: &Placed| list.iter().find(|o| o.same_page(p)).map(|o| o.rank);
    let mut out = Vec::new();
    // A ranking that had no leader gets its first one quietly.
    if let (Some(was), Some(now)) = (old.top.first(), new.top.first()) {
        if !was.same_page(now) {
            out.push(change(Kind::Leader, now, find(&old.top, now), Some(1)));
        }
    }
    for page in new.top.iter().filter(|n| find(&old.top, n).is_none()) {
        out.push(change(Kind::Entered, page, None, Some(page.rank)));
    }
    for page in old.top.iter().filter(|o| find(&new.top, o).is_none()) {
        let now = now_rank(new, watch, page);
        out.push(change(Kind::Exited, now.as_ref().unwrap_or(page), Some(page.rank), now.as_ref().map(|p| p.rank)));
    }
    for (was, now) in old.watched.iter().zip(&new.watched) {
        let (was_rank, now_rank) = (was.as_ref().map(|p| p.rank), now.as_ref().map(|p| p.rank));
        if let (true, Some(page)) = (was_rank != now_rank, now.as_ref().or(was.as_ref())) {
            out.push(change(Kind::Moved, page, was_rank, now_rank));
        }
    }
    out
}

/// Where a page that left the top N is now, when the picture knows (it is
/// watched); otherwise `None`.
fn now_rank(new: &Picture, watch: &Watch, page: &Placed) -> Option<Placed> {
    let i = watch.pages.iter().position(|p| *p.platform == *page.platform && *p.page_id == *page.page_id)?;
    new.watched.get(i)?.clone()
}

#[cfg(test)]
mod tests;
