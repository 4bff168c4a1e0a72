//! Rank changes reach a person: the daemon on the real broker, scraped by a
//! real Prometheus that evaluates `deploy/prometheus/rules.yml` every
//! second and alerts a real Alertmanager, whose webhook is a server inside
//! the test (tests/it/stack.rs).
//!
//! A page overtakes the leader of a per-platform ranking and enters its
//! watched top 10: a firing notification naming the page must arrive within
//! 30 s of the event, and resolve once the watch's hold is over. A restart
//! and a catch-up replay must raise no rank alert. A watch on a group
//! (`category:government`, from a page directory on the broker) raises
//! one rank-change event and one notification naming the group when the
//! group's leader changes, while larger pages outside it lead all pages.
//! With the default watches and the shipped Alertmanager route, the demo's
//! overtaking (the Ministry of Interior passing the White House) is one
//! event per ranking on the topic, in one shape, and one notification.

use std::time::{Duration, Instant};

use crate::stack::*;
use crate::support::*;

const READY: Duration = Duration::from_secs(60);
/// The watch's hold in these tests: how long a change stays alertable.
const HOLD: Duration = Duration::from_secs(8);

/// A watch like the default per-platform one, with a short hold and settle.
fn config(dir: &TempDir) -> String {
    let path = dir.0.join("engagement-monitor.toml");
    let toml =
        "[[ranking.watches]]\nname = \"per_platform\"\nplatform = \"*\"\ntop_n = 10\nhold = \"8s\"\nsettle = \"2s\"\n";
    std::fs::write(&path, toml).expect("writing the config");
    path.display().to_string()
}

fn post(platform: &str, page: &str, name: &str, reactions: u64, minute: u32) -> String {
    serde_json::json!({
        "platform": platform, "page_id": page, "page_name": name, "post_id": format!("{page}-1"),
        "published_at": "2025-08-01T00:00:00Z", "observed_at": format!("2025-08-02T00:{minute:02}:00Z"),
        "reactions": reactions,
    })
    .to_string()
}

/// tiktok: t01 (12,000) … t12 (1,000) and `rising` (500, 13th); a few
/// facebook pages, so that there is more than one per-platform ranking.
fn history() -> Vec<String> {
    let mut events: Vec<String> =
        (1..=12u64).map(|i| post("tiktok", &format!("t{i:02}"), &format!("Tik {i}"), 13_000 - i * 1000, 1)).collect();
    events.push(post("tiktok", "rising", "Rising Star", 500, 1));
    events.extend((1..=3u64).map(|i| post("facebook", &format!("f{i}"), &format!("Face {i}"), i * 100, 1)));
    events
}

/// The overtaking: `rising` jumps to 50,000, ahead of t01.
fn overtaking() -> Vec<String> {
    vec![post("tiktok", "rising", "Rising Star", 50_000, 2)]
}

/// Waits until Prometheus scrapes `addr` and sees it ready.
fn wait_scraped_ready(prometheus: &Service, addr: &str) {
    let q = format!(r#"engagement_phase{{instance="{addr}",phase="ready"}} == 1"#);
    wait_until("Prometheus to scrape the ready daemon", READY, || (!query(prometheus, &q).is_empty()).then_some(()));
}

fn is_rising(alert: &serde_json::Value, name: &str) -> bool {
    let labels = &alert["labels"];
    labels["alertname"] == name && labels["page_id"] == "rising" && labels["window"] == "current"
}

/// The history on a fresh topic, and the path an alert takes to a person:
/// a webhook, Alertmanager, and Prometheus with no target yet.
struct AlertPath {
    topic: String,
    webhook: Webhook,
    _alertmanager: Service,
    targets: Targets,
    prom: Service,
}

impl AlertPath {
    fn start(prefix: &str) -> AlertPath {
        let topic = unique(prefix);
        create_topic(&topic, 1);
        produce_strings(&topic, 1, &history());
        let webhook = Webhook::start();
        let alertmanager = alertmanager(&webhook.addr);
        let targets = Targets::new();
        let prom = prometheus(&targets, Some(&alertmanager.addr));
        AlertPath { topic, webhook, _alertmanager: alertmanager, targets, prom }
    }
}

#[test]
fn an_overtaking_reaches_the_webhook_naming_the_page_and_resolves_after_the_hold() {
    let AlertPath { topic, webhook, targets, prom, .. } = &AlertPath::start("alerting");
    let dir = TempDir::new("alerting-config");
    let d = Daemon::start(topic, &["--config", &config(&dir)], &[]);
    d.wait_ready(READY);
    targets.set(&[&d.addr]);
    wait_scraped_ready(prom, &d.addr);
    // The baseline: a ready view of the tiktok ranking with t01 leading.
    let baseline = r#"engagement_watch_rank{watch="per_platform",scope="tiktok",page_id="t01"} == 1"#;
    wait_until("the tiktok ranking in Prometheus", READY, || (!query(prom, baseline).is_empty()).then_some(()));

    let event = Instant::now();
    produce_strings(topic, 1, &overtaking());
    let leader = |a: &serde_json::Value| is_rising(a, "EngagementWatchNewLeader");
    let (fired, alert) = webhook.wait_for("the new-leader notification", Duration::from_secs(30), "firing", leader);
    let took = fired.at - event;
    eprintln!("alerting: overtaking event -> firing notification at the webhook in {took:?}");
    assert!(took < Duration::from_secs(30), "{took:?}");
    let labels = &alert["labels"];
    assert_eq!((labels["platform"].as_str(), labels["scope"].as_str()), (Some("tiktok"), Some("tiktok")));
    assert_eq!((labels["old_rank"].as_str(), labels["new_rank"].as_str()), (Some("none"), Some("1")));
    assert_eq!(
        alert["annotations"]["summary"].as_str(),
        Some("New #1 (per_platform): Rising Star (tiktok/rising)"),
        "{alert:#}"
    );
    let description = alert["annotations"]["description"].as_str().unwrap_or_default();
    assert!(description.contains("ranking of tiktok, window current, up from outside the top 10"), "{description}");
    let link = format!("http://{}/?window=current&metric=interactions&platform=tiktok", d.addr);
    assert_eq!(alert["annotations"]["leaderboard"].as_str(), Some(link.as_str()));
    let (code, _) = http_get(&d.addr, &link[link.find("/?").unwrap_or(0)..]).expect("the leaderboard link answers");
    assert_eq!(code, 200);

    let entry = |a: &serde_json::Value| is_rising(a, "EngagementWatchTopEntry");
    let (_, entered) = webhook.wait_for("the top-10 entry notification", Duration::from_secs(30), "firing", entry);
    assert_eq!(
        entered["annotations"]["summary"].as_str(),
        Some("Rising Star (tiktok/rising) entered the top 10 (per_platform)")
    );

    let (resolved, _) =
        webhook.wait_for("the resolved notification", HOLD + Duration::from_secs(30), "resolved", leader);
    let held = resolved.at - fired.at;
    eprintln!("alerting: firing -> resolved notification in {held:?} (hold {HOLD:?})");
    assert!(held >= HOLD - Duration::from_secs(3), "resolved after {held:?}, before the hold of {HOLD:?}");
    let changes = d.json("/v1/rank-changes");
    let kinds: Vec<&str> = changes["changes"].as_array().unwrap().iter().filter_map(|c| c["kind"].as_str()).collect();
    assert!(kinds.contains(&"leader") && kinds.contains(&"entered"), "{changes:#}");
}

/// Asserts that for `quiet` no rank alert is pending or firing in
/// Prometheus and no notification reached the webhook.
fn assert_no_rank_alert(prom: &Service, webhook: &Webhook, quiet: Duration) {
    let until = Instant::now() + quiet;
    while Instant::now() < until {
        let alerts = query(prom, r#"ALERTS{alertname=~"EngagementWatch.*"}"#);
        assert!(alerts.is_empty(), "rank alert raised: {alerts:#?}");
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(webhook.received().is_empty(), "notifications: {:#?}", webhook.received());
}

#[test]
fn a_restart_and_a_catch_up_replay_raise_no_rank_alert() {
    let AlertPath { topic, webhook, targets, prom, .. } = &AlertPath::start("alerting-quiet");
    let (dir, state) = (TempDir::new("alerting-config"), TempDir::new("alerting-state"));
    let config = config(&dir);
    let state_dir = state.0.display().to_string();
    let args = ["--config", &config, "--state-dir", &state_dir];
    let checkpoints = [("ENGAGEMENT_MONITOR_STATE_CHECKPOINT_INTERVAL", "1s")];

    // A first run replays the history from the earliest offset, then stops
    // (with a final checkpoint) while the overtaking is produced.
    let mut d = Daemon::start(topic, &args, &checkpoints);
    d.wait_ready(READY);
    targets.set(&[&d.addr]);
    wait_scraped_ready(prom, &d.addr);
    d.signal("TERM");
    d.wait_exit(Duration::from_secs(30));
    produce_strings(topic, 1, &overtaking());

    // The restart restores the checkpoint and replays the overtaking while
    // catching up: the leader changes, but no alert is raised.
    let d = Daemon::start(topic, &args, &checkpoints);
    targets.set(&[&d.addr]);
    d.wait_ready(READY);
    wait_scraped_ready(prom, &d.addr);
    let leader = d.json("/v1/rankings?platform=tiktok&limit=1");
    assert_eq!(leader["entries"][0]["page_id"], "rising", "the replay included the overtaking");
    assert_no_rank_alert(prom, webhook, Duration::from_secs(10));
    let counted = r#"engagement_watch_changes_total{group="",kind="leader",scope="tiktok",watch="per_platform",window="current"}"#;
    assert_eq!(d.metric(counted), Some(0.0), "nothing counted either");
    drop(d);

    // A new replica without a checkpoint replays the whole topic: quiet too.
    let fresh = Daemon::start(topic, &["--config", &config], &[]);
    targets.set(&[&fresh.addr]);
    fresh.wait_ready(READY);
    wait_scraped_ready(prom, &fresh.addr);
    assert_no_rank_alert(prom, webhook, Duration::from_secs(10));
}

/// Government pages g1 (12,000) and g2 (6,000) among larger media pages.
fn government_history() -> Vec<String> {
    let mut events = vec![post("facebook", "g1", "Gov One", 12_000, 1), post("facebook", "g2", "Gov Two", 6_000, 1)];
    events.extend((1..=3u64).map(|i| post("facebook", &format!("m{i}"), &format!("Media {i}"), 100_000 * i, 1)));
    events
}

#[test]
fn a_new_leader_within_a_group_is_one_event_and_one_notification_naming_the_group() {
    let AlertPath { topic, webhook, targets, prom, .. } = &AlertPath::start("alerting-group");
    produce_strings(topic, 1, &government_history());
    let (directory, ranks) = (unique("alerting-directory"), unique("alerting-ranks"));
    create_compacted_topic(&directory);
    create_topic(&ranks, 1);
    let record = |id: &str, category: &str| {
        (format!("facebook/{id}"), format!(r#"{{"page_id":"{id}","groups":{{"category":"{category}"}}}}"#))
    };
    let mut records = vec![record("g1", "government"), record("g2", "government")];
    records.extend((1..=3).map(|i| record(&format!("m{i}"), "media")));
    produce_records(&directory, &records);
    let dir = TempDir::new("alerting-config");
    let path = dir.0.join("engagement-monitor.toml");
    let toml = "[[ranking.watches]]\nname = \"gov\"\ngroups = [\"category:government\"]\nwindows = [\"current\"]\nhold = \"8s\"\n";
    std::fs::write(&path, toml).unwrap();
    let env = [("ENGAGEMENT_MONITOR_KAFKA_RANK_EVENTS_TOPIC", ranks.as_str())];
    let d = Daemon::start(topic, &["--config", path.to_str().unwrap(), "--directory-topic", &directory], &env);
    d.wait_ready(READY);
    targets.set(&[&d.addr]);
    wait_scraped_ready(prom, &d.addr);
    let baseline = r#"engagement_watch_rank{watch="gov",group="category:government",page_id="g1"} == 1"#;
    wait_until("the group's ranking in Prometheus", READY, || (!query(prom, baseline).is_empty()).then_some(()));

    produce_strings(topic, 1, &[post("facebook", "g2", "Gov Two", 20_000, 2)]);
    let leader = |a: &serde_json::Value| a["labels"]["alertname"] == "EngagementWatchNewLeader";
    let (_, alert) = webhook.wait_for("the group's new-leader notification", Duration::from_secs(30), "firing", leader);
    assert_eq!(alert["labels"]["group"], "category:government", "{alert:#}");
    assert_eq!(alert["labels"]["page_id"], "g2");
    assert_eq!(
        alert["annotations"]["summary"].as_str(),
        Some("New #1 in category:government (gov): Gov Two (facebook/g2)"),
        "{alert:#}"
    );
    let link = format!("http://{}/?window=current&metric=interactions&group=category:government", d.addr);
    assert_eq!(alert["annotations"]["leaderboard"].as_str(), Some(link.as_str()));

    // Exactly one of each: no other notification while the change is held,
    // one event on the rank-event topic that names the group.
    let firing = |w: &Webhook| {
        w.received()
            .iter()
            .flat_map(|n| n.body["alerts"].as_array().cloned().unwrap_or_default())
            .filter(|a| a["status"] == "firing")
            .count()
    };
    let until = Instant::now() + HOLD / 2;
    while Instant::now() < until {
        assert_eq!(firing(webhook), 1, "one notification: {:#?}", webhook.received());
        std::thread::sleep(Duration::from_millis(250));
    }
    let events = consume_json(&ranks);
    let grouped: Vec<_> = events.iter().filter(|e| e["group"] == "category:government").collect();
    assert_eq!(grouped.len(), 1, "{events:#?}");
    assert_eq!((grouped[0]["kind"].as_str(), grouped[0]["page_id"].as_str()), (Some("leader"), Some("g2")));
    assert_eq!(grouped[0]["watch"], "gov");
}

/// The demo's overtaking in miniature: the White House leads the Ministry
/// of Interior on Facebook; a few smaller pages on two platforms.
fn overtaking_history() -> Vec<String> {
    let mut events = vec![
        post("facebook", "whitehouse", "The White House", 26_000, 1),
        post("facebook", "moi.egy", "Ministry of Interior", 24_000, 1),
    ];
    events.extend((1..=4u64).map(|i| post("facebook", &format!("f{i}"), &format!("Face {i}"), 1_000 * i, 1)));
    events.extend((1..=3u64).map(|i| post("tiktok", &format!("t{i}"), &format!("Tik {i}"), 500 * i, 1)));
    events
}

#[test]
fn an_overtaking_in_many_rankings_is_one_event_each_in_one_shape_and_one_notification() {
    let topic = unique("alerting-news");
    create_topic(&topic, 1);
    produce_strings(&topic, 1, &overtaking_history());
    let ranks = unique("alerting-news-ranks");
    create_topic(&ranks, 1);
    let webhook = Webhook::start();
    let _alertmanager = alertmanager_shipped(&webhook.addr);
    let targets = Targets::new();
    let prom = prometheus(&targets, Some(&_alertmanager.addr));
    // The default watches (all platforms, each platform; every window).
    let env = [("ENGAGEMENT_MONITOR_KAFKA_RANK_EVENTS_TOPIC", ranks.as_str())];
    let d = Daemon::start(&topic, &[], &env);
    d.wait_ready(READY);
    targets.set(&[&d.addr]);
    wait_scraped_ready(&prom, &d.addr);
    let baseline =
        r#"engagement_watch_rank{watch="per_platform",scope="facebook",window="rolling-7d",page_id="whitehouse"} == 1"#;
    wait_until("the rankings in Prometheus", READY, || (!query(&prom, baseline).is_empty()).then_some(()));

    produce_strings(&topic, 1, &[post("facebook", "moi.egy", "Ministry of Interior", 30_000, 2)]);
    // #1 of 4 windows (the quarter, the month, 90 and 7 days) x 2 scopes.
    let rankings: Vec<(String, String)> = ["current", "current-month", "rolling", "rolling-7d"]
        .iter()
        .flat_map(|w| ["all", "facebook"].map(|s| (w.to_string(), s.to_string())))
        .collect();
    let events = wait_until("8 rank events", Duration::from_secs(30), || {
        let events = consume_json(&ranks);
        (events.len() >= rankings.len()).then_some(events)
    });
    let mut seen: Vec<(String, String)> = events
        .iter()
        .map(|e| (e["window"].as_str().unwrap_or("").to_owned(), e["scope"].as_str().unwrap_or("").to_owned()))
        .collect();
    seen.sort();
    let mut want = rankings.clone();
    want.sort();
    assert_eq!(seen, want, "one event per ranking: {events:#?}");
    let keys = |e: &serde_json::Value| e.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>());
    assert!(events.iter().all(|e| keys(e) == keys(&events[0])), "one shape: {events:#?}");
    for e in &events {
        assert_eq!((e["kind"].as_str(), e["page_id"].as_str()), (Some("leader"), Some("moi.egy")), "{e:#}");
        assert_eq!((e["old_rank"].as_u64(), e["new_rank"].as_u64()), (Some(2), Some(1)));
    }
    let mut ids: Vec<&str> = events.iter().filter_map(|e| e["id"].as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), rankings.len(), "an id per ranking");
    let listed = d.json("/v1/rank-changes");
    let mut api_ids: Vec<&str> =
        listed["changes"].as_array().unwrap().iter().filter_map(|c| c["id"].as_str()).collect();
    api_ids.sort();
    assert_eq!(api_ids, ids, "the API lists the same events");

    // One notification lists the eight rankings; no other follows.
    let leader = |a: &serde_json::Value| {
        a["labels"]["alertname"] == "EngagementWatchNewLeader" && a["labels"]["page_id"] == "moi.egy"
    };
    let (first, _) = webhook.wait_for("the notification", Duration::from_secs(40), "firing", leader);
    let alerts = first.body["alerts"].as_array().cloned().unwrap_or_default();
    let mut listed: Vec<(String, String)> = alerts
        .iter()
        .map(|a| {
            let l = &a["labels"];
            (l["window"].as_str().unwrap_or("").to_owned(), l["scope"].as_str().unwrap_or("").to_owned())
        })
        .collect();
    listed.sort();
    assert_eq!(listed, want, "one notification naming every ranking: {:#}", first.body);
    let rank_notifications = |w: &Webhook| {
        w.received()
            .iter()
            .filter(|n| n.body["groupLabels"]["alertname"].as_str().is_some_and(|a| a.starts_with("EngagementWatch")))
            .count()
    };
    let until = Instant::now() + Duration::from_secs(15);
    while Instant::now() < until {
        assert_eq!(rank_notifications(&webhook), 1, "{:#?}", webhook.received());
        std::thread::sleep(Duration::from_millis(250));
    }
}
