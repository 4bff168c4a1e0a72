//! What changed, told: rank changes of the watched rankings, and the
//! Kafka producer of rank-change events and dead letters.
//!
//! - [`rank_changes`]: detection over successive views; counted, held for
//!   alerts, listed and published.
//! - [`publisher`]: dead letters and rank-change events to Kafka, never
//!   blocking.
pub mod publisher;
pub mod rank_changes;
