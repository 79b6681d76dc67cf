//! The result file: JSON wire types, schema version 1 (schema/result.schema.json).
//!
//! Field names are a contract that CI gates and outside scripts rely on (SPEC.md, "Results"):
//! fields may be added, never renamed or removed without a new `schema_version`. A file is
//! written atomically (a temporary file in the same folder, then a rename), so a reader never
//! sees half a file and an interrupted write never destroys an earlier result.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::env::{Env, Tool};
use crate::load::{ClientCost, Interval};
use crate::metrics::histogram::LatencySummary;
use crate::models::{UringOptions, UringSetup};
use crate::report::warning::Warning;

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ResultFile {
    pub schema_version: u32,
    pub tool: Tool,
    pub env: Env,
    pub scenario: Scenario,
    pub runs: Vec<Run>,
    /// `bench run --slo`: each model's capacity at the objectives.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slo: Vec<SloCapacity>,
}

/// Every option that shaped the run.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Scenario {
    /// `run` or `load`.
    pub command: String,
    pub models: Vec<String>,
    /// For `load`: the target address.
    pub target: Option<String>,
    pub workload: String,
    pub connections: usize,
    pub client_threads: usize,
    pub payload: usize,
    pub pipeline: usize,
    /// `--timeout` in seconds; null when not given (and in files written before it existed).
    #[serde(default)]
    pub timeout_s: Option<f64>,
    pub rate: Option<f64>,
    /// The time series' interval (`--interval`); absent in files written before it existed
    /// (then 1 s).
    #[serde(default = "one_second")]
    pub interval_s: f64,
    pub duration_s: f64,
    pub warmup_s: f64,
    pub repeat: usize,
    /// `--threads` as given (null: the number of server CPUs).
    pub server_threads: Option<usize>,
    /// The reactor's readiness poller (`--poller`, or the default `epoll`); null when no model
    /// of the run waits on a poller, and in files written before the option existed.
    #[serde(default)]
    pub poller: Option<String>,
    pub server_cpus: Vec<usize>,
    pub client_cpus: Vec<usize>,
    pub work_us: u64,
    pub block_us: u64,
    pub accounting: String,
    /// The `--uring-*` options given (`proactor-uring` only); absent when none was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uring_options: Option<UringOptions>,
    /// The servers' `--idle-timeout` in seconds; absent when they had none (`0`, `bench load`,
    /// and files written before the option existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout_s: Option<f64>,
    /// The `--scenario` file the options came from; absent when none was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The scenario file's sweep: each key and its values; the runs' `point` say which values
    /// they ran with (the fields above then hold the first point's). Absent without a sweep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matrix: Option<serde_json::Map<String, serde_json::Value>>,
    /// `--slo`: the objectives searched for; absent without.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slo: Vec<String>,
}

/// A swept value as a person writes it: `epoll`, `100`.
pub fn show_value(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A sweep point as `connections=100 poller=epoll`; empty for a run outside a sweep.
pub fn describe_point(point: &serde_json::Map<String, serde_json::Value>) -> String {
    point
        .iter()
        .map(|(k, v)| format!("{k}={}", show_value(v)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn one_second() -> f64 {
    1.0
}

/// One measured run of one model.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Run {
    /// Null for `bench load` against an outside server.
    pub model: Option<String>,
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
    pub syscalls: Option<serde_json::Value>,
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

impl ResultFile {
    pub fn new(scenario: Scenario, env: Env) -> Self {
        ResultFile {
            schema_version: SCHEMA_VERSION,
            tool: Tool::this(),
            env,
            scenario,
            runs: Vec::new(),
            slo: Vec::new(),
        }
    }

    /// Fails now, before anything is measured, when `path` cannot be written: creates its
    /// folder and a temporary file beside it, then removes the file.
    pub fn check_writable(path: &Path) -> anyhow::Result<()> {
        let tmp = temp_beside(path)?;
        std::fs::File::create(&tmp)
            .and_then(|_| std::fs::remove_file(&tmp))
            .map_err(|e| cannot_write(path, &e.into()))
    }

    /// Writes the file atomically: a temporary file beside it, synced, then renamed over it.
    pub fn write_atomic(&self, path: &Path) -> anyhow::Result<()> {
        let tmp = temp_beside(path)?;
        let write = || -> anyhow::Result<()> {
            let mut file = std::fs::File::create(&tmp)?;
            serde_json::to_writer_pretty(&mut file, self)?;
            file.write_all(b"\n")?;
            file.sync_all()?;
            std::fs::rename(&tmp, path)?;
            Ok(())
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            cannot_write(path, &e)
        })
    }
}

/// A temporary file name in `path`'s folder (created if missing), so the rename is atomic.
fn temp_beside(path: &Path) -> anyhow::Result<std::path::PathBuf> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| cannot_write(path, &e.into()))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "result.json".into());
    Ok(dir.join(format!(".{name}.{}.tmp", std::process::id())))
}

fn cannot_write(path: &Path, e: &anyhow::Error) -> anyhow::Error {
    crate::Error::Environment(format!(
        "cannot write the result file {}: {e:#} (pick another path with --out)",
        path.display()
    ))
    .into()
}
