//! The broker stopped and restarted while the daemon consumes: the daemon
//! keeps serving its last view, reconnects and ends with exact answers.
//! It stops the shared broker, which would break every test running beside
//! it in this binary, so it is ignored by default and `scripts/test.sh`
//! runs it alone afterwards: `cargo test --test it -- --ignored broker_restart::`.

use std::process::Command;
use std::time::Duration;

use crate::support::*;
use engagement_core::synth::seed_events;

fn kafka(cmd: &str) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/kafka.sh");
    let ok = Command::new(script).arg(cmd).status().expect("scripts/kafka.sh runs").success();
    assert!(ok, "scripts/kafka.sh {cmd}");
}

fn table(d: &Daemon) -> serde_json::Value {
    d.json("/v1/rankings?window=2025-Q3&limit=100")["entries"].clone()
}

#[test]
#[ignore = "stops the shared Kafka broker; scripts/test.sh runs it alone"]
fn the_daemon_rides_out_a_broker_restart() {
    let topic = unique("bounce");
    create_topic(&topic, 3);
    let events = seed_events();
    let (first, second) = events.split_at(events.len() / 2);
    produce_strings(&topic, 3, first);
    let d = Daemon::start(&topic, &[], &[]);
    d.wait_ready(Duration::from_secs(60));
    d.wait_metric(r#"engagement_events_total{outcome="applied"}"#, first.len() as f64, Duration::from_secs(60));
    let before = table(&d);

    kafka("stop");
    let (code, _) = d.get("/healthz");
    assert_eq!(code, 200);
    assert_eq!(table(&d), before, "the last view is still served while the broker is down");
    wait_until("the consumer to notice the broker is gone", Duration::from_secs(30), || {
        (d.metric("engagement_consumer_errors_total")? > 0.0).then_some(())
    });
    assert_eq!(table(&d), before);

    kafka("start");
    produce_strings(&topic, 3, second);
    d.wait_metric(r#"engagement_events_total{outcome="applied"}"#, events.len() as f64, Duration::from_secs(120));
    let reference = Daemon::start(&topic, &[], &[]);
    reference.wait_ready(Duration::from_secs(60));
    let want = table(&reference);
    wait_until("the answers to equal an uninterrupted run's", Duration::from_secs(30), || {
        (table(&d) == want).then_some(())
    });
}
