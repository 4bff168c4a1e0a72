//! The Kafka loop: poll → decode → apply → record offsets, on one dedicated
//! OS thread that owns the engine (one writer; readers get views).
//!
//! Every partition of the topic is assigned to this instance (SPEC §7: the
//! ranking is global), so the group id never splits partitions: it only
//! carries committed offsets for lag monitoring. Offsets are committed from
//! what has been applied, never ahead of it, and are not a restart point.
//!
//! Housekeeping runs between messages at most every 100 ms: it flushes
//! counters to metrics, computes lag and readiness, publishes the view every
//! ranking interval, takes checkpoints, commits offsets and notices new
//! partitions.
//!
//! With a state directory, the loop starts from the newest valid checkpoint
//! and commits to Kafka only the offsets of checkpoints that are durable.
//! A checkpoint pauses consumption only while the state is serialized into
//! the page cache; fsync and rename happen on another thread.

use std::ffi::CString;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::sync::{oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::checkpoint::{self, Offsets, Pending};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::publisher::{Origin, Publisher};
use crate::status::{Phase, Status};
use crate::telemetry::LogLimiter;
use engagement_core::engine::{Engine, Outcome};
use engagement_core::event::{DecodeContext, Invalid, decode};
use engagement_core::view::View;

const HOUSEKEEPING: Duration = Duration::from_millis(100);
/// Messages between two looks at the clock.
const CHECK_EVERY: u32 = 256;

/// What the loop needs, handed over by the daemon.
pub struct Parts {
    pub config: Arc<Config>,
    pub view: Arc<ArcSwap<View>>,
    /// Each published view, and whether the daemon was ready when it was built.
    pub views: watch::Sender<(Arc<View>, bool)>,
    pub status: Status,
    pub metrics: Arc<Metrics>,
    pub publisher: Arc<Publisher>,
    pub shutdown: CancellationToken,
}

/// Starts the loop on its own thread. The receiver yields once the loop has
/// stopped consuming and committed (the consumer may still be closing).
pub fn spawn(parts: Parts) -> std::io::Result<oneshot::Receiver<anyhow::Result<()>>> {
    let (done, rx) = oneshot::channel();
    std::thread::Builder::new().name("consumer".into()).spawn(move || run(parts, done))?;
    Ok(rx)
}

/// Counts consumer errors and commit results.
struct Ctx(Arc<Metrics>);

impl ClientContext for Ctx {
    fn error(&self, error: KafkaError, reason: &str) {
        self.0.consumer_errors.inc();
        tracing::debug!(%error, reason, "kafka client error");
    }
}

impl ConsumerContext for Ctx {
    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        let label = if result.is_ok() { "ok" } else { "failed" };
        self.0.commits.with_label_values(&[label]).inc();
    }
}

fn client_config(cfg: &Config) -> ClientConfig {
    let k = &cfg.kafka;
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &k.brokers)
        .set("group.id", &k.group_id)
        .set("client.id", "engagement-monitor")
        .set("group.protocol", "classic")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .set("fetch.wait.max.ms", "100")
        .set("fetch.min.bytes", "65536")
        .set("fetch.queue.backoff.ms", "20")
        .set("queued.max.messages.kbytes", "262144")
        .set("statistics.interval.ms", "0");
    for (key, value) in &k.properties {
        c.set(key, value);
    }
    c
}

/// Consumption state of one partition.
#[derive(Debug, Clone, Copy)]
struct Partition {
    /// Offset after the last message applied; `None` before the first.
    next: Option<i64>,
    /// (low, high) watermarks when known.
    watermarks: Option<(i64, i64)>,
}

impl Partition {
    fn lag(&self) -> Option<i64> {
        let (low, high) = self.watermarks?;
        Some((high - self.next.unwrap_or(low)).max(0))
    }
}

/// Per-outcome counts not yet flushed to metrics (a label lookup per event
/// would cost more than decoding it).
#[derive(Default)]
struct Unflushed {
    outcomes: [u64; Outcome::LABELS.len()],
    invalid: Vec<(&'static str, u64)>,
    rejected: Vec<(engagement_core::engine::Bound, u64)>,
}

/// Checkpointing, when a state directory is configured.
struct Checkpoints {
    dir: std::path::PathBuf,
    seq: u64,
    next_at: Instant,
    /// The checkpoint being made durable on another thread.
    in_flight: Option<(Instant, std::sync::mpsc::Receiver<std::io::Result<Pending>>)>,
}

struct State {
    parts: Parts,
    engine: Engine,
    checkpoints: Option<Checkpoints>,
    /// Where each partition starts, from the checkpoint.
    start: Offsets,
    topic: CString,
    partitions: Vec<Partition>,
    unflushed: Unflushed,
    limiter: LogLimiter,
    now_ms: i64,
    next_view: Instant,
    next_commit: Instant,
    next_metadata: Instant,
    next_watermark_fetch: Instant,
}

fn wall_ms() -> i64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

fn run(parts: Parts, done: oneshot::Sender<anyhow::Result<()>>) {
    let consumer: BaseConsumer<Ctx> = match client_config(&parts.config).create_with_context(Ctx(parts.metrics.clone()))
    {
        Ok(c) => c,
        Err(e) => {
            let _ = done.send(Err(anyhow::anyhow!("cannot create the Kafka consumer: {e}")));
            return;
        }
    };
    let (engine, start, checkpoints) = match restore(&parts) {
        Ok(r) => r,
        Err(e) => {
            let _ = done.send(Err(e));
            return;
        }
    };
    let now = Instant::now();
    let mut state = State {
        topic: CString::new(parts.config.kafka.topic.clone()).unwrap_or_default(),
        limiter: LogLimiter::new(parts.config.events.log_rate_per_second, now),
        partitions: Vec::new(),
        unflushed: Unflushed::default(),
        now_ms: wall_ms(),
        next_view: now,
        next_commit: now + parts.config.kafka.commit_interval,
        next_metadata: now,
        next_watermark_fetch: now,
        engine,
        checkpoints,
        start,
        parts,
    };
    state.parts.status.set(Phase::CatchingUp, "starting");
    state.parts.metrics.set_phase(Phase::CatchingUp);
    state.consume(&consumer);
    state.stop(&consumer);
    let _ = done.send(Ok(()));
    drop(consumer);
}

type Restoration = (Engine, Offsets, Option<Checkpoints>);

/// The engine and start offsets: from the newest valid checkpoint in the
/// state directory, or empty (replay from the earliest offsets).
fn restore(parts: &Parts) -> anyhow::Result<Restoration> {
    let cfg = &parts.config;
    let Some(dir) = cfg.state.dir.clone() else {
        return Ok((Engine::new(cfg.engine), Vec::new(), None));
    };
    parts.status.set(Phase::Restoring, "restoring the checkpoint");
    parts.metrics.set_phase(Phase::Restoring);
    let started = Instant::now();
    let (restored, report) = checkpoint::restore(&dir, cfg.engine)
        .map_err(|e| anyhow::anyhow!("reading state.dir {}: {e}", dir.display()))?;
    let m = &parts.metrics;
    for (path, why) in &report.discarded {
        m.restores.with_label_values(&["discarded"]).inc();
        tracing::error!(path = %path.display(), reason = %why, "checkpoint unusable; moved aside");
    }
    m.restore_duration.set(started.elapsed().as_secs_f64());
    let next_at = Instant::now() + cfg.state.checkpoint_interval;
    let Some(r) = restored else {
        m.restores.with_label_values(&["none"]).inc();
        tracing::info!(dir = %dir.display(), "no checkpoint: replaying from the earliest offsets");
        return Ok((Engine::new(cfg.engine), Vec::new(), Some(Checkpoints { dir, seq: 1, next_at, in_flight: None })));
    };
    m.restores.with_label_values(&["restored"]).inc();
    let offsets = if r.topic == cfg.kafka.topic {
        r.offsets
    } else {
        tracing::warn!(checkpoint_topic = %r.topic, topic = %cfg.kafka.topic, "checkpoint was taken on another topic: its offsets are ignored");
        Vec::new()
    };
    tracing::info!(
        seq = r.seq,
        bytes = r.bytes,
        posts = r.engine.usage().posts,
        seconds = started.elapsed().as_secs_f64(),
        "checkpoint restored"
    );
    Ok((r.engine, offsets, Some(Checkpoints { dir, seq: r.seq + 1, next_at, in_flight: None })))
}

impl State {
    fn consume(&mut self, consumer: &BaseConsumer<Ctx>) {
        let mut next_check = Instant::now();
        let mut since_check = 0u32;
        while !self.parts.shutdown.is_cancelled() {
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(msg)) => {
                    self.handle(&msg);
                    since_check += 1;
                    if since_check < CHECK_EVERY {
                        continue;
                    }
                }
                Some(Err(e)) => self.consumer_error(&e),
                None => {}
            }
            since_check = 0;
            let now = Instant::now();
            if now >= next_check {
                self.housekeeping(consumer, now);
                next_check = now + HOUSEKEEPING;
            }
        }
    }

    fn handle(&mut self, msg: &BorrowedMessage<'_>) {
        let payload = msg.payload().unwrap_or_default();
        let cfg = &self.parts.config.events;
        let cx = DecodeContext {
            message_time: msg.timestamp().to_millis(),
            now: self.now_ms,
            max_skew: cfg.max_future_skew.as_millis() as i64,
            max_payload_bytes: cfg.max_payload_bytes,
        };
        let outcome = match decode(payload, &cx) {
            Ok(ev) => self.engine.apply(&ev),
            Err(Invalid(reason)) => {
                self.not_applied(msg, reason, true);
                Outcome::Invalid
            }
        };
        if let Outcome::Rejected(bound) = outcome {
            self.not_applied(msg, bound.reason(), false);
            bump(&mut self.unflushed.rejected, bound);
        }
        self.unflushed.outcomes[outcome.index()] += 1;
        if let Some(p) = self.partitions.get_mut(msg.partition() as usize) {
            p.next = Some(msg.offset() + 1);
        }
    }

    /// Logs (rate-limited, without the payload), counts and dead-letters an
    /// event that changed nothing because it was invalid or refused.
    fn not_applied(&mut self, msg: &BorrowedMessage<'_>, reason: &'static str, invalid: bool) {
        if invalid {
            bump(&mut self.unflushed.invalid, reason);
        }
        if self.limiter.allow(Instant::now()) {
            let what = if invalid { "invalid event" } else { "event refused at a state bound" };
            tracing::warn!(reason, partition = msg.partition(), offset = msg.offset(), "{what}");
        }
        let origin = Origin { topic: msg.topic(), partition: msg.partition(), offset: msg.offset(), key: msg.key() };
        self.parts.publisher.dead_letter(msg.payload().unwrap_or_default(), &origin, reason);
    }

    fn consumer_error(&mut self, e: &KafkaError) {
        self.parts.metrics.consumer_errors.inc();
        if self.limiter.allow(Instant::now()) {
            tracing::warn!(error = %e, "kafka consumer error");
        }
    }

    fn housekeeping(&mut self, consumer: &BaseConsumer<Ctx>, now: Instant) {
        self.now_ms = wall_ms();
        self.flush_counts();
        if now >= self.next_metadata {
            self.next_metadata = now + self.parts.config.kafka.metadata_refresh;
            self.refresh_partitions(consumer);
        }
        self.update_lag(consumer, now);
        if self.update_phase() {
            // The view first: whoever sees /readyz 200 must see caught-up answers.
            self.next_view = now + self.parts.config.ranking.interval;
            self.publish_view(true);
            self.parts.status.set(Phase::Ready, "");
            self.parts.metrics.set_phase(Phase::Ready);
        } else if now >= self.next_view {
            self.next_view = now + self.parts.config.ranking.interval;
            self.publish_view(self.parts.status.phase() == Phase::Ready);
        }
        if self.checkpoints.is_some() {
            self.checkpoint_tick(consumer, now);
        } else if now >= self.next_commit {
            self.next_commit = now + self.parts.config.kafka.commit_interval;
            let applied = self.applied();
            self.commit(consumer, &applied);
        }
    }

    /// The offset after the last applied message, per partition.
    fn applied(&self) -> Offsets {
        self.partitions.iter().enumerate().filter_map(|(i, p)| Some((i as i32, p.next?))).collect()
    }

    /// Collects a finished checkpoint, or starts one when it is due.
    fn checkpoint_tick(&mut self, consumer: &BaseConsumer<Ctx>, now: Instant) {
        let Some(ck) = self.checkpoints.as_mut() else {
            return;
        };
        if let Some((started, rx)) = &ck.in_flight {
            let result = match rx.try_recv() {
                Ok(r) => r,
                Err(std::sync::mpsc::TryRecvError::Empty) => return,
                Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                    Err(std::io::Error::other("checkpoint thread died"))
                }
            };
            let started = *started;
            ck.in_flight = None;
            self.checkpoint_done(consumer, started, result);
            return;
        }
        if now < ck.next_at {
            return;
        }
        ck.next_at = now + self.parts.config.state.checkpoint_interval;
        let started = Instant::now();
        match self.write_checkpoint() {
            Ok(pending) => {
                let (tx, rx) = std::sync::mpsc::channel();
                let spawned = std::thread::Builder::new().name("checkpoint".into()).spawn(move || {
                    let _ = tx.send(pending.finish());
                });
                match spawned {
                    Ok(_) => self.checkpoints.as_mut().expect("checked above").in_flight = Some((started, rx)),
                    Err(e) => self.checkpoint_done(consumer, started, Err(e)),
                }
            }
            Err(e) => self.checkpoint_done(consumer, started, Err(e)),
        }
    }

    fn write_checkpoint(&mut self) -> std::io::Result<Pending> {
        let offsets = self.applied();
        let ck = self.checkpoints.as_mut().expect("checkpointing is configured");
        let seq = ck.seq;
        ck.seq += 1;
        let dir = ck.dir.clone();
        checkpoint::write(&dir, seq, &self.parts.config.kafka.topic, &offsets, &self.engine)
    }

    /// Records a checkpoint's result; a durable one's offsets are committed.
    fn checkpoint_done(&mut self, consumer: &BaseConsumer<Ctx>, started: Instant, result: std::io::Result<Pending>) {
        let m = &self.parts.metrics;
        match result {
            Ok(p) => {
                m.checkpoints.with_label_values(&["ok"]).inc();
                m.checkpoint_last_success.set(wall_ms() as f64 / 1000.0);
                m.checkpoint_duration.set(started.elapsed().as_secs_f64());
                m.checkpoint_pause.set(p.pause.as_secs_f64());
                m.checkpoint_bytes.set(p.bytes as i64);
                tracing::debug!(seq = p.seq, bytes = p.bytes, "checkpoint durable");
                self.commit(consumer, &p.offsets);
            }
            Err(e) => {
                m.checkpoints.with_label_values(&["failed"]).inc();
                tracing::error!(error = %e, "checkpoint failed; offsets stay uncommitted until one succeeds");
            }
        }
    }

    fn flush_counts(&mut self) {
        let m = &self.parts.metrics;
        for (i, n) in std::mem::take(&mut self.unflushed.outcomes).into_iter().enumerate() {
            if n > 0 {
                m.events.with_label_values(&[Outcome::LABELS[i]]).inc_by(n);
            }
        }
        for (reason, n) in self.unflushed.invalid.drain(..) {
            m.invalid.with_label_values(&[reason]).inc_by(n);
        }
        for (bound, n) in self.unflushed.rejected.drain(..) {
            m.rejected.with_label_values(&[bound.as_str()]).inc_by(n);
        }
        m.log_suppressed.inc_by(self.limiter.take_suppressed());
    }

    /// Assigns every partition of the topic, including ones added later.
    fn refresh_partitions(&mut self, consumer: &BaseConsumer<Ctx>) {
        let topic = self.parts.config.kafka.topic.as_str();
        let count = match consumer.fetch_metadata(Some(topic), Duration::from_secs(2)) {
            Ok(md) => md
                .topics()
                .iter()
                .find(|t| t.name() == topic)
                .filter(|t| t.error().is_none())
                .map_or(0, |t| t.partitions().len()),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read topic metadata");
                return;
            }
        };
        if count <= self.partitions.len() {
            if count == 0 {
                self.parts.status.set(Phase::CatchingUp, format!("waiting for topic {topic} to exist"));
                self.next_metadata = Instant::now() + Duration::from_secs(1);
            }
            return;
        }
        let mut tpl = TopicPartitionList::new();
        let from = self.partitions.len();
        for p in from..count {
            let start = self.start_of(p as i32);
            let _ = tpl.add_partition_offset(topic, p as i32, start.map_or(Offset::Beginning, Offset::Offset));
        }
        match consumer.incremental_assign(&tpl) {
            Ok(()) => {
                tracing::info!(topic, from, to = count, "assigned partitions");
                for p in from..count {
                    let start = self.start_of(p as i32);
                    self.partitions.push(Partition { next: start, watermarks: None });
                    self.check_history(consumer, p as i32, start);
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot assign partitions"),
        }
    }

    /// The checkpointed start offset of partition `p`, if any.
    fn start_of(&self, p: i32) -> Option<i64> {
        self.start.iter().find(|(q, _)| *q == p).map(|(_, o)| *o)
    }

    /// Warns and counts when offsets the state needs no longer exist
    /// (retention deleted them): consumption continues from the earliest
    /// offset that does, and history may be incomplete.
    fn check_history(&self, consumer: &BaseConsumer<Ctx>, p: i32, start: Option<i64>) {
        let topic = self.parts.config.kafka.topic.as_str();
        let Ok((low, _)) = consumer.fetch_watermarks(topic, p, Duration::from_secs(2)) else {
            return;
        };
        let needed = start.unwrap_or(0);
        if needed < low {
            self.parts.metrics.history_gaps.inc();
            tracing::warn!(
                topic,
                partition = p,
                needed,
                earliest = low,
                "offsets no longer exist: history may be incomplete; continuing from the earliest offset"
            );
        }
    }

    fn update_lag(&mut self, consumer: &BaseConsumer<Ctx>, now: Instant) {
        let topic = self.parts.config.kafka.topic.clone();
        let fetch = now >= self.next_watermark_fetch;
        for (i, p) in self.partitions.iter_mut().enumerate() {
            p.watermarks = cached_watermarks(consumer, &self.topic, i as i32).or(p.watermarks);
            if p.watermarks.is_none() && fetch {
                self.next_watermark_fetch = now + Duration::from_secs(2);
                p.watermarks = consumer.fetch_watermarks(&topic, i as i32, Duration::from_millis(500)).ok();
            }
            if let Some(lag) = p.lag() {
                self.parts.metrics.lag.with_label_values(&[&topic, &i.to_string()]).set(lag);
            }
        }
    }

    /// True once every partition is within the configured lag while
    /// catching up (the caller then publishes a view and becomes ready).
    fn update_phase(&mut self) -> bool {
        if self.parts.status.phase() != Phase::CatchingUp || self.partitions.is_empty() {
            return false;
        }
        let lags: Option<Vec<i64>> = self.partitions.iter().map(Partition::lag).collect();
        let Some(lags) = lags else {
            self.parts.status.set(Phase::CatchingUp, "partition ends not known yet");
            return false;
        };
        let behind: i64 = lags.iter().sum();
        if lags.iter().all(|l| *l as u64 <= self.parts.config.ranking.ready_max_lag) {
            tracing::info!(behind, "caught up: ready");
            true
        } else {
            self.parts.status.set(Phase::CatchingUp, format!("catching up: {behind} messages behind"));
            false
        }
    }

    /// Builds and publishes the view; `ready` tells the rank-change loop
    /// whether it may report changes against it.
    fn publish_view(&mut self, ready: bool) {
        let started = Instant::now();
        let view = Arc::new(View::build(&self.engine));
        self.parts.metrics.view_build_seconds.set(started.elapsed().as_secs_f64());
        self.parts.metrics.observe_view(&view);
        self.parts.view.store(view.clone());
        let _ = self.parts.views.send((view, ready));
    }

    /// Commits `offsets` under the group id (asynchronously; the result is
    /// counted by the commit callback).
    fn commit(&mut self, consumer: &BaseConsumer<Ctx>, offsets: &Offsets) {
        let topic = self.parts.config.kafka.topic.as_str();
        let mut tpl = TopicPartitionList::new();
        for (p, next) in offsets {
            let _ = tpl.add_partition_offset(topic, *p, Offset::Offset(*next));
        }
        if tpl.count() == 0 {
            return;
        }
        if let Err(e) = consumer.commit(&tpl, CommitMode::Async) {
            self.parts.metrics.commits.with_label_values(&["failed"]).inc();
            tracing::warn!(error = %e, "offset commit failed");
        }
    }

    /// Stops intake: final counts, view, checkpoint and commit. Waits at
    /// most 2 s for the commit's result so shutdown stays bounded without a
    /// broker.
    fn stop(&mut self, consumer: &BaseConsumer<Ctx>) {
        self.parts.status.set(Phase::Stopping, "shutting down");
        self.parts.metrics.set_phase(Phase::Stopping);
        self.flush_counts();
        self.publish_view(false);
        let offsets = match self.checkpoints.as_mut() {
            None => Some(self.applied()),
            Some(ck) => {
                if let Some((_, rx)) = ck.in_flight.take() {
                    let _ = rx.recv();
                }
                let started = Instant::now();
                let result = self.write_checkpoint().and_then(Pending::finish);
                let offsets = result.as_ref().ok().map(|p| p.offsets.clone());
                self.checkpoint_done_quietly(started, result);
                offsets
            }
        };
        let m = self.parts.metrics.clone();
        let commits = || m.commits.with_label_values(&["ok"]).get() + m.commits.with_label_values(&["failed"]).get();
        let before = commits();
        if let Some(offsets) = offsets {
            self.commit(consumer, &offsets);
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline && commits() == before {
            let _ = consumer.poll(Duration::from_millis(50));
        }
    }

    /// Like `checkpoint_done`, without committing (the caller commits).
    fn checkpoint_done_quietly(&mut self, started: Instant, result: std::io::Result<Pending>) {
        let m = &self.parts.metrics;
        match result {
            Ok(p) => {
                m.checkpoints.with_label_values(&["ok"]).inc();
                m.checkpoint_duration.set(started.elapsed().as_secs_f64());
                tracing::info!(seq = p.seq, bytes = p.bytes, "final checkpoint durable");
            }
            Err(e) => {
                m.checkpoints.with_label_values(&["failed"]).inc();
                tracing::error!(error = %e, "final checkpoint failed");
            }
        }
    }
}

fn bump<K: PartialEq + Copy>(list: &mut Vec<(K, u64)>, key: K) {
    match list.iter_mut().find(|(k, _)| *k == key) {
        Some((_, n)) => *n += 1,
        None => list.push((key, 1)),
    }
}

/// The watermarks librdkafka cached from its last fetch response: no
/// broker round trip, so it is safe to call from the consume loop.
fn cached_watermarks(consumer: &BaseConsumer<Ctx>, topic: &CString, partition: i32) -> Option<(i64, i64)> {
    let (mut low, mut high) = (-1i64, -1i64);
    // SAFETY: the client pointer is valid while `consumer` lives, `topic` is a
    // NUL-terminated string, and librdkafka only writes the two out-params.
    let err = unsafe {
        rdkafka::bindings::rd_kafka_get_watermark_offsets(
            consumer.client().native_ptr(),
            topic.as_ptr(),
            partition,
            &mut low,
            &mut high,
        )
    };
    (err == rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && low >= 0 && high >= 0)
        .then_some((low, high))
}
