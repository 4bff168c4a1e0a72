//! Shard state bench (issue 20 targets): one partition holding 10,000,000
//! posts (100,000 pages × 100), of which 1 % change in an interval.
//!
//! Prints the base's size and bytes a post, then for two ways the 1 %
//! can fall — `uniform` (any post, the worst case: most pages change) and
//! `recent` (posts of the last days, as engagement does) — the increment
//! that interval writes against the target 3 × (changed posts × bytes a
//! post) + 1 MiB. Then, on the real broker of `scripts/kafka.sh`
//! (`KAFKA_BROKERS`), the base and the uniform increment are written to a
//! compacted topic as a shard does and the partition is restored as a new
//! owner does, timed against the 5 s target.
//!
//! `cargo bench --bench state` (full size, needs the broker); `cargo
//! test`, `--test` or `BENCH_QUICK=1` shrink it to 200,000 posts and skip
//! the broker.

mod common;

use std::time::{Duration, Instant};

use engagement_core::engine::{Engine, Limits};
use engagement_core::synth::{Rng, seed_quarter};
use engagement_core::window::DAY_MS;
use engagement_monitor::pipeline::shard::checkpoint::{CheckpointReader, CheckpointWriter, Layout};

const MIB: f64 = 1048576.0;

/// Snapshots of `n` posts drawn by `pick` (page, post), observed a day
/// after the build's events with other counts and more followers.
fn change(engine: &mut Engine, n: u64, mut pick: impl FnMut() -> (u64, u64)) {
    let q = seed_quarter();
    let mut rng = Rng::new(7);
    for _ in 0..n {
        let (page, post) = pick();
        // Any post: its first event fixed its publication time. The
        // build's count ranges: a changed post enters its page's top list
        // about as often as it would in life.
        common::snapshot(engine, &mut rng, (page, post), (q.start(), q.start() + 85 * DAY_MS), 2_000_000 + page);
    }
}

/// Changes `changed` posts drawn by `pick` and prints the increment
/// written for it; returns the increment.
fn interval(
    e: &mut Engine,
    name: &str,
    changed: u64,
    target: f64,
    mut pick: impl FnMut(&mut Rng) -> (u64, u64),
) -> Vec<u8> {
    e.track_increments();
    let mut rng = Rng::new(3);
    let t = Instant::now();
    change(e, changed, || pick(&mut rng));
    let applied = t.elapsed();
    let mut inc = Vec::new();
    let t = Instant::now();
    let size = e.take_increment(&mut inc);
    let took = t.elapsed();
    println!(
        "increment ({name}): {changed} posts changed ({} distinct) on {} pages in {:.2} s; {:.2} MiB written in {:.0} ms, {:.1} bytes a changed post; target <= {:.2} MiB: {}",
        size.posts,
        size.pages,
        applied.as_secs_f64(),
        inc.len() as f64 / MIB,
        took.as_secs_f64() * 1000.0,
        inc.len() as f64 / size.posts as f64,
        target / MIB,
        if (inc.len() as f64) <= target { "met" } else { "MISSED" }
    );
    inc
}

fn main() {
    let Some(quick) = common::quick() else { return };
    let (pages, per_page) = if quick { (10_000u64, 20u64) } else { (100_000, 100) };
    let limits = Limits { max_posts: 20_000_000, windows: common::windows_named("default"), ..Limits::default() };
    let t = Instant::now();
    let mut engine = common::build(pages, per_page, limits);
    let posts = engine.usage().posts as u64;
    engine.track_increments();
    let mut base = Vec::new();
    engine.durable_snapshot().encode(&mut base).expect("encoded");
    let per_post = base.len() as f64 / posts as f64;
    println!(
        "state: {posts} posts over {pages} pages, built in {:.1} s; base {:.1} MiB, {per_post:.1} bytes a post",
        t.elapsed().as_secs_f64(),
        base.len() as f64 / MIB
    );
    let changed = posts / 100;
    let target = 3.0 * changed as f64 * per_post + MIB;
    let uniform = interval(&mut engine, "uniform", changed, target, |rng| (rng.below(pages), rng.below(per_page)));
    // `recent`: the last tenth of the posts of a tenth of the pages (the
    // build spreads publication times at random; what matters here is how
    // many pages the change touches).
    let mut other = Engine::decode(&base[..], limits).expect("restores");
    interval(&mut other, "recent", changed, target, |rng| {
        (rng.below(pages / 10), per_page - 1 - rng.below(per_page / 10))
    });
    drop(other);
    if quick {
        return;
    }
    broker(&base, &uniform, &mut engine, limits, pages, per_page);
}

/// Writes the base and the increment to a compacted topic, then restores
/// the partition as a new owner does.
fn broker(base: &[u8], increment: &[u8], engine: &mut Engine, limits: Limits, pages: u64, per_page: u64) {
    let Ok(brokers) = std::env::var("KAFKA_BROKERS") else {
        eprintln!(
            "KAFKA_BROKERS is not set: start the broker (scripts/kafka.sh start; eval \"$(scripts/kafka.sh env)\")"
        );
        std::process::exit(1);
    };
    let mut kafka = engagement_monitor::config::Config::default().kafka;
    kafka.brokers = brokers.clone();
    kafka.group_id = format!("bench-state-{}", std::process::id());
    let topic = format!("bench-state-{}", std::process::id());
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime
        .block_on(engagement_monitor::tools::produce::create_topic(
            &brokers,
            &topic,
            1,
            &[],
            &[("cleanup.policy", "compact")],
        ))
        .expect("state topic created");
    let timeout = Duration::from_secs(120);
    let writer = CheckpointWriter::new(&kafka, topic.clone()).expect("writer");
    let t = Instant::now();
    let layout = writer.save_base(0, &Layout::default(), base, 1_000_000, timeout).expect("base saved");
    let base_took = t.elapsed();
    let t = Instant::now();
    let mut layout = writer.save_increment(0, &layout, increment, 1_000_100, timeout).expect("increment saved");
    let inc_took = t.elapsed();
    println!(
        "broker: base saved in {:.2} s, the increment in {:.0} ms",
        base_took.as_secs_f64(),
        inc_took.as_secs_f64() * 1000.0
    );
    let reader = CheckpointReader::new(&kafka, topic).expect("reader");
    restore(&reader, engine, limits, 1_000_100, "base + 1 increment");
    // The most a restore reads before the next save writes a base: more
    // uniform intervals until the increments reach a quarter of the base.
    let mut n = 1;
    while !layout.base_due() {
        n += 1;
        let mut rng = Rng::new(100 + n);
        change(engine, pages * per_page / 100, || (rng.below(pages), rng.below(per_page)));
        let mut inc = Vec::new();
        engine.take_increment(&mut inc);
        layout = writer.save_increment(0, &layout, &inc, 1_000_100 + n as i64, timeout).expect("increment saved");
    }
    let increments: u64 = layout.increments.iter().map(|(_, b)| *b).sum();
    let what =
        format!("base + {n} increments of {:.0} MiB in all, the most before a base is due", increments as f64 / MIB);
    restore(&reader, engine, limits, 1_000_100 + n as i64, &what);
}

fn restore(reader: &CheckpointReader, engine: &Engine, limits: Limits, next: i64, what: &str) {
    let t = Instant::now();
    let restored = reader.restore(0, limits, Duration::from_secs(120)).expect("restored").expect("a state");
    let took = t.elapsed();
    assert_eq!(restored.next_offset, next);
    assert_eq!(restored.engine.usage().posts, engine.usage().posts);
    assert_eq!(restored.engine.usage().pages, engine.usage().pages);
    let (a, b) = (engine.snapshot(), restored.engine.snapshot());
    let q = engagement_core::window::CalendarPeriod {
        kind: engagement_core::window::CalendarKind::Quarter,
        index: seed_quarter().index(),
    };
    let by_id: std::collections::HashMap<&str, u32> = b.pages().map(|p| (b.ident(p).id.as_str(), p)).collect();
    let same = a.pages().all(|p| {
        let other = by_id.get(a.ident(p).id.as_str());
        other.is_some_and(|o| a.slot(q, p).map(|s| s.1.totals()) == b.slot(q, *o).map(|s| s.1.totals()))
    });
    println!(
        "restore from the broker ({what}, {} posts): {:.2} s, target <= 5 s (max.poll.interval.ms 300 s); quarter totals equal: {same}",
        restored.engine.usage().posts,
        took.as_secs_f64()
    );
}
