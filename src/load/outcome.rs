//! What a load run measured ([`LoadOutcome`]) and the figures it carries into the result
//! file: the time series ([`Interval`]), the client's own cost ([`ClientCost`]) and, with
//! several client processes, each one's part ([`ProcessFigures`]).

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::part::OpenLoop;
use crate::metrics::histogram::LatencySummary;
use crate::metrics::syscall_figures::SyscallFigures;
use crate::metrics::syscalls::SyscallCounts;

/// Above this share of its CPUs busy, the client was the bottleneck (DESIGN.md, "Is the client
/// the bottleneck?").
pub const SATURATED_BUSY: f64 = 0.90;

/// A server that answered nothing for this long at the end of the measured window, while
/// requests waited for it, stalled: the run fails.
pub const STALL_AFTER: Duration = Duration::from_secs(1);

/// One interval of the time series.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Interval {
    /// The interval's end, seconds after the window opened (the last one ends with it).
    pub t_s: f64,
    pub requests: u64,
    pub errors: u64,
    /// Null for an interval in which no request completed.
    pub p50_us: Option<f64>,
    pub p99_us: Option<f64>,
}

/// The client's own cost over the measured window.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ClientCost {
    pub cpu_user_s: f64,
    pub cpu_sys_s: f64,
    /// CPU time over (window x CPUs the client threads could use).
    pub busy_fraction: f64,
    pub saturated: bool,
    /// The load threads' own system calls over the window (counted in the same pass as the
    /// server's); absent when not counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syscalls: Option<SyscallFigures>,
    /// The processes the load generator ran in (1: this one; more: that many child
    /// processes, whose CPU time the figures above include). 1 in files written before it
    /// existed.
    #[serde(default = "one")]
    pub processes: usize,
    /// With several processes: what each did, in order; absent with one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub per_process: Vec<ProcessFigures>,
}

fn one() -> usize {
    1
}

/// One client process of a split load generator.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ProcessFigures {
    pub pid: u32,
    pub connections: usize,
    pub threads: usize,
    /// Connections it established in the connect phase.
    pub connected: u64,
    /// Requests it completed in the window, and its errors (window and warm-up).
    pub requests: u64,
    pub errors: u64,
    pub warmup_errors: u64,
    /// Its own CPU time over the window.
    pub cpu_user_s: f64,
    pub cpu_sys_s: f64,
    /// Which segment it was (`I/N`); absent in files written before segments existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<String>,
    /// The host it ran on (`bench merge` of segments from several hosts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// How long after the common start it began (its connections were not up in time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub late_s: Option<f64>,
    /// Its CPU time over (its window x the CPUs its threads could use).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub busy_fraction: Option<f64>,
}

/// What a load run measured.
#[derive(Debug)]
pub struct LoadOutcome {
    pub histogram: Histogram<u64>,
    pub requests: u64,
    /// Bytes of the answers counted in `requests` (echo: payload; HTTP: whole responses).
    pub bytes: u64,
    /// Errors from the window's opening on, by kind.
    pub errors: BTreeMap<String, u64>,
    /// Errors during the connect phase and warm-up, by kind.
    pub warmup_errors: BTreeMap<String, u64>,
    /// The OS's message for the first error of each kind (connect: "Too many open files"...).
    pub first_errors: BTreeMap<String, String>,
    pub timeseries: Vec<Interval>,
    /// The measured window's real length.
    pub window: Duration,
    pub client: ClientCost,
    /// Requests sent but not answered when the window closed.
    pub unfinished: u64,
    /// Those of them older than every answered request: in the histogram at their age then.
    pub stalled: u64,
    /// Connections that completed no request in the window.
    pub starved_connections: u64,
    /// Connections established in the connect phase.
    pub connected: u64,
    /// The run was cut short by a stop request (SIGINT, SIGTERM).
    pub interrupted: bool,
    /// With `count_syscalls`: the load threads' system calls over the window, or why there
    /// are none.
    pub client_syscalls: Option<Result<SyscallCounts, String>>,
    /// Open loop: what only it measures (`histogram` then holds the corrected latencies).
    pub open_loop: Option<OpenLoop>,
    /// Client threads that ran, over every client process.
    pub threads: usize,
    /// `--segment I/N`: what this segment measured, exactly, for `bench merge`.
    pub segment: Option<super::SegmentRecord>,
}

impl LoadOutcome {
    /// How long the server had been silent when the window closed, if it stalled: nothing
    /// answered (and no error) for at least [`STALL_AFTER`] while requests waited. Read from
    /// the time series, so a lower bound: the last answer lies somewhere in the last interval
    /// that had one.
    pub fn stalled_for(&self) -> Option<Duration> {
        if self.unfinished == 0 || self.interrupted {
            return None;
        }
        let window = self.window.as_secs_f64();
        let last_answer = self
            .timeseries
            .iter()
            .rev()
            .find(|i| i.requests > 0 || i.errors > 0)
            .map_or(0.0, |i| i.t_s);
        let silent = Duration::from_secs_f64((window - last_answer).max(0.0));
        (silent >= STALL_AFTER).then_some(silent)
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    pub fn throughput_rps(&self) -> f64 {
        self.requests as f64 / self.window.as_secs_f64().max(1e-9)
    }

    /// Answer bytes per second, in MiB/s.
    pub fn throughput_mibps(&self) -> f64 {
        self.bytes as f64 / self.window.as_secs_f64().max(1e-9) / (1024.0 * 1024.0)
    }

    pub fn latency(&self) -> LatencySummary {
        LatencySummary::of(&self.histogram)
    }
}

/// The client's cost from its CPU time over the window (user, system; every client process's
/// together) and the CPUs its threads could use.
pub(super) fn client_cost((user, sys): (f64, f64), window: Duration, cpus: usize) -> ClientCost {
    let capacity = window.as_secs_f64() * cpus as f64;
    let busy = if capacity > 0.0 {
        (user + sys) / capacity
    } else {
        0.0
    };
    ClientCost {
        cpu_user_s: (user * 1000.0).round() / 1000.0,
        cpu_sys_s: (sys * 1000.0).round() / 1000.0,
        busy_fraction: (busy * 1000.0).round() / 1000.0,
        saturated: busy > SATURATED_BUSY,
        syscalls: None,
        processes: 1,
        per_process: Vec::new(),
    }
}
