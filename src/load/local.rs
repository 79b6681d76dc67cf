//! The load in this process: `config.threads` worker threads, each driving its share of the
//! connections (`worker.rs`), from connecting to their tallies, on the shared timeline. An
//! unsplit run is this alone; each client process of a split run runs it too (`process.rs`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use anyhow::Context;

use super::part::Part;
use super::timeline::{timeline, watch_until, Live, Timeline};
use super::{command, exchange, http, schedule, worker, Edge, LoadConfig, Slice};
use crate::metrics::syscalls::{SyscallCounters, SyscallCounts};
use crate::protocol::Workload;
use crate::sys;

/// What the threads of one process measured.
pub(super) struct Local {
    pub(super) parts: Vec<Part>,
    /// This process's CPU time over the window (user, system); `None` when the window did not
    /// complete.
    pub(super) cpu: Option<(f64, f64)>,
    pub(super) interrupted: bool,
    /// The window's real length.
    pub(super) window: Duration,
    /// With `count_syscalls`: the load threads' system calls over the window, or why not.
    pub(super) client_syscalls: Option<Result<SyscallCounts, String>>,
    pub(super) threads: usize,
}

/// The worker threads of this process, started: each connects its share, says so on `ready`,
/// then waits for the timeline on its own `go` channel.
struct Workers {
    /// Raised when the caller's `stop` cuts the run short; workers otherwise stop at the end.
    cut: Arc<AtomicBool>,
    ready: mpsc::Receiver<Result<(), String>>,
    /// With `count_syscalls`, each worker's counters on itself, read here at the window's edges.
    counters: mpsc::Receiver<Result<SyscallCounters, String>>,
    go: Vec<mpsc::Sender<Timeline>>,
    handles: Vec<std::thread::JoinHandle<anyhow::Result<Option<Part>>>>,
    lives: Vec<Arc<Live>>,
}

/// This process's share of a run: `config.shape.connections` connections (the run's `slice`)
/// over `config.threads` threads, from connecting to their tallies. Once every connection is
/// up, `start` gives the go time (the timeline starts there; `None`: do not start); `stopped`
/// cuts the run short; `on_edge` hears the window's edges and the ticks, on this thread.
pub(super) fn run_local(
    config: &LoadConfig,
    slice: Slice,
    stopped: &dyn Fn() -> bool,
    start: &mut dyn FnMut() -> Option<Instant>,
    on_edge: &mut dyn FnMut(Edge),
) -> anyhow::Result<Local> {
    let threads = config.threads.clamp(1, config.shape.connections.max(1));
    let Workers {
        cut,
        ready,
        counters,
        go,
        handles,
        lives,
    } = start_workers(config, slice, threads)?;

    let setup_failure = wait_ready(&ready, &handles, threads, stopped, &cut);
    let mut thread_counters = opened_counters(config, &counters);
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

    let parts = join(handles, threads, setup_failure)?;
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
        client_syscalls,
        threads,
    })
}

/// Starts `threads` worker threads over the connections of `slice`.
fn start_workers(config: &LoadConfig, slice: Slice, threads: usize) -> anyhow::Result<Workers> {
    let shape = &config.shape;
    let pattern: Arc<[u8]> = match shape.workload {
        Workload::Echo => exchange::pattern(shape.payload).into(),
        _ => Arc::new([]),
    };
    let http = match (shape.workload, &config.http) {
        (Workload::Http, Some(request)) => Some(http::HttpCheck::new(request, shape.pipeline)),
        (Workload::Http, None) => anyhow::bail!("the HTTP workload needs a request to send"),
        _ => None,
    };
    let fixed = command::fixed(shape.workload, shape.payload).map(|f| {
        let pipeline = shape.pipeline.max(1);
        exchange::Exchange::Fixed {
            batch: f.request.repeat(pipeline).into(),
            replies: f.reply.repeat(pipeline).into(),
            reply: f.reply.len(),
        }
    });
    let cut = Arc::new(AtomicBool::new(false));
    // Each worker reports once its connections are up (or why it could not start), then waits
    // for the timeline on its own channel. Channels, not barriers: a worker that fails or
    // panics during setup cannot leave the others, or this thread, waiting for ever.
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
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
        let exchange = match (&http, &fixed) {
            (Some(check), _) => exchange::Exchange::Http(check.clone()),
            (None, Some(fixed)) => fixed.clone(),
            _ => exchange::Exchange::Echo {
                payload: shape.payload,
                pattern: pattern.clone(),
            },
        };
        let (go_tx, go_rx) = mpsc::channel::<Timeline>();
        go.push(go_tx);
        let thread = Thread {
            config: config.clone(),
            index: t,
            share,
            exchange,
            schedule,
            live,
            cut: cut.clone(),
            ready: ready_tx.clone(),
            counters: counters_tx.clone(),
            go: go_rx,
        };
        let handle = std::thread::Builder::new()
            .name(format!("load-{t}"))
            .spawn(move || thread.run())
            .context("cannot start a load thread")?;
        handles.push(handle);
    }
    Ok(Workers {
        cut,
        ready: ready_rx,
        counters: counters_rx,
        go,
        handles,
        lives,
    })
}

/// What one worker thread is handed: its share of the connections and how to drive them, and
/// its channels to the calling thread.
struct Thread {
    config: LoadConfig,
    index: usize,
    share: usize,
    exchange: exchange::Exchange,
    schedule: Option<schedule::Schedule>,
    live: Arc<Live>,
    cut: Arc<AtomicBool>,
    ready: mpsc::Sender<Result<(), String>>,
    counters: mpsc::Sender<Result<SyscallCounters, String>>,
    go: mpsc::Receiver<Timeline>,
}

impl Thread {
    /// The worker thread: connects its share, reports, runs the timeline it is given, and
    /// keeps its connections open until told the closing snapshot is taken.
    fn run(self) -> anyhow::Result<Option<Part>> {
        let Thread {
            config,
            index: t,
            share,
            exchange,
            schedule,
            live,
            cut,
            ready,
            counters,
            go: go_rx,
        } = self;
        if config.count_syscalls {
            let _ = counters.send(SyscallCounters::open_on_this_thread());
        }
        drop(counters);
        let setup = || -> anyhow::Result<worker::Worker> {
            if let Some(cpus) = &config.cpus {
                sys::pin_current_thread(cpus.cpus())
                    .with_context(|| format!("cannot pin the load threads to CPUs {cpus}"))?;
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
    }
}

/// With `count_syscalls`, every worker's counters on itself, or why one could not open them.
/// Every worker sent its counters before it reported ready (or died: then there are fewer).
fn opened_counters(
    config: &LoadConfig,
    counters: &mpsc::Receiver<Result<SyscallCounters, String>>,
) -> Result<Vec<SyscallCounters>, String> {
    let mut thread_counters: Result<Vec<SyscallCounters>, String> = Ok(Vec::new());
    if config.count_syscalls {
        for opened in counters.try_iter() {
            thread_counters = match (thread_counters, opened) {
                (Ok(mut all), Ok(c)) => {
                    all.push(c);
                    Ok(all)
                }
                (Err(why), _) | (_, Err(why)) => Err(why),
            };
        }
    }
    thread_counters
}

/// Every worker's tally, once each has closed its connections; the first error of a worker
/// (or a panic), or else why one could not start, is the run's.
fn join(
    handles: Vec<std::thread::JoinHandle<anyhow::Result<Option<Part>>>>,
    threads: usize,
    setup_failure: Option<String>,
) -> anyhow::Result<Vec<Part>> {
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
    Ok(parts)
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
