//! Detection: for each configured watch (config/watches.rs), each of its
//! windows and each ranking of its scope (all platforms, one platform, or
//! each platform apart), compares the watched ranking with its last ready
//! picture and says what changed: a new leader, a page entering or leaving
//! the top N, a watched page moving (docs/metrics.md#rank-changes).
//!
//! A page's entry into a top N (or exit) is reported once it has stayed in
//! (out) for the watch's `settle`, so a page flapping at rank N is quiet;
//! a new leader and a watched page's move are reported at once.
//!
//! A ranking is compared only in a view built while the daemon is ready,
//! against the last picture of the same period taken while ready. So a
//! fresh start or a first catch-up only sets the baseline; a spell out of
//! readiness (catching up after a stall, a partition taken over in shard
//! mode) is reported once, as the net change across it; and the rollover
//! of a period (a new quarter, month, ...) only moves the baseline. A
//! ranking seen for the first time (a platform that just appeared) is a
//! baseline too.
//!
//! Pure over views and the instants it is given: no clock, no I/O; the caller counts, exports and
//! publishes what [`Detector::observe`] returns.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use engagement_core::ranking::{Filter, Metric};
use engagement_core::view::{Period, Row, Table, View};
use engagement_core::window::{CalendarPeriod, Millis, WindowId};

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
pub struct Change {
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
    /// The watermark of the view the change was seen in.
    pub watermark: Option<Millis>,
}

impl Change {
    /// Places gained (negative: lost); a missing rank counts as `top_n + 1`.
    pub fn places_gained(&self) -> i64 {
        let at = |r: Option<u32>| r.map_or(self.top_n as i64 + 1, i64::from);
        at(self.old_rank) - at(self.new_rank)
    }
}

/// What one view showed: the changes, and the windows whose rankings
/// entered another period (their baselines moved without a report).
#[derive(Debug, Default)]
pub struct Observed {
    pub changes: Vec<Change>,
    pub rolled_over: Vec<WindowId>,
}

/// A ranking's top N as last reported, and the pages waiting for their
/// entry or exit to settle, each since when.
struct Members {
    top: Vec<Placed>,
    pending: Vec<(Placed, Instant)>,
}

/// What a ranking is compared with: its last picture taken while ready,
/// and its reported members.
struct Tracked {
    baseline: Arc<Picture>,
    members: Members,
}

impl Tracked {
    fn new(picture: Arc<Picture>) -> Tracked {
        let members = Members { top: picture.top.clone(), pending: Vec::new() };
        Tracked { baseline: picture, members }
    }
}

/// The latest picture of every watched ranking, and what the next ready
/// view is compared with.
pub struct Detector {
    watches: Arc<[Watch]>,
    latest: HashMap<RankingKey, Arc<Picture>>,
    tracked: HashMap<RankingKey, Tracked>,
}

impl Detector {
    pub fn new(watches: Arc<[Watch]>) -> Detector {
        Detector { watches, latest: HashMap::new(), tracked: HashMap::new() }
    }

    pub fn watches(&self) -> &[Watch] {
        &self.watches
    }

    /// Takes the pictures of `view`, seen at `now`; when it was built
    /// while `ready`, returns what changed since the last ready view and
    /// keeps its pictures as the new baselines.
    pub fn observe(&mut self, view: &View, ready: bool, now: Instant) -> Observed {
        let mut seen = Observed::default();
        let mut keys = HashSet::new();
        for (i, watch) in self.watches.clone().iter().enumerate() {
            for window in watch.windows_in(&view.windows) {
                let table = view.table(window);
                for scope in scopes(view, table, &watch.scope) {
                    let key = RankingKey { watch: i, window, scope };
                    let picture = Arc::new(picture(view, table, watch, key.scope.as_deref()));
                    self.latest.insert(key.clone(), picture.clone());
                    if ready && picture.period.is_some() {
                        match self.tracked.get_mut(&key) {
                            Some(t) if t.baseline.period == picture.period => {
                                let at = (now, view.watermark);
                                seen.changes.extend(compare(&key, watch, &mut t.members, &t.baseline, &picture, at));
                                t.baseline = picture;
                            }
                            Some(t) => {
                                *t = Tracked::new(picture);
                                if !seen.rolled_over.contains(&window) {
                                    seen.rolled_over.push(window);
                                }
                            }
                            None => {
                                self.tracked.insert(key.clone(), Tracked::new(picture));
                            }
                        }
                    }
                    keys.insert(key);
                }
            }
        }
        // A platform that left a per-platform watch starts afresh if it returns.
        self.latest.retain(|k, _| keys.contains(k));
        self.tracked.retain(|k, _| keys.contains(k));
        seen
    }

    /// The latest picture of every watched ranking, for the rank gauges.
    pub fn pictures(&self) -> impl Iterator<Item = (&RankingKey, &Arc<Picture>)> {
        self.latest.iter()
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

/// What changed in one watched ranking from `old` (and its reported
/// `members`) to `new`, seen `at` an instant and a watermark: the new
/// leader, then settled entries in rank order, settled exits, watched
/// pages' moves. `members` becomes what was reported.
fn compare(
    key: &RankingKey,
    watch: &Watch,
    members: &mut Members,
    old: &Picture,
    new: &Picture,
    at: (Instant, Option<Millis>),
) -> Vec<Change> {
    let (now, watermark) = at;
    let change = |kind, page: &Placed, old_rank, new_rank| Change {
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
        watermark,
    };
    let find = |list: &[Placed], p: &Placed| list.iter().find(|o| o.same_page(p)).map(|o| o.rank);
    let mut out = Vec::new();
    // A ranking that had no leader gets its first one quietly.
    if let (Some(was), Some(now)) = (old.top.first(), new.top.first()) {
        if !was.same_page(now) {
            out.push(change(Kind::Leader, now, find(&old.top, now), Some(1)));
        }
    }
    // Since when each page has waited to settle in or out; it waits anew
    // when it is back where it was reported.
    let since = |p: &Placed| members.pending.iter().find(|(q, _)| q.same_page(p)).map_or(now, |(_, t)| *t);
    let settled = |t: Instant| now.saturating_duration_since(t) >= watch.settle;
    let mut pending = Vec::new();
    let mut entered = Vec::new();
    for page in &new.top {
        if let Some(m) = members.top.iter_mut().find(|m| m.same_page(page)) {
            *m = page.clone();
            continue;
        }
        match since(page) {
            t if settled(t) => {
                out.push(change(Kind::Entered, page, None, Some(page.rank)));
                entered.push(page.clone());
            }
            t => pending.push((page.clone(), t)),
        }
    }
    let mut exits = Vec::new();
    members.top.retain(|m| {
        if find(&new.top, m).is_some() {
            return true;
        }
        match since(m) {
            t if settled(t) => {
                let now = now_rank(new, watch, m);
                exits.push(change(Kind::Exited, now.as_ref().unwrap_or(m), Some(m.rank), now.as_ref().map(|p| p.rank)));
                false
            }
            t => {
                pending.push((m.clone(), t));
                true
            }
        }
    });
    out.append(&mut exits);
    members.top.append(&mut entered);
    members.pending = pending;
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
