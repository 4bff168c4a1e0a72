//! The first-run experience: `demo` end to end (embedded mock cluster, no
//! outside service) and `produce` against the project's real broker.

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::*;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `--version` names the release and the commit the binary was built
/// from, as `git` sees the checkout (CI builds from a clone).
#[test]
fn the_version_names_the_git_revision() {
    let git = |args: &[&str]| {
        let out = Command::new("git").args(args).current_dir(env!("CARGO_MANIFEST_DIR")).output().expect("git runs");
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let head = git(&["rev-parse", "--short=12", "HEAD"]);
    // The binary's sources, as build.rs names them: a changed test is no other build.
    let sources = ["src", "core/src", "Cargo.toml", "Cargo.lock", "build.rs"];
    let dirty = !git(&[&["status", "--porcelain", "--untracked-files=no", "--"][..], &sources].concat()).is_empty();
    let revision = if dirty { format!("{head}-dirty") } else { head };
    let out = Command::new(env!("CARGO_BIN_EXE_engagement-monitor")).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        format!("engagement-monitor {} (revision {revision})", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn the_demo_ranks_the_seed_pages_and_changes_ranks_live() {
    let addr = format!("127.0.0.1:{}", free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_engagement-monitor"))
        .args(["demo", "--listen", &addr])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (stdout, stderr) = (collect(child.stdout.take().unwrap()), collect(child.stderr.take().unwrap()));
    wait_until("the demo to be ready", Duration::from_secs(60), || {
        let (code, _) = http_get(&addr, "/readyz").ok()?;
        (code == 200).then_some(())
    });
    let body: serde_json::Value = serde_json::from_str(
        &http_get(&addr, "/v1/rankings?window=2025-Q3&platform=facebook&group=category:government&limit=5").unwrap().1,
    )
    .unwrap();
    let ids: Vec<&str> = body["entries"].as_array().unwrap().iter().map(|e| e["page_id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        ["whitehouse", "moi.egy", "pmcambodia", "inc.bihar", "ice.gov"],
        "the seed pages lead the government pages in the reported order"
    );
    let all: serde_json::Value =
        serde_json::from_str(&http_get(&addr, "/v1/rankings?window=2025-Q3&limit=1").unwrap().1).unwrap();
    assert_ne!(all["entries"][0]["page_id"], "whitehouse", "media and celebrity pages lead all pages");
    let groups: serde_json::Value = serde_json::from_str(&http_get(&addr, "/v1/groups").unwrap().1).unwrap();
    assert_eq!(groups["configured"][0], "category:government", "the leaderboard opens on the group: {groups}");
    assert_eq!(body["entries"][0]["interactions"], 26_243_488);
    wait_until("a rank change in any window while the demo runs", Duration::from_secs(60), || {
        let (_, text) = http_get(&addr, "/metrics").ok()?;
        let n: f64 = text
            .lines()
            .filter_map(|l| l.strip_prefix("engagement_rank_changes_total{")?.split_once("} ")?.1.parse::<f64>().ok())
            .sum();
        (n > 0.0).then_some(())
    });
    assert!(Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
    let status = wait_until("the demo to exit", Duration::from_secs(15), || child.try_wait().unwrap());
    assert!(status.success(), "{status}");
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    assert!(stdout.trim_end().lines().last().is_some_and(|l| l.contains("stopped")), "a last stopped line: {stdout}");
    assert!(!stderr.contains('\u{1b}'), "no colour codes into a pipe: {stderr}");
    assert!(!stderr.contains("Connection refused"), "a clean stop looks clean: {stderr}");
    assert!(!stderr.contains("rank changed"), "rank changes are not logged one by one: {stderr}");
    assert!(!stderr.contains("more than one partition"), "the demo keys its own events by page: {stderr}");
    assert!(stderr.lines().count() < 40, "a quiet demo: {stderr}");
}

/// The demo scripts an overtaking of #1 among government pages (Egypt's
/// Ministry of Interior's viral post against the White House): within two
/// minutes of the start, the group's current leader changes and
/// `/v1/rank-changes` says so, naming the group.
#[test]
fn the_demo_changes_its_leader_within_two_minutes() {
    let started = std::time::Instant::now();
    let addr = format!("127.0.0.1:{}", free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_engagement-monitor"))
        .args(["demo", "--listen", &addr])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let leader = || -> Option<String> {
        let body: serde_json::Value = serde_json::from_str(
            &http_get(&addr, "/v1/rankings?window=current&group=category:government&limit=1").ok()?.1,
        )
        .ok()?;
        Some(body["entries"][0]["page_id"].as_str()?.to_string())
    };
    wait_until("the demo's first leader", Duration::from_secs(60), || leader().filter(|l| l == "whitehouse"));
    let new = wait_until("another #1", Duration::from_secs(120).saturating_sub(started.elapsed()), || {
        leader().filter(|l| l != "whitehouse")
    });
    eprintln!("demo: {new} took #1 after {:?}", started.elapsed());
    assert_eq!(new, "moi.egy");
    // Rank changes are detected from the published views by a task of
    // their own: the listing follows the view it was seen in.
    let listed = |c: &serde_json::Value| {
        c["kind"] == "leader"
            && c["page_id"] == "moi.egy"
            && c["watch"] == "group-category-government"
            && c["group"] == "category:government"
            && c["window"] == "current"
    };
    wait_until("the leader change to be listed", Duration::from_secs(15), || {
        let changes: serde_json::Value = serde_json::from_str(&http_get(&addr, "/v1/rank-changes").ok()?.1).ok()?;
        changes["changes"].as_array()?.iter().any(listed).then_some(())
    });
    let previous: serde_json::Value = serde_json::from_str(
        &http_get(&addr, "/v1/rankings?window=current&group=category:government&limit=5").unwrap().1,
    )
    .unwrap();
    let moved = previous["entries"].as_array().unwrap().iter().filter(|e| e["previous_period_rank"].is_u64()).count();
    assert_eq!(moved, 5, "the previous quarter has data, so moves are real: {previous:#}");
    let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
    let _ = wait_until("the demo to exit", Duration::from_secs(15), || child.try_wait().unwrap());
}

/// Reads a child's pipe to the end on another thread.
fn collect(mut pipe: impl std::io::Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    })
}

#[test]
fn produce_reports_exactly_what_the_topic_holds() {
    let topic = unique("produce");
    let out = Command::new(env!("CARGO_BIN_EXE_engagement-monitor"))
        .args(["produce", "--brokers", &brokers(), "--topic", &topic, "--partitions", "3"])
        .args(["--scenario", "random", "--events", "25000", "--compression", "zstd", "--no-progress"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let summary = stderr.lines().find(|l| l.starts_with("produced ")).expect("a summary line");
    let words: Vec<&str> = summary.split_whitespace().collect();
    let (sent, acked): (u64, u64) = (words[1].parse().unwrap(), words[3].trim_start_matches('(').parse().unwrap());
    assert_eq!((sent, acked), (25_000, 25_000), "{summary}");
    let consumer: BaseConsumer =
        ClientConfig::new().set("bootstrap.servers", brokers()).set("group.id", "watermarks").create().unwrap();
    let in_topic: i64 = (0..3)
        .map(|p| {
            let (low, high) = consumer.fetch_watermarks(&topic, p, Duration::from_secs(10)).unwrap();
            high - low
        })
        .sum();
    assert_eq!(in_topic as u64, acked, "messages in the topic equal what produce reported");
}
