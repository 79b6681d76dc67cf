//! A `bench serve` child process that cannot outlive the harness, under the guards of
//! [`crate::sys::child`].
//!
//! Three guarantees, from the gentlest to the bluntest:
//! 1. [`ServerProcess::stop`] sends SIGTERM to the child's process group and waits for a clean
//!    exit (the server prints its final counters), then SIGKILL after a grace period;
//! 2. dropping a [`ServerProcess`] (an early return, an error, a panic that unwinds) kills the
//!    group with SIGKILL and reaps it;
//! 3. the child asks the kernel for SIGKILL when the harness's main thread dies
//!    (PR_SET_PDEATHSIG), which covers a harness killed with SIGKILL itself.
//!
//! The child runs in its own process group, so a Ctrl-C on the terminal reaches the harness
//! only; the harness then stops the child itself, in order.
//!
//! On Windows the same three, by other means: `stop` and `counters` are lines on the child's
//! stdin (`bench serve --stdin-control`), the blunt stop is TerminateProcess, and the child is
//! put in a job object that kills its processes when the harness's handle to it closes, as it
//! does when the harness dies however it dies.

#[cfg(unix)]
use std::io::Read;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::metrics::process::ProcessCounters;
use crate::serve::ReadyLine;
use crate::sys::child::{describe, guard, stopped_note, GuardedChild, StderrTail};
use crate::Error;

/// How long a server may take to print its ready line.
const READY_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a server may take to answer a counters request.
const COUNTERS_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a server may take to stop after SIGTERM before it gets SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

#[cfg(unix)]
use crate::hooks::{HOLD_EXEC, HOLD_EXEC_COMMAND};

/// Called first thing in `main`: when started held (see [`HOLD_EXEC`]), waits to be released,
/// then replaces this process with a fresh `bench` of the same arguments (same PID, so the
/// counters opened on it with enable-on-exec start now). Returns at once otherwise.
pub fn exec_when_released() {
    #[cfg(unix)]
    if std::env::var_os(HOLD_EXEC).is_some() {
        exec_after_release();
    }
}

/// Waits for the release byte, then execs; never returns.
#[cfg(unix)]
fn exec_after_release() -> ! {
    use std::os::unix::process::CommandExt;
    let mut byte = [0u8; 1];
    // EOF: the harness is gone before releasing us.
    if !matches!(std::io::stdin().read(&mut byte), Ok(1)) {
        std::process::exit(3);
    }
    // An outside server (`bench run --server`): the arguments are its command.
    if std::env::var_os(HOLD_EXEC_COMMAND).is_some() {
        let mut words = std::env::args_os().skip(1);
        let program = words.next().unwrap_or_default();
        let err = Command::new(&program)
            .args(words)
            .env_remove(HOLD_EXEC)
            .env_remove(HOLD_EXEC_COMMAND)
            .stdin(Stdio::null())
            .exec();
        crate::errln!("error: cannot start `{}`: {err}", program.to_string_lossy());
        std::process::exit(3);
    }
    let err = match std::env::current_exe() {
        Ok(exe) => Command::new(exe)
            .args(std::env::args_os().skip(1))
            .env_remove(HOLD_EXEC)
            .stdin(Stdio::null())
            .exec(),
        Err(e) => e,
    };
    crate::errln!("error: cannot start bench again after being held: {err}");
    std::process::exit(3);
}

/// System-call counters of a server, or why there are none.
#[cfg(target_os = "linux")]
type Accountant = Result<crate::metrics::syscalls::SyscallCounters, String>;

pub struct ServerProcess {
    /// First, so that a drop kills the server before anything else of it goes.
    child: GuardedChild,
    /// Its system-call counters when asked for (`Err`: why they could not be opened).
    #[cfg(target_os = "linux")]
    accountant: Option<Accountant>,
    lines: Receiver<String>,
    stderr: StderrTail,
    pub addr: SocketAddr,
    /// The server's ready line.
    pub ready: Option<ReadyLine>,
    /// The `bench` arguments it was started with, for messages.
    args: Vec<String>,
    /// Windows: the child's stdin, where `counters` and `stop` go.
    #[cfg(windows)]
    control: Option<std::process::ChildStdin>,
}

impl ServerProcess {
    /// Starts `bench serve` with `args` and waits for its ready line. `stop` aborts the wait.
    pub fn spawn(args: &[String], stop: &AtomicBool) -> anyhow::Result<ServerProcess> {
        Self::spawn_counted(args, stop, false)
    }

    /// [`spawn`](Self::spawn), and with `count_syscalls` (Linux) system-call counters on the
    /// server from its first instruction: the child is started held, the counters are opened
    /// on it, then it is released into `bench serve` (see [`HOLD_EXEC`]). When they cannot be
    /// opened the server starts all the same and [`syscalls`](Self::syscalls) says why.
    pub fn spawn_counted(
        args: &[String],
        stop: &AtomicBool,
        count_syscalls: bool,
    ) -> anyhow::Result<ServerProcess> {
        let exe = std::env::current_exe().context("cannot find the bench executable")?;
        let mut command = Command::new(exe);
        command
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        guard(&mut command);
        // The control pipe: `counters` and `stop` come as lines on stdin.
        #[cfg(windows)]
        command.arg("--stdin-control").stdin(Stdio::piped());
        #[cfg(target_os = "linux")]
        if count_syscalls {
            command.env(HOLD_EXEC, "1").stdin(Stdio::piped());
        }
        #[cfg(not(target_os = "linux"))]
        let _ = count_syscalls;
        let child = command
            .spawn()
            .context("cannot start `bench serve` as a child process")?;
        let mut child = GuardedChild::adopt(child, "the server")?;
        #[cfg(target_os = "linux")]
        let accountant = count_syscalls.then(|| {
            let counters = crate::metrics::syscalls::SyscallCounters::open_before_exec(child.pid());
            // Release it whatever happened (a write error means it is gone: the ready wait
            // below says so).
            if let Some(mut hold) = child.pipes().stdin.take() {
                use std::io::Write;
                let _ = hold.write_all(b"g");
            }
            counters
        });
        #[cfg(windows)]
        let control = child.pipes().stdin.take();
        let stdout = child.pipes().stdout.take().context("child has no stdout")?;
        let stderr_pipe = child.pipes().stderr.take().context("child has no stderr")?;
        let (tx, lines) = mpsc::channel();
        std::thread::Builder::new()
            .name("serve-stdout".into())
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { return };
                    if tx.send(line).is_err() {
                        return;
                    }
                }
            })
            .context("cannot start a reader thread")?;
        let stderr = StderrTail::follow(stderr_pipe, "serve-stderr".into())?;
        let mut server = ServerProcess {
            child,
            #[cfg(target_os = "linux")]
            accountant,
            lines,
            stderr,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            ready: None,
            args: args.to_vec(),
            #[cfg(windows)]
            control,
        };
        let ready = server.wait_ready(stop)?;
        server.addr = ready.listening;
        server.ready = Some(ready);
        Ok(server)
    }

    /// Waits for the ready line (a JSON line with `listening`; others are passed over).
    fn wait_ready(&mut self, stop: &AtomicBool) -> anyhow::Result<ReadyLine> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if stop.load(Ordering::Acquire) {
                anyhow::bail!(Error::Measured(
                    "interrupted before the server was ready".into()
                ));
            }
            match self.lines.recv_timeout(Duration::from_millis(50)) {
                Ok(line) => {
                    let value: serde_json::Value = serde_json::from_str(&line)
                        .with_context(|| format!("the server's ready line is not JSON: {line}"))?;
                    if value.get("listening").is_some() {
                        return serde_json::from_value(value).with_context(|| {
                            format!(
                                "the server's ready line is not what bench serve prints: {line}"
                            )
                        });
                    }
                }
                Err(RecvTimeoutError::Timeout) if Instant::now() < deadline => {}
                Err(RecvTimeoutError::Timeout) => anyhow::bail!(Error::Environment(format!(
                    "the server printed no ready line within {}s (start it by hand with the same \
                     options, `bench {}`, to see where it stops){}",
                    READY_TIMEOUT.as_secs(),
                    self.args.join(" "),
                    self.stderr_note()
                ))),
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.wait_exit(Duration::from_secs(2));
                    let why = format!(
                        "the server exited before it was ready ({}){}",
                        describe(status),
                        self.stderr_note()
                    );
                    // Pass the child's own verdict on: its bad input or missing environment.
                    let code = status.and_then(|s| s.code());
                    anyhow::bail!(match code {
                        Some(2) => Error::Usage(why),
                        Some(1) => Error::Measured(why),
                        _ => Error::Environment(why),
                    });
                }
            }
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.pid() as i32
    }

    /// The server's system calls so far (all its threads, from its first instruction): `None`
    /// when not asked for, `Err` with why and what to change when they cannot be counted.
    #[cfg(target_os = "linux")]
    pub fn syscalls(&mut self) -> Option<Result<crate::metrics::syscalls::SyscallCounts, String>> {
        match self.accountant.as_mut()? {
            Ok(counters) => Some(counters.read()),
            Err(why) => Some(Err(why.clone())),
        }
    }

    /// Asks the server for its counters now (SIGUSR1) and waits for the answer: the process's
    /// counters, and for models with several loops the connections each has taken on.
    pub fn counters(&mut self) -> anyhow::Result<(ProcessCounters, Option<Vec<u64>>)> {
        self.ask_counters()
            .context("cannot ask the server for its counters")?;
        let deadline = Instant::now() + COUNTERS_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).map_err(|_| {
                anyhow::anyhow!(
                    "the server did not answer a counters request within {} s{}",
                    COUNTERS_TIMEOUT.as_secs(),
                    stopped_note(self.pid())
                )
            })?;
            let mut value: serde_json::Value = serde_json::from_str(&line)
                .with_context(|| format!("the server printed a line that is not JSON: {line}"))?;
            if let Some(counters) = value.get_mut("counters") {
                let spread = serde_json::from_value(counters["connections_per_loop"].take()).ok();
                if let Some(map) = counters.as_object_mut() {
                    map.remove("io_uring");
                }
                let process = serde_json::from_value(counters.take())
                    .context("the server's counters line is malformed")?;
                return Ok((process, spread));
            }
        }
    }

    /// `Some(status)` once the server has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.exited()
    }

    /// Stops the server: SIGTERM to its group, a grace period, then SIGKILL.
    pub fn stop(self) -> Option<ExitStatus> {
        self.stop_within(STOP_GRACE)
    }

    /// [`stop`](Self::stop) with a grace period of its own (a server holding many connections
    /// has that many threads or sockets to close first).
    pub fn stop_within(mut self, grace: Duration) -> Option<ExitStatus> {
        if self.exited().is_none() {
            self.ask_stop();
        }
        self.wait_exit(grace.max(STOP_GRACE))
    }

    #[cfg(unix)]
    fn ask_counters(&mut self) -> std::io::Result<()> {
        crate::sys::kill(self.pid(), libc::SIGUSR1)
    }

    #[cfg(unix)]
    fn ask_stop(&mut self) {
        let _ = crate::sys::kill(-self.pid(), libc::SIGTERM);
        // A stopped server (SIGSTOP, a debugger's stop) takes SIGTERM only once it runs again.
        let _ = crate::sys::kill(-self.pid(), libc::SIGCONT);
    }

    #[cfg(windows)]
    fn ask_counters(&mut self) -> std::io::Result<()> {
        use std::io::Write;
        let pipe = self
            .control
            .as_mut()
            .ok_or_else(|| std::io::Error::other("the control pipe is closed"))?;
        pipe.write_all(b"counters\n")?;
        pipe.flush()
    }

    /// `stop`, then the end of input (either stops a `--stdin-control` server).
    #[cfg(windows)]
    fn ask_stop(&mut self) {
        use std::io::Write;
        if let Some(mut pipe) = self.control.take() {
            let _ = pipe.write_all(b"stop\n");
        }
    }

    /// Waits up to `grace` for the child to exit, then kills its group and reaps it.
    fn wait_exit(&mut self, grace: Duration) -> Option<ExitStatus> {
        self.child.wait_within(grace)
    }

    /// The tail of the server's stderr, formatted for an error message.
    pub fn stderr_note(&self) -> String {
        self.stderr.note()
    }
}
