//! Commands around the daemon: the demo on an embedded broker, synthetic
//! events to a real topic, and re-keying a topic by page.
pub mod demo;
pub mod produce;
pub mod repartition;
