//! Rankings within groups against the real broker: the seed table among
//! 24 larger media and celebrity pages on one topic, a page directory on a
//! compacted topic, and every instance — one replica and three shards of
//! one group — answers `category:government` with exactly the seed table
//! (ranks and `previous_period_rank` among government pages), a country
//! and a list likewise; a directory update and a tombstone re-rank the
//! group live, and a shard's kill changes no answer. Also: the directory
//! from a file, re-read when it changes; a missing directory topic stops
//! the start; bad directory records are counted by reason.

use std::time::Duration;

use rdkafka::producer::{BaseRecord, Producer};

use crate::support::*;
use engagement_core::synth::groups::{seed_directory, tail_events};
use engagement_core::synth::{SEED_TABLE, seed_events};

const PARTITIONS: i32 = 6;
const READY: Duration = Duration::from_secs(90);

/// 2025-Q2 totals of the seed pages, in another order than Q3's: the
/// Ministry of Interior led.
const Q2: [(&str, u64); 5] = [
    ("whitehouse", 22_400_000),
    ("moi.egy", 25_100_000),
    ("pmcambodia", 16_200_000),
    ("inc.bihar", 19_000_000),
    ("ice.gov", 12_300_000),
];

fn q2_events() -> Vec<String> {
    Q2.iter()
        .map(|(id, n)| {
            format!(
                r#"{{"page_id":"{id}","post_id":"{id}-q2","published_at":"2025-05-10T00:00:00Z","observed_at":"2025-05-11T00:00:00Z","reactions":{n}}}"#
            )
        })
        .collect()
}

/// `check` until it holds or `timeout` passes (`None` then).
fn wait_until_or<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if std::time::Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn tombstone(topic: &str, key: &str) {
    let p = producer("none");
    p.send(BaseRecord::<str, str>::to(topic).key(key).partition(0)).expect("queued");
    p.flush(Duration::from_secs(30)).expect("acknowledged");
}

/// A ranking entry: rank, page, interactions, posts, previous period's rank.
type Entry = (u64, String, u64, u64, Option<u64>);

/// What a group's 2025-Q3 ranking must be, computed here from the seed
/// table: (rank, page, interactions, posts, rank among the same pages in
/// Q2).
fn expected(pages: &[&str]) -> Vec<Entry> {
    let mut q3: Vec<_> = SEED_TABLE.iter().filter(|p| pages.contains(&p.id)).collect();
    q3.sort_by_key(|p| std::cmp::Reverse(p.interactions));
    let mut q2: Vec<_> = Q2.iter().filter(|(id, _)| pages.contains(id)).collect();
    q2.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    q3.iter()
        .enumerate()
        .map(|(i, p)| {
            let prev = q2.iter().position(|(id, _)| *id == p.id).map(|r| r as u64 + 1);
            (i as u64 + 1, p.id.to_string(), p.interactions, p.posts, prev)
        })
        .collect()
}

/// The group ranking `query` of `d` in the terms of [`expected`], with its
/// `total_pages`.
fn ranking(d: &Daemon, query: &str) -> Option<(Vec<Entry>, u64)> {
    let (code, body) = d.get(&format!("/v1/rankings?window=2025-Q3&limit=100&{query}"));
    let body: serde_json::Value = serde_json::from_str(&body).ok().filter(|_| code == 200)?;
    let entries = body["entries"].as_array()?.iter().map(|e| {
        Some((
            e["rank"].as_u64()?,
            e["page_id"].as_str()?.to_string(),
            e["interactions"].as_u64()?,
            e["posts"].as_u64()?,
            e["previous_period_rank"].as_u64(),
        ))
    });
    Some((entries.collect::<Option<Vec<_>>>()?, body["total_pages"].as_u64()?))
}

/// Waits until `d` answers each `(query, pages)` with exactly the seed
/// table restricted to `pages`.
fn wait_groups(d: &Daemon, cases: &[(&str, &[&str])], what: &str) {
    let mut last = Vec::new();
    let done = wait_until_or(READY, || {
        last = cases.iter().map(|(query, _)| ranking(d, query)).collect();
        let want: Vec<_> = cases.iter().map(|(_, pages)| Some((expected(pages), pages.len() as u64))).collect();
        (last == want).then_some(())
    });
    assert!(done.is_some(), "timed out waiting for {what}: {cases:?} answered {last:?}");
}

const GOVERNMENT: [&str; 5] = ["whitehouse", "moi.egy", "pmcambodia", "inc.bihar", "ice.gov"];

#[test]
fn every_instance_ranks_the_seed_table_within_its_group_and_follows_the_directory() {
    let (topic, directory) = (unique("groups"), unique("groups-directory"));
    create_topic(&topic, PARTITIONS);
    create_compacted_topic(&directory);
    let mut events = seed_events();
    events.extend(q2_events());
    events.extend(tail_events());
    produce_keyed(&topic, &events);
    produce_records(&directory, &seed_directory());

    let dir_flag = ["--directory-topic", directory.as_str()];
    let replica_group = format!("{topic}-replica");
    let replica = Daemon::start(&topic, &[&dir_flag[..], &["--group", &replica_group]].concat(), &[]);
    let shard = |id: &str| {
        let flags = ["--mode", "shard", "--instance-id", id, "--kafka-property", "session.timeout.ms=6000"];
        Daemon::start(
            &topic,
            &[&dir_flag[..], &flags].concat(),
            &[("ENGAGEMENT_MONITOR_STATE_CHECKPOINT_INTERVAL", "1s")],
        )
    };
    let mut shards: Vec<Daemon> = ["g0", "g1", "g2"].iter().map(|id| shard(id)).collect();
    replica.wait_ready(READY);
    shards.iter().for_each(|s| s.wait_ready(READY));

    let all: Vec<&Daemon> = std::iter::once(&replica).chain(&shards).collect();
    let first = &[
        ("group=category:government", &GOVERNMENT[..]),
        ("group=country:EG&group=category:government", &["moi.egy"][..]),
        ("group=list:g20-gov&group=category:government", &["whitehouse", "inc.bihar", "ice.gov"][..]),
    ];
    for d in &all {
        wait_groups(d, first, "the seed table within its groups");
        let top = d.json("/v1/rankings?window=2025-Q3&limit=1");
        assert_eq!(top["entries"][0]["page_id"], "demo.newsnetwork", "a media page leads all pages: {top}");
        assert!(top["total_pages"].as_u64().unwrap() >= 29);
    }
    let page = replica.json("/v1/pages/facebook/moi.egy");
    assert_eq!(
        page["groups"],
        serde_json::json!({"category": ["government"], "country": ["EG"], "list": ["mena-security"]})
    );
    let groups = shards[1].json("/v1/groups");
    assert_eq!(groups["dimensions"][0]["name"], "category", "{groups}");

    // Cambodia's Prime Minister moves to another category: every instance
    // re-ranks the group at its next view, without a restart.
    let moved = r#"{"page_id":"pmcambodia","groups":{"category":"media","country":"KH"}}"#;
    produce_records(&directory, &[("facebook/pmcambodia".into(), moved.into())]);
    let without = ["whitehouse", "moi.egy", "inc.bihar", "ice.gov"];
    for d in &all {
        wait_groups(d, &[("group=category:government", &without[..])], "the group without pmcambodia");
    }
    // A tombstone takes Bihar's page out of every group.
    tombstone(&directory, "facebook/inc.bihar");
    let three = ["whitehouse", "moi.egy", "ice.gov"];
    for d in &all {
        wait_groups(d, &[("group=category:government", &three[..])], "the group after the tombstone");
        wait_groups(d, &[("group=country:IN&group=category:government", &[][..])], "no government page in IN");
    }

    // A shard is killed; the survivors take its partitions over (the
    // group's session timeout), and a late viral post of the Ministry of
    // Interior, in whichever partition, makes it the group's #1 on every
    // instance.
    let mut killed = shards.remove(0);
    killed.signal("KILL");
    killed.wait_exit(Duration::from_secs(10));
    wait_until("the survivors to own every partition", READY, || {
        let owned: f64 = shards.iter().map(|s| s.metric("engagement_shard_partitions_owned").unwrap_or(0.0)).sum();
        (owned == f64::from(PARTITIONS)).then_some(())
    });
    let viral = r#"{"page_id":"moi.egy","post_id":"moi-late","published_at":"2025-09-20T00:00:00Z","observed_at":"2025-09-21T00:00:00Z","reactions":2000000}"#;
    produce_keyed(&topic, &[viral.to_string()]);
    let moi = SEED_TABLE[1].interactions + 2_000_000;
    let want = vec![
        (1, "moi.egy".to_string(), moi),
        (2, "whitehouse".into(), SEED_TABLE[0].interactions),
        (3, "ice.gov".into(), SEED_TABLE[4].interactions),
    ];
    for d in std::iter::once(&replica).chain(&shards) {
        wait_until("the group's new leader", READY, || {
            let (entries, total) = ranking(d, "group=category:government")?;
            let got: Vec<_> = entries.into_iter().map(|(rank, id, n, _, _)| (rank, id, n)).collect();
            (got == want && total == 3).then_some(())
        });
    }
}

#[test]
fn the_directory_comes_from_a_file_reread_when_it_changes() {
    let topic = unique("groups-file");
    create_topic(&topic, 1);
    produce_strings(&topic, 1, &[seed_events(), q2_events()].concat());
    let dir = TempDir::new("directory-file");
    let path = dir.0.join("pages.jsonl");
    let line = |id: &str, category: &str| format!(r#"{{"page_id":"{id}","groups":{{"category":"{category}"}}}}"#);
    let lines: Vec<String> = GOVERNMENT.iter().map(|id| line(id, "government")).collect();
    std::fs::write(&path, format!("# the seed pages\n{}\nnot json\n", lines.join("\n"))).unwrap();
    let env = [("ENGAGEMENT_MONITOR_DIRECTORY_FILE", path.to_str().unwrap())];
    let d = Daemon::start(&topic, &[], &env);
    d.wait_ready(READY);
    wait_groups(&d, &[("group=category:government", &GOVERNMENT[..])], "the group from the file");
    assert_eq!(d.metric(r#"engagement_directory_refused_total{reason="not_json"}"#), Some(1.0));

    // Rewritten: ice.gov is an agency now, and a page left out leaves.
    let mut lines: Vec<String> = GOVERNMENT[..4].iter().map(|id| line(id, "government")).collect();
    lines[3] = line("ice.gov", "agency");
    std::fs::write(&path, lines.join("\n")).unwrap();
    let kept = ["whitehouse", "moi.egy", "pmcambodia"];
    wait_groups(
        &d,
        &[("group=category:government", &kept[..]), ("group=category:agency", &["ice.gov"][..])],
        "the rewritten file",
    );
    assert_eq!(d.json("/v1/groups")["pages"], 4);
}

#[test]
fn a_missing_directory_topic_stops_the_start_naming_it_and_bad_records_are_counted() {
    let topic = unique("groups-missing");
    create_topic(&topic, 1);
    let missing = unique("no-such-directory");
    let args =
        ["run", "--brokers", &brokers(), "--topic", &topic, "--listen", "127.0.0.1:0", "--directory-topic", &missing];
    let exited = run_to_exit(&args, &[], Duration::from_secs(30));
    assert!(!exited.status.success(), "{}", exited.stderr);
    assert!(exited.stderr.contains(&format!("directory.topic {missing} does not exist")), "{}", exited.stderr);

    // Bad records on the topic: each counted under its reason, none
    // changes the groups the good ones gave.
    let directory = unique("groups-hostile");
    create_compacted_topic(&directory);
    let bad = [
        ("facebook/whitehouse", "{", "not_json"),
        ("facebook/whitehouse", "[1]", "not_object"),
        ("no-slash", r#"{"page_id":"x"}"#, "bad_key"),
        ("facebook/other", r#"{"page_id":"whitehouse"}"#, "key_mismatch"),
        ("facebook/whitehouse", r#"{"page_id":"whitehouse","groups":{"Bad":"x"}}"#, "bad_dimension"),
        ("facebook/whitehouse", r#"{"page_id":"whitehouse","groups":{"c":7}}"#, "bad_value_type"),
        ("facebook/whitehouse", r#"{"page_id":"whitehouse","groups":{"c":""}}"#, "bad_value"),
    ];
    let mut records = vec![(
        "facebook/whitehouse".to_string(),
        r#"{"page_id":"whitehouse","groups":{"category":"government"}}"#.to_string(),
    )];
    records.extend(bad.iter().map(|(k, v, _)| (k.to_string(), v.to_string())));
    produce_records(&directory, &records);
    produce_strings(&topic, 1, &[seed_events(), q2_events()].concat());
    let d = Daemon::start(&topic, &["--directory-topic", &directory], &[]);
    d.wait_ready(READY);
    for (_, _, reason) in bad {
        assert_eq!(
            d.metric(&format!(r#"engagement_directory_refused_total{{reason="{reason}"}}"#)),
            Some(1.0),
            "{reason}"
        );
    }
    assert_eq!(d.metric(r#"engagement_directory_records_total{result="applied"}"#), Some(1.0));
    wait_groups(&d, &[("group=category:government", &["whitehouse"][..])], "the good record's group");
    assert!(d.logs().iter().any(|l| l.contains("page directory record refused")), "refusals are logged");
}
