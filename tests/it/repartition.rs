//! `repartition` against the real broker: a topic whose pages are spread
//! over every partition is copied into one keyed by page.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::support::*;
use engagement_core::synth::seed_events;

const NULL: &str = "\0null";

/// One record as read back: partition, key, value, timestamp, headers.
type Record = (i32, Option<String>, String, Option<i64>, Vec<(String, String)>);

/// Every record of `topic` (all `partitions`), read to the current ends.
fn read_all(topic: &str, partitions: i32) -> Vec<Record> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("group.id", unique("repartition-reader"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut ends = HashMap::new();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        let (_, high) = consumer.fetch_watermarks(topic, p, Duration::from_secs(10)).unwrap();
        if high > 0 {
            ends.insert(p, high);
            tpl.add_partition_offset(topic, p, Offset::Beginning).unwrap();
        }
    }
    consumer.assign(&tpl).unwrap();
    let mut records = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !ends.is_empty() {
        assert!(std::time::Instant::now() < deadline, "records of {topic} missing: {ends:?} ends left");
        let Some(m) = consumer.poll(Duration::from_millis(100)) else { continue };
        let m = m.unwrap();
        let text = |b: Option<&[u8]>| b.map(|b| String::from_utf8_lossy(b).into_owned());
        let headers = m
            .headers()
            .map(|h| h.iter().map(|h| (h.key.to_owned(), text(h.value).unwrap_or_default())).collect())
            .unwrap_or_default();
        // A null value (tombstone) reads as NULL, which no JSON text is.
        let value = text(m.payload()).unwrap_or_else(|| NULL.to_owned());
        records.push((m.partition(), text(m.key()), value, m.timestamp().to_millis(), headers));
        if ends.get(&m.partition()).is_some_and(|end| m.offset() + 1 >= *end) {
            ends.remove(&m.partition());
        }
    }
    records
}

#[test]
fn repartition_puts_every_page_in_one_partition_and_keeps_every_record() {
    let (from, to) = (unique("scattered"), unique("by-page"));
    create_topic(&from, 3);
    // Round-robin over the partitions, keyed by index: every page of the
    // seed table is on all three.
    let mut payloads: Vec<String> = seed_events();
    payloads.push("not json".into());
    produce_strings(&from, 3, &payloads);
    // One record with a timestamp and a header of its own.
    let p = producer("none");
    let stamped = r#"{"page_id":"stamped","post_id":"p","published_at":"2025-08-01T00:00:00Z","reactions":1}"#;
    let record = BaseRecord::to(&from)
        .payload(stamped)
        .key("whatever")
        .partition(1)
        .timestamp(1_754_006_400_000)
        .headers(OwnedHeaders::new().insert(Header { key: "trace", value: Some("t-1") }));
    p.send(record).map_err(|(e, _)| e).unwrap();
    p.send(BaseRecord::<str, [u8]>::to(&from).key("tomb").partition(2)).map_err(|(e, _)| e).unwrap();
    p.flush(Duration::from_secs(30)).unwrap();
    let source = read_all(&from, 3);
    let pages_on = |records: &[Record]| {
        let mut on: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for (partition, _, value, ..) in records {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(value) {
                let list = on.entry(v["page_id"].as_str().unwrap().to_owned()).or_default();
                if !list.contains(partition) {
                    list.push(*partition);
                }
            }
        }
        on
    };
    assert!(pages_on(&source).values().any(|p| p.len() == 3), "the source spreads pages over partitions");

    let out = run_to_exit(
        &["repartition", "--brokers", &brokers(), "--from", &from, "--to", &to],
        &[],
        Duration::from_secs(120),
    );
    assert!(out.status.success(), "repartition failed: {}", out.stderr);
    let n = payloads.len() + 2;
    assert!(out.stderr.contains(&format!("copied {n} events (2 kept their key: no page_id)")), "{}", out.stderr);

    let copied = read_all(&to, 3);
    let values = |records: &[Record]| {
        let mut v: Vec<String> = records.iter().map(|r| r.2.clone()).collect();
        v.sort();
        v
    };
    assert_eq!(values(&copied), values(&source), "every record copied once");
    let on = pages_on(&copied);
    assert_eq!(on.len(), pages_on(&source).len());
    assert!(on.values().all(|p| p.len() == 1), "each page in one partition: {on:?}");
    assert!(on.values().any(|p| p[0] != on.values().next().unwrap()[0]), "pages spread over partitions");
    for (_, key, value, timestamp, headers) in &copied {
        match serde_json::from_str::<serde_json::Value>(value) {
            Ok(v) => assert_eq!(key.as_deref(), v["page_id"].as_str(), "keyed by page_id"),
            Err(_) if value == NULL => {
                assert_eq!(key.as_deref(), Some("tomb"), "a tombstone keeps its key, stays null")
            }
            Err(_) => {
                assert_eq!((key.as_deref(), value.as_str()), (Some(&*(payloads.len() - 1).to_string()), "not json"))
            }
        }
        if value == stamped {
            assert_eq!(*timestamp, Some(1_754_006_400_000), "the timestamp is kept");
            assert_eq!(*headers, [("trace".to_owned(), "t-1".to_owned())], "headers are kept");
        }
    }
    assert!(copied.iter().any(|r| r.2 == stamped));

    // Copying into the source itself is refused before anything is read.
    let same = run_to_exit(
        &["repartition", "--brokers", &brokers(), "--from", &to, "--to", &to],
        &[],
        Duration::from_secs(30),
    );
    assert!(!same.status.success() && same.stderr.contains("different topics"), "{}", same.stderr);
}
