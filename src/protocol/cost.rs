//! The handler's cost per request: `--work-us` (CPU) and `--block-us` (blocking).
//!
//! `work` is computation, not a sleep: a loop calibrated once at start to iterations per
//! microsecond, so a preempted thread does not finish its work early. The loop runs its
//! calibrated iterations and then, if the CPU ran faster than at calibration (a shared
//! machine's speed varies with its neighbours' load), keeps going until the asked time has
//! passed, reading the clock through the vDSO: no system call either way (the syscall counts
//! stay the model's own).

use std::hint::black_box;
use std::time::{Duration, Instant};

#[derive(Clone, Debug, Default)]
pub struct Cost {
    work_iters: u64,
    /// The asked work as a time: the least a burn lasts.
    work: Duration,
    block: Option<Duration>,
}

impl Cost {
    /// A cost of `work_us` microseconds of CPU and `block_us` microseconds blocked per request.
    /// Calibrates the work loop (about 10 ms) when `work_us` > 0.
    pub fn new(work_us: u64, block_us: u64) -> Cost {
        let work_iters = if work_us > 0 {
            (iters_per_us() * work_us as f64).round() as u64
        } else {
            0
        };
        Cost {
            work_iters,
            work: Duration::from_micros(work_us),
            block: (block_us > 0).then(|| Duration::from_micros(block_us)),
        }
    }

    pub fn is_free(&self) -> bool {
        self.work_iters == 0 && self.block.is_none()
    }

    /// Charges the cost of `requests` requests on the calling thread.
    #[inline]
    pub fn charge(&self, requests: usize) {
        if self.is_free() {
            return;
        }
        for _ in 0..requests {
            if self.work_iters > 0 {
                burn_at_least(self.work_iters, self.work);
            }
            if let Some(block) = self.block {
                std::thread::sleep(block);
            }
        }
    }
}

/// A loop the optimiser cannot remove or shorten: a xorshift step per iteration.
#[inline(never)]
fn burn(iters: u64) -> u64 {
    let mut x = black_box(0x9E37_79B9_7F4A_7C15u64);
    for _ in 0..iters {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    black_box(x)
}

/// Burns `iters` iterations, then more until `time` has passed since the start.
fn burn_at_least(iters: u64, time: Duration) {
    /// About a microsecond of the loop between two looks at the clock.
    const CHUNK: u64 = 500;
    let start = Instant::now();
    burn(iters);
    while start.elapsed() < time {
        burn(CHUNK);
    }
}

/// Iterations per microsecond, from the fastest of many short timed batches.
///
/// Short (about 0.1 ms) so that on a busy machine at least one of them runs without being
/// preempted: timing a few long batches let every one of them absorb preemption, measured the
/// loop as slower than it is, and made `--work-us` burn less than asked once the machine was
/// quieter (seen in tests: 10 x 2 ms of work took 20-28 ms).
fn iters_per_us() -> f64 {
    const BATCH: u64 = 100_000;
    const BATCHES: usize = 60;
    burn(BATCH * 4);
    let best = (0..BATCHES)
        .map(|_| {
            let start = Instant::now();
            burn(BATCH);
            start.elapsed()
        })
        .min()
        .unwrap_or(Duration::from_millis(1))
        .max(Duration::from_nanos(1));
    BATCH as f64 / (best.as_nanos() as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_cost_is_free() {
        let c = Cost::new(0, 0);
        assert!(c.is_free());
        c.charge(1000);
    }

    /// This thread's CPU time (user + system).
    #[cfg(unix)]
    fn thread_cpu() -> Duration {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid timespec for clock_gettime to fill in.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
        Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
    }

    /// 10 x 200 µs of work is about 2 ms of this thread's CPU, not of waiting: the CPU time is
    /// measured (a sleep, or a loop that yields, would fail the lower bound), and the wall
    /// time has an upper bound (the loop does not run on for long past the time asked).
    #[test]
    fn work_burns_about_the_asked_cpu_time() {
        let c = Cost::new(200, 0);
        let tries: Vec<(Duration, Duration)> = (0..10)
            .map(|_| {
                #[cfg(unix)]
                let cpu_start = thread_cpu();
                let start = Instant::now();
                c.charge(10);
                let wall = start.elapsed();
                #[cfg(unix)]
                let cpu = thread_cpu() - cpu_start;
                #[cfg(not(unix))]
                let cpu = wall;
                (wall, cpu)
            })
            .collect();
        // The quickest try: the machine is shared, so a try can only take longer.
        let us = tries.iter().map(|t| t.0).min().unwrap().as_micros();
        assert!((2_000..=3_000).contains(&us), "10 x 200 us took {us} us");
        // The calibrated iterations run whole whatever the preemption (only the top-up to the
        // asked time shrinks when the thread is preempted), so every try burns nearly the
        // asked CPU; the most any try burnt is held against 75% of it.
        let cpu = tries.iter().map(|t| t.1).max().unwrap().as_micros();
        assert!(
            cpu >= 1_500,
            "10 x 200 us of work burnt at most {cpu} us of this thread's CPU"
        );
    }

    #[test]
    fn block_sleeps_at_least_the_asked_time() {
        let c = Cost::new(0, 500);
        let start = Instant::now();
        c.charge(4);
        assert!(start.elapsed() >= Duration::from_micros(2000));
    }
}
