//! The command line: what the user typed, parsed and checked value by value (the clap types
//! here), scenario files turned into more of it ([`scenario`]), and the settings the commands
//! run with built from it ([`options`]). `app` turns it into work. Only this module knows clap:
//! the layers below take their own types.
//!
//! - [`scenario`]: `bench run --scenario FILE`, a TOML file of options, to command lines;
//! - `sweep`: the file's `[matrix]`, the points of the sweep;
//! - `check`: the checks of a file's keys and values, and what to say of a bad one;
//! - [`options`]: `Args` to run, serve and load settings, with the checks across options;
//! - [`choice`]: the value parser of an option that takes a domain enum's name.

mod check;
pub mod choice;
pub mod deploy;
mod keys;
pub mod options;
mod points;
pub mod scenario;
mod sweep;
mod target;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::compare::Format;
use crate::load::{Segment, StartAt};
use crate::metrics::syscalls::Accounting;
use crate::models::{Model, Poller, UringListener, UringOptions};
use crate::protocol::Workload;
use crate::run::OutsideServer;
use crate::units::{
    parse_count, parse_cpu_list, parse_duration, parse_positive_duration, parse_rate, parse_size,
    parse_slo, CpuList, Slo,
};
use choice::choice;

#[derive(Debug, Parser)]
#[command(
    name = "bench",
    version,
    about = "Runs the same workload on one server per I/O concurrency model and measures what each costs",
    after_help = "Start with `bench run --all`; `bench models` lists the models.",
    // An option given twice takes the last value: a scenario file's options come first, so
    // the command line's win.
    args_override_self = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List every model, whether it can run here, and why not.
    Models {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Serve one model until SIGINT/SIGTERM (or --duration); prints a JSON ready line.
    Serve(ServeArgs),
    /// Drive load against any echo or HTTP/1.1 server and measure it.
    Load(LoadArgs),
    /// Start each model as a child process, drive it, and compare.
    Run(Box<RunArgs>),
    /// Turn result files into a report: report.md, a self-contained index.html and the charts
    /// (SVG and PNG).
    Report(ReportArgs),
    /// Compare two result files: improved / regressed / no change per run and metric, with the
    /// change, its one-sided 95% bounds and an exact rank test; exit 1 on a regression.
    Compare(CompareArgs),
    /// Regenerate the tables of Markdown documents (README.md, DESIGN.md) from the result
    /// files their `<!-- bench table FILE -->` blocks name; with --check, change nothing and
    /// exit 1 when a table differs from its data.
    Docs {
        /// The Markdown files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Only check: exit 1, naming the file, when a table is not what its data gives.
        #[arg(long)]
        check: bool,
    },
    /// Merge the result files of a run's segments (`bench load --segment I/N --start-at TIME
    /// --json FILE`, one per host) into one result: histograms added exactly, the time series
    /// aligned on the common start, counts and client CPU summed, every segment's warnings
    /// kept. Files that are not every segment of one run are refused.
    Merge {
        /// The segments' result files, one per segment, in any order.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The merged result file.
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the Kubernetes manifest (deploy/kubernetes/load-job.yaml) that runs a load from
    /// many hosts: an Indexed Job of one pod per segment, all started at --start-at, each
    /// writing its result to a shared volume, and a job that merges them (`kubectl apply -f`).
    Deploy(DeployArgs),
    /// One client process of a load generator split over processes: started by `load` and
    /// `run`, which send it its share on stdin (not for use by hand).
    #[command(hide = true)]
    LoadPart,
}

#[derive(Debug, Args, Clone)]
pub struct DeployArgs {
    /// Segments of the run: one pod each, on nodes of their own.
    #[arg(long, value_parser = parse_count)]
    pub segments: usize,
    /// The server to drive, as the pods reach it: HOST:PORT (a Service's name resolves in the
    /// pod), or http://HOST:PORT/PATH.
    #[arg(long)]
    pub target: String,
    /// The common start, RFC 3339 (e.g. 2026-12-02T18:00:00Z): far enough ahead for every pod
    /// to be scheduled, pulled and connected.
    #[arg(long, value_name = "TIME", value_parser = crate::load::parse_start_at)]
    pub start_at: StartAt,
    /// The container image holding `bench` and a shell (deploy/Dockerfile builds one).
    #[arg(long, default_value = "iomodels:latest")]
    pub image: String,
    /// The name the objects are made under (jobs NAME-RUN and NAME-RUN-merge, the claim
    /// NAME-results).
    #[arg(long, default_value = "iomodels-load")]
    pub name: String,
    /// `bench load`'s options for the run, after `--` (e.g. -- --rate 20k -c 200 -d 30s):
    /// --connections, --rate and --threads are the whole run's.
    #[arg(last = true)]
    pub load: Vec<String>,
}

#[derive(Debug, Args, Clone)]
pub struct CompareArgs {
    /// The result file to compare against (with --base and --head: the one file whose two
    /// servers are compared).
    pub baseline: PathBuf,
    /// The result file to judge.
    pub current: Option<PathBuf>,
    /// Compare two servers of one file instead of two files: this one's runs are the
    /// baseline (e.g. `bench run --server base=... --server head=... --repeat 5`, then
    /// `bench compare RESULT --base base --head head`).
    #[arg(long, requires = "head", conflicts_with = "current")]
    pub base: Option<String>,
    /// With --base: the server judged against it.
    #[arg(long, requires = "base")]
    pub head: Option<String>,
    /// The change (percent) a time or rate metric must pass to count, instead of each metric's
    /// default (throughput and CPU 15%, p50 10%, p99 50%, p99.9 100%); counts per request keep
    /// their own 5% and 0.05 per request, except a count that varies between repeats, gated
    /// like a time (50% by default).
    /// Or NAME=PERCENT for one metric (repeatable): throughput, p50, p99, p99.9, cpu,
    /// syscalls, ctxsw; e.g. --threshold cpu=5 for an interleaved A/B, whose noise is lower.
    #[arg(long, value_name = "PERCENT|NAME=PERCENT", value_parser = parse_threshold)]
    pub threshold: Vec<Threshold>,
    /// How to print the verdict.
    #[arg(long, value_parser = choice::<Format>(), default_value_t = Format::Text)]
    pub format: Format,
    /// Compare each model's figures as ratios to this model measured in the same file, so a
    /// baseline from another machine can gate this one. The model itself is gated on its
    /// counts per request as they are, and on its figures against the other models'.
    #[arg(long)]
    pub normalize_to: Option<String>,
    /// A run of the baseline that failed or is absent in the current file is noted, not a
    /// regression (by default it is one: exit 1).
    #[arg(long)]
    pub allow_missing: bool,
    /// Accept a baseline made by a build with uncommitted changes (a `-dirty` commit): by
    /// default it is refused, since nobody can rebuild the code it measured.
    #[arg(long)]
    pub allow_dirty: bool,
}

/// `--threshold`: every time and rate metric's, or one metric's.
#[derive(Clone, Debug, PartialEq)]
pub enum Threshold {
    All(f64),
    Metric(String, f64),
}

fn parse_threshold(text: &str) -> Result<Threshold, String> {
    let Some((name, pct)) = text.split_once('=') else {
        return parse_percent(text).map(Threshold::All);
    };
    let names: Vec<&str> = crate::compare::METRICS
        .iter()
        .map(|m| crate::compare::short_name(m.key))
        .collect();
    if !names.contains(&name.trim()) {
        return Err(format!(
            "`{name}` names no metric: write one of {}",
            names.join(", ")
        ));
    }
    Ok(Threshold::Metric(
        name.trim().to_string(),
        parse_percent(pct)?,
    ))
}

/// A percentage above 0: `5`, `2.5`, `5%`.
fn parse_percent(text: &str) -> Result<f64, String> {
    match text.trim().trim_end_matches('%').parse::<f64>() {
        Ok(p) if p > 0.0 && p < 1000.0 => Ok(p / 100.0),
        _ => Err(format!(
            "`{text}` is not a percentage above 0: write it like 5 or 2.5"
        )),
    }
}

#[derive(Debug, Args, Clone)]
pub struct ReportArgs {
    /// Result files written by `bench run` or `bench load --json`.
    #[arg(required = true)]
    pub results: Vec<PathBuf>,
    /// The report's folder. Default: beside the first result file, named after it
    /// (results/run-X.json -> results/run-X/).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Options of the server's handler, shared by `serve` and `run`.
#[derive(Debug, Args, Clone)]
pub struct HandlerArgs {
    /// Parallelism of the model (pool size, reactors...; see `bench models`). Default: the
    /// number of server CPUs.
    #[arg(long, value_parser = parse_count)]
    pub threads: Option<usize>,
    /// Burn this many microseconds of CPU per request in the handler (computation, not sleep).
    #[arg(long, default_value_t = 0)]
    pub work_us: u64,
    /// Block the handler this many microseconds per request (a sleep, like a blocking call).
    #[arg(long, default_value_t = 0)]
    pub block_us: u64,
    /// The reactor's readiness poller: epoll (the default, edge-triggered), or poll or select
    /// (level-triggered; select watches descriptors below 1024 only). Only for models that wait
    /// on a poller (`reactor`); other models in a `bench run` ignore it.
    #[arg(long, value_parser = choice::<Poller>())]
    pub poller: Option<Poller>,
    /// Close a connection that completes no request for this long: one that stays idle, sends
    /// nothing, trickles a request (slowloris), or stopped reading its replies. Counted from
    /// the accept or the last request; `0` never closes. Every model, no system call per
    /// request. The default, a minute, is Tomcat's `connectionTimeout` and nginx's
    /// `client_header_timeout`, far above any pause of `bench run`'s own load.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub idle_timeout: Duration,
    /// proactor-uring: a kernel thread polls the submission queue (IORING_SETUP_SQPOLL), so
    /// submitting costs no system call; it needs a spare CPU to pay off.
    #[arg(long)]
    pub uring_sqpoll: bool,
    /// proactor-uring: zero-copy sends (SEND_ZC) for replies of 3 KiB or more.
    #[arg(long)]
    pub uring_zc: bool,
    /// proactor-uring: each ring accepts on its own SO_REUSEPORT listener (per-thread, the
    /// default) or all rings accept on one (shared).
    #[arg(long, value_parser = choice::<UringListener>())]
    pub uring_listener: Option<UringListener>,
}

impl HandlerArgs {
    /// The `--uring-*` options, defaulted.
    pub fn uring(&self) -> UringOptions {
        UringOptions {
            sqpoll: self.uring_sqpoll,
            zc: self.uring_zc,
            listener: self.uring_listener.unwrap_or_default(),
        }
    }

    /// Whether any `--uring-*` option was given.
    pub fn uring_given(&self) -> bool {
        self.uring_sqpoll || self.uring_zc || self.uring_listener.is_some()
    }
}

#[derive(Debug, Args, Clone)]
pub struct ServeArgs {
    /// The model to serve (see `bench models`).
    #[arg(long, value_parser = parse_model)]
    pub model: &'static Model,
    /// The protocol to serve.
    #[arg(long, value_parser = choice::<Workload>(), default_value_t = Workload::Echo)]
    pub workload: Workload,
    /// Address to listen on; port 0 picks a free port (printed in the ready line).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Pin the server to these CPUs (e.g. 0, 0-3, 0,2).
    #[arg(long, value_parser = parse_cpu_list)]
    pub cpus: Option<CpuList>,
    /// Stop after this long (e.g. 30s) instead of waiting for SIGINT/SIGTERM.
    #[arg(long, value_parser = parse_positive_duration)]
    pub duration: Option<Duration>,
    /// Size of one echo request, so --work-us/--block-us are charged per request; without it
    /// they are charged per read.
    #[arg(long, value_parser = parse_size)]
    pub message_size: Option<usize>,
    /// Also take commands on stdin, one per line: `counters` prints the counters now, `stop`
    /// (or the end of input) stops the server. `bench run` drives its servers this way on
    /// Windows, which has no SIGUSR1.
    #[arg(long)]
    pub stdin_control: bool,
    #[command(flatten)]
    pub handler: HandlerArgs,
}

/// Options of the load generator, shared by `load` and `run`.
#[derive(Debug, Args, Clone)]
pub struct LoadShape {
    /// The protocol to drive: echo (the default), or http (the default for an http:// target).
    #[arg(long, value_parser = choice::<Workload>())]
    pub workload: Option<Workload>,
    /// Concurrent connections.
    #[arg(long, short = 'c', default_value = "50", value_parser = parse_count)]
    pub connections: usize,
    /// Measured time (e.g. 10s, 500ms, 2m).
    #[arg(long, short = 'd', default_value = "5s", value_parser = parse_positive_duration)]
    pub duration: Duration,
    /// Warm-up before measuring, excluded from every figure.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Echo request size in bytes (e.g. 64, 4k, 1m).
    #[arg(long, default_value = "64", value_parser = parse_size)]
    pub payload: usize,
    /// Requests written on a connection before reading their answers (TechEmpower's plaintext
    /// test uses 16); each answer's latency runs from the batch's start.
    #[arg(long, short = 'p', default_value = "1", value_parser = parse_count)]
    pub pipeline: usize,
    /// A request unanswered for this long fails its connection (error kind `timeout`; checked
    /// every 10 ms). Default: none (unanswered requests are reported as stalled instead).
    #[arg(long, value_parser = parse_positive_duration)]
    pub timeout: Option<Duration>,
    /// Open loop: send this many requests per second over all connections (e.g. 1000, 20k),
    /// each at its due time whatever the server does, and time each from its due time
    /// (corrected for coordinated omission; the latency from the send is reported too).
    /// Default: closed loop (each connection sends when its last answer is in).
    #[arg(long, value_parser = parse_rate)]
    pub rate: Option<f64>,
    /// Length of one interval of the time series in the result (requests, errors, p50, p99
    /// per interval).
    #[arg(long, default_value = "1s", value_parser = parse_positive_duration)]
    pub interval: Duration,
    /// Print nothing while running.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Run the load generator in this many processes, connections, threads and rate split
    /// evenly (one process can open only so many files). Default: one, or as many as the
    /// open-file limit needs for the connections (said when it happens).
    #[arg(long, value_parser = parse_count)]
    pub client_processes: Option<usize>,
}

#[derive(Debug, Args, Clone)]
pub struct LoadArgs {
    /// The server to drive: HOST:PORT (e.g. 127.0.0.1:7000), or http://HOST:PORT/PATH for
    /// the HTTP workload (HOST:PORT with --workload http asks for /plaintext).
    #[arg(long)]
    pub target: String,
    /// HTTP: the body every response must carry (a response with another counts as error
    /// `body`). Without it, bodies are framed but not compared.
    #[arg(long)]
    pub expect_body: Option<String>,
    /// Client threads; connections are spread over them. Default: the number of client CPUs.
    #[arg(long, short = 't', value_parser = parse_count)]
    pub threads: Option<usize>,
    /// Pin the client threads to these CPUs.
    #[arg(long, value_parser = parse_cpu_list)]
    pub cpus: Option<CpuList>,
    /// Also write the result to this JSON file (the same format as `bench run`).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Drive only segment I of N of the run the other options describe (I from 1): its stripe
    /// of the connections and threads, and its part of the open loop's schedule, so that N
    /// segments on N hosts together send exactly what one process would. --connections,
    /// --rate and --threads are the whole run's (default threads: this host's client CPUs
    /// times N). Merge the segments' --json files with `bench merge`.
    #[arg(long, value_name = "I/N", value_parser = crate::load::parse_segment)]
    pub segment: Option<Segment>,
    /// Start at this wall-clock time, RFC 3339 (e.g. 2026-12-02T18:00:00Z), instead of as
    /// soon as every connection is up: segments on several hosts given one time warm up and
    /// measure the same window. Each records how late it started.
    #[arg(long, value_name = "TIME", value_parser = crate::load::parse_start_at)]
    pub start_at: Option<StartAt>,
    #[command(flatten)]
    pub shape: LoadShape,
}

#[derive(Debug, Args, Clone)]
#[command(group = clap::ArgGroup::new("which").required(true).multiple(true).args(["model", "all", "server"]))]
pub struct RunArgs {
    /// A model to run; repeat the option for several (see `bench models`).
    #[arg(long, value_parser = parse_model)]
    pub model: Vec<&'static Model>,
    /// Run every model available here.
    #[arg(long)]
    pub all: bool,
    /// An outside server to run beside the models, as NAME=COMMAND (repeatable): COMMAND is
    /// split into words as a shell would and run without a shell, {port} replaced by a free
    /// port on 127.0.0.1 (and {threads}, {cpus} by the server's thread count and CPUs); it is
    /// pinned, counted and stopped as a model is, its whole process tree (Linux). E.g.
    /// --server redis='redis-server --port {port} --save "" --appendonly no'
    #[arg(long, value_name = "NAME=COMMAND", value_parser = parse_server)]
    pub server: Vec<OutsideServer>,
    /// Runs per model; models are interleaved (A B C A B C) and the table shows medians.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub repeat: u64,
    /// CPUs for the server. Default: the first CPU.
    #[arg(long, value_parser = parse_cpu_list)]
    pub server_cpus: Option<CpuList>,
    /// CPUs for the load generator. Default: every other CPU.
    #[arg(long, value_parser = parse_cpu_list)]
    pub client_cpus: Option<CpuList>,
    /// Load generator threads. Default: the number of client CPUs.
    #[arg(long, value_parser = parse_count)]
    pub client_threads: Option<usize>,
    /// Result file. Default: results/run-<UTC time>.json.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Let a build with uncommitted changes write a reference or baseline result (under
    /// results/reference/ or results/baseline/), and accept a `--baseline` made by one; both
    /// are refused by default.
    #[arg(long)]
    pub allow_dirty: bool,
    /// After the run, compare its result with this baseline result file (as `bench compare
    /// BASELINE RESULT`): the verdict is printed and a regression makes the exit code 1.
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// With --baseline: compare figures as ratios to this model (see `bench compare`).
    #[arg(long, requires = "baseline")]
    pub normalize_to: Option<String>,
    /// Write no report (by default a report folder is written beside the result file:
    /// results/run-X.json -> results/run-X/ with report.md, index.html and the charts).
    #[arg(long)]
    pub no_report: bool,
    /// System-call counting (Linux perf tracepoints): `separate` (the default) counts the
    /// server, then the load generator, in short passes of their own (1 s after 0.5 s of
    /// warm-up, or the timed pass's lengths when shorter), so that counting cannot slow the
    /// timed pass; `same`
    /// counts during the timed pass (faster; the counters slow syscall-heavy servers by
    /// 20-35%); `off`. Given explicitly, a machine that cannot count is an error (exit 3);
    /// by default the run goes on and says why there are no counts.
    #[arg(long, value_parser = choice::<Accounting>())]
    pub accounting: Option<Accounting>,
    /// Take options from this TOML file (keys: bench run's options, and `models`; a [matrix]
    /// section sweeps values); options on the command line win. See scenarios/.
    #[arg(long)]
    pub scenario: Option<PathBuf>,
    /// Find the highest rate each model serves within this latency objective (e.g. p99=2ms;
    /// repeat the option for several, all must hold): a closed-loop probe for the ceiling,
    /// then open-loop probes (--rate) in a bracketing search; every probe is recorded.
    #[arg(long, value_parser = parse_slo)]
    pub slo: Vec<Slo>,
    #[command(flatten)]
    pub shape: LoadShape,
    #[command(flatten)]
    pub handler: HandlerArgs,
}

/// clap value parser for `--server`: NAME=COMMAND.
fn parse_server(spec: &str) -> Result<OutsideServer, String> {
    OutsideServer::parse(spec)
}

/// clap value parser for `--model`: any known model name.
fn parse_model(name: &str) -> Result<&'static Model, String> {
    crate::models::find(name)
}
