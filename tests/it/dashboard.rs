//! The Grafana dashboard (`deploy/grafana/engagement-monitor.json`) against
//! the real Prometheus of the test: every PromQL expression it holds —
//! panel targets and variable queries, with the variables set as a user
//! would — returns data once a replica and a shard (for the shard-mode
//! panels) have been scraped for a while, so no panel of the shipped
//! dashboard is empty or broken. Also checks that the provisioning files
//! point at it.

use std::path::Path;
use std::time::Duration;

use crate::stack::*;
use crate::support::*;

const READY: Duration = Duration::from_secs(60);

fn repo_file(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// Grafana's variables as a user would set them.
fn substitute(expr: &str) -> String {
    expr.replace("$__rate_interval", "30s")
        .replace("$watch", "all")
        .replace("$window", "current")
        .replace("$scope", "all")
}

/// Every (where, PromQL) of the dashboard.
fn expressions(dashboard: &serde_json::Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("a PromQL target");
            out.push((format!("panel {:?}", panel["title"]), substitute(expr)));
        }
    }
    for var in dashboard["templating"]["list"].as_array().expect("variables") {
        let Some(definition) = var["definition"].as_str() else { continue };
        // label_values(<selector>, <label>): the selector must match series with the label.
        let inner = definition.strip_prefix("label_values(").and_then(|d| d.rsplit_once(',')).expect("label_values");
        let label = inner.1.trim().trim_end_matches(')');
        out.push((format!("variable {:?}", var["name"]), format!("count by ({label}) ({})", substitute(inner.0))));
    }
    out
}

fn post(platform: &str, page: &str, reactions: u64, minute: u32) -> String {
    serde_json::json!({
        "platform": platform, "page_id": page, "post_id": format!("{page}-1"),
        "published_at": "2025-08-01T00:00:00Z", "observed_at": format!("2025-08-02T00:{minute:02}:00Z"),
        "reactions": reactions,
    })
    .to_string()
}

#[test]
fn every_expression_of_the_dashboard_returns_data_from_the_real_prometheus() {
    let dashboard: serde_json::Value =
        serde_json::from_str(&repo_file("deploy/grafana/engagement-monitor.json")).expect("the dashboard is JSON");
    let provisioning = repo_file("deploy/grafana/provisioning/dashboards/engagement-monitor.yml");
    assert!(provisioning.contains("path: /var/lib/grafana/dashboards"), "{provisioning}");
    assert!(
        repo_file("deploy/compose.yaml").contains("./grafana/engagement-monitor.json:/var/lib/grafana/dashboards/")
    );

    let topic = unique("dashboard");
    create_topic(&topic, 1);
    let mut events: Vec<String> = (1..=12).map(|i| post("tiktok", &format!("t{i:02}"), 13_000 - i * 1000, 1)).collect();
    events.push(post("facebook", "f1", 100, 1));
    produce_strings(&topic, 1, &events);
    let targets = Targets::new();
    let prom = prometheus(&targets, None);
    let state = TempDir::new("dashboard-state");
    let state_dir = state.0.display().to_string();
    let d =
        Daemon::start(&topic, &["--state-dir", &state_dir], &[("ENGAGEMENT_MONITOR_STATE_CHECKPOINT_INTERVAL", "1s")]);
    // A shard of its own group on the same topic: the shard-mode panels.
    let shard = Daemon::start(
        &topic,
        &["--mode", "shard", "--instance-id", "dashboard-0", "--group", &format!("{topic}-shards")],
        &[],
    );
    d.wait_ready(READY);
    shard.wait_ready(READY);
    targets.set(&[&d.addr, &shard.addr]);
    wait_until("Prometheus to scrape the ready daemons", READY, || {
        (query(&prom, r#"engagement_phase{phase="ready"} == 1"#).len() == 2).then_some(())
    });
    wait_until("a partition's heartbeat age in Prometheus", READY, || {
        (!query(&prom, "engagement_shard_partition_record_age_seconds").is_empty()).then_some(())
    });
    // A change, so that the held-changes panel has a row.
    produce_strings(&topic, 1, &[post("tiktok", "rising", 50_000, 2)]);
    wait_until("a held change in Prometheus", READY, || {
        (!query(&prom, r#"engagement_watch_change{watch="all",kind="leader"}"#).is_empty()).then_some(())
    });
    // Enough samples for the rates: 1 s scrapes for several seconds.
    wait_until("several scrapes", READY, || {
        let scrapes = query(&prom, "count_over_time(up[30s])");
        scrapes.first()?["value"][1].as_str()?.parse::<f64>().ok().filter(|n| *n >= 5.0)
    });

    let all = expressions(&dashboard);
    assert!(all.len() >= 10, "{all:?}");
    let empty: Vec<&(String, String)> = all.iter().filter(|(_, promql)| query(&prom, promql).is_empty()).collect();
    assert!(empty.is_empty(), "expressions without data: {empty:#?}");
}
