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
mod slo;
mod warnings;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::Context;

use crate::cli::Accounting;
use crate::config::{CpuList, Slo};
use crate::load::HttpRequest;
use crate::load::{self, Edge, LoadConfig, LoadOutcome, Shape};
use crate::metrics::histogram::encode;
use crate::metrics::histogram::LatencySummary;
use crate::metrics::process::ProcessCounters;
use crate::models::{Model, Poller, UringListener, UringOptions, UringSetup, SERVER_OWN_FDS};
use crate::protocol::{http, Workload};
use crate::report::document;
use crate::report::env::Env;
use crate::report::progress::ProgressLine;
use crate::report::result::{
    describe_point, OpenLoopFigures, PacingError, ResultFile, Run, Scenario, ServerCosts,
    SloCapacity,
};
use crate::report::table;
use crate::{sys, Error};
use counting::Counting;

pub use child::{exec_when_released, ServerProcess, HOLD_ENV};

/// Exit code after SIGINT or SIGTERM, as shells report a signal death (128 + SIGINT).
pub const EXIT_INTERRUPTED: i32 = 130;

/// Everything `bench run` was asked to do, validated.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub models: Vec<&'static Model>,
    pub workload: Workload,
    pub connections: usize,
    pub client_threads: Option<usize>,
    /// `--client-processes` as given (`None`: as many as the open-file limit needs).
    pub client_processes: Option<usize>,
    pub duration: Duration,
    pub warmup: Duration,
    pub payload: usize,
    pub pipeline: usize,
    pub timeout: Option<Duration>,
    /// Open loop: requests per second (`None`: closed loop).
    pub rate: Option<f64>,
    /// The time series' interval.
    pub interval: Duration,
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

/// Where the server and the client run.
struct Placement {
    server: CpuList,
    client: CpuList,
    warnings: Vec<String>,
}

fn placement(opts: &RunOptions) -> anyhow::Result<Placement> {
    let allowed = sys::allowed_cpus().context("cannot read this process's CPUs")?;
    let mut warnings = Vec::new();
    let server = match &opts.server_cpus {
        Some(cpus) => cpus.clone(),
        None => CpuList::new(vec![allowed.first().copied().unwrap_or(0)]),
    };
    let client = match &opts.client_cpus {
        Some(cpus) => cpus.clone(),
        None => {
            let rest: Vec<usize> = allowed
                .iter()
                .copied()
                .filter(|c| !server.cpus().contains(c))
                .collect();
            if rest.is_empty() {
                server.clone()
            } else {
                CpuList::new(rest)
            }
        }
    };
    if client.cpus().iter().any(|c| server.cpus().contains(c)) {
        warnings.push(format!(
            "server CPUs {server} and client CPUs {client} overlap: the load generator competes \
             with the server, so the figures understate the server (give them separate CPUs \
             with --server-cpus and --client-cpus)"
        ));
    }
    Ok(Placement {
        server,
        client,
        warnings,
    })
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
}

/// Runs `bench run` with one set of options; returns the exit code.
pub fn run(opts: &RunOptions) -> anyhow::Result<i32> {
    run_plan(&Plan {
        points: vec![PlanPoint {
            values: serde_json::Map::new(),
            opts: opts.clone(),
        }],
        matrix: None,
    })
}

/// Where one point runs, and with how many client threads and processes.
struct PointPlace {
    place: Placement,
    client_threads: usize,
    client_processes: usize,
}

/// Runs every point of `plan` (for each point, `--repeat` rounds of every model, interleaved),
/// into one result file; returns the exit code.
pub fn run_plan(plan: &Plan) -> anyhow::Result<i32> {
    let Some(first) = plan.points.first().map(|p| &p.opts) else {
        anyhow::bail!(Error::Usage("the scenario has no point to run".into()));
    };
    let mut places = Vec::with_capacity(plan.points.len());
    for point in &plan.points {
        for model in &point.opts.models {
            model.ensure_available()?;
        }
        let place = placement(&point.opts)?;
        // More threads than connections would idle: the count recorded is the count that ran.
        let client_threads = point
            .opts
            .client_threads
            .unwrap_or(place.client.len())
            .clamp(1, point.opts.connections);
        places.push(PointPlace {
            place,
            client_threads,
            client_processes: 1,
        });
    }
    // The whole harness (its helper threads too) stays off the server's CPUs; each server
    // re-pins itself to the server CPUs.
    pin_self(&places[0].place.client)?;
    let mut reasons = Vec::new();
    for (point, at) in plan.points.iter().zip(&mut places) {
        let opts = &point.opts;
        server_descriptors(opts.connections)?;
        let split = client_processes(
            opts.connections,
            at.client_threads,
            opts.client_processes,
            opts.accounting != Accounting::Off,
        )?;
        at.client_processes = split.processes;
        if let Some(why) = split.reason.filter(|why| !reasons.contains(why)) {
            reasons.push(why);
        }
    }
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
    let mut common_warnings: Vec<String> = Vec::new();
    for p in &places {
        for w in &p.place.warnings {
            if !common_warnings.contains(w) {
                common_warnings.push(w.clone());
            }
        }
    }
    if let Some([load, ..]) = env
        .loadavg_at_start
        .filter(|l| l[0] > 0.5 * env.cpus as f64)
    {
        common_warnings.push(format!(
            "the machine was busy when the run started (load average {load:.2} on {} CPUs): \
             expect noisy figures; repeat with --repeat and compare medians",
            env.cpus
        ));
    }
    let mut scenario = scenario_of(first, &places[0]);
    scenario.matrix = plan.matrix.clone();
    let mut result = ResultFile::new(scenario, env);
    let progress = !first.quiet && std::io::stdout().is_terminal();
    let total: usize = plan
        .points
        .iter()
        .map(|p| p.opts.repeat * p.opts.models.len())
        .sum();
    let mut code = 0;
    let mut fatal = None;
    let mut done = 0;

    'outer: for (point, at) in plan.points.iter().zip(&places) {
        let opts = &point.opts;
        if !std::ptr::eq(at, &places[0]) {
            pin_self(&at.place.client)?;
        }
        if progress && !point.values.is_empty() {
            crate::errln!("point {}", describe_point(&point.values));
        }
        for repeat_index in 0..opts.repeat {
            for model in &opts.models {
                if stop.load(Ordering::Acquire) {
                    break 'outer;
                }
                done += 1;
                if progress {
                    crate::errln!(
                        "[{done}/{total}] {} (repeat {}/{}): {} warm-up + {} measured{}",
                        model.name,
                        repeat_index + 1,
                        opts.repeat,
                        humantime::format_duration(opts.warmup),
                        humantime::format_duration(opts.duration),
                        if opts.slo.is_empty() {
                            String::new()
                        } else {
                            " per probe".to_string()
                        }
                    );
                }
                let job = Job {
                    model,
                    repeat_index,
                    opts,
                    at,
                    stop,
                    progress,
                };
                let step = if opts.slo.is_empty() {
                    job.accounted(opts.rate).map(|run| (vec![run], None))
                } else {
                    job.slo_search().map(|(runs, found)| (runs, Some(found)))
                };
                let (runs, found) = match step {
                    Ok(step) => step,
                    // A signal during the server's start: the interrupted path below.
                    Err(_) if stop.load(Ordering::Acquire) => break 'outer,
                    // The server could not start: report what was measured before, then this.
                    Err(e) => {
                        fatal = Some(e);
                        break 'outer;
                    }
                };
                for mut run in runs {
                    if opts.accounting_required {
                        if let Some(why) = &run.syscalls_unavailable {
                            fatal = Some(anyhow::Error::new(Error::Environment(format!(
                                "--accounting {} was asked for, but system calls cannot be \
                                 counted here: {why}",
                                opts.accounting.name()
                            ))));
                            break 'outer;
                        }
                    }
                    run.point = point.values.clone();
                    run.warnings.splice(0..0, common_warnings.iter().cloned());
                    if run.failure.is_some() || run.errors > 0 || run.warmup_errors > 0 {
                        // A probe past the capacity may fail its objectives, not the run.
                        if run.slo_probe.is_none() || run.failure.is_some() {
                            code = 1;
                        }
                    }
                    result.runs.push(run);
                }
                if let Some(mut found) = found {
                    found.point = point.values.clone();
                    result.slo.push(found);
                }
                result.write_atomic(&out)?;
            }
        }
    }

    print_summary(plan, &result, &common_warnings, counting_gap.as_deref());
    if result.runs.is_empty() {
        crate::errln!("no run finished: nothing written");
    } else {
        crate::errln!("result written to {}", out.display());
        if first.report {
            // The measurements are safe in the result file: a report that cannot be drawn
            // is said, and `bench report` can try again.
            let dir = document::default_dir(&out);
            match document::write(&[(out.display().to_string(), result.clone())], &dir) {
                Ok(w) => crate::errln!("report written to {}", w.html.display()),
                Err(e) => crate::errln!(
                    "warning: no report: {e:#} (the result file is complete; try `bench report \
                     {}`)",
                    out.display()
                ),
            }
        }
    }
    if let Some(e) = fatal {
        return Err(e);
    }
    if stop.load(Ordering::Acquire) {
        crate::errln!("interrupted: the server was stopped; runs finished before it are kept");
        return Ok(EXIT_INTERRUPTED);
    }
    Ok(code)
}

/// The tables: per point, the models' runs (or their SLO capacities); then failures, errors
/// and warnings (`counting_gap`: why no system call was counted, when that is known).
fn print_summary(
    plan: &Plan,
    result: &ResultFile,
    common_warnings: &[String],
    counting_gap: Option<&str>,
) {
    for point in &plan.points {
        let runs: Vec<Run> = result
            .runs
            .iter()
            .filter(|r| r.point == point.values && r.slo_probe.is_none())
            .cloned()
            .collect();
        let found: Vec<&SloCapacity> = result
            .slo
            .iter()
            .filter(|s| s.point == point.values)
            .collect();
        if runs.is_empty() && found.is_empty() {
            continue;
        }
        if !point.values.is_empty() {
            crate::outln!("\n{}", describe_point(&point.values));
        }
        if !runs.is_empty() {
            // A point that counted keeps its sys/req column, `-` where a count is missing,
            // with the line below that says why.
            let counted = counting::counts(&point.opts);
            crate::out!("{}", table::render_counted(&runs, counted));
        }
        if !found.is_empty() {
            crate::out!("{}", table::render_slo(&found, &result.runs));
        }
    }
    for run in &result.runs {
        let who = run.model.as_deref().unwrap_or("target");
        let probe = run
            .slo_probe
            .as_ref()
            .map_or(String::new(), |p| format!(", probe {}", p.index));
        if let Some(failure) = &run.failure {
            crate::errln!(
                "{who} (repeat {}{probe}): FAILED: {failure}",
                run.repeat_index + 1
            );
        }
        if run.errors + run.warmup_errors > 0 {
            crate::errln!(
                "{who} (repeat {}{probe}): errors by kind:{}",
                run.repeat_index + 1,
                table::kinds(&run.error_kinds, &run.warmup_error_kinds)
            );
        }
    }
    // Probes past the capacity warn of the rate they missed by design: those stay in the file.
    let plain: Vec<Run> = result
        .runs
        .iter()
        .filter(|r| r.slo_probe.is_none())
        .cloned()
        .collect();
    for line in warnings::lines(&plain, common_warnings) {
        crate::errln!("{line}");
    }
    let counted: Vec<Run> = plan
        .points
        .iter()
        .filter(|p| counting::counts(&p.opts))
        .flat_map(|p| plain.iter().filter(|r| r.point == p.values).cloned())
        .collect();
    for line in warnings::counting_lines(&counted, counting_gap) {
        crate::errln!("{line}");
    }
    for found in &result.slo {
        for w in &found.warnings {
            crate::errln!("warning: {} (SLO search): {w}", found.model);
        }
    }
}

/// The result file's scenario: the first point's options.
fn scenario_of(opts: &RunOptions, at: &PointPlace) -> Scenario {
    Scenario {
        command: "run".into(),
        models: opts.models.iter().map(|m| m.name.to_string()).collect(),
        target: None,
        workload: opts.workload.name().into(),
        connections: opts.connections,
        client_threads: at.client_threads,
        payload: match opts.workload {
            Workload::Echo => opts.payload,
            Workload::Http => 0,
        },
        pipeline: opts.pipeline,
        timeout_s: opts.timeout.map(|t| t.as_secs_f64()),
        rate: opts.rate,
        interval_s: opts.interval.as_secs_f64(),
        duration_s: opts.duration.as_secs_f64(),
        warmup_s: opts.warmup.as_secs_f64(),
        repeat: opts.repeat,
        server_threads: opts.threads,
        poller: opts
            .models
            .iter()
            .find_map(|m| effective_poller(m, opts.poller))
            .map(|p| p.name().to_string()),
        server_cpus: at.place.server.cpus().to_vec(),
        client_cpus: at.place.client.cpus().to_vec(),
        work_us: opts.work_us,
        block_us: opts.block_us,
        accounting: opts.accounting.name().into(),
        uring_options: opts.uring,
        idle_timeout_s: Some(opts.idle_timeout)
            .filter(|t| !t.is_zero())
            .map(|t| t.as_secs_f64()),
        file: opts.scenario_file.clone(),
        matrix: None,
        slo: opts.slo.iter().map(ToString::to_string).collect(),
    }
}

/// One model, one repeat, at one point.
struct Job<'a> {
    model: &'static Model,
    repeat_index: usize,
    opts: &'a RunOptions,
    at: &'a PointPlace,
    stop: &'a AtomicBool,
    progress: bool,
}

impl Job<'_> {
    /// One pass at `rate`, with system calls counted as `--accounting` says.
    fn accounted(&self, rate: Option<f64>) -> anyhow::Result<Run> {
        let mut opts = self.opts.clone();
        opts.rate = rate;
        let counting_opts = counting::counting_pass(&opts);
        let pass = |count: Option<Counting>| {
            // A pass of its own that only counts is short: counts per request settle fast.
            let opts = match count {
                Some(c) if c.only_counts() => &counting_opts,
                _ => &opts,
            };
            measure(
                self.model,
                self.repeat_index,
                opts,
                self.at,
                self.stop,
                count,
            )
        };
        match opts.accounting {
            Accounting::Off => pass(None),
            Accounting::Same => pass(Some(Counting::SAME)),
            Accounting::Separate => pass(None).and_then(|mut timed| {
                // A failed or interrupted pass is not repeated for its counts.
                if timed.failure.is_some() || self.stop.load(Ordering::Acquire) {
                    timed.syscalls_unavailable =
                        Some("not counted: the timed pass failed or was interrupted".into());
                    return Ok(timed);
                }
                if self.progress {
                    crate::errln!(
                        "      counting system calls: the server, then the client, in passes \
                         of their own ({} each)",
                        humantime::format_duration(counting_opts.duration + counting_opts.warmup)
                    );
                }
                let counted = pass(Some(Counting::SERVER))?;
                timed.syscalls = counted.syscalls;
                timed.syscalls_unavailable = counted.syscalls_unavailable;
                if let Some(failure) = counted.failure {
                    timed.warnings.push(format!(
                        "the counting pass failed, so there are no system call counts: {failure}"
                    ));
                    return Ok(timed);
                }
                if timed.syscalls.is_none() || self.stop.load(Ordering::Acquire) {
                    return Ok(timed);
                }
                // The load generator counted alone, in a third pass: its counters slow it,
                // and a slower client changes how often the server waits.
                timed.client.syscalls = pass(Some(Counting::CLIENT))?.client.syscalls;
                Ok(timed)
            }),
        }
    }
}

/// Pins the calling process's threads (present and future) to `cpus`; the error lists the
/// CPUs this process may use.
pub fn pin_self(cpus: &CpuList) -> anyhow::Result<()> {
    sys::pin_process(cpus.cpus()).map_err(|e| {
        let allowed = sys::allowed_cpus()
            .map(|c| CpuList::new(c).to_string())
            .unwrap_or_else(|_| "?".into());
        Error::Environment(format!(
            "cannot pin to CPUs {cpus} ({e}): this process may use CPUs {allowed}; pick from those"
        ))
        .into()
    })
}

/// Raises the open-file limit to its hard maximum (inherited by the server and the client
/// processes) and says in how many processes the load generator must run for `connections`
/// (`requested`: `--client-processes`); fails with the fix when no split fits.
pub fn client_processes(
    connections: usize,
    threads: usize,
    requested: Option<usize>,
    counting: bool,
) -> anyhow::Result<load::ProcessPlan> {
    sys::raise_nofile_limit().context("cannot read the open-file limit")?;
    Ok(load::plan_processes(
        connections,
        threads,
        requested,
        counting,
    )?)
}

/// Fails with the fix when the server, one process, cannot hold `connections` under the
/// open-file limit (each is a descriptor, beside the server's own).
fn server_descriptors(connections: usize) -> anyhow::Result<()> {
    let limit = sys::raise_nofile_limit().context("cannot read the open-file limit")?;
    let needed = (connections + SERVER_OWN_FDS) as u64;
    if limit < needed {
        anyhow::bail!(Error::Environment(format!(
            "the server is one process, and {connections} connections need about {needed} open \
             files in it, but a process may open only {limit} here (the hard limit): use at \
             most {} connections, or raise the limit (ulimit -Hn, or limits.conf)",
            limit.saturating_sub(SERVER_OWN_FDS as u64)
        )));
    }
    Ok(())
}

/// `results/run-<UTC time, to the millisecond>.json`, relative to the current folder.
pub fn default_out() -> PathBuf {
    let stamp = humantime::format_rfc3339_millis(std::time::SystemTime::now())
        .to_string()
        .replace([':', '-'], "");
    PathBuf::from("results").join(format!("run-{}.json", stamp.trim_end_matches('Z')))
}

/// The poller `model` runs with when `bench run` was given `requested`: a model that waits on
/// no poller ignores `--poller` (`app` checked that some model takes it).
pub fn effective_poller(model: &Model, requested: Option<Poller>) -> Option<Poller> {
    if model.pollers.is_empty() {
        None
    } else {
        model.poller(requested).ok().flatten()
    }
}

/// One model, one pass; with `count`, the server's and/or the load generator's
/// system calls are counted over the measured window.
fn measure(
    model: &'static Model,
    repeat_index: usize,
    opts: &RunOptions,
    at: &PointPlace,
    stop: &AtomicBool,
    count: Option<Counting>,
) -> anyhow::Result<Run> {
    let place = &at.place;
    let mut args: Vec<String> = [
        "serve",
        "--model",
        model.name,
        "--workload",
        opts.workload.name(),
        "--listen",
        "127.0.0.1:0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend([
        "--cpus".into(),
        place.server.to_string(),
        "--work-us".into(),
        opts.work_us.to_string(),
        "--block-us".into(),
        opts.block_us.to_string(),
    ]);
    if opts.workload == Workload::Echo {
        args.extend(["--message-size".into(), opts.payload.to_string()]);
    }
    if let Some(threads) = opts.threads {
        args.extend(["--threads".into(), threads.to_string()]);
    }
    args.extend([
        "--idle-timeout".into(),
        humantime::format_duration(opts.idle_timeout).to_string(),
    ]);
    let poller = effective_poller(model, opts.poller);
    if let Some(poller) = poller {
        args.extend(["--poller".into(), poller.name().into()]);
    }
    if let Some(uring) = opts.uring.filter(|_| model.uring_options) {
        if uring.sqpoll {
            args.push("--uring-sqpoll".into());
        }
        if uring.zc {
            args.push("--uring-zc".into());
        }
        if uring.listener != UringListener::default() {
            args.extend(["--uring-listener".into(), uring.listener.name().into()]);
        }
    }
    let count_server = count.is_some_and(|c| c.server);
    let mut server = ServerProcess::spawn_counted(&args, stop, count_server)?;
    let server_setup = server.ready.get("io_uring").cloned();
    let config = LoadConfig {
        target: server.addr,
        shape: Shape {
            workload: opts.workload,
            connections: opts.connections,
            duration: opts.duration,
            warmup: opts.warmup,
            payload: match opts.workload {
                Workload::Echo => opts.payload,
                Workload::Http => 0,
            },
            pipeline: opts.pipeline,
            timeout: opts.timeout,
            rate: opts.rate,
            interval: opts.interval,
        },
        threads: at.client_threads,
        // Our servers' plaintext answer is known: every body is checked.
        http: (opts.workload == Workload::Http).then(|| HttpRequest {
            host: server.addr.to_string(),
            path: http::PLAINTEXT_PATH.into(),
            expect_body: Some(http::PLAINTEXT_BODY.to_vec()),
        }),
        count_syscalls: count.is_some_and(|c| c.client),
        cpus: Some(place.client.clone()),
        connect_timeout: load::connect_timeout(opts.connections),
        processes: at.client_processes,
    };
    let mut snapshots: Vec<(ProcessCounters, Option<Vec<u64>>)> = Vec::new();
    let mut snapshot_error: Option<String> = None;
    let mut syscall_snapshots: Vec<Result<SyscallSnapshot, String>> = Vec::new();
    let label = match count {
        Some(Counting {
            pass: "separate", ..
        }) => format!("{} (counting)", model.name),
        _ => model.name.to_string(),
    };
    let line = ProgressLine::new(!opts.quiet && std::io::stdout().is_terminal(), &label);
    let mut outcome = load::run_load(&config, stop, &mut |edge: Edge| {
        if matches!(edge, Edge::Tick(_)) {
            return line.on_edge(&edge);
        }
        if count_server {
            syscall_snapshots.push(server_syscalls(&mut server));
        }
        if snapshot_error.is_none() {
            match server.counters() {
                Ok(c) => snapshots.push(c),
                Err(e) => snapshot_error = Some(format!("{e:#}")),
            }
        }
    })?;
    line.finish();
    let client_syscalls = outcome.client_syscalls.take();
    let mut failure = None;
    if let Some(status) = server.exited() {
        failure = Some(format!(
            "the server exited during the run ({}){}",
            sys::child::describe(Some(status)),
            server.stderr_note()
        ));
    } else if outcome.interrupted {
        failure = Some("interrupted by a signal before the window closed".into());
    } else if let Some(e) = snapshot_error {
        failure = Some(format!("the server's counters could not be read: {e}"));
    }
    // Joining 10,000 threads (`blocking`) on a busy CPU took over 5 s here: a second more
    // per thousand connections.
    let grace = Duration::from_secs(5) + Duration::from_millis(opts.connections as u64);
    let status = server.stop_within(grace);
    if failure.is_none() && status.is_some_and(|s| !s.success()) {
        failure = Some(format!(
            "the server did not stop cleanly within {} s of SIGTERM ({}; SIGKILL follows \
             the grace period)",
            grace.as_secs(),
            sys::child::describe(status)
        ));
    }
    let server_costs = match snapshots.as_slice() {
        [(start, _), (end, spread)] if failure.is_none() => Some(ServerCosts {
            connections_per_loop: spread.clone(),
            ..costs(&end.since(start), outcome.requests)
        }),
        _ => None,
    };
    let threads = model
        .threads
        .effective(opts.threads.unwrap_or(place.server.len()));
    let io_uring: Option<UringSetup> = server_setup.and_then(|v| serde_json::from_value(v).ok());
    let mut run = to_run(
        RunIdentity {
            model: Some(model.name.to_string()),
            threads,
            poller: poller.map(|p| p.name().to_string()),
            repeat_index,
            server_cpus: place.server.cpus().to_vec(),
            work_us: opts.work_us,
            block_us: opts.block_us,
        },
        &config,
        outcome,
        server_costs,
        failure,
        "--client-cpus",
    )?;
    run.io_uring = io_uring;
    if let Some(why) = unserved_by_design(model, threads, &run) {
        run.warnings.push(why);
    }
    if let Some(Counting {
        pass, client: true, ..
    }) = count
    {
        if let Some(Ok(client)) = &client_syscalls {
            if run.failure.is_none() {
                run.client.syscalls = Some(with_window(
                    client_syscalls_json(client, run.requests, pass),
                    run.duration_s,
                ));
            }
        }
    }
    if let Some(Counting {
        pass, server: true, ..
    }) = count
    {
        match syscall_window(&syscall_snapshots) {
            Ok(window) if run.failure.is_none() => {
                run.syscalls = Some(with_window(
                    syscalls_json(&window, run.requests, pass),
                    run.duration_s,
                ));
                run.syscalls_unavailable = None;
            }
            Ok(_) => {
                run.syscalls_unavailable =
                    Some("the counting pass failed (see failure): no counts".into())
            }
            Err(why) => run.syscalls_unavailable = Some(why),
        }
    } else if opts.accounting == Accounting::Off {
        run.syscalls_unavailable = Some(if cfg!(target_os = "linux") {
            "not counted (--accounting off)".into()
        } else {
            NO_PERF.into()
        });
    }
    Ok(run)
}

/// Why the model left connections unserved, when its design says so: `threadpool`'s workers
/// each keep one connection until it closes, so past `--threads` live connections the others
/// wait in its queue for as long as the first stay open (DESIGN.md). That is the model's
/// answer to many connections, and the result says it in those words.
fn unserved_by_design(model: &Model, threads: Option<usize>, run: &Run) -> Option<String> {
    let workers = threads?;
    if model.name != "threadpool" || run.starved_connections == 0 {
        return None;
    }
    let served = run.connections as u64 - run.starved_connections;
    Some(format!(
        "a pool of {workers} worker thread(s) serves at most {workers} live connection(s): \
         each worker keeps one connection until it closes, so {} of the {} connections waited \
         in the pool's queue unserved for the whole window, and the latencies of the {served} \
         served say nothing about them (--threads {} would serve every connection, with a \
         thread each)",
        run.starved_connections, run.connections, run.connections
    ))
}

#[cfg(target_os = "linux")]
type SyscallSnapshot = crate::metrics::syscalls::SyscallCounts;
/// Off Linux there are no counts to hold.
#[cfg(not(target_os = "linux"))]
#[derive(Clone, Debug)]
struct SyscallSnapshot;

#[cfg(target_os = "linux")]
fn server_syscalls(server: &mut ServerProcess) -> Result<SyscallSnapshot, String> {
    server
        .syscalls()
        .unwrap_or_else(|| Err("the server was started without counters".into()))
}

/// Why there are no counts off Linux.
const NO_PERF: &str =
    "system calls are counted with Linux perf tracepoints; this platform has none";

#[cfg(not(target_os = "linux"))]
fn server_syscalls(_: &mut ServerProcess) -> Result<SyscallSnapshot, String> {
    Err(NO_PERF.into())
}

#[cfg(target_os = "linux")]
fn window_of(start: &SyscallSnapshot, end: &SyscallSnapshot) -> SyscallSnapshot {
    end.since(start)
}

#[cfg(not(target_os = "linux"))]
fn window_of(_: &SyscallSnapshot, _: &SyscallSnapshot) -> SyscallSnapshot {
    SyscallSnapshot
}

/// The counts between the window's two edges.
fn syscall_window(
    snapshots: &[Result<SyscallSnapshot, String>],
) -> Result<SyscallSnapshot, String> {
    match snapshots {
        [Ok(start), Ok(end)] => Ok(window_of(start, end)),
        [Err(why), ..] | [_, Err(why)] => Err(why.clone()),
        _ => Err("the measured window did not complete, so there are no counts".into()),
    }
}

/// The `syscalls` object of a run: the server's counts over the window, per request of the
/// counted pass.
#[cfg(target_os = "linux")]
fn syscalls_json(window: &SyscallSnapshot, requests: u64, pass: &str) -> serde_json::Value {
    counts_json(
        window,
        requests,
        pass,
        "perf-tracepoint: raw_syscalls:sys_enter and syscalls:sys_enter_<name>, every server \
         thread from its first instruction (inherit, enable-on-exec), read at the measured \
         window's edges",
    )
}

/// The load generator's counts over the window, per request of the same pass.
fn client_syscalls_json(
    window: &crate::metrics::syscalls::SyscallCounts,
    requests: u64,
    pass: &str,
) -> serde_json::Value {
    counts_json(
        window,
        requests,
        pass,
        "perf-tracepoint: each load thread's own counters, read at the measured window's edges",
    )
}

/// `counts` with the length of the window they were counted over (a pass of its own that only
/// counts is shorter than the timed one: `counting::COUNTING_WINDOW`).
fn with_window(mut counts: serde_json::Value, window_s: f64) -> serde_json::Value {
    if let Some(object) = counts.as_object_mut() {
        object.insert("window_s".into(), serde_json::json!(window_s));
    }
    counts
}

/// Counts as the result file holds them: totals, and per request of the pass that counted.
fn counts_json(
    window: &crate::metrics::syscalls::SyscallCounts,
    requests: u64,
    pass: &str,
    method: &str,
) -> serde_json::Value {
    let per = |n: u64| (requests > 0).then(|| round(n as f64 / requests as f64, 4));
    let by_name: std::collections::BTreeMap<&str, u64> = window
        .by_name
        .iter()
        .filter(|(_, &n)| n > 0)
        .map(|(k, &n)| (k.as_str(), n))
        .collect();
    let per_name: std::collections::BTreeMap<&str, Option<f64>> =
        by_name.iter().map(|(k, &n)| (*k, per(n))).collect();
    serde_json::json!({
        "total": window.total,
        "per_request": per(window.total),
        "by_name": by_name,
        "by_name_per_request": per_name,
        "requests": requests,
        "method": method,
        "pass": pass,
    })
}

#[cfg(not(target_os = "linux"))]
fn syscalls_json(_: &SyscallSnapshot, _: u64, _: &str) -> serde_json::Value {
    serde_json::Value::Null
}

fn costs(window: &ProcessCounters, requests: u64) -> ServerCosts {
    let per = |v: f64| (requests > 0).then(|| round(v / requests as f64, 3));
    ServerCosts {
        cpu_user_s: round(window.cpu_user_s, 3),
        cpu_sys_s: round(window.cpu_sys_s, 3),
        cpu_us_per_request: per(window.cpu_s() * 1e6),
        voluntary_ctx_switches: window.voluntary_ctx_switches,
        involuntary_ctx_switches: window.involuntary_ctx_switches,
        ctx_switches_per_request: window.ctx_switches().and_then(|n| per(n as f64)),
        peak_rss_bytes: window.peak_rss_bytes,
        threads: window.threads,
        connections_per_loop: None,
    }
}

fn round(v: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (v * f).round() / f
}

/// What identifies a run beyond the load configuration.
pub struct RunIdentity {
    pub model: Option<String>,
    pub threads: Option<usize>,
    /// The readiness poller the model waited with; `None` for a model that waits on none.
    pub poller: Option<String>,
    pub repeat_index: usize,
    pub server_cpus: Vec<usize>,
    pub work_us: u64,
    pub block_us: u64,
}

/// Above this p99 pacing error (µs) the load generator says it could not keep its schedule.
const PACING_WARN_US: f64 = 250.0;

/// The open-loop figures of a run, and the warnings they call for: the rate not reached, and
/// why (the client, or the server), and a client that sent late.
fn open_loop_figures(
    open: &load::OpenLoop,
    rate: f64,
    achieved: f64,
    window: Duration,
    client: &load::ClientCost,
    connections: usize,
    warnings: &mut Vec<String>,
) -> OpenLoopFigures {
    let q = |p: f64| {
        if open.pacing.is_empty() {
            0.0
        } else {
            open.pacing.value_at_quantile(p) as f64
        }
    };
    let pacing = PacingError {
        p50: q(0.5),
        p99: q(0.99),
        max: if open.pacing.is_empty() {
            0.0
        } else {
            open.pacing.max() as f64
        },
        samples: open.pacing.len(),
    };
    if pacing.p99 > PACING_WARN_US {
        warnings.push(format!(
            "the load generator sent late: p99 {:.0} µs after the due time on connections that \
             were free (max {:.0} µs); that delay is in the corrected latency. Give the client \
             more or quieter CPUs (--client-cpus)",
            pacing.p99, pacing.max
        ));
    }
    if achieved < 0.99 * rate {
        let why = if client.saturated {
            format!(
                "the load generator was busy {:.0}% of its CPUs: give it more (--client-cpus, \
                 --client-threads)",
                client.busy_fraction * 100.0
            )
        } else if open.unsent > 0 {
            format!(
                "the server fell behind: {} requests fell due that no connection was free to \
                 send (each of the {connections} connections keeps one request in flight); the \
                 corrected latency includes their wait",
                open.unsent
            )
        } else {
            "the server answered too slowly for the rate".to_string()
        };
        warnings.push(format!(
            "open loop: {achieved:.0} req/s answered of the {rate:.0} asked for ({:.1}%): {why}",
            achieved / rate * 100.0
        ));
    }
    OpenLoopFigures {
        requested_rps: rate,
        achieved_rps: round(achieved, 1),
        sent_rps: round(open.sent as f64 / window.as_secs_f64().max(1e-9), 1),
        unsent_requests: open.unsent,
        pacing_error_us: pacing,
    }
}

/// Builds a result-file run from a load outcome (shared by `bench run` and `bench load`).
pub fn to_run(
    id: RunIdentity,
    config: &LoadConfig,
    mut outcome: LoadOutcome,
    server: Option<ServerCosts>,
    failure: Option<String>,
    client_cpus_flag: &str,
) -> anyhow::Result<Run> {
    let mut warnings = Vec::new();
    // Open loop: a thread that always has a request due or an answer to read never sleeps, so
    // its CPU reads busy long before it falls behind; its schedule says whether it did. The
    // client is saturated when it was busy and also sent late.
    if let Some(open) = &outcome.open_loop {
        let late =
            !open.pacing.is_empty() && open.pacing.value_at_quantile(0.99) as f64 > PACING_WARN_US;
        outcome.client.saturated &= late;
    }
    if outcome.client.saturated && outcome.open_loop.is_some() {
        warnings.push(format!(
            "client saturated: the load generator was busy {:.0}% of its CPUs and sent late \
             (see below), so the server may be faster than measured (give the client more CPUs \
             with {client_cpus_flag})",
            outcome.client.busy_fraction * 100.0
        ));
    } else if outcome.client.saturated {
        warnings.push(format!(
            "client CPU saturated: the load generator was busy {:.0}% of its CPUs, so the server \
             may be faster than measured (give the client more CPUs with {client_cpus_flag}, \
             or use fewer connections)",
            outcome.client.busy_fraction * 100.0
        ));
    }
    if outcome.starved_connections > 0 && outcome.requests > 0 {
        warnings.push(format!(
            "{} of {} connections completed no request in the measured window (they waited for \
             the server the whole time); their waits are in the latency figures as lower bounds",
            outcome.starved_connections, config.shape.connections
        ));
    }
    if outcome.requests == 0 && failure.is_none() {
        warnings.push("no request completed in the measured window".into());
    }
    let open_loop = match (&outcome.open_loop, config.shape.rate) {
        (Some(open), Some(rate)) => Some(open_loop_figures(
            open,
            rate,
            outcome.throughput_rps(),
            outcome.window,
            &outcome.client,
            config.shape.connections,
            &mut warnings,
        )),
        _ => None,
    };
    for (kind, text) in &outcome.first_errors {
        warnings.push(format!("the first {kind} error said: {text}"));
    }
    // A server silent at the end, with requests waiting, stalled: those requests are errors
    // of their own kind and the run failed, whatever else was measured.
    let failure = match outcome.stalled_for() {
        Some(silent) => {
            *outcome.errors.entry("unanswered".into()).or_default() += outcome.unfinished;
            let stall = format!(
                "the server stopped answering: nothing answered in the last {:.1} s of the \
                 window while {} requests waited (the time series shows when)",
                silent.as_secs_f64(),
                outcome.unfinished
            );
            Some(match failure {
                Some(other) => format!("{stall}; {other}"),
                None => stall,
            })
        }
        None => failure,
    };
    let window_s = outcome.window.as_secs_f64();
    let errors = outcome.error_count();
    let warmup_errors: u64 = outcome.warmup_errors.values().sum();
    if warmup_errors > 0 {
        warnings.push(format!(
            "{warmup_errors} errors before the measured window (connect phase and warm-up): \
             {:?}",
            outcome.warmup_errors
        ));
    }
    Ok(Run {
        model: id.model,
        workload: config.shape.workload.name().into(),
        connections: config.shape.connections,
        payload: config.shape.payload,
        pipeline: config.shape.pipeline,
        rate: config.shape.rate,
        threads: id.threads,
        poller: id.poller,
        client_threads: outcome.threads,
        repeat_index: id.repeat_index,
        point: serde_json::Map::new(),
        work_us: id.work_us,
        block_us: id.block_us,
        server_cpus: id.server_cpus,
        client_cpus: config
            .cpus
            .as_ref()
            .map(|c| c.cpus().to_vec())
            .unwrap_or_default(),
        duration_s: round(window_s, 3),
        warmup_s: config.shape.warmup.as_secs_f64(),
        requests: outcome.requests,
        errors,
        error_kinds: outcome.errors.clone(),
        warmup_errors,
        warmup_error_kinds: outcome.warmup_errors.clone(),
        throughput_rps: round(outcome.throughput_rps(), 1),
        throughput_mibps: round(outcome.throughput_mibps(), 3),
        latency_us: outcome.latency(),
        latency_uncorrected_us: outcome
            .open_loop
            .as_ref()
            .map(|o| LatencySummary::of(&o.uncorrected)),
        histogram: encode(&outcome.histogram)?,
        histogram_uncorrected: match &outcome.open_loop {
            Some(o) => Some(encode(&o.uncorrected)?),
            None => None,
        },
        open_loop,
        slo_probe: None,
        timeseries: outcome.timeseries,
        server,
        client: outcome.client,
        syscalls: None,
        syscalls_unavailable: Some("not counted".into()),
        connections_established: outcome.connected,
        unfinished_requests: outcome.unfinished,
        stalled_requests: outcome.stalled,
        starved_connections: outcome.starved_connections,
        io_uring: None,
        failure,
        warnings,
    })
}
