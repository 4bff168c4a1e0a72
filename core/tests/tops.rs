//! Property test of the pages' top posts per quarter against a plain
//! model: whatever order a history of three quarters arrives in, and
//! wherever a checkpoint cuts it, each page's list of each quarter (the
//! live one and those kept for earlier quarters) holds that quarter's
//! `top_posts` posts with the most interactions. 500 cases
//! (PROPTEST_CASES overrides).
//!
//! The rule a list follows is exact when a post's interactions only grow
//! and no two posts tie (docs/api.md, `top_posts`): the generated
//! snapshots of a post grow with their observation time, and every figure
//! is distinct.

use std::collections::BTreeMap;

use engagement_core::engine::{Engine, Limits};
use engagement_core::event::{DecodeContext, decode};
use engagement_core::view::View;
use engagement_core::window::{DAY_MS, Millis, Quarter, Windows, format_rfc3339};
use proptest::prelude::*;

const TOP: usize = 3;

fn limits() -> Limits {
    Limits {
        // Three quarters kept back, so no generated post is ever before
        // the cutoff and every generated quarter stays named.
        windows: Windows::new(&[("quarter", Some(3))], &["20d"]).expect("valid windows"),
        top_posts: TOP as u32,
        // The history jumps between quarters; the guard has its own tests.
        max_watermark_jump: std::time::Duration::ZERO,
        ..Limits::default()
    }
}

fn cx() -> DecodeContext {
    DecodeContext { message_time: Some(0), now: 4_000_000_000_000, max_skew: 0, max_payload_bytes: 1 << 16 }
}

fn quarters() -> [Quarter; 3] {
    [1, 2, 3].map(|n| Quarter::new(2025, n).expect("a quarter"))
}

/// A post: its page, quarter, day in the quarter, and a base figure.
#[derive(Debug, Clone)]
struct GenPost {
    page: u8,
    quarter: usize,
    day: u8,
    base: u16,
    observations: u8,
}

/// Post `i` and its snapshot `j`: published in its quarter's day, its
/// interactions growing with `j` and distinct from every other post's
/// (snapshot `j` of any post lies in [j·1e6, j·1e6 + 2^16·64)).
fn snapshot(i: usize, p: &GenPost, j: u8) -> (String, u64) {
    let published: Millis = quarters()[p.quarter].start() + i64::from(p.day) * DAY_MS + i as i64 * 60_000;
    let interactions = u64::from(j) * 1_000_000 + u64::from(p.base) * 64 + i as u64;
    let observed = published + i64::from(j + 1) * 3_600_000;
    let json = format!(
        r#"{{"platform":"facebook","page_id":"pg{}","post_id":"post-{i}","published_at":"{}","observed_at":{observed},"reactions":{interactions},"comments":0,"shares":0}}"#,
        p.page,
        format_rfc3339(published)
    );
    (json, interactions)
}

fn post() -> impl Strategy<Value = GenPost> {
    (0u8..2, 0usize..3, 0u8..90, any::<u16>(), 1u8..4).prop_map(|(page, quarter, day, base, observations)| GenPost {
        page,
        quarter,
        day,
        base,
        observations,
    })
}

/// Per (page, quarter), the model's top posts: each post at its largest
/// figure, the `TOP` largest, largest first.
fn model(posts: &[GenPost]) -> BTreeMap<(String, Quarter), Vec<(String, u64)>> {
    let mut all: BTreeMap<(String, Quarter), Vec<(String, u64)>> = BTreeMap::new();
    for (i, p) in posts.iter().enumerate() {
        let (_, most) = snapshot(i, p, p.observations - 1);
        all.entry((format!("pg{}", p.page), quarters()[p.quarter])).or_default().push((format!("post-{i}"), most));
    }
    for list in all.values_mut() {
        list.sort_by_key(|b| std::cmp::Reverse(b.1));
        list.truncate(TOP);
    }
    all
}

/// Per (page, quarter), the engine's list, as its view answers it.
fn lists(e: &Engine) -> BTreeMap<(String, Quarter), Vec<(String, u64)>> {
    let v = View::build(e);
    let mut out = BTreeMap::new();
    for page in 0..2 {
        let id = format!("pg{page}");
        let Some(p) = v.find_page("facebook", &id) else { continue };
        for q in quarters() {
            let list: Vec<(String, u64)> = v.top_posts_of(p, q).into_iter().map(|(id, n)| (id.to_owned(), n)).collect();
            if !list.is_empty() {
                out.insert((id.clone(), q), list);
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn every_quarters_top_list_is_its_top_posts_in_any_order_across_a_checkpoint(
        (posts, order) in proptest::collection::vec(post(), 1..24).prop_flat_map(|posts| {
            let events: Vec<(usize, u8)> =
                posts.iter().enumerate().flat_map(|(i, p)| (0..p.observations).map(move |j| (i, j))).collect();
            (Just(posts), Just(events).prop_shuffle())
        }),
        cut in any::<prop::sample::Index>(),
    ) {
        let json: Vec<String> = order.iter().map(|&(i, j)| snapshot(i, &posts[i], j).0).collect();
        let (head, tail) = json.split_at(cut.index(json.len() + 1));
        let mut e = Engine::new(limits());
        for r in head {
            e.apply(&decode(r.as_bytes(), &cx()).expect("a valid event"));
        }
        let mut bytes = Vec::new();
        e.durable_snapshot().encode(&mut bytes).expect("encoded");
        let mut e = Engine::decode(&bytes[..], limits()).expect("restored");
        for r in tail {
            e.apply(&decode(r.as_bytes(), &cx()).expect("a valid event"));
        }
        prop_assert_eq!(lists(&e), model(&posts));
    }
}
