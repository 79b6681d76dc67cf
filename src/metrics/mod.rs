//! What is measured: latency histograms and process accounting.

pub mod histogram;
pub mod process;
pub mod syscalls;
