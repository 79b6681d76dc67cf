//! A client thread's tally ([`Part`]), and the merge of every tally into one outcome.
//!
//! Tallies are merged once, at the end, wherever they were made: the threads of this process
//! and the threads of every client process (`split.rs`) alike. A client process therefore
//! sends its threads' tallies as they are (`wire.rs`: histograms in HdrHistogram's V2 form),
//! and the merge
//! sees exactly what it would have seen had every thread run here: nothing is summarised
//! twice, and the requests older than every answer (`stalled`) are found over the whole run.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;

use super::timeline::Timeline;
use super::{ClientCost, Interval, LoadOutcome};
use crate::metrics::histogram::{new_histogram, new_interval_histogram, MAX_US};

/// Kinds of error, as they appear in `error_kinds`.
pub(super) mod kind {
    pub const CONNECT: &str = "connect";
    pub const CLOSED: &str = "closed";
    pub const RESET: &str = "reset";
    pub const IO: &str = "io";
    pub const MISMATCH: &str = "mismatch";
    pub const TIMEOUT: &str = "timeout";
    pub const STATUS: &str = "status";
    pub const PARSE: &str = "parse";
    pub const BODY: &str = "body";

    const ALL: [&str; 9] = [
        CONNECT, CLOSED, RESET, IO, MISMATCH, TIMEOUT, STATUS, PARSE, BODY,
    ];

    /// The kind named `name`, as the constant the tallies are keyed by.
    pub fn named(name: &str) -> Option<&'static str> {
        ALL.into_iter().find(|k| *k == name)
    }
}

/// A worker's tally, merged with the others' at the end.
pub(super) struct Part {
    pub(super) histogram: Histogram<u64>,
    pub(super) intervals: Vec<(Histogram<u64>, u64)>,
    pub(super) requests: u64,
    /// Bytes of the answers counted in `requests`.
    pub(super) bytes: u64,
    /// Errors from the window's opening on; `warmup_errors` before it (connect and warm-up).
    pub(super) errors: BTreeMap<&'static str, u64>,
    pub(super) warmup_errors: BTreeMap<&'static str, u64>,
    /// The first OS error message of each kind, to tell a user what actually failed.
    pub(super) first_errors: BTreeMap<&'static str, String>,
    /// Ages (µs) of the requests still unanswered when the loop stopped (open loop: from their
    /// due times, the ones due but never sent included); its count is how many there are.
    pub(super) unfinished: Histogram<u64>,
    /// Open loop: requests due before the close that were never sent.
    pub(super) unsent: u64,
    /// Open loop: latency from the send (answered requests only, as in wrk2's uncorrected
    /// histogram), and how late requests went out on free connections (µs).
    pub(super) uncorrected: Option<Histogram<u64>>,
    pub(super) pacing: Option<Histogram<u64>>,
    /// Open loop: requests sent inside the window.
    pub(super) sent: u64,
    pub(super) starved: u64,
    pub(super) connected: u64,
}

impl Part {
    pub(super) fn new() -> Part {
        Part {
            histogram: new_histogram(),
            intervals: Vec::new(),
            requests: 0,
            bytes: 0,
            errors: BTreeMap::new(),
            warmup_errors: BTreeMap::new(),
            first_errors: BTreeMap::new(),
            unfinished: new_histogram(),
            unsent: 0,
            uncorrected: None,
            pacing: None,
            sent: 0,
            starved: 0,
            connected: 0,
        }
    }
}

/// What only an open-loop run measures.
#[derive(Debug)]
pub struct OpenLoop {
    /// Latency from each request's send, not its due time.
    pub uncorrected: Histogram<u64>,
    /// How late requests went out on connections that were free when they fell due (µs): the
    /// load generator's own pacing error.
    pub pacing: Histogram<u64>,
    /// Requests sent inside the measured window.
    pub sent: u64,
    /// Requests due before the close that were never sent (their connection waited for the
    /// server the whole time).
    pub unsent: u64,
}

/// Merges the workers' tallies into one outcome.
///
/// Unanswered requests older than the slowest answered one (`stalled`) go into the histogram at
/// their age, a lower bound of their latency: without them a server that never answers some
/// connections would show only its fast answers to the others. Younger ones say nothing the
/// answered requests do not, and would only drag the low percentiles down (in a closed loop
/// every connection has one in flight when the window closes), so they are only counted.
pub(super) fn merge(
    parts: Vec<Part>,
    window: Duration,
    client: ClientCost,
    interrupted: bool,
    timeline: Timeline,
) -> LoadOutcome {
    let mut histogram = new_histogram();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    let mut warmup_errors: BTreeMap<String, u64> = BTreeMap::new();
    let mut first_errors: BTreeMap<String, String> = BTreeMap::new();
    let mut intervals: Vec<(Histogram<u64>, u64)> = Vec::new();
    let mut ages = new_histogram();
    let mut open: Option<OpenLoop> = None;
    let (mut requests, mut bytes, mut starved, mut connected) = (0, 0, 0, 0);
    for part in parts {
        // Both histograms have the same bounds, so adding cannot fail.
        let _ = histogram.add(&part.histogram);
        if let (Some(uncorrected), Some(pacing)) = (&part.uncorrected, &part.pacing) {
            let o = open.get_or_insert_with(|| OpenLoop {
                uncorrected: new_histogram(),
                pacing: new_histogram(),
                sent: 0,
                unsent: 0,
            });
            let _ = o.uncorrected.add(uncorrected);
            let _ = o.pacing.add(pacing);
            o.sent += part.sent;
            o.unsent += part.unsent;
        }
        for (kind, n) in part.errors {
            *errors.entry(kind.to_string()).or_insert(0) += n;
        }
        for (kind, n) in part.warmup_errors {
            *warmup_errors.entry(kind.to_string()).or_insert(0) += n;
        }
        for (kind, text) in part.first_errors {
            first_errors.entry(kind.to_string()).or_insert(text);
        }
        for (slot, (h, errs)) in part.intervals.into_iter().enumerate() {
            if intervals.len() <= slot {
                intervals.resize_with(slot + 1, || (new_interval_histogram(), 0));
            }
            let _ = intervals[slot].0.add(&h);
            intervals[slot].1 += errs;
        }
        let _ = ages.add(&part.unfinished);
        requests += part.requests;
        bytes += part.bytes;
        starved += part.starved;
        connected += part.connected;
    }
    let stalled = add_stalled(&mut histogram, &ages);
    let timeseries = timeseries(intervals, timeline.interval, window);
    LoadOutcome {
        histogram,
        requests,
        bytes,
        errors,
        warmup_errors,
        first_errors,
        timeseries,
        window,
        client,
        unfinished: ages.len(),
        stalled,
        open_loop: open,
        starved_connections: starved,
        connected,
        interrupted,
        client_syscalls: None,
        threads: 0,
    }
}

/// Adds to `histogram` the unanswered requests older than its slowest answer, at their ages;
/// returns how many there were.
fn add_stalled(histogram: &mut Histogram<u64>, ages: &Histogram<u64>) -> u64 {
    let slowest = if histogram.is_empty() {
        0
    } else {
        histogram.max()
    };
    let mut stalled = 0;
    for v in ages.iter_recorded() {
        let age = ages.highest_equivalent(v.value_iterated_to());
        if age > slowest {
            let _ = histogram.record_n(age.min(MAX_US), v.count_at_value());
            stalled += v.count_at_value();
        }
    }
    stalled
}

/// Every interval of the window, the empty ones too (a stall must show as a gap with no
/// requests, not vanish); the last one ends where the window did.
fn timeseries(
    mut intervals: Vec<(Histogram<u64>, u64)>,
    interval: Duration,
    window: Duration,
) -> Vec<Interval> {
    let step = interval.as_secs_f64();
    let window_s = window.as_secs_f64();
    let slots = intervals.len().max((window_s / step).ceil() as usize);
    intervals.resize_with(slots, || (new_interval_histogram(), 0));
    intervals
        .iter()
        .enumerate()
        .map(|(slot, (h, errs))| {
            let quantile = |q| (!h.is_empty()).then(|| h.value_at_quantile(q) as f64);
            Interval {
                t_s: (((slot + 1) as f64 * step).min(window_s) * 1000.0).round() / 1000.0,
                requests: h.len(),
                errors: *errs,
                p50_us: quantile(0.5),
                p99_us: quantile(0.99),
            }
        })
        .collect()
}
