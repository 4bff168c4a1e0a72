//! Logging setup (tracing-subscriber, text or JSON, level from the config
//! or `RUST_LOG`) and a rate limiter for log lines that input can trigger.

use std::time::{Duration, Instant};

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber. `RUST_LOG`, when set, wins over `level`.
pub fn init(format: LogFormat, level: &str) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// Allows at most `per_second` lines per second; counts the rest.
#[derive(Debug)]
pub struct LogLimiter {
    per_second: u32,
    window: Instant,
    used: u32,
    suppressed: u64,
}

impl LogLimiter {
    pub fn new(per_second: u32, now: Instant) -> LogLimiter {
        LogLimiter { per_second, window: now, used: 0, suppressed: 0 }
    }

    /// Whether a line may be logged now.
    pub fn allow(&mut self, now: Instant) -> bool {
        if now.duration_since(self.window) >= Duration::from_secs(1) {
            self.window = now;
            self.used = 0;
        }
        if self.used < self.per_second {
            self.used += 1;
            true
        } else {
            self.suppressed += 1;
            false
        }
    }

    /// Lines suppressed since the last call.
    pub fn take_suppressed(&mut self) -> u64 {
        std::mem::take(&mut self.suppressed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_allows_a_burst_per_second_and_counts_the_rest() {
        let t0 = Instant::now();
        let mut l = LogLimiter::new(2, t0);
        assert_eq!([l.allow(t0), l.allow(t0), l.allow(t0), l.allow(t0)], [true, true, false, false]);
        assert_eq!(l.take_suppressed(), 2);
        assert!(l.allow(t0 + Duration::from_millis(1001)));
        assert_eq!(l.take_suppressed(), 0);
    }
}
