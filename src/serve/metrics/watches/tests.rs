use std::time::Duration;

use engagement_core::ranking::Metric;
use engagement_core::window::{WindowId, Windows};

use super::*;
use crate::alerts::rank_changes::detect::Placed;
use crate::config::{PageKey, default_watches};

fn board(top_n: usize, pages: usize, hold: Duration) -> Arc<WatchBoard> {
    let mut w = default_watches().remove(0);
    w.top_n = top_n;
    w.hold = hold;
    w.pages = (0..pages).map(|i| PageKey { platform: "x".into(), page_id: format!("w{i}") }).collect();
    let counters =
        IntCounterVec::new(prometheus::Opts::new("c", "c"), &["watch", "window", "scope", "group", "kind"]).unwrap();
    Arc::new(WatchBoard::new(vec![w].into(), &Windows::default(), counters))
}

fn change(kind: Kind, page: &str, old_rank: Option<u32>, new_rank: Option<u32>) -> Change {
    Change {
        key: RankingKey { watch: 0, window: WindowId::parse("current").expect("an id"), scope: None },
        watch: "all".into(),
        group: "".into(),
        metric: Metric::Interactions,
        top_n: 3,
        period: "2025-Q3".parse().ok(),
        kind,
        page: Placed {
            platform: "x".into(),
            page_id: page.into(),
            page_name: Some(format!("Page {page}").into()),
            rank: new_rank.unwrap_or(0),
            interactions: 5,
            value: Some(5.0),
        },
        old_rank,
        new_rank,
        watermark: Some(1_759_000_000_000),
    }
}

fn series(board: &Arc<WatchBoard>) -> Vec<(String, f64)> {
    let families = WatchSeries::new(board.clone()).collect();
    let changes = families.iter().find(|f| f.name() == CHANGE.0).expect("the change family");
    changes
        .get_metric()
        .iter()
        .map(|m| {
            let label = |n: &str| m.get_label().iter().find(|l| l.name() == n).map(|l| l.value().to_owned());
            let text = format!(
                "{} {} {}->{}",
                label("kind").unwrap_or_default(),
                label("page_id").unwrap_or_default(),
                label("old_rank").unwrap_or_default(),
                label("new_rank").unwrap_or_default()
            );
            (text, m.get_gauge().get_value())
        })
        .collect()
}

#[test]
fn a_change_is_held_with_its_ranks_and_places_then_expires() {
    let b = board(3, 0, Duration::from_secs(60));
    let t0 = Instant::now();
    b.record(change(Kind::Leader, "a", Some(2), Some(1)), t0);
    assert_eq!(series(&b), [("leader a 2->1".to_string(), 1.0)]);
    b.expire(t0 + Duration::from_secs(61));
    assert_eq!(series(&b), [], "gone after the hold");
    assert_eq!(b.recent().len(), 1, "the API still lists it");
}

#[test]
fn held_changes_are_bounded_per_ranking_and_kind() {
    let (top_n, pages) = (3, 2);
    let b = board(top_n, pages, Duration::from_secs(600));
    let t0 = Instant::now();
    for i in 0..50u32 {
        let at = t0 + Duration::from_millis(u64::from(i));
        b.record(change(Kind::Leader, &format!("l{i}"), Some(2), Some(1)), at);
        b.record(change(Kind::Entered, &format!("e{i}"), None, Some(3)), at);
        b.record(change(Kind::Exited, &format!("x{i}"), Some(3), None), at);
        b.record(change(Kind::Moved, &format!("w{}", i % 2), Some(i + 1), Some(i + 2)), at);
    }
    let held = series(&b);
    let count = |kind: &str| held.iter().filter(|(s, _)| s.starts_with(kind)).count();
    assert_eq!(
        (count("leader"), count("entered"), count("exited"), count("moved")),
        (1, top_n, top_n, pages),
        "{held:?}"
    );
    assert!(held.iter().any(|(s, _)| s == "leader l49 2->1"), "the latest leader is held");
    assert!(held.iter().any(|(s, _)| s == "entered e49 none->3"), "the newest entries are held");
    assert_eq!(b.recent().len(), RECENT, "the API's list is bounded too");
}

#[test]
fn a_watched_pages_moves_merge_and_an_exit_ends_an_entry() {
    let b = board(3, 1, Duration::from_secs(600));
    let t0 = Instant::now();
    b.record(change(Kind::Moved, "w0", Some(4), Some(5)), t0);
    b.record(change(Kind::Moved, "w0", Some(5), Some(7)), t0);
    assert_eq!(series(&b), [("moved w0 4->7".to_string(), -3.0)], "dropped 3 places since it was 4th");
    b.record(change(Kind::Moved, "w0", Some(7), Some(4)), t0);
    assert_eq!(series(&b), [], "back where it was: nothing to say");
    b.record(change(Kind::Entered, "e", None, Some(3)), t0);
    b.record(change(Kind::Exited, "e", Some(3), None), t0);
    assert_eq!(series(&b), [("exited e 3->none".to_string(), -1.0)]);
}
