//! Checkpoint benchmark (issue targets): write and restore a checkpoint of
//! an engine holding 10,000,000 posts (100,000 pages × 100 posts).
//!
//! Prints: time to build the state, the consume-loop pause to write the
//! checkpoint, the time to make it durable, its size, peak RSS during the
//! write against the steady-state RSS, and the time to restore it; with
//! the default windows, then with every calendar kind and three rolling
//! windows.
//!
//! `cargo bench --bench checkpoint` (full size); `cargo test`, `--test` or
//! `BENCH_QUICK=1` shrink it to 200,000 posts for a smoke run.

mod common;

use std::time::Instant;

use engagement_core::engine::{Engine, Limits};
use engagement_monitor::pipeline::checkpoint;

fn status(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.trim().strip_suffix(" kB")?.trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn mib(b: u64) -> f64 {
    b as f64 / 1048576.0
}

fn main() {
    let Some(quick) = common::quick() else { return };
    let (pages, per_page) = if quick { (10_000u64, 20u64) } else { (100_000, 100) };
    for name in ["default", "every-kind"] {
        let windows = common::windows_named(name);
        let limits = Limits { max_posts: 20_000_000, windows, ..Limits::default() };
        let started = Instant::now();
        let engine = common::build(pages, per_page, limits);
        let posts = engine.usage().posts;
        let steady = status("VmRSS:");
        println!(
            "state ({name} windows): {posts} posts, {pages} pages, built in {:.1}s, RSS {:.0} MiB",
            started.elapsed().as_secs_f64(),
            mib(steady)
        );
        let dir = std::env::temp_dir().join(format!("em-bench-checkpoint-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        write_and_restore(&dir, engine, limits, steady);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Writes a checkpoint as the daemon does (snapshot on the consume thread,
/// the rest elsewhere), then restores it; prints the figures.
fn write_and_restore(dir: &std::path::Path, engine: Engine, limits: Limits, steady: u64) {
    let posts = engine.usage().posts;
    reset_peak();
    let t = Instant::now();
    let state = engine.durable_snapshot();
    let pause = t.elapsed();
    let t = Instant::now();
    let offsets = vec![(0, 1_000_000), (1, 1_000_000), (2, 1_000_000)];
    let pending = checkpoint::write(dir, 1, "bench", &offsets, &state).expect("checkpoint written");
    let serialize = t.elapsed();
    let t = Instant::now();
    let done = pending.finish().expect("checkpoint durable");
    let durable = t.elapsed();
    let peak = status("VmHWM:");
    println!(
        "checkpoint: consume-loop pause (snapshot) {:.3} ms; on the checkpoint thread: serialize {:.0} ms, fsync+rename {:.0} ms; {:.0} MiB ({:.1} bytes/post); peak RSS {:.0} MiB = {:.2} x steady",
        pause.as_secs_f64() * 1000.0,
        serialize.as_secs_f64() * 1000.0,
        durable.as_secs_f64() * 1000.0,
        mib(done.bytes),
        done.bytes as f64 / posts as f64,
        mib(peak),
        peak as f64 / steady as f64
    );
    drop((state, engine));
    let t = Instant::now();
    let (restored, report) = checkpoint::restore(dir, limits).expect("restore");
    let restore = t.elapsed();
    let r = restored.expect("the checkpoint restores");
    assert!(report.discarded.is_empty());
    assert_eq!(r.engine.usage().posts, posts);
    println!(
        "checkpoint restore: {:.2} s for {posts} posts ({:.1} M posts/s), target <= 2 s (default windows), 3 s (every kind)",
        restore.as_secs_f64(),
        posts as f64 / restore.as_secs_f64() / 1e6
    );
}
