//! The daemon's lifecycle phase and readiness detail, written by the
//! consumer and read by `/readyz`, `/metrics` and the rank-change loop.

use std::sync::Arc;

use arc_swap::ArcSwap;

/// Where the daemon is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Loading a checkpoint.
    Restoring,
    /// Consuming history; lag above the readiness bound.
    CatchingUp,
    /// Caught up: answers are current and rank changes are reported.
    Ready,
    /// Shutting down.
    Stopping,
}

impl Phase {
    pub const ALL: [Phase; 4] = [Phase::Restoring, Phase::CatchingUp, Phase::Ready, Phase::Stopping];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Restoring => "restoring",
            Phase::CatchingUp => "catching_up",
            Phase::Ready => "ready",
            Phase::Stopping => "stopping",
        }
    }
}

/// A phase with a human-readable reason (shown by `/readyz` when not ready).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    pub phase: Phase,
    pub detail: String,
}

/// Shared, lock-free status.
#[derive(Debug, Clone)]
pub struct Status(Arc<ArcSwap<State>>);

impl Status {
    pub fn new(phase: Phase, detail: impl Into<String>) -> Status {
        Status(Arc::new(ArcSwap::from_pointee(State { phase, detail: detail.into() })))
    }

    pub fn set(&self, phase: Phase, detail: impl Into<String>) {
        self.0.store(Arc::new(State { phase, detail: detail.into() }));
    }

    pub fn get(&self) -> Arc<State> {
        self.0.load_full()
    }

    pub fn phase(&self) -> Phase {
        self.0.load().phase
    }
}
