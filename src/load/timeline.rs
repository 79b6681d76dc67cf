//! The shared timeline of a run and the thread that follows it: the go time, the warm-up, the
//! measured window and its close, the same in every thread and every client process. The
//! calling thread sleeps through each phase in short steps ([`watch_until`]), telling its
//! caller of the window's edges ([`Edge`]) and, twice a second, how the run is going
//! ([`Tick`]), from the workers' running totals ([`Live`]).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::LoadConfig;

/// What the caller of [`run_load`] hears about while the load runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Edge {
    /// The measured window opens.
    WindowStart,
    /// The measured window closes.
    WindowEnd,
    /// Twice a second, for a live progress line.
    Tick(Tick),
}

/// How the run is going.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tick {
    /// Still warming up (the figures below are then zero).
    pub warming_up: bool,
    /// Time into the current phase, and the phase's length.
    pub elapsed: Duration,
    pub length: Duration,
    /// Answers per second since the last tick.
    pub rps: f64,
    /// Answers and errors since the window opened.
    pub requests: u64,
    pub errors: u64,
    /// p99 latency (µs) of the last whole interval of the time series, when one has ended.
    pub p99_us: Option<u64>,
}

/// How often [`Edge::Tick`] comes.
const TICK: Duration = Duration::from_millis(500);

/// A worker's running totals, read by the calling thread for the progress line.
#[derive(Default)]
pub(super) struct Live {
    pub(super) requests: std::sync::atomic::AtomicU64,
    pub(super) errors: std::sync::atomic::AtomicU64,
    /// The last finished interval of the time series: its index and histogram.
    pub(super) last_interval: std::sync::Mutex<Option<(usize, Histogram<u64>)>>,
}

/// The shared timeline, fixed once every connection is established.
#[derive(Clone, Copy, Debug)]
pub(super) struct Timeline {
    /// The go signal: the warm-up starts, and the open loop's first request is due.
    pub(super) start: Instant,
    pub(super) window_start: Instant,
    pub(super) end: Instant,
}

/// The run's timeline from its go time.
pub(super) fn timeline(start: Instant, config: &LoadConfig) -> Timeline {
    let window_start = start + config.shape.warmup;
    Timeline {
        start,
        window_start,
        end: window_start + config.shape.duration,
    }
}

/// Sleeps through the phase from `from` to `deadline` in short steps, ticking twice a second
/// (with the workers' totals when `lives` are given: the measured window); `true` when
/// `stopped` said so first.
pub(super) fn watch_until(
    from: Instant,
    deadline: Instant,
    stopped: &dyn Fn() -> bool,
    lives: Option<&[Arc<Live>]>,
    on_edge: &mut dyn FnMut(Edge),
) -> bool {
    let length = deadline.saturating_duration_since(from);
    let mut next_tick = from + TICK;
    let (mut last_at, mut last_requests) = (from, 0);
    let mut p99_us = None;
    let mut p99_slot = None;
    loop {
        if stopped() {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        if now >= next_tick {
            next_tick += TICK;
            let mut tick = Tick {
                warming_up: lives.is_none(),
                elapsed: now - from,
                length,
                rps: 0.0,
                requests: 0,
                errors: 0,
                p99_us,
            };
            if let Some(lives) = lives {
                let sum = |f: fn(&Live) -> u64| lives.iter().map(|l| f(l)).sum::<u64>();
                tick.requests = sum(|l| l.requests.load(Ordering::Relaxed));
                tick.errors = sum(|l| l.errors.load(Ordering::Relaxed));
                tick.rps = (tick.requests - last_requests) as f64
                    / now.duration_since(last_at).as_secs_f64().max(1e-9);
                (last_at, last_requests) = (now, tick.requests);
                // The latest interval any worker finished, merged over the workers that did.
                let mut merged: Option<(usize, Histogram<u64>)> = None;
                for live in lives {
                    let Ok(last) = live.last_interval.lock() else {
                        continue;
                    };
                    if let Some((slot, h)) = last.as_ref() {
                        match merged.as_mut() {
                            Some((s, m)) if s == slot => {
                                let _ = m.add(h);
                            }
                            Some((s, _)) if *s > *slot => {}
                            _ => merged = Some((*slot, h.clone())),
                        }
                    }
                }
                if let Some((slot, h)) = merged.filter(|(slot, _)| Some(*slot) >= p99_slot) {
                    p99_slot = Some(slot);
                    p99_us = (!h.is_empty()).then(|| h.value_at_quantile(0.99));
                    tick.p99_us = p99_us;
                }
            }
            on_edge(Edge::Tick(tick));
        }
        let wake = deadline.min(next_tick);
        std::thread::sleep((wake - now).min(Duration::from_millis(20)));
    }
}
