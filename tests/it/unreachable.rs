//! A broker that cannot be reached is said once and clearly: in `/readyz`,
//! in a metric and in one log line per 30 s naming the address; `produce`
//! fails fast saying what to check. A topic that does not exist is said
//! once too.

use std::time::Duration;

use crate::support::*;

#[test]
fn an_unreachable_broker_is_reported_once_with_its_address() {
    let brokers = format!("127.0.0.1:{}", unused_port());
    let mut d = Daemon::launch(&brokers, &unique("nowhere"), &[], &[]);
    let reason = wait_until("/readyz to name the unreachable broker", Duration::from_secs(10), || {
        let (code, body) = http_get(&d.addr, "/readyz").ok()?;
        (code == 503 && body.contains("cannot reach Kafka")).then_some(body)
    });
    assert!(reason.contains(&brokers), "{reason}");
    assert_eq!(d.metric("engagement_broker_reachable"), Some(0.0));
    // Many failed attempts by librdkafka (each counted): still one line.
    wait_until("librdkafka to retry many times", Duration::from_secs(20), || {
        (d.metric("engagement_consumer_errors_total")? >= 50.0).then_some(())
    });
    d.signal("TERM");
    d.wait_exit(Duration::from_secs(15));
    let logs = d.logs();
    let about: Vec<&String> = logs.iter().filter(|l| l.contains("cannot reach Kafka")).collect();
    assert_eq!(about.len(), 1, "{logs:#?}");
    assert!(about[0].contains(&brokers), "{}", about[0]);
    let noisy: Vec<&String> = logs.iter().filter(|l| l.contains("\"WARN\"") || l.contains("\"ERROR\"")).collect();
    assert!(noisy.len() <= 2, "retries are not logged one by one: {noisy:#?}");
}

#[test]
fn produce_to_an_unreachable_broker_fails_fast_saying_what_to_check() {
    let brokers = format!("127.0.0.1:{}", unused_port());
    let out = run_to_exit(
        &["produce", "--brokers", &brokers, "--topic", "nowhere", "--events", "1", "--no-progress"],
        &[],
        Duration::from_secs(40),
    );
    assert!(!out.status.success(), "{}", out.stderr);
    assert!(out.took < Duration::from_secs(10), "took {:?}: {}", out.took, out.stderr);
    let want = format!("cannot reach Kafka at {brokers}: is the broker running? check --brokers");
    assert!(out.stderr.contains(&want), "{}", out.stderr);
}

#[test]
fn a_topic_that_does_not_exist_is_said_once_in_the_log() {
    let topic = unique("not-created");
    let mut d = Daemon::start(&topic, &[], &[]);
    wait_until("/readyz to say it waits for the topic", Duration::from_secs(20), || {
        let (code, body) = http_get(&d.addr, "/readyz").ok()?;
        (code == 503 && body.contains("waiting for topic")).then_some(())
    });
    // Many ticks later, still one line.
    wait_until("a few more metadata refreshes", Duration::from_secs(10), || {
        (d.logs().iter().filter(|l| l.contains("does not exist")).count() == 1).then_some(())
    });
    d.signal("TERM");
    d.wait_exit(Duration::from_secs(15));
    let logs = d.logs();
    let about: Vec<&String> = logs.iter().filter(|l| l.contains("the topic does not exist")).collect();
    assert_eq!(about.len(), 1, "{logs:#?}");
    assert!(about[0].contains(&topic) && about[0].contains("WARN"), "{}", about[0]);
}
