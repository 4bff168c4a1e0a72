//! The watches' series (docs/metrics.md#watches) and the recent changes
//! the API lists.
//!
//! - `engagement_watch_changes_total{watch,window,scope,group,kind}`: counters,
//!   created at zero as each watched ranking appears (`group`: the watch's
//!   groups, empty for one that ranks every page).
//! - `engagement_watch_rank{watch,window,scope,group,platform,page_id}`: the rank
//!   of the top N and of the watched pages of each watched ranking, from
//!   the detector's latest pictures, built at scrape time.
//! - `engagement_watch_change{watch,window,metric,scope,group,top_n,kind,
//!   platform,page_id,page_name,old_rank,new_rank}`: one series per change for the
//!   watch's `hold` after it happened, valued the places gained. This is
//!   what the alert rules select: a change is held far longer than a
//!   scrape interval, so no scrape misses it, and its labels name the page
//!   and both ranks. Per watched ranking at most one leader, `top_n`
//!   entries, `top_n` exits and one move per watched page are held; older
//!   ones give way.
//!
//! Every page label belongs to a page of a top N or a watched page, so the
//! series are bounded by the watch bounds of config/watches.rs.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime};

use prometheus::IntCounterVec;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;

use engagement_core::window::{WindowId, Windows};

use crate::alerts::rank_changes::detect::{Change, Kind, Picture, RankingKey, scope_label};
use crate::config::{Scope, Watch};

use super::top_pages::{family, gauge};

/// Changes kept for `GET /v1/rank-changes`.
pub const RECENT: usize = 100;

const RANK: (&str, &str) =
    ("engagement_watch_rank", "Rank (1 = first) of the top-N and watched pages of each watched ranking.");
const RANK_LABELS: [&str; 6] = ["watch", "window", "scope", "group", "platform", "page_id"];
const CHANGE: (&str, &str) = (
    "engagement_watch_change",
    "A watched ranking's change, held for the watch's hold after it happened; the value is the places gained.",
);
const CHANGE_LABELS: [&str; 12] = [
    "watch",
    "window",
    "metric",
    "scope",
    "group",
    "top_n",
    "kind",
    "platform",
    "page_id",
    "page_name",
    "old_rank",
    "new_rank",
];

/// A change as the API lists it, with the wall-clock time it was seen.
#[derive(Debug, Clone)]
pub struct Recent {
    pub at: SystemTime,
    pub change: Arc<Change>,
}

/// A change held as an alertable series until `until`.
struct Held {
    until: Instant,
    seen: Instant,
    change: Change,
}

/// Which held change a new one replaces: one leader per ranking, one
/// record per page and kind otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Slot {
    ranking: RankingKey,
    kind: Kind,
    page: Option<(Arc<str>, Arc<str>)>,
}

#[derive(Default)]
struct Board {
    pictures: Vec<(RankingKey, Arc<Picture>)>,
    held: HashMap<Slot, Held>,
    recent: VecDeque<Recent>,
}

/// The watches' metrics and recent changes, shared by the ranking loop
/// (writer), `/metrics` and the API (readers).
pub struct WatchBoard {
    watches: Arc<[Watch]>,
    /// Per watch, its `group` label.
    groups: Vec<String>,
    /// The `window` label of every window a watch can track.
    windows: Vec<(WindowId, String)>,
    changes: IntCounterVec,
    board: Mutex<Board>,
}

impl WatchBoard {
    /// The counters of rankings known in advance (not per-platform ones)
    /// are created at zero, so `increase()` works from the first scrape.
    pub(super) fn new(watches: Arc<[Watch]>, spec: &Windows, changes: IntCounterVec) -> WatchBoard {
        let groups: Vec<String> = watches.iter().map(Watch::group_label).collect();
        let windows = spec.relative().into_iter().map(|w| (w, w.to_string())).collect();
        for (i, w) in watches.iter().enumerate() {
            let scope = match &w.scope {
                Scope::All => "all",
                Scope::Platform(p) => p.as_str(),
                Scope::EachPlatform => continue,
            };
            for window in w.windows_in(spec) {
                let window = window.to_string();
                for kind in Kind::ALL {
                    changes.with_label_values(&[&w.name, &window, scope, &groups[i], kind.as_str()]);
                }
            }
        }
        WatchBoard { watches, groups, windows, changes, board: Mutex::default() }
    }

    fn lock(&self) -> MutexGuard<'_, Board> {
        // A poisoned board is still a consistent one: every write is a replace.
        self.board.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn labels<'a>(&'a self, key: &'a RankingKey) -> [&'a str; 4] {
        let watch = self.watches.get(key.watch).map_or("", |w| w.name.as_str());
        let group = self.groups.get(key.watch).map_or("", String::as_str);
        let window = self.windows.iter().find(|(w, _)| *w == key.window).map_or("", |(_, l)| l.as_str());
        [watch, window, scope_label(key.scope.as_deref()), group]
    }

    /// The detector's latest pictures; the counters of a ranking seen for
    /// the first time are created at zero.
    pub fn show<'p>(&self, pictures: impl Iterator<Item = (&'p RankingKey, &'p Arc<Picture>)>) {
        let mut list: Vec<(RankingKey, Arc<Picture>)> = pictures.map(|(k, p)| (k.clone(), p.clone())).collect();
        list.sort_by(|a, b| self.labels(&a.0).cmp(&self.labels(&b.0)));
        for (key, _) in &list {
            let [watch, window, scope, group] = self.labels(key);
            for kind in Kind::ALL {
                self.changes.with_label_values(&[watch, window, scope, group, kind.as_str()]);
            }
        }
        self.lock().pictures = list;
    }

    /// Counts `change`, holds it for its watch's hold and lists it.
    pub fn record(&self, change: Change, now: Instant) {
        let [watch, window, scope, group] = self.labels(&change.key);
        self.changes.with_label_values(&[watch, window, scope, group, change.kind.as_str()]).inc();
        let Some(w) = self.watches.get(change.key.watch) else { return };
        let (hold, cap) = (w.hold, cap(w, change.kind));
        let mut board = self.lock();
        let change = Arc::new(change);
        board.recent.push_front(Recent { at: SystemTime::now(), change: change.clone() });
        board.recent.truncate(RECENT);
        hold_change(&mut board.held, (*change).clone(), now, hold, cap);
    }

    /// The latest changes, newest first.
    pub fn recent(&self) -> Vec<Recent> {
        self.lock().recent.iter().cloned().collect()
    }

    /// Forgets held changes whose hold is over.
    fn expire(&self, now: Instant) {
        self.lock().held.retain(|_, h| h.until > now);
    }
}

/// How many changes of `kind` one ranking of `watch` holds at once.
fn cap(watch: &Watch, kind: Kind) -> usize {
    match kind {
        Kind::Leader => 1,
        Kind::Entered | Kind::Exited => watch.top_n,
        Kind::Moved => watch.pages.len(),
    }
}

/// Holds `change` in its slot. A watched page's successive moves merge
/// into one from its rank before the first (and vanish when it is back
/// there); an exit ends a held entry of the same page and the reverse.
fn hold_change(
    held: &mut HashMap<Slot, Held>,
    mut change: Change,
    now: Instant,
    hold: std::time::Duration,
    cap: usize,
) {
    let page = (change.page.platform.clone(), change.page.page_id.clone());
    let slot = |kind, page| Slot { ranking: change.key.clone(), kind, page };
    let opposite = match change.kind {
        Kind::Entered => Some(Kind::Exited),
        Kind::Exited => Some(Kind::Entered),
        Kind::Leader | Kind::Moved => None,
    };
    if let Some(kind) = opposite {
        held.remove(&slot(kind, Some(page.clone())));
    }
    let key = slot(change.kind, (change.kind != Kind::Leader).then_some(page));
    if change.kind == Kind::Moved {
        if let Some(earlier) = held.remove(&key) {
            change.old_rank = earlier.change.old_rank;
        }
        if change.old_rank == change.new_rank {
            return;
        }
    }
    held.insert(key.clone(), Held { until: now + hold, seen: now, change });
    let mut same: Vec<(Instant, Slot)> = held
        .iter()
        .filter(|(s, _)| s.ranking == key.ranking && s.kind == key.kind)
        .map(|(s, h)| (h.seen, s.clone()))
        .collect();
    if same.len() > cap {
        same.sort_by_key(|(seen, _)| *seen);
        for (_, s) in &same[..same.len() - cap] {
            held.remove(s);
        }
    }
}

fn rank_text(rank: Option<u32>) -> String {
    rank.map_or_else(|| "none".into(), |r| r.to_string())
}

/// The scrape-time collector of the rank and change gauges.
#[derive(Clone)]
pub(super) struct WatchSeries {
    board: Arc<WatchBoard>,
    descs: Vec<Desc>,
}

impl WatchSeries {
    pub(super) fn new(board: Arc<WatchBoard>) -> WatchSeries {
        let desc = |(name, help): (&str, &str), labels: &[&str]| {
            let labels = labels.iter().map(|l| l.to_string()).collect();
            Desc::new(name.into(), help.into(), labels, HashMap::new()).expect("valid desc")
        };
        WatchSeries { board, descs: vec![desc(RANK, &RANK_LABELS), desc(CHANGE, &CHANGE_LABELS)] }
    }

    fn ranks(&self, board: &Board) -> MetricFamily {
        let mut out = Vec::new();
        for (key, picture) in &board.pictures {
            let [watch, window, scope, group] = self.board.labels(key);
            let mut pages: Vec<_> = picture.top.iter().collect();
            pages.extend(
                picture
                    .watched
                    .iter()
                    .flatten()
                    .filter(|w| !picture.top.iter().any(|t| t.page_id == w.page_id && t.platform == w.platform)),
            );
            for p in pages {
                let labels = [watch, window, scope, group, &p.platform, &p.page_id];
                out.push(gauge(&RANK_LABELS, &labels, f64::from(p.rank)));
            }
        }
        family(RANK, out)
    }

    fn changes(&self, board: &Board) -> MetricFamily {
        let mut held: Vec<&Held> = board.held.values().collect();
        held.sort_by_key(|h| h.seen);
        let out = held
            .into_iter()
            .map(|h| {
                let c = &h.change;
                let [watch, window, scope, group] = self.board.labels(&c.key);
                let name = c.page.page_name.as_deref().unwrap_or(&c.page.page_id);
                let (old, new, top_n) = (rank_text(c.old_rank), rank_text(c.new_rank), c.top_n.to_string());
                let values = [
                    watch,
                    window,
                    c.metric.as_str(),
                    scope,
                    group,
                    &top_n,
                    c.kind.as_str(),
                    &c.page.platform,
                    &c.page.page_id,
                    name,
                    &old,
                    &new,
                ];
                gauge(&CHANGE_LABELS, &values, c.places_gained() as f64)
            })
            .collect();
        family(CHANGE, out)
    }
}

impl Collector for WatchSeries {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.board.expire(Instant::now());
        let board = self.board.lock();
        vec![self.ranks(&board), self.changes(&board)]
    }
}

#[cfg(test)]
mod tests;
