//! engagement-monitor: ranks social-media pages by engagement, live from Kafka.
//!
//! The core is pure (no I/O, no clock, no Kafka/HTTP types):
//! - [`window`]: UTC quarters, the rolling window, timestamp parsing.
//! - [`event`]: SPEC §2 wire format, decoded borrowed; static invalid reasons.
pub mod event;
pub mod window;
pub mod engine;
