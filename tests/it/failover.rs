//! A failover you can see, on the real broker: three shards of one group
//! split a six-partition topic and are scraped by a real Prometheus that
//! evaluates `deploy/prometheus/rules.yml` every second (tests/it/stack.rs).
//! One shard is SIGKILLed. Its partitions are called silent after
//! `cluster.partition_silent_after` (2 s here), well before the group's
//! session timeout (15 s here) lets a survivor take them over, so the order
//! is deterministic: `EngagementShardPartitionsUnowned` fires while no
//! survivor owns them, a survivor then logs the takeover naming the killed
//! shard, and the alert resolves.
//!
//! With a rank-events topic, one shard of three (the owner of partition 0)
//! publishes: each change is on the topic once, with its id; when that
//! shard is SIGKILLed, the change the survivors saw before one of them took
//! partition 0 over is published by it, once.

use std::time::{Duration, Instant};

use crate::stack::*;
use crate::support::*;
use engagement_core::synth::seed_events;

const PARTITIONS: i32 = 6;
const READY: Duration = Duration::from_secs(90);
/// The group's session timeout: how long a killed shard keeps its partitions.
const SESSION: Duration = Duration::from_secs(15);
const UNOWNED: &str = r#"ALERTS{alertname="EngagementShardPartitionsUnowned",alertstate="firing"}"#;

fn shard(topic: &str, id: &str) -> Daemon {
    let session = format!("session.timeout.ms={}", SESSION.as_millis());
    Daemon::start(
        topic,
        &["--mode", "shard", "--instance-id", id, "--kafka-property", &session],
        &[
            ("ENGAGEMENT_MONITOR_CLUSTER_PARTITION_SILENT_AFTER", "2s"),
            ("ENGAGEMENT_MONITOR_STATE_CHECKPOINT_INTERVAL", "1s"),
        ],
    )
}

fn owned(d: &Daemon) -> f64 {
    d.metric("engagement_shard_partitions_owned").unwrap_or(0.0)
}

/// The log lines of `shards` after the first `from[i]` of shard i that
/// contain every one of `parts`.
fn lines(shards: &[Daemon], from: &[usize], parts: &[&str]) -> Vec<String> {
    let after = |(s, from): (&Daemon, &usize)| s.logs().into_iter().skip(*from);
    shards.iter().zip(from).flat_map(after).filter(|l| parts.iter().all(|p| l.contains(p))).collect()
}

/// The value of the first sample of `promql`.
fn value(prom: &Service, promql: &str) -> Option<f64> {
    query(prom, promql).first()?["value"][1].as_str()?.parse().ok()
}

#[test]
fn a_killed_shards_partitions_alert_until_a_survivor_takes_them_over() {
    let topic = unique("failover");
    create_topic(&topic, PARTITIONS);
    produce_keyed(&topic, &seed_events());
    let targets = Targets::new();
    let prom = prometheus(&targets, None);
    let mut shards: Vec<Daemon> = ["f0", "f1", "f2"].iter().map(|id| shard(&topic, id)).collect();
    shards.iter().for_each(|s| s.wait_ready(READY));
    wait_until("the group to give each shard two partitions", READY, || {
        shards.iter().all(|s| owned(s) == 2.0).then_some(())
    });
    let addrs: Vec<&str> = shards.iter().map(|s| s.addr.as_str()).collect();
    targets.set(&addrs);
    wait_until("Prometheus to see every partition's heartbeat from three ready shards", READY, || {
        let ready = query(&prom, r#"engagement_phase{phase="ready"} == 1"#).len();
        let heard = value(&prom, "count(max by (partition) (engagement_shard_partition_record_age_seconds))");
        (ready == 3 && heard == Some(f64::from(PARTITIONS))).then_some(())
    });
    assert!(query(&prom, UNOWNED).is_empty(), "no alert while every owner speaks");

    let mut killed = shards.remove(1);
    // Moves while the group formed may have silenced partitions briefly:
    // only what the survivors log from the kill on counts.
    let from: Vec<usize> = shards.iter().map(|s| s.logs().len()).collect();
    let at = Instant::now();
    killed.signal("KILL");
    killed.wait_exit(Duration::from_secs(10));
    wait_until("the unowned-partitions alert to fire", SESSION, || (!query(&prom, UNOWNED).is_empty()).then_some(()));
    let fired = at.elapsed();
    eprintln!("failover: SIGKILL -> EngagementShardPartitionsUnowned firing in {fired:?}");
    let unowned =
        r#"max(engagement_shard_partitions_unowned and on (instance) (engagement_phase{phase="ready"} == 1))"#;
    wait_until("Prometheus to count the killed shard's two partitions unowned", SESSION, || {
        (value(&prom, unowned) == Some(2.0)).then_some(())
    });
    let silent = wait_until("each survivor to log each of f1's partitions silent", SESSION, || {
        let l = lines(&shards, &from, &["partition silent", "WARN", r#""last_owner":"f1""#]);
        (l.len() >= 4).then_some(l)
    });
    assert_eq!(silent.len(), 4, "once each: {silent:#?}");
    assert!(lines(&shards, &from, &["taking over partitions"]).is_empty(), "all this before any takeover");
    assert_eq!(shards.iter().map(owned).sum::<f64>(), 4.0, "the survivors own only their own partitions");

    let took = wait_until("a survivor to log the takeover", SESSION * 4, || {
        let l = lines(&shards, &from, &["taking over partitions", "WARN", r#""last_owner":"f1""#]);
        (!l.is_empty()).then_some(l)
    });
    let after = at.elapsed();
    eprintln!("failover: SIGKILL -> takeover logged in {after:?}: {}", took[0]);
    assert!(after >= SESSION - Duration::from_secs(1), "the group moved the partitions after the session timeout");
    wait_until("the alert to resolve", READY, || query(&prom, UNOWNED).is_empty().then_some(()));
    eprintln!("failover: SIGKILL -> alert resolved in {:?}", at.elapsed());
    assert_eq!(shards.iter().map(owned).sum::<f64>(), f64::from(PARTITIONS), "every partition has an owner again");
    wait_until("every partition that fell silent to be logged owned again", READY, || {
        let silent = lines(&shards, &from, &["partition silent", "WARN"]);
        let again = lines(&shards, &from, &["partition owned again", "INFO"]);
        (again.len() == silent.len()).then_some(())
    });
    for s in &shards {
        assert_eq!(s.metric("engagement_shard_partitions_unowned"), Some(0.0));
    }
}

/// One post of `page` with `reactions`, observed `minute`s after the start.
fn post(page: &str, reactions: u64, minute: u32) -> String {
    serde_json::json!({
        "platform": "facebook", "page_id": page, "post_id": format!("{page}-1"),
        "published_at": "2025-08-01T00:00:00Z", "observed_at": format!("2025-08-02T00:{minute:02}:00Z"),
        "reactions": reactions,
    })
    .to_string()
}

/// (kind, page_id, new_rank) of each event.
fn facts(events: &[serde_json::Value]) -> Vec<(String, String, Option<u64>)> {
    let mut f: Vec<_> = events
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap_or("").into(),
                e["page_id"].as_str().unwrap_or("").into(),
                e["new_rank"].as_u64(),
            )
        })
        .collect();
    f.sort();
    f
}

/// Waits until `topic` holds `n` events, then for 3 s more (15 ranking
/// intervals) that no other comes; returns them.
fn exactly(topic: &str, n: usize, what: &str) -> Vec<serde_json::Value> {
    wait_until(what, Duration::from_secs(60), || (consume_json(topic).len() >= n).then_some(()));
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        let events = consume_json(topic);
        assert_eq!(events.len(), n, "{what}: {events:#?}");
        std::thread::sleep(Duration::from_millis(250));
    }
    consume_json(topic)
}

fn publishing(d: &Daemon) -> bool {
    d.metric("engagement_rank_events_publishing") == Some(1.0)
}

#[test]
fn a_fleet_publishes_each_change_once_and_a_killed_publisher_loses_none() {
    let (topic, ranks) = (unique("fleet-events"), unique("fleet-events-ranks"));
    create_topic(&topic, PARTITIONS);
    create_topic(&ranks, 1);
    // p1 (600) ... p6 (100): a top 3 of p1, p2, p3.
    produce_keyed(&topic, &(1..=6u64).map(|i| post(&format!("p{i}"), 700 - 100 * i, 1)).collect::<Vec<_>>());
    let dir = TempDir::new("fleet-events");
    let config = dir.0.join("engagement-monitor.toml");
    let watch = "[[ranking.watches]]\nname = \"top\"\nwindows = [\"current\"]\ntop_n = 3\nsettle = \"0s\"\n";
    std::fs::write(&config, watch).unwrap();
    let config = config.display().to_string();
    let start = |id: &str| {
        Daemon::start(
            &topic,
            &[
                "--mode",
                "shard",
                "--instance-id",
                id,
                "--config",
                &config,
                "--kafka-property",
                "session.timeout.ms=10000",
            ],
            &[
                ("ENGAGEMENT_MONITOR_KAFKA_RANK_EVENTS_TOPIC", ranks.as_str()),
                ("ENGAGEMENT_MONITOR_STATE_CHECKPOINT_INTERVAL", "1s"),
            ],
        )
    };
    let mut shards: Vec<Daemon> = ["e0", "e1", "e2"].iter().map(|id| start(id)).collect();
    shards.iter().for_each(|s| s.wait_ready(READY));
    wait_until("the group to give each shard two partitions", READY, || {
        shards.iter().all(|s| owned(s) == 2.0).then_some(())
    });
    let leads =
        r#"engagement_watch_rank{watch="top",window="current",scope="all",group="",platform="facebook",page_id="p1"}"#;
    wait_until("every shard to rank p1 first", READY, || {
        shards.iter().all(|s| s.metric(leads) == Some(1.0)).then_some(())
    });
    let publishers: Vec<usize> = (0..3).filter(|&i| publishing(&shards[i])).collect();
    assert_eq!(publishers.len(), 1, "one publisher among three shards");

    // p6 overtakes everyone: a new leader, an entry, an exit; once each.
    produce_keyed(&topic, &[post("p6", 1000, 2)]);
    let first = exactly(&ranks, 3, "three events of the first change, once each");
    let p = |k: &str, id: &str, r: Option<u64>| (k.to_string(), id.to_string(), r);
    assert_eq!(facts(&first), [p("entered", "p6", Some(1)), p("exited", "p3", None), p("leader", "p6", Some(1))]);

    // The publisher dies; a page on a survivor's partition overtakes
    // while partition 0 (and the publishing) has no owner.
    let mut killed = shards.remove(publishers[0]);
    killed.signal("KILL");
    killed.wait_exit(Duration::from_secs(10));
    let lag = |d: &Daemon| -> Vec<i32> {
        let (_, text) = d.get("/metrics");
        text.lines()
            .filter(|l| l.starts_with("engagement_consumer_lag_messages{"))
            .filter_map(|l| l.split("partition=\"").nth(1)?.split('"').next()?.parse().ok())
            .collect()
    };
    let survivor_partition = lag(&shards[0]).into_iter().find(|&p| p != 0).expect("a survivor owns a partition");
    produce_to(&topic, survivor_partition, &[post("n1", 2000, 3)]);
    let survivor_sees =
        r#"engagement_watch_rank{watch="top",window="current",scope="all",group="",platform="facebook",page_id="n1"}"#;
    wait_until("the survivors to rank n1 first", READY, || {
        shards.iter().all(|s| s.metric(survivor_sees) == Some(1.0)).then_some(())
    });
    assert!(!shards.iter().any(publishing), "seen before the session timeout hands partition 0 over");
    let all = exactly(&ranks, 6, "three more events once a survivor publishes");
    let second: Vec<_> = all.iter().filter(|e| !first.contains(e)).cloned().collect();
    assert_eq!(facts(&second), [p("entered", "n1", Some(1)), p("exited", "p2", None), p("leader", "n1", Some(1))]);
    let mut ids: Vec<&str> = all.iter().filter_map(|e| e["id"].as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 6, "each with its own id: {all:#?}");
    let now: Vec<bool> = shards.iter().map(publishing).collect();
    assert_eq!(now.iter().filter(|p| **p).count(), 1, "one survivor publishes: {now:?}");
    let republished: f64 = shards.iter().filter_map(|s| s.metric("engagement_rank_events_republished_total")).sum();
    assert_eq!(republished, 3.0, "the new publisher published what the fleet saw while nobody published");
    let took = shards.iter().flat_map(|s| s.logs()).filter(|l| l.contains("took the rank events over")).count();
    assert!(took >= 1, "the new publisher says it took over");
}
