//! Every metric the daemon exports (SPEC §4 plus operator health), in one
//! place. Closed label sets are created at zero; per-page series exist only
//! for the top N and are built at scrape time from the current view, so a
//! page that leaves the top N disappears from the next scrape.

use std::sync::Arc;

use arc_swap::ArcSwap;
use prometheus::core::{Collector, Desc};
use prometheus::proto::{Gauge as GaugeProto, LabelPair, Metric, MetricFamily, MetricType};
use prometheus::{Encoder, Gauge, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};

use crate::status::Phase;
use engagement_core::engine::{Bound, Limits, Outcome, Usage};
use engagement_core::ranking::{Metric as RankBy, top};
use engagement_core::view::{Table, View};

/// The content type Prometheus 3 requires for the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The windows of SPEC §4's `window` label.
pub const WINDOWS: [&str; 3] = ["current", "previous", "rolling"];

/// The table a `window` label value refers to.
pub fn window_table<'v>(view: &'v View, window: &str) -> Option<&'v Table> {
    match window {
        "current" => view.quarters.first(),
        "previous" => view.quarters.get(1),
        "rolling" => view.rolling.as_ref(),
        _ => None,
    }
}

pub struct Metrics {
    registry: Registry,
    pub events: IntCounterVec,
    pub invalid: IntCounterVec,
    pub rejected: IntCounterVec,
    pub rank_changes: IntCounterVec,
    pub leader_changes: IntCounterVec,
    pub pages: IntGaugeVec,
    pub posts: IntGaugeVec,
    pub watermark: Gauge,
    pub lag: IntGaugeVec,
    pub phase: IntGaugeVec,
    pub state_entries: IntGaugeVec,
    pub state_limit: IntGaugeVec,
    pub state_heap_bytes: IntGauge,
    pub commits: IntCounterVec,
    pub consumer_errors: IntCounter,
    pub produced: IntCounterVec,
    pub view_build_seconds: Gauge,
    pub log_suppressed: IntCounter,
    pub history_gaps: IntCounter,
    pub checkpoints: IntCounterVec,
    pub checkpoint_last_success: Gauge,
    pub checkpoint_duration: Gauge,
    pub checkpoint_pause: Gauge,
    pub checkpoint_bytes: IntGauge,
    pub restores: IntCounterVec,
    pub restore_duration: Gauge,
}

fn counter_vec(r: &Registry, name: &str, help: &str, label: &str, values: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), &[label]).expect("valid metric definition");
    for v in values {
        c.with_label_values(&[v]);
    }
    r.register(Box::new(c.clone())).expect("metric names are unique");
    c
}

fn gauge_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric definition");
    r.register(Box::new(g.clone())).expect("metric names are unique");
    g
}

fn register<T: Collector + Clone + 'static>(r: &Registry, m: T) -> T {
    r.register(Box::new(m.clone())).expect("metric names are unique");
    m
}

const STRUCTURES: [&str; 4] = ["pages", "posts", "platforms", "event_ids"];

impl Metrics {
    /// Creates every metric; `view` feeds the per-page collector.
    pub fn new(view: Arc<ArcSwap<View>>, top_n: usize, limits: &Limits) -> Metrics {
        let r = Registry::new();
        let bounds: Vec<&str> = Bound::ALL.iter().map(|b| b.as_str()).collect();
        let m = Metrics {
            events: counter_vec(
                &r,
                "engagement_events_total",
                "Events consumed, by what became of them.",
                "outcome",
                &Outcome::LABELS,
            ),
            invalid: counter_vec(&r, "engagement_invalid_events_total", "Invalid events, by reason.", "reason", &[]),
            rejected: counter_vec(
                &r,
                "engagement_rejected_events_total",
                "Events refused because a state bound was reached, by bound.",
                "bound",
                &bounds,
            ),
            rank_changes: counter_vec(
                &r,
                "engagement_rank_changes_total",
                "Rank changes inside the top N seen by the ranking loop.",
                "window",
                &WINDOWS,
            ),
            leader_changes: counter_vec(
                &r,
                "engagement_leader_changes_total",
                "Changes of the #1 page seen by the ranking loop.",
                "window",
                &WINDOWS,
            ),
            pages: gauge_vec(
                &r,
                "engagement_pages",
                "Pages with at least one post in the window (updated by the ranking loop).",
                &["window"],
            ),
            posts: gauge_vec(&r, "engagement_posts", "Posts in the window (updated by the ranking loop).", &["window"]),
            watermark: register(
                &r,
                Gauge::new(
                    "engagement_watermark_timestamp_seconds",
                    "The watermark: greatest observed_at of the valid events consumed.",
                )
                .expect("valid"),
            ),
            lag: gauge_vec(
                &r,
                "engagement_consumer_lag_messages",
                "High watermark minus position, per assigned partition.",
                &["topic", "partition"],
            ),
            phase: gauge_vec(
                &r,
                "engagement_phase",
                "1 for the daemon's current lifecycle phase, 0 for the others.",
                &["phase"],
            ),
            state_entries: gauge_vec(
                &r,
                "engagement_state_entries",
                "Entries held in each input-grown structure.",
                &["structure"],
            ),
            state_limit: gauge_vec(
                &r,
                "engagement_state_limit",
                "Configured bound of each input-grown structure.",
                &["structure"],
            ),
            state_heap_bytes: register(
                &r,
                IntGauge::new(
                    "engagement_state_heap_bytes",
                    "Heap bytes held by the engine's state, from its capacities.",
                )
                .expect("valid"),
            ),
            commits: counter_vec(
                &r,
                "engagement_offset_commits_total",
                "Offset commits under the group id, by result.",
                "result",
                &["ok", "failed"],
            ),
            consumer_errors: register(
                &r,
                IntCounter::new("engagement_consumer_errors_total", "Errors reported by the Kafka consumer.")
                    .expect("valid"),
            ),
            produced: {
                let c = IntCounterVec::new(
                    Opts::new(
                        "engagement_produced_messages_total",
                        "Messages for the dead-letter and rank-event topics, by topic kind and result.",
                    ),
                    &["kind", "result"],
                )
                .expect("valid");
                for kind in ["dead_letter", "rank_event"] {
                    for result in ["queued", "dropped", "delivered", "failed"] {
                        c.with_label_values(&[kind, result]);
                    }
                }
                register(&r, c)
            },
            view_build_seconds: register(
                &r,
                Gauge::new("engagement_view_build_duration_seconds", "Time the last view rebuild took.")
                    .expect("valid"),
            ),
            log_suppressed: register(
                &r,
                IntCounter::new(
                    "engagement_log_lines_suppressed_total",
                    "Log lines dropped by rate limiting (the events are still counted).",
                )
                .expect("valid"),
            ),
            history_gaps: register(
                &r,
                IntCounter::new(
                    "engagement_history_gaps_total",
                    "Times consumption had to skip offsets that no longer exist: history may be incomplete.",
                )
                .expect("valid"),
            ),
            checkpoints: counter_vec(
                &r,
                "engagement_checkpoints_total",
                "Checkpoints written, by result.",
                "result",
                &["ok", "failed"],
            ),
            checkpoint_last_success: register(
                &r,
                Gauge::new(
                    "engagement_checkpoint_last_success_timestamp_seconds",
                    "When the last checkpoint became durable.",
                )
                .expect("valid"),
            ),
            checkpoint_duration: register(
                &r,
                Gauge::new(
                    "engagement_checkpoint_duration_seconds",
                    "Time the last checkpoint took, from start to durable.",
                )
                .expect("valid"),
            ),
            checkpoint_pause: register(
                &r,
                Gauge::new(
                    "engagement_checkpoint_pause_seconds",
                    "Time the last checkpoint paused consumption (serializing the state).",
                )
                .expect("valid"),
            ),
            checkpoint_bytes: register(
                &r,
                IntGauge::new("engagement_checkpoint_size_bytes", "Size of the last checkpoint file.").expect("valid"),
            ),
            restores: counter_vec(
                &r,
                "engagement_checkpoint_restores_total",
                "Checkpoint files examined at start, by result: restored, discarded (corrupt, moved aside) or none found.",
                "result",
                &["restored", "discarded", "none"],
            ),
            restore_duration: register(
                &r,
                Gauge::new("engagement_restore_duration_seconds", "Time restoring the checkpoint took at start.")
                    .expect("valid"),
            ),
            registry: r,
        };
        for w in WINDOWS {
            m.pages.with_label_values(&[w]);
            m.posts.with_label_values(&[w]);
        }
        for p in Phase::ALL {
            m.phase.with_label_values(&[p.as_str()]);
        }
        let limit = |s: &str| match s {
            "pages" => i64::from(limits.max_pages),
            "posts" => i64::from(limits.max_posts),
            "platforms" => i64::from(limits.max_platforms),
            _ => i64::from(limits.max_event_ids),
        };
        for s in STRUCTURES {
            m.state_entries.with_label_values(&[s]);
            m.state_limit.with_label_values(&[s]).set(limit(s));
        }
        let top =
            IntGauge::new("engagement_top_n", "Pages per window exported as series and watched for rank changes.")
                .expect("valid");
        top.set(top_n as i64);
        m.registry.register(Box::new(top)).expect("unique");
        let build = gauge_vec(
            &m.registry,
            "engagement_build_info",
            "Always 1; the version label says which build is running.",
            &["version"],
        );
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        m.registry.register(Box::new(TopPages { view, top_n, descs: TopPages::descs() })).expect("unique");
        #[cfg(target_os = "linux")]
        m.registry.register(Box::new(prometheus::process_collector::ProcessCollector::for_self())).expect("unique");
        m
    }

    pub fn set_phase(&self, phase: Phase) {
        for p in Phase::ALL {
            self.phase.with_label_values(&[p.as_str()]).set(i64::from(p == phase));
        }
    }

    /// Counts one event outcome (and its reason or bound).
    pub fn count(&self, outcome: Outcome, invalid_reason: Option<&'static str>) {
        self.events.with_label_values(&[outcome.as_str()]).inc();
        if let Some(reason) = invalid_reason {
            self.invalid.with_label_values(&[reason]).inc();
        }
        if let Outcome::Rejected(b) = outcome {
            self.rejected.with_label_values(&[b.as_str()]).inc();
        }
    }

    /// Updates the gauges that follow the published view.
    pub fn observe_view(&self, view: &View) {
        for w in WINDOWS {
            let t = window_table(view, w);
            self.pages.with_label_values(&[w]).set(t.map_or(0, |t| t.rows.len() as i64));
            self.posts.with_label_values(&[w]).set(t.map_or(0, |t| t.posts() as i64));
        }
        if let Some(wm) = view.watermark {
            self.watermark.set(wm as f64 / 1000.0);
        }
        self.observe_usage(&view.usage);
    }

    fn observe_usage(&self, u: &Usage) {
        for (s, n) in STRUCTURES.iter().zip([u.pages, u.posts, u.platforms, u.event_ids]) {
            self.state_entries.with_label_values(&[s]).set(n as i64);
        }
        self.state_heap_bytes.set(u.heap_bytes as i64);
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buf).expect("encoding to a Vec cannot fail");
        String::from_utf8(buf).expect("the text format is UTF-8")
    }
}

/// The per-page gauges of the top N by interactions, built at scrape time.
struct TopPages {
    view: Arc<ArcSwap<View>>,
    top_n: usize,
    descs: Vec<Desc>,
}

const PAGE_LABELS: [&str; 3] = ["window", "platform", "page_id"];
const INTERACTIONS: (&str, &str) =
    ("engagement_page_interactions", "Interactions of the top-N pages by interactions, per window.");
const RANK: (&str, &str) =
    ("engagement_page_rank", "Rank (1 = first) of the top-N pages by interactions across all platforms, per window.");

impl TopPages {
    fn descs() -> Vec<Desc> {
        [INTERACTIONS, RANK]
            .iter()
            .map(|(name, help)| {
                let labels = PAGE_LABELS.iter().map(|l| l.to_string()).collect();
                Desc::new(name.to_string(), help.to_string(), labels, Default::default()).expect("valid desc")
            })
            .collect()
    }
}

fn gauge(labels: [&str; 3], value: f64) -> Metric {
    let mut m = Metric::default();
    m.set_label(
        PAGE_LABELS
            .iter()
            .zip(labels)
            .map(|(k, v)| {
                let mut l = LabelPair::default();
                l.set_name(k.to_string());
                l.set_value(v.to_string());
                l
            })
            .collect(),
    );
    let mut g = GaugeProto::default();
    g.set_value(value);
    m.set_gauge(g);
    m
}

fn family((name, help): (&str, &str), metrics: Vec<Metric>) -> MetricFamily {
    let mut f = MetricFamily::default();
    f.set_name(name.to_string());
    f.set_help(help.to_string());
    f.set_field_type(MetricType::GAUGE);
    f.set_metric(metrics);
    f
}

impl Collector for TopPages {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let view = self.view.load();
        let (mut interactions, mut ranks) = (Vec::new(), Vec::new());
        for w in WINDOWS {
            let Some(t) = window_table(&view, w) else {
                continue;
            };
            for (rank, row) in top(&t.rows, RankBy::Interactions, 0, self.top_n) {
                let p = &view.pages[row.page as usize];
                interactions.push(gauge([w, &p.platform, &p.id], row.totals.interactions() as f64));
                ranks.push(gauge([w, &p.platform, &p.id], f64::from(rank)));
            }
        }
        vec![family(INTERACTIONS, interactions), family(RANK, ranks)]
    }
}
