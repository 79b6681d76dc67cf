//! A client thread's tally ([`Part`]), and the merge of every tally into one outcome.
//!
//! Tallies are added ([`combine`]: exact, in any order) wherever they were made: the threads of
//! a process into its segment's tally, the segments of a run (client processes, or hosts
//! through `bench merge`) into the run's. A segment sends its tally as it is (`wire.rs`:
//! histograms in HdrHistogram's V2 form), and only the whole run's tally is summarised
//! ([`finish`]): nothing is summarised twice, and the requests older than every answer
//! (`stalled`) are found over the whole run.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;

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

impl Part {
    /// Adds `other`'s tally to this one: histograms added (exact), counts and errors summed,
    /// intervals added slot by slot (every tally's slot `k` is the same stretch of the shared
    /// timeline), the first error text of each kind kept from whichever tally had it first.
    pub(super) fn absorb(&mut self, other: Part) {
        // Every histogram has the same bounds, so adding cannot fail.
        let _ = self.histogram.add(&other.histogram);
        if let (Some(uncorrected), Some(pacing)) = (&other.uncorrected, &other.pacing) {
            let _ = self
                .uncorrected
                .get_or_insert_with(new_histogram)
                .add(uncorrected);
            let _ = self.pacing.get_or_insert_with(new_histogram).add(pacing);
        }
        for (kind, n) in other.errors {
            *self.errors.entry(kind).or_insert(0) += n;
        }
        for (kind, n) in other.warmup_errors {
            *self.warmup_errors.entry(kind).or_insert(0) += n;
        }
        for (kind, text) in other.first_errors {
            self.first_errors.entry(kind).or_insert(text);
        }
        for (slot, (h, errs)) in other.intervals.into_iter().enumerate() {
            if self.intervals.len() <= slot {
                self.intervals
                    .resize_with(slot + 1, || (new_interval_histogram(), 0));
            }
            let _ = self.intervals[slot].0.add(&h);
            self.intervals[slot].1 += errs;
        }
        let _ = self.unfinished.add(&other.unfinished);
        self.requests += other.requests;
        self.bytes += other.bytes;
        self.unsent += other.unsent;
        self.sent += other.sent;
        self.starved += other.starved;
        self.connected += other.connected;
    }
}

/// Every tally added into one ([`Part::absorb`]): the threads of a process, or the segments of
/// a run. Adding is exact and in any order gives the same tally, so a run merged from its
/// segments is the run one process would have tallied.
pub(super) fn combine(parts: impl IntoIterator<Item = Part>) -> Part {
    let mut all = Part::new();
    for part in parts {
        all.absorb(part);
    }
    all
}

/// The outcome of a run from its whole tally.
///
/// Unanswered requests older than the slowest answered one (`stalled`) go into the histogram at
/// their age, a lower bound of their latency: without them a server that never answers some
/// connections would show only its fast answers to the others. Younger ones say nothing the
/// answered requests do not, and would only drag the low percentiles down (in a closed loop
/// every connection has one in flight when the window closes), so they are only counted. This
/// is done once, on the whole run's tally: never per thread or per segment.
pub(super) fn finish(
    part: Part,
    window: Duration,
    client: ClientCost,
    interrupted: bool,
    interval: Duration,
) -> LoadOutcome {
    let Part {
        mut histogram,
        intervals,
        requests,
        bytes,
        errors,
        warmup_errors,
        first_errors,
        unfinished,
        unsent,
        uncorrected,
        pacing,
        sent,
        starved,
        connected,
    } = part;
    let named = |m: BTreeMap<&'static str, u64>| -> BTreeMap<String, u64> {
        m.into_iter().map(|(k, n)| (k.to_string(), n)).collect()
    };
    let open_loop = match (uncorrected, pacing) {
        (Some(uncorrected), Some(pacing)) => Some(OpenLoop {
            uncorrected,
            pacing,
            sent,
            unsent,
        }),
        _ => None,
    };
    let stalled = add_stalled(&mut histogram, &unfinished);
    LoadOutcome {
        histogram,
        requests,
        bytes,
        errors: named(errors),
        warmup_errors: named(warmup_errors),
        first_errors: first_errors
            .into_iter()
            .map(|(k, text)| (k.to_string(), text))
            .collect(),
        timeseries: timeseries(intervals, interval, window),
        window,
        client,
        unfinished: unfinished.len(),
        stalled,
        open_loop,
        starved_connections: starved,
        connected,
        interrupted,
        client_syscalls: None,
        threads: 0,
        segment: None,
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
