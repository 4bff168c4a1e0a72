use super::*;
use crate::engine::{Engine, Limits, Totals};
use crate::event::{DecodeContext, decode};
use crate::synth::{SEED_TABLE, seed_events, seed_quarter};
use crate::view::View;
use crate::window::parse_rfc3339;

fn seeded_view() -> View {
    let mut e = Engine::new(Limits::default());
    let cx = DecodeContext {
        message_time: None,
        now: parse_rfc3339("2026-01-01T00:00:00Z").unwrap(),
        max_skew: 0,
        max_payload_bytes: 1 << 16,
    };
    for json in seed_events() {
        assert_eq!(e.apply(&decode(json.as_bytes(), &cx).unwrap()).as_str(), "applied");
    }
    View::build(&e)
}

fn ids(view: &View, ranked: &[(u32, &Row)]) -> Vec<String> {
    ranked.iter().map(|(_, r)| view.page(r.page).id.to_string()).collect()
}

#[test]
fn the_spec_table_is_rebuilt_exactly_from_events() {
    let v = seeded_view();
    let t = v.quarter(seed_quarter()).unwrap();
    let all = v.filtered_rows(t, Filter::ALL);
    let ranked = top(&all, Metric::Interactions, 0, 10);
    assert_eq!(ids(&v, &ranked), SEED_TABLE.iter().map(|p| p.id).collect::<Vec<_>>());
    for ((rank, row), seed) in ranked.iter().zip(SEED_TABLE) {
        assert_eq!(
            (row.totals.interactions(), row.totals.posts, row.followers),
            (seed.interactions, seed.posts, seed.followers),
            "{} at rank {rank}",
            seed.id
        );
    }
    assert_eq!(ranked[0].1.totals.interactions(), 26_243_488);
    assert_eq!(v.page(ranked[1].1.page).name, Some(SEED_TABLE[1].name));
}

#[test]
fn cambodia_leads_by_interactions_per_1k_followers() {
    let v = seeded_view();
    let t = v.quarter(seed_quarter()).unwrap();
    let all = v.rows(t);
    let ranked = top(&all, Metric::InteractionsPer1kFollowers, 0, 5);
    assert_eq!(ids(&v, &ranked)[..3], ["pmcambodia", "whitehouse", "moi.egy"]);
    let m = Metric::InteractionsPer1kFollowers;
    assert_eq!(m.value(ranked[0].1), Some(3853.23));
    assert_eq!(m.value(ranked[1].1), Some(2101.87));
    assert_eq!(m.value(ranked[4].1), None, "pages without followers rank last, with no ratio");
}

fn row(page: u32, interactions: u64, posts: u64, followers: Option<u64>) -> Row {
    Row { page, totals: Totals { reactions: interactions, posts, ..Totals::default() }, followers }
}

#[test]
fn ties_fall_back_to_page_order() {
    let rows = [row(0, 5, 1, None), row(1, 9, 1, None), row(2, 5, 1, None), row(3, 9, 1, None)];
    let ranked: Vec<u32> = top(&rows, Metric::Interactions, 0, 10).iter().map(|(_, r)| r.page).collect();
    assert_eq!(ranked, [1, 3, 0, 2]);
}

#[test]
fn ratios_compare_exactly_and_round_half_up() {
    // 2/3 < 667/1000 though both display as 0.67.
    let a = row(0, 2, 3, None);
    let b = row(1, 667, 1000, None);
    assert_eq!(Metric::InteractionsPerPost.compare(&b, &a), std::cmp::Ordering::Less);
    assert_eq!(Metric::InteractionsPerPost.value(&a), Some(0.67));
    assert_eq!(Metric::InteractionsPerPost.value(&row(0, 1, 8, None)), Some(0.13), "0.125 rounds up");
    assert_eq!(Metric::InteractionsPer1kFollowers.value(&row(0, 5, 1, Some(0))), None);
    let huge = row(0, u64::MAX, 1, Some(1));
    let other = row(1, u64::MAX - 1, 1, Some(1));
    assert_eq!(Metric::InteractionsPer1kFollowers.compare(&huge, &other), std::cmp::Ordering::Less);
}

#[test]
fn offset_and_limit_page_through_the_ranking() {
    let rows: Vec<Row> = (0..50).map(|i| row(i, u64::from(i % 7) * 10 + u64::from(i), 1, None)).collect();
    let full = top(&rows, Metric::Interactions, 0, 50);
    let page = top(&rows, Metric::Interactions, 10, 5);
    assert_eq!(page, full[10..15].to_vec());
    assert!(top(&rows, Metric::Interactions, 60, 5).is_empty());
    assert!(top(&rows, Metric::Interactions, 0, 0).is_empty());
}

#[test]
fn ranks_of_agree_with_a_full_sort() {
    let rows: Vec<Row> = (0..200).map(|i| row(i, u64::from((i * 37) % 11), 1 + u64::from(i % 3), None)).collect();
    for m in Metric::ALL {
        let full = top(&rows, m, 0, rows.len());
        let wanted: Vec<u32> = vec![5, 0, 199, 77, 1000];
        let got = ranks_of(&rows, m, &wanted);
        for (page, rank) in wanted.iter().zip(got) {
            let expected = full.iter().find(|(_, r)| r.page == *page).map(|(k, _)| *k);
            assert_eq!(rank, expected, "{m:?} page {page}");
        }
    }
}

#[test]
fn platform_filter_keeps_one_platform_and_ranks_within_it() {
    let mut e = Engine::new(Limits::default());
    let cx = DecodeContext { message_time: None, now: i64::MAX / 2, max_skew: 0, max_payload_bytes: 1 << 16 };
    for (platform, page, reactions) in
        [("facebook", "a", 10), ("instagram", "b", 30), ("facebook", "c", 20), ("x", "d", 40)]
    {
        let json = format!(
            r#"{{"platform":"{platform}","page_id":"{page}","post_id":"1","published_at":"2025-07-01T00:00:00Z","observed_at":"2025-07-02T00:00:00Z","reactions":{reactions}}}"#
        );
        e.apply(&decode(json.as_bytes(), &cx).unwrap());
    }
    let v = View::build(&e);
    let t = v.current().unwrap();
    let facebook = v.filtered_rows(t, Filter::platform("facebook"));
    let fb = top(&facebook, Metric::Interactions, 0, 10);
    assert_eq!(ids(&v, &fb), ["c", "a"]);
    assert_eq!(fb.iter().map(|(k, _)| *k).collect::<Vec<_>>(), [1, 2]);
    assert!(v.filtered_rows(t, Filter::platform("tiktok")).is_empty());
}
