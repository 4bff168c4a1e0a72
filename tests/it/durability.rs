//! Nothing lost: checkpoints survive kill -9, SIGTERM, a crash between
//! writing and renaming a checkpoint, and corrupt files — each time the
//! final answers equal those of an uninterrupted run. Against the project's
//! real Kafka broker.

use std::path::PathBuf;
use std::time::Duration;

use crate::support::*;
use engagement_core::synth::{RandomStream, Rng, seed_quarter};

const READY: Duration = Duration::from_secs(120);

/// Snapshots of 20,000 posts plus deltas with event ids, some repeated.
fn history(n: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut stream = RandomStream::new(1000, 20, seed_quarter(), seed);
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        if i % 10 == 0 {
            let id = rng.below(n as u64 / 8);
            out.push(
                format!(
                    r#"{{"page_id":"delta{}","post_id":"d{}","kind":"delta","event_id":"e{id}","published_at":"2025-08-01T00:00:00Z","observed_at":"2025-08-02T00:00:00Z","reactions":{}}}"#,
                    id % 50,
                    id % 7,
                    id % 100
                )
                .into_bytes(),
            );
        } else {
            let mut buf = Vec::new();
            stream.next_into(&mut buf);
            out.push(buf);
        }
    }
    out
}

fn state_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(unique(name));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn with_state(topic: &str, dir: &std::path::Path, env: &[(&str, &str)]) -> Daemon {
    let mut env = env.to_vec();
    env.push(("ENGAGEMENT_MONITOR_STATE_CHECKPOINT_INTERVAL", "200ms"));
    Daemon::start(topic, &["--state-dir", dir.to_str().unwrap()], &env)
}

/// Every answer the comparison looks at.
fn answers(d: &Daemon) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for window in ["2025-Q3", "current", "rolling"] {
        for metric in ["interactions", "interactions_per_1k_followers", "posts"] {
            let body = d.json(&format!("/v1/rankings?window={window}&metric={metric}&limit=1000"));
            out.push(serde_json::json!({"window": window, "metric": metric, "total": body["total_pages"], "entries": body["entries"]}));
        }
    }
    out
}

/// Asserts equality, naming the first difference instead of dumping both.
fn assert_same(got: &[serde_json::Value], want: &[serde_json::Value]) {
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        if g == w {
            continue;
        }
        let (ge, we) = (g["entries"].as_array().unwrap(), w["entries"].as_array().unwrap());
        let first = ge.iter().zip(we).position(|(a, b)| a != b);
        panic!(
            "{} by {}: totals {} vs {}; first differing entry {:?}: {} vs {}",
            w["window"],
            w["metric"],
            g["total"],
            w["total"],
            first,
            first.map_or(serde_json::Value::Null, |i| ge[i].clone()),
            first.map_or(serde_json::Value::Null, |i| we[i].clone())
        );
    }
}

/// Consumes the topic to the end with checkpoints in `dir`, then SIGTERM.
fn run_then_stop(topic: &str, dir: &std::path::Path) -> Vec<String> {
    let mut d = with_state(topic, dir, &[]);
    d.wait_ready(READY);
    d.signal("TERM");
    assert!(d.wait_exit(Duration::from_secs(15)).0.success());
    d.logs()
}

fn reference(topic: &str) -> Vec<serde_json::Value> {
    let d = Daemon::start(topic, &[], &[]);
    d.wait_ready(READY);
    answers(&d)
}

#[test]
fn kill_9_at_random_moments_loses_nothing() {
    let topic = unique("kill9");
    create_topic(&topic, 3);
    produce(&topic, 3, &history(200_000, 9), "lz4");
    let want = reference(&topic);
    let dir = state_dir("kill9-state");
    let mut rng =
        Rng::new(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64);
    for round in 0..10 {
        let mut d = with_state(&topic, &dir, &[]);
        let delay = Duration::from_millis(150 + rng.below(1500));
        let deadline = std::time::Instant::now() + delay;
        while std::time::Instant::now() < deadline && d.child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(10));
        }
        d.signal("KILL");
        let (status, _) = d.wait_exit(Duration::from_secs(10));
        assert!(!status.success(), "round {round}: killed");
    }
    let d = with_state(&topic, &dir, &[]);
    d.wait_ready(READY);
    assert_same(&answers(&d), &want);
}

#[test]
fn sigterm_then_more_events_resumes_from_the_checkpoint() {
    let topic = unique("resume");
    create_topic(&topic, 3);
    let events = history(60_000, 5);
    let (first, second) = events.split_at(40_000);
    produce(&topic, 3, first, "lz4");
    let dir = state_dir("resume-state");
    let logs = run_then_stop(&topic, &dir);
    assert!(logs.iter().any(|l| l.contains("final checkpoint durable")));
    produce(&topic, 3, second, "lz4");
    let d = with_state(&topic, &dir, &[]);
    d.wait_ready(READY);
    assert!(d.logs().iter().any(|l| l.contains("checkpoint restored")), "restored from the checkpoint");
    assert_eq!(d.consumed(), 20_000.0, "only the tail was consumed after the restart");
    let got = answers(&d);
    drop(d);
    assert_same(&got, &reference(&topic));
}

#[test]
fn a_crash_between_writing_and_renaming_keeps_the_previous_checkpoint() {
    let topic = unique("failpoint");
    create_topic(&topic, 3);
    let events = history(30_000, 3);
    let (first, second) = events.split_at(20_000);
    produce(&topic, 3, first, "lz4");
    let dir = state_dir("failpoint-state");
    run_then_stop(&topic, &dir);
    produce(&topic, 3, second, "lz4");
    {
        let mut d = with_state(&topic, &dir, &[("EM_FAILPOINT", "checkpoint-before-rename")]);
        let (status, _) = d.wait_exit(Duration::from_secs(60));
        assert!(!status.success(), "the failpoint aborts the process");
        let tmp = std::fs::read_dir(&dir)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "tmp"))
            .count();
        assert_eq!(tmp, 1, "a written but unrenamed checkpoint is left behind");
    }
    let d = with_state(&topic, &dir, &[]);
    d.wait_ready(READY);
    assert!(d.logs().iter().any(|l| l.contains("checkpoint restored")));
    assert_eq!(d.metric(r#"engagement_checkpoint_restores_total{result="discarded"}"#), Some(0.0));
    let got = answers(&d);
    drop(d);
    assert_same(&got, &reference(&topic));
}

#[test]
fn corrupt_checkpoints_are_moved_aside_and_the_daemon_replays() {
    let topic = unique("corrupt");
    create_topic(&topic, 3);
    produce(&topic, 3, &history(10_000, 4), "lz4");
    let dir = state_dir("corrupt-state");
    std::fs::write(dir.join("checkpoint-00000000000000000007.bin"), b"EMCKPT\0\x01 then garbage").unwrap();
    let d = with_state(&topic, &dir, &[]);
    d.wait_ready(READY);
    assert_eq!(d.metric(r#"engagement_checkpoint_restores_total{result="discarded"}"#), Some(1.0));
    assert!(dir.join("checkpoint-00000000000000000007.corrupt").exists());
    let got = answers(&d);
    drop(d);
    assert_same(&got, &reference(&topic));
}
