//! Windows of every kind on the real broker: the seed data set with
//! quarters, months, ISO weeks, years and three rolling windows configured
//! answers its quarter as with the defaults, and its September 2025, an ISO
//! week and the 7-day window as an independent recomputation here says
//! (the `time` crate's calendar, every post kept, each window filtered
//! from scratch).

use std::collections::BTreeMap;
use std::time::Duration;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::support::*;
use engagement_core::synth::{SEED_TABLE, seed_events};

const READY: Duration = Duration::from_secs(60);

/// A seed post as the test reads it back from its JSON.
pub(crate) struct Post {
    page: String,
    pub(crate) published: OffsetDateTime,
    observed: OffsetDateTime,
    interactions: u64,
}

pub(crate) fn posts() -> Vec<Post> {
    seed_events()
        .iter()
        .map(|json| {
            let v: serde_json::Value = serde_json::from_str(json).unwrap();
            let at = |k: &str| OffsetDateTime::parse(v[k].as_str().unwrap(), &Rfc3339).unwrap();
            let n = |k: &str| v[k].as_u64().unwrap_or(0);
            Post {
                page: v["page_id"].as_str().unwrap().into(),
                published: at("published_at"),
                observed: at("observed_at"),
                interactions: n("reactions") + n("comments") + n("shares"),
            }
        })
        .collect()
}

/// (page, interactions, posts) of the posts `keep` selects, ranked by
/// interactions, ties by page id.
pub(crate) fn ranking(posts: &[Post], keep: impl Fn(&Post) -> bool) -> Vec<(String, u64, u64)> {
    let mut pages: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for p in posts.iter().filter(|p| keep(p)) {
        let e = pages.entry(&p.page).or_default();
        *e = (e.0 + p.interactions, e.1 + 1);
    }
    let mut out: Vec<(String, u64, u64)> = pages.into_iter().map(|(p, (i, n))| (p.to_string(), i, n)).collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    out
}

pub(crate) fn served(d: &Daemon, window: &str) -> Vec<(String, u64, u64)> {
    let body = d.json(&format!("/v1/rankings?window={window}&limit=1000"));
    let entry = |e: &serde_json::Value| {
        (e["page_id"].as_str().unwrap().to_string(), e["interactions"].as_u64().unwrap(), e["posts"].as_u64().unwrap())
    };
    body["entries"].as_array().unwrap().iter().map(entry).collect()
}

#[test]
fn every_kind_answers_the_seed_data_exactly() {
    let topic = unique("windows");
    create_topic(&topic, 3);
    produce_strings(&topic, 3, &seed_events());
    let env = [
        ("ENGAGEMENT_MONITOR_WINDOWS_CALENDAR", "quarter,month,week,year"),
        ("ENGAGEMENT_MONITOR_WINDOWS_ROLLING", "90d,28d,7d"),
    ];
    let d = Daemon::start(&topic, &[], &env);
    d.wait_ready(READY);
    d.wait_metric(r#"engagement_events_total{outcome="applied"}"#, seed_events().len() as f64, READY);
    let posts = posts();

    // The quarter, as the contract's table says and as with the defaults.
    let table: Vec<(String, u64, u64)> = SEED_TABLE.iter().map(|p| (p.id.into(), p.interactions, p.posts)).collect();
    assert_eq!(served(&d, "2025-Q3"), table);
    assert_eq!(served(&d, "2025"), table, "the year holds the same posts");

    // September 2025 and ISO week 38 (Monday 15 to Sunday 21 September).
    let september = ranking(&posts, |p| p.published.year() == 2025 && p.published.month() == time::Month::September);
    assert!(!september.is_empty() && september.len() <= table.len());
    assert_eq!(served(&d, "2025-09"), september);
    let week = ranking(&posts, |p| p.published.to_iso_week_date().0 == 2025 && p.published.iso_week() == 38);
    assert!(!week.is_empty());
    assert_eq!(served(&d, "2025-W38"), week);

    // The last 7 days up to the watermark (the latest observed_at).
    let watermark = posts.iter().map(|p| p.observed).max().unwrap();
    let since = watermark - time::Duration::days(7);
    let last_week = ranking(&posts, |p| p.published >= since && p.published <= watermark);
    assert!(!last_week.is_empty() && last_week != september);
    assert_eq!(served(&d, "rolling-7d"), last_week);

    // /v1/windows lists every configured kind; a kind not configured is a
    // 404 that says which are.
    let windows = d.json("/v1/windows");
    let ids: Vec<&str> = windows["windows"].as_array().unwrap().iter().map(|w| w["id"].as_str().unwrap()).collect();
    for id in ["2025-Q3", "2025-09", "2025-W38", "2025", "rolling", "rolling-28d", "rolling-7d"] {
        assert!(ids.contains(&id), "{id} in {ids:?}");
    }
    let (code, body) = d.get("/v1/rankings?window=rolling-30d");
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("quarter, month, week, year, rolling 90d, rolling 28d, rolling 7d"), "{body}");
    assert_eq!(d.get("/v1/rankings?window=2025-W99").0, 400);
}
