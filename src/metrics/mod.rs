//! What is measured: latency histograms, process accounting, system-call counts (and the
//! tracefs they need, on Linux), and the median every figure is summed up by.

pub mod histogram;
pub mod process;
pub mod stats;
pub mod syscall_figures;
pub mod syscalls;
#[cfg(target_os = "linux")]
pub mod tracefs;
