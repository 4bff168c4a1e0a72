//! Every metric the daemon exports, in one place: the contract's metrics
//! (docs/metrics.md) and the operator-health ones. Closed label sets come
//! from enums ([`labels`]) and are created at zero. Two things are read at
//! scrape time rather than pushed: the per-page series of the top N, from
//! the published view ([`top_pages`]), and the lifecycle phase, from the
//! readiness status — so `/readyz` and `engagement_phase` never disagree.
//!
//! Metrics are updated through the typed events of
//! [`crate::telemetry::events`], which log and count in one call.

mod directory;
pub mod labels;
mod top_pages;
pub mod watches;

use std::sync::Arc;

use prometheus::{
    Encoder, Gauge, GaugeVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

use engagement_core::engine::{Bound, Limits, Outcome};
use engagement_core::window::Windows;

use crate::config::Watch;
use crate::pipeline::status::{Phase, StatusRx};
use crate::serve::published::ViewRx;
use crate::telemetry::LogLimiter;
use labels::{Attempt, AuthFailure, Delivery, HandshakeFailure, Restore, Topic};

/// The content type Prometheus 3 requires for the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Every metric family, grouped by the part of the daemon that feeds it.
pub struct Metrics {
    registry: Registry,
    status: StatusRx,
    phase: IntGaugeVec,
    /// Rate limit shared by every log line that input can trigger.
    pub(crate) limiter: LogLimiter,
    pub(crate) events: EventMetrics,
    pub(crate) view: ViewMetrics,
    pub(crate) consumer: ConsumerMetrics,
    pub(crate) checkpoints: CheckpointMetrics,
    pub(crate) ranking: RankingMetrics,
    pub(crate) shard: ShardMetrics,
    pub(crate) directory: directory::DirectoryMetrics,
    pub(crate) produced: IntCounterVec,
    /// Requests refused by basic auth, by reason.
    pub(crate) auth_failures: IntCounterVec,
    pub(crate) web_config_reloads: IntCounterVec,
    pub(crate) tls_handshake_failures: IntCounterVec,
    pub(crate) web_config_reload_ok: IntGauge,
    /// The watches' counters, held changes and recent changes.
    pub watches: Arc<watches::WatchBoard>,
}

/// What became of consumed events.
pub(crate) struct EventMetrics {
    /// One handle per outcome label, in [`Outcome::EACH`] order: counting a
    /// batch is an atomic add per outcome, no label lookup.
    pub outcomes: Vec<IntCounter>,
    pub invalid: IntCounterVec,
    pub rejected: IntCounterVec,
    pub log_suppressed: IntCounter,
    /// Watermark jumps by what became of them: held, taken, forgotten.
    pub jumps: IntCounterVec,
    /// Periods whose figures retention dropped, by calendar kind.
    pub periods_dropped: IntCounterVec,
}

/// Gauges that follow the published view.
pub(crate) struct ViewMetrics {
    pub pages: IntGaugeVec,
    pub posts: IntGaugeVec,
    pub watermark: Gauge,
    pub state_entries: IntGaugeVec,
    pub incomplete_pages: IntGauge,
    pub state_heap_bytes: IntGauge,
    pub split_pages: IntGauge,
    pub build_seconds: Gauge,
}

pub(crate) struct ConsumerMetrics {
    pub lag: IntGaugeVec,
    pub commits: IntCounterVec,
    pub errors: IntCounter,
    pub history_gaps: IntCounter,
    pub broker_reachable: IntGauge,
}

pub(crate) struct CheckpointMetrics {
    pub results: IntCounterVec,
    pub last_success: Gauge,
    pub duration: Gauge,
    pub pause: Gauge,
    pub bytes: IntGauge,
    pub restores: IntCounterVec,
    pub restore_duration: Gauge,
}

/// Shard mode (docs/scaling.md); at zero in replica mode.
pub(crate) struct ShardMetrics {
    pub owned: IntGauge,
    pub posts: IntGauge,
    pub unsaved: IntGauge,
    pub totals_lag: IntGauge,
    pub checkpoints: IntCounterVec,
    /// Bytes saved to the state topic, by kind (base, increment).
    pub checkpoint_bytes: IntCounterVec,
    pub records: IntCounter,
    /// Deliveries of page records and heartbeats, by result.
    pub deliveries: IntCounterVec,
    pub totals_refused: IntCounter,
    pub unowned: IntGauge,
    /// One series per input partition heard from: at most the input's
    /// partition count at start.
    pub record_age: GaugeVec,
}

impl ShardMetrics {
    fn new(f: &Families<'_>) -> ShardMetrics {
        ShardMetrics {
            owned: f.int_gauge("engagement_shard_partitions_owned", "Input partitions this shard owns."),
            posts: f.int_gauge("engagement_shard_posts", "Posts held by the engines of the owned partitions."),
            unsaved: f.int_gauge(
                "engagement_shard_unsaved_messages",
                "Messages applied to the owned partitions but not yet in the state topic (the state's lag).",
            ),
            totals_lag: f.int_gauge(
                "engagement_shard_totals_lag_messages",
                "Page-totals records not yet read into this instance's global table.",
            ),
            checkpoints: f.counters(
                "engagement_shard_checkpoints_total",
                "Checkpoints of a partition to the state topic, by result.",
                "result",
                &Attempt::labels(),
            ),
            checkpoint_bytes: f.counters(
                "engagement_shard_checkpoint_bytes_total",
                "Bytes of checkpoints written to the state topic (before compression), by kind: a base is a partition's whole state, an increment what changed since the last checkpoint.",
                "kind",
                &["base", "increment"],
            ),
            records: f.counter(
                "engagement_shard_page_records_total",
                "Page records (and tombstones) this shard published to the page-totals topic.",
            ),
            deliveries: f.counters(
                "engagement_shard_page_record_deliveries_total",
                "Page records, tombstones and heartbeats the broker acknowledged or refused; a refused page is published again.",
                "result",
                &["acknowledged", "failed"],
            ),
            totals_refused: f.counter(
                "engagement_shard_totals_refused_total",
                "Page-totals records refused by the global table (damaged, or over engine.max_pages).",
            ),
            unowned: f.int_gauge(
                "engagement_shard_partitions_unowned",
                "Input partitions whose owner has been silent longer than cluster.partition_silent_after, as this instance sees them.",
            ),
            record_age: f.add(
                GaugeVec::new(
                    Opts::new(
                        "engagement_shard_partition_record_age_seconds",
                        "Age of the last heartbeat of each input partition's owner in the page-totals topic.",
                    ),
                    &["partition"],
                )
                .expect("valid gauge"),
            ),
        }
    }
}

pub(crate) struct RankingMetrics {
    pub rank_changes: IntCounterVec,
    pub leader_changes: IntCounterVec,
    /// 1 while this instance publishes rank events.
    pub publishing: IntGauge,
    /// Changes published on taking the publishing over.
    pub republished: IntCounter,
}

/// Registers families in one registry; a definition error is a bug in this
/// file, caught by the first test that builds [`Metrics`].
struct Families<'r>(&'r Registry);

impl Families<'_> {
    fn add<C: prometheus::core::Collector + Clone + 'static>(&self, c: C) -> C {
        self.0.register(Box::new(c.clone())).expect("metric names are unique");
        c
    }

    fn counter(&self, name: &str, help: &str) -> IntCounter {
        self.add(IntCounter::new(name, help).expect("valid counter"))
    }

    fn gauge(&self, name: &str, help: &str) -> Gauge {
        self.add(Gauge::new(name, help).expect("valid gauge"))
    }

    fn int_gauge(&self, name: &str, help: &str) -> IntGauge {
        self.add(IntGauge::new(name, help).expect("valid gauge"))
    }

    /// A counter family with one label, every value in `values` at zero.
    fn counters(&self, name: &str, help: &str, label: &str, values: &[&str]) -> IntCounterVec {
        let c = self.add(IntCounterVec::new(Opts::new(name, help), &[label]).expect("valid counter"));
        for v in values {
            c.with_label_values(&[*v]);
        }
        c
    }

    /// A gauge family with `labels`, values created as they are set.
    fn gauges(&self, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
        self.add(IntGaugeVec::new(Opts::new(name, help), labels).expect("valid gauge"))
    }
}

/// The `window` label values: the windows that move with the watermark.
fn window_labels(windows: &Windows) -> Vec<String> {
    windows.relative().iter().map(ToString::to_string).collect()
}

fn bound_labels() -> Vec<&'static str> {
    Bound::ALL.iter().map(|b| b.as_str()).collect()
}

impl EventMetrics {
    fn new(f: &Families<'_>) -> EventMetrics {
        let labels: Vec<&str> = Outcome::EACH.iter().map(|o| o.as_str()).collect();
        let all = f.counters("engagement_events_total", "Events consumed, by what became of them.", "outcome", &labels);
        EventMetrics {
            outcomes: labels.iter().map(|l| all.with_label_values(&[*l])).collect(),
            invalid: f.counters("engagement_invalid_events_total", "Invalid events, by reason.", "reason", &[]),
            rejected: f.counters(
                "engagement_rejected_events_total",
                "Events rejected because a state bound was reached or they jumped the watermark, by bound.",
                "bound",
                &bound_labels(),
            ),
            log_suppressed: f.counter(
                "engagement_log_lines_suppressed_total",
                "Log lines dropped by rate limiting (the events are still counted).",
            ),
            jumps: f.counters(
                "engagement_watermark_jumps_total",
                "Events that would have moved the watermark by more than events.max_watermark_jump, by what became of the jump.",
                "result",
                &["held", "taken", "forgotten"],
            ),
            periods_dropped: f.counters(
                "engagement_periods_dropped_total",
                "Calendar periods whose figures retention dropped as the watermark moved, by kind.",
                "kind",
                &["quarter", "month", "week", "year"],
            ),
        }
    }
}

impl ViewMetrics {
    fn new(f: &Families<'_>, limits: &Limits) -> ViewMetrics {
        let m = ViewMetrics {
            pages: f.gauges(
                "engagement_pages",
                "Pages with at least one post in the window (updated by the ranking loop).",
                &["window"],
            ),
            posts: f.gauges("engagement_posts", "Posts in the window (updated by the ranking loop).", &["window"]),
            watermark: f.gauge(
                "engagement_watermark_timestamp_seconds",
                "The watermark: greatest observed_at of the valid events consumed.",
            ),
            state_entries: f.gauges(
                "engagement_state_entries",
                "Entries held in each input-grown structure.",
                &["structure"],
            ),
            state_heap_bytes: f.int_gauge(
                "engagement_state_heap_bytes",
                "Heap bytes held by the engine's state, from its capacities.",
            ),
            incomplete_pages: f.int_gauge(
                "engagement_history_incomplete_pages",
                "Pages whose events come from an input partition that lost records before they were applied (history_complete false in answers).",
            ),
            split_pages: f.int_gauge(
                "engagement_pages_on_several_partitions",
                "Pages whose events came from more than one partition since the start (not keyed by page).",
            ),
            build_seconds: f.gauge("engagement_view_build_duration_seconds", "Time the last view rebuild took."),
        };
        for w in window_labels(&limits.windows) {
            m.pages.with_label_values(&[&w]);
            m.posts.with_label_values(&[&w]);
        }
        let limit =
            f.gauges("engagement_state_limit", "Configured bound of each input-grown structure.", &["structure"]);
        for b in Bound::STRUCTURES {
            m.state_entries.with_label_values(&[b.as_str()]);
            limit.with_label_values(&[b.as_str()]).set(i64::from(limits.bound(b)));
        }
        m
    }
}

impl ConsumerMetrics {
    fn new(f: &Families<'_>) -> ConsumerMetrics {
        ConsumerMetrics {
            lag: f.gauges(
                "engagement_consumer_lag_messages",
                "High watermark minus position, per assigned partition.",
                &["topic", "partition"],
            ),
            commits: f.counters(
                "engagement_offset_commits_total",
                "Offset commits under the group id, by result.",
                "result",
                &Attempt::labels(),
            ),
            errors: f.counter("engagement_consumer_errors_total", "Errors reported by the Kafka consumer."),
            broker_reachable: {
                let g = f.int_gauge(
                    "engagement_broker_reachable",
                    "0 while no Kafka broker can be reached (connections down, metadata failing), else 1.",
                );
                g.set(1);
                g
            },
            history_gaps: f.counter(
                "engagement_history_gaps_total",
                "Times consumption had to skip offsets that no longer exist: history may be incomplete.",
            ),
        }
    }
}

impl CheckpointMetrics {
    fn new(f: &Families<'_>) -> CheckpointMetrics {
        CheckpointMetrics {
            results: f.counters(
                "engagement_checkpoints_total",
                "Checkpoints written, by result.",
                "result",
                &Attempt::labels(),
            ),
            last_success: f.gauge(
                "engagement_checkpoint_last_success_timestamp_seconds",
                "When the last checkpoint became durable.",
            ),
            duration: f.gauge(
                "engagement_checkpoint_duration_seconds",
                "Time the last checkpoint took, from start to durable.",
            ),
            pause: f.gauge(
                "engagement_checkpoint_pause_seconds",
                "Time the last checkpoint paused consumption (serializing the state).",
            ),
            bytes: f.int_gauge("engagement_checkpoint_size_bytes", "Size of the last checkpoint file."),
            restores: f.counters(
                "engagement_checkpoint_restores_total",
                "Checkpoint files examined at start, by result: restored, discarded (corrupt, moved aside) or none found.",
                "result",
                &Restore::labels(),
            ),
            restore_duration: f
                .gauge("engagement_restore_duration_seconds", "Time restoring the checkpoint took at start."),
        }
    }
}

impl RankingMetrics {
    fn new(f: &Families<'_>, windows: &Windows) -> RankingMetrics {
        let owned = window_labels(windows);
        let labels: Vec<&str> = owned.iter().map(String::as_str).collect();
        RankingMetrics {
            rank_changes: f.counters(
                "engagement_rank_changes_total",
                "Changes of the watched rankings, every kind.",
                "window",
                &labels,
            ),
            leader_changes: f.counters(
                "engagement_leader_changes_total",
                "Changes of the #1 page of a watched ranking.",
                "window",
                &labels,
            ),
            publishing: f.int_gauge(
                "engagement_rank_events_publishing",
                "1 while this instance publishes the rank events of the fleet (kafka.rank_events_topic set).",
            ),
            republished: f.add(
                IntCounter::new(
                    "engagement_rank_events_republished_total",
                    "Changes published on taking over the publishing because the topic did not hold them.",
                )
                .expect("valid counter"),
            ),
        }
    }
}

/// What [`Metrics::new`] needs besides the registry it creates.
pub struct Sources {
    pub views: ViewRx,
    pub status: StatusRx,
    pub top_n: usize,
    pub limits: Limits,
    /// Invalid-event log lines allowed per second.
    pub log_rate_per_second: u32,
    pub watches: Arc<[Watch]>,
    /// `ranking.groups`: their top N are exported too, labelled `group`.
    pub groups: Arc<[String]>,
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new(s: Sources) -> Metrics {
        let registry = Registry::new();
        let f = Families(&registry);
        let phase =
            f.gauges("engagement_phase", "1 for the daemon's current lifecycle phase, 0 for the others.", &["phase"]);
        let produced = f.add(
            IntCounterVec::new(
                Opts::new(
                    "engagement_produced_messages_total",
                    "Messages for the dead-letter and rank-event topics, by topic kind and result.",
                ),
                &["kind", "result"],
            )
            .expect("valid counter"),
        );
        for topic in Topic::ALL {
            for delivery in Delivery::ALL {
                produced.with_label_values(&[topic.as_str(), delivery.as_str()]);
            }
        }
        let auth_failures = f.counters(
            "engagement_http_auth_failures_total",
            "HTTP requests refused by the basic auth of the web config file, by reason.",
            "reason",
            &AuthFailure::labels(),
        );
        let tls_handshake_failures = f.counters(
            "engagement_http_tls_handshake_failures_total",
            "TLS handshakes with HTTP clients that did not complete, by reason (refused by either side, or timed out).",
            "reason",
            &HandshakeFailure::labels(),
        );
        let web_config_reloads = f.counters(
            "engagement_http_web_config_reloads_total",
            "Readings of the web config file after the start, made because it or a file it names changed, by result.",
            "result",
            &Attempt::labels(),
        );
        let web_config_reload_ok = f.int_gauge(
            "engagement_http_web_config_last_reload_successful",
            "0 once a changed web config file was refused (the reading before is served), until a change is served; 1 otherwise, also without the file.",
        );
        web_config_reload_ok.set(1);
        f.int_gauge("engagement_top_n", "Pages per window exported as series and watched for rank changes.")
            .set(s.top_n as i64);
        f.gauges(
            "engagement_build_info",
            "Always 1; the version and revision labels say which build is running.",
            &["version", "revision"],
        )
        .with_label_values(&[env!("CARGO_PKG_VERSION"), crate::REVISION])
        .set(1);
        f.add(top_pages::TopPages::new(s.views, s.top_n, s.groups));
        let watch_changes = f.add(
            IntCounterVec::new(
                Opts::new("engagement_watch_changes_total", "Changes of the watched rankings, by kind."),
                &["watch", "window", "scope", "group", "kind"],
            )
            .expect("valid counter"),
        );
        let watches = Arc::new(watches::WatchBoard::new(s.watches, &s.limits.windows, watch_changes));
        f.add(watches::WatchSeries::new(watches.clone()));
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(prometheus::process_collector::ProcessCollector::for_self()))
            .expect("metric names are unique");
        Metrics {
            events: EventMetrics::new(&f),
            view: ViewMetrics::new(&f, &s.limits),
            consumer: ConsumerMetrics::new(&f),
            checkpoints: CheckpointMetrics::new(&f),
            ranking: RankingMetrics::new(&f, &s.limits.windows),
            shard: ShardMetrics::new(&f),
            directory: directory::DirectoryMetrics::new(&f),
            limiter: LogLimiter::new(s.log_rate_per_second),
            status: s.status,
            phase,
            produced,
            auth_failures,
            web_config_reloads,
            web_config_reload_ok,
            tls_handshake_failures,
            registry,
            watches,
        }
    }

    /// The text exposition of every metric. The phase is read now.
    pub fn render(&self) -> String {
        let current = self.status.borrow().phase();
        for p in Phase::ALL {
            self.phase.with_label_values(&[p.as_str()]).set(i64::from(p == current));
        }
        let mut buf = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buf).expect("encoding to a Vec cannot fail");
        String::from_utf8(buf).expect("the text format is UTF-8")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::status::{self, Readiness};

    fn metrics() -> (Metrics, crate::pipeline::status::StatusTx) {
        let (status_tx, status) = status::channel();
        let (_, views) = crate::serve::published::channel();
        let watches = crate::config::default_watches().into();
        let m = Metrics::new(Sources {
            views,
            status,
            top_n: 5,
            limits: Limits::default(),
            log_rate_per_second: 1,
            watches,
            groups: Arc::from([]),
        });
        (m, status_tx)
    }

    #[test]
    fn closed_label_sets_are_exported_at_zero() {
        let (m, _status) = metrics();
        let text = m.render();
        for o in Outcome::EACH {
            assert!(text.contains(&format!("engagement_events_total{{outcome=\"{}\"}} 0", o.as_str())), "{o:?}");
        }
        assert!(text.contains("engagement_rank_changes_total{window=\"rolling\"} 0"));
        assert!(text.contains("engagement_state_limit{structure=\"posts\"} 50000000"));
        assert!(text.contains("engagement_produced_messages_total{kind=\"rank_event\",result=\"dropped\"} 0"));
        assert!(text.contains("engagement_top_n 5"));
        let all =
            r#"engagement_watch_changes_total{group="",kind="leader",scope="all",watch="all",window="previous"} 0"#;
        assert!(text.contains(all), "fixed scopes are created at zero");
    }

    #[test]
    fn the_phase_gauge_follows_the_status_at_scrape_time() {
        let (m, status) = metrics();
        status.send_replace(Readiness::Restoring);
        assert!(m.render().contains("engagement_phase{phase=\"restoring\"} 1"));
        status.send_replace(Readiness::Ready);
        let text = m.render();
        assert!(text.contains("engagement_phase{phase=\"ready\"} 1"));
        assert!(text.contains("engagement_phase{phase=\"restoring\"} 0"));
    }
}
