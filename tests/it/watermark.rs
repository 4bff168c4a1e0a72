//! Time you can trust, on the real broker: a replica and a fleet of three
//! shards on the seed data set, then the newcomer's event: one record
//! with no `observed_at`, so its message time (now, fourteen months past
//! the data) is its observation. Before the watermark guard, it moved the
//! watermark and retention dropped 2025-Q3. Now it is refused, logged with
//! its partition, offset and jump, and counted; every instance answers
//! the 2025-Q3 ranking exactly as before.

use std::time::Duration;

use crate::support::*;
use engagement_core::synth::{SEED_TABLE, seed_events};

const PARTITIONS: i32 = 6;
const READY: Duration = Duration::from_secs(90);
const Q3: &str = "/v1/rankings?window=2025-Q3&limit=1000";

/// Whether `d` answers the seed table for 2025-Q3.
fn answers_the_seed(d: &Daemon) -> bool {
    let body = d.json(Q3);
    let got: Vec<(String, u64)> = body["entries"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| (e["page_id"].as_str().unwrap_or("").to_string(), e["interactions"].as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default();
    SEED_TABLE.iter().all(|p| got.contains(&(p.id.to_string(), p.interactions)))
}

fn refused(d: &Daemon) -> f64 {
    d.metric(r#"engagement_rejected_events_total{bound="watermark_jump"}"#).unwrap_or(0.0)
}

#[test]
fn one_event_at_message_time_months_ahead_changes_no_answer_and_is_logged_and_counted() {
    let topic = unique("watermark-jump");
    create_topic(&topic, PARTITIONS);
    produce_keyed(&topic, &seed_events());
    let replica = Daemon::start(&topic, &["--group", &format!("{topic}-replica")], &[]);
    let shards: Vec<Daemon> = ["j0", "j1", "j2"]
        .iter()
        .map(|id| Daemon::start(&topic, &["--mode", "shard", "--instance-id", id], &[]))
        .collect();
    let all: Vec<&Daemon> = std::iter::once(&replica).chain(&shards).collect();
    for d in &all {
        d.wait_ready(READY);
    }
    wait_until("every instance to answer the seed table", READY, || {
        all.iter().all(|d| answers_the_seed(d)).then_some(())
    });
    let before: Vec<(String, String)> =
        all.iter().map(|d| (d.json(Q3).to_string(), d.json("/v1/windows")["watermark"].to_string())).collect();

    let stray = serde_json::json!({
        "platform": "facebook", "page_id": "whitehouse", "post_id": "hand-written-1",
        "published_at": "2026-12-01T00:00:00Z", "reactions": 5,
    });
    produce_keyed(&topic, &[stray.to_string()]);
    wait_until("the replica and one shard to refuse it", READY, || {
        let shards: f64 = shards.iter().map(refused).sum();
        (refused(&replica) == 1.0 && shards == 1.0).then_some(())
    });
    let held = r#"engagement_watermark_jumps_total{result="held"}"#;
    assert_eq!(replica.metric(held), Some(1.0));
    assert_eq!(shards.iter().filter_map(|s| s.metric(held)).sum::<f64>(), 1.0);
    for d in &all {
        assert_eq!(d.metric(r#"engagement_periods_dropped_total{kind="quarter"}"#), Some(0.0), "no quarter dropped");
    }
    let line = replica
        .logs()
        .into_iter()
        .find(|l| l.contains("an event jumps the watermark"))
        .expect("the replica logs the jump");
    let v: serde_json::Value = serde_json::from_str(&line).expect("a JSON log line");
    assert!(v["partition"].is_i64() && v["offset"].is_i64(), "{line}");
    assert_eq!(v["level"], "WARN");
    assert!(v["jump"].as_str().is_some_and(|j| j.starts_with("4") && j.contains('d')), "{line}");
    // An event after it on its partition (the page's): once every
    // instance shows it, every view includes whatever the stray did.
    let follow_up = serde_json::json!({
        "platform": "facebook", "page_id": "whitehouse", "post_id": "follow-up-1",
        "published_at": "2025-09-01T00:00:00Z", "observed_at": "2025-09-02T00:00:00Z", "reactions": 0,
    });
    produce_keyed(&topic, &[follow_up.to_string()]);
    let posts = |d: &Daemon| {
        let page = d.json("/v1/pages/facebook/whitehouse");
        page["windows"].as_array()?.iter().find(|w| w["id"] == "2025-Q3")?["posts"].as_u64()
    };
    wait_until("every instance to show the follow-up", READY, || {
        all.iter().all(|d| posts(d) == Some(651)).then_some(())
    });
    for (d, (_, watermark)) in all.iter().zip(&before) {
        assert!(answers_the_seed(d), "2025-Q3 is exact at {}", d.addr);
        assert_eq!(&d.json("/v1/windows")["watermark"].to_string(), watermark, "the watermark stayed");
    }
}
