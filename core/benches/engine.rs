//! Benches of the pure core (docs/performance.md has the figures and the
//! targets). Two streams of ~200-byte snapshot events:
//! - *tracker* (`synth::TrackerStream`): 100,000 pages with Zipf-like
//!   popularity, each post published once and re-observed 10–50 times,
//!   followers on one event in ten, ~3 % new posts;
//! - *inserts* (`synth::InsertStream`): every event a new post.
//!
//! Printed before the criterion groups (plain lines on stdout), measured
//! with a counting global allocator:
//! - `memory:` heap bytes per tracked post (marginal) and per page, and
//!   what each window kind adds per page;
//! - `steady state:` heap allocations per event while applying the tracker;
//! - `pauses:` the longest stop of the writer at 10,000,000 posts: one
//!   batch of 4,096 events (rolling-window edges included), publishing a
//!   view, taking a checkpoint snapshot; with every window kind.
//!
//! Criterion groups: `engine/decode`, `engine/tracker/<windows>` and
//! `engine/inserts/<windows>` (decode + apply in batches of 4,096, events
//! per second, with the default windows and with every kind: see
//! `benches/common`), and `view/*`
//! (building tables and orders, top-100 from a prepared order).
//!
//! `cargo bench -p engagement-core --bench engine` (`-- engine/tracker`
//! runs only the groups a filter names, without the printed lines). Quick mode (small
//! sizes), for a smoke check in CI: `-- --test`, any run without `--bench`
//! (`cargo test --benches`), or `BENCH_QUICK=1`.

/// How the bench was started (the shell crate's benches share it).
#[path = "../../benches/common/mod.rs"]
mod common;
/// The counting global allocator (shared with the directory bench).
mod counting;

use std::hint::black_box;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput};
use engagement_core::engine::{Engine, Limits, Message, Outcome};
use engagement_core::event::{DecodeContext, Invalid, decode};
use engagement_core::global::PageRecord;
use engagement_core::ranking::{Filter, Metric};
use engagement_core::synth::{InsertStream, RandomStream, TrackerStream, seed_quarter};
use engagement_core::view::View;

use counting::{ALLOCATED, ALLOCATIONS, REQUESTED};

const PAGES: u64 = 100_000;
/// Events per `apply_batch`, as the daemon's fetch thread hands them over.
const BATCH: usize = 4096;
const MIB: f64 = 1024.0 * 1024.0;

fn cx() -> DecodeContext {
    DecodeContext { message_time: None, now: i64::MAX / 4, max_skew: 0, max_payload_bytes: 1 << 16 }
}

fn limits() -> Limits {
    Limits { max_posts: 100_000_000, max_pages: 2_000_000, ..Limits::default() }
}

/// Every calendar kind and three rolling windows.
fn every_kind() -> Limits {
    Limits { windows: common::windows_named("every-kind"), ..limits() }
}

/// Events in one buffer; event `i` is `buf[ends[i - 1]..ends[i]]`.
struct Corpus {
    buf: Vec<u8>,
    ends: Vec<usize>,
}

impl Corpus {
    fn of(n: usize, mut next: impl FnMut(&mut Vec<u8>)) -> Corpus {
        let (mut buf, mut ends, mut one) = (Vec::with_capacity(n * 220), Vec::with_capacity(n), Vec::new());
        for _ in 0..n {
            next(&mut one);
            buf.extend_from_slice(&one);
            ends.push(buf.len());
        }
        Corpus { buf, ends }
    }

    fn events(&self) -> impl Iterator<Item = &[u8]> {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let e = &self.buf[start..end];
            start = end;
            e
        })
    }
}

/// Applies `corpus` in batches; returns the longest batch.
fn apply_all(engine: &mut Engine, corpus: &Corpus, results: &mut Vec<Result<Outcome, Invalid>>) -> Duration {
    let events: Vec<&[u8]> = corpus.events().collect();
    let mut longest = Duration::ZERO;
    for batch in events.chunks(BATCH) {
        results.clear();
        let t = Instant::now();
        engine.apply_batch(batch.iter().map(|p| Message { payload: p, timestamp: None }), &cx(), results);
        longest = longest.max(t.elapsed());
        debug_assert!(results.iter().all(|r| r.is_ok()));
    }
    longest
}

fn allocated() -> i64 {
    ALLOCATED.load(Relaxed)
}

/// Heap per post between two sizes, and heap per page with 2 posts each.
/// The first size leaves every page ~20 posts, so that the pages' top
/// lists (per-page state: at most `top_posts` each) are full before the
/// marginal is measured and only what each post costs is counted.
fn memory(quick: bool) {
    let (small, large) = if quick { (20_000, 100_000) } else { (2_000_000, 6_000_000) };
    let mut results = Vec::new();
    let mut stream = InsertStream::new(PAGES, seed_quarter(), 1);
    let before = allocated();
    let mut engine = Engine::new(limits());
    apply_all(
        &mut engine,
        &Corpus::of(small, |b| {
            stream.next_into(b);
        }),
        &mut results,
    );
    let at_small = allocated() - before;
    apply_all(
        &mut engine,
        &Corpus::of(large - small, |b| {
            stream.next_into(b);
        }),
        &mut results,
    );
    let at_large = allocated() - before;
    let per_post = (at_large - at_small) as f64 / (large - small) as f64;
    println!(
        "memory: {per_post:.1} bytes per post (marginal, {small} -> {large} posts over {PAGES} pages; engine {:.0} MiB at {large})",
        at_large as f64 / MIB
    );
    drop(engine);
    let pages = if quick { 20_000 } else { 1_000_000 };
    let per_page = |limits: Limits, with_view: bool| {
        let before = allocated();
        let mut engine = Engine::new(limits);
        let mut stream = RandomStream::new(pages, 2, seed_quarter(), 3);
        let mut results = Vec::new();
        apply_all(
            &mut engine,
            &Corpus::of(2 * pages as usize, |b| {
                stream.next_into(b);
            }),
            &mut results,
        );
        let view = with_view.then(|| View::build(&engine));
        if let Some(view) = &view {
            let _ = view.tables().count();
            let _ = view.ranking(view.current().expect("a current quarter"), Metric::Interactions, &Filter::ALL, 0, 10);
        }
        let total = allocated() - before;
        (total as f64 / pages as f64, total as f64 / MIB, engine.usage().posts)
    };
    let (bytes, total, posts) = per_page(limits(), true);
    println!(
        "memory: {bytes:.0} bytes per page with 2 posts each ({pages} pages, {posts} posts; engine + one view with its tables: {total:.0} MiB)"
    );
    // What each kind adds to the engine, per page whose posts fall in one
    // period of it: quarters and one rolling window, then one more each.
    let with = |calendar: &[&str], rolling: &[&str]| {
        let kinds: Vec<(&str, Option<u32>)> = calendar.iter().map(|k| (*k, None)).collect();
        let windows = engagement_core::window::Windows::new(&kinds, rolling).expect("valid windows");
        per_page(Limits { windows, ..limits() }, false).0
    };
    let base = with(&["quarter"], &["90d"]);
    let added = [
        ("month", with(&["quarter", "month"], &["90d"])),
        ("week", with(&["quarter", "week"], &["90d"])),
        ("year", with(&["quarter", "year"], &["90d"])),
        ("a rolling window", with(&["quarter"], &["90d", "7d"])),
    ];
    let added: Vec<String> = added.iter().map(|(k, b)| format!("{k} +{:.0}", b - base)).collect();
    println!(
        "memory per kind: quarters and rolling 90d {base:.0} bytes per page with 2 posts each; {} (bytes per page)",
        added.join(", ")
    );
}

/// Heap allocations per event while the tracker stream is applied, with
/// short post ids and with long ones (heap-allocated strings).
fn steady_state(quick: bool) {
    for long_ids in [false, true] {
        let mut stream = TrackerStream::new(PAGES, 100_000, seed_quarter(), 5);
        if long_ids {
            stream = stream.with_long_ids();
        }
        let mut engine = Engine::new(limits());
        let mut results = Vec::with_capacity(BATCH);
        let warm = if quick { 100_000 } else { 2_000_000 };
        apply_all(
            &mut engine,
            &Corpus::of(warm, |b| {
                stream.next_into(b);
            }),
            &mut results,
        );
        let corpus = Corpus::of(if quick { 50_000 } else { 1_000_000 }, |b| {
            stream.next_into(b);
        });
        let (calls, bytes, posts) = (ALLOCATIONS.load(Relaxed), REQUESTED.load(Relaxed), engine.usage().posts);
        apply_all(&mut engine, &corpus, &mut results);
        let n = corpus.ends.len();
        let calls = ALLOCATIONS.load(Relaxed) - calls;
        let new_posts = engine.usage().posts - posts;
        println!(
            "steady state{}: {:.4} allocations per event over {n} tracker events (target 0): {calls} calls of \
             {:.1} KiB on average while {new_posts} new posts grew the tables",
            if long_ids { " (33-byte post ids)" } else { "" },
            calls as f64 / n as f64,
            (REQUESTED.load(Relaxed) - bytes) as f64 / calls.max(1) as f64 / 1024.0
        );
    }
}

/// The longest writer pauses at 10,000,000 posts over 100,000 pages.
fn pauses(quick: bool) {
    let posts = if quick { 200_000 } else { 10_000_000 };
    let mut engine = Engine::new(every_kind());
    let mut results = Vec::with_capacity(BATCH);
    let mut inserts = InsertStream::new(PAGES, seed_quarter(), 7);
    for _ in 0..posts / 1_000_000 + 1 {
        let n = (posts - engine.usage().posts).min(1_000_000);
        apply_all(
            &mut engine,
            &Corpus::of(n, |b| {
                inserts.next_into(b);
            }),
            &mut results,
        );
    }
    // A tracker over the same pages, published after the inserted posts:
    // the watermark walks on, so the rolling window's edges pass posts.
    let mut tracker = TrackerStream::new(PAGES, 100_000, seed_quarter().previous().previous().previous(), 9);
    let corpus = Corpus::of(if quick { 100_000 } else { 2_000_000 }, |b| {
        tracker.next_into(b);
    });
    let longest_batch = apply_all(&mut engine, &corpus, &mut results);
    let t = Instant::now();
    let view = View::build(&engine);
    let publish = t.elapsed();
    let t = Instant::now();
    let snapshot = engine.durable_snapshot();
    let checkpoint = t.elapsed();
    // The batches right after: the writer copies each chunk it changes
    // first, while the view and the snapshot share it.
    let after = Corpus::of(4 * BATCH, |b| {
        tracker.next_into(b);
    });
    let after_view = apply_all(&mut engine, &after, &mut results);
    drop((view, snapshot));
    println!(
        "pauses (every window kind): at {} posts, longest batch of {BATCH} events {:.2} ms ({:.2} ms in the four after a view and a checkpoint snapshot), publishing a view {:.3} ms, checkpoint snapshot {:.3} ms (target: none over 20 ms)",
        engine.usage().posts,
        longest_batch.as_secs_f64() * 1e3,
        after_view.as_secs_f64() * 1e3,
        publish.as_secs_f64() * 1e3,
        checkpoint.as_secs_f64() * 1e3
    );
}

fn decode_and_apply(c: &mut Criterion, quick: bool) {
    let mut g = c.benchmark_group("engine");
    let size = if quick { 10_000 } else { 100_000 };
    g.throughput(Throughput::Elements(size as u64));
    let mut stream = TrackerStream::new(PAGES, 100_000, seed_quarter(), 11);
    let corpus = Corpus::of(size, |b| {
        stream.next_into(b);
    });
    g.bench_function("decode", |b| b.iter(|| corpus.events().filter(|e| decode(black_box(e), &cx()).is_ok()).count()));
    let warm = if quick { 50_000 } else { 2_000_000 };
    let custom = common::custom_windows().map(|w| ("custom", w));
    for (name, windows) in common::windows().into_iter().chain(custom) {
        let limits = Limits { windows, ..limits() };
        let mut stream = TrackerStream::new(PAGES, 100_000, seed_quarter(), 11);
        bench_stream(&mut g, &format!("tracker/{name}"), limits, warm, size, |b| {
            stream.next_into(b);
        });
        let mut inserts = InsertStream::new(PAGES, seed_quarter(), 13);
        bench_stream(&mut g, &format!("inserts/{name}"), limits, warm, size, |b| {
            inserts.next_into(b);
        });
    }
    g.finish();
}

/// Benches decode + apply of `size` events of `next` at a time, on an
/// engine that first took `warm` of them; the events are generated outside
/// the timed part.
fn bench_stream(
    g: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    limits: Limits,
    warm: usize,
    size: usize,
    mut next: impl FnMut(&mut Vec<u8>),
) {
    let mut engine = Engine::new(limits);
    let mut results = Vec::with_capacity(BATCH);
    apply_all(&mut engine, &Corpus::of(warm, &mut next), &mut results);
    g.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                let corpus = Corpus::of(size, &mut next);
                let t = Instant::now();
                apply_all(&mut engine, &corpus, &mut results);
                spent += t.elapsed();
            }
            spent
        })
    });
}

fn view_queries(c: &mut Criterion, quick: bool) {
    let mut engine = Engine::new(limits());
    let mut stream = RandomStream::new(PAGES, 5, seed_quarter(), 17);
    apply_all(
        &mut engine,
        &Corpus::of(if quick { 50_000 } else { 1_000_000 }, |b| {
            stream.next_into(b);
        }),
        &mut Vec::new(),
    );
    let mut g = c.benchmark_group("view");
    series(&mut g, quick);
    g.bench_function("tables_and_interactions_order", |b| {
        b.iter(|| {
            let view = View::build(&engine);
            let t = view.current().expect("a current quarter");
            view.ranking(t, Metric::Interactions, &Filter::ALL, 0, 100).len()
        })
    });
    let view = View::build(&engine);
    for m in Metric::ALL {
        let t = view.rolling().expect("a rolling window");
        view.ranking(t, m, &Filter::ALL, 0, 1);
        g.bench_function(format!("top100_prepared/{}", m.as_str()), |b| {
            b.iter(|| view.ranking(t, m, &Filter::ALL, 0, 100).len())
        });
    }
    // A search: the first on a view folds every page's id and name, later
    // ones only scan them.
    g.bench_function("search_first", |b| b.iter(|| View::build(&engine).search("page_0012", 20).1));
    view.search("warm", 1);
    g.bench_function("search", |b| b.iter(|| view.search(black_box("page_0012"), 20).1));
    g.finish();
}

/// Pages' series at 10,000,000 posts over 100,000 pages published in one
/// quarter, pages picked by popularity (as the tracker's): the memory the
/// figures per day add per post (printed, with the same for pages picked
/// uniformly: about one post per page and day), then `view/series/*`: one
/// page's series by day in the stream's quarter (the most popular page and
/// a median one) and a comparison of two, on a view whose tables are built
/// (as the preparer leaves it).
fn series(g: &mut BenchmarkGroup<'_, WallTime>, quick: bool) {
    use engagement_core::view::series::Bucket;
    let posts = if quick { 200_000 } else { 10_000_000 };
    let build = |stream: InsertStream| {
        let mut stream = stream;
        let mut engine = Engine::new(limits());
        let mut results = Vec::with_capacity(BATCH);
        for _ in 0..posts / 1_000_000 + 1 {
            let n = (posts - engine.usage().posts).min(1_000_000);
            apply_all(&mut engine, &Corpus::of(n, |b| _ = stream.next_into(b)), &mut results);
        }
        engine
    };
    let per_post = |e: &Engine| e.series_bytes() as f64 / e.usage().posts as f64;
    let uniform = per_post(&build(InsertStream::new(PAGES, seed_quarter(), 21)));
    let engine = build(InsertStream::new(PAGES, seed_quarter(), 23).popular());
    let view = View::build(&engine);
    // The stream's last observations fall a minute into the next quarter.
    let t = view.quarter(seed_quarter()).expect("the stream's quarter");
    let days: usize = view.rows(t).iter().map(|r| engine_days(&view, t, r.page)).sum();
    println!(
        "series: {:.2} bytes per post at {} posts over {PAGES} pages picked by popularity ({:.2} posts per page and day); {uniform:.2} with pages picked uniformly",
        per_post(&engine),
        engine.usage().posts,
        engine.usage().posts as f64 / days as f64,
    );
    // Shard mode carries the figures per day in each page record.
    let snap = engine.snapshot();
    let records: Vec<_> = (0..snap.page_bound()).filter_map(|p| PageRecord::of(&snap, p, 0)).collect();
    let bytes = |r: &PageRecord| r.encode().len();
    let with_days: usize = records.iter().map(bytes).sum();
    let without: usize = records.iter().map(|r| bytes(&PageRecord { days: Vec::new(), ..r.clone() })).sum();
    println!(
        "series: page records of {} pages, {:.0} bytes on average with their figures per day, {:.0} without",
        records.len(),
        with_days as f64 / records.len() as f64,
        without as f64 / records.len() as f64
    );
    let page =
        |id: &str| view.find_page("", id).or_else(|| view.find_page("facebook", id)).expect("a page of the stream");
    let (top, median) = (page("page_0000000"), page("page_0010000"));
    view.ranking(t, Metric::Interactions, &Filter::ALL, 0, 1);
    for (name, p) in [("popular", top), ("median", median)] {
        g.bench_function(format!("series/{name}"), |b| {
            b.iter(|| {
                let span = view.series_span(t, Bucket::Day).expect("a series");
                view.series(t, black_box(p), span, Bucket::Day).len()
            })
        });
    }
    g.bench_function("compare/two", |b| {
        b.iter(|| view.compare(t, &[top, median], Bucket::Day, Metric::Interactions).map(|c| c.orders.len()))
    });
}

/// The days with posts page `p` has in table `t` (a day bucket of its
/// series with posts).
fn engine_days(view: &View, t: &engagement_core::view::Table, p: u32) -> usize {
    use engagement_core::view::series::Bucket;
    let span = view.series_span(t, Bucket::Day).expect("a series");
    view.series(t, p, span, Bucket::Day).iter().filter(|b| b.totals.posts > 0).count()
}

fn main() {
    let Some(quick) = common::quick() else { return };
    // A criterion filter (`-- engine/tracker`) runs only the matching groups.
    let filtered = std::env::args().skip(1).any(|a| !a.starts_with('-'));
    if !filtered {
        memory(quick);
        steady_state(quick);
        pauses(quick);
    }
    let mut c = Criterion::default().configure_from_args();
    if quick {
        c = c.sample_size(10).warm_up_time(Duration::from_millis(100)).measurement_time(Duration::from_millis(300));
    }
    decode_and_apply(&mut c, quick);
    view_queries(&mut c, quick);
    c.final_summary();
}
