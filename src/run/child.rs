//! A `bench serve` child process that cannot outlive the harness.
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

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::metrics::process::ProcessCounters;
use crate::Error;

/// How long a server may take to print its ready line.
const READY_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a server may take to answer a counters request.
const COUNTERS_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a server may take to stop after SIGTERM before it gets SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// The last bytes of the child's stderr kept for error messages.
const STDERR_KEEP: usize = 4096;

/// A `bench` started with this variable set waits for one byte on its stdin, then execs
/// itself again without it ([`exec_when_released`]): the harness opens its system-call counters
/// on the held process in between, so that they count from the server's first instruction.
pub const HOLD_ENV: &str = "IOMODELS_HOLD_EXEC";

/// Called first thing in `main`: when started held (see [`HOLD_ENV`]), waits to be released,
/// then replaces this process with a fresh `bench` of the same arguments (same PID, so the
/// counters opened on it with enable-on-exec start now). Returns at once otherwise.
pub fn exec_when_released() {
    #[cfg(unix)]
    if std::env::var_os(HOLD_ENV).is_some() {
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
    let err = match std::env::current_exe() {
        Ok(exe) => Command::new(exe)
            .args(std::env::args_os().skip(1))
            .env_remove(HOLD_ENV)
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
    /// Its system-call counters when asked for (`Err`: why they could not be opened).
    #[cfg(target_os = "linux")]
    accountant: Option<Accountant>,
    child: Child,
    lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
    pub addr: SocketAddr,
    /// The server's ready line.
    pub ready: serde_json::Value,
    status: Option<ExitStatus>,
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
    /// on it, then it is released into `bench serve` (see [`HOLD_ENV`]). When they cannot be
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
        platform::configure(&mut command);
        #[cfg(target_os = "linux")]
        if count_syscalls {
            command.env(HOLD_ENV, "1").stdin(Stdio::piped());
        }
        #[cfg(not(target_os = "linux"))]
        let _ = count_syscalls;
        let mut child = command
            .spawn()
            .context("cannot start `bench serve` as a child process")?;
        platform::adopt(&mut child)?;
        #[cfg(target_os = "linux")]
        let accountant = count_syscalls.then(|| {
            let counters = crate::metrics::syscalls::SyscallCounters::open_before_exec(child.id());
            // Release it whatever happened (a write error means it is gone: the ready wait
            // below says so).
            if let Some(mut hold) = child.stdin.take() {
                use std::io::Write;
                let _ = hold.write_all(b"g");
            }
            counters
        });
        #[cfg(windows)]
        let control = child.stdin.take();
        let stdout = child.stdout.take().context("child has no stdout")?;
        let stderr_pipe = child.stderr.take().context("child has no stderr")?;
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
        let stderr = Arc::new(Mutex::new(String::new()));
        {
            let stderr = stderr.clone();
            std::thread::Builder::new()
                .name("serve-stderr".into())
                .spawn(move || keep_tail(stderr_pipe, &stderr))
                .context("cannot start a reader thread")?;
        }
        let mut server = ServerProcess {
            #[cfg(target_os = "linux")]
            accountant,
            child,
            lines,
            stderr,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            ready: serde_json::Value::Null,
            status: None,
            args: args.to_vec(),
            #[cfg(windows)]
            control,
        };
        (server.addr, server.ready) = server.wait_ready(stop)?;
        Ok(server)
    }

    /// Waits for the ready line; returns the address and the whole line.
    fn wait_ready(&mut self, stop: &AtomicBool) -> anyhow::Result<(SocketAddr, serde_json::Value)> {
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
                    if let Some(addr) = value.get("listening").and_then(|v| v.as_str()) {
                        let addr = addr.parse().with_context(|| {
                            format!("the server's ready line has a bad address: {line}")
                        })?;
                        return Ok((addr, value));
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
        self.child.id() as i32
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
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
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

    /// Kills the server's whole process group.
    #[cfg(unix)]
    fn kill(&mut self) {
        let _ = crate::sys::kill(-self.pid(), libc::SIGKILL);
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

    #[cfg(windows)]
    fn kill(&mut self) {
        let _ = self.child.kill();
    }

    /// Waits up to `grace` for the child to exit, then kills its group and reaps it.
    fn wait_exit(&mut self, grace: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + grace;
        while self.exited().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if self.status.is_none() {
            self.kill();
            self.status = self.child.wait().ok();
        }
        self.status
    }

    /// The tail of the server's stderr, formatted for an error message.
    pub fn stderr_note(&self) -> String {
        // Give the reader thread a moment to drain what the child wrote last.
        std::thread::sleep(Duration::from_millis(50));
        let text = self
            .stderr
            .lock()
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        if text.is_empty() {
            String::new()
        } else {
            format!("; its stderr:\n{text}")
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if self.exited().is_none() {
            self.kill();
            self.status = self.child.wait().ok();
        }
    }
}

/// Puts a `bench` child that is not a server (a client process of the load generator) under
/// the same guards as a server: its own process group, and SIGKILL from the kernel when the
/// thread that started it dies. Set its stdio after this call.
#[cfg(unix)]
pub fn guard(command: &mut Command) {
    platform::configure(command);
}

/// "exit code 3" or "killed by signal 9".
pub fn describe(status: Option<ExitStatus>) -> String {
    #[cfg(unix)]
    let signal = {
        use std::os::unix::process::ExitStatusExt;
        status.and_then(|s| s.signal())
    };
    #[cfg(not(unix))]
    let signal: Option<i32> = None;
    match status {
        Some(s) => match (s.code(), signal) {
            (Some(code), _) => format!("exit code {code}"),
            (None, Some(sig)) => format!("killed by signal {sig}"),
            _ => s.to_string(),
        },
        None => "still running".into(),
    }
}

#[cfg(unix)]
mod platform {
    use std::os::unix::process::CommandExt;
    use std::process::{Child, Command, Stdio};

    use crate::sys;

    /// Own process group (a terminal's Ctrl-C reaches the harness only), no stdin, and
    /// SIGKILL from the kernel when the harness dies.
    pub(super) fn configure(command: &mut Command) {
        let parent = std::process::id() as i32;
        command.stdin(Stdio::null()).process_group(0);
        // SAFETY: the closure runs in the forked child before exec and only makes
        // async-signal-safe calls (prctl, sigprocmask, getppid); it allocates nothing.
        unsafe {
            command.pre_exec(move || {
                sys::die_with_parent()?;
                // The harness may have died between fork and prctl: then nobody would stop us.
                if libc::getppid() != parent {
                    libc::_exit(1);
                }
                sys::unblock_all_signals()
            });
        }
    }

    pub(super) fn adopt(_: &mut Child) -> anyhow::Result<()> {
        Ok(())
    }
}

#[cfg(windows)]
mod platform {
    use std::os::windows::io::AsRawHandle;
    use std::os::windows::process::CommandExt;
    use std::process::{Child, Command, Stdio};
    use std::sync::OnceLock;

    use anyhow::Context;
    use windows_sys::Win32::System::JobObjects::{
        AssignProcessToJobObject, CreateJobObjectW, JobObjectExtendedLimitInformation,
        SetInformationJobObject, JOBOBJECT_EXTENDED_LIMIT_INFORMATION,
        JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
    };
    use windows_sys::Win32::System::Threading::CREATE_NEW_PROCESS_GROUP;

    /// Its own console process group (Ctrl-C reaches the harness only) and a control pipe on
    /// stdin.
    pub(super) fn configure(command: &mut Command) {
        command
            .arg("--stdin-control")
            .stdin(Stdio::piped())
            .creation_flags(CREATE_NEW_PROCESS_GROUP);
    }

    /// The job every server joins: its handle stays open for the harness's life and closes
    /// when the harness exits or is killed, and closing it kills every process in it.
    fn kill_on_close_job() -> std::io::Result<isize> {
        static JOB: OnceLock<std::io::Result<isize>> = OnceLock::new();
        let job = JOB.get_or_init(|| {
            // SAFETY: no security attributes, no name.
            let job = unsafe { CreateJobObjectW(std::ptr::null(), std::ptr::null()) };
            if job.is_null() {
                return Err(std::io::Error::last_os_error());
            }
            // SAFETY: plain data; only the flag below is set.
            let mut info: JOBOBJECT_EXTENDED_LIMIT_INFORMATION = unsafe { std::mem::zeroed() };
            info.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
            // SAFETY: `job` is open; `info` is valid for the size given.
            let ok = unsafe {
                SetInformationJobObject(
                    job,
                    JobObjectExtendedLimitInformation,
                    (&info as *const JOBOBJECT_EXTENDED_LIMIT_INFORMATION).cast(),
                    std::mem::size_of::<JOBOBJECT_EXTENDED_LIMIT_INFORMATION>() as u32,
                )
            };
            if ok == 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(job as isize)
        });
        match job {
            Ok(handle) => Ok(*handle),
            Err(e) => Err(std::io::Error::new(e.kind(), e.to_string())),
        }
    }

    pub(super) fn adopt(child: &mut Child) -> anyhow::Result<()> {
        let job = kill_on_close_job().context("cannot create a job object for the server")?;
        // SAFETY: both handles are open: the job for the process's life, the child's while
        // `child` lives.
        let ok = unsafe { AssignProcessToJobObject(job as _, child.as_raw_handle() as _) };
        if ok == 0 {
            let e = std::io::Error::last_os_error();
            let _ = child.kill();
            let _ = child.wait();
            return Err(e).context("cannot put the server in the harness's job object");
        }
        Ok(())
    }
}

/// Keeps the last bytes of a child's stderr in `keep`, until the pipe closes.
pub fn keep_tail(mut pipe: impl Read, keep: &Mutex<String>) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = pipe.read(&mut buf) {
        if n == 0 {
            return;
        }
        let Ok(mut text) = keep.lock() else { return };
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
        if text.len() > STDERR_KEEP {
            let mut cut = text.len() - STDERR_KEEP;
            while !text.is_char_boundary(cut) {
                cut += 1;
            }
            text.drain(..cut);
        }
    }
}

/// Says so when the process is stopped (state `T` or `t` in /proc/PID/stat): why it answers
/// nothing.
fn stopped_note(pid: i32) -> &'static str {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The state follows the command name, which is in parentheses and may hold spaces.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    match state {
        Some("T" | "t") => " (its process is stopped: SIGSTOP or a debugger)",
        _ => "",
    }
}
