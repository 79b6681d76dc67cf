//! What is measured: latency histograms and process accounting.

pub mod histogram;
pub mod process;
#[cfg(target_os = "linux")]
pub mod syscalls;
