//! placeholder
pub mod posts;
