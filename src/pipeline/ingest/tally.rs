//! What became of consumed records, for replica mode's loop and shard
//! mode's alike: outcomes tallied locally and flushed to the metrics in
//! bulk (a label lookup per event would cost more than decoding it); a
//! record that changed nothing is logged, counted and dead-lettered.

use std::sync::Arc;

use engagement_core::engine::jump::Notice;
use engagement_core::engine::{Bound, Outcome};
use engagement_core::event::Invalid;

use super::Record;
use crate::alerts::publisher::{Origin, Publisher};
use crate::serve::metrics::Metrics;
use crate::telemetry::events::{EngineNoticed, EventNotApplied, InternalEvent, NotApplied, OutcomesCounted};

pub struct Tally {
    /// Outcomes not yet flushed, in `Outcome::EACH` order.
    counts: [u64; Outcome::EACH.len()],
    metrics: Arc<Metrics>,
    publisher: Arc<Publisher>,
    /// The input topic, named in dead letters.
    topic: String,
    /// The first record of the last batch refused for jumping the watermark.
    first_jump: Option<(i32, i64)>,
}

impl Tally {
    pub fn new(metrics: Arc<Metrics>, publisher: Arc<Publisher>, topic: String) -> Tally {
        Tally { counts: [0; Outcome::EACH.len()], metrics, publisher, topic, first_jump: None }
    }

    /// Counts `records`, one result each in order.
    pub fn count<'a>(&mut self, records: impl IntoIterator<Item = Record<'a>>, results: &[Result<Outcome, Invalid>]) {
        self.first_jump = None;
        for (r, result) in records.into_iter().zip(results) {
            let outcome = match *result {
                Ok(outcome) => outcome,
                Err(Invalid(reason)) => {
                    self.not_applied(&r, NotApplied::Invalid(reason));
                    Outcome::Invalid
                }
            };
            if let Outcome::Rejected(bound) = outcome {
                if bound == Bound::WatermarkJump && self.first_jump.is_none() {
                    self.first_jump = Some((r.partition, r.offset));
                }
                self.not_applied(&r, NotApplied::Rejected(bound));
            }
            self.counts[outcome.index()] += 1;
        }
    }

    /// Counts, logs and dead-letters an event that changed nothing.
    fn not_applied(&self, r: &Record<'_>, why: NotApplied) {
        EventNotApplied { why, partition: r.partition, offset: r.offset }.emit(&self.metrics);
        let origin = Origin { topic: &self.topic, partition: r.partition, offset: r.offset, key: r.key };
        self.publisher.dead_letter(r.payload, &origin, why.reason());
    }

    /// Logs and counts what the engine noticed while applying the batch
    /// just counted; a held jump names that batch's first refused record.
    pub fn notices(&self, (notices, dropped): (Vec<Notice>, u64)) {
        for notice in notices {
            EngineNoticed { notice, first: self.first_jump }.emit(&self.metrics);
        }
        if dropped > 0 {
            tracing::warn!(dropped, "engine notices dropped: more than fit between two batches");
        }
    }

    /// Hands the counts to the metrics.
    pub fn flush(&mut self) {
        OutcomesCounted(&std::mem::take(&mut self.counts)).emit(&self.metrics);
    }
}
