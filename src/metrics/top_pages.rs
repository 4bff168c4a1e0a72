//! The per-page series of the top N pages by interactions, built at scrape
//! time from the latest published view: a page that leaves the top N
//! disappears from the next scrape, so page labels stay bounded by N per
//! window.

use prometheus::core::{Collector, Desc};
use prometheus::proto::{Gauge, LabelPair, Metric, MetricFamily, MetricType};

use engagement_core::ranking::{Filter, Metric as RankBy};
use engagement_core::window::Window;

use crate::published::{ViewRx, latest};

const LABELS: [&str; 3] = ["window", "platform", "page_id"];
const INTERACTIONS: (&str, &str) =
    ("engagement_page_interactions", "Interactions of the top-N pages by interactions, per window.");
const RANK: (&str, &str) =
    ("engagement_page_rank", "Rank (1 = first) of the top-N pages by interactions across all platforms, per window.");

#[derive(Clone)]
pub(super) struct TopPages {
    views: ViewRx,
    top_n: usize,
    descs: Vec<Desc>,
}

impl TopPages {
    pub(super) fn new(views: ViewRx, top_n: usize) -> TopPages {
        let descs = [INTERACTIONS, RANK]
            .iter()
            .map(|(name, help)| {
                let labels = LABELS.iter().map(|l| l.to_string()).collect();
                Desc::new(name.to_string(), help.to_string(), labels, Default::default()).expect("valid desc")
            })
            .collect();
        TopPages { views, top_n, descs }
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
        for w in Window::LABELED {
            let (Some(t), Some(label)) = (view.table(w), w.label()) else {
                continue;
            };
            for (rank, row) in view.ranking(t, RankBy::Interactions, &Filter::ALL, 0, self.top_n) {
                let p = view.page(row.page);
                interactions.push(gauge(&LABELS, &[label, p.platform, p.id], row.totals.interactions() as f64));
                ranks.push(gauge(&LABELS, &[label, p.platform, p.id], f64::from(rank)));
            }
        }
        vec![family(INTERACTIONS, interactions), family(RANK, ranks)]
    }
}
