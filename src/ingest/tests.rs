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
use super::{Offsets, Parts, Record, Source};
use crate::config::Config;
use crate::metrics::{Metrics, Sources};
use crate::published::{self, ViewRx};
use crate::publisher::Publisher;
use crate::status::{self, Readiness, StatusRx};

/// Partitions of scripted payloads; consumption starts where `assign` says.
struct Fake {
    partitions: Vec<Vec<Vec<u8>>>,
    /// Offsets after each partition's last message that are never handed
    /// over, like a transaction's commit marker.
    markers: i64,
    /// The earliest offset each partition still holds (records before it
    /// deleted).
    low: i64,
    /// Next offset per assigned partition.
    positions: Vec<Option<usize>>,
    /// Every commit, in order.
    commits: Arc<Mutex<Vec<Offsets>>>,
}

impl Fake {
    fn new(partitions: Vec<Vec<Vec<u8>>>) -> Fake {
        let n = partitions.len();
        Fake { partitions, markers: 0, low: 0, positions: vec![None; n], commits: Arc::default() }
    }
}

impl Source for Fake {
    fn topic(&self) -> &str {
        "events"
    }

    fn partitions(&mut self) -> anyhow::Result<Option<usize>> {
        Ok(Some(self.partitions.len()))
    }

    fn assign(&mut self, partitions: &[(i32, Option<i64>)]) -> anyhow::Result<()> {
        for (p, start) in partitions {
            self.positions[*p as usize] = Some(start.unwrap_or(0) as usize);
        }
        Ok(())
    }

    fn poll(&mut self, _: Duration, max: usize, f: &mut dyn FnMut(&[Record<'_>])) {
        let mut batch = Vec::new();
        for (p, position) in self.positions.iter_mut().enumerate() {
            let Some(at) = position else { continue };
            for (offset, payload) in self.partitions[p].iter().enumerate().skip(*at).take(max - batch.len()) {
                let partition = p as i32;
                batch.push(Record { partition, offset: offset as i64, timestamp: None, key: None, payload });
                *at = offset + 1;
            }
        }
        if !batch.is_empty() {
            f(&batch);
        }
    }

    fn position(&mut self, partition: i32) -> Option<i64> {
        let at = self.positions[partition as usize]? as i64;
        let len = self.partitions[partition as usize].len() as i64;
        Some(if at >= len { len + self.markers } else { at })
    }

    fn ends(&mut self, partition: i32, _: bool) -> Option<(i64, i64)> {
        Some((self.low, self.partitions[partition as usize].len() as i64 + self.markers))
    }

    fn brokers_down(&mut self) -> bool {
        false
    }

    fn commit(&mut self, offsets: &Offsets) {
        self.commits.lock().unwrap().push(offsets.clone());
    }

    fn serve_until(&mut self, _: Instant, _: &mut dyn FnMut() -> bool) {}
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
    }));
    let publisher = Arc::new(Publisher::new(&config.kafka, metrics.clone()).unwrap());
    let status_tx = Arc::new(status_tx);
    let counters = metrics.clone();
    let parts = Parts {
        config: config.clone(),
        views: published::Preparer::inline(views_tx, status_tx.clone(), metrics.clone()),
        status: status_tx,
        metrics,
        publisher,
        shutdown: CancellationToken::new(),
    };
    let checkpointer = state_dir.map(|dir| Checkpointer::new(dir, "events".into(), 1, Duration::from_secs(60)));
    let restored = Restored { engine: engagement_core::engine::Engine::new(config.engine), start, checkpointer };
    let commits = source.commits.clone();
    Harness { consume: Consume::new(source, parts, restored), views, status, commits, metrics: counters }
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
        h.consume.poll();
        h.consume.tick(t0 + Duration::from_millis(u64::from(step)));
        // The invariant, checked after every step: ready implies that the
        // published view is a ready one holding everything applied.
        if h.status.borrow().is_ready() {
            let published = h.views.borrow().clone();
            assert!(published.ready, "status ready before a ready view was published");
            assert_eq!(published.view.usage.posts, applied_posts(&h));
            became_ready.get_or_insert(step);
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
    h.consume.poll();
    h.consume.poll();
    h.consume.tick(t0 + Duration::from_secs(10));
    let commits = h.commits.lock().unwrap().clone();
    assert_eq!(commits.len(), 1, "one commit per commit interval");
    let total = seed_events().len() as i64;
    assert_eq!(commits[0].iter().map(|(_, next)| next).sum::<i64>(), total.min(2 * 1024));
}

#[test]
fn offsets_are_committed_only_from_a_durable_checkpoint() {
    let dir = temp_dir("durable");
    let mut h = harness(seed_partitions(), Some(dir.clone()));
    let t0 = Instant::now();
    h.consume.tick(t0);
    h.consume.poll();
    h.consume.tick(t0 + Duration::from_secs(1));
    assert!(h.commits.lock().unwrap().is_empty(), "nothing is durable yet");
    // Due: the checkpoint is written with what is applied now...
    let at_checkpoint = {
        h.consume.tick(t0 + Duration::from_secs(61));
        h.consume.engine().usage().posts
    };
    // ...more is applied while it becomes durable on its own thread...
    h.consume.poll();
    h.consume.drain();
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
    h.consume.poll();
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
    h.consume.poll();
    h.consume.poll();
    h.consume.poll();
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
    h.consume.source_mut().markers = 1;
    let t0 = Instant::now();
    h.consume.tick(t0);
    for _ in 0..100 {
        h.consume.poll();
        h.consume.tick(t0);
    }
    assert_eq!(*h.status.borrow(), Readiness::Ready, "no lag is left behind the markers");
    h.consume.stop().unwrap();
    let ends: Vec<i64> = seed_partitions().iter().map(|p| p.len() as i64 + 1).collect();
    assert_eq!(h.commits.lock().unwrap().last().unwrap(), &vec![(0, ends[0]), (1, ends[1])]);
}

#[test]
fn offsets_deleted_before_the_state_needs_them_are_reported_once() {
    let mut source = Fake::new(seed_partitions());
    source.low = 5;
    // Partition 0 needs offset 3 (deleted), partition 1 offset 7 (kept).
    let mut h = harness_from(source, vec![(0, 3), (1, 7)], None);
    let t0 = Instant::now();
    h.consume.tick(t0);
    h.consume.poll();
    h.consume.tick(t0 + Duration::from_secs(1));
    assert_eq!(h.metrics.consumer.history_gaps.get(), 1, "one gap: partition 0");
    h.consume.tick(t0 + Duration::from_secs(5));
    assert_eq!(h.metrics.consumer.history_gaps.get(), 1, "reported once");
}
