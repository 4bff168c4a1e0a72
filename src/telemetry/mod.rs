//! Logging setup (tracing-subscriber, text or JSON, level from the config
//! or `RUST_LOG`), the rate limit for log lines that input can trigger, and
//! the typed events ([`events`]) through which the daemon logs and counts.

pub mod directory;
pub mod events;
pub mod shard;

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber. `RUST_LOG`, when set, wins over `level`.
pub fn init(format: LogFormat, level: &str) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour codes only for a person at a terminal: piped into a file or a
    // log collector they are noise in every line.
    let ansi = std::io::stderr().is_terminal();
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// Allows at most `per_second` lines per wall-clock second, across threads.
/// Lock-free and approximate at second boundaries, which is all a log rate
/// limit needs.
#[derive(Debug)]
pub struct LogLimiter {
    per_second: u32,
    epoch: Instant,
    /// The second (since `epoch`) that `used` counts.
    second: AtomicU64,
    used: AtomicU32,
}

impl LogLimiter {
    pub fn new(per_second: u32) -> LogLimiter {
        LogLimiter { per_second, epoch: Instant::now(), second: AtomicU64::new(0), used: AtomicU32::new(0) }
    }

    /// Whether a line may be logged now.
    pub fn allow(&self) -> bool {
        self.allow_at(Instant::now())
    }

    fn allow_at(&self, now: Instant) -> bool {
        let second = now.saturating_duration_since(self.epoch).as_secs();
        if self.second.swap(second, Relaxed) != second {
            self.used.store(0, Relaxed);
        }
        self.used.fetch_add(1, Relaxed) < self.per_second
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn limiter_allows_a_burst_per_second() {
        let l = LogLimiter::new(2);
        let t0 = l.epoch;
        assert_eq!([l.allow_at(t0), l.allow_at(t0), l.allow_at(t0), l.allow_at(t0)], [true, true, false, false]);
        assert!(l.allow_at(t0 + Duration::from_millis(1001)));
        assert!(l.allow_at(t0 + Duration::from_millis(1500)));
        assert!(!l.allow_at(t0 + Duration::from_millis(1999)));
        assert!(!LogLimiter::new(0).allow(), "a rate of 0 logs nothing");
    }
}
