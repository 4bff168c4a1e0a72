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

#[test]
fn a_replica_whose_next_offsets_were_deleted_turns_ready_and_counts_the_gap() {
    let topic = unique("history-gap");
    create_topic(&topic, PARTITIONS);
    produce_strings(&topic, PARTITIONS, &seed_events());
    let state = TempDir::new("history-gap");
    let args = ["--state-dir", state.0.to_str().unwrap()];
    let mut d = Daemon::start(&topic, &args, &[]);
    d.wait_ready(Duration::from_secs(90));
    d.signal("TERM");
    d.wait_exit(Duration::from_secs(30));

    // While it is down: more events, then everything deleted.
    let more: Vec<String> = (0..40)
        .map(|i| {
            format!(
                r#"{{"page_id":"late{i}","post_id":"x","published_at":"2025-09-01T00:00:00Z","observed_at":"2025-09-02T00:00:00Z","reactions":1}}"#
            )
        })
        .collect();
    produce_strings(&topic, PARTITIONS, &more);
    delete_records(&topic, &end_offsets(&topic, PARTITIONS));

    let d = Daemon::start(&topic, &args, &[]);
    d.wait_ready(Duration::from_secs(60));
    assert_eq!(d.metric("engagement_history_gaps_total"), Some(f64::from(PARTITIONS)), "one gap per partition");
    let gaps: Vec<String> = d.logs().into_iter().filter(|l| l.contains("offsets no longer exist")).collect();
    assert_eq!(gaps.len(), PARTITIONS as usize, "{gaps:#?}");
    for line in &gaps {
        let v: serde_json::Value = serde_json::from_str(line).expect("a JSON log line");
        assert!(v["partition"].is_i64() && v["needed"].is_i64() && v["earliest"].is_i64(), "{line}");
        assert!(v["needed"].as_i64() < v["earliest"].as_i64(), "{line}");
    }
    // The checkpoint's figures stand; the deleted events are lost.
    let q3 = d.json("/v1/rankings?window=2025-Q3&limit=1000");
    for p in SEED_TABLE {
        let e = q3["entries"].as_array().unwrap().iter().find(|e| e["page_id"] == p.id).expect("a seed page");
        assert_eq!(e["interactions"], p.interactions, "{}", p.id);
    }
    assert!(q3["entries"].as_array().unwrap().iter().all(|e| !e["page_id"].as_str().unwrap().starts_with("late")));
}

/// Shard mode: the input deleted before any state save, the shard
/// SIGKILLed and restarted under its id. It restores nothing, counts the
/// gap and turns ready within 60 s instead of counting the deleted
/// records as lag for ever.
#[test]
fn a_shard_whose_input_was_deleted_before_a_save_turns_ready_and_counts_the_gap() {
    let topic = unique("history-gap-shard");
    create_topic(&topic, PARTITIONS);
    produce_keyed(&topic, &seed_events());
    // No save before the kill: offsets are committed only after one.
    let args = ["--mode", "shard", "--instance-id", "h0", "--kafka-property", "session.timeout.ms=6000"];
    let env = [("ENGAGEMENT_MONITOR_STATE_CHECKPOINT_INTERVAL", "1h")];
    let mut d = Daemon::start(&topic, &args, &env);
    d.wait_ready(Duration::from_secs(90));
    let ends = end_offsets(&topic, PARTITIONS);
    let with_records = ends.iter().filter(|e| **e > 0).count() as f64;
    delete_records(&topic, &ends);
    d.signal("KILL");
    d.wait_exit(Duration::from_secs(10));

    let d = Daemon::start(&topic, &args, &env);
    d.wait_ready(Duration::from_secs(60));
    assert_eq!(d.metric("engagement_history_gaps_total"), Some(with_records), "one gap per partition that had records");
    assert_eq!(d.metric("engagement_shard_partitions_owned"), Some(f64::from(PARTITIONS)));
}
