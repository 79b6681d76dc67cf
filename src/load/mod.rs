//! The load generator: closed loop, or open loop at a fixed rate (`--rate`, latency corrected
//! for coordinated omission), TCP echo or HTTP/1.1, over many connections and a few threads.
//!
//! `--connections C` are spread over `--threads T` client threads; each thread drives its share
//! without blocking (mio, edge-triggered) and keeps its own histograms, merged at the end.
//! Every echoed byte is compared with what was sent; every HTTP response is parsed and checked. A run has three phases on one shared
//! timeline: connect (every connection established before the clock starts), warm-up (requests
//! run but are not recorded), and the measured window. Requests completing inside the window
//! are recorded; the caller is told when the window opens and closes, so that it can snapshot
//! the server's counters at the same edges.
//!
//! One process may open only so many descriptors (FACTS.md: 20,000 here, which one process
//! cannot fill with 20,000 sockets and still have room for itself), so the connections can
//! also be driven by several client processes (`--client-processes N`, or on its own when the
//! connections would not fit in one): `split.rs` is the parent's side, `process.rs` the
//! child's, `wire.rs` what they say to each other. Every process follows the same timeline
//! and the parent merges their tallies as if every thread had run in it.

mod alarm;
mod conn;
mod connect;
mod exchange;
pub mod http;
mod part;
mod process;
mod schedule;
mod shape;
mod split;
mod tally;
mod wire;
mod worker;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::config::CpuList;
use crate::metrics::histogram::LatencySummary;
use crate::metrics::syscalls::{SyscallCounters, SyscallCounts};
use crate::protocol::Workload;
use crate::sys;

pub use http::HttpRequest;
pub use part::OpenLoop;
pub use process::run_client_process;
pub use shape::Shape;
pub use split::{plan_processes, ProcessPlan};

/// Above this share of its CPUs busy, the client was the bottleneck (METHOD.md section 2).
pub const SATURATED_BUSY: f64 = 0.90;

/// A server that answered nothing for this long at the end of the measured window, while
/// requests waited for it, stalled: the run fails.
pub const STALL_AFTER: Duration = Duration::from_secs(1);

/// What to drive and how hard.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    pub target: SocketAddr,
    /// What to send, over how many connections, for how long and how fast.
    pub shape: Shape,
    pub threads: usize,
    /// The HTTP request, for the HTTP workload.
    pub http: Option<HttpRequest>,
    /// Pin the client threads to these CPUs.
    pub cpus: Option<CpuList>,
    /// Count the load threads' own system calls over the window (Linux perf).
    pub count_syscalls: bool,
    /// How long the connect phase may take before the run goes on without the missing ones.
    pub connect_timeout: Duration,
    /// Client processes to drive the connections: 1 runs every thread in this process;
    /// more splits connections, threads and rate evenly over that many child processes
    /// ([`plan_processes`] says how many are needed).
    pub processes: usize,
}

/// How long the connect phase may take for `connections`: 10 s, and a millisecond more per
/// connection (a `blocking` server, which starts a thread per accepted connection, took 7 s
/// and more to accept 10,000 here while the machine was busy).
pub fn connect_timeout(connections: usize) -> Duration {
    Duration::from_secs(10) + Duration::from_millis(connections as u64)
}

/// What the caller of [`run_load`] hears about while the load runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Edge {
    /// The measured window opens.
    WindowStart,
    /// The measured window closes.
    WindowEnd,
    /// Twice a second, for a live progress line.
    Tick(Tick),
}

/// How the run is going.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tick {
    /// Still warming up (the figures below are then zero).
    pub warming_up: bool,
    /// Time into the current phase, and the phase's length.
    pub elapsed: Duration,
    pub length: Duration,
    /// Answers per second since the last tick.
    pub rps: f64,
    /// Answers and errors since the window opened.
    pub requests: u64,
    pub errors: u64,
    /// p99 latency (µs) of the last whole interval of the time series, when one has ended.
    pub p99_us: Option<u64>,
}

/// How often [`Edge::Tick`] comes.
const TICK: Duration = Duration::from_millis(500);

/// A worker's running totals, read by the calling thread for the progress line.
#[derive(Default)]
struct Live {
    requests: std::sync::atomic::AtomicU64,
    errors: std::sync::atomic::AtomicU64,
    /// The last finished interval of the time series: its index and histogram.
    last_interval: std::sync::Mutex<Option<(usize, Histogram<u64>)>>,
}

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
    pub syscalls: Option<serde_json::Value>,
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

/// The shared timeline, fixed once every connection is established.
#[derive(Clone, Copy, Debug)]
struct Timeline {
    /// The go signal: the warm-up starts, and the open loop's first request is due.
    start: Instant,
    window_start: Instant,
    end: Instant,
    interval: Duration,
}

/// Runs the load; `on_edge` is called on the calling thread as the window opens and closes,
/// and with a [`Tick`] twice a second.
/// `stop` cuts the run short (the outcome then says `interrupted`).
///
/// With `config.processes` above 1 the connections are driven by that many client processes
/// (`split.rs`); otherwise by threads of this process.
pub fn run_load(
    config: &LoadConfig,
    stop: &AtomicBool,
    on_edge: &mut dyn FnMut(Edge),
) -> anyhow::Result<LoadOutcome> {
    if config.processes > 1 {
        return split::run(config, stop, on_edge);
    }
    let whole = Slice {
        first: 0,
        total: config.shape.connections as u64,
    };
    let stopped = || stop.load(Ordering::Acquire);
    let local = run_local(
        config,
        whole,
        &stopped,
        &mut || Some(Instant::now()),
        on_edge,
    )?;
    let cpu = local.cpu.unwrap_or_default();
    let client = client_cost(cpu, local.window, client_cpus(config, local.threads));
    let mut outcome = part::merge(
        local.parts,
        local.window,
        client,
        local.interrupted,
        local.timeline,
    );
    outcome.threads = local.threads;
    outcome.client_syscalls = local.client_syscalls;
    Ok(outcome)
}

/// Which of the run's connections a process drives: `first` (the run-wide index of its first
/// connection) and the run's total, so that the open loop's schedule deals the rate over every
/// connection of every process.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
struct Slice {
    first: u64,
    total: u64,
}

/// What the threads of one process measured.
struct Local {
    parts: Vec<part::Part>,
    /// This process's CPU time over the window (user, system); `None` when the window did not
    /// complete.
    cpu: Option<(f64, f64)>,
    interrupted: bool,
    /// The window's real length.
    window: Duration,
    timeline: Timeline,
    /// With `count_syscalls`: the load threads' system calls over the window, or why not.
    client_syscalls: Option<Result<SyscallCounts, String>>,
    threads: usize,
}

/// This process's share of a run: `config.connections` connections (the run's `slice`) over
/// `config.threads` threads, from connecting to their tallies. Once every connection is up,
/// `start` gives the go time (the timeline starts there; `None`: do not start); `stopped`
/// cuts the run short; `on_edge` hears the window's edges and the ticks, on this thread.
fn run_local(
    config: &LoadConfig,
    slice: Slice,
    stopped: &dyn Fn() -> bool,
    start: &mut dyn FnMut() -> Option<Instant>,
    on_edge: &mut dyn FnMut(Edge),
) -> anyhow::Result<Local> {
    let shape = &config.shape;
    let threads = config.threads.clamp(1, shape.connections.max(1));
    let pattern: Arc<[u8]> = match shape.workload {
        Workload::Echo => exchange::pattern(shape.payload).into(),
        Workload::Http => Arc::new([]),
    };
    let http = match (shape.workload, &config.http) {
        (Workload::Http, Some(request)) => Some(http::HttpCheck::new(request, shape.pipeline)),
        (Workload::Http, None) => anyhow::bail!("the HTTP workload needs a request to send"),
        (Workload::Echo, _) => None,
    };
    // Raised when the caller's `stop` cuts the run short; workers otherwise stop at the end.
    let cut = Arc::new(AtomicBool::new(false));
    // Each worker reports once its connections are up (or why it could not start), then waits
    // for the timeline on its own channel. Channels, not barriers: a worker that fails or
    // panics during setup cannot leave the others, or this thread, waiting for ever.
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
    // With `count_syscalls`, each worker's counters on itself, read here at the window's edges.
    let (counters_tx, counters_rx) = mpsc::channel::<Result<SyscallCounters, String>>();
    let mut go = Vec::with_capacity(threads);
    let mut handles = Vec::with_capacity(threads);
    let mut first = slice.first as usize;
    let lives: Vec<Arc<Live>> = (0..threads).map(|_| Arc::new(Live::default())).collect();
    for (t, live) in lives.iter().enumerate() {
        let live = live.clone();
        // Spread connections evenly: the first `rem` threads take one more.
        let share = shape.connections / threads + usize::from(t < shape.connections % threads);
        let schedule = shape.rate.map(|rate| schedule::Schedule {
            rate,
            connections: slice.total,
            first: first as u64,
        });
        first += share;
        let exchange = match &http {
            Some(check) => exchange::Exchange::Http(check.clone()),
            None => exchange::Exchange::Echo {
                payload: shape.payload,
                pattern: pattern.clone(),
            },
        };
        let (config, cut, ready) = (config.clone(), cut.clone(), ready_tx.clone());
        let counters = counters_tx.clone();
        let (go_tx, go_rx) = mpsc::channel::<Timeline>();
        go.push(go_tx);
        let handle = std::thread::Builder::new()
            .name(format!("load-{t}"))
            .spawn(move || -> anyhow::Result<Option<part::Part>> {
                if config.count_syscalls {
                    let _ = counters.send(SyscallCounters::open_on_this_thread());
                }
                drop(counters);
                let setup = || -> anyhow::Result<worker::Worker> {
                    if let Some(cpus) = &config.cpus {
                        sys::pin_current_thread(cpus.cpus()).with_context(|| {
                            format!("cannot pin the load threads to CPUs {cpus}")
                        })?;
                    }
                    let mut w = worker::Worker::new(&config, t, share, exchange, schedule, live)
                        .context("cannot create a poller for the load generator")?;
                    w.connect_all(config.connect_timeout, &cut);
                    Ok(w)
                };
                let mut w = match setup() {
                    Ok(w) => w,
                    Err(e) => {
                        let _ = ready.send(Err(format!("{e:#}")));
                        return Err(e);
                    }
                };
                let _ = ready.send(Ok(()));
                let Ok(timeline) = go_rx.recv() else {
                    return Ok(None);
                };
                let part = w.run(timeline, &cut);
                // Keep the connections open until the closing snapshot of the server has been
                // taken (the sender is dropped then): closing them at the edge would race
                // the snapshot (a thread-per-connection server's threads would be exiting).
                let _ = go_rx.recv();
                drop(w);
                Ok(Some(part))
            })
            .context("cannot start a load thread")?;
        handles.push(handle);
    }
    drop(ready_tx);
    drop(counters_tx);

    let setup_failure = wait_ready(&ready_rx, &handles, threads, stopped, &cut);
    // Every worker sent its counters before it reported ready (or died: then there are fewer).
    let mut thread_counters: Result<Vec<SyscallCounters>, String> = Ok(Vec::new());
    if config.count_syscalls {
        for opened in counters_rx.try_iter() {
            thread_counters = match (thread_counters, opened) {
                (Ok(mut all), Ok(c)) => {
                    all.push(c);
                    Ok(all)
                }
                (Err(why), _) | (_, Err(why)) => Err(why),
            };
        }
    }
    let mut client_snapshots: Vec<Result<SyscallCounts, String>> = Vec::new();
    let mut interrupted = cut.load(Ordering::Acquire);
    let go_at = match (&setup_failure, interrupted) {
        (None, false) => start(),
        _ => None,
    };
    interrupted |= setup_failure.is_none() && go_at.is_none();
    let line = timeline(go_at.unwrap_or_else(Instant::now), config);
    let mut cpu = None;
    if let Some(start) = go_at {
        for tx in &go {
            let _ = tx.send(line);
        }
        interrupted = watch_until(start, line.window_start, stopped, None, on_edge);
        if !interrupted {
            let before = sys::rusage_self().unwrap_or_default();
            if config.count_syscalls {
                client_snapshots.push(read_all(&mut thread_counters));
            }
            on_edge(Edge::WindowStart);
            interrupted = watch_until(line.window_start, line.end, stopped, Some(&lives), on_edge);
            let after = sys::rusage_self().unwrap_or_default();
            if config.count_syscalls {
                client_snapshots.push(read_all(&mut thread_counters));
            }
            on_edge(Edge::WindowEnd);
            cpu = Some((
                (after.user_s - before.user_s).max(0.0),
                (after.sys_s - before.sys_s).max(0.0),
            ));
        }
    }
    // Workers still waiting for a timeline return at once; the others close their connections.
    drop(go);
    if interrupted {
        cut.store(true, Ordering::Release);
    }
    let window_end = Instant::now().clamp(line.window_start, line.end);

    let mut parts = Vec::with_capacity(threads);
    let mut first_error = None;
    for handle in handles {
        match handle.join() {
            Ok(Ok(Some(part))) => parts.push(part),
            Ok(Ok(None)) => {}
            Ok(Err(e)) => first_error = first_error.or(Some(e)),
            Err(_) => first_error = first_error.or(Some(anyhow::anyhow!("a load thread panicked"))),
        }
    }
    if let Some(e) = first_error.or(setup_failure.map(|why| anyhow::anyhow!(why))) {
        return Err(e);
    }
    let client_syscalls = config
        .count_syscalls
        .then(|| match client_snapshots.as_slice() {
            [Ok(start), Ok(end)] => Ok(end.since(start)),
            [Err(why), ..] | [_, Err(why)] => Err(why.clone()),
            _ => Err("the measured window did not complete, so there are no counts".into()),
        });
    Ok(Local {
        parts,
        cpu,
        interrupted,
        window: window_end.saturating_duration_since(line.window_start),
        timeline: line,
        client_syscalls,
        threads,
    })
}

/// The run's timeline from its go time.
fn timeline(start: Instant, config: &LoadConfig) -> Timeline {
    let window_start = start + config.shape.warmup;
    Timeline {
        start,
        window_start,
        end: window_start + config.shape.duration,
        interval: config.shape.interval,
    }
}

/// The CPUs the client's threads could use: those it is pinned to (or allowed), at most one
/// per thread.
fn client_cpus(config: &LoadConfig, threads: usize) -> usize {
    config
        .cpus
        .as_ref()
        .map(CpuList::len)
        .or_else(|| sys::allowed_cpus().ok().map(|c| c.len()))
        .unwrap_or(1)
        .min(threads)
        .max(1)
}

/// The sum of every load thread's counts now.
fn read_all(counters: &mut Result<Vec<SyscallCounters>, String>) -> Result<SyscallCounts, String> {
    let counters = counters.as_mut().map_err(|why| why.clone())?;
    let mut sum = SyscallCounts::default();
    for c in counters.iter_mut() {
        sum.add(&c.read()?);
    }
    Ok(sum)
}

/// Waits until every worker has its connections up. Returns why a worker could not start, if
/// one could not; raises `cut` (so the workers give up connecting) when `stop` is raised.
fn wait_ready<T>(
    ready: &mpsc::Receiver<Result<(), String>>,
    handles: &[std::thread::JoinHandle<T>],
    threads: usize,
    stopped: &dyn Fn() -> bool,
    cut: &AtomicBool,
) -> Option<String> {
    let mut up = 0;
    while up < threads {
        match ready.recv_timeout(Duration::from_millis(50)) {
            Ok(Ok(())) => up += 1,
            Ok(Err(why)) => return Some(why),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if stopped() {
                    cut.store(true, Ordering::Release);
                }
                // A worker that finished without reporting died (a panic) during setup.
                if handles.iter().filter(|h| h.is_finished()).count() > 0 {
                    return Some("a load thread died while connecting".into());
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Some("every load thread died while connecting".into())
            }
        }
    }
    None
}

/// The client's cost from its CPU time over the window (user, system; every client process's
/// together) and the CPUs its threads could use.
fn client_cost((user, sys): (f64, f64), window: Duration, cpus: usize) -> ClientCost {
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

/// Sleeps through the phase from `from` to `deadline` in short steps, ticking twice a second
/// (with the workers' totals when `lives` are given: the measured window); `true` when
/// `stopped` said so first.
fn watch_until(
    from: Instant,
    deadline: Instant,
    stopped: &dyn Fn() -> bool,
    lives: Option<&[Arc<Live>]>,
    on_edge: &mut dyn FnMut(Edge),
) -> bool {
    let length = deadline.saturating_duration_since(from);
    let mut next_tick = from + TICK;
    let (mut last_at, mut last_requests) = (from, 0);
    let mut p99_us = None;
    let mut p99_slot = None;
    loop {
        if stopped() {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        if now >= next_tick {
            next_tick += TICK;
            let mut tick = Tick {
                warming_up: lives.is_none(),
                elapsed: now - from,
                length,
                rps: 0.0,
                requests: 0,
                errors: 0,
                p99_us,
            };
            if let Some(lives) = lives {
                let sum = |f: fn(&Live) -> u64| lives.iter().map(|l| f(l)).sum::<u64>();
                tick.requests = sum(|l| l.requests.load(Ordering::Relaxed));
                tick.errors = sum(|l| l.errors.load(Ordering::Relaxed));
                tick.rps = (tick.requests - last_requests) as f64
                    / now.duration_since(last_at).as_secs_f64().max(1e-9);
                (last_at, last_requests) = (now, tick.requests);
                // The latest interval any worker finished, merged over the workers that did.
                let mut merged: Option<(usize, Histogram<u64>)> = None;
                for live in lives {
                    let Ok(last) = live.last_interval.lock() else {
                        continue;
                    };
                    if let Some((slot, h)) = last.as_ref() {
                        match merged.as_mut() {
                            Some((s, m)) if s == slot => {
                                let _ = m.add(h);
                            }
                            Some((s, _)) if *s > *slot => {}
                            _ => merged = Some((*slot, h.clone())),
                        }
                    }
                }
                if let Some((slot, h)) = merged.filter(|(slot, _)| Some(*slot) >= p99_slot) {
                    p99_slot = Some(slot);
                    p99_us = (!h.is_empty()).then(|| h.value_at_quantile(0.99));
                    tick.p99_us = p99_us;
                }
            }
            on_edge(Edge::Tick(tick));
        }
        let wake = deadline.min(next_tick);
        std::thread::sleep((wake - now).min(Duration::from_millis(20)));
    }
}
