//! `bench run`: every requested model, one after another, each in a `bench serve` child pinned
//! to the server CPUs, measured by the in-process load generator pinned to the client CPUs.
//!
//! Per model and repeat: start the server and wait for its ready line; connect; warm up;
//! snapshot the server's counters as the window opens and closes; stop the server; record.
//! Repeats interleave models (A B C A B C) so that a slow drift of the machine spreads over
//! every model instead of landing on one. The result file is rewritten after every run, so an
//! interrupted or failed session keeps everything measured before it.

mod child;
mod counting;
mod measure;
#[cfg(target_os = "linux")]
mod outside;
mod plan;
mod server;
mod session;
mod slo;
mod subject;
mod summary;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::Context;

use crate::load::Shape;
use crate::metrics::syscalls::Accounting;
use crate::models::{Model, Poller, UringOptions};
pub use crate::result::measured::{to_run, RunIdentity};
use crate::result::{Env, ResultFile};
use crate::units::{CpuList, Slo};
use crate::{sys, Error};
use plan::scenario_of;
pub use plan::{client_processes, default_out, effective_poller, pin_self};
use session::Session;
use summary::print_summary;

pub use child::{exec_when_released, ServerProcess};
pub use subject::{OutsideServer, Subject};

/// Exit code after SIGINT or SIGTERM, as shells report a signal death (128 + SIGINT).
pub const EXIT_INTERRUPTED: i32 = 130;

/// Everything `bench run` was asked to do, validated.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub models: Vec<&'static Model>,
    /// `--server NAME=COMMAND`: outside servers, run after the models in each round.
    pub servers: Vec<OutsideServer>,
    /// The load: its workload, connections, lengths, payload (as given: HTTP sends none),
    /// pipeline, timeout, rate and interval.
    pub shape: Shape,
    pub client_threads: Option<usize>,
    /// `--client-processes` as given (`None`: as many as the open-file limit needs).
    pub client_processes: Option<usize>,
    /// `--slo`: search each model's capacity at these objectives.
    pub slo: Vec<Slo>,
    pub repeat: usize,
    pub threads: Option<usize>,
    pub server_cpus: Option<CpuList>,
    pub client_cpus: Option<CpuList>,
    pub work_us: u64,
    pub block_us: u64,
    /// `--poller` as given (validated: it applies to at least one model).
    pub poller: Option<Poller>,
    /// `--uring-*`, when any was given (validated: the run has a model that takes them).
    pub uring: Option<UringOptions>,
    /// `--idle-timeout` for every server (zero: none).
    pub idle_timeout: Duration,
    pub out: Option<PathBuf>,
    /// Write a report beside the result file at the end (`--no-report` turns it off).
    pub report: bool,
    /// The `--scenario` file the options came from, as given.
    pub scenario_file: Option<String>,
    /// How system calls are counted.
    pub accounting: Accounting,
    /// `--accounting` was given: counts that cannot be had are an error (exit 3).
    pub accounting_required: bool,
    pub quiet: bool,
}

impl RunOptions {
    /// What each round runs: the models, then the outside servers.
    pub fn subjects(&self) -> Vec<Subject<'_>> {
        let models = self.models.iter().map(|&m| Subject::Model(m));
        models
            .chain(self.servers.iter().map(Subject::Server))
            .collect()
    }
}

/// Blocks SIGINT and SIGTERM in every thread (on Windows: takes Ctrl-C) and raises the returned
/// flag when one arrives. Idempotent: the first call installs it, later calls get the same
/// flag.
pub fn stop_on_signals() -> anyhow::Result<&'static AtomicBool> {
    static STOP: OnceLock<AtomicBool> = OnceLock::new();
    if let Some(flag) = STOP.get() {
        return Ok(flag);
    }
    sys::capture_control().context("cannot take the stop signals")?;
    let flag = STOP.get_or_init(|| AtomicBool::new(false));
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || loop {
            match sys::wait_control() {
                Ok(sys::Control::Stop) => flag.store(true, Ordering::Release),
                Ok(sys::Control::Snapshot) => {}
                Err(_) => return,
            }
        })
        .context("cannot start the signal thread")?;
    Ok(flag)
}

/// One point of a sweep: the swept keys' values, and the options they make.
#[derive(Clone, Debug)]
pub struct PlanPoint {
    pub values: serde_json::Map<String, serde_json::Value>,
    pub opts: RunOptions,
}

/// What `bench run` was asked to do: one point, or a scenario file's sweep.
#[derive(Clone, Debug)]
pub struct Plan {
    pub points: Vec<PlanPoint>,
    /// The sweep as the scenario file wrote it.
    pub matrix: Option<serde_json::Map<String, serde_json::Value>>,
    /// The scenario file's expectations, carried into the result for the report to judge.
    pub expect: Vec<crate::result::Expectation>,
}

/// Runs `bench run` with one set of options; returns the exit code.
pub fn run(opts: &RunOptions) -> anyhow::Result<i32> {
    run_plan(&Plan {
        points: vec![PlanPoint {
            values: serde_json::Map::new(),
            opts: opts.clone(),
        }],
        matrix: None,
        expect: Vec::new(),
    })
}

/// Runs every point of `plan` (for each point, `--repeat` rounds of every model, interleaved),
/// into one result file; returns the exit code.
pub fn run_plan(plan: &Plan) -> anyhow::Result<i32> {
    let Some(first) = plan.points.first().map(|p| &p.opts) else {
        anyhow::bail!(Error::Usage("the scenario has no point to run".into()));
    };
    let (places, reasons) = plan::places(plan)?;
    if !first.quiet {
        for why in &reasons {
            crate::errln!("note: {why}");
        }
    }
    let stop = stop_on_signals()?;
    let counting_gap = counting::prepare(plan);
    let out = first.out.clone().unwrap_or_else(default_out);
    ResultFile::check_writable(&out)?;
    let env = Env::capture();
    let common_warnings = plan::common_warnings(&places, &env);
    let mut scenario = scenario_of(first, &places[0]);
    scenario.matrix = plan.matrix.clone();
    scenario.expect = plan.expect.clone();
    let mut session = Session::new(
        ResultFile::new(scenario, env),
        out,
        common_warnings,
        stop,
        !first.quiet && std::io::stdout().is_terminal(),
    );
    let fatal = session.run(plan, &places)?;
    print_summary(
        plan,
        &session.result,
        &session.common_warnings,
        counting_gap.as_deref(),
    );
    session.finish(first.report);
    if let Some(e) = fatal {
        return Err(e);
    }
    if stop.load(Ordering::Acquire) {
        crate::errln!("interrupted: the server was stopped; runs finished before it are kept");
        return Ok(EXIT_INTERRUPTED);
    }
    Ok(session.code)
}
