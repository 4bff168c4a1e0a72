//! What the daemon writes to stderr: plain text when stderr is not a
//! terminal.

use std::time::Duration;

use crate::support::*;

#[test]
fn text_logs_to_a_pipe_carry_no_colour_codes() {
    let topic = unique("plain-logs");
    create_topic(&topic, 1);
    let mut d = Daemon::start(&topic, &["--log-format", "text"], &[]);
    d.signal("TERM");
    assert!(d.wait_exit(Duration::from_secs(15)).0.success());
    let logs = d.logs().join("\n");
    assert!(!logs.contains('\u{1b}'), "an ESC byte reached a pipe:\n{logs}");
    assert!(logs.contains("stopped"), "{logs}");
}

#[test]
fn rank_changes_are_counted_and_published_not_logged_one_by_one() {
    let (topic, ranks) = (unique("rank-logs"), unique("rank-logs-events"));
    create_topic(&topic, 1);
    create_topic(&ranks, 1);
    // Later observations win: the n-th one is n seconds into the day.
    let snapshot = |page: &str, reactions: u64, n: u64| {
        let (extra, observed) =
            (format!(r#","reactions":{reactions}"#), format!("2025-08-02T00:{:02}:{:02}Z", n / 60, n % 60));
        crate::daemon::event(page, "1", "2025-08-01T00:00:00Z", &observed, &extra)
    };
    produce_strings(&topic, 1, &[snapshot("a", 300, 0), snapshot("b", 200, 0), snapshot("c", 100, 0)]);
    let d = Daemon::start(&topic, &[], &[("ENGAGEMENT_MONITOR_KAFKA_RANK_EVENTS_TOPIC", &ranks)]);
    d.wait_ready(Duration::from_secs(30));
    // Each round puts another page on top, until the rank-change loop,
    // once it holds a baseline taken while ready, has reported a leader.
    let mut round = 0u64;
    wait_until("a leader change", Duration::from_secs(30), || {
        round += 1;
        let page = ["c", "b", "a"][round as usize % 3];
        produce_strings(&topic, 1, &[snapshot(page, 1000 * round, round)]);
        (d.metric(r#"engagement_leader_changes_total{window="current"}"#)? > 0.0).then_some(())
    });
    let logs = d.logs().join("\n");
    assert!(!logs.contains("rank changed") && !logs.contains("new leader"), "one line per change:\n{logs}");
}
