//! Readiness: where the daemon is in its life and, while it is not ready,
//! why. The ingest thread writes it; `/readyz` and, at scrape time, the
//! `engagement_phase` gauge read the same value, so they never disagree.

use tokio::sync::watch;

/// The daemon's readiness, with the reason when it is not ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// Started; the Kafka consumer has not assigned partitions yet.
    Starting,
    /// Loading the newest checkpoint.
    Restoring,
    /// No broker of `brokers` (credentials redacted) can be reached.
    BrokerUnreachable { brokers: String },
    /// The topic does not exist (yet).
    WaitingForTopic { topic: String },
    /// Partitions are assigned but their ends are not known yet.
    PartitionEndsUnknown,
    /// Consuming history; some partition lags more than the bound.
    CatchingUp { behind: u64 },
    /// Shard mode: this instance's partitions and the page-totals topic are
    /// caught up, but the owners of `partitions` input partitions have not
    /// said they are (their pages may be missing).
    WaitingForOwners { partitions: usize },
    /// Caught up, but the page directory (`source`) is not read to its end yet.
    LoadingDirectory { source: String },
    /// Caught up: answers are current and rank changes are reported.
    Ready,
    /// Shutting down.
    Stopping,
}

/// The lifecycle phase of a [`Readiness`], the `phase` label of
/// `engagement_phase`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Restoring,
    CatchingUp,
    Ready,
    Stopping,
}

impl Phase {
    pub const ALL: [Phase; 4] = [Phase::Restoring, Phase::CatchingUp, Phase::Ready, Phase::Stopping];

    pub const fn as_str(self) -> &'static str {
        match self {
            Phase::Restoring => "restoring",
            Phase::CatchingUp => "catching_up",
            Phase::Ready => "ready",
            Phase::Stopping => "stopping",
        }
    }
}

impl Readiness {
    pub fn phase(&self) -> Phase {
        match self {
            Readiness::Restoring => Phase::Restoring,
            Readiness::Starting
            | Readiness::BrokerUnreachable { .. }
            | Readiness::WaitingForTopic { .. }
            | Readiness::PartitionEndsUnknown
            | Readiness::CatchingUp { .. }
            | Readiness::WaitingForOwners { .. }
            | Readiness::LoadingDirectory { .. } => Phase::CatchingUp,
            Readiness::Ready => Phase::Ready,
            Readiness::Stopping => Phase::Stopping,
        }
    }

    pub fn is_ready(&self) -> bool {
        *self == Readiness::Ready
    }

    /// Why the daemon is not ready, as `/readyz` says it; empty when ready.
    pub fn reason(&self) -> String {
        match self {
            Readiness::Starting => "starting".into(),
            Readiness::Restoring => "restoring the checkpoint".into(),
            Readiness::BrokerUnreachable { brokers } => {
                format!("cannot reach Kafka at {brokers}: is the broker running? check kafka.brokers")
            }
            Readiness::WaitingForTopic { topic } => format!("waiting for topic {topic} to exist"),
            Readiness::PartitionEndsUnknown => "partition ends not known yet".into(),
            Readiness::CatchingUp { behind } => format!("catching up: {behind} messages behind"),
            Readiness::WaitingForOwners { partitions } => {
                format!("waiting for the owners of {partitions} partitions to catch up and publish their pages")
            }
            Readiness::LoadingDirectory { source } => format!("reading the page directory ({source}) to its end"),
            Readiness::Ready => String::new(),
            Readiness::Stopping => "shutting down".into(),
        }
    }
}

/// The writer's end.
pub type StatusTx = watch::Sender<Readiness>;
/// A reader's end: `borrow()` is the current readiness.
pub type StatusRx = watch::Receiver<Readiness>;

pub fn channel() -> (StatusTx, StatusRx) {
    watch::channel(Readiness::Starting)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ready_is_ready_and_every_other_state_says_why() {
        let all = [
            Readiness::Starting,
            Readiness::Restoring,
            Readiness::BrokerUnreachable { brokers: "k:9092".into() },
            Readiness::WaitingForTopic { topic: "t".into() },
            Readiness::PartitionEndsUnknown,
            Readiness::CatchingUp { behind: 7 },
            Readiness::WaitingForOwners { partitions: 2 },
            Readiness::LoadingDirectory { source: "topic d".into() },
            Readiness::Ready,
            Readiness::Stopping,
        ];
        for r in &all {
            assert_eq!(r.is_ready(), r.phase() == Phase::Ready, "{r:?}");
            assert_eq!(r.reason().is_empty(), r.is_ready(), "{r:?}");
        }
        assert_eq!(Readiness::CatchingUp { behind: 7 }.reason(), "catching up: 7 messages behind");
    }
}
