//! `produce --directory` against the real broker: the data set's page
//! directory goes to a compacted topic, one record per page keyed
//! `platform/page_id`, and `--with-tail` adds the tail's events.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::support::*;
use engagement_core::synth::groups::{TAIL_PAGES, numbered_directory, seed_directory, tail_events};
use engagement_core::synth::{SEED_TABLE, seed_events};

/// Every (key, value) of partition 0 of `topic`, read to its current end.
fn read_directory(topic: &str) -> Vec<(String, serde_json::Value)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("group.id", unique("directory-reader"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let (_, end) = consumer.fetch_watermarks(topic, 0, Duration::from_secs(10)).unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning).unwrap();
    consumer.assign(&tpl).unwrap();
    let mut records = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while (records.len() as i64) < end {
        assert!(std::time::Instant::now() < deadline, "{} of {end} records of {topic}", records.len());
        let Some(m) = consumer.poll(Duration::from_millis(100)) else { continue };
        let m = m.unwrap();
        let key = String::from_utf8(m.key().expect("keyed").to_vec()).unwrap();
        records.push((key, serde_json::from_slice(m.payload().expect("not a tombstone")).unwrap()));
    }
    records
}

/// The topic's `cleanup.policy`.
fn cleanup_policy(topic: &str) -> String {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", brokers()).create().expect("admin client");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let spec = ResourceSpecifier::Topic(topic);
    let mut result = rt.block_on(admin.describe_configs([&spec], &AdminOptions::new())).unwrap();
    let resource = result.remove(0).unwrap();
    resource.get("cleanup.policy").and_then(|e| e.value.clone()).unwrap_or_default()
}

fn events_in(topic: &str, partitions: i32) -> i64 {
    let consumer: BaseConsumer =
        ClientConfig::new().set("bootstrap.servers", brokers()).set("group.id", "watermarks").create().unwrap();
    (0..partitions)
        .map(|p| {
            let (low, high) = consumer.fetch_watermarks(topic, p, Duration::from_secs(10)).unwrap();
            high - low
        })
        .sum()
}

#[test]
fn produce_writes_the_seed_directory_to_a_compacted_topic() {
    let (topic, directory) = (unique("produce-dir-events"), unique("produce-dir"));
    let out = run_to_exit(
        &["produce", "--brokers", &brokers(), "--topic", &topic, "--partitions", "3", "--no-progress"],
        &[],
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{}", out.stderr);
    let args = ["--directory", &directory, "--with-tail"];
    let out = run_to_exit(
        &[&["produce", "--brokers", &brokers(), "--topic", &topic, "--no-progress"][..], &args].concat(),
        &[],
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{}", out.stderr);
    let want = seed_directory();
    assert!(out.stderr.contains(&format!("wrote {} directory records to {directory}", want.len())), "{}", out.stderr);
    let seed = seed_events().len() as i64;
    assert_eq!(events_in(&topic, 3), 2 * seed + tail_events().len() as i64, "seed alone, then seed and tail");

    assert_eq!(cleanup_policy(&directory), "compact");
    let records = read_directory(&directory);
    assert_eq!(records.len(), SEED_TABLE.len() + TAIL_PAGES.len());
    for ((key, value), (want_key, want_value)) in records.iter().zip(&want) {
        assert_eq!(key, want_key);
        assert_eq!(value, &serde_json::from_str::<serde_json::Value>(want_value).unwrap());
        assert_eq!(*key, format!("{}/{}", value["platform"].as_str().unwrap(), value["page_id"].as_str().unwrap()));
    }
    let government: Vec<&str> = records
        .iter()
        .filter(|(_, v)| v["groups"]["category"] == "government")
        .map(|(_, v)| v["page_id"].as_str().unwrap())
        .collect();
    assert_eq!(government, SEED_TABLE.map(|p| p.id));
    let egypt = &records[1].1["groups"];
    assert_eq!((egypt["country"].as_str(), egypt["list"][0].as_str()), (Some("EG"), Some("mena-security")));
}

#[test]
fn produce_writes_a_directory_of_the_numbered_pages() {
    let (topic, directory) = (unique("produce-dir-random"), unique("produce-dir-random-groups"));
    let out = run_to_exit(
        &[
            "produce",
            "--brokers",
            &brokers(),
            "--topic",
            &topic,
            "--scenario",
            "random",
            "--pages",
            "40",
            "--events",
            "500",
            "--directory",
            &directory,
            "--no-progress",
        ],
        &[],
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{}", out.stderr);
    assert_eq!(events_in(&topic, 3), 500);
    let records = read_directory(&directory);
    let want: Vec<(String, serde_json::Value)> =
        numbered_directory(40).map(|(k, v)| (k, serde_json::from_str(&v).unwrap())).collect();
    assert_eq!(records, want);
    assert_eq!(records[0].0, "facebook/page_0000000");
}
