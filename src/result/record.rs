//! One measured run of one model as the result file records it ([`Run`]), with what an open
//! loop and an SLO search add to it, and the server's costs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::syscalls::SyscallFigures;
use super::warning::Warning;
use crate::load::{ClientCost, Interval, SegmentRecord};
use crate::metrics::histogram::LatencySummary;
use crate::models::UringSetup;

/// One measured run of one model.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Run {
    /// The model, or the name of an outside server (`bench run --server NAME=...`); null for
    /// `bench load` against an outside server.
    pub model: Option<String>,
    /// For an outside server of `bench run --server`: its command as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    pub workload: String,
    pub connections: usize,
    pub payload: usize,
    pub pipeline: usize,
    /// Open loop: the requested rate (requests per second over every connection); null for
    /// the closed loop.
    pub rate: Option<f64>,
    /// The model's parallelism (`--threads` after defaults, or fixed by the model); null when
    /// it depends on the connections (`blocking`: see `server.threads`).
    pub threads: Option<usize>,
    /// The readiness poller the model waited with (`epoll`, `poll`, `select`); null for a model
    /// that waits on none, and in files written before the option existed.
    #[serde(default)]
    pub poller: Option<String>,
    pub client_threads: usize,
    pub repeat_index: usize,
    /// In a sweep: the swept keys and this run's values, like {"connections": 100}.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub point: serde_json::Map<String, serde_json::Value>,
    /// Handler cost per request (`--work-us`, `--block-us`), as this run's server had it.
    #[serde(default)]
    pub work_us: u64,
    #[serde(default)]
    pub block_us: u64,
    pub server_cpus: Vec<usize>,
    pub client_cpus: Vec<usize>,
    /// The measured window's real length.
    pub duration_s: f64,
    pub warmup_s: f64,
    pub requests: u64,
    /// Errors from the window's opening on (any error makes `bench` exit 1).
    pub errors: u64,
    pub error_kinds: BTreeMap<String, u64>,
    /// Errors during the connect phase and warm-up: not in `errors`, but they also fail the run.
    pub warmup_errors: u64,
    pub warmup_error_kinds: BTreeMap<String, u64>,
    pub throughput_rps: f64,
    /// Answer bytes received per second, in MiB/s: echo, the payload echoed (one direction);
    /// HTTP, whole responses (head and body).
    pub throughput_mibps: f64,
    pub latency_us: LatencySummary,
    /// Open loop: latency from each request's send instead of its due time (what a load
    /// generator that ignores coordinated omission would report), answered requests only;
    /// `latency_us` is corrected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_uncorrected_us: Option<LatencySummary>,
    /// The merged latency histogram (µs), HdrHistogram V2 compressed, base64. Open loop: the
    /// corrected latencies.
    pub histogram: String,
    /// Open loop: the uncorrected latencies' histogram, in the same form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub histogram_uncorrected: Option<String>,
    /// Open loop: the rate asked for and the rate got, and how precisely the load generator
    /// kept its schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_loop: Option<OpenLoopFigures>,
    /// A probe of an SLO search (`--slo`): which, and whether it met the objectives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo_probe: Option<SloProbe>,
    pub timeseries: Vec<Interval>,
    /// The server's costs over the measured window; null when they could not be read (the
    /// server died, or an outside server).
    pub server: Option<ServerCosts>,
    pub client: ClientCost,
    /// The server's system calls over the window; null when not counted (see
    /// `syscalls_unavailable`).
    pub syscalls: Option<SyscallFigures>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syscalls_unavailable: Option<String>,
    pub connections_established: u64,
    /// Requests sent but unanswered when the window closed.
    pub unfinished_requests: u64,
    /// Those unanswered requests older than every answered one: recorded in `histogram` and
    /// `latency_us` at their age when the window closed, a lower bound of their latency. The
    /// histogram holds `requests + stalled_requests` values.
    pub stalled_requests: u64,
    /// Connections that completed no request in the window.
    pub starved_connections: u64,
    /// For `proactor-uring`: how its rings were set up (the flags the kernel accepted, the
    /// options, the buffer ring), from the server's ready line; absent for other models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io_uring: Option<UringSetup>,
    /// Why the run failed (the server died, it was interrupted); null when it did not.
    pub failure: Option<String>,
    pub warnings: Vec<Warning>,
    /// `bench load --segment I/N`: this segment's place, clock and whole tally, which `bench
    /// merge` adds to the other segments'; the figures above are this segment's alone (its
    /// connections, its share of the rate). Absent for a whole run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<SegmentRecord>,
}

/// What an open-loop run adds to a run.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct OpenLoopFigures {
    pub requested_rps: f64,
    /// Answers per second inside the window (the run's `throughput_rps`).
    pub achieved_rps: f64,
    /// Requests sent per second inside the window.
    pub sent_rps: f64,
    /// Requests due before the window closed that were never sent: their connection was still
    /// waiting for an earlier answer (the server fell behind). In `latency_us` at their age.
    pub unsent_requests: u64,
    /// How late requests went out on connections that were free when they fell due: the load
    /// generator's own timing error, µs (p50, p99, max); it is part of the corrected latency.
    pub pacing_error_us: PacingError,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PacingError {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
    /// Requests sent on a free connection (the ones measured here).
    pub samples: u64,
}

/// One probe of an SLO search.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SloProbe {
    /// The objectives, as given (`p99<=2ms`, ...).
    pub objectives: Vec<String>,
    /// 0 for the closed-loop probe that finds the ceiling, then 1, 2, ... in search order.
    pub index: usize,
    /// Whether this probe met every objective (always false for the closed-loop probe: it
    /// sets no rate, it only bounds the search).
    pub met: bool,
    /// Why it did not (an objective missed, errors, the rate not reached).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missed: Option<String>,
}

/// The result of one model's SLO search.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SloCapacity {
    pub model: String,
    pub repeat_index: usize,
    /// The swept values of the point it was searched at (sweeps only).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub point: serde_json::Map<String, serde_json::Value>,
    pub objectives: Vec<String>,
    /// The highest rate probed that met every objective; null when none did.
    pub capacity_rps: Option<f64>,
    /// The lowest rate probed that missed (the search's upper bracket); null when none did.
    pub missed_rps: Option<f64>,
    /// The closed-loop probe's throughput: the ceiling the search started under.
    pub closed_loop_rps: f64,
    /// Probes run (the closed-loop one included); their runs carry `slo_probe`.
    pub probes: usize,
    /// What limits the finding (a load generator that was saturated near the capacity).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<Warning>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ServerCosts {
    pub cpu_user_s: f64,
    pub cpu_sys_s: f64,
    pub cpu_us_per_request: Option<f64>,
    /// `None` where the platform keeps no per-process count (Windows).
    pub voluntary_ctx_switches: Option<u64>,
    pub involuntary_ctx_switches: Option<u64>,
    /// `None` when no request completed or the switches are not counted.
    pub ctx_switches_per_request: Option<f64>,
    pub peak_rss_bytes: u64,
    /// Live threads in the server process at the window's end, its main and signal threads
    /// included.
    pub threads: u64,
    /// For models with several event loops: the connections each had taken on by the
    /// window's end (how the kernel's hash or the acceptor spread them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections_per_loop: Option<Vec<u64>>,
}
