//! The open loop's schedule (`--rate R`, wrk2's way): request `n` of the run is due at
//! `start + n/R`, dealt round robin over every connection of every thread, so connection `i` of
//! `C` has its requests due at `start + (k*C + i)/R`. A connection keeps one request in flight:
//! a free connection waits for its next due time (woken by an [`Alarm`](super::alarm::Alarm));
//! a connection still waiting for an answer when its next request falls due sends that one as
//! soon as the answer is in, and so catches up. At the close, the requests that fell due but
//! were never sent are recorded at their ages. This file holds the due times; the worker's
//! steps that follow them are `open_loop.rs`.

use std::time::{Duration, Instant};

/// Open loop: when each request is due.
#[derive(Clone, Copy, Debug)]
pub(super) struct Schedule {
    /// Requests per second over every connection of the run.
    pub rate: f64,
    /// Connections of the run, over every thread.
    pub connections: u64,
    /// The run-wide index of this worker's first connection.
    pub first: u64,
}

impl Schedule {
    /// When request `k` of this worker's connection `i` is due, after `origin`.
    pub(super) fn due(&self, origin: Instant, i: usize, k: u64) -> Instant {
        let n = k * self.connections + self.first + i as u64;
        origin + Duration::from_secs_f64(n as f64 / self.rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_times_deal_the_rate_round_robin_over_every_connection() {
        // 4 connections at 1000 req/s, two threads of two: request n of the run is due at
        // n ms, connection i of 4 takes n = k*4 + i.
        let origin = Instant::now();
        let second = Schedule {
            rate: 1000.0,
            connections: 4,
            first: 2,
        };
        let ms = |t: Instant| t.duration_since(origin).as_secs_f64() * 1e3;
        assert!((ms(second.due(origin, 0, 0)) - 2.0).abs() < 1e-6);
        assert!((ms(second.due(origin, 1, 0)) - 3.0).abs() < 1e-6);
        assert!((ms(second.due(origin, 0, 1)) - 6.0).abs() < 1e-6);
        assert!((ms(second.due(origin, 1, 250)) - 1003.0).abs() < 1e-6);
    }
}
