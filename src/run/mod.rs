//! The process: the command line, starting the parts and stopping them
//! in order, and the signals that stop it.
pub mod cli;
pub mod daemon;
pub mod shutdown;
