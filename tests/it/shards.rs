//! Shard mode against the real broker: three shards of one group split a
//! six-partition topic and answer every query of the seed table exactly as
//! one replica-mode instance on the same topic, from every shard; they
//! stay exact when the input's history is deleted and a shard is killed
//! (its partitions' state comes from the state topic), when it comes back,
//! and when a fourth joins; and none of this raises a rank change.

use std::time::Duration;

use rdkafka::producer::{BaseRecord, Producer};

use crate::support::*;
use engagement_core::synth::{SEED_TABLE, seed_events};

const PARTITIONS: i32 = 6;
const READY: Duration = Duration::from_secs(90);
/// How soon the survivors must answer exactly again after a kill.
const TAKEOVER: Duration = Duration::from_secs(60);

/// One more snapshot of the last post of every seed page, a reaction more
/// than before and observed `n` seconds after the seed's last observation
/// (small enough to change no rank).
fn more_events(n: u32) -> Vec<String> {
    let mut last = std::collections::BTreeMap::new();
    for e in seed_events() {
        let v: serde_json::Value = serde_json::from_str(&e).unwrap();
        last.insert(v["page_id"].as_str().unwrap().to_string(), v);
    }
    last.into_values()
        .map(|mut v| {
            let observed = v["observed_at"].as_str().unwrap().replace("Z", "");
            let at = engagement_core::window::parse_rfc3339(&format!("{observed}Z")).unwrap() + i64::from(n) * 1000;
            v["observed_at"] = engagement_core::window::format_rfc3339(at).into();
            v["reactions"] = (v["reactions"].as_u64().unwrap() + u64::from(n)).into();
            v.to_string()
        })
        .collect()
}

/// Waits until `d` answers with the events of `more_events(n)` applied:
/// every seed page's interactions in 2025-Q3 are `n` above the table's.
fn wait_answers_moved(d: &Daemon, n: u64) {
    wait_until(&format!("the replica to answer with more_events({n})"), READY, || {
        let body = d.json("/v1/rankings?window=2025-Q3&limit=1000");
        let got: Vec<(String, u64)> = body["entries"]
            .as_array()?
            .iter()
            .map(|e| (e["page_id"].as_str().unwrap_or_default().to_string(), e["interactions"].as_u64().unwrap_or(0)))
            .collect();
        SEED_TABLE.iter().all(|p| got.contains(&(p.id.to_string(), p.interactions + n))).then_some(())
    });
}

/// Every query of the seed table: windows, every ranking, every page.
fn queries() -> Vec<String> {
    let mut q = vec!["/v1/windows".to_string()];
    let metrics = ["interactions", "reactions", "comments", "shares", "posts", "interactions_per_post"];
    for w in ["current", "previous", "rolling", "2025-Q3", "2025-Q2"] {
        for m in metrics.iter().chain(&["interactions_per_1k_followers"]) {
            q.push(format!("/v1/rankings?window={w}&metric={m}&limit=1000"));
        }
        q.push(format!("/v1/rankings?window={w}&platform=facebook&limit=2&offset=1"));
    }
    q.extend(SEED_TABLE.iter().map(|p| format!("/v1/pages/facebook/{}", p.id)));
    q.push("/v1/pages/facebook/nobody".into());
    // Series: the page records carry every page's figures per day.
    for w in ["2025-Q3", "rolling"] {
        q.extend(SEED_TABLE.iter().map(|p| format!("/v1/pages/facebook/{}/series?window={w}", p.id)));
    }
    q.push("/v1/compare?page=facebook/moi.egy&page=facebook/whitehouse&page=facebook/ice.gov&bucket=week".into());
    q
}

fn answers(d: &Daemon) -> Vec<(String, u16, String)> {
    queries().into_iter().map(|q| (q.clone(), d.get(&q).0, d.get(&q).1)).collect()
}

/// Waits until every shard answers every query as the replica does.
fn wait_exact(replica: &Daemon, shards: &[&Daemon], timeout: Duration, what: &str) {
    wait_until(what, timeout, || {
        let want = answers(replica);
        shards.iter().all(|s| answers(s) == want).then_some(())
    });
}

fn shard(topic: &str, id: &str) -> Daemon {
    Daemon::start(
        topic,
        &["--mode", "shard", "--instance-id", id, "--kafka-property", "session.timeout.ms=6000"],
        &[("ENGAGEMENT_MONITOR_STATE_CHECKPOINT_INTERVAL", "1s")],
    )
}

/// Rank, leader and watch changes (what alerts fire on) counted by an
/// instance, all windows together.
fn changes(d: &Daemon) -> f64 {
    let (_, text) = d.get("/metrics");
    text.lines()
        .filter(|l| {
            ["engagement_rank_changes_total", "engagement_leader_changes_total", "engagement_watch_changes_total"]
                .iter()
                .any(|m| l.starts_with(m))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn three_shards_answer_as_one_replica_through_kill_restart_and_growth() {
    let topic = unique("shards");
    create_topic(&topic, PARTITIONS);
    produce_keyed(&topic, &seed_events());
    let replica = Daemon::start(&topic, &["--group", &format!("{topic}-replica")], &[]);
    let shards: Vec<Daemon> = ["s0", "s1", "s2"].iter().map(|id| shard(&topic, id)).collect();
    replica.wait_ready(READY);
    shards.iter().for_each(|s| s.wait_ready(READY));
    let (s0, s1, s2) = (&shards[0], &shards[1], &shards[2]);
    wait_exact(&replica, &[s0, s1, s2], READY, "every shard to answer as the replica");
    let body = s1.json("/v1/rankings?window=2025-Q3");
    assert_eq!(body["entries"][0]["page_id"], "whitehouse", "the seed table's leader: {body}");
    assert_eq!(body["entries"].as_array().unwrap().len(), SEED_TABLE.len());

    // The whole input is in the shards' state: delete it up to the
    // group's committed offsets, then kill a shard.
    let group = format!("{topic}-group");
    let ends = end_offsets(&topic, PARTITIONS);
    wait_until("the shards to commit every partition to its end", READY, || {
        (committed_offsets(&group, &topic, PARTITIONS) == ends).then_some(())
    });
    delete_records(&topic, &ends);
    // Kill the shard that holds the most posts.
    let posts = |d: &Daemon| d.metric("engagement_shard_posts").unwrap_or(0.0);
    let victim = (0..3).max_by(|a, b| posts(&shards[*a]).total_cmp(&posts(&shards[*b]))).unwrap();
    let total: f64 = shards.iter().map(posts).sum();
    assert_eq!(total, seed_events().len() as f64, "the shards hold every post once");
    let mut shards = shards;
    let mut killed = shards.remove(victim);
    let victim_id = format!("s{victim}");
    killed.signal("KILL");
    killed.wait_exit(Duration::from_secs(10));
    produce_keyed(&topic, &more_events(1));
    wait_answers_moved(&replica, 1);
    wait_exact(&replica, &[&shards[0], &shards[1]], TAKEOVER, "the survivors to answer exactly again");
    let restored: Vec<String> =
        shards.iter().flat_map(|s| s.logs()).filter(|l| l.contains("partition assigned and restored")).collect();
    assert!(
        restored.iter().any(|l| !l.contains("\"state_offset\":0")),
        "a survivor restored a partition of the killed shard from the state topic: {restored:#?}\n{:#?}",
        killed.logs()
    );

    // It comes back under the same id and takes partitions back.
    let back = shard(&topic, &victim_id);
    back.wait_ready(READY);
    produce_keyed(&topic, &more_events(2));
    wait_answers_moved(&replica, 2);
    wait_exact(&replica, &[&back, &shards[0], &shards[1]], READY, "the restarted shard and the others to be exact");
    wait_until("the restarted shard to own partitions", READY, || {
        (back.metric("engagement_shard_partitions_owned")? > 0.0).then_some(())
    });

    // The group grows to four.
    let fourth = shard(&topic, "s3");
    fourth.wait_ready(READY);
    produce_keyed(&topic, &more_events(3));
    wait_answers_moved(&replica, 3);
    let all = [&back, &shards[0], &shards[1], &fourth];
    wait_exact(&replica, &all, READY, "four shards to be exact");
    wait_until("the fourth shard to own partitions", READY, || {
        (fourth.metric("engagement_shard_partitions_owned")? > 0.0).then_some(())
    });
    let owned: f64 = all.iter().map(|s| s.metric("engagement_shard_partitions_owned").unwrap()).sum();
    assert_eq!(owned, f64::from(PARTITIONS), "every partition has exactly one owner");
    // Saves after the first wrote what changed: increments, each far
    // smaller than the bases; partitions that moved were restored from a
    // base and its increments.
    let bytes = |kind: &str| -> f64 {
        all.iter()
            .map(|s| s.metric(&format!("engagement_shard_checkpoint_bytes_total{{kind=\"{kind}\"}}")).unwrap_or(0.0))
            .sum()
    };
    assert!(bytes("increment") > 0.0, "no shard saved an increment");
    let restored_with_increments = all
        .iter()
        .flat_map(|s| s.logs())
        .any(|l| l.contains("partition assigned and restored") && !l.contains("\"increments\":0"));
    assert!(restored_with_increments, "no partition was restored from a base and increments");

    // The whole input again (a producer's retry storm, an operator's
    // replay): every answer stays exact, on every shard.
    let mut replay = seed_events();
    (1..=3).for_each(|n| replay.extend(more_events(n)));
    let consumed = replica.consumed();
    produce_keyed(&topic, &replay);
    wait_until("the replica to read the replay", READY, || {
        (replica.consumed() >= consumed + replay.len() as f64).then_some(())
    });
    let ends = end_offsets(&topic, PARTITIONS);
    wait_until("the shards to commit the replay", READY, || {
        (committed_offsets(&group, &topic, PARTITIONS) == ends).then_some(())
    });
    wait_exact(&replica, &all, READY, "every shard to stay exact after the replay");

    // No restart or rebalance raised a rank change: every instance counts
    // what the replica counts (the new events change no rank).
    let want = changes(&replica);
    for s in all {
        assert_eq!(changes(s), want, "rank changes of {}", s.addr);
    }
}

#[test]
fn a_page_on_two_partitions_is_counted_in_shard_mode() {
    let topic = unique("shards-split");
    create_topic(&topic, 2);
    let p = "2025-07-01T00:00:00Z";
    // Round robin by index: the same page on partitions 0 and 1.
    let events: Vec<String> = ["a", "b"]
        .iter()
        .map(|post| crate::daemon::event("pg", post, p, "2025-07-02T00:00:00Z", r#","reactions":10"#))
        .collect();
    produce_strings(&topic, 2, &events);
    let d = shard(&topic, "split-0");
    d.wait_ready(READY);
    d.wait_metric("engagement_pages_on_several_partitions", 1.0, READY);
    assert!(d.logs().iter().any(|l| l.contains("pages seen on more than one partition")), "{:#?}", d.logs());
}

#[test]
fn a_shard_that_owns_no_partition_says_so() {
    let topic = unique("shards-idle");
    create_topic(&topic, 1);
    produce_strings(&topic, 1, &seed_events()[..50]);
    let (a, b) = (shard(&topic, "idle-0"), shard(&topic, "idle-1"));
    for d in [&a, &b] {
        d.wait_ready(READY);
    }
    let owned = |d: &Daemon| d.metric("engagement_shard_partitions_owned");
    let idle = wait_until("the group to settle on one owner", READY, || match (owned(&a)?, owned(&b)?) {
        (1.0, 0.0) => Some(&b),
        (0.0, 1.0) => Some(&a),
        _ => None,
    });
    let (code, body) = idle.get("/readyz");
    assert_eq!(code, 200, "it answers like the others: {body}");
    assert!(body.contains("owns no partition"), "{body}");
    assert!(idle.logs().iter().any(|l| l.contains("owns no partition") && l.contains("WARN")), "{:#?}", idle.logs());
    let busy = if std::ptr::eq(idle, &a) { &b } else { &a };
    assert!(!busy.get("/readyz").1.contains("owns no partition"));
}

#[test]
fn a_state_of_other_windows_is_rebuilt_from_the_earliest_offset() {
    let topic = unique("shards-windows");
    create_topic(&topic, 1);
    let published = "2025-07-01T00:00:00Z";
    let events = vec![crate::daemon::event("pg", "a", published, "2025-07-02T00:00:00Z", r#","reactions":7"#)];
    produce_strings(&topic, 1, &events);
    let mut d = shard(&topic, "windows-0");
    d.wait_ready(READY);
    d.wait_metric(r#"engagement_shard_checkpoints_total{result="ok"}"#, 1.0, READY);
    d.signal("TERM");
    assert!(d.wait_exit(Duration::from_secs(30)).0.success());
    // The group's offset is past the event now: resumed from there, the
    // page would be missing; rebuilt from the beginning, it is exact.
    let weeks = [("ENGAGEMENT_MONITOR_WINDOWS_CALENDAR", "quarter,month,week")];
    let d = Daemon::start(
        &topic,
        &["--mode", "shard", "--instance-id", "windows-0", "--kafka-property", "session.timeout.ms=6000"],
        &weeks,
    );
    d.wait_ready(READY);
    assert!(
        d.logs().iter().any(|l| l.contains("not this build's to use: rebuilding the partition")),
        "{:#?}",
        d.logs()
    );
    let page = d.json("/v1/pages/facebook/pg");
    assert_eq!(page["windows"][0]["interactions"], 7, "{page}");
    assert_eq!(d.json("/v1/rankings?window=2025-W27")["entries"][0]["interactions"], 7);
    assert_eq!(d.metric("engagement_history_gaps_total"), Some(0.0), "nothing is missing");
}

#[test]
fn a_damaged_state_is_a_counted_history_gap_not_a_crash() {
    let topic = unique("shards-damaged");
    create_topic(&topic, 1);
    create_topic(&format!("{topic}-shard-state"), 1);
    let p = producer("none");
    let state = format!("{topic}-shard-state");
    p.send(BaseRecord::to(&state).key("manifest").payload("not a manifest")).expect("queued");
    p.flush(Duration::from_secs(30)).expect("acknowledged");
    let published = "2025-07-01T00:00:00Z";
    let events = vec![crate::daemon::event("pg", "a", published, "2025-07-02T00:00:00Z", r#","reactions":7"#)];
    produce_strings(&topic, 1, &events);
    let d = shard(&topic, "damaged-0");
    d.wait_ready(READY);
    d.wait_metric("engagement_history_gaps_total", 1.0, READY);
    assert!(d.logs().iter().any(|l| l.contains("the partition's checkpoint cannot be used")), "{:#?}", d.logs());
    let page = d.json("/v1/pages/facebook/pg");
    assert_eq!(page["windows"][0]["interactions"], 7, "{page}");
}

/// The page-totals topic first refuses every page record (its
/// `max.message.bytes` is too small for one), then takes them: the shard
/// counts and logs each refusal, publishes the refused pages again every
/// cycle, and once the topic takes them answers the seed table exactly.
#[test]
fn a_page_record_the_broker_refuses_is_published_again_until_acknowledged() {
    use rdkafka::admin::{AdminClient, AdminOptions, AlterConfig, NewTopic, ResourceSpecifier, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::config::ClientConfig;

    let topic = unique("shard-refused");
    create_topic(&topic, 2);
    produce_keyed(&topic, &seed_events());
    let totals = format!("{topic}-page-totals");
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", brokers()).create().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let small = NewTopic::new(&totals, 1, TopicReplication::Fixed(1))
        .set("cleanup.policy", "compact")
        .set("max.message.bytes", "200");
    for r in rt.block_on(admin.create_topics([&small], &opts)).expect("create-topics") {
        r.expect("the page-totals topic is created");
    }

    let d = shard(&topic, "r0");
    let failed = r#"engagement_shard_page_record_deliveries_total{result="failed"}"#;
    wait_until("page records to be refused", READY, || (d.metric(failed)? > 0.0).then_some(()));
    assert!(d.logs().iter().any(|l| l.contains("a page record was refused by the page-totals topic")));
    let refused_once = d.metric(failed).unwrap_or(0.0);
    wait_until("the refused pages to be published again", READY, || (d.metric(failed)? > refused_once).then_some(()));

    let larger = AlterConfig::new(ResourceSpecifier::Topic(&totals))
        .set("cleanup.policy", "compact")
        .set("max.message.bytes", "1048576");
    for r in rt.block_on(admin.alter_configs([&larger], &opts)).expect("alter-configs") {
        r.expect("the page-totals topic takes records now");
    }
    wait_until("the shard to answer the seed table", READY, || {
        let (code, text) = d.get("/v1/rankings?window=2025-Q3&limit=1000");
        let body: serde_json::Value = serde_json::from_str(&text).ok().filter(|_| code == 200)?;
        let got: Vec<(String, u64)> = body["entries"]
            .as_array()?
            .iter()
            .map(|e| (e["page_id"].as_str().unwrap_or("").to_string(), e["interactions"].as_u64().unwrap_or(0)))
            .collect();
        SEED_TABLE.iter().all(|p| got.contains(&(p.id.to_string(), p.interactions))).then_some(())
    });
    let acknowledged = r#"engagement_shard_page_record_deliveries_total{result="acknowledged"}"#;
    assert!(d.metric(acknowledged).unwrap_or(0.0) > 0.0);
}
