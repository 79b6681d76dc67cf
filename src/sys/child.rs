//! A `bench` child process that cannot outlive the harness: the one guard shared by the server
//! (`run/child.rs`'s `ServerProcess`) and the load generator's client processes
//! (`load/split.rs`'s `ClientProcess`).
//!
//! [`guard`] configures the command before it starts, [`GuardedChild`] holds it once it runs:
//! 1. the child runs in its own process group, so a Ctrl-C on the terminal reaches the harness
//!    only, and the harness stops the child itself, in order;
//! 2. the child asks the kernel for SIGKILL when the thread that started it dies
//!    (PR_SET_PDEATHSIG), which covers a harness killed with SIGKILL itself;
//! 3. dropping a [`GuardedChild`] (an early return, an error, a panic that unwinds) kills the
//!    group with SIGKILL and reaps it; [`GuardedChild::wait_within`] does the same past a grace
//!    period.
//!
//! On Windows the same, by other means: a new console process group, the blunt stop is
//! TerminateProcess, and the child is put in a job object that kills its processes when the
//! harness's handle to it closes, as it does when the harness dies however it dies.
//!
//! Besides the guard, what every child's owner needs for its messages: the tail of the child's
//! stderr ([`StderrTail`]), its exit status in words ([`describe`]), and whether it is stopped
//! ([`stopped_note`]).

use std::collections::BTreeSet;
use std::io::Read;
use std::process::{Child, ChildStderr, Command, ExitStatus};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;

/// The last bytes of the child's stderr kept for error messages.
const STDERR_KEEP: usize = 4096;

/// Puts `command` under the guards before it starts: its own process group, and (Unix) no
/// stdin and SIGKILL from the kernel when the thread that starts it dies. Set its stdio after
/// this call.
pub fn guard(command: &mut Command) {
    platform::configure(command);
}

/// The processes this one started and has not yet reaped: its own children, as opposed to
/// orphans reparented to it (see `tree.rs`).
static OWN: Mutex<BTreeSet<i32>> = Mutex::new(BTreeSet::new());

/// The live children this process started itself (every [`GuardedChild`]).
pub fn own_children() -> BTreeSet<i32> {
    OWN.lock().map(|s| s.clone()).unwrap_or_default()
}

fn own(pid: u32, started: bool) {
    if let Ok(mut set) = OWN.lock() {
        if started {
            set.insert(pid as i32);
        } else {
            set.remove(&(pid as i32));
        }
    }
}

/// A started child under the guards: killed with its process group, and reaped, when dropped
/// before it exited.
pub struct GuardedChild {
    child: Child,
    status: Option<ExitStatus>,
}

impl GuardedChild {
    /// Takes charge of `child`, started from a [`guard`]ed command. On Windows it joins the
    /// harness's kill-on-close job (`what` names it in the error, e.g. "the server"); a child
    /// that cannot join is killed.
    pub fn adopt(child: Child, what: &str) -> anyhow::Result<GuardedChild> {
        let mut child = child;
        own(child.id(), true);
        platform::adopt(&mut child, what)?;
        Ok(GuardedChild {
            child,
            status: None,
        })
    }

    /// The child itself, for its pipes (waiting and killing go through this type).
    pub fn pipes(&mut self) -> &mut Child {
        &mut self.child
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its exit status once known, without asking the OS again.
    pub fn status(&self) -> Option<ExitStatus> {
        self.status
    }

    /// `Some(status)` once the child has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    /// Waits up to `grace` for the child to exit (looking every 10 ms), then kills its group
    /// and reaps it.
    pub fn wait_within(&mut self, grace: Duration) -> Option<ExitStatus> {
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

    /// Kills the child's whole process group (on Windows, the child).
    #[cfg(unix)]
    pub fn kill(&mut self) {
        let _ = super::kill(-(self.pid() as i32), libc::SIGKILL);
    }

    #[cfg(windows)]
    pub fn kill(&mut self) {
        let _ = self.child.kill();
    }
}

impl Drop for GuardedChild {
    fn drop(&mut self) {
        if self.exited().is_none() {
            self.kill();
            self.status = self.child.wait().ok();
        }
        own(self.child.id(), false);
    }
}

/// The last bytes of a child's stderr, kept by a thread of their own for error messages.
pub struct StderrTail(Arc<Mutex<String>>, &'static str);

impl StderrTail {
    /// Starts a thread named `thread` that keeps the tail of `pipe` until it closes.
    pub fn follow(pipe: ChildStderr, thread: String) -> anyhow::Result<StderrTail> {
        Self::follow_named(pipe, thread, "stderr")
    }

    /// [`follow`](Self::follow) for any pipe of the child, `name` saying which ("stdout").
    pub fn follow_named(
        pipe: impl Read + Send + 'static,
        thread: String,
        name: &'static str,
    ) -> anyhow::Result<StderrTail> {
        let tail = Arc::new(Mutex::new(String::new()));
        let keep = tail.clone();
        std::thread::Builder::new()
            .name(thread)
            .spawn(move || keep_tail(pipe, &keep))
            .context("cannot start a reader thread")?;
        Ok(StderrTail(tail, name))
    }

    /// The tail, formatted for an error message ("; its stderr:\n..."; empty when there is
    /// none).
    pub fn note(&self) -> String {
        // Give the reader thread a moment to drain what the child wrote last.
        std::thread::sleep(Duration::from_millis(50));
        let text = self
            .0
            .lock()
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        if text.is_empty() {
            String::new()
        } else {
            format!("; its {}:\n{text}", self.1)
        }
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

/// Says so when the process is stopped (state `T` or `t` in /proc/PID/stat): why it answers
/// nothing.
pub fn stopped_note(pid: i32) -> &'static str {
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

#[cfg(unix)]
mod platform {
    use std::os::unix::process::CommandExt;
    use std::process::{Child, Command, Stdio};

    /// Own process group (a terminal's Ctrl-C reaches the harness only), no stdin, and
    /// SIGKILL from the kernel when the harness dies.
    pub(super) fn configure(command: &mut Command) {
        let parent = std::process::id() as i32;
        command.stdin(Stdio::null()).process_group(0);
        // SAFETY: the closure runs in the forked child before exec and only makes
        // async-signal-safe calls (prctl, sigprocmask, getppid); it allocates nothing.
        unsafe {
            command.pre_exec(move || {
                crate::sys::die_with_parent()?;
                // The harness may have died between fork and prctl: then nobody would stop us.
                if libc::getppid() != parent {
                    libc::_exit(1);
                }
                crate::sys::unblock_all_signals()
            });
        }
    }

    pub(super) fn adopt(_: &mut Child, _: &str) -> anyhow::Result<()> {
        Ok(())
    }
}

#[cfg(windows)]
mod platform {
    use std::os::windows::io::AsRawHandle;
    use std::os::windows::process::CommandExt;
    use std::process::{Child, Command};
    use std::sync::OnceLock;

    use anyhow::Context;
    use windows_sys::Win32::System::JobObjects::{
        AssignProcessToJobObject, CreateJobObjectW, JobObjectExtendedLimitInformation,
        SetInformationJobObject, JOBOBJECT_EXTENDED_LIMIT_INFORMATION,
        JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
    };
    use windows_sys::Win32::System::Threading::CREATE_NEW_PROCESS_GROUP;

    /// Its own console process group (Ctrl-C reaches the harness only).
    pub(super) fn configure(command: &mut Command) {
        command.creation_flags(CREATE_NEW_PROCESS_GROUP);
    }

    /// The job every guarded child joins: its handle stays open for the harness's life and
    /// closes when the harness exits or is killed, and closing it kills every process in it.
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

    pub(super) fn adopt(child: &mut Child, what: &str) -> anyhow::Result<()> {
        let job = kill_on_close_job()
            .with_context(|| format!("cannot create a job object for {what}"))?;
        // SAFETY: both handles are open: the job for the process's life, the child's while
        // `child` lives.
        let ok = unsafe { AssignProcessToJobObject(job as _, child.as_raw_handle() as _) };
        if ok == 0 {
            let e = std::io::Error::last_os_error();
            let _ = child.kill();
            let _ = child.wait();
            return Err(e)
                .with_context(|| format!("cannot put {what} in the harness's job object"));
        }
        Ok(())
    }
}
