//! What the benches share: how they were started (the core crate's
//! benches include this file by path).

/// `None` when the binary is only asked to list its benches (`--list`);
/// else whether to run at the smoke size. `cargo bench` passes `--bench`;
/// `cargo test` runs the binary with no argument, and `cargo bench --
/// --test` adds `--test`: both get the smoke size, as does `BENCH_QUICK`.
pub fn quick() -> Option<bool> {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return None;
    }
    let full = args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--test");
    Some(std::env::var("BENCH_QUICK").is_ok() || !full)
}

/// The windows the benches compare, by name:
/// - `default`: quarters, months, rolling 90 and 7 days;
/// - `weeks`: quarters, months, ISO weeks, rolling 90, 28 and 7 days (the
///   throughput target of docs/windows.md compares it with the default);
/// - `every-kind`: `weeks` and years;
/// - `quarters-90d`: the shape before windows were configurable.
#[allow(dead_code)]
pub fn windows() -> [(&'static str, engagement_core::window::Windows); 4] {
    use engagement_core::window::Windows;
    let kinds = |names: &[&'static str]| names.iter().map(|k| (*k, None)).collect::<Vec<_>>();
    let spec = |kinds: &[(&str, Option<u32>)], rolling: &[&str]| Windows::new(kinds, rolling).expect("valid windows");
    let three = ["90d", "28d", "7d"];
    [
        ("default", Windows::default()),
        ("weeks", spec(&kinds(&["quarter", "month", "week"]), &three)),
        ("every-kind", spec(&kinds(&["quarter", "month", "week", "year"]), &three)),
        ("quarters-90d", spec(&kinds(&["quarter"]), &["90d"])),
    ]
}

/// `BENCH_WINDOWS=quarter,month;90d,7d` (calendar kinds; rolling windows):
/// one more configuration, named `custom`, for the engine bench.
#[allow(dead_code)]
pub fn custom_windows() -> Option<engagement_core::window::Windows> {
    let text = std::env::var("BENCH_WINDOWS").ok()?;
    let (calendar, rolling) = text.split_once(';').unwrap_or((&text, ""));
    let split = |s: &str| s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect::<Vec<_>>();
    let (calendar, rolling) = (split(calendar), split(rolling));
    let kinds: Vec<(&str, Option<u32>)> = calendar.iter().map(|k| (k.as_str(), None)).collect();
    let rolling: Vec<&str> = rolling.iter().map(String::as_str).collect();
    Some(engagement_core::window::Windows::new(&kinds, &rolling).expect("BENCH_WINDOWS: valid windows"))
}

/// The windows named `name` in [`windows`].
#[allow(dead_code)]
pub fn windows_named(name: &str) -> engagement_core::window::Windows {
    windows().into_iter().find(|(n, _)| *n == name).expect("a bench windows name").1
}

/// An engine of `pages × per_page` posts published across one quarter
/// (2025-Q3), one snapshot each, every event with a follower count.
#[allow(dead_code)]
pub fn build(pages: u64, per_page: u64, limits: engagement_core::engine::Limits) -> engagement_core::engine::Engine {
    let q = engagement_core::synth::seed_quarter();
    let mut engine = engagement_core::engine::Engine::new(limits);
    let mut rng = engagement_core::synth::Rng::new(42);
    for page in 0..pages {
        for post in 0..per_page {
            let published = q.start() + rng.below(80 * 86_400_000) as i64;
            snapshot(&mut engine, &mut rng, (page, post), (published, published + 3_600_000), 1_000_000 + page);
        }
    }
    engine
}

/// Applies a snapshot of post `post` of page `page` (ids `page_NNNNNNN`,
/// `pNNNNNNN_NNNN`) published and observed at `times`, with counts drawn
/// from `rng` in fixed ranges and a follower count.
#[allow(dead_code)]
pub fn snapshot(
    engine: &mut engagement_core::engine::Engine,
    rng: &mut engagement_core::synth::Rng,
    (page, post): (u64, u64),
    (published_at, observed_at): (i64, i64),
    followers: u64,
) {
    let (page_id, post_id) = (format!("page_{page:07}"), format!("p{page:07}_{post:04}"));
    let ev = engagement_core::event::Event {
        platform: std::borrow::Cow::Borrowed("facebook"),
        page_id: std::borrow::Cow::Borrowed(&page_id),
        post_id: std::borrow::Cow::Borrowed(&post_id),
        page_name: None,
        published_at,
        observed_at,
        kind: engagement_core::event::Tracking::Snapshot,
        counts: engagement_core::event::Counts {
            reactions: rng.below(100_000),
            comments: rng.below(10_000),
            shares: rng.below(5_000),
            views: rng.below(1_000_000),
        },
        followers: Some(followers),
        event_id: None,
    };
    engine.apply(&ev);
}
