//! Benches of the page directory and of rankings within a group (issue 17
//! targets). Printed before the criterion groups (plain lines on stdout):
//! - `membership:` directory bytes per page for 1,000,000 pages in 4 groups
//!   each (a category of 100, a country of ~200, 2 lists of ~50):
//!   `Directory::membership_bytes() / len` (target ≤ 16) and
//!   `heap_bytes() / len`, with the heap the directory really took
//!   (a counting allocator) for comparison;
//! - `load:` one load of 1,000,000 records through `Directory::apply`
//!   from pre-rendered keys and values, timed with `Instant` (the
//!   criterion group `directory/load` times it too, 10 samples);
//! - `cold (table too):` the first top-100 of a group on a view that has
//!   built nothing yet (tables included), once, with `Instant`.
//!
//! Criterion groups, over an engine of 1,000,000 pages with one post each
//! and a directory of the same pages (100 categories of 10,000 pages):
//! - `group_top100/prepared/<metric>`: top-100 of `category:c07` when the
//!   view's order is already computed (as the daemon serves it), target
//!   ≤ 1 ms;
//! - `group_top100/cold/<metric>`: the first ask of it on a fresh view
//!   whose tables the preparer built (`View::prepare(&[])`): the group's
//!   pages looked up, its selection and its order; no target;
//! - `ingest_with_directory/{none,loaded}`: engine throughput on the
//!   tracker stream while another thread prepares the views the writer
//!   hands over every 65,536 events, without and with the directory
//!   attached and a group ranking asked for (target: within 5 %);
//! - `directory/load`: the load above.
//!
//! `cargo bench -p engagement-core --bench directory`. Quick mode (20,000
//! pages), for a smoke check in CI: `-- --test`, any run without `--bench`
//! (`cargo test --benches`), or `BENCH_QUICK=1`.

/// How the bench was started (the shell crate's benches share it).
#[path = "../../benches/common/mod.rs"]
mod common;
/// The counting global allocator (shared with the engine bench).
mod counting;

use std::hint::black_box;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode};
use engagement_core::directory::{Directory, DirectoryLimits};
use engagement_core::engine::{Engine, Limits, Message};
use engagement_core::event::DecodeContext;
use engagement_core::ranking::{Filter, Metric};
use engagement_core::synth::{Rng, TrackerStream, seed_quarter};
use engagement_core::view::View;

use counting::ALLOCATED;

/// Categories: each holds `pages / CATEGORIES` pages (10,000 of 1,000,000).
const CATEGORIES: u64 = 100;
const COUNTRIES: u64 = 200;
const LISTS: u64 = 50;
/// The group ranked within.
const GROUP: &str = "category:c07";
const BATCH: usize = 4096;
const MIB: f64 = 1024.0 * 1024.0;

fn cx() -> DecodeContext {
    DecodeContext { message_time: None, now: i64::MAX / 4, max_skew: 0, max_payload_bytes: 1 << 16 }
}

fn page_id(page: u64) -> String {
    format!("page_{page:07}")
}

/// Directory records (key, value) for pages `0..pages`: page `p` in
/// category `c{p % 100}`, a random country of 200 and 2 distinct random
/// lists of 50.
fn records(pages: u64) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut rng = Rng::new(23);
    (0..pages)
        .map(|p| {
            let id = page_id(p);
            let country = rng.below(COUNTRIES);
            let a = rng.below(LISTS);
            let b = (a + 1 + rng.below(LISTS - 1)) % LISTS;
            let value = format!(
                r#"{{"platform":"facebook","page_id":"{id}","groups":{{"category":"c{:02}","country":"k{country:03}","list":["l{a:02}","l{b:02}"]}}}}"#,
                p % CATEGORIES
            );
            (format!("facebook/{id}").into_bytes(), value.into_bytes())
        })
        .collect()
}

fn load(records: &[(Vec<u8>, Vec<u8>)]) -> Directory {
    let mut dir =
        Directory::new(DirectoryLimits { max_pages: records.len().max(1_000_000), ..DirectoryLimits::default() });
    for (k, v) in records {
        dir.apply(Some(k), Some(v)).expect("a valid record");
    }
    dir
}

/// An engine of `pages` pages with one post each in the seed quarter, page
/// ids as in [`records`], random counts and followers.
fn engine(pages: u64) -> Engine {
    let mut engine = Engine::new(Limits { max_posts: 100_000_000, max_pages: 2_000_000, ..Limits::default() });
    let q = seed_quarter();
    let mut rng = Rng::new(29);
    let (mut buf, mut ends) = (Vec::with_capacity(BATCH * 220), Vec::with_capacity(BATCH));
    let mut results = Vec::with_capacity(BATCH);
    let mut page = 0;
    while page < pages {
        buf.clear();
        ends.clear();
        while page < pages && ends.len() < BATCH {
            let published = q.start() + rng.below(((q.end() - q.start()) / 2) as u64) as i64;
            let observed = published + 3_600_000;
            let base = rng.below(50_000);
            let (comments, shares, views) = (rng.below(base / 10 + 1), rng.below(base / 20 + 1), base * 12);
            let followers = 1_000 + rng.below(10_000_000);
            write!(
                buf,
                r#"{{"page_id":"{}","post_id":"p{page:07}","published_at":{published},"observed_at":{observed},"kind":"snapshot","reactions":{base},"comments":{comments},"shares":{shares},"views":{views},"followers":{followers}}}"#,
                page_id(page)
            )
            .expect("writing to a Vec cannot fail");
            ends.push(buf.len());
            page += 1;
        }
        results.clear();
        let mut start = 0;
        engine.apply_batch(
            ends.iter().map(|&end| {
                let m = Message { payload: &buf[start..end], timestamp: None };
                start = end;
                m
            }),
            &cx(),
            &mut results,
        );
        assert!(results.iter().all(|r| r.is_ok()), "every synthetic event is valid");
    }
    engine
}

/// Membership bytes per page, and the time of one load.
fn membership(records: &[(Vec<u8>, Vec<u8>)]) -> Arc<Directory> {
    let before = ALLOCATED.load(Relaxed);
    let t = Instant::now();
    let dir = load(records);
    let took = t.elapsed();
    let heap = ALLOCATED.load(Relaxed) - before;
    let n = dir.len();
    println!(
        "membership: {:.1} bytes per page (membership_bytes / len, target <= 16); heap_bytes / len {:.1}; \
         allocator: {:.1} bytes per page ({n} pages in 4 groups each, {} categories, {} countries, 2 of {} lists; \
         {} distinct groups; directory {:.0} MiB)",
        dir.membership_bytes() as f64 / n as f64,
        dir.heap_bytes() as f64 / n as f64,
        heap as f64 / n as f64,
        CATEGORIES,
        COUNTRIES,
        LISTS,
        dir.group_count(),
        heap as f64 / MIB
    );
    println!(
        "load: {n} records through Directory::apply in {:.3} s (Instant, one run; target <= 2 s)",
        took.as_secs_f64()
    );
    Arc::new(dir)
}

fn group_rankings(c: &mut Criterion, engine: &Engine, dir: &Arc<Directory>, quick: bool) {
    let groups = [GROUP.to_string()];
    let filter = Filter { platform: None, groups: &groups };

    // A view that has built nothing: the first ask builds the page order and
    // the table too.
    let view = View::build(engine);
    view.attach(dir.clone());
    let t = Instant::now();
    let table = view.current().expect("a current quarter");
    let top = view.ranking(table, Metric::Interactions, &filter, 0, 100);
    let took = t.elapsed();
    let kept = view.order(table, Metric::Interactions, &filter).selection.len();
    assert_eq!(top.len(), 100.min(kept));
    println!(
        "cold (table too): top-100 of {GROUP} ({kept} of {} pages) by interactions on a view that built nothing: \
         {:.1} ms (Instant, one run)",
        table.len(),
        took.as_secs_f64() * 1e3
    );
    drop(view);

    let mut g = c.benchmark_group("group_top100");
    let view = View::build(engine);
    view.attach(dir.clone());
    let table = view.current().expect("a current quarter");
    for m in Metric::ALL {
        view.ranking(table, m, &filter, 0, 1);
        g.bench_function(format!("prepared/{}", m.as_str()), |b| {
            b.iter(|| view.ranking(table, m, black_box(&filter), 0, 100).len())
        });
    }
    drop(view);

    g.sampling_mode(SamplingMode::Flat).sample_size(10);
    if !quick {
        g.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    }
    for m in Metric::ALL {
        g.bench_function(format!("cold/{}", m.as_str()), |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    let view = View::build(engine);
                    view.attach(dir.clone());
                    view.prepare(&[]);
                    let table = view.current().expect("a current quarter");
                    let t = Instant::now();
                    black_box(view.ranking(table, m, &filter, 0, 100));
                    spent += t.elapsed();
                }
                spent
            })
        });
    }
    g.finish();
}

/// Engine throughput on the tracker stream (100,000 pages), as the
/// engine bench measures it, while a second thread plays the daemon's
/// preparer: every 16 batches (65,536 events, some 30 ms; the daemon
/// publishes once per `ranking.interval`, 10 s by default) the writer takes
/// a view and hands it over, and the preparer prepares it — with the
/// directory attached and a group ranking asked for (`loaded`), or
/// without (`none`). The directory never enters the writer's path; this
/// measures what sharing the two cores with that work costs it.
fn ingest_with_directory(c: &mut Criterion, dir: &Arc<Directory>, quick: bool) {
    let pages = 100_000;
    let size = if quick { 50_000 } else { 1_000_000 };
    let mut g = c.benchmark_group("ingest_with_directory");
    g.throughput(criterion::Throughput::Elements(size as u64)).sample_size(20);
    for loaded in [false, true] {
        let (tx, rx) = std::sync::mpsc::sync_channel::<View>(1);
        let dir = dir.clone();
        let preparer = std::thread::spawn(move || {
            let groups = [GROUP.to_string()];
            for view in rx {
                if loaded {
                    view.attach(dir.clone());
                }
                view.prepare(&[]);
                if let (true, Some(t)) = (loaded, view.current()) {
                    black_box(view.ranking(
                        t,
                        Metric::Interactions,
                        &Filter { platform: None, groups: &groups },
                        0,
                        100,
                    ));
                }
            }
        });
        let mut engine = Engine::new(Limits { max_posts: 100_000_000, ..Limits::default() });
        let mut stream = TrackerStream::new(pages, 50_000, seed_quarter(), 7);
        let mut corpus = |n: usize| {
            let (mut buf, mut ends, mut one) = (Vec::with_capacity(n * 220), Vec::with_capacity(n), Vec::new());
            for _ in 0..n {
                one.clear();
                stream.next_into(&mut one);
                buf.extend_from_slice(&one);
                ends.push(buf.len());
            }
            (buf, ends)
        };
        let mut results = Vec::with_capacity(BATCH);
        let mut apply = |engine: &mut Engine, (buf, ends): &(Vec<u8>, Vec<usize>)| {
            let mut start = 0;
            for (i, batch) in ends.chunks(BATCH).enumerate() {
                results.clear();
                let messages = batch.iter().map(|&end| {
                    let m = Message { payload: &buf[start..end], timestamp: None };
                    start = end;
                    m
                });
                engine.apply_batch(messages, &cx(), &mut results);
                if i % 16 == 15 {
                    let _ = tx.try_send(View::build(engine));
                }
            }
        };
        apply(&mut engine, &corpus(if quick { 50_000 } else { 2_000_000 }));
        g.bench_function(if loaded { "loaded" } else { "none" }, |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    let events = corpus(size);
                    let t = Instant::now();
                    apply(&mut engine, &events);
                    spent += t.elapsed();
                }
                spent
            })
        });
        drop(tx);
        preparer.join().expect("the preparer thread");
    }
    g.finish();
}

fn directory_load(c: &mut Criterion, records: &[(Vec<u8>, Vec<u8>)]) {
    let mut g = c.benchmark_group("directory");
    g.sampling_mode(SamplingMode::Flat).sample_size(10);
    g.bench_function(format!("load/{}", records.len()), |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                let t = Instant::now();
                let dir = load(black_box(records));
                spent += t.elapsed();
                drop(dir);
            }
            spent
        })
    });
    g.finish();
}

fn main() {
    let Some(quick) = common::quick() else { return };
    let pages = if quick { 20_000 } else { 1_000_000 };

    let records = records(pages);
    let dir = membership(&records);
    let t = Instant::now();
    let engine = engine(pages);
    println!("setup: engine of {pages} pages with one post each built in {:.1} s", t.elapsed().as_secs_f64());

    let mut c = Criterion::default().configure_from_args();
    if quick {
        c = c.sample_size(10).warm_up_time(Duration::from_millis(100)).measurement_time(Duration::from_millis(300));
    } else {
        c = c.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    }
    group_rankings(&mut c, &engine, &dir, quick);
    drop(engine);
    ingest_with_directory(&mut c, &dir, quick);
    directory_load(&mut c, &records);
    c.final_summary();
}
