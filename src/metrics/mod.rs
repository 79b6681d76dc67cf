//! What is measured: latency histograms, process accounting, system-call counts (and the
//! tracefs they need, on Linux).

pub mod histogram;
pub mod process;
pub mod syscalls;
#[cfg(target_os = "linux")]
pub mod tracefs;
