//! The load generator: closed-loop TCP echo over many connections and a few threads.
//!
//! `--connections C` are spread over `--threads T` client threads; each thread drives its share
//! without blocking (mio, edge-triggered) and keeps its own histograms, merged at the end.
//! Every echoed byte is compared with what was sent. A run has three phases on one shared
//! timeline: connect (every connection established before the clock starts), warm-up (requests
//! run but are not recorded), and the measured window. Requests completing inside the window
//! are recorded; the caller is told when the window opens and closes, so that it can snapshot
//! the server's counters at the same edges.

mod worker;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Barrier, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::config::CpuList;
use crate::metrics::histogram::LatencySummary;
use crate::protocol::Workload;
use crate::sys;

/// Above this share of its CPUs busy, the client was the bottleneck (METHOD.md section 2).
pub const SATURATED_BUSY: f64 = 0.90;

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
    /// Pin the client threads to these CPUs.
    pub cpus: Option<CpuList>,
    /// Time series interval.
    pub interval: Duration,
    /// How long the connect phase may take before the run goes on without the missing ones.
    pub connect_timeout: Duration,
}

/// The two edges of the measured window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Edge {
    WindowStart,
    WindowEnd,
}

/// One interval of the time series.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Interval {
    pub t_s: f64,
    pub requests: u64,
    pub errors: u64,
    pub p50_us: f64,
    pub p99_us: f64,
}

/// The client's own cost over the measured window.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ClientCost {
    pub cpu_user_s: f64,
    pub cpu_sys_s: f64,
    /// CPU time over (window x CPUs the client threads could use).
    pub busy_fraction: f64,
    pub saturated: bool,
}

/// What a load run measured.
#[derive(Debug)]
pub struct LoadOutcome {
    pub histogram: Histogram<u64>,
    pub requests: u64,
    pub errors: BTreeMap<String, u64>,
    pub timeseries: Vec<Interval>,
    /// The measured window's real length.
    pub window: Duration,
    pub client: ClientCost,
    /// Requests sent but not answered when the window closed.
    pub unfinished: u64,
    /// Connections that completed no request in the window.
    pub starved_connections: u64,
    /// Connections established in the connect phase.
    pub connected: u64,
    /// The run was cut short by a stop request (SIGINT, SIGTERM).
    pub interrupted: bool,
}

impl LoadOutcome {
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    pub fn throughput_rps(&self) -> f64 {
        self.requests as f64 / self.window.as_secs_f64().max(1e-9)
    }

    pub fn latency(&self) -> LatencySummary {
        LatencySummary::of(&self.histogram)
    }
}

/// The shared timeline, fixed once every connection is established.
#[derive(Clone, Copy, Debug)]
struct Timeline {
    window_start: Instant,
    end: Instant,
    interval: Duration,
}

/// Runs the load; `on_edge` is called on the calling thread as the window opens and closes.
/// `stop` cuts the run short (the outcome then says `interrupted`).
pub fn run_load(
    config: &LoadConfig,
    stop: &AtomicBool,
    on_edge: &mut dyn FnMut(Edge),
) -> anyhow::Result<LoadOutcome> {
    let threads = config.threads.clamp(1, config.connections.max(1));
    let pattern: Arc<[u8]> = worker::pattern(config.payload).into();
    let connected = Arc::new(Barrier::new(threads + 1));
    let go = Arc::new(Barrier::new(threads + 1));
    let timeline = Arc::new(OnceLock::<Timeline>::new());
    // Raised when the caller's `stop` cuts the run short; workers otherwise stop at the end.
    let cut = Arc::new(AtomicBool::new(false));

    let mut handles = Vec::with_capacity(threads);
    for t in 0..threads {
        // Spread connections evenly: the first `rem` threads take one more.
        let share = config.connections / threads + usize::from(t < config.connections % threads);
        let (config, pattern) = (config.clone(), pattern.clone());
        let (connected, go, timeline, cut) =
            (connected.clone(), go.clone(), timeline.clone(), cut.clone());
        let handle = std::thread::Builder::new()
            .name(format!("load-{t}"))
            .spawn(move || {
                if let Some(cpus) = &config.cpus {
                    sys::pin_current_thread(cpus.cpus())
                        .with_context(|| format!("cannot pin the load threads to CPUs {cpus}"))?;
                }
                let mut w = worker::Worker::new(&config, t, share, pattern)?;
                w.connect_all(config.connect_timeout);
                connected.wait();
                go.wait();
                let timeline = *timeline
                    .get()
                    .expect("timeline is set before the go barrier");
                Ok::<_, anyhow::Error>(w.run(timeline, &cut))
            })
            .context("cannot start a load thread")?;
        handles.push(handle);
    }

    connected.wait();
    let start = Instant::now();
    let window_start = start + config.warmup;
    let line = Timeline {
        window_start,
        end: window_start + config.duration,
        interval: config.interval,
    };
    timeline.set(line).expect("the timeline is set once");
    go.wait();

    let mut usage = None;
    let mut interrupted = sleep_until(window_start, stop);
    if !interrupted {
        let before = sys::rusage_self().unwrap_or_default();
        on_edge(Edge::WindowStart);
        interrupted = sleep_until(line.end, stop);
        let after = sys::rusage_self().unwrap_or_default();
        on_edge(Edge::WindowEnd);
        usage = Some((before, after));
    }
    if interrupted {
        cut.store(true, std::sync::atomic::Ordering::Release);
    }
    let window_end = Instant::now().min(line.end);

    let mut parts = Vec::with_capacity(threads);
    for handle in handles {
        let part = handle
            .join()
            .map_err(|_| anyhow::anyhow!("a load thread panicked"))??;
        parts.push(part);
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
    Ok(worker::merge(parts, window, client, interrupted, line))
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
    }
}

/// Sleeps until `deadline` in short steps; `true` when `stop` was raised first.
fn sleep_until(deadline: Instant, stop: &AtomicBool) -> bool {
    loop {
        if stop.load(std::sync::atomic::Ordering::Acquire) {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(20)));
    }
}
