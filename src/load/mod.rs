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
//! A run can be split into segments (`segment.rs`): segment `I` of `N` drives the `I`-th stripe
//! of the connections and threads and their part of the open loop's schedule, so that `N`
//! segments together send exactly what one process would. Segments run on other hosts
//! (`bench load --segment I/N --start-at TIME`, merged by `bench merge`), or as client
//! processes of this one: one process may open only so many descriptors (20,000 on the machines
//! this is built on, DESIGN.md "Descriptors"), so the connections can be driven by several
//! client processes (`--client-processes N`, or on its own when the connections would not fit
//! in one), process `i` running segment `i/N`: `split.rs` is the parent's side, `process.rs` the
//! child's, `wire.rs` what they say to each other. Every segment follows the same timeline and
//! the merge (`merge.rs`) adds their tallies as if every thread had run in one process.
//!
//! The files, top down: this one (the configuration and [`run_load`]); `shape.rs` (the load's
//! shape); `outcome.rs` (what a run measured); `timeline.rs` (the shared timeline and its
//! watcher); `segment.rs` and `start.rs` (a segment run here, and the common start time);
//! `merge.rs` (what a segment measured, and the merge); `local.rs` (the worker threads of one
//! process); the worker's steps `connect.rs`, `open_loop.rs` and `tally.rs` (connecting and
//! failing, the open loop's releases, the recording) over `worker.rs` (one thread's event
//! loop); below it `conn.rs`, `exchange.rs` and `schedule.rs` (a connection, the bytes and their
//! checks, the open loop's due times); `part.rs` (a thread's tally and the adding of tallies);
//! `http.rs`, `alarm.rs`; and for several processes `plan.rs`, `split.rs`, `process.rs`,
//! `wire.rs`.

mod alarm;
pub mod command;
mod conn;
mod connect;
mod exchange;
pub mod http;
mod local;
mod merge;
mod open_loop;
mod outcome;
mod part;
mod plan;
mod process;
mod schedule;
mod segment;
mod shape;
mod split;
mod start;
mod tally;
mod timeline;
mod wire;
mod worker;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::sys;
use crate::units::CpuList;

pub use http::HttpRequest;
pub use merge::{merge_segments, SegmentRecord};
pub use outcome::{ClientCost, Interval, LoadOutcome, ProcessFigures, SATURATED_BUSY, STALL_AFTER};
pub use part::OpenLoop;
pub use plan::{plan_processes, ProcessPlan};
pub use process::run_client_process;
pub use segment::{parse_segment, stripe, Segment};
pub use shape::Shape;
pub use start::{parse_start_at, StartAt};
pub use timeline::{Edge, Tick};

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
    /// `--segment I/N`: drive only this segment of the run the rest describes (its stripe of
    /// the connections and threads, its part of the open loop's schedule); `None`: all of it.
    pub segment: Option<Segment>,
    /// `--start-at`: start the timeline at this wall-clock time instead of as soon as every
    /// connection is up.
    pub start_at: Option<StartAt>,
}

/// How long the connect phase may take for `connections`: 10 s, and a millisecond more per
/// connection (a `blocking` server, which starts a thread per accepted connection, took 7 s
/// and more to accept 10,000 here while the machine was busy).
pub fn connect_timeout(connections: usize) -> Duration {
    Duration::from_secs(10) + Duration::from_millis(connections as u64)
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
    if let Some(fixed) = command::fixed(config.shape.workload, config.shape.payload) {
        command::preset(config.target, &fixed, config.connect_timeout)
            .map_err(crate::Error::Measured)?;
    }
    if config.processes > 1 {
        return split::run(config, stop, on_edge);
    }
    let stopped = || stop.load(Ordering::Acquire);
    let mut start = || start_time(config.start_at, &stopped);
    let segment = config.segment.unwrap_or(Segment::WHOLE);
    let ran = segment::run_segment(config, segment, &stopped, &mut start, on_edge)?;
    let record = match config.segment {
        Some(_) => Some(ran.measured.record()?),
        None => None,
    };
    let mut outcome = merge::merge(vec![ran.measured], config.shape.interval);
    outcome.client_syscalls = ran.client_syscalls;
    outcome.segment = record;
    Ok(outcome)
}

/// The go time once every connection is up: now, or `start_at` (waited for, in short sleeps
/// that `stopped` can cut: `None` then; when it has passed, it is returned as it is, and the
/// segment is late).
fn start_time(start_at: Option<StartAt>, stopped: &dyn Fn() -> bool) -> Option<Instant> {
    let Some(at) = start_at else {
        return Some(Instant::now());
    };
    let at = at.instant();
    loop {
        if stopped() {
            return None;
        }
        let left = at.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Some(at);
        }
        std::thread::sleep(left.min(Duration::from_millis(20)));
    }
}

/// Which of the run's connections a process drives: `first` (the run-wide index of its first
/// connection) and the run's total, so that the open loop's schedule deals the rate over every
/// connection of every process.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
struct Slice {
    first: u64,
    total: u64,
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
