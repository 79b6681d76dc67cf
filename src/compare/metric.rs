//! The figures `bench compare` gates: each with its key, its name, which way is better, how it
//! is read from a run and how it is shown, and its default threshold (measured: DESIGN.md,
//! "Comparing").

use crate::output::format::{fmt_rate, fmt_us};
use crate::result::Run;

/// A figure compared.
#[derive(Clone, Copy, Debug)]
pub struct Metric {
    /// The key in the JSON verdict.
    pub key: &'static str,
    /// How a person names it.
    pub name: &'static str,
    pub higher_is_better: bool,
    /// A count per request (system calls, context switches): nearly deterministic, gated
    /// tightly, and compared as it is under `--normalize-to`.
    pub count: bool,
    /// The smallest absolute change that can count (for counts per request).
    pub floor: f64,
    /// The default threshold: the relative change the metric must pass to count. Counts are
    /// tight; times and rates are one step above the smallest candidate with at most 1% false
    /// alarms at 3, 5 and 10 repeats, raw and normalized, on the A/A noise of a shared 2-CPU
    /// machine (tests/calibration.rs; DESIGN.md, "Comparing").
    pub threshold: f64,
    /// The figure in a run, if the run has it.
    pub value: fn(&Run) -> Option<f64>,
    /// How a figure is written.
    pub show: fn(f64) -> String,
}

impl Metric {
    pub(super) fn of(&self, run: &Run) -> Option<f64> {
        (self.value)(run).filter(|v| v.is_finite())
    }

    /// Throughput and latency: with a saturated load generator they describe the client, not
    /// the server, and are not gated. (The server's CPU and counts per request still are.)
    pub fn client_bound_when_saturated(&self) -> bool {
        !self.count && self.key != "cpu_us_per_request"
    }
}

/// A time or rate figure.
const fn timed(
    key: &'static str,
    name: &'static str,
    higher_is_better: bool,
    threshold: f64,
    value: fn(&Run) -> Option<f64>,
    show: fn(f64) -> String,
) -> Metric {
    Metric {
        key,
        name,
        higher_is_better,
        count: false,
        floor: 0.0,
        threshold,
        value,
        show,
    }
}

/// A count per request: 5%, and at least 0.05 per request.
const fn counted(key: &'static str, name: &'static str, value: fn(&Run) -> Option<f64>) -> Metric {
    Metric {
        key,
        name,
        higher_is_better: false,
        count: true,
        floor: 0.05,
        threshold: 0.05,
        value,
        show: |v| format!("{v:.3}"),
    }
}

/// The metrics, in the order they are shown.
pub const METRICS: &[Metric] = &[
    timed(
        "throughput_rps",
        "throughput",
        true,
        0.15,
        |r| Some(r.throughput_rps),
        fmt_rate,
    ),
    timed(
        "p50_us",
        "p50",
        false,
        0.10,
        |r| Some(r.latency_us.p50),
        fmt_us,
    ),
    timed(
        "p99_us",
        "p99",
        false,
        0.50,
        |r| Some(r.latency_us.p99),
        fmt_us,
    ),
    timed(
        "p999_us",
        "p99.9",
        false,
        1.00,
        |r| Some(r.latency_us.p999),
        fmt_us,
    ),
    timed(
        "cpu_us_per_request",
        "CPU µs/req",
        false,
        0.15,
        |r| r.server.as_ref()?.cpu_us_per_request,
        |v| format!("{v:.2}"),
    ),
    counted("syscalls_per_request", "syscalls/req", |r| {
        r.syscalls.as_ref()?.per_request
    }),
    counted("ctx_switches_per_request", "ctxsw/req", |r| {
        r.server.as_ref()?.ctx_switches_per_request
    }),
];

/// The short name `--threshold NAME=PCT` gives each metric.
pub fn short_name(key: &str) -> &'static str {
    match key {
        "throughput_rps" => "throughput",
        "p50_us" => "p50",
        "p99_us" => "p99",
        "p999_us" => "p99.9",
        "cpu_us_per_request" => "cpu",
        "syscalls_per_request" => "syscalls",
        "ctx_switches_per_request" => "ctxsw",
        _ => "",
    }
}

/// The threshold of a count that varies between repeats (io_uring's system calls per request):
/// gated like a time. Measured: DESIGN.md, "Comparing".
pub const VARYING_COUNT_THRESHOLD: f64 = 0.50;
