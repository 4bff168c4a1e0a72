//! The daemon binary against the project's real Apache Kafka broker
//! (`scripts/kafka.sh start`; `scripts/test.sh` starts it). Each test uses
//! its own topic and group.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::*;
use engagement_core::synth::{SEED_TABLE, seed_events};

const READY: Duration = Duration::from_secs(60);

pub(crate) fn event(page: &str, post: &str, published: &str, observed: &str, extra: &str) -> String {
    format!(
        r#"{{"page_id":"{page}","post_id":"{post}","published_at":"{published}","observed_at":"{observed}"{extra}}}"#
    )
}

fn entries(body: &serde_json::Value) -> Vec<(String, u64)> {
    body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["page_id"].as_str().unwrap().to_string(), e["interactions"].as_u64().unwrap()))
        .collect()
}

#[test]
fn the_spec_table_is_served_exactly() {
    let topic = unique("spec-table");
    create_topic(&topic, 3);
    produce_strings(&topic, 3, &seed_events());
    let d = Daemon::start(&topic, &[], &[]);
    d.wait_ready(READY);
    let body = d.json("/v1/rankings?window=2025-Q3");
    let got: Vec<(String, u64, u64, Option<u64>)> = body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["page_id"].as_str().unwrap().into(),
                e["interactions"].as_u64().unwrap(),
                e["posts"].as_u64().unwrap(),
                e["followers"].as_u64(),
            )
        })
        .collect();
    let want: Vec<(String, u64, u64, Option<u64>)> =
        SEED_TABLE.iter().map(|p| (p.id.into(), p.interactions, p.posts, p.followers)).collect();
    assert_eq!(got, want);
    let per_1k = d.json("/v1/rankings?window=2025-Q3&metric=interactions_per_1k_followers&limit=1");
    assert_eq!(per_1k["entries"][0]["page_id"], "pmcambodia");
    // The same ranking as CSV, read by Python's csv module: the same rows,
    // the Ministry of Interior's name (Arabic, with a comma) whole.
    let (code, csv) = d.get("/v1/rankings?window=2025-Q3&format=csv");
    assert_eq!(code, 200, "{csv}");
    let rows = python_csv(&csv);
    let entries = body["entries"].as_array().unwrap();
    assert_eq!(rows.len(), entries.len());
    for (row, e) in rows.iter().zip(entries) {
        for column in ["rank", "page_id", "page_name", "interactions", "reactions", "comments", "shares", "posts"] {
            let want = match &e[column] {
                serde_json::Value::String(s) => s.clone(),
                v => v.to_string(),
            };
            assert_eq!(row[column].as_str(), Some(want.as_str()), "{column} of {}", e["page_id"]);
        }
        let followers = e["followers"].as_u64().map(|f| f.to_string()).unwrap_or_default();
        assert_eq!(row["followers"].as_str(), Some(followers.as_str()));
    }
    assert!(rows.iter().any(|r| r["page_name"] == "وزارة الداخلية - Egypt, Ministry of Interior"));
    let applied = seed_events().len() as f64;
    d.wait_metric(r#"engagement_events_total{outcome="applied"}"#, applied, READY);
    assert_eq!(
        d.metric(r#"engagement_page_rank{window="current",platform="facebook",page_id="whitehouse"}"#),
        Some(1.0)
    );
}

/// The seed quarter with a viral post of the Ministry of Interior on
/// 2025-09-28: each page's series sums to its row of the ranking, and the
/// comparison names the day the running totals cross, as recomputed here
/// from the events themselves.
#[test]
fn series_sum_to_the_ranking_and_the_comparison_names_the_crossing_day() {
    let topic = unique("series");
    create_topic(&topic, 3);
    let mut events = seed_events();
    events.push(viral_post_of_the_ministry());
    produce_strings(&topic, 3, &events);
    let d = Daemon::start(&topic, &[], &[]);
    d.wait_ready(READY);
    d.wait_metric(r#"engagement_events_total{outcome="applied"}"#, events.len() as f64, READY);
    let ranking = d.json("/v1/rankings?window=2025-Q3");
    let figures = ["posts", "interactions", "reactions", "comments", "shares", "views"];
    for page in ["moi.egy", "whitehouse"] {
        let row = ranking["entries"].as_array().unwrap().iter().find(|e| e["page_id"] == page).unwrap();
        for bucket in ["day", "week"] {
            let series = d.json(&format!("/v1/pages/facebook/{page}/series?window=2025-Q3&bucket={bucket}"));
            let buckets = series["buckets"].as_array().unwrap();
            for f in figures {
                let sum: u64 = buckets.iter().map(|b| b[f].as_u64().unwrap()).sum();
                assert_eq!(Some(sum), row[f].as_u64(), "{page} {bucket} {f}");
                assert_eq!(buckets.last().unwrap()["running"][f], row[f], "{page} {bucket} running {f}");
            }
        }
    }
    // Per page and publication day, the interactions of the events (one
    // snapshot per post), then the days one's running total passes the other's.
    let mut per_day: std::collections::BTreeMap<(String, String), u64> = Default::default();
    for e in &events {
        let e: serde_json::Value = serde_json::from_str(e).unwrap();
        let page = e["page_id"].as_str().unwrap();
        let day = &e["published_at"].as_str().unwrap()[..10];
        if ["moi.egy", "whitehouse"].contains(&page) && day.starts_with("2025-0") && day >= "2025-07-01" {
            let n = ["reactions", "comments", "shares"].iter().map(|k| e[k].as_u64().unwrap_or(0)).sum::<u64>();
            *per_day.entry((day.to_owned(), page.to_owned())).or_default() += n;
        }
    }
    let (mut moi, mut wh, mut moi_ahead, mut crossings) = (0, 0, None, Vec::new());
    let days: std::collections::BTreeSet<&String> = per_day.keys().map(|(day, _)| day).collect();
    for day in days {
        moi += per_day.get(&(day.clone(), "moi.egy".into())).copied().unwrap_or(0);
        wh += per_day.get(&(day.clone(), "whitehouse".into())).copied().unwrap_or(0);
        let ahead = moi > wh;
        if moi_ahead.is_some_and(|was| was != ahead) && moi != wh {
            let (page, passed) = if ahead { ("moi.egy", "whitehouse") } else { ("whitehouse", "moi.egy") };
            crossings.push(serde_json::json!({"start": day, "page": format!("facebook/{page}"), "passed": format!("facebook/{passed}")}));
        }
        moi_ahead = Some(ahead);
    }
    assert_eq!(crossings.len(), 1, "the viral post makes one crossing: {crossings:?}");
    let c = d.json("/v1/compare?page=facebook/moi.egy&page=facebook/whitehouse&window=2025-Q3");
    assert_eq!(c["overtakes"], serde_json::Value::Array(crossings));
    let last = c["buckets"].as_array().unwrap().last().unwrap();
    assert_eq!(last["order"], serde_json::json!(["facebook/moi.egy", "facebook/whitehouse"]));
    // The series as CSV, read by Python's csv module: a row per day, the
    // figures of the JSON.
    let json = d.json("/v1/pages/facebook/moi.egy/series?window=2025-Q3");
    let (code, csv) = d.get("/v1/pages/facebook/moi.egy/series?window=2025-Q3&format=csv");
    assert_eq!(code, 200, "{csv}");
    let rows = python_csv(&csv);
    let buckets = json["buckets"].as_array().unwrap();
    assert_eq!(rows.len(), buckets.len());
    for (row, b) in rows.iter().zip(buckets) {
        assert_eq!(row["start"], b["start"]);
        assert_eq!(row["interactions"].as_str(), Some(b["interactions"].to_string().as_str()));
        assert_eq!(row["running_interactions"].as_str(), Some(b["running"]["interactions"].to_string().as_str()));
    }
}

#[test]
fn every_outcome_is_counted() {
    let topic = unique("outcomes");
    create_topic(&topic, 1);
    let p = "2025-07-01T00:00:00Z";
    let events = vec![
        event("pg", "a", p, "2025-07-02T00:00:00Z", r#","reactions":10"#), // applied
        event("pg", "a", p, "2025-07-01T12:00:00Z", r#","reactions":99"#), // stale
        event("pg", "d", p, "2025-07-02T00:00:00Z", r#","kind":"delta","event_id":"e1","reactions":5"#), // applied
        event("pg", "d", p, "2025-07-02T00:00:00Z", r#","kind":"delta","event_id":"e1","reactions":5"#), // duplicate
        event("pg", "a", p, "2025-07-03T00:00:00Z", r#","kind":"delta","event_id":"e2","reactions":1"#), // conflict
        event("pg", "old", "2023-01-01T00:00:00Z", "2025-07-03T00:00:00Z", ""), // expired
        r#"{"page_id":"pg"}"#.to_string(),                                 // invalid
    ];
    produce_strings(&topic, 1, &events);
    let d = Daemon::start(&topic, &[], &[]);
    for (outcome, n) in [
        ("applied", 2.0),
        ("stale", 1.0),
        ("duplicate", 1.0),
        ("conflict", 1.0),
        ("expired", 1.0),
        ("invalid", 1.0),
        ("rejected", 0.0),
    ] {
        d.wait_metric(&format!(r#"engagement_events_total{{outcome="{outcome}"}}"#), n, READY);
    }
    assert_eq!(d.metric(r#"engagement_invalid_events_total{reason="missing post_id"}"#), Some(1.0));
    let body = d.json("/v1/rankings");
    assert_eq!(entries(&body), vec![("pg".to_string(), 15)]);
}

/// Offsets are committed under the group id (for lag monitoring): the
/// broker holds what was applied, and each commit's result is counted
/// (async commits once reported nothing, so none was ever counted and the
/// last one at shutdown was waited for in vain).
#[test]
fn offset_commits_reach_the_broker_and_are_counted() {
    let topic = unique("commits");
    create_topic(&topic, 2);
    let p = "2025-07-01T00:00:00Z";
    let events: Vec<String> = (0..10).map(|i| event("pg", &format!("p{i}"), p, "2025-07-02T00:00:00Z", "")).collect();
    produce_strings(&topic, 2, &events);
    let d = Daemon::start(&topic, &[], &[]);
    d.wait_metric(r#"engagement_events_total{outcome="applied"}"#, 10.0, READY);
    let ok = r#"engagement_offset_commits_total{result="ok"}"#;
    wait_until("a commit counted as ok", READY, || (d.metric(ok)? >= 1.0).then_some(()));
    assert_eq!(d.metric(r#"engagement_offset_commits_total{result="failed"}"#), Some(0.0));
    let group = format!("{topic}-group");
    wait_until("the broker to hold the offsets of all 10 events", READY, || {
        (committed_offsets(&group, &topic, 2).iter().sum::<i64>() == 10).then_some(())
    });
}

#[test]
fn platform_filter_and_late_observations() {
    let topic = unique("platforms");
    create_topic(&topic, 2);
    let events = vec![
        event("fbpage", "1", "2025-09-30T23:00:00Z", "2025-09-30T23:30:00Z", r#","reactions":10"#),
        event(
            "igpage",
            "1",
            "2025-09-15T00:00:00Z",
            "2025-09-16T00:00:00Z",
            r#","platform":"instagram","reactions":50"#,
        ),
        // Observed in Q4, counts for Q3 where the post was published.
        event("fbpage", "1", "2025-09-30T23:00:00Z", "2025-11-02T00:00:00Z", r#","reactions":70"#),
    ];
    produce_strings(&topic, 1, &events);
    // The late observation moves the watermark a month in one event: with
    // the guard (docs/events.md#watermark-jumps) off, it is taken at once.
    let d = Daemon::start(&topic, &[], &[("ENGAGEMENT_MONITOR_EVENTS_MAX_WATERMARK_JUMP", "0s")]);
    d.wait_ready(READY);
    wait_until("the late observation to be applied", READY, || {
        (d.json("/v1/rankings?window=2025-Q3")["entries"][0]["interactions"] == 70).then_some(())
    });
    let q3 = d.json("/v1/rankings?window=2025-Q3");
    assert_eq!(entries(&q3), vec![("fbpage".to_string(), 70), ("igpage".to_string(), 50)]);
    let ig = d.json("/v1/rankings?window=2025-Q3&platform=instagram");
    assert_eq!(entries(&ig), vec![("igpage".to_string(), 50)]);
    assert_eq!(ig["total_pages"], 1);
    let current = d.json("/v1/rankings?window=current");
    assert_eq!(current["window"]["id"], "2025-Q4");
    assert_eq!(current["total_pages"], 0, "no post was published in Q4");
    assert_eq!(d.json("/v1/rankings?window=previous")["window"]["id"], "2025-Q3");
}

#[test]
fn a_restart_without_checkpoint_replays_from_the_earliest_offset() {
    let topic = unique("restart");
    create_topic(&topic, 3);
    produce_strings(&topic, 3, &seed_events()[..900]);
    let first = {
        let mut d = Daemon::start(&topic, &[], &[]);
        d.wait_ready(READY);
        d.wait_metric(r#"engagement_events_total{outcome="applied"}"#, 900.0, READY);
        let body = d.json("/v1/rankings?window=2025-Q3&limit=100");
        d.signal("TERM");
        assert!(d.wait_exit(Duration::from_secs(15)).0.success());
        body
    };
    let d = Daemon::start(&topic, &[], &[]);
    d.wait_ready(READY);
    d.wait_metric(r#"engagement_events_total{outcome="applied"}"#, 900.0, READY);
    let again = d.json("/v1/rankings?window=2025-Q3&limit=100");
    assert_eq!(again["entries"], first["entries"]);
}

/// An invalid event.
const BAD: &str = r#"{"page_id":"p","post_id":"x","published_at":"2025-07-01T00:00:00Z","reactions":-3}"#;

/// A daemon on a new topic holding [`BAD`], dead-lettering to `dlq` with
/// messages given up after `timeout_ms`.
fn dead_lettering(dlq: &str, timeout_ms: u32) -> Daemon {
    let topic = unique("dlq-src");
    create_topic(&topic, 1);
    produce_strings(&topic, 1, &[BAD.to_string()]);
    let timeout = format!("message.timeout.ms={timeout_ms}");
    Daemon::start(&topic, &["--kafka-property", &timeout], &[("ENGAGEMENT_MONITOR_KAFKA_DEAD_LETTER_TOPIC", dlq)])
}

#[test]
fn invalid_events_go_to_the_dead_letter_topic_with_their_reason() {
    let dlq = unique("dlq");
    create_topic(&dlq, 1);
    let (d, bad) = (dead_lettering(&dlq, 10_000), BAD);
    d.wait_metric(r#"engagement_produced_messages_total{kind="dead_letter",result="delivered"}"#, 1.0, READY);
    let out = Command::new("kcat")
        .args(["-b", &brokers(), "-C", "-t", &dlq, "-o", "beginning", "-c", "1", "-e", "-q", "-f", "%h|%s\n"])
        .stderr(Stdio::inherit())
        .output()
        .expect("kcat runs (scripts/install-deps.sh installs it)");
    let line = String::from_utf8_lossy(&out.stdout);
    assert!(line.contains("reason=reactions out of range"), "{line}");
    assert!(line.trim_end().ends_with(bad), "payload copied unchanged: {line}");
}

#[test]
fn a_dead_letter_topic_that_does_not_exist_is_counted_and_logged() {
    let missing = unique("dlq-missing");
    let d = dead_lettering(&missing, 2000);
    d.wait_metric(r#"engagement_produced_messages_total{kind="dead_letter",result="failed"}"#, 1.0, READY);
    let logs = d.logs();
    let line = logs.iter().find(|l| l.contains("could not be delivered")).expect("a log line says so");
    assert!(line.contains(&missing) && line.contains("WARN"), "{line}");
}

#[test]
fn events_produced_by_kcat_are_ranked() {
    let topic = unique("kcat");
    create_topic(&topic, 3);
    let lines: String = (0..30)
        .map(|i| {
            format!(
                "{}\n",
                event(
                    &format!("k{}", i % 3),
                    &i.to_string(),
                    "2025-08-01T00:00:00Z",
                    "2025-08-02T00:00:00Z",
                    &format!(r#","comments":{i}"#)
                )
            )
        })
        .collect();
    let mut kcat = Command::new("kcat")
        .args(["-b", &brokers(), "-P", "-t", &topic, "-z", "snappy"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("kcat runs (scripts/install-deps.sh installs it)");
    use std::io::Write;
    kcat.stdin.take().unwrap().write_all(lines.as_bytes()).unwrap();
    assert!(kcat.wait().unwrap().success());
    let d = Daemon::start(&topic, &[], &[]);
    d.wait_metric(r#"engagement_events_total{outcome="applied"}"#, 30.0, READY);
    d.wait_ready(READY);
    wait_until("all 30 events in the view", READY, || {
        (d.json("/v1/rankings")["entries"].as_array()?.len() == 3).then_some(())
    });
    let body = d.json("/v1/rankings");
    // k2 has comments 2+5+...+29 = 155, k1 145, k0 135.
    assert_eq!(entries(&body), vec![("k2".to_string(), 155), ("k1".to_string(), 145), ("k0".to_string(), 135)]);
}

#[test]
fn compressed_batches_are_consumed() {
    let topic = unique("codecs");
    create_topic(&topic, 1);
    for (i, codec) in ["gzip", "snappy", "lz4", "zstd"].iter().enumerate() {
        let e = event(&format!("c{i}"), "1", "2025-08-01T00:00:00Z", "2025-08-02T00:00:00Z", r#","shares":1"#);
        produce(&topic, 1, &[e.into_bytes()], codec);
    }
    let d = Daemon::start(&topic, &[], &[]);
    d.wait_metric(r#"engagement_events_total{outcome="applied"}"#, 4.0, READY);
}

#[test]
fn sigterm_exits_zero_in_time_and_metrics_pass_promtool() {
    let topic = unique("sigterm");
    create_topic(&topic, 3);
    let mut events = seed_events();
    events.push(r#"{"page_id":"a\"b","post_id":"p","published_at":0,"page_name":"quote\" and\nnewline"}"#.to_string());
    produce_strings(&topic, 3, &events);
    let mut d = Daemon::start(&topic, &[], &[]);
    d.wait_ready(READY);
    let (_, metrics) = d.get("/metrics");
    promtool_accepts(&metrics);
    d.signal("TERM");
    let (status, took) = d.wait_exit(Duration::from_secs(15));
    assert!(status.success(), "exit status {status}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert!(d.logs().iter().any(|l| l.contains("stopped")));
}

#[test]
fn sigterm_exits_in_time_when_the_broker_is_unreachable() {
    let mut d = Daemon::launch("127.0.0.1:1", "nowhere", &[], &[]);
    let (code, body) = d.get("/readyz");
    assert_eq!(code, 503, "not ready without a broker: {body}");
    d.signal("TERM");
    let (status, took) = d.wait_exit(Duration::from_secs(15));
    assert!(status.success() && took < Duration::from_secs(11), "{status} after {took:?}");
}

#[test]
fn partitions_added_later_are_consumed() {
    use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::config::ClientConfig;
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let topic = unique("grow");
    create_topic(&topic, 1);
    produce_strings(&topic, 1, &[event("p0", "1", "2025-08-01T00:00:00Z", "2025-08-02T00:00:00Z", "")]);
    let d = Daemon::start(&topic, &[], &[]);
    d.wait_ready(READY);
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", brokers()).create().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let grown = rt.block_on(admin.create_partitions([&NewPartitions::new(&topic, 3)], &AdminOptions::new())).unwrap();
    assert!(grown.iter().all(Result::is_ok), "{grown:?}");
    let producer: BaseProducer = ClientConfig::new().set("bootstrap.servers", brokers()).create().unwrap();
    let payload = event("p2", "1", "2025-08-01T00:00:00Z", "2025-08-02T00:00:00Z", "");
    wait_until("partition 2 to accept a message", Duration::from_secs(30), || {
        producer.send(BaseRecord::<str, str>::to(&topic).partition(2).payload(&payload)).ok()?;
        producer.flush(Duration::from_secs(5)).ok()
    });
    d.wait_metric(r#"engagement_events_total{outcome="applied"}"#, 2.0, READY);
    let lag = format!(r#"engagement_consumer_lag_messages{{partition="2",topic="{topic}"}}"#);
    wait_until("lag of the new partition to read 0", Duration::from_secs(30), || {
        (d.metric(&lag)? == 0.0).then_some(())
    });
}

/// Producers should key events by page: pages whose events come from two
/// partitions are counted and said in the log; a topic keyed by page (what
/// `produce` and `repartition` write) has none.
#[test]
fn pages_on_several_partitions_are_counted_and_logged() {
    let (t1, t2) = ("2025-08-01T00:00:00Z", "2025-08-02T00:00:00Z");
    let scattered = unique("scattered-pages");
    create_topic(&scattered, 2);
    // Round-robin by index: fbpage on partitions 0 and 1, igpage on 0 only.
    let events =
        vec![event("fbpage", "1", t1, t2, ""), event("fbpage", "2", t1, t2, ""), event("igpage", "1", t1, t2, "")];
    produce_strings(&scattered, 2, &events);
    let d = Daemon::start(&scattered, &[], &[]);
    d.wait_ready(READY);
    wait_until("the scattered page counted", READY, || {
        (d.metric("engagement_pages_on_several_partitions")? == 1.0).then_some(())
    });
    let said = d.logs().iter().filter(|l| l.contains("pages seen on more than one partition")).count();
    assert_eq!(said, 1, "{:#?}", d.logs());

    let keyed = unique("keyed-pages");
    let out = run_to_exit(
        &["produce", "--brokers", &brokers(), "--topic", &keyed, "--partitions", "3", "--no-progress"],
        &[],
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{}", out.stderr);
    let d = Daemon::start(&keyed, &[], &[]);
    d.wait_ready(READY);
    // The same view sets both gauges: once every post is in, the count is final.
    let posts = seed_events().len() as f64;
    wait_until("every post in a published view", READY, || {
        (d.metric("engagement_state_entries{structure=\"posts\"}")? == posts).then_some(())
    });
    assert_eq!(d.metric("engagement_pages_on_several_partitions"), Some(0.0));
}

/// `text` read by Python's `csv.DictReader`: one JSON object per row.
fn python_csv(text: &str) -> Vec<serde_json::Value> {
    use std::io::Write;
    let script = "import csv, io, json, sys\n\
                  rows = list(csv.DictReader(io.TextIOWrapper(sys.stdin.buffer, encoding='utf-8', newline='')))\n\
                  print(json.dumps(rows))";
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "python's csv module read the answer");
    serde_json::from_slice::<Vec<serde_json::Value>>(&out.stdout).expect("rows as JSON")
}
