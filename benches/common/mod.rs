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

/// The windows the benches compare: the default (quarters, months,
/// rolling 90 and 7 days), and every calendar kind with three rolling
/// windows (quarters, months, ISO weeks, years; 90, 28 and 7 days).
#[allow(dead_code)]
pub fn windows() -> [(&'static str, engagement_core::window::Windows); 2] {
    use engagement_core::window::Windows;
    let every = [("quarter", None), ("month", None), ("week", None), ("year", None)];
    let every = Windows::new(&every, &["90d", "28d", "7d"]).expect("valid windows");
    [("default", Windows::default()), ("every-kind", every)]
}
