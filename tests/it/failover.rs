//! A failover you can see, on the real broker: three shards of one group
//! split a six-partition topic and are scraped by a real Prometheus that
//! evaluates `deploy/prometheus/rules.yml` every second (tests/it/stack.rs).
//! One shard is SIGKILLed. Its partitions are called silent after
//! `cluster.partition_silent_after` (2 s here), well before the group's
//! session timeout (15 s here) lets a survivor take them over, so the order
//! is deterministic: `EngagementShardPartitionsUnowned` fires while no
//! survivor owns them, a survivor then logs the takeover naming the killed
//! shard, and the alert resolves.

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
