//! The state directory as an operator meets it: unusable at start or at
//! shutdown, holding another topic's checkpoint, or one from a newer
//! version. Each stops the daemon with a non-zero status and a message
//! naming the path (and the topics), instead of losing state quietly. A
//! checkpoint of other windows is set aside and the topic replayed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::*;

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(unique(name));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run_args<'a>(topic: &'a str, state: &'a str) -> Vec<&'a str> {
    vec!["run", "--topic", topic, "--listen", "127.0.0.1:0", "--log-format", "json", "--state-dir", state]
}

#[test]
fn an_unusable_state_dir_stops_start_up_within_5_s_naming_it() {
    let base = scratch("state-under-file");
    let file = base.join("a-file");
    std::fs::write(&file, b"not a directory").unwrap();
    let state = file.join("state");
    let brokers = brokers();
    let mut args = run_args("unused", state.to_str().unwrap());
    args.extend(["--brokers", &brokers]);
    let out = run_to_exit(&args, &[], Duration::from_secs(20));
    assert!(!out.status.success(), "{}", out.stderr);
    assert!(out.took < Duration::from_secs(5), "took {:?}", out.took);
    assert!(out.stderr.contains(state.to_str().unwrap()), "the path is named: {}", out.stderr);
    assert!(out.stderr.contains("state.dir"), "the setting is named: {}", out.stderr);
}

#[test]
fn a_failed_final_checkpoint_exits_non_zero_naming_the_path() {
    let topic = unique("final-ckpt");
    create_topic(&topic, 1);
    produce_strings(&topic, 1, &[crate::daemon::event("p", "1", "2025-08-01T00:00:00Z", "2025-08-02T00:00:00Z", "")]);
    let dir = scratch("final-ckpt-state");
    let env = [("ENGAGEMENT_MONITOR_STATE_CHECKPOINT_INTERVAL", "1h")];
    let mut d = Daemon::start(&topic, &["--state-dir", dir.to_str().unwrap()], &env);
    d.wait_ready(Duration::from_secs(60));
    // The directory is replaced by a regular file: unwritable, even for root.
    std::fs::rename(&dir, dir.with_extension("moved")).unwrap();
    std::fs::write(&dir, b"in the way").unwrap();
    d.signal("TERM");
    let (status, _) = d.wait_exit(Duration::from_secs(15));
    assert!(!status.success(), "a lost final checkpoint is a failed exit");
    let logs = d.logs().join("\n");
    assert!(logs.contains("final checkpoint failed"), "{logs}");
    assert!(logs.contains(dir.to_str().unwrap()), "the path is named: {logs}");
}

/// Runs the daemon on `topic` until it is ready, then stops it: `dir`
/// holds a checkpoint of `topic` afterwards.
fn checkpoint_of(topic: &str, dir: &Path) {
    let mut d = Daemon::start(topic, &["--state-dir", dir.to_str().unwrap()], &[]);
    d.wait_ready(Duration::from_secs(60));
    d.signal("TERM");
    assert!(d.wait_exit(Duration::from_secs(15)).0.success());
}

#[test]
fn a_checkpoint_of_another_topic_is_refused_naming_both_topics() {
    let (first, second) = (unique("topic-a"), unique("topic-b"));
    for t in [&first, &second] {
        create_topic(t, 1);
    }
    let event = |page: &str| crate::daemon::event(page, "1", "2025-08-01T00:00:00Z", "2025-08-02T00:00:00Z", "");
    produce_strings(&first, 1, &[event("only-in-a")]);
    produce_strings(&second, 1, &[event("only-in-b")]);
    let dir = scratch("two-topics");
    checkpoint_of(&first, &dir);
    let mut d = Daemon::start(&second, &["--state-dir", dir.to_str().unwrap()], &[]);
    let (status, _) = d.wait_exit(Duration::from_secs(20));
    assert!(!status.success(), "another topic's state is not used");
    let logs = d.logs().join("\n");
    assert!(logs.contains(&first) && logs.contains(&second), "both topics are named: {logs}");
    assert!(logs.contains(dir.to_str().unwrap()), "the directory is named: {logs}");
}

#[test]
fn a_checkpoint_from_a_newer_version_stops_start_up_and_stays() {
    let dir = scratch("newer-version");
    let file = dir.join(format!("checkpoint-{:020}.bin", 7));
    let mut bytes = b"EMCKPT\0\x01".to_vec();
    bytes.extend_from_slice(&99u32.to_le_bytes());
    bytes.extend_from_slice(&[0u8; 24]);
    std::fs::write(&file, &bytes).unwrap();
    let topic = unique("newer");
    create_topic(&topic, 1);
    let mut d = Daemon::start(&topic, &["--state-dir", dir.to_str().unwrap()], &[]);
    let (status, _) = d.wait_exit(Duration::from_secs(20));
    assert!(!status.success(), "a rollback does not silently drop state");
    let logs = d.logs().join("\n");
    assert!(logs.contains(file.to_str().unwrap()) && logs.contains("version 99"), "{logs}");
    assert_eq!(std::fs::read(&file).unwrap(), bytes, "the file stays where it is");
}

#[test]
fn a_checkpoint_of_other_windows_is_set_aside_and_the_topic_replayed() {
    use engagement_core::synth::{SEED_TABLE, seed_events};
    let topic = unique("other-windows");
    create_topic(&topic, 3);
    produce_strings(&topic, 3, &seed_events());
    let dir = scratch("other-windows");
    checkpoint_of(&topic, &dir);
    let weeks = [("ENGAGEMENT_MONITOR_WINDOWS_CALENDAR", "quarter,month,week")];
    let d = Daemon::start(&topic, &["--state-dir", dir.to_str().unwrap()], &weeks);
    d.wait_ready(Duration::from_secs(60));
    let all = seed_events().len() as f64;
    d.wait_metric(r#"engagement_events_total{outcome="applied"}"#, all, Duration::from_secs(60));
    assert!(d.logs().iter().any(|l| l.contains("checkpoint of other windows set aside")), "{:#?}", d.logs());
    let aside = std::fs::read_dir(&dir).unwrap().filter_map(|e| e.ok()).map(|e| e.path());
    assert_eq!(aside.filter(|p| p.extension().is_some_and(|x| x == "other-windows")).count(), 1);
    let table: Vec<(String, u64, u64)> = SEED_TABLE.iter().map(|p| (p.id.into(), p.interactions, p.posts)).collect();
    assert_eq!(crate::windows::served(&d, "2025-Q3"), table, "the replay rebuilt the quarter");
    let posts = crate::windows::posts();
    let week = crate::windows::ranking(&posts, |p| p.published.iso_week() == 38);
    assert_eq!(crate::windows::served(&d, "2025-W38"), week, "and the new kind");
}
