//! The handler's cost per request: `--work-us` (CPU) and `--block-us` (blocking).
//!
//! `work` is computation, not a sleep or a clock-polling loop: a loop calibrated once at start
//! to iterations per microsecond, so burning makes no system call (the syscall counts stay the
//! model's own) and a preempted thread does not finish its work early.

use std::hint::black_box;
use std::time::{Duration, Instant};

#[derive(Clone, Debug, Default)]
pub struct Cost {
    work_iters: u64,
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
                burn(self.work_iters);
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

    #[test]
    fn work_burns_about_the_asked_cpu_time() {
        let c = Cost::new(200, 0);
        // Best of several tries: the machine is shared, so a try can only take longer.
        let best = (0..10)
            .map(|_| {
                let start = Instant::now();
                c.charge(10);
                start.elapsed()
            })
            .min()
            .unwrap();
        let us = best.as_micros();
        assert!((1_400..=3_000).contains(&us), "10 x 200 us took {us} us");
    }

    #[test]
    fn block_sleeps_at_least_the_asked_time() {
        let c = Cost::new(0, 500);
        let start = Instant::now();
        c.charge(4);
        assert!(start.elapsed() >= Duration::from_micros(2000));
    }
}
