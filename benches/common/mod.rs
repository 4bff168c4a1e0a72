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
    let (mut page_id, mut post_id) = (String::new(), String::new());
    for page in 0..pages {
        page_id.clear();
        page_id.push_str(&format!("page_{page:07}"));
        for post in 0..per_page {
            post_id.clear();
            post_id.push_str(&format!("p{page:07}_{post:04}"));
            let published = q.start() + rng.below(80 * 86_400_000) as i64;
            let ev = engagement_core::event::Event {
                platform: std::borrow::Cow::Borrowed("facebook"),
                page_id: std::borrow::Cow::Borrowed(&page_id),
                post_id: std::borrow::Cow::Borrowed(&post_id),
                page_name: None,
                published_at: published,
                observed_at: published + 3_600_000,
                kind: engagement_core::event::Tracking::Snapshot,
                counts: engagement_core::event::Counts {
                    reactions: rng.below(100_000),
                    comments: rng.below(10_000),
                    shares: rng.below(5_000),
                    views: rng.below(1_000_000),
                },
                followers: Some(1_000_000 + page),
                event_id: None,
            };
            engine.apply(&ev);
        }
    }
    engine
}
