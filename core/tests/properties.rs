//! Property tests of the core: order independence, idempotent redelivery,
//! and agreement with a deliberately naive reference model on random streams
//! mixing snapshots, deltas, repeated ids, conflicts, several quarters and
//! invalid records. 1,000 cases per property (PROPTEST_CASES overrides).

use std::collections::{BTreeMap, HashSet};

use engagement_core::engine::{Engine, Outcome};
use engagement_core::event::{Event, Tracking, decode};
use engagement_core::ranking::{Filter, Metric, top};
use engagement_core::view::series::{Bucket, SeriesError};
use engagement_core::view::{Period, Table, View};
use engagement_core::window::{CalendarKind, CalendarPeriod, DAY_MS, Millis, Rolling};
use proptest::prelude::*;

mod common;

use common::*;

fn run(engine: &mut Engine, records: &[String]) {
    for r in records {
        if let Ok(ev) = decode(r.as_bytes(), &cx()) {
            engine.apply(&ev);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn any_permutation_of_snapshots_ranks_the_same(
        (records, shuffled) in proptest::collection::vec(event(true), 1..120)
            .prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle()))
    ) {
        let (mut a, mut b) = (Engine::new(*LIMITS), Engine::new(*LIMITS));
        run(&mut a, &records.iter().map(render).collect::<Vec<_>>());
        run(&mut b, &shuffled.iter().map(render).collect::<Vec<_>>());
        prop_assert_eq!(rankings(&View::build(&a)), rankings(&View::build(&b)));
    }

    #[test]
    fn redelivering_a_prefix_changes_nothing(
        records in proptest::collection::vec(record(), 1..150), cut in any::<prop::sample::Index>()
    ) {
        let json: Vec<String> = records.iter().map(render).collect();
        let mut once = Engine::new(*LIMITS);
        run(&mut once, &json);
        let mut twice = Engine::new(*LIMITS);
        run(&mut twice, &json);
        let prefix = &json[..cut.index(json.len() + 1)];
        let before = rankings(&View::build(&twice));
        for r in prefix {
            if let Ok(ev) = decode(r.as_bytes(), &cx()) {
                let o = twice.apply(&ev);
                prop_assert!(o != Outcome::Applied || ev.kind == Tracking::Delta && ev.event_id.is_none(),
                    "a redelivered event was applied again: {r}");
            }
        }
        // Deltas without an event id are not idempotent (docs/events.md#semantics): compare
        // only when the prefix holds none.
        let idless = prefix.iter().filter_map(|r| decode(r.as_bytes(), &cx()).ok()).any(|e| e.kind == Tracking::Delta && e.event_id.is_none());
        if !idless {
            prop_assert_eq!(rankings(&View::build(&once)), before.clone());
            prop_assert_eq!(rankings(&View::build(&twice)), before);
        }
    }

    #[test]
    fn a_checkpoint_restores_an_engine_that_behaves_the_same(
        records in proptest::collection::vec(record(), 1..150), cut in any::<prop::sample::Index>()
    ) {
        let json: Vec<String> = records.iter().map(render).collect();
        let (head, tail) = json.split_at(cut.index(json.len() + 1));
        let mut original = Engine::new(*LIMITS);
        run(&mut original, head);
        let mut bytes = Vec::new();
        original.durable_snapshot().encode(&mut bytes).unwrap();
        let mut restored = Engine::decode(&bytes[..], *LIMITS).unwrap();
        prop_assert_eq!(rankings(&View::build(&original)), rankings(&View::build(&restored)));
        prop_assert_eq!(series(&View::build(&original)), series(&View::build(&restored)));
        prop_assert_eq!(top_lists(&original), top_lists(&restored));
        for r in tail {
            if let Ok(ev) = decode(r.as_bytes(), &cx()) {
                prop_assert_eq!(original.apply(&ev), restored.apply(&ev), "{}", r);
            }
        }
        prop_assert_eq!(rankings(&View::build(&original)), rankings(&View::build(&restored)));
        prop_assert_eq!(top_lists(&original), top_lists(&restored));
        // Every truncation of the body is refused, never a panic.
        for len in (0..bytes.len()).step_by(bytes.len() / 50 + 1) {
            prop_assert!(Engine::decode(&bytes[..len], *LIMITS).is_err());
        }
    }

    #[test]
    fn engine_agrees_with_the_naive_model(records in proptest::collection::vec(record(), 1..200)) {
        let json: Vec<String> = records.iter().map(render).collect();
        let mut engine = Engine::new(*LIMITS);
        let mut model = Model::default();
        for r in &json {
            if let Ok(ev) = decode(r.as_bytes(), &cx()) {
                let got = engine.apply(&ev);
                let want = model.apply(&ev);
                prop_assert_eq!(got.as_str(), want, "{}", r);
            }
        }
        let view = View::build(&engine);
        prop_assert_eq!(tables_of_view(&view), model.tables());
        prop_assert_eq!(rankings_of_view(&view), model.rankings());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn every_series_sums_to_its_window_and_agrees_with_the_model_across_a_restore(
        records in proptest::collection::vec(record(), 1..200), cut in any::<prop::sample::Index>()
    ) {
        let json: Vec<String> = records.iter().map(render).collect();
        let (head, tail) = json.split_at(cut.index(json.len() + 1));
        let mut engine = Engine::new(*LIMITS);
        let mut model = Model::default();
        let feed = |engine: &mut Engine, model: &mut Model, records: &[String]| {
            for r in records {
                if let Ok(ev) = decode(r.as_bytes(), &cx()) {
                    engine.apply(&ev);
                    model.apply(&ev);
                }
            }
        };
        feed(&mut engine, &mut model, head);
        check_series(&View::build(&engine), &model)?;
        let mut bytes = Vec::new();
        engine.durable_snapshot().encode(&mut bytes).unwrap();
        let mut restored = Engine::decode(&bytes[..], *LIMITS).unwrap();
        check_series(&View::build(&restored), &model)?;
        feed(&mut restored, &mut model, tail);
        check_series(&View::build(&restored), &model)?;
    }
}

/// Every page's series in every window the view names, by day and by
/// week: each bucket equal to the model's figures of the posts published
/// in it, and the last running total equal to the page's window figures.
fn check_series(view: &View, model: &Model) -> Result<(), TestCaseError> {
    let Some(wm) = view.watermark else { return Ok(()) };
    for t in view.windows() {
        let end = if matches!(t.period, Period::Rolling(_)) { wm + 1 } else { t.end };
        for bucket in [Bucket::Day, Bucket::Week] {
            let span = match view.series_span(t, bucket) {
                Err(SeriesError::BucketTooLong) if t.end - t.start < 7 * DAY_MS => continue,
                other => other.unwrap(),
            };
            let buckets: Vec<(i64, i64)> = span.buckets(bucket).collect();
            let wanted: Vec<Figures> = buckets
                .iter()
                .map(|(first, last)| {
                    let from = (first * DAY_MS).max(t.start);
                    model.figures(from, ((last + 1) * DAY_MS).min(end), |_| None)
                })
                .collect();
            for row in view.rows(t) {
                let series = view.series(t, row.page, span, bucket);
                let p = view.page(row.page);
                let key = (p.platform.to_string(), p.id.to_string());
                prop_assert_eq!(
                    series.last().map(|b| b.running),
                    Some(row.totals),
                    "{:?} {:?} {:?}",
                    t.period,
                    bucket,
                    key
                );
                for (point, want) in series.iter().zip(&wanted) {
                    let x = point.totals;
                    let want = want.get(&key).map_or([0; 5], |f| f.0);
                    prop_assert_eq!(
                        [x.reactions, x.comments, x.shares, x.views, x.posts],
                        want,
                        "{:?} {:?} {:?} bucket {}..{}",
                        t.period,
                        bucket,
                        key,
                        point.first,
                        point.last
                    );
                }
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The naive reference model: every post in a BTreeMap keyed by strings, every
// observation in a list, every window computed from scratch by filtering.

type PageKey = (String, String);

#[derive(Debug, Clone)]
struct ModelPost {
    delta: bool,
    published: Millis,
    observed: Millis,
    counts: [u64; 4],
}

#[derive(Default)]
struct Model {
    watermark: Option<Millis>,
    posts: BTreeMap<(String, String, String), ModelPost>,
    ids: HashSet<(String, String, String, String)>,
    followers: Vec<(PageKey, Millis, u64)>,
    names: Vec<(PageKey, Millis, String)>,
}

/// Per page: reactions, comments, shares, views, posts; followers; name.
type Figure = ([u64; 5], Option<u64>, Option<String>);
/// Per window and page.
type Figures = BTreeMap<PageKey, Figure>;

impl Model {
    /// The oldest instant any window covers, at the start of its day,
    /// computed from the configuration as the contract states it.
    fn cutoff(&self) -> Millis {
        let wm = self.watermark.unwrap();
        let w = &LIMITS.windows;
        let calendar = w.calendar().map(|(k, r)| k.containing(wm).minus(r).start());
        let rolling = w.rolling().iter().map(|d| wm - 2 * i64::from(*d) * DAY_MS);
        calendar.chain(rolling).min().unwrap().div_euclid(DAY_MS) * DAY_MS
    }

    fn apply(&mut self, ev: &Event<'_>) -> &'static str {
        self.watermark = Some(self.watermark.map_or(ev.observed_at, |w| w.max(ev.observed_at)));
        let page: PageKey = (ev.platform.to_string(), ev.page_id.to_string());
        if ev.observed_at >= self.cutoff() {
            if let Some(f) = ev.followers {
                self.followers.push((page.clone(), ev.observed_at, f));
            }
            if let Some(n) = &ev.page_name {
                self.names.push((page.clone(), ev.observed_at, n.to_string()));
            }
        }
        let key = (page.0.clone(), page.1.clone(), ev.post_id.to_string());
        let published = self.posts.get(&key).map_or(ev.published_at, |p| p.published);
        if published < self.cutoff() {
            return "expired";
        }
        let delta = ev.kind == Tracking::Delta;
        let c = [ev.counts.reactions, ev.counts.comments, ev.counts.shares, ev.counts.views];
        let id_key = ev.event_id.as_ref().map(|id| (key.0.clone(), key.1.clone(), key.2.clone(), id.to_string()));
        let Some(post) = self.posts.get_mut(&key) else {
            if let Some(k) = id_key {
                self.ids.insert(k);
            }
            self.posts.insert(key, ModelPost { delta, published, observed: ev.observed_at, counts: c });
            return "applied";
        };
        if post.delta != delta {
            return "conflict";
        }
        if delta {
            if let Some(k) = id_key {
                if !self.ids.insert(k) {
                    return "duplicate";
                }
            }
            for (total, add) in post.counts.iter_mut().zip(c) {
                *total += add;
            }
            post.observed = post.observed.max(ev.observed_at);
            return "applied";
        }
        // the contract's (observed_at, interactions), then the counts as a tie-break.
        let sum = |c: &[u64; 4]| c[0] + c[1] + c[2];
        if (ev.observed_at, sum(&c), c) > (post.observed, sum(&post.counts), post.counts) {
            post.observed = ev.observed_at;
            post.counts = c;
            "applied"
        } else {
            "stale"
        }
    }

    fn latest<T: Clone + Ord>(
        list: &[(PageKey, Millis, T)],
        page: &PageKey,
        keep: impl Fn(Millis) -> bool,
    ) -> Option<T> {
        list.iter().filter(|(p, at, _)| p == page && keep(*at)).map(|(_, at, v)| (*at, v.clone())).max().map(|(_, v)| v)
    }

    /// Figures of the posts published in `[start, end]` (end inclusive for rolling).
    fn figures(&self, start: Millis, end_exclusive: Millis, followers: impl Fn(&PageKey) -> Option<u64>) -> Figures {
        let cutoff = self.cutoff();
        let mut out: Figures = BTreeMap::new();
        for ((platform, page, _), p) in &self.posts {
            if p.published < cutoff || p.published < start || p.published >= end_exclusive {
                continue;
            }
            let key = (platform.clone(), page.clone());
            let e = out.entry(key.clone()).or_insert(([0; 5], None, None));
            for (total, add) in e.0.iter_mut().zip(p.counts) {
                *total += add;
            }
            e.0[4] += 1;
        }
        for (key, e) in out.iter_mut() {
            e.1 = followers(key);
            e.2 = Self::latest(&self.names, key, |at| at >= cutoff);
        }
        out
    }

    fn tables(&self) -> Vec<(String, Figures)> {
        let Some(wm) = self.watermark else {
            return Vec::new();
        };
        let w = &LIMITS.windows;
        let mut out = Vec::new();
        for (kind, retention) in w.calendar() {
            for back in 0..=retention {
                let q = kind.containing(wm).minus(back);
                let f = |k: &PageKey| Self::latest(&self.followers, k, |at| kind.containing(at) == q);
                out.push((format!("{:?}", Period::Calendar(q)), self.figures(q.start(), q.end(), f)));
            }
        }
        // The periods whose latest follower samples the engine keeps: every
        // configured kind's, and the quarters over the span the windows reach.
        let mut kept: Vec<CalendarPeriod> = Vec::new();
        for (kind, retention) in w.calendar().chain([(CalendarKind::Quarter, w.quarter_span() - 1)]) {
            kept.extend((0..=retention).map(|b| kind.containing(wm).minus(b)));
        }
        for d in w.rolling() {
            let r = Rolling::at(wm, u32::from(*d));
            let f = |k: &PageKey| Self::latest(&self.followers, k, |at| at >= r.start);
            out.push((format!("{:?}", Period::Rolling(*d)), self.figures(r.start, wm + 1, f)));
            let p = r.previous();
            // Mirrors the documented approximation: the latest per-period
            // sample that lies in the previous rolling window.
            let f = |k: &PageKey| {
                kept.iter()
                    .filter_map(|q| {
                        let latest_in_q = self
                            .followers
                            .iter()
                            .filter(|(pk, at, _)| pk == k && q.kind.containing(*at) == *q)
                            .map(|(_, at, v)| (*at, *v))
                            .max()?;
                        (latest_in_q.0 >= p.start && latest_in_q.0 < p.end).then_some(latest_in_q)
                    })
                    .max()
                    .map(|(_, v)| v)
            };
            out.push((format!("{:?}", Period::RollingPrevious(*d)), self.figures(p.start, p.end, f)));
        }
        out
    }

    /// Rankings by every metric, computed by sorting with a comparator
    /// written from the contract's text (docs/events.md).
    fn rankings(&self) -> Vec<(String, String, Vec<PageKey>)> {
        let mut out = Vec::new();
        for (window, figures) in self.tables() {
            for m in Metric::ALL {
                let mut pages: Vec<(&PageKey, &Figure)> = figures.iter().collect();
                pages.sort_by(|a, b| {
                    let (va, vb) = (model_value(m, a.1), model_value(m, b.1));
                    let by_value = match (va, vb) {
                        (Some((an, ad)), Some((bn, bd))) => (bn * ad).cmp(&(an * bd)),
                        (Some(_), None) => std::cmp::Ordering::Less,
                        (None, Some(_)) => std::cmp::Ordering::Greater,
                        (None, None) => std::cmp::Ordering::Equal,
                    };
                    by_value.then_with(|| a.0.cmp(b.0))
                });
                out.push((window.clone(), m.as_str().to_string(), pages.into_iter().map(|(k, _)| k.clone()).collect()));
            }
        }
        out
    }
}

fn model_value(m: Metric, f: &Figure) -> Option<(u128, u128)> {
    let t = f.0.map(u128::from);
    let inter = t[0] + t[1] + t[2];
    match m {
        Metric::Interactions => Some((inter, 1)),
        Metric::Reactions => Some((t[0], 1)),
        Metric::Comments => Some((t[1], 1)),
        Metric::Shares => Some((t[2], 1)),
        Metric::Views => Some((t[3], 1)),
        Metric::Posts => Some((t[4], 1)),
        Metric::InteractionsPerPost => Some((inter, t[4])),
        Metric::InteractionsPer1kFollowers => f.1.filter(|f| *f > 0).map(|f| (inter * 1000, u128::from(f))),
    }
}

fn tables_of_view(v: &View) -> Vec<(String, Figures)> {
    let convert = |t: &Table| -> Figures {
        v.rows(t)
            .iter()
            .map(|r| {
                let p = v.page(r.page);
                let x = r.totals;
                (
                    (p.platform.to_string(), p.id.to_string()),
                    ([x.reactions, x.comments, x.shares, x.views, x.posts], r.followers, p.name.map(String::from)),
                )
            })
            .collect()
    };
    v.tables().map(|t| (format!("{:?}", t.period), convert(t))).collect()
}

/// The view's rankings by its prepared orders, for every table and metric.
fn rankings_of_view(v: &View) -> Vec<(String, String, Vec<PageKey>)> {
    let tables = v.tables().map(|t| (format!("{:?}", t.period), t));
    let mut out = Vec::new();
    for (name, t) in tables {
        for m in Metric::ALL {
            let ranked = v.ranking(t, m, &Filter::ALL, 0, usize::MAX);
            let rows = v.rows(t);
            let reference: Vec<u32> = top(&rows, m, 0, usize::MAX).iter().map(|(_, r)| r.page).collect();
            assert_eq!(ranked.iter().map(|(_, r)| r.page).collect::<Vec<_>>(), reference, "order vs top()");
            let keys = ranked.iter().map(|(_, r)| {
                let p = v.page(r.page);
                (p.platform.to_string(), p.id.to_string())
            });
            out.push((name.clone(), m.as_str().to_string(), keys.collect()));
        }
    }
    out
}
