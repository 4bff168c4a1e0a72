//! A hostile-input corpus against the daemon on the real broker: every
//! case is counted as invalid with its reason, none changes a total, none
//! panics, and /metrics still passes `promtool check metrics`.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::support::*;
use engagement_core::synth::seed_events;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

const OK: &str =
    r#""page_id":"p","post_id":"x","published_at":"2025-08-01T00:00:00Z","observed_at":"2025-08-02T00:00:00Z""#;

/// (payload, reason) — `None` payload is a Kafka tombstone.
fn corpus() -> Vec<(Option<Vec<u8>>, &'static str)> {
    let s = |v: String| Some(v.into_bytes());
    let with = |extra: &str| s(format!("{{{OK}{extra}}}"));
    let huge = "x".repeat(900_000); // under the broker's 1 MB message limit, far over ours
    vec![
        (None, "empty payload"),
        (Some(Vec::new()), "empty payload"),
        (s("null".into()), "not a JSON object"),
        (s("[1,2,3]".into()), "not a JSON object"),
        (s("\"just a string\"".into()), "not a JSON object"),
        (s("42".into()), "not a JSON object"),
        (s("{".into()), "malformed JSON"),
        (s(format!("{{{OK}}} trailing")), "malformed JSON"),
        (Some(b"{\"page_id\":\"\xff\xfe\",\"post_id\":\"x\"}".to_vec()), "invalid UTF-8"),
        (Some(b"\xef\xbb\xbf{\"page_id\":\"p\"}".to_vec()), "malformed JSON"),
        (s(format!("{{\"page_id\":{}1{}}}", "[".repeat(60_000), "]".repeat(60_000))), "payload too large"),
        (s(format!("{{\"page_id\":{}1{}}}", "[".repeat(20_000), "]".repeat(20_000))), "page_id has the wrong type"),
        (s(format!("{{\"page_id\":\"{huge}\"}}")), "payload too large"),
        (s(format!("{{{OK},\"page_name\":\"{}\"}}", "n".repeat(300))), "page_name out of range"),
        (s(format!("{{\"page_id\":\"{}\",\"post_id\":\"x\",\"published_at\":0}}", "p".repeat(129))), "page_id out of range"),
        (s(r#"{"post_id":"x","published_at":0}"#.into()), "missing page_id"),
        (s(r#"{"page_id":"p","published_at":0}"#.into()), "missing post_id"),
        (s(r#"{"page_id":"p","post_id":"x"}"#.into()), "missing published_at"),
        (s(r#"{"page_id":"","post_id":"x","published_at":0}"#.into()), "page_id out of range"),
        (s(r#"{"page_id":7,"post_id":"x","published_at":0}"#.into()), "page_id has the wrong type"),
        (s(r#"{"page_id":"a\u0000b","post_id":"x","published_at":0}"#.into()), "page_id has control characters"),
        (s(r#"{"page_id":"p","post_id":"a\nb","published_at":0}"#.into()), "post_id has control characters"),
        (with(r#","reactions":-1"#), "reactions out of range"),
        (with(r#","comments":9007199254740992"#), "comments out of range"),
        (with(r#","shares":18446744073709551616"#), "shares out of range"),
        (with(r#","views":1e400"#), "malformed JSON"),
        (with(r#","reactions":NaN"#), "malformed JSON"),
        (with(r#","reactions":Infinity"#), "malformed JSON"),
        (with(r#","reactions":"NaN""#), "reactions has the wrong type"),
        (with(r#","followers":2.5"#), "followers has the wrong type"),
        (with(r#","reactions":true"#), "reactions has the wrong type"),
        (with(r#","kind":"total""#), "kind is neither snapshot nor delta"),
        (with(r#","platform":"Face Book""#), "platform has characters outside [a-z0-9_]"),
        (with(r#","page_name":{"x":1}"#), "page_name has the wrong type"),
        (with(r#","event_id":"""#), "event_id out of range"),
        (s(r#"{"page_id":"p","post_id":"x","published_at":"2025-13-01T00:00:00Z"}"#.into()), "published_at is not a timestamp"),
        (s(r#"{"page_id":"p","post_id":"x","published_at":"2025-08-01 00:00:00"}"#.into()), "published_at is not a timestamp"),
        (s(r#"{"page_id":"p","post_id":"x","published_at":-5}"#.into()), "published_at out of range"),
        (s(r#"{"page_id":"p","post_id":"x","published_at":"2025-08-03T00:00:00Z","observed_at":"2025-08-02T00:00:00Z"}"#.into()), "published_at after observed_at"),
        (s(r#"{"page_id":"p","post_id":"x","published_at":"2025-08-01T00:00:00Z","observed_at":"2099-01-01T00:00:00Z"}"#.into()), "observed_at too far in the future"),
        (s(format!("{{{OK},\"page_id\":\"q\"}}")), "duplicate field"),
    ]
}

fn produce_raw(topic: &str, payloads: &[Option<Vec<u8>>]) {
    let p: BaseProducer =
        ClientConfig::new().set("bootstrap.servers", brokers()).set("message.max.bytes", "4000000").create().unwrap();
    for (i, payload) in payloads.iter().enumerate() {
        let key = i.to_string();
        let mut record = BaseRecord::<String, [u8]>::to(topic).key(&key);
        if let Some(bytes) = payload {
            record = record.payload(bytes.as_slice());
        }
        p.send(record).map_err(|(e, _)| e).unwrap();
        p.poll(Duration::ZERO);
    }
    p.flush(Duration::from_secs(60)).unwrap();
}

fn table(d: &Daemon) -> serde_json::Value {
    d.json("/v1/rankings?window=2025-Q3&limit=1000")["entries"].clone()
}

#[test]
fn hostile_input_is_counted_and_changes_nothing() {
    let cases = corpus();
    assert!(cases.len() >= 30);
    let baseline: Vec<Option<Vec<u8>>> = seed_events().into_iter().take(300).map(|e| Some(e.into_bytes())).collect();
    let (clean, dirty) = (unique("hostile-clean"), unique("hostile"));
    for t in [&clean, &dirty] {
        create_topic(t, 1);
    }
    produce_raw(&clean, &baseline);
    let mut mixed = baseline.clone();
    mixed.extend(cases.iter().map(|(p, _)| p.clone()));
    produce_raw(&dirty, &mixed);

    let d = Daemon::start(&dirty, &[], &[]);
    d.wait_ready(Duration::from_secs(60));
    wait_until("every record counted", Duration::from_secs(60), || (d.consumed() == mixed.len() as f64).then_some(()));
    assert_eq!(d.metric(r#"engagement_events_total{outcome="invalid"}"#), Some(cases.len() as f64));
    let mut by_reason: BTreeMap<&str, f64> = BTreeMap::new();
    for (_, reason) in &cases {
        *by_reason.entry(reason).or_default() += 1.0;
    }
    for (reason, n) in by_reason {
        let sample = format!(r#"engagement_invalid_events_total{{reason="{}"}}"#, reason.replace('\\', "\\\\"));
        assert_eq!(d.metric(&sample), Some(n), "{reason}");
    }
    let reference = Daemon::start(&clean, &[], &[]);
    reference.wait_ready(Duration::from_secs(60));
    wait_until("the clean run to apply the baseline", Duration::from_secs(60), || {
        (reference.consumed() == baseline.len() as f64).then_some(())
    });
    wait_until("the same tables", Duration::from_secs(30), || (table(&d) == table(&reference)).then_some(()));
    assert_eq!(d.get("/healthz").0, 200);
    assert!(!d.logs().iter().any(|l| l.contains("panicked")), "no panic");
    promtool_accepts(&d.get("/metrics").1);
}

#[test]
fn nasty_but_valid_names_are_served_and_exported_safely() {
    let topic = unique("nasty");
    create_topic(&topic, 1);
    let events = [
        r#"{"page_id":"quote\"and\\back","post_id":"1","published_at":"2025-08-01T00:00:00Z","observed_at":"2025-08-02T00:00:00Z","reactions":900,"page_name":"Line\nbreak \"quoted\" وزارة 🚀 \u202e"}"#,
        r#"{"page_id":"ميزان","post_id":"1","published_at":"2025-08-01T00:00:00Z","observed_at":"2025-08-02T00:00:00Z","reactions":800}"#,
    ];
    produce_strings(&topic, 1, &events.map(String::from));
    let d = Daemon::start(&topic, &[], &[]);
    d.wait_ready(Duration::from_secs(60));
    wait_until("both pages ranked", Duration::from_secs(30), || {
        (d.json("/v1/rankings")["total_pages"] == 2).then_some(())
    });
    let body = d.json("/v1/rankings");
    assert_eq!(body["entries"][0]["page_id"], "quote\"and\\back");
    assert_eq!(body["entries"][0]["page_name"], "Line\nbreak \"quoted\" وزارة 🚀 \u{202e}");
    assert_eq!(body["entries"][1]["page_id"], "ميزان");
    let page = d.json("/v1/pages/facebook/%D9%85%D9%8A%D8%B2%D8%A7%D9%86");
    assert_eq!(page["page_id"], "ميزان");
    let metrics = d.get("/metrics").1;
    assert!(metrics.contains(r#"page_id="quote\"and\\back""#), "label values are escaped");
    promtool_accepts(&metrics);
}
