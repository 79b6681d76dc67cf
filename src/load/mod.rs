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

mod alarm;
pub mod http;
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
pub use worker::OpenLoop;

/// Above this share of its CPUs busy, the client was the bottleneck (METHOD.md section 2).
pub const SATURATED_BUSY: f64 = 0.90;

/// A server that answered nothing for this long at the end of the measured window, while
/// requests waited for it, stalled: the run fails.
pub const STALL_AFTER: Duration = Duration::from_secs(1);

/// What to drive and how hard.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    pub target: SocketAddr,
    pub workload: Workload,
    pub connections: usize,
    pub threads: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub payload: usize,
    /// Requests written on a connection before its answers are read.
    pub pipeline: usize,
    /// A batch unanswered for this long fails its connection (error kind `timeout`).
    pub timeout: Option<Duration>,
    /// The HTTP request, for the HTTP workload.
    pub http: Option<HttpRequest>,
    /// Pin the client threads to these CPUs.
    pub cpus: Option<CpuList>,
    /// Time series interval.
    pub interval: Duration,
    /// Count the load threads' own system calls over the window (Linux perf).
    pub count_syscalls: bool,
    /// How long the connect phase may take before the run goes on without the missing ones.
    pub connect_timeout: Duration,
    /// Open loop: requests per second over every connection (`None`: closed loop).
    pub rate: Option<f64>,
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
pub fn run_load(
    config: &LoadConfig,
    stop: &AtomicBool,
    on_edge: &mut dyn FnMut(Edge),
) -> anyhow::Result<LoadOutcome> {
    let threads = config.threads.clamp(1, config.connections.max(1));
    let pattern: Arc<[u8]> = match config.workload {
        Workload::Echo => worker::pattern(config.payload).into(),
        Workload::Http => Arc::new([]),
    };
    let http = match (config.workload, &config.http) {
        (Workload::Http, Some(request)) => Some(http::HttpCheck::new(request, config.pipeline)),
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
    let mut first = 0;
    let lives: Vec<Arc<Live>> = (0..threads).map(|_| Arc::new(Live::default())).collect();
    for (t, live) in lives.iter().enumerate() {
        let live = live.clone();
        // Spread connections evenly: the first `rem` threads take one more.
        let share = config.connections / threads + usize::from(t < config.connections % threads);
        let schedule = config.rate.map(|rate| worker::Schedule {
            rate,
            connections: config.connections as u64,
            first: first as u64,
        });
        first += share;
        let exchange = match &http {
            Some(check) => worker::Exchange::Http(check.clone()),
            None => worker::Exchange::Echo {
                payload: config.payload,
                pattern: pattern.clone(),
            },
        };
        let (config, cut, ready) = (config.clone(), cut.clone(), ready_tx.clone());
        let counters = counters_tx.clone();
        let (go_tx, go_rx) = mpsc::channel::<Timeline>();
        go.push(go_tx);
        let handle = std::thread::Builder::new()
            .name(format!("load-{t}"))
            .spawn(move || -> anyhow::Result<Option<worker::Part>> {
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

    let setup_failure = wait_ready(&ready_rx, &handles, threads, stop, &cut);
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
    let start = Instant::now();
    let window_start = start + config.warmup;
    let line = Timeline {
        start,
        window_start,
        end: window_start + config.duration,
        interval: config.interval,
    };
    let mut usage = None;
    let mut interrupted = cut.load(Ordering::Acquire);
    if setup_failure.is_none() && !interrupted {
        for tx in &go {
            let _ = tx.send(line);
        }
        interrupted = watch_until(start, window_start, stop, None, on_edge);
        if !interrupted {
            let before = sys::rusage_self().unwrap_or_default();
            if config.count_syscalls {
                client_snapshots.push(read_all(&mut thread_counters));
            }
            on_edge(Edge::WindowStart);
            interrupted = watch_until(window_start, line.end, stop, Some(&lives), on_edge);
            let after = sys::rusage_self().unwrap_or_default();
            if config.count_syscalls {
                client_snapshots.push(read_all(&mut thread_counters));
            }
            on_edge(Edge::WindowEnd);
            usage = Some((before, after));
        }
    }
    // Workers still waiting for a timeline return at once; the others close their connections.
    drop(go);
    if interrupted {
        cut.store(true, Ordering::Release);
    }
    let window_end = Instant::now().clamp(window_start, line.end);

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
    let (before, after) = usage.unwrap_or_default();
    let window = window_end.saturating_duration_since(window_start);
    let client_cpus = config
        .cpus
        .as_ref()
        .map(CpuList::len)
        .or_else(|| sys::allowed_cpus().ok().map(|c| c.len()))
        .unwrap_or(1)
        .min(threads)
        .max(1);
    let client = client_cost(&before, &after, window, client_cpus);
    let mut outcome = worker::merge(parts, window, client, interrupted, line);
    if config.count_syscalls {
        outcome.client_syscalls = Some(match client_snapshots.as_slice() {
            [Ok(start), Ok(end)] => Ok(end.since(start)),
            [Err(why), ..] | [_, Err(why)] => Err(why.clone()),
            _ => Err("the measured window did not complete, so there are no counts".into()),
        });
    }
    Ok(outcome)
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
    stop: &AtomicBool,
    cut: &AtomicBool,
) -> Option<String> {
    let mut up = 0;
    while up < threads {
        match ready.recv_timeout(Duration::from_millis(50)) {
            Ok(Ok(())) => up += 1,
            Ok(Err(why)) => return Some(why),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if stop.load(Ordering::Acquire) {
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

fn client_cost(
    before: &sys::Rusage,
    after: &sys::Rusage,
    window: Duration,
    cpus: usize,
) -> ClientCost {
    let user = (after.user_s - before.user_s).max(0.0);
    let sys = (after.sys_s - before.sys_s).max(0.0);
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
    }
}

/// Sleeps through the phase from `from` to `deadline` in short steps, ticking twice a second
/// (with the workers' totals when `lives` are given: the measured window); `true` when `stop`
/// was raised first.
fn watch_until(
    from: Instant,
    deadline: Instant,
    stop: &AtomicBool,
    lives: Option<&[Arc<Live>]>,
    on_edge: &mut dyn FnMut(Edge),
) -> bool {
    let length = deadline.saturating_duration_since(from);
    let mut next_tick = from + TICK;
    let (mut last_at, mut last_requests) = (from, 0);
    let mut p99_us = None;
    let mut p99_slot = None;
    loop {
        if stop.load(Ordering::Acquire) {
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
