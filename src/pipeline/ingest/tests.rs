//! The consume loop against a scripted source: what it publishes, when it
//! turns ready and what it commits.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use engagement_core::engine::Limits;
use engagement_core::synth::seed_events;
use tokio_util::sync::CancellationToken;

use super::checkpoints::{Checkpointer, Restored};
use super::consume::Consume;
use super::{Feed, Offsets, Parts, Preparer, Record, Source};
use crate::alerts::publisher::Publisher;
use crate::config::Config;
use crate::pipeline::status::{self, Readiness, StatusRx};
use crate::serve::metrics::{Metrics, Sources};
use crate::serve::published::{self, ViewRx};

/// Partitions of scripted payloads; consumption starts where `assign` says.
#[derive(Default)]
struct Script {
    partitions: Vec<Vec<Vec<u8>>>,
    /// Offsets after each partition's last message that are never handed
    /// over, like a transaction's commit marker.
    markers: i64,
    /// The earliest offset each partition still holds (records before it
    /// deleted).
    low: i64,
    /// Next offset per assigned partition.
    positions: Vec<Option<usize>>,
}

/// The source's half of the script (the loop's thread).
struct Fake {
    script: Arc<Mutex<Script>>,
    /// Every commit, in order.
    commits: Arc<Mutex<Vec<Offsets>>>,
}

/// The feed's half (the fetch thread).
struct FakeFeed(Arc<Mutex<Script>>);

impl Fake {
    fn new(partitions: Vec<Vec<Vec<u8>>>) -> Fake {
        let n = partitions.len();
        let script = Script { partitions, positions: vec![None; n], ..Script::default() };
        Fake { script: Arc::new(Mutex::new(script)), commits: Arc::default() }
    }

    fn script(&self) -> std::sync::MutexGuard<'_, Script> {
        self.script.lock().unwrap()
    }
}

impl Source for Fake {
    type Feed = FakeFeed;

    fn feed(&mut self) -> FakeFeed {
        FakeFeed(self.script.clone())
    }

    fn topic(&self) -> &str {
        "events"
    }

    fn partitions(&mut self) -> anyhow::Result<Option<usize>> {
        Ok(Some(self.script().partitions.len()))
    }

    fn assign(&mut self, partitions: &[(i32, Option<i64>)]) -> anyhow::Result<()> {
        let mut script = self.script();
        for (p, start) in partitions {
            script.positions[*p as usize] = Some(start.unwrap_or(0) as usize);
        }
        Ok(())
    }

    fn ends(&mut self, partition: i32, _: bool) -> Option<(i64, i64)> {
        let script = self.script();
        Some((script.low, script.partitions[partition as usize].len() as i64 + script.markers))
    }

    fn brokers_down(&mut self) -> bool {
        false
    }

    fn commit(&mut self, offsets: &Offsets) {
        self.commits.lock().unwrap().push(offsets.clone());
    }

    fn serve_until(&mut self, _: Instant, _: &mut dyn FnMut() -> bool) {}
}

impl Feed for FakeFeed {
    fn poll(&mut self, timeout: Duration, max: usize, f: &mut dyn FnMut(&[Record<'_>])) {
        let mut script = self.0.lock().unwrap();
        let Script { partitions, positions, .. } = &mut *script;
        let mut batch = Vec::new();
        for (p, position) in positions.iter_mut().enumerate() {
            let Some(at) = position else { continue };
            for (offset, payload) in partitions[p].iter().enumerate().skip(*at).take(max - batch.len()) {
                let partition = p as i32;
                batch.push(Record { partition, offset: offset as i64, timestamp: None, key: None, payload });
                *at = offset + 1;
            }
        }
        if batch.is_empty() {
            drop(script);
            // A client would block up to `timeout` for the next message.
            std::thread::sleep(timeout.min(Duration::from_millis(1)));
            return;
        }
        f(&batch);
    }

    fn positions(&mut self, out: &mut Vec<(i32, i64)>) {
        out.clear();
        let script = self.0.lock().unwrap();
        for (p, at) in script.positions.iter().enumerate() {
            let Some(at) = *at else { continue };
            let len = script.partitions[p].len();
            let next = if at >= len { len as i64 + script.markers } else { at as i64 };
            out.push((p as i32, next));
        }
    }
}

struct Harness {
    consume: Consume<Fake>,
    views: ViewRx,
    status: StatusRx,
    commits: Arc<Mutex<Vec<Offsets>>>,
    metrics: Arc<Metrics>,
}

/// The seed table's events spread over two partitions.
fn seed_partitions() -> Vec<Vec<Vec<u8>>> {
    let mut parts = vec![Vec::new(), Vec::new()];
    for (i, e) in seed_events().into_iter().enumerate() {
        parts[i % 2].push(e.into_bytes());
    }
    parts
}

fn harness(partitions: Vec<Vec<Vec<u8>>>, state_dir: Option<PathBuf>) -> Harness {
    harness_from(Fake::new(partitions), Vec::new(), state_dir)
}

/// A harness whose state starts at `start` (as from a checkpoint).
fn harness_from(source: Fake, start: Offsets, state_dir: Option<PathBuf>) -> Harness {
    let mut config = Config::default();
    config.ranking.ready_max_lag = 0;
    config.state.dir = state_dir.clone();
    let config = Arc::new(config);
    let (views_tx, views) = published::channel();
    let (status_tx, status) = status::channel();
    let metrics = Arc::new(Metrics::new(Sources {
        views: views.clone(),
        status: status.clone(),
        top_n: 10,
        limits: Limits::default(),
        log_rate_per_second: 0,
        watches: config.ranking.watches.clone().into(),
        groups: Arc::from([]),
    }));
    let publisher = Arc::new(Publisher::new(&config.kafka, metrics.clone()).unwrap());
    let status_tx = Arc::new(status_tx);
    let counters = metrics.clone();
    let parts = Parts {
        config: config.clone(),
        views: Preparer::inline(views_tx, status_tx.clone(), metrics.clone(), crate::directory::Directories::none()),
        status: status_tx,
        metrics,
        publisher,
        shutdown: CancellationToken::new(),
    };
    let checkpointer = state_dir.map(|dir| Checkpointer::new(dir, "events".into(), 1, Duration::from_secs(60)));
    let restored = Restored { engine: engagement_core::engine::Engine::new(config.engine), start, checkpointer };
    let commits = source.commits.clone();
    Harness { consume: Consume::new(source, parts, restored).unwrap(), views, status, commits, metrics: counters }
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("em-ingest-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Calls `check` until it returns `Some` (the checkpoint thread is real).
fn wait_for<T>(mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn applied_posts(h: &Harness) -> usize {
    h.consume.engine().usage().posts
}

#[test]
fn the_view_is_published_before_readiness_turns_on() {
    let mut h = harness(seed_partitions(), None);
    let total: usize = seed_events().len();
    let t0 = Instant::now();
    let mut became_ready = None;
    for step in 0..1000u32 {
        h.consume.poll().unwrap();
        h.consume.tick(t0 + Duration::from_millis(u64::from(step)));
        // The invariant, checked after every step: ready implies that the
        // published view is a ready one holding everything applied.
        if h.status.borrow().is_ready() {
            let published = h.views.borrow().clone();
            assert!(published.ready, "status ready before a ready view was published");
            assert_eq!(published.view.usage.posts, applied_posts(&h));
            became_ready.get_or_insert(step);
        }
        if became_ready.is_some_and(|at| step > at + 5) {
            break;
        }
    }
    assert!(became_ready.is_some(), "never became ready");
    assert_eq!(applied_posts(&h), total);
    let view = published::latest(&h.views);
    assert_eq!(view.current().unwrap().len(), 5, "the five pages of the seed table");
}

#[test]
fn without_a_state_directory_what_is_applied_is_committed() {
    let mut h = harness(seed_partitions(), None);
    let t0 = Instant::now();
    h.consume.tick(t0);
    let total = seed_events().len();
    for _ in 0..100 {
        h.consume.poll().unwrap();
        if applied_posts(&h) == total {
            break;
        }
    }
    h.consume.tick(t0 + Duration::from_secs(10));
    let commits = h.commits.lock().unwrap().clone();
    assert_eq!(commits.len(), 1, "one commit per commit interval");
    assert_eq!(commits[0].iter().map(|(_, next)| *next as usize).sum::<usize>(), total);
}

#[test]
fn offsets_are_committed_only_from_a_durable_checkpoint() {
    let dir = temp_dir("durable");
    let mut h = harness(seed_partitions(), Some(dir.clone()));
    let t0 = Instant::now();
    h.consume.tick(t0);
    h.consume.poll().unwrap();
    h.consume.tick(t0 + Duration::from_secs(1));
    assert!(h.commits.lock().unwrap().is_empty(), "nothing is durable yet");
    // Due: the checkpoint is written with what is applied now...
    let at_checkpoint = {
        h.consume.tick(t0 + Duration::from_secs(61));
        h.consume.engine().usage().posts
    };
    // ...more is applied while it becomes durable on its own thread...
    h.consume.poll().unwrap();
    assert!(applied_posts(&h) > at_checkpoint);
    // ...and only the checkpoint's offsets are committed once it is.
    let committed = wait_for(|| {
        h.consume.tick(t0 + Duration::from_secs(62));
        h.commits.lock().unwrap().first().cloned()
    });
    let committed_total: i64 = committed.iter().map(|(_, next)| next).sum();
    assert_eq!(committed_total as usize, at_checkpoint, "the commit holds the checkpoint's offsets");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_failed_checkpoint_commits_nothing() {
    let dir = temp_dir("failed");
    let not_a_dir = dir.join("file");
    std::fs::write(&not_a_dir, b"x").unwrap();
    let mut h = harness(seed_partitions(), Some(not_a_dir.clone()));
    let t0 = Instant::now();
    h.consume.poll().unwrap();
    for s in [61, 62, 63, 200] {
        h.consume.tick(t0 + Duration::from_secs(s));
    }
    assert!(h.commits.lock().unwrap().is_empty());
    let failed = h.consume.stop().expect_err("a failed final checkpoint fails the stop").to_string();
    assert!(failed.contains(&not_a_dir.display().to_string()), "names the path: {failed}");
    assert!(h.commits.lock().unwrap().is_empty(), "not even at shutdown");
    assert_eq!(*h.status.borrow(), Readiness::Stopping);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_revoked_partitions_offsets_are_never_committed() {
    let dir = temp_dir("revoked");
    let mut h = harness(seed_partitions(), Some(dir.clone()));
    let t0 = Instant::now();
    h.consume.tick(t0);
    h.consume.poll().unwrap();
    h.consume.poll().unwrap();
    h.consume.poll().unwrap();
    h.consume.revoke(1);
    h.consume.stop().unwrap();
    let commits = h.commits.lock().unwrap().clone();
    assert_eq!(commits.len(), 1, "the final checkpoint's commit");
    assert!(commits[0].iter().all(|(p, _)| *p == 0), "partition 1 was revoked: {commits:?}");
    assert!(!commits[0].is_empty());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn partitions_ending_in_a_transaction_marker_are_caught_up_and_committed_to_the_end() {
    let mut h = harness(seed_partitions(), None);
    h.consume.source_mut().script().markers = 1;
    let t0 = Instant::now();
    h.consume.tick(t0);
    for _ in 0..100 {
        h.consume.poll().unwrap();
        h.consume.tick(t0);
        if h.status.borrow().is_ready() {
            break;
        }
    }
    assert_eq!(*h.status.borrow(), Readiness::Ready, "no lag is left behind the markers");
    h.consume.stop().unwrap();
    let ends: Vec<i64> = seed_partitions().iter().map(|p| p.len() as i64 + 1).collect();
    assert_eq!(h.commits.lock().unwrap().last().unwrap(), &vec![(0, ends[0]), (1, ends[1])]);
}

#[test]
fn offsets_deleted_before_the_state_needs_them_are_reported_once() {
    let source = Fake::new(seed_partitions());
    source.script().low = 5;
    // Partition 0 needs offset 3 (deleted), partition 1 offset 7 (kept).
    let mut h = harness_from(source, vec![(0, 3), (1, 7)], None);
    let t0 = Instant::now();
    h.consume.tick(t0);
    h.consume.poll().unwrap();
    h.consume.tick(t0 + Duration::from_secs(1));
    assert_eq!(h.metrics.consumer.history_gaps.get(), 1, "one gap: partition 0");
    h.consume.tick(t0 + Duration::from_secs(5));
    assert_eq!(h.metrics.consumer.history_gaps.get(), 1, "reported once");
}
