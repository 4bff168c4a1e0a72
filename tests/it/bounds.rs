//! Bounds under attack: a flood of distinct page, post and event ids keeps
//! every structure within its configured bound; what is rejected is counted
//! and visible in /metrics, and earlier answers are untouched.

use std::time::Duration;

use crate::support::*;

#[test]
fn a_flood_of_distinct_ids_stays_within_the_bounds() {
    let topic = unique("flood");
    create_topic(&topic, 1);
    let ev = |page: usize, post: usize, extra: &str| {
        format!(r#"{{"page_id":"p{page}","post_id":"x{post}","published_at":"2025-08-01T00:00:00Z","observed_at":"2025-08-02T00:00:00Z","reactions":1{extra}}}"#)
            .into_bytes()
    };
    let mut events = vec![br#"{"page_id":"first","post_id":"a","published_at":"2025-08-01T00:00:00Z","observed_at":"2025-08-02T00:00:00Z","reactions":500}"#.to_vec()];
    events.extend((0..5_000).map(|i| {
        format!(r#"{{"page_id":"p2","post_id":"d","kind":"delta","event_id":"e{i}","published_at":"2025-08-01T00:00:00Z","observed_at":"2025-08-02T00:00:00Z","reactions":1}}"#).into_bytes()
    }));
    events.extend((0..20_000).map(|i| ev(i, i, "")));
    events.extend((0..20_000).map(|i| ev(1, 100_000 + i, "")));
    produce(&topic, 1, &events, "lz4");
    let bounds = [
        ("ENGAGEMENT_MONITOR_ENGINE_MAX_PAGES", "1000"),
        ("ENGAGEMENT_MONITOR_ENGINE_MAX_POSTS", "5000"),
        ("ENGAGEMENT_MONITOR_ENGINE_MAX_EVENT_IDS", "2000"),
    ];
    let d = Daemon::start(&topic, &[], &bounds);
    d.wait_ready(Duration::from_secs(60));
    let total = events.len() as f64;
    wait_until("every event counted", Duration::from_secs(60), || (d.consumed() == total).then_some(()));
    let entries = |s: &str| d.metric(&format!(r#"engagement_state_entries{{structure="{s}"}}"#)).unwrap();
    let limit = |s: &str| d.metric(&format!(r#"engagement_state_limit{{structure="{s}"}}"#)).unwrap();
    for s in ["pages", "posts", "event_ids"] {
        wait_until(&format!("{s} gauge"), Duration::from_secs(10), || (entries(s) > 0.0).then_some(()));
        assert!(entries(s) <= limit(s), "{s}: {} > {}", entries(s), limit(s));
    }
    assert_eq!(limit("pages"), 1000.0);
    assert_eq!(entries("posts"), 5000.0, "posts fill up to their bound");
    for bound in ["pages", "posts", "event_ids"] {
        let n = d.metric(&format!(r#"engagement_rejected_events_total{{bound="{bound}"}}"#)).unwrap();
        assert!(n > 0.0, "rejections at the {bound} bound are counted");
    }
    let rejected = d.metric(r#"engagement_events_total{outcome="rejected"}"#).unwrap();
    let applied = d.metric(r#"engagement_events_total{outcome="applied"}"#).unwrap();
    assert_eq!(applied + rejected, total, "every event was applied or refused");
    let first = d.json("/v1/pages/facebook/first");
    assert_eq!(first["windows"][0]["interactions"], 500, "the first page is intact");
}
