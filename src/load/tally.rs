//! How a client thread records what it measured into its tally ([`Part`](super::part::Part)):
//! each answer's latency inside the measured window (overall, per interval of the time series,
//! and in the open loop from the send too), and each error by kind, in the window or before it.

use std::time::{Duration, Instant};

use super::exchange::Progress;
use super::part::kind;
use super::worker::Worker;
use crate::metrics::histogram::{new_interval_histogram, record};

/// The worker's recording steps.
impl Worker {
    /// Records the answers `progress` took (inside the window only) and counts the bad ones.
    pub(super) fn complete(&mut self, i: usize, now: Instant, progress: &Progress) {
        for _ in 0..progress.bad_status {
            self.count_error(kind::STATUS, now);
        }
        for _ in 0..progress.bad_body {
            self.count_error(kind::BODY, now);
        }
        let good = progress.answers - progress.bad_status - progress.bad_body;
        if good == 0 {
            return;
        }
        // Warm-up, or answers that arrived in the same poll batch after the window closed.
        let Some(window_start) = self.window_start.filter(|_| self.in_window(now)) else {
            return;
        };
        let c = &mut self.conns[i];
        let us = now.saturating_duration_since(c.due).as_micros() as u64;
        let sent_us = now.saturating_duration_since(c.started).as_micros() as u64;
        c.completed_in_window += good as u64;
        self.part.requests += good as u64;
        // This worker's own counter: a plain store, no read-modify-write per answer.
        self.live
            .requests
            .store(self.part.requests, std::sync::atomic::Ordering::Relaxed);
        self.part.bytes += progress.bytes;
        let slot = self.interval_slot(now, window_start);
        for _ in 0..good {
            record(&mut self.part.histogram, us);
            record(&mut self.part.intervals[slot].0, us);
        }
        if let Some(h) = self.part.uncorrected.as_mut() {
            for _ in 0..good {
                record(h, sent_us);
            }
        }
    }

    pub(super) fn interval_slot(&mut self, now: Instant, window_start: Instant) -> usize {
        let slot = (now.duration_since(window_start).as_nanos() / self.interval.as_nanos().max(1))
            as usize;
        if self.part.intervals.len() <= slot {
            // The intervals before this one are over: the last of them goes to the progress
            // line (once a second, one small histogram).
            if let (Some((done, _)), Ok(mut last)) =
                (self.part.intervals.last(), self.live.last_interval.lock())
            {
                *last = Some((self.part.intervals.len() - 1, done.clone()));
            }
            while self.part.intervals.len() <= slot {
                self.part.intervals.push((new_interval_histogram(), 0));
            }
        }
        slot
    }

    /// Counts an error in the window, or in the warm-up before it.
    pub(super) fn count_error(&mut self, kind: &'static str, now: Instant) {
        match self.window_start.filter(|&start| now >= start) {
            Some(start) => {
                *self.part.errors.entry(kind).or_insert(0) += 1;
                self.live
                    .errors
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                // An error noticed just after the close belongs to the last interval: errors
                // are never dropped, and the time series still sums to the total.
                let at = self
                    .window_end
                    .map_or(now, |end| now.min(end - Duration::from_nanos(1)));
                let slot = self.interval_slot(at, start);
                self.part.intervals[slot].1 += 1;
            }
            None => *self.part.warmup_errors.entry(kind).or_insert(0) += 1,
        }
    }

    /// Whether `t` falls in the measured window [start, end) (false before the timeline is
    /// known).
    #[inline]
    pub(super) fn in_window(&self, t: Instant) -> bool {
        self.window_start.is_some_and(|start| t >= start)
            && self.window_end.is_some_and(|end| t < end)
    }
}
