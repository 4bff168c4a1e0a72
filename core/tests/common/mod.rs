//! What the property tests share: limits, a generator of random records
//! (events of a few pages and posts over six quarters, and garbage), and
//! every ranking a view answers, flattened for comparison.

use engagement_core::engine::Limits;
use engagement_core::event::DecodeContext;
use engagement_core::ranking::{Filter, Metric};
use engagement_core::view::View;
use engagement_core::window::{DAY_MS, Millis, Windows, format_rfc3339};
use proptest::prelude::*;

/// Every calendar kind (the current year only, so that posts of the
/// generated history's first year expire) and three rolling windows.
pub fn windows() -> Windows {
    let kinds = [("quarter", Some(2)), ("month", Some(3)), ("week", Some(4)), ("year", Some(0))];
    Windows::new(&kinds, &["40d", "20d", "7d"]).expect("valid windows")
}

pub static LIMITS: std::sync::LazyLock<Limits> = std::sync::LazyLock::new(|| Limits {
    windows: windows(),
    max_pages: 1000,
    max_posts: 100_000,
    max_platforms: 16,
    max_event_ids: 100_000,
    top_posts: 10,
    // The generated history jumps freely; the guard has its own tests
    // (src/engine/jump.rs, src/engine/tests.rs).
    max_watermark_jump: std::time::Duration::ZERO,
    watermark_jump_quorum: 100,
});

pub fn cx() -> DecodeContext {
    DecodeContext { message_time: Some(0), now: 4_000_000_000_000, max_skew: 0, max_payload_bytes: 1 << 16 }
}

/// 2024-07-01, the start of the generated history (six quarters long).
pub const EPOCH: Millis = 1_719_792_000_000;

/// One generated record: an event, or garbage.
#[derive(Debug, Clone)]
pub enum Gen {
    Event {
        platform: u8,
        page: u8,
        post: u8,
        delta: bool,
        id: Option<u8>,
        observed_day: u16,
        counts: [u16; 4],
        followers: Option<u16>,
        name: Option<u8>,
    },
    Garbage(u8),
}

/// Publication time is a function of the post, as it is in reality.
pub fn published(page: u8, post: u8) -> Millis {
    EPOCH + (i64::from(page) * 37 + i64::from(post) * 53) % 540 * DAY_MS + i64::from(post) * 3_600_000
}

pub fn render(g: &Gen) -> String {
    match g {
        Gen::Garbage(0) => "not json".into(),
        Gen::Garbage(1) => r#"{"page_id":"p0","post_id":"x"}"#.into(),
        Gen::Garbage(2) => {
            r#"{"page_id":"p0","post_id":"x","published_at":"2025-01-01T00:00:00Z","reactions":-4}"#.into()
        }
        Gen::Garbage(_) => r#"[{"page_id":"p0"}]"#.into(),
        Gen::Event { platform, page, post, delta, id, observed_day, counts, followers, name } => {
            let p = published(*page, *post);
            let observed = p + i64::from(*observed_day) * DAY_MS / 4;
            let mut s = format!(
                r#"{{"platform":"{}","page_id":"p{page}","post_id":"s{post}","published_at":"{}","observed_at":{observed},"kind":"{}","reactions":{},"comments":{},"shares":{},"views":{}"#,
                ["facebook", "instagram"][usize::from(*platform % 2)],
                format_rfc3339(p),
                if *delta { "delta" } else { "snapshot" },
                counts[0],
                counts[1],
                counts[2],
                counts[3],
            );
            if let Some(i) = id {
                s += &format!(r#","event_id":"e{i}""#);
            }
            if let Some(f) = followers {
                s += &format!(r#","followers":{f}"#);
            }
            if let Some(n) = name {
                s += &format!(r#","page_name":"Name {n}""#);
            }
            s + "}"
        }
    }
}

prop_compose! {
    pub fn event(snapshots_only: bool)(
        platform in 0u8..2, page in 0u8..5, post in 0u8..8, delta in any::<bool>(), id in proptest::option::of(0u8..6),
        observed_day in 0u16..400, counts in proptest::array::uniform4(0u16..1000),
        followers in proptest::option::of(0u16..5000), name in proptest::option::of(0u8..3),
    ) -> Gen {
        // Posts with an even number are snapshot-tracked, odd ones delta-tracked,
        // except for a few events of the other kind (conflicts).
        let delta = !snapshots_only && ((post % 2 == 1) != (delta && observed_day % 13 == 0));
        Gen::Event { platform, page, post, delta, id: if delta { id } else { None }, observed_day, counts, followers, name }
    }
}

pub fn record() -> impl Strategy<Value = Gen> {
    prop_oneof![12 => event(false), 1 => (0u8..4).prop_map(Gen::Garbage)]
}

/// Every ranking a view can answer, flattened for comparison: per table and
/// metric, the ordered (platform, page, value, previous rank) list, from
/// the view's prepared orders.
pub fn rankings(v: &View) -> Vec<String> {
    let mut out = Vec::new();
    for t in v.tables() {
        for m in Metric::ALL {
            for filter in [Filter::ALL, Filter::platform("facebook")] {
                for (rank, row) in v.ranking(t, m, &filter, 0, usize::MAX) {
                    let prev = v.predecessor(t).map(|p| v.rank_of(p, m, &filter, row.page));
                    let p = v.page(row.page);
                    out.push(format!(
                        "{:?} {} {filter:?} #{rank} {}/{} {:?} {:?} {:?} prev={:?}",
                        t.period,
                        m.as_str(),
                        p.platform,
                        p.id,
                        p.name,
                        row.totals,
                        row.followers,
                        prev
                    ));
                }
            }
        }
    }
    out
}

/// Every page's series in every window a view names, by day and by week,
/// flattened for comparison.
pub fn series(v: &View) -> Vec<String> {
    use engagement_core::view::series::Bucket;
    let mut out = Vec::new();
    for t in v.windows() {
        for bucket in [Bucket::Day, Bucket::Week] {
            let Ok(span) = v.series_span(t, bucket) else { continue };
            for row in v.rows(t) {
                let p = v.page(row.page);
                let points = v.series(t, row.page, span, bucket);
                out.push(format!("{:?} {bucket:?} {}/{} {points:?}", t.period, p.platform, p.id));
            }
        }
    }
    out
}

/// Every page's top lists, live and kept for earlier quarters, by page
/// identity (page numbers may differ between engines).
pub fn top_lists(e: &engagement_core::engine::Engine) -> std::collections::BTreeSet<String> {
    use engagement_core::window::{CalendarKind, Quarter};
    let s = e.snapshot();
    let name = |p: u32| format!("{}/{}", s.platform(p), s.ident(p).id);
    let quarters: Vec<Quarter> =
        s.periods().filter(|q| q.kind == CalendarKind::Quarter).map(|q| Quarter::from_index(q.index)).collect();
    let mut tops = std::collections::BTreeSet::new();
    for p in s.pages() {
        for t in s.top(p).into_iter().chain(quarters.iter().filter_map(|q| s.top_of(p, *q))) {
            let mut posts: Vec<String> = t.posts().map(|t| format!("{} {} {}", t.hash, t.interactions, t.id)).collect();
            posts.sort();
            tops.insert(format!("{} {:?} {posts:?}", name(p), t.quarter));
        }
    }
    tops
}
