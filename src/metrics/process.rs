//! Process accounting: CPU time, context switches, memory and threads of a whole process.
//!
//! `bench serve` reads its own counters with getrusage(RUSAGE_SELF), which sums every thread the
//! process ever had, those that already exited included (`/proc/PID/status` would give the main
//! thread's switches only), plus `/proc/self/status` for the peak RSS and the live threads
//! (on Windows: GetProcessTimes and the working set; no context switch counts there).
//! `bench run` asks for a snapshot at each edge of the measured window and subtracts.

use serde::{Deserialize, Serialize};

use crate::sys;

/// A snapshot of a process's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessCounters {
    pub cpu_user_s: f64,
    pub cpu_sys_s: f64,
    /// `None` where the platform keeps no per-process count (Windows).
    pub voluntary_ctx_switches: Option<u64>,
    pub involuntary_ctx_switches: Option<u64>,
    /// High-water mark of resident memory over the process's life (VmHWM).
    pub peak_rss_bytes: u64,
    /// Resident memory now (VmRSS).
    pub rss_bytes: u64,
    /// Live threads now.
    pub threads: u64,
}

impl ProcessCounters {
    /// The calling process's counters now.
    pub fn of_self() -> std::io::Result<Self> {
        let ru = sys::rusage_self()?;
        let memory = sys::process_memory()?;
        Ok(ProcessCounters {
            cpu_user_s: ru.user_s,
            cpu_sys_s: ru.sys_s,
            voluntary_ctx_switches: ru.voluntary_ctx_switches,
            involuntary_ctx_switches: ru.involuntary_ctx_switches,
            peak_rss_bytes: memory.peak_rss_bytes,
            rss_bytes: memory.rss_bytes,
            threads: memory.threads,
        })
    }

    /// What happened between `earlier` and `self`: CPU and switches are differences, memory
    /// and threads are `self`'s values.
    pub fn since(&self, earlier: &ProcessCounters) -> ProcessCounters {
        ProcessCounters {
            cpu_user_s: (self.cpu_user_s - earlier.cpu_user_s).max(0.0),
            cpu_sys_s: (self.cpu_sys_s - earlier.cpu_sys_s).max(0.0),
            voluntary_ctx_switches: diff(
                self.voluntary_ctx_switches,
                earlier.voluntary_ctx_switches,
            ),
            involuntary_ctx_switches: diff(
                self.involuntary_ctx_switches,
                earlier.involuntary_ctx_switches,
            ),
            ..*self
        }
    }

    pub fn cpu_s(&self) -> f64 {
        self.cpu_user_s + self.cpu_sys_s
    }

    /// Both kinds of context switch; `None` where they are not counted.
    pub fn ctx_switches(&self) -> Option<u64> {
        Some(self.voluntary_ctx_switches? + self.involuntary_ctx_switches?)
    }
}

fn diff(later: Option<u64>, earlier: Option<u64>) -> Option<u64> {
    Some(later?.saturating_sub(earlier?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_counters() {
        let c = ProcessCounters::of_self().unwrap();
        assert!(c.threads >= 1);
        assert!(c.peak_rss_bytes > 0 && c.rss_bytes > 0);
        // CPU burnt between the snapshots must show in their difference: burn until it shows
        // 50 ms (the kernel counts in ticks of 10 ms or less), for 5 s of wall time at most;
        // counters that do not move fail.
        let start = std::time::Instant::now();
        let mut x = 0u64;
        let mut later = ProcessCounters::of_self().unwrap().since(&c);
        while later.cpu_s() < 0.05 && start.elapsed() < std::time::Duration::from_secs(5) {
            for _ in 0..100_000 {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
            later = ProcessCounters::of_self().unwrap().since(&c);
        }
        assert!(
            later.cpu_s() >= 0.05,
            "5 s of a busy loop read as {} s of CPU",
            later.cpu_s()
        );
    }
}
