//! The per-page series of the top N pages by interactions, built at scrape
//! time from the latest published view: a page that leaves the top N
//! disappears from the next scrape, so page labels stay bounded by N per
//! window. Each group of `ranking.groups` adds its own top N, the same
//! series with a `group` label (bounded by that configuration, never by
//! the directory); the all-pages series have no `group` label, as before.

use prometheus::core::{Collector, Desc};
use prometheus::proto::{Gauge, LabelPair, Metric, MetricFamily, MetricType};

use engagement_core::ranking::{Filter, Metric as RankBy};

use std::sync::Arc;

use crate::serve::published::{ViewRx, latest};

const LABELS: [&str; 3] = ["window", "platform", "page_id"];
const GROUP_LABELS: [&str; 4] = ["window", "platform", "page_id", "group"];
const INTERACTIONS: (&str, &str) =
    ("engagement_page_interactions", "Interactions of the top-N pages by interactions, per window.");
const RANK: (&str, &str) =
    ("engagement_page_rank", "Rank (1 = first) of the top-N pages by interactions across all platforms, per window.");

#[derive(Clone)]
pub(super) struct TopPages {
    views: ViewRx,
    top_n: usize,
    groups: Arc<[String]>,
    descs: Vec<Desc>,
}

impl TopPages {
    pub(super) fn new(views: ViewRx, top_n: usize, groups: Arc<[String]>) -> TopPages {
        let descs = [INTERACTIONS, RANK]
            .iter()
            .map(|(name, help)| {
                let labels = LABELS.iter().map(|l| l.to_string()).collect();
                Desc::new(name.to_string(), help.to_string(), labels, Default::default()).expect("valid desc")
            })
            .collect();
        TopPages { views, top_n, groups, descs }
    }
}

/// A gauge sample with `names` labelled `values`.
pub(super) fn gauge(names: &[&str], values: &[&str], value: f64) -> Metric {
    let pairs = names
        .iter()
        .zip(values)
        .map(|(name, value)| {
            let mut l = LabelPair::default();
            l.set_name(name.to_string());
            l.set_value(value.to_string());
            l
        })
        .collect();
    let mut m = Metric::default();
    m.set_label(pairs);
    let mut g = Gauge::default();
    g.set_value(value);
    m.set_gauge(g);
    m
}

pub(super) fn family((name, help): (&str, &str), metrics: Vec<Metric>) -> MetricFamily {
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
        let view = latest(&self.views);
        let (mut interactions, mut ranks) = (Vec::new(), Vec::new());
        for w in view.windows.relative() {
            let Some(t) = view.table(w) else { continue };
            let label = w.to_string();
            let label = label.as_str();
            let every = std::iter::once(None).chain(self.groups.iter().map(Some));
            for group in every {
                let groups = group.map(std::slice::from_ref).unwrap_or_default();
                let filter = Filter { platform: None, groups };
                for (rank, row) in view.ranking(t, RankBy::Interactions, &filter, 0, self.top_n) {
                    let p = view.page(row.page);
                    let (names, values): (&[&str], Vec<&str>) = match group {
                        Some(g) => (&GROUP_LABELS, vec![label, p.platform, p.id, g]),
                        None => (&LABELS, vec![label, p.platform, p.id]),
                    };
                    interactions.push(gauge(names, &values, row.totals.interactions() as f64));
                    ranks.push(gauge(names, &values, f64::from(rank)));
                }
            }
        }
        vec![family(INTERACTIONS, interactions), family(RANK, ranks)]
    }
}
