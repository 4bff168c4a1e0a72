//! Criterion benches of the core over a synthetic stream of ~200-byte
//! events (100,000 pages × 50 posts = 5,000,000 posts): decode alone,
//! decode and apply into an engine holding every post (steady state:
//! updates), top-100 of 100,000 pages, ranks of 100 pages, and a view
//! rebuild. Before the
//! criterion groups it prints, measured with a counting allocator, the heap
//! bytes per tracked post and the allocations per event in steady state.
//!
//! `cargo bench --bench engine`; under `cargo test`, `-- --test` or with
//! `BENCH_QUICK=1` it runs on 100,000 posts for a smoke check.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput};
use engagement_core::engine::{Engine, Limits};
use engagement_core::event::{DecodeContext, decode};
use engagement_core::ranking::{Metric, ranks_of, top};
use engagement_core::synth::{RandomStream, seed_quarter};
use engagement_core::view::View;

struct Counting;

static ALLOCATED: AtomicU64 = AtomicU64::new(0);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator; only adds relaxed counters.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(l.size() as u64, Relaxed);
        ALLOCATIONS.fetch_add(1, Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        ALLOCATED.fetch_sub(l.size() as u64, Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        ALLOCATED.fetch_add(new as u64, Relaxed);
        ALLOCATED.fetch_sub(l.size() as u64, Relaxed);
        ALLOCATIONS.fetch_add(1, Relaxed);
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const PAGES: u64 = 100_000;

fn cx() -> DecodeContext {
    DecodeContext { message_time: None, now: i64::MAX / 4, max_skew: 0, max_payload_bytes: 1 << 16 }
}

/// `n` events in one buffer, with their offsets.
fn corpus(n: usize, posts_per_page: u64, seed: u64) -> (Vec<u8>, Vec<usize>) {
    let mut stream = RandomStream::new(PAGES, posts_per_page, seed_quarter(), seed);
    let (mut all, mut ends, mut buf) = (Vec::new(), Vec::with_capacity(n), Vec::new());
    for _ in 0..n {
        stream.next_into(&mut buf);
        all.extend_from_slice(&buf);
        ends.push(all.len());
    }
    (all, ends)
}

fn events<'a>(all: &'a [u8], ends: &'a [usize]) -> impl Iterator<Item = &'a [u8]> {
    ends.iter().scan(0, move |start, &end| {
        let e = &all[*start..end];
        *start = end;
        Some(e)
    })
}

/// An engine holding every post of `PAGES × posts_per_page`, one event each.
fn populated(posts_per_page: u64) -> Engine {
    let mut e = Engine::new(Limits { max_posts: 50_000_000, ..Limits::default() });
    let q = seed_quarter();
    let mut buf = String::new();
    for page in 0..PAGES {
        for post in 0..posts_per_page {
            buf.clear();
            let published = q.start() + (page * 7919 + post * 104_729) as i64 % (80 * 86_400_000);
            buf.push_str(&format!(
                r#"{{"page_id":"page_{page:07}","post_id":"p{page:07}_{post:06}","published_at":{published},"observed_at":{published},"reactions":{},"followers":{}}}"#,
                post * 3,
                1_000_000 + page * 10
            ));
            e.apply(&decode(buf.as_bytes(), &cx()).expect("valid"));
        }
    }
    e
}

fn memory_and_allocations(quick: bool) {
    let (small, large) = if quick { (1, 2) } else { (10, 50) };
    let before = ALLOCATED.load(Relaxed);
    let a = populated(small);
    let mid = ALLOCATED.load(Relaxed);
    let b = populated(large);
    let after = ALLOCATED.load(Relaxed);
    let (bytes_a, bytes_b) = (mid - before, after - mid);
    let (posts_a, posts_b) = (a.usage().posts as u64, b.usage().posts as u64);
    println!(
        "memory: {posts_b} posts + {PAGES} pages = {:.1} MiB allocated ({:.1} bytes/post all in); marginal {:.1} bytes per tracked post (from {posts_a} to {posts_b} posts); estimate from capacities {:.1} MiB",
        bytes_b as f64 / 1048576.0,
        bytes_b as f64 / posts_b as f64,
        (bytes_b as f64 - bytes_a as f64) / (posts_b - posts_a) as f64,
        b.usage().heap_bytes as f64 / 1048576.0
    );
    drop(a);
    let mut e = b;
    let (all, ends) = corpus(if quick { 20_000 } else { 1_000_000 }, large, 7);
    for ev in events(&all, &ends) {
        e.apply(&decode(ev, &cx()).expect("valid")); // warm up: first observations
    }
    let (all, ends) = corpus(if quick { 20_000 } else { 1_000_000 }, large, 8);
    let calls = ALLOCATIONS.load(Relaxed);
    let started = Instant::now();
    for ev in events(&all, &ends) {
        e.apply(&decode(ev, &cx()).expect("valid"));
    }
    let took = started.elapsed();
    let n = ends.len() as f64;
    println!(
        "steady state: {:.4} allocations per event over {} events ({:.0} ns/event decode+apply in this pass)",
        (ALLOCATIONS.load(Relaxed) - calls) as f64 / n,
        ends.len(),
        took.as_nanos() as f64 / n
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let full = args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--test");
    let quick = std::env::var("BENCH_QUICK").is_ok() || !full;
    memory_and_allocations(quick);
    let per_page = if quick { 1 } else { 50 };
    let mut c = Criterion::default().configure_from_args().sample_size(10).measurement_time(Duration::from_secs(5));
    let chunk = 100_000;
    let (all, ends) = corpus(chunk, per_page, 3);

    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Elements(chunk as u64));
    g.bench_function("decode", |b| {
        b.iter(|| events(&all, &ends).filter(|ev| decode(ev, &cx()).is_ok()).count());
    });
    let mut engine = populated(per_page);
    g.bench_function("decode_apply", |b| {
        b.iter(|| {
            for ev in events(&all, &ends) {
                engine.apply(&decode(ev, &cx()).expect("valid"));
            }
        });
    });
    g.finish();

    let view = View::build(&engine);
    let table = view.current().expect("a current quarter");
    assert!(table.rows.len() as u64 == PAGES);
    let mut g = c.benchmark_group("ranking");
    g.bench_function("top100_of_100k", |b| b.iter(|| top(&table.rows, Metric::Interactions, 0, 100).len()));
    let pages: Vec<u32> = top(&table.rows, Metric::Interactions, 0, 100).iter().map(|(_, r)| r.page).collect();
    g.bench_function("ranks_of_100_in_100k", |b| b.iter(|| ranks_of(&table.rows, Metric::Interactions, &pages)));
    g.bench_function("ranks_of_100_in_100k_per_post", |b| {
        b.iter(|| ranks_of(&table.rows, Metric::InteractionsPerPost, &pages))
    });
    g.bench_function("top100_of_100k_per_post", |b| {
        b.iter(|| top(&table.rows, Metric::InteractionsPerPost, 0, 100).len())
    });
    g.bench_function("view_build", |b| b.iter_batched(|| (), |_| View::build(&engine), BatchSize::PerIteration));
    g.finish();
    c.final_summary();
}
