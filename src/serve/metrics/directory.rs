//! The page directory's series (docs/metrics.md#directory).

use prometheus::{IntCounter, IntCounterVec, IntGauge};

use engagement_core::directory::Refused;

use super::Families;

pub(crate) struct DirectoryMetrics {
    /// One handle per result: `applied`, `removed`, `refused` (a record
    /// is counted without a label lookup: a directory load counts a million).
    pub records: [IntCounter; 3],
    /// Refused records, one handle per reason in [`Refused::ALL`] order.
    pub refused: Vec<IntCounter>,
    pub pages: IntGauge,
    pub groups: IntGauge,
    /// Whether the directory has been read to its end since start.
    pub loaded: IntGauge,
}

/// The `result` labels of `engagement_directory_records_total`.
pub(crate) const RESULTS: [&str; 3] = ["applied", "removed", "refused"];

impl DirectoryMetrics {
    pub(super) fn new(f: &Families<'_>) -> DirectoryMetrics {
        let reasons: Vec<&str> = Refused::ALL.iter().map(|r| r.as_str()).collect();
        let records: IntCounterVec = f.counters(
            "engagement_directory_records_total",
            "Page directory records read, by result.",
            "result",
            &RESULTS,
        );
        let refused: IntCounterVec = f.counters(
            "engagement_directory_refused_total",
            "Page directory records refused, by reason; each changed nothing.",
            "reason",
            &reasons,
        );
        DirectoryMetrics {
            records: RESULTS.map(|r| records.with_label_values(&[r])),
            refused: reasons.iter().map(|r| refused.with_label_values(&[r])).collect(),
            pages: f.int_gauge("engagement_directory_pages", "Pages in the page directory."),
            groups: f
                .int_gauge("engagement_directory_groups", "Distinct groups (dimension:value) in the page directory."),
            loaded: f.int_gauge(
                "engagement_directory_loaded",
                "1 once the page directory has been read to its end (or none is configured), else 0.",
            ),
        }
    }
}
