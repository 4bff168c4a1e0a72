//! Page records on their way to the page-totals topic: each delivery is
//! counted, acknowledged or failed; a page whose record the broker refused
//! is kept to be published again, with its latest figures, at the next
//! publish cycle (docs/scaling.md#shard-mode). Heartbeats are not kept:
//! the next cycle sends a new one anyway.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{DeliveryResult, ProducerContext};

use engagement_core::global::PageRecord;

use crate::serve::metrics::Metrics;
use crate::telemetry::events::{ClientError, InternalEvent};
use crate::telemetry::shard::PageRecordFailed;

/// Most refused pages kept for the next cycle; further ones are counted
/// and logged, and published again when they change.
pub const MAX_KEPT: usize = 100_000;

/// How often a refused record is logged at most (all are counted).
const LOG_EVERY: Duration = Duration::from_secs(10);

/// A page whose record (or tombstone) was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The record's key: `platform`, a zero byte, `page_id`.
    pub key: Vec<u8>,
    /// The input partition of the page's events; `None` for a tombstone.
    pub partition: Option<u32>,
}

impl Refused {
    /// The page's platform and id.
    pub fn page(&self) -> Option<(&str, &str)> {
        let zero = self.key.iter().position(|b| *b == 0)?;
        let platform = std::str::from_utf8(&self.key[..zero]).ok()?;
        let id = std::str::from_utf8(&self.key[zero + 1..]).ok()?;
        Some((platform, id))
    }
}

/// The totals producer's context.
pub struct Deliveries {
    metrics: Arc<Metrics>,
    refused: Mutex<Vec<Refused>>,
    logged: Mutex<Option<Instant>>,
}

impl Deliveries {
    pub fn new(metrics: Arc<Metrics>) -> Deliveries {
        Deliveries { metrics, refused: Mutex::default(), logged: Mutex::default() }
    }

    /// The pages refused since the last call.
    pub fn take_refused(&self) -> Vec<Refused> {
        std::mem::take(&mut *self.refused.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn refused(&self, error: &KafkaError, key: &[u8], payload: Option<&[u8]>) {
        let kept = super::watermark_partition(key).is_none() && {
            let mut refused = self.refused.lock().unwrap_or_else(|e| e.into_inner());
            let fits = refused.len() < MAX_KEPT;
            if fits {
                let partition = payload.and_then(|v| PageRecord::decode(v).ok()).map(|r| r.partition);
                refused.push(Refused { key: key.to_vec(), partition });
            }
            fits
        };
        let mut logged = self.logged.lock().unwrap_or_else(|e| e.into_inner());
        let log = logged.is_none_or(|at| at.elapsed() >= LOG_EVERY);
        if log {
            *logged = Some(Instant::now());
        }
        PageRecordFailed { error, heartbeat: super::watermark_partition(key).is_some(), kept, log }.emit(&self.metrics);
    }
}

impl ClientContext for Deliveries {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        crate::kafka::log(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        ClientError { error: &error, reason }.emit(&self.metrics);
    }
}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => self.metrics.shard.deliveries.with_label_values(&["acknowledged"]).inc(),
            Err((error, m)) => self.refused(error, m.key().unwrap_or_default(), m.payload()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_key_names_its_page() {
        let r = Refused { key: b"facebook\0moi.egy".to_vec(), partition: Some(3) };
        assert_eq!(r.page(), Some(("facebook", "moi.egy")));
        assert_eq!(Refused { key: b"no zero".to_vec(), partition: None }.page(), None);
        assert_eq!(Refused { key: b"x\0\xff".to_vec(), partition: None }.page(), None);
    }
}
