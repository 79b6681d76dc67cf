//! The result file: the JSON contract every command shares, schema version 1
//! (schema/result.schema.json). `bench run` and `bench load` write it through [`io`], `bench
//! report` and `bench compare` read it through [`load`]; nothing else reads or writes it.
//!
//! Field names are a contract that CI gates and outside scripts rely on (README, "Results"):
//! fields may be added, never renamed or removed without a new `schema_version`. A file is
//! written atomically (a temporary file in the same folder, then a rename), so a reader never
//! sees half a file and an interrupted write never destroys an earlier result.
//!
//! - this file: the file as a whole ([`ResultFile`]) and the options that shaped it
//!   ([`Scenario`]);
//! - [`record`]: one measured run ([`Run`]) and the SLO search's findings;
//! - [`syscalls`]: the system-call figures of a run (declared in `metrics`, beside the
//!   counters, so that the load generator's outcome carries its own typed);
//! - [`warning`]: a run's warnings, typed, written as their text;
//! - [`measured`]: a run made from the load generator's outcome and the server's counters;
//! - [`expect`]: a claim scenario's expectations, carried for the report to judge;
//! - [`segments`]: `bench merge`, one run from its segments' files;
//! - [`env`]: the machine and the tool that measured;
//! - [`io`]: reading a file back, and the one atomic writer.

pub mod env;
pub mod expect;
pub mod io;
pub mod measured;
pub mod record;
pub mod segments;
pub mod warning;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::load::Shape;
use crate::protocol::Workload;

/// The system-call figures of a run, typed (declared with the counters, since the load
/// generator's own figures travel in its outcome too).
pub use crate::metrics::syscall_figures::{self as syscalls, SyscallFigures};
use crate::models::UringOptions;
pub use env::{Env, Tool};
pub use expect::{Bound, Expectation, Metric};
pub use io::{load, write_atomic};
pub use record::{OpenLoopFigures, PacingError, Run, ServerCosts, SloCapacity, SloProbe};

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
    /// The models run, then the outside servers' names.
    pub models: Vec<String>,
    /// `bench run --server NAME=COMMAND`: each outside server's command as given.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub servers: BTreeMap<String, String>,
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
    /// `bench load --start-at`: the common start of the run's segments (RFC 3339, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_at: Option<String>,
    /// `bench merge`: the run was merged from this many segments' files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segments: Option<usize>,
    /// `--slo`: the objectives searched for; absent without.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slo: Vec<String>,
    /// The scenario file's `[[expect]]`: its claim as checks over its own figures, judged by
    /// the report; absent when it has none (and in files written before they existed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expect: Vec<Expectation>,
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

impl Scenario {
    /// A scenario of `command` with the load's `shape` and `client_threads`, and nothing else
    /// yet: no models, target, server, CPUs or handler cost, one repeat, no counting.
    pub fn of_shape(command: &str, shape: &Shape, client_threads: usize) -> Scenario {
        Scenario {
            command: command.into(),
            models: Vec::new(),
            servers: BTreeMap::new(),
            target: None,
            workload: shape.workload.name().into(),
            connections: shape.connections,
            client_threads,
            // HTTP sends no echo payload, whatever was given.
            payload: match shape.workload {
                Workload::Http => 0,
                _ => shape.payload,
            },
            pipeline: shape.pipeline,
            timeout_s: shape.timeout.map(|t| t.as_secs_f64()),
            rate: shape.rate,
            interval_s: shape.interval.as_secs_f64(),
            duration_s: shape.duration.as_secs_f64(),
            warmup_s: shape.warmup.as_secs_f64(),
            repeat: 1,
            server_threads: None,
            poller: None,
            server_cpus: Vec::new(),
            client_cpus: Vec::new(),
            work_us: 0,
            block_us: 0,
            accounting: "off".into(),
            uring_options: None,
            idle_timeout_s: None,
            file: None,
            matrix: None,
            start_at: None,
            segments: None,
            slo: Vec::new(),
            expect: Vec::new(),
        }
    }
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
}
