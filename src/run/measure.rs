//! One pass of one model or outside server: start it, drive it with the load generator,
//! snapshot the server's counters at the window's edges, stop it, and record the run; `Job`
//! runs the passes `--accounting` asks for.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::counting::{
    self, client_syscall_figures, server_syscall_figures, server_syscalls, syscall_window,
    Counting, SyscallSnapshot, NO_PERF,
};
use super::plan::{effective_poller, Placement, PointPlace};
use super::server::Server;
use super::subject::Subject;
use super::RunOptions;
use crate::load::{self, Edge, HttpRequest, LoadConfig, LoadOutcome, Shape};
use crate::metrics::process::ProcessCounters;
use crate::metrics::syscalls::Accounting;
use crate::models::{Model, Poller, UringOptions};
use crate::output::progress::ProgressLine;
use crate::protocol::{http, Workload};
use crate::result::measured::{costs, to_run, RunIdentity};
use crate::result::warning::Warning;
use crate::result::{Run, ServerCosts};
use crate::serve::ServeOptions;

/// One model or outside server, one repeat, at one point.
pub(super) struct Job<'a> {
    pub(super) subject: Subject<'a>,
    pub(super) repeat_index: usize,
    pub(super) opts: &'a RunOptions,
    pub(super) at: &'a PointPlace,
    pub(super) stop: &'a AtomicBool,
    pub(super) progress: bool,
}

impl Job<'_> {
    /// One pass at `rate`, with system calls counted as `--accounting` says.
    pub(super) fn accounted(&self, rate: Option<f64>) -> anyhow::Result<Run> {
        let mut opts = self.opts.clone();
        opts.shape.rate = rate;
        let counting_opts = counting::counting_pass(&opts);
        let pass = |count: Option<Counting>| {
            // A pass of its own that only counts is short: counts per request settle fast.
            let opts = match count {
                Some(c) if c.only_counts() => &counting_opts,
                _ => &opts,
            };
            measure(
                self.subject,
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
                        humantime::format_duration(
                            counting_opts.shape.duration + counting_opts.shape.warmup
                        )
                    );
                }
                let counted = pass(Some(Counting::SERVER))?;
                timed.syscalls = counted.syscalls;
                timed.syscalls_unavailable = counted.syscalls_unavailable;
                if let Some(failure) = counted.failure {
                    timed.warnings.push(Warning::CountingFailed { failure });
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

/// One model or outside server, one pass; with `count`, the server's and/or the load
/// generator's system calls are counted over the measured window.
pub(super) fn measure(
    subject: Subject,
    repeat_index: usize,
    opts: &RunOptions,
    at: &PointPlace,
    stop: &AtomicBool,
    count: Option<Counting>,
) -> anyhow::Result<Run> {
    let place = &at.place;
    let model = match subject {
        Subject::Model(model) => Some(model),
        Subject::Server(_) => None,
    };
    let poller = model.and_then(|m| effective_poller(m, opts.poller));
    let count_server = count.is_some_and(|c| c.server);
    let args = model
        .map(|m| serve_options(m, opts, place, poller).to_args())
        .unwrap_or_default();
    let started = Server::start(subject, &args, opts, place, stop, count_server)?;
    let mut server = started.server;
    let config = load_config(opts, at, server.addr(), count, model.is_some());
    let label = match count {
        Some(Counting {
            pass: "separate", ..
        }) => format!("{subject} (counting)"),
        _ => subject.to_string(),
    };
    let line = ProgressLine::new(!opts.quiet && std::io::stdout().is_terminal(), &label);
    let mut edges = Edges::default();
    let mut outcome = load::run_load(&config, stop, &mut |edge: Edge| {
        if matches!(edge, Edge::Tick(_)) {
            return line.on_edge(&edge);
        }
        edges.snapshot(&mut server, count_server);
    })?;
    line.finish();
    let client_syscalls = outcome.client_syscalls.take();
    let failure = stop_server(server, &outcome, edges.error.take(), opts.shape.connections)?;
    let server_costs = edges.costs(failure.is_none(), outcome.requests);
    let threads = started.threads;
    let mut run = to_run(
        RunIdentity {
            model: Some(subject.name().to_string()),
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
    run.io_uring = started.io_uring;
    run.command = started.command;
    if let Some(why) = model.and_then(|m| unserved_by_design(m, threads, &run)) {
        run.warnings.push(why);
    }
    add_counts(
        &mut run,
        count,
        client_syscalls,
        &edges.syscalls,
        opts.accounting,
    );
    Ok(run)
}

/// The options of `model`'s `bench serve` under `opts`, pinned to the server's CPUs.
fn serve_options(
    model: &'static Model,
    opts: &RunOptions,
    place: &Placement,
    poller: Option<Poller>,
) -> ServeOptions {
    let uring = opts.uring.filter(|_| model.uring_options);
    ServeOptions {
        model,
        workload: opts.shape.workload,
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        threads: opts.threads,
        cpus: Some(place.server.clone()),
        work_us: opts.work_us,
        block_us: opts.block_us,
        poller,
        uring: uring.unwrap_or_default(),
        // Options that are all defaults need not be passed.
        uring_given: uring.is_some_and(|u| u != UringOptions::default()),
        message_size: (opts.shape.workload != Workload::Http).then_some(opts.shape.payload),
        idle_timeout: opts.idle_timeout,
        duration: None,
        stdin_control: false,
    }
}

/// The load of one pass against the server at `target` (`ours`: a model, whose answers'
/// bodies are known).
fn load_config(
    opts: &RunOptions,
    at: &PointPlace,
    target: SocketAddr,
    count: Option<Counting>,
    ours: bool,
) -> LoadConfig {
    LoadConfig {
        target,
        shape: Shape {
            // HTTP sends no echo payload.
            payload: match opts.shape.workload {
                Workload::Http => 0,
                _ => opts.shape.payload,
            },
            ..opts.shape.clone()
        },
        threads: at.client_threads,
        // Our servers' plaintext answer is known: every body is checked. An outside server's
        // answers are checked as `bench load` checks them (a 200 and a whole response).
        http: (opts.shape.workload == Workload::Http).then(|| HttpRequest {
            host: target.to_string(),
            path: http::PLAINTEXT_PATH.into(),
            expect_body: ours.then(|| http::PLAINTEXT_BODY.to_vec()),
        }),
        count_syscalls: count.is_some_and(|c| c.client),
        segment: None,
        start_at: None,
        cpus: Some(at.place.client.clone()),
        connect_timeout: load::connect_timeout(opts.shape.connections),
        processes: at.client_processes,
    }
}

/// What the server's counters said at the window's edges.
#[derive(Default)]
struct Edges {
    /// Its process counters, and its spread of connections over its loops.
    counters: Vec<(ProcessCounters, Option<Vec<u64>>)>,
    /// Why its counters could not be read (the first time; no later snapshot is taken).
    error: Option<String>,
    /// Its system-call counts, when counted.
    syscalls: Vec<Result<SyscallSnapshot, String>>,
}

impl Edges {
    /// Snapshots the server at one edge of the window.
    fn snapshot(&mut self, server: &mut Server, count_server: bool) {
        if count_server {
            self.syscalls.push(server_syscalls(server));
        }
        if self.error.is_none() {
            match server.counters() {
                Ok(c) => self.counters.push(c),
                Err(e) => self.error = Some(format!("{e:#}")),
            }
        }
    }

    /// The server's costs over the window, when both edges were read and the run did not fail.
    fn costs(&self, ok: bool, requests: u64) -> Option<ServerCosts> {
        match self.counters.as_slice() {
            [(start, _), (end, spread)] if ok => Some(ServerCosts {
                connections_per_loop: spread.clone(),
                ..costs(&end.since(start), requests)
            }),
            _ => None,
        }
    }
}

/// Stops the server; returns why the pass failed, if it did: the server exited, a signal
/// interrupted the window, its counters could not be read (`counters_error`), or it did not
/// stop cleanly. An outside server that daemonized is refused: `Err`, the rounds end.
fn stop_server(
    mut server: Server,
    outcome: &LoadOutcome,
    counters_error: Option<String>,
    connections: usize,
) -> Result<Option<String>, crate::Error> {
    let mut failure = None;
    if let Some(gone) = server.gone()? {
        failure = Some(gone);
    } else if outcome.interrupted {
        failure = Some("interrupted by a signal before the window closed".into());
    } else if let Some(e) = counters_error {
        failure = Some(format!("the server's counters could not be read: {e}"));
    }
    // Joining 10,000 threads (`blocking`) on a busy CPU took over 5 s here: a second more
    // per thousand connections.
    let grace = Duration::from_secs(5) + Duration::from_millis(connections as u64);
    let stopped = server.stop_within(grace);
    if failure.is_none() {
        failure = stopped.err();
    }
    Ok(failure)
}

/// The system-call counts of the pass, into `run`: the load generator's and the server's,
/// when this pass counted them; otherwise why there are none.
fn add_counts(
    run: &mut Run,
    count: Option<Counting>,
    client_syscalls: Option<Result<crate::metrics::syscalls::SyscallCounts, String>>,
    server_syscalls: &[Result<SyscallSnapshot, String>],
    accounting: Accounting,
) {
    if let Some(Counting {
        pass, client: true, ..
    }) = count
    {
        if let Some(Ok(client)) = &client_syscalls {
            if run.failure.is_none() {
                run.client.syscalls = Some(
                    client_syscall_figures(client, run.requests, pass).with_window(run.duration_s),
                );
            }
        }
    }
    if let Some(Counting {
        pass, server: true, ..
    }) = count
    {
        match syscall_window(server_syscalls) {
            Ok(window) if run.failure.is_none() => {
                run.syscalls = server_syscall_figures(&window, run.requests, pass)
                    .map(|f| f.with_window(run.duration_s));
                run.syscalls_unavailable = None;
            }
            Ok(_) => {
                run.syscalls_unavailable =
                    Some("the counting pass failed (see failure): no counts".into())
            }
            Err(why) => run.syscalls_unavailable = Some(why),
        }
    } else if accounting == Accounting::Off {
        run.syscalls_unavailable = Some(if cfg!(target_os = "linux") {
            "not counted (--accounting off)".into()
        } else {
            NO_PERF.into()
        });
    }
}

/// Why the model left connections unserved, when its design says so: `threadpool`'s workers
/// each keep one connection until it closes, so past `--threads` live connections the others
/// wait in its queue for as long as the first stay open (DESIGN.md). That is the model's
/// answer to many connections, and the result says it in those words.
pub(super) fn unserved_by_design(
    model: &Model,
    threads: Option<usize>,
    run: &Run,
) -> Option<Warning> {
    let workers = threads?;
    if !model.threads_cap_live_connections || run.starved_connections == 0 {
        return None;
    }
    Some(Warning::UnservedByDesign {
        workers,
        starved: run.starved_connections,
        connections: run.connections,
    })
}
