//! The load generator over several processes: the parent's side.
//!
//! One process may open only so many descriptors (RLIMIT_NOFILE; 20,000 on the machines this
//! is built on, and it cannot be raised there), and each connection is one. When the
//! connections and the client's own descriptors do not fit in one process, or when
//! `--client-processes N` asks for it, the run is driven by N client processes (`plan.rs` says
//! how many; `bench load-part`, this binary again, `process.rs`), client process `i` running
//! segment `i/N` of it: the same segments `bench load --segment I/N` runs on other hosts
//! (`segment.rs`), so that the wrk2 schedule (request `n` due at `start + n/R`, dealt round
//! robin over every connection) is the same as in one process.
//!
//! The parent drives no connection itself. It starts the children under the guards the server
//! has (own process group, SIGKILL when the parent's thread dies, SIGKILL on any early return:
//! [`ClientProcess`]'s drop), waits until each has its connections up, sends them all one go
//! time on CLOCK_MONOTONIC a little ahead, and then follows the same timeline itself: its
//! `on_edge` reads the server's counters at the window's edges while the children measure. At
//! the close it releases them (they close their connections only then, as threads do), takes
//! every child's segment and merges them as `bench merge` merges segments' files
//! ([`segment::merge`]): one histogram, the counts and errors summed, the time series added
//! interval by interval. The client's CPU time is the parent's own plus each child's over the
//! window, as each measured it. With `--start-at` the go time is that time instead.

use std::io::{BufRead, BufReader, Write};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use anyhow::Context;

use super::merge::{self, Measured};
use super::outcome::client_cost;
use super::segment::Segment;
use super::timeline::{timeline, watch_until, Live};
use super::wire::{Done, FromChild, PartConfig, ToChild};
use super::{client_cpus, Edge, LoadConfig, LoadOutcome};
use crate::metrics::syscalls::SyscallCounts;
use crate::sys::child::{describe, GuardedChild, StderrTail};
use crate::{sys, Error};

/// How far ahead of now the go time is set: every child must have read it before it comes.
const GO_AHEAD: Duration = Duration::from_millis(100);
/// How long the children may take to start, beyond the connect phase's own limit.
const START_GRACE: Duration = Duration::from_secs(15);
/// How long the children may take to send their tallies after the close.
const REPORT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a child may take to exit once it has reported, before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(5);

/// What a child's reader thread hears.
enum Event {
    Ready,
    Done(Box<Done>),
    /// Its stdout closed before it reported (it died), or said something not understood.
    Gone(String),
}

/// Runs the load over `config.processes` client processes.
pub(super) fn run(
    config: &LoadConfig,
    stop: &AtomicBool,
    on_edge: &mut dyn FnMut(Edge),
) -> anyhow::Result<LoadOutcome> {
    let n = config.processes;
    // Raised by a reader thread when its child dies: the run stops and says which.
    let failed = Arc::new(AtomicBool::new(false));
    let (tx, events) = mpsc::channel::<(usize, Event)>();
    let lives: Vec<Arc<Live>> = (0..n).map(|_| Arc::new(Live::default())).collect();
    let mut children = spawn_children(config, tx, &lives, &failed)?;
    let stopped = || stop.load(Ordering::Acquire) || failed.load(Ordering::Acquire);

    let mut interrupted = wait_ready(&events, &mut children, config, &stopped)?;
    let mut cpu = None;
    if !interrupted {
        let followed = follow(&mut children, config, &stopped, &lives, on_edge)?;
        (cpu, interrupted) = (followed.cpu, followed.interrupted);
    }
    let verdict = if interrupted {
        ToChild::Cut
    } else {
        ToChild::Release
    };
    for child in &mut children {
        let _ = child.send(&verdict);
    }
    let reports = collect(&events, &mut children)?;
    for child in &mut children {
        child.finish();
    }

    let (segments, syscalls) = take_reports(reports, &children, config)?;
    // The children share the client CPUs: the parent's CPU time and theirs, over those CPUs
    // (`None` unless every process measured the whole window).
    let cpu = segments.iter().fold(cpu, |sum, m| {
        let r = &m.record;
        Some((sum?.0 + r.cpu_user_s?, sum?.1 + r.cpu_sys_s?))
    });
    let mut outcome = merge::merge(segments, config.shape.interval);
    let client = client_cost(
        cpu.unwrap_or_default(),
        outcome.window,
        client_cpus(config, outcome.threads),
    );
    outcome.client = super::ClientCost {
        processes: n,
        per_process: std::mem::take(&mut outcome.client.per_process),
        ..client
    };
    outcome.interrupted |= interrupted;
    outcome.client_syscalls = syscalls;
    Ok(outcome)
}

/// How the timeline went in the parent.
struct Followed {
    /// The parent's CPU time over the window (user, system); `None` when it did not complete.
    cpu: Option<(f64, f64)>,
    /// The run was stopped (or a child died) before the close.
    interrupted: bool,
}

/// Sends every child the go time (a little ahead, or `--start-at`), and follows the timeline
/// with them.
fn follow(
    children: &mut [ClientProcess],
    config: &LoadConfig,
    stopped: &dyn Fn() -> bool,
    lives: &[Arc<Live>],
    on_edge: &mut dyn FnMut(Edge),
) -> anyhow::Result<Followed> {
    let mut cpu = None;
    let (now, now_ns) = (Instant::now(), sys::monotonic_ns()?);
    let start = config.start_at.map_or(now + GO_AHEAD, |at| at.instant());
    let start_mono_ns = if start >= now {
        now_ns + (start - now).as_nanos() as u64
    } else {
        now_ns.saturating_sub((now - start).as_nanos() as u64)
    };
    for child in children.iter_mut() {
        // A child that cannot be told is gone: its reader says so and the run stops.
        let _ = child.send(&ToChild::Go { start_mono_ns });
    }
    let line = timeline(start, config);
    let mut interrupted = watch_until(line.start, line.window_start, stopped, None, on_edge);
    if !interrupted {
        let before = sys::rusage_self().unwrap_or_default();
        on_edge(Edge::WindowStart);
        interrupted = watch_until(line.window_start, line.end, stopped, Some(lives), on_edge);
        let after = sys::rusage_self().unwrap_or_default();
        on_edge(Edge::WindowEnd);
        cpu = Some((
            (after.user_s - before.user_s).max(0.0),
            (after.sys_s - before.sys_s).max(0.0),
        ));
    }
    Ok(Followed { cpu, interrupted })
}

/// Starts one client process per segment, each with a thread reading its lines into
/// `events`.
fn spawn_children(
    config: &LoadConfig,
    events: mpsc::Sender<(usize, Event)>,
    lives: &[Arc<Live>],
    failed: &Arc<AtomicBool>,
) -> anyhow::Result<Vec<ClientProcess>> {
    let n = config.processes;
    let mut children = Vec::with_capacity(n);
    for (i, live) in lives.iter().enumerate() {
        let part = PartConfig {
            segment: Segment {
                index: i + 1,
                of: n,
            },
            target: config.target,
            shape: config.shape.clone(),
            threads: config.threads,
            http: config.http.clone(),
            cpus: config.cpus.as_ref().map(|c| c.cpus().to_vec()),
            count_syscalls: config.count_syscalls,
            connect_timeout: config.connect_timeout,
            start_at: config.start_at,
        };
        let reader = Reader {
            index: i,
            events: events.clone(),
            live: live.clone(),
            failed: failed.clone(),
        };
        children.push(ClientProcess::spawn(i, n, part, reader)?);
    }
    Ok(children)
}

/// The client's system calls, when counted: their sum, or why there is none.
type Counted = Option<Result<SyscallCounts, String>>;

/// Every child's segment back from the wire, in order, and their system calls summed.
fn take_reports(
    reports: Vec<Done>,
    children: &[ClientProcess],
    config: &LoadConfig,
) -> anyhow::Result<(Vec<Measured>, Counted)> {
    let mut segments = Vec::with_capacity(reports.len());
    let mut syscalls: Counted = config.count_syscalls.then(|| Ok(SyscallCounts::default()));
    for (done, child) in reports.into_iter().zip(children) {
        let measured = Measured::of_record(done.segment)
            .with_context(|| format!("client process {} sent a damaged tally", child.index + 1))?;
        syscalls = match (syscalls, done.client_syscalls) {
            (Some(Ok(mut sum)), Some(Ok(counts))) => {
                sum.add(&counts);
                Some(Ok(sum))
            }
            (Some(Err(why)), _) | (Some(_), Some(Err(why))) => Some(Err(why)),
            (Some(_), None) => Some(Err("a client process did not count".into())),
            (None, _) => None,
        };
        segments.push(measured);
    }
    Ok((segments, syscalls))
}

/// Waits until every child has its connections up; `true` when the run was stopped first (the
/// children are then cut). A child that dies, or that is not up in time, is an error.
fn wait_ready(
    events: &mpsc::Receiver<(usize, Event)>,
    children: &mut [ClientProcess],
    config: &LoadConfig,
    stopped: &dyn Fn() -> bool,
) -> anyhow::Result<bool> {
    let deadline = Instant::now() + config.connect_timeout + START_GRACE;
    let mut ready = 0;
    while ready < children.len() {
        match events.recv_timeout(Duration::from_millis(50)) {
            Ok((_, Event::Ready)) => ready += 1,
            Ok((i, Event::Gone(why))) => {
                return Err(children[i].died(&format!("while connecting ({why})")))
            }
            Ok((i, Event::Done(_))) => {
                return Err(children[i].died("while connecting (it reported before the start)"))
            }
            Err(mpsc::RecvTimeoutError::Timeout) if stopped() => return Ok(true),
            Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() > deadline => {
                anyhow::bail!(Error::Environment(format!(
                    "{} of {} client processes did not get their connections up within {} s",
                    children.len() - ready,
                    children.len(),
                    (config.connect_timeout + START_GRACE).as_secs()
                )))
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                anyhow::bail!("every client process's output closed before it was ready")
            }
        }
    }
    Ok(false)
}

/// Every child's report, in order; a child that dies or says nothing in time is an error.
fn collect(
    events: &mpsc::Receiver<(usize, Event)>,
    children: &mut [ClientProcess],
) -> anyhow::Result<Vec<Done>> {
    let mut reports: Vec<Option<Box<Done>>> = children.iter().map(|_| None).collect();
    let deadline = Instant::now() + REPORT_TIMEOUT;
    while let Some(missing) = reports.iter().position(Option::is_none) {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok((i, Event::Done(done))) => reports[i] = Some(done),
            Ok((_, Event::Ready)) => {}
            Ok((i, Event::Gone(why))) => {
                return Err(children[i].died(&format!("during the run ({why})")))
            }
            Err(_) => {
                return Err(children[missing].died(&format!(
                    "without reporting within {} s of the close",
                    REPORT_TIMEOUT.as_secs()
                )))
            }
        }
    }
    Ok(reports.into_iter().flatten().map(|done| *done).collect())
}

/// What a child's stdout reader needs.
struct Reader {
    index: usize,
    events: mpsc::Sender<(usize, Event)>,
    live: Arc<Live>,
    failed: Arc<AtomicBool>,
}

impl Reader {
    /// Reads the child's lines until it reports or its stdout closes.
    fn run(self, stdout: impl std::io::Read) {
        let mut why = "its output ended before it reported".to_string();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            match serde_json::from_str::<FromChild>(&line) {
                Ok(FromChild::Live { requests, errors }) => {
                    self.live.requests.store(requests, Ordering::Relaxed);
                    self.live.errors.store(errors, Ordering::Relaxed);
                }
                Ok(FromChild::Ready) => {
                    let _ = self.events.send((self.index, Event::Ready));
                }
                Ok(FromChild::Done(done)) => {
                    let _ = self.events.send((self.index, Event::Done(done)));
                    return;
                }
                Err(e) => {
                    why = format!("it printed a line that is not understood ({e})");
                    break;
                }
            }
        }
        self.failed.store(true, Ordering::Release);
        let _ = self.events.send((self.index, Event::Gone(why)));
    }
}

/// A client process that cannot outlive the run: dropping it kills its process group
/// ([`GuardedChild`]).
struct ClientProcess {
    index: usize,
    of: usize,
    /// Before `stdin`, so that a drop kills the child before its input closes.
    child: GuardedChild,
    stdin: Option<ChildStdin>,
    stderr: StderrTail,
}

impl ClientProcess {
    /// Starts `bench load-part`, sends it its share, and reads its lines on a thread.
    fn spawn(
        index: usize,
        of: usize,
        part: PartConfig,
        reader: Reader,
    ) -> anyhow::Result<ClientProcess> {
        let exe = std::env::current_exe().context("cannot find the bench executable")?;
        let mut command = Command::new(exe);
        command.arg("load-part");
        guard(&mut command)?;
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = command
            .spawn()
            .context("cannot start a client process (bench load-part)")?;
        let mut child = GuardedChild::adopt(child, "a client process")?;
        let stdout = child
            .pipes()
            .stdout
            .take()
            .context("client process has no stdout")?;
        let stderr_pipe = child
            .pipes()
            .stderr
            .take()
            .context("client process has no stderr")?;
        let stdin = child.pipes().stdin.take();
        let stderr = StderrTail::follow(stderr_pipe, format!("client-{index}-err"))?;
        let mut process = ClientProcess {
            index,
            of,
            child,
            stdin,
            stderr,
        };
        std::thread::Builder::new()
            .name(format!("client-{index}"))
            .spawn(move || reader.run(stdout))
            .context("cannot start a reader thread")?;
        process
            .send(&ToChild::Config(Box::new(part)))
            .map_err(|e| process.died(&format!("before it took its configuration ({e})")))?;
        Ok(process)
    }

    fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// Writes one line to the child.
    fn send(&mut self, message: &ToChild) -> std::io::Result<()> {
        let line = serde_json::to_string(message).map_err(std::io::Error::other)?;
        let pipe = self
            .stdin
            .as_mut()
            .ok_or_else(|| std::io::Error::other("its input is closed"))?;
        writeln!(pipe, "{line}")?;
        pipe.flush()
    }

    /// Closes its input, lets it exit, kills it past the grace period.
    fn finish(&mut self) {
        self.stdin = None;
        self.child.wait_within(EXIT_GRACE);
    }

    /// The error for a child that failed `how`: its exit status and the end of its stderr.
    fn died(&mut self, how: &str) -> anyhow::Error {
        self.stdin = None;
        self.child.wait_within(Duration::from_secs(2));
        // Gives the stderr reader a moment to take the child's last words.
        let note = self.stderr.note();
        Error::Environment(format!(
            "client process {} of {} (pid {}) failed {how}: {}{note}",
            self.index + 1,
            self.of,
            self.pid(),
            describe(self.child.status())
        ))
        .into()
    }
}

/// The server's guards for a client process: own process group, SIGKILL when the thread that
/// starts it dies (Unix). Client processes are Unix-only.
#[cfg(unix)]
fn guard(command: &mut Command) -> anyhow::Result<()> {
    sys::child::guard(command);
    Ok(())
}

#[cfg(not(unix))]
fn guard(_: &mut Command) -> anyhow::Result<()> {
    anyhow::bail!(Error::Environment(
        "the load generator runs in one process on this platform: drop --client-processes".into()
    ))
}
