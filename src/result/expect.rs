//! A claim scenario's expectations: what its header comment claims, written as checks over its
//! own figures (a ratio of two models' medians of one metric at one sweep point, with a bound),
//! so that `bench report` can judge a result file on its own. They come from the scenario
//! file's `[[expect]]` tables (`cli::scenario`) and travel in the result's `scenario.expect`;
//! files written before they existed have none. The report's verdicts are in
//! `report::verdict`.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::Run;

/// One expectation: `ratio[0]`'s `metric` over `ratio[1]`'s at the point `where`, bounded by
/// exactly one of `at_least`, `at_most` or `within`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Expectation {
    /// The claim in words, as the scenario file says it.
    pub says: String,
    /// The sweep point: matrix keys (with `_`) and their values; empty for every run of a
    /// scenario without a matrix.
    #[serde(
        rename = "where",
        default,
        skip_serializing_if = "serde_json::Map::is_empty"
    )]
    pub at: serde_json::Map<String, serde_json::Value>,
    pub metric: Metric,
    /// The two models compared: the first's figure over the second's.
    pub ratio: [String; 2],
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_least: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_most: Option<f64>,
    /// A tie: |ratio - 1| within this or the measured spread, whichever is larger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within: Option<f64>,
}

/// The bound of an expectation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Bound {
    AtLeast(f64),
    AtMost(f64),
    Within(f64),
}

impl Expectation {
    /// Its bound; `None` when it has none or several (the scenario parser refuses both).
    pub fn bound(&self) -> Option<Bound> {
        match (self.at_least, self.at_most, self.within) {
            (Some(x), None, None) => Some(Bound::AtLeast(x)),
            (None, Some(x), None) => Some(Bound::AtMost(x)),
            (None, None, Some(x)) => Some(Bound::Within(x)),
            _ => None,
        }
    }
}

/// A figure of a run an expectation can compare: the same figures the report's table shows.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// Requests per second.
    Throughput,
    /// Latency percentiles, µs.
    P50,
    P99,
    P999,
    /// Server CPU µs per request.
    Cpu,
    /// Server system calls per request.
    Syscalls,
    /// Server context switches per request.
    Ctxsw,
    /// Server peak resident memory, bytes.
    Rss,
    /// Live server threads at the window's end.
    Threads,
    /// Connections that completed at least one request in the window (the one metric a model
    /// that left connections unserved is judged on).
    Served,
}

impl Metric {
    pub const ALL: [Metric; 10] = [
        Metric::Throughput,
        Metric::P50,
        Metric::P99,
        Metric::P999,
        Metric::Cpu,
        Metric::Syscalls,
        Metric::Ctxsw,
        Metric::Rss,
        Metric::Threads,
        Metric::Served,
    ];

    /// Its name in a scenario file and the result file.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Throughput => "throughput",
            Metric::P50 => "p50",
            Metric::P99 => "p99",
            Metric::P999 => "p999",
            Metric::Cpu => "cpu",
            Metric::Syscalls => "syscalls",
            Metric::Ctxsw => "ctxsw",
            Metric::Rss => "rss",
            Metric::Threads => "threads",
            Metric::Served => "served",
        }
    }

    pub fn parse(name: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Whether more is better (throughput only).
    pub fn higher_is_better(self) -> bool {
        self == Metric::Throughput
    }

    /// The run's figure; `None` when the run lacks it (no server costs, not counted).
    pub fn of(self, run: &Run) -> Option<f64> {
        let server = run.server.as_ref();
        match self {
            Metric::Throughput => Some(run.throughput_rps),
            Metric::P50 => Some(run.latency_us.p50),
            Metric::P99 => Some(run.latency_us.p99),
            Metric::P999 => Some(run.latency_us.p999),
            Metric::Cpu => server?.cpu_us_per_request,
            Metric::Syscalls => run.syscalls.as_ref()?.per_request,
            Metric::Ctxsw => server?.ctx_switches_per_request,
            Metric::Rss => server.map(|s| s.peak_rss_bytes as f64),
            Metric::Threads => server.map(|s| s.threads as f64),
            Metric::Served => Some(
                run.connections
                    .saturating_sub(run.starved_connections as usize) as f64,
            ),
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
