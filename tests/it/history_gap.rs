//! A history gap keeps a replica in service: it checkpoints the seed data
//! set and stops; more events arrive and retention (Kafka's delete-records
//! here) deletes every record of the topic, those the checkpoint needs
//! next included. On restart the daemon counts and logs the gap per
//! partition and turns ready within 60 s: what is gone will never be
//! consumed, so it is not counted as lag (before, `/readyz` said
//! `catching up: N messages behind` for ever on a quiet topic). A shard
//! whose input was deleted before it saved a state does the same.

use std::time::Duration;

use crate::support::*;
use engagement_core::synth::{SEED_TABLE, seed_events};

const PARTITIONS: i32 = 2;

/// `n` pages on their own, one post each: `early0`, `early1`, ...
fn early(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            format!(
                r#"{{"page_id":"early{i}","post_id":"x","published_at":"2025-09-01T00:00:00Z","observed_at":"2025-09-02T00:00:00Z","reactions":{}}}"#,
                i + 1
            )
        })
        .collect()
}

const EARLY: usize = 12;

/// Every page of the 2025-Q3 ranking with whether its history is complete.
fn marks(d: &Daemon) -> Vec<(String, bool)> {
    let q3 = d.json("/v1/rankings?window=2025-Q3&limit=1000");
    let entries = q3["entries"].as_array().expect("entries");
    entries
        .iter()
        .map(|e| (e["page_id"].as_str().unwrap().to_string(), e["history_complete"].as_bool().unwrap()))
        .collect()
}

/// The seed pages (partition 1) are whole; the early pages (partition 0,
/// the one that lost records) are marked, in rankings, in page answers and
/// in the gauge.
fn assert_marked(d: &Daemon) {
    for (page, complete) in marks(d) {
        assert_eq!(complete, !page.starts_with("early"), "{page} on {}", d.addr);
    }
    let page = d.json("/v1/pages/facebook/early3");
    assert_eq!(page["history_complete"], false, "{page}");
    let page = d.json(&format!("/v1/pages/facebook/{}", SEED_TABLE[0].id));
    assert_eq!(page["history_complete"], true, "{page}");
    assert_eq!(d.metric("engagement_history_incomplete_pages"), Some(EARLY as f64));
}

#[test]
fn a_replica_whose_next_offsets_were_deleted_turns_ready_and_counts_the_gap() {
    let topic = unique("history-gap");
    create_topic(&topic, PARTITIONS);
    // The seed pages on partition 1, the early pages on partition 0.
    produce_to(&topic, 1, &seed_events());
    produce_to(&topic, 0, &early(EARLY));
    let state = TempDir::new("history-gap");
    let args = ["--state-dir", state.0.to_str().unwrap()];
    let mut d = Daemon::start(&topic, &args, &[]);
    d.wait_ready(Duration::from_secs(90));
    d.signal("TERM");
    d.wait_exit(Duration::from_secs(30));

    // While it is down: more events on partition 0, then everything deleted.
    let more: Vec<String> = (0..40)
        .map(|i| {
            format!(
                r#"{{"page_id":"late{i}","post_id":"x","published_at":"2025-09-01T00:00:00Z","observed_at":"2025-09-02T00:00:00Z","reactions":1}}"#
            )
        })
        .collect();
    produce_to(&topic, 0, &more);
    delete_records(&topic, &end_offsets(&topic, PARTITIONS));

    let d = Daemon::start(&topic, &args, &[]);
    d.wait_ready(Duration::from_secs(60));
    assert_eq!(d.metric("engagement_history_gaps_total"), Some(1.0), "one gap: partition 0");
    let gaps: Vec<String> = d.logs().into_iter().filter(|l| l.contains("offsets no longer exist")).collect();
    assert_eq!(gaps.len(), 1, "{gaps:#?}");
    for line in &gaps {
        let v: serde_json::Value = serde_json::from_str(line).expect("a JSON log line");
        assert!(v["partition"] == 0 && v["needed"].is_i64() && v["earliest"].is_i64(), "{line}");
        assert!(v["needed"].as_i64() < v["earliest"].as_i64(), "{line}");
    }
    // The checkpoint's figures stand; the deleted events are lost, and the
    // pages of the partition that lost them are marked.
    let q3 = d.json("/v1/rankings?window=2025-Q3&limit=1000");
    for p in SEED_TABLE {
        let e = q3["entries"].as_array().unwrap().iter().find(|e| e["page_id"] == p.id).expect("a seed page");
        assert_eq!(e["interactions"], p.interactions, "{}", p.id);
    }
    assert!(q3["entries"].as_array().unwrap().iter().all(|e| !e["page_id"].as_str().unwrap().starts_with("late")));
    assert_marked(&d);
}

/// Shard mode: partition 0's input deleted before any checkpoint, the
/// shard SIGKILLed and restarted under its id. It restores nothing, counts
/// the gap and turns ready within 60 s instead of counting the deleted
/// records as lag for ever; partition 1 is rebuilt from its input. The
/// early pages keep the figures last published for them and are marked
/// on every instance, and a second shard answers every query as the first.
#[test]
fn a_shard_whose_input_was_deleted_before_a_checkpoint_turns_ready_and_counts_the_gap() {
    let topic = unique("history-gap-shard");
    create_topic(&topic, PARTITIONS);
    produce_to(&topic, 1, &seed_events());
    produce_to(&topic, 0, &early(EARLY));
    // No save before the kill: offsets are committed only after one.
    let args =
        |id: &'static str| ["--mode", "shard", "--instance-id", id, "--kafka-property", "session.timeout.ms=6000"];
    let env = [("ENGAGEMENT_MONITOR_STATE_CHECKPOINT_INTERVAL", "1h")];
    let mut d = Daemon::start(&topic, &args("h0"), &env);
    d.wait_ready(Duration::from_secs(90));
    let ends = end_offsets(&topic, PARTITIONS);
    delete_records(&topic, &[ends[0], 0]);
    d.signal("KILL");
    d.wait_exit(Duration::from_secs(10));

    let d = Daemon::start(&topic, &args("h0"), &env);
    d.wait_ready(Duration::from_secs(60));
    assert_eq!(d.metric("engagement_history_gaps_total"), Some(1.0), "one gap: partition 0");
    assert_eq!(d.metric("engagement_shard_partitions_owned"), Some(f64::from(PARTITIONS)));
    wait_until("the gap to be marked", Duration::from_secs(30), || {
        (d.metric("engagement_history_incomplete_pages") == Some(EARLY as f64)).then_some(())
    });
    assert_marked(&d);

    let other = Daemon::start(&topic, &args("h1"), &env);
    other.wait_ready(Duration::from_secs(90));
    let queries: Vec<String> = ["2025-Q3", "current", "rolling"]
        .iter()
        .map(|w| format!("/v1/rankings?window={w}&limit=1000"))
        .chain(["/v1/pages/facebook/early3".to_string(), format!("/v1/pages/facebook/{}", SEED_TABLE[0].id)])
        .collect();
    wait_until("both shards to answer alike", Duration::from_secs(60), || {
        queries.iter().all(|q| d.get(q) == other.get(q)).then_some(())
    });
    wait_until("the second shard to mark the gap", Duration::from_secs(30), || {
        (other.metric("engagement_history_incomplete_pages") == Some(EARLY as f64)).then_some(())
    });
    assert_marked(&other);
}
