//! One small type per thing that happens at run time. Its `emit` both logs
//! and counts, with label values taken from enums, so a call site never
//! types a metric name or a label string and never logs without counting.
//! Lines that input can trigger go through the shared rate limit; what the
//! limit drops is still counted, and counted again as suppressed.
//!
//! Levels: ERROR needs an operator, WARN was recovered, INFO is lifecycle,
//! DEBUG never scales with events.

use std::path::Path;
use std::time::{Duration, SystemTime};

use engagement_core::engine::Bound;
use engagement_core::engine::jump::Notice;
use engagement_core::view::View;
use engagement_core::window::{Millis, WindowId, format_rfc3339};
use rdkafka::error::KafkaError;

use crate::alerts::rank_changes::detect::{Change, Kind, scope_label};
use crate::serve::metrics::Metrics;
use crate::serve::metrics::labels::{Attempt, AuthFailure, Delivery, Restore, Topic};

/// Something that happened, logged and counted by one call.
pub trait InternalEvent {
    fn emit(self, m: &Metrics);
}

/// Logs through the shared rate limit; a dropped line is counted.
pub(crate) fn limited(m: &Metrics, log: impl FnOnce()) {
    if m.limiter.allow() {
        log();
    } else {
        m.events.log_suppressed.inc();
    }
}

/// An HTTP request refused by basic auth: counted by reason, logged
/// through the rate limit (clients decide how often it happens) without
/// the user name, which may be a password typed in the wrong field.
pub struct AuthRefused {
    pub reason: AuthFailure,
    pub peer: Option<std::net::SocketAddr>,
}

impl InternalEvent for AuthRefused {
    fn emit(self, m: &Metrics) {
        m.auth_failures.with_label_values(&[self.reason.as_str()]).inc();
        let peer = self.peer.map(|p| p.to_string()).unwrap_or_default();
        limited(m, || tracing::warn!(reason = self.reason.as_str(), peer, "HTTP request refused by basic auth"));
    }
}

/// The web config file read again because it or a file it names
/// changed: served, or refused with the reason (the reading before stays
/// served). Said once per change, so not rate-limited.
pub struct WebConfigReloaded<'a> {
    pub path: &'a std::path::Path,
    pub refused: Option<&'a str>,
}

impl InternalEvent for WebConfigReloaded<'_> {
    fn emit(self, m: &Metrics) {
        let result = if self.refused.is_some() { Attempt::Failed } else { Attempt::Ok };
        m.web_config_reloads.with_label_values(&[result.as_str()]).inc();
        m.web_config_reload_ok.set(i64::from(self.refused.is_none()));
        let path = self.path.display();
        match self.refused {
            None => tracing::info!(%path, "web config file changed: read again and served"),
            Some(reason) => tracing::error!(%path, reason,
                "web config file changed but cannot be served; the reading before it stays served"),
        }
    }
}

/// The outcomes of a run of events, counted in bulk: the consume loop
/// tallies them locally, a label lookup per event would cost more than
/// decoding it.
pub struct OutcomesCounted<'a>(pub &'a [u64]);

impl InternalEvent for OutcomesCounted<'_> {
    fn emit(self, m: &Metrics) {
        for (counter, n) in m.events.outcomes.iter().zip(self.0) {
            if *n > 0 {
                counter.inc_by(*n);
            }
        }
    }
}

/// Why an event changed nothing and was dead-lettered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotApplied {
    /// Not a valid event; the static reason of the decoder.
    Invalid(&'static str),
    /// Valid, but rejected because a state bound is reached.
    Rejected(Bound),
}

impl NotApplied {
    /// The reason as logs and the dead-letter header give it.
    pub fn reason(self) -> &'static str {
        match self {
            NotApplied::Invalid(reason) => reason,
            NotApplied::Rejected(bound) => bound.reason(),
        }
    }
}

/// An event that was invalid or rejected (its outcome is counted with the
/// batch; this counts the reason or bound and logs, rate-limited, without
/// the payload).
pub struct EventNotApplied {
    pub why: NotApplied,
    pub partition: i32,
    pub offset: i64,
}

impl InternalEvent for EventNotApplied {
    fn emit(self, m: &Metrics) {
        let (partition, offset, reason) = (self.partition, self.offset, self.why.reason());
        match self.why {
            NotApplied::Invalid(_) => {
                m.events.invalid.with_label_values(&[reason]).inc();
                limited(m, || tracing::warn!(reason, partition, offset, "invalid event"));
            }
            NotApplied::Rejected(Bound::WatermarkJump) => {
                m.events.rejected.with_label_values(&[Bound::WatermarkJump.as_str()]).inc();
                limited(m, || tracing::warn!(reason, partition, offset, "event refused: it jumps the watermark"));
            }
            NotApplied::Rejected(bound) => {
                m.events.rejected.with_label_values(&[bound.as_str()]).inc();
                limited(m, || tracing::warn!(reason, partition, offset, "event rejected at a state bound"));
            }
        }
    }
}

/// Something the engine noticed while applying events: a jump of the
/// watermark held, taken or forgotten (docs/events.md#watermark), or a
/// period dropped by retention. WARN but for a forgotten jump: each either
/// refused events or dropped figures for good.
pub struct EngineNoticed {
    pub notice: Notice,
    /// The first refused record (partition, offset) of the batch.
    pub first: Option<(i32, i64)>,
}

impl InternalEvent for EngineNoticed {
    fn emit(self, m: &Metrics) {
        let at = |ms: Millis| format_rfc3339(ms);
        let span = |ms: Millis| humantime_days(ms);
        match self.notice {
            Notice::JumpHeld { watermark, observed, quorum } => {
                m.events.jumps.with_label_values(&["held"]).inc();
                let (partition, offset) = self.first.map_or((None, None), |(p, o)| (Some(p), Some(o)));
                tracing::warn!(
                    partition,
                    offset,
                    watermark = %at(watermark),
                    observed_at = %at(observed),
                    jump = %span(observed - watermark),
                    quorum,
                    "an event jumps the watermark: it and the next ones past it are refused (dead-lettered) until {quorum} corroborate the jump"
                );
            }
            Notice::JumpTaken { from, to, events } => {
                m.events.jumps.with_label_values(&["taken"]).inc();
                tracing::warn!(from = %at(from), to = %at(to), jump = %span(to - from), events,
                    "a watermark jump was corroborated and taken: the watermark moved; the events refused before are on the dead-letter topic");
            }
            Notice::JumpForgotten { watermark, refused } => {
                m.events.jumps.with_label_values(&["forgotten"]).inc();
                tracing::info!(watermark = %at(watermark), refused,
                    "a watermark jump was not corroborated: the stream went on within the watermark; its events stay refused");
            }
            Notice::PeriodDropped { period, pages, watermark } => {
                m.events.periods_dropped.with_label_values(&[period.kind.as_str()]).inc();
                tracing::warn!(period = %period, pages, watermark = %at(watermark),
                    "retention dropped a period: its figures are gone");
            }
        }
    }
}

/// `ms` as days and hours, or hours and minutes under a day.
fn humantime_days(ms: Millis) -> String {
    let minutes = ms.max(0) / 60_000;
    match (minutes / (24 * 60), minutes / 60 % 24, minutes % 60) {
        (0, h, m) => format!("{h}h{m:02}m"),
        (d, h, _) => format!("{d}d{h:02}h"),
    }
}

/// An error librdkafka reported through the client callback (it retries
/// on its own; logged at DEBUG, the counter is what to watch).
pub struct ClientError<'a> {
    pub error: &'a KafkaError,
    pub reason: &'a str,
}

impl InternalEvent for ClientError<'_> {
    fn emit(self, m: &Metrics) {
        m.consumer.errors.inc();
        if crate::kafka::is_connection_error(self.error) {
            tracing::debug!(error = %self.error, reason = self.reason, "kafka client error");
        } else {
            // Authentication, TLS, configuration: retrying will not fix them.
            limited(m, || tracing::warn!(error = %self.error, reason = self.reason, "kafka client error"));
        }
    }
}

/// An error returned by a consumer poll; a failed connection is left to
/// [`BrokerUnreachable`] (librdkafka retries it, a line per retry is noise).
pub struct ConsumerError<'a>(pub &'a KafkaError);

impl InternalEvent for ConsumerError<'_> {
    fn emit(self, m: &Metrics) {
        m.consumer.errors.inc();
        if crate::kafka::is_connection_error(self.0) {
            tracing::debug!(error = %self.0, "kafka consumer error");
        } else {
            limited(m, || tracing::warn!(error = %self.0, "kafka consumer error"));
        }
    }
}

/// No broker can be reached (all connections down, or metadata failing).
/// Emitted when that starts and then at most every 30 s while it lasts.
pub struct BrokerUnreachable<'a> {
    /// The bootstrap servers, credentials redacted.
    pub brokers: &'a str,
    pub error: &'a str,
    pub since: Duration,
}

impl InternalEvent for BrokerUnreachable<'_> {
    fn emit(self, m: &Metrics) {
        m.consumer.broker_reachable.set(0);
        let (brokers, error, seconds) = (self.brokers, self.error, self.since.as_secs());
        tracing::error!(brokers, error, seconds, "cannot reach Kafka: is the broker running? check kafka.brokers");
    }
}

/// A broker answered again after [`BrokerUnreachable`].
pub struct BrokerReachable<'a> {
    pub brokers: &'a str,
    pub after: Duration,
}

impl InternalEvent for BrokerReachable<'_> {
    fn emit(self, m: &Metrics) {
        m.consumer.broker_reachable.set(1);
        tracing::info!(brokers = self.brokers, seconds = self.after.as_secs(), "Kafka reachable again");
    }
}

/// The broker's answer to an offset commit (from the commit callback).
pub struct Committed(pub Attempt);

impl InternalEvent for Committed {
    fn emit(self, m: &Metrics) {
        m.consumer.commits.with_label_values(&[self.0.as_str()]).inc();
    }
}

/// An offset commit that could not even be sent.
pub struct CommitNotSent<'a>(pub &'a KafkaError);

impl InternalEvent for CommitNotSent<'_> {
    fn emit(self, m: &Metrics) {
        m.consumer.commits.with_label_values(&[Attempt::Failed.as_str()]).inc();
        tracing::warn!(error = %self.0, "offset commit failed");
    }
}

/// Partitions `from..to` of `topic` were assigned to this instance.
pub struct PartitionsAssigned<'a> {
    pub topic: &'a str,
    pub from: usize,
    pub to: usize,
}

impl InternalEvent for PartitionsAssigned<'_> {
    fn emit(self, _: &Metrics) {
        tracing::info!(topic = self.topic, from = self.from, to = self.to, "assigned partitions");
    }
}

/// The topic's metadata or an assignment could not be had; retried later.
pub struct AssignmentFailed<'a> {
    pub what: &'static str,
    pub error: &'a dyn std::fmt::Display,
}

impl InternalEvent for AssignmentFailed<'_> {
    fn emit(self, m: &Metrics) {
        m.consumer.errors.inc();
        limited(m, || tracing::warn!(error = %self.error, "{}", self.what));
    }
}

/// Offsets the state needs no longer exist (retention deleted them):
/// consumption continues from the earliest that does.
pub struct HistoryGap<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub needed: i64,
    pub earliest: i64,
}

impl InternalEvent for HistoryGap<'_> {
    fn emit(self, m: &Metrics) {
        m.consumer.history_gaps.inc();
        tracing::warn!(
            topic = self.topic,
            partition = self.partition,
            needed = self.needed,
            earliest = self.earliest,
            "offsets no longer exist: history may be incomplete; continuing from the earliest offset"
        );
    }
}

/// A partition's lag, as of the last look at its end.
pub struct LagObserved<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub lag: i64,
}

impl InternalEvent for LagObserved<'_> {
    fn emit(self, m: &Metrics) {
        m.consumer.lag.with_label_values(&[self.topic, &self.partition.to_string()]).set(self.lag);
    }
}

/// Every partition is within the readiness bound: the daemon is ready.
pub struct CaughtUp {
    pub behind: u64,
}

impl InternalEvent for CaughtUp {
    fn emit(self, _: &Metrics) {
        tracing::info!(behind = self.behind, "caught up: ready");
    }
}

/// A view was built and published.
pub struct ViewPublished<'a> {
    pub view: &'a View,
    pub build: Duration,
}

impl InternalEvent for ViewPublished<'_> {
    fn emit(self, m: &Metrics) {
        let (v, g) = (self.view, &m.view);
        g.build_seconds.set(self.build.as_secs_f64());
        for w in v.windows.relative() {
            let (label, t) = (w.to_string(), v.table(w));
            g.pages.with_label_values(&[&label]).set(t.map_or(0, |t| t.len() as i64));
            g.posts.with_label_values(&[&label]).set(t.map_or(0, |t| t.posts() as i64));
        }
        if let Some(wm) = v.watermark {
            g.watermark.set(wm as f64 / 1000.0);
        }
        let u = &v.usage;
        for (b, n) in Bound::STRUCTURES.iter().zip([u.pages, u.posts, u.platforms, u.event_ids]) {
            g.state_entries.with_label_values(&[b.as_str()]).set(n as i64);
        }
        g.state_heap_bytes.set(u.heap_bytes as i64);
        g.incomplete_pages.set(v.incomplete_pages() as i64);
        if u.split_pages as i64 > g.split_pages.get() {
            let pages = u.split_pages;
            tracing::warn!(pages, "pages seen on more than one partition: events are not keyed by page_id");
        }
        g.split_pages.set(u.split_pages as i64);
    }
}

/// A checkpoint was restored at start.
pub struct CheckpointRestored {
    pub seq: u64,
    pub bytes: u64,
    pub posts: usize,
    pub took: Duration,
}

impl InternalEvent for CheckpointRestored {
    fn emit(self, m: &Metrics) {
        m.checkpoints.restores.with_label_values(&[Restore::Restored.as_str()]).inc();
        m.checkpoints.restore_duration.set(self.took.as_secs_f64());
        let seconds = self.took.as_secs_f64();
        tracing::info!(seq = self.seq, bytes = self.bytes, posts = self.posts, seconds, "checkpoint restored");
    }
}

/// A checkpoint file that failed its checks was moved aside.
pub struct CheckpointDiscarded<'a> {
    pub path: &'a Path,
    pub reason: &'a str,
}

impl InternalEvent for CheckpointDiscarded<'_> {
    fn emit(self, m: &Metrics) {
        m.checkpoints.restores.with_label_values(&[Restore::Discarded.as_str()]).inc();
        tracing::error!(path = %self.path.display(), reason = self.reason, "checkpoint unusable; moved aside");
    }
}

/// An entry named like a checkpoint that is not a regular file (a
/// symlink, FIFO or directory) was left alone, not read.
pub struct CheckpointSkipped<'a> {
    pub path: &'a Path,
    pub reason: &'a str,
}

impl InternalEvent for CheckpointSkipped<'_> {
    fn emit(self, _: &Metrics) {
        tracing::warn!(path = %self.path.display(), reason = self.reason, "not a checkpoint file; skipped");
    }
}

/// A checkpoint written under other windows was moved aside: its figures
/// cannot answer the configured windows exactly, so it is not used.
pub struct CheckpointOfOtherWindows<'a> {
    pub path: &'a Path,
    pub reason: &'a str,
}

impl InternalEvent for CheckpointOfOtherWindows<'_> {
    fn emit(self, _: &Metrics) {
        tracing::warn!(
            path = %self.path.display(),
            reason = self.reason,
            "checkpoint of other windows set aside: the configured windows are rebuilt exactly by replaying the topic \
             (restore the old [windows] and move the file back to use it)"
        );
    }
}

/// No usable checkpoint: the topic is replayed from its earliest offsets.
pub struct NoCheckpoint<'a> {
    pub dir: &'a Path,
    pub took: Duration,
}

impl InternalEvent for NoCheckpoint<'_> {
    fn emit(self, m: &Metrics) {
        m.checkpoints.restores.with_label_values(&[Restore::None.as_str()]).inc();
        m.checkpoints.restore_duration.set(self.took.as_secs_f64());
        tracing::info!(dir = %self.dir.display(), "no checkpoint: replaying from the earliest offsets");
    }
}

/// A checkpoint became durable. `last` is the one taken at shutdown.
pub struct CheckpointDone {
    pub seq: u64,
    pub bytes: u64,
    pub pause: Duration,
    pub took: Duration,
    pub last: bool,
}

impl InternalEvent for CheckpointDone {
    fn emit(self, m: &Metrics) {
        let c = &m.checkpoints;
        c.results.with_label_values(&[Attempt::Ok.as_str()]).inc();
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        c.last_success.set(now.as_secs_f64());
        c.duration.set(self.took.as_secs_f64());
        c.pause.set(self.pause.as_secs_f64());
        c.bytes.set(self.bytes as i64);
        if self.last {
            tracing::info!(seq = self.seq, bytes = self.bytes, "final checkpoint durable");
        } else {
            tracing::debug!(seq = self.seq, bytes = self.bytes, "checkpoint durable");
        }
    }
}

/// A checkpoint could not be written or made durable.
pub struct CheckpointFailed<'a> {
    pub error: &'a std::io::Error,
    pub last: bool,
}

impl InternalEvent for CheckpointFailed<'_> {
    fn emit(self, m: &Metrics) {
        m.checkpoints.results.with_label_values(&[Attempt::Failed.as_str()]).inc();
        if self.last {
            tracing::error!(error = %self.error, "final checkpoint failed");
        } else {
            tracing::error!(error = %self.error, "checkpoint failed; offsets stay uncommitted until one succeeds");
        }
    }
}

/// A watched ranking changed (docs/metrics.md#rank-changes): counted per
/// window and per ranking, held as an alertable series and listed by the
/// API. DEBUG: changes scale with the events and the platforms; the alerts
/// and the per-minute summary are the operator's view.
pub struct RankChanged(pub Change);

impl InternalEvent for RankChanged {
    fn emit(self, m: &Metrics) {
        let c = &self.0;
        let window = c.key.window.to_string();
        m.ranking.rank_changes.with_label_values(&[&window]).inc();
        if c.kind == Kind::Leader {
            m.ranking.leader_changes.with_label_values(&[&window]).inc();
        }
        let rank = |r: Option<u32>| r.map_or_else(|| "none".to_string(), |r| r.to_string());
        tracing::debug!(
            watch = %c.watch,
            kind = c.kind.as_str(),
            %window,
            scope = scope_label(c.key.scope.as_deref()),
            platform = %c.page.platform,
            page_id = %c.page.page_id,
            old_rank = %rank(c.old_rank),
            new_rank = %rank(c.new_rank),
            interactions = c.page.interactions,
            "rank changed"
        );
        m.watches.record(self.0, std::time::Instant::now());
    }
}

/// This instance took the publishing of the fleet's rank events over:
/// of the changes it saw in the lookback, `published` were not on the
/// topic and are now.
pub struct RankEventsTakenOver {
    pub seen: usize,
    pub published: usize,
    pub error: Option<anyhow::Error>,
}

impl InternalEvent for RankEventsTakenOver {
    fn emit(self, m: &Metrics) {
        m.ranking.republished.inc_by(self.published as u64);
        match self.error {
            None => tracing::info!(
                seen = self.seen,
                published = self.published,
                "took the rank events over; published the changes seen lately that the topic did not hold"
            ),
            Some(e) => tracing::warn!(
                seen = self.seen,
                error = %format!("{e:#}"),
                "took the rank events over but could not read the topic back; changes seen lately are not republished"
            ),
        }
    }
}

/// How many rank and leader changes each window that moves with the
/// watermark saw in `period`: (window, rank changes, leader changes).
pub struct RankChangesSummary {
    pub period: Duration,
    pub windows: Vec<(WindowId, u64, u64)>,
}

impl InternalEvent for RankChangesSummary {
    fn emit(self, _: &Metrics) {
        let changes = self.windows.iter().map(|(w, r, l)| format!("{w}={r}/{l}")).collect::<Vec<_>>().join(" ");
        // Its own target, so that the demo can show it alone.
        tracing::info!(
            target: "engagement_monitor::alerts::rank_changes",
            seconds = self.period.as_secs(),
            changes = %changes,
            "rank changes (per window: rank changes/new leaders)"
        );
    }
}

/// The window a baseline followed is another one now (a quarter rolled
/// over): the baseline is reset without reporting.
pub struct BaselineReset(pub WindowId);

impl InternalEvent for BaselineReset {
    fn emit(self, _: &Metrics) {
        tracing::info!(window = %self.0, "window rolled over; rank baseline reset");
    }
}

/// The events topic does not exist (yet): the daemon waits for it, not
/// ready, and says so once.
pub struct TopicMissing<'a> {
    pub topic: &'a str,
}

impl InternalEvent for TopicMissing<'_> {
    fn emit(self, _: &Metrics) {
        tracing::warn!(
            topic = self.topic,
            "the topic does not exist: waiting for it to be created (not ready meanwhile)"
        );
    }
}

/// A message for the dead-letter or rank-event topic could not be
/// delivered (a topic that does not exist, say); logged at most every
/// 10 s, counted always (as [`Produced`]).
pub struct DeliveryFailed<'a> {
    pub kind: Topic,
    pub topic: &'a str,
    pub error: &'a rdkafka::error::KafkaError,
}

impl InternalEvent for DeliveryFailed<'_> {
    fn emit(self, _: &Metrics) {
        tracing::warn!(kind = self.kind.as_str(), topic = self.topic, error = %self.error,
            "a message could not be delivered (further failures in the next 10 s are only counted)");
    }
}

/// A message for the dead-letter or rank-event topic changed state.
pub struct Produced(pub Topic, pub Delivery);

impl InternalEvent for Produced {
    fn emit(self, m: &Metrics) {
        m.produced.with_label_values(&[self.0.as_str(), self.1.as_str()]).inc();
    }
}
