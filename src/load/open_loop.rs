//! The worker's open-loop steps (`--rate`): releasing the free connections whose due time has
//! come, parking a free connection until its next due time, and recording at the close the
//! requests that fell due but were never sent. The due times themselves are `schedule.rs`.

use std::cmp::Reverse;
use std::time::Instant;

use super::conn::State;
use super::worker::Worker;
use crate::metrics::histogram::{record, MAX_US};
use crate::sys::SHORT_READ_DRAINS;

/// At most this many distinct ages are recorded for the requests a connection left unsent at
/// the close (a dead server under `--rate` leaves rate x duration of them); the rest are
/// recorded with counts, so the histogram's shape holds and the loop stays short.
const UNSENT_STEPS: u64 = 100_000;

/// The worker's open-loop steps.
impl Worker {
    /// Open loop: records the requests connection `i` had due before `stopped` but never sent,
    /// at their ages then (from their due times).
    pub(super) fn record_unsent(&mut self, i: usize, stopped: Instant) {
        let Some(schedule) = self.schedule else {
            return;
        };
        let first = self.conns[i].issued;
        let due = |k: u64| schedule.due(self.origin, i, k);
        if due(first) >= stopped {
            return;
        }
        // Requests due before `stopped`: k from `first` while due(k) < stopped.
        let per_conn = schedule.connections as f64 / schedule.rate;
        let span = stopped.duration_since(due(first)).as_secs_f64();
        let count = (span / per_conn).floor() as u64 + 1;
        let step = count.div_ceil(UNSENT_STEPS).max(1);
        let mut k = 0;
        while k < count {
            let n = step.min(count - k);
            let age = stopped
                .saturating_duration_since(due(first + k))
                .as_micros() as u64;
            let _ = self.part.unfinished.record_n(age.clamp(1, MAX_US), n);
            k += n;
        }
        self.part.unsent += count;
    }

    /// Open loop: starts every free connection whose due time has come (counting how late it
    /// went out); returns the time after.
    pub(super) fn release_due(&mut self) -> Instant {
        let mut now = Instant::now();
        while let Some(&Reverse((at, i))) = self.waiting.peek() {
            if at > now {
                break;
            }
            self.waiting.pop();
            let c = &mut self.conns[i];
            // An entry left by a connection that failed or was started another way since.
            if c.scheduled != Some(at) || c.in_flight || !matches!(c.state, State::Active) {
                continue;
            }
            c.scheduled = None;
            if self.in_window(at) {
                if let Some(h) = self.part.pacing.as_mut() {
                    record(h, now.duration_since(at).as_micros() as u64);
                }
            }
            self.start_batch(i, now, at);
            self.drive(i, !SHORT_READ_DRAINS, false);
            now = Instant::now();
        }
        now
    }

    /// When connection `i`'s next batch is due: `None` in the closed loop (at once).
    #[inline]
    pub(super) fn next_due(&self, i: usize) -> Option<Instant> {
        let schedule = self.schedule?;
        Some(schedule.due(self.origin, i, self.conns[i].issued))
    }

    /// Open loop: connection `i` is free until `due`.
    #[inline]
    pub(super) fn wait_until(&mut self, i: usize, due: Instant) {
        self.conns[i].in_flight = false;
        self.conns[i].scheduled = Some(due);
        self.waiting.push(Reverse((due, i)));
    }
}
