//! Whether the brokers can be reached, as the consume loop sees it: from
//! librdkafka's "all brokers down" and from failed metadata requests;
//! cleared by a metadata request that succeeds. It drives the readiness
//! reason, `engagement_broker_reachable` and one log line when the brokers
//! become unreachable, then at most one per [`LOG_EVERY`] while they stay
//! so (librdkafka itself retries every connection, a line per retry is
//! noise).

use std::time::{Duration, Instant};

use crate::serve::metrics::Metrics;
use crate::telemetry::events::{BrokerReachable, BrokerUnreachable, InternalEvent};

/// Least time between two log lines about the same outage.
pub const LOG_EVERY: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    /// Not known to be unreachable.
    Reachable,
    Unreachable {
        since: Instant,
        logged: Instant,
    },
}

/// The brokers' reachability and when it was last reported.
#[derive(Debug)]
pub struct BrokerWatch {
    /// The bootstrap servers, credentials redacted.
    brokers: String,
    reach: Reach,
}

impl BrokerWatch {
    pub fn new(brokers: String) -> BrokerWatch {
        BrokerWatch { brokers, reach: Reach::Reachable }
    }

    pub fn brokers(&self) -> &str {
        &self.brokers
    }

    pub fn is_unreachable(&self) -> bool {
        matches!(self.reach, Reach::Unreachable { .. })
    }

    /// No broker could be reached at `now`, for the reason `error`.
    pub fn failed(&mut self, now: Instant, error: &str, m: &Metrics) {
        let since = match self.reach {
            Reach::Unreachable { logged, .. } if now.saturating_duration_since(logged) < LOG_EVERY => return,
            Reach::Unreachable { since, .. } => since,
            Reach::Reachable => now,
        };
        self.reach = Reach::Unreachable { since, logged: now };
        BrokerUnreachable { brokers: &self.brokers, error, since: now.saturating_duration_since(since) }.emit(m);
    }

    /// A broker answered at `now`.
    pub fn answered(&mut self, now: Instant, m: &Metrics) {
        if let Reach::Unreachable { since, .. } = self.reach {
            self.reach = Reach::Reachable;
            BrokerReachable { brokers: &self.brokers, after: now.saturating_duration_since(since) }.emit(m);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::metrics::Sources;

    fn metrics() -> Metrics {
        let (_, views) = crate::serve::published::channel();
        let (_, status) = crate::pipeline::status::channel();
        let watches = crate::config::default_watches().into();
        Metrics::new(Sources {
            views,
            status,
            top_n: 1,
            limits: Default::default(),
            log_rate_per_second: 1,
            watches,
            groups: std::sync::Arc::from([]),
        })
    }

    #[test]
    fn an_outage_is_reported_when_it_starts_then_every_30_s() {
        let m = metrics();
        let gauge = || m.render().lines().find(|l| l.starts_with("engagement_broker_reachable ")).map(String::from);
        let mut w = BrokerWatch::new("k:9092".into());
        let t0 = Instant::now();
        assert_eq!(gauge().as_deref(), Some("engagement_broker_reachable 1"));
        w.failed(t0, "refused", &m);
        assert!(w.is_unreachable());
        assert_eq!(gauge().as_deref(), Some("engagement_broker_reachable 0"));
        assert_eq!(w.reach, Reach::Unreachable { since: t0, logged: t0 });
        w.failed(t0 + Duration::from_secs(29), "refused", &m);
        assert_eq!(w.reach, Reach::Unreachable { since: t0, logged: t0 }, "not logged again within 30 s");
        let later = t0 + Duration::from_secs(31);
        w.failed(later, "refused", &m);
        assert_eq!(w.reach, Reach::Unreachable { since: t0, logged: later });
        w.answered(later, &m);
        assert!(!w.is_unreachable());
        assert_eq!(gauge().as_deref(), Some("engagement_broker_reachable 1"));
    }
}
