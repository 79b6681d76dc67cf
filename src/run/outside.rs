//! `bench run --server NAME=COMMAND`: a server the harness did not write (the user's own, Redis,
//! memcached, nginx), run and measured as a model is.
//!
//! COMMAND is split into words as a shell would (quotes respected, by the `shlex` crate) and run
//! without a shell, `{port}` replaced by a free port (and `{threads}`, `{cpus}` by the server's
//! thread count and CPU list). It starts held, as a model's `bench serve` does (a `bench` that
//! waits for one byte, then execs COMMAND: see [`HOLD_EXEC_COMMAND`]), so that it is pinned to
//! the server CPUs and its system-call counters are open before its first instruction. It is
//! ready when a connection to its port succeeds. Its CPU, context switches and memory are its
//! whole process tree's (`sys/tree.rs`), read at the window's edges; it is stopped with SIGTERM
//! to the tree, then SIGKILL; a server that daemonizes (its first process exits, leaving others
//! running) is refused, and what it left is killed.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::hooks::{HOLD_EXEC, HOLD_EXEC_COMMAND};
use crate::metrics::process::ProcessCounters;
use crate::sys::child::{describe, guard, GuardedChild, StderrTail};
use crate::sys::tree::Tree;
use crate::units::CpuList;
use crate::Error;

pub use super::subject::OutsideServer;

/// How long a server may take to accept a connection on its port.
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// What to say to a server that forked into the background.
const DAEMON_FIX: &str = "run it in the foreground, as a service manager would: nginx -g \
                          'daemon off;', redis-server --daemonize no, memcached without -d";

/// A free port on 127.0.0.1 for `{port}` (the kernel's pick; closed again before the server
/// binds it).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).context("cannot find a free port")?;
    Ok(listener.local_addr()?.port())
}

/// A running outside server: the held `bench` that became COMMAND, and its tree.
pub struct OutsideProcess {
    /// First, so that a drop kills the root before anything else of it goes.
    child: GuardedChild,
    tree: Tree,
    accountant: Option<Result<crate::metrics::syscalls::SyscallCounters, String>>,
    stdout: StderrTail,
    stderr: StderrTail,
    pub addr: SocketAddr,
    name: String,
}

impl OutsideProcess {
    /// Starts `words` held, pins it to `cpus`, opens its system-call counters when
    /// `count_syscalls`, releases it and waits until a connection to `port` succeeds.
    pub fn spawn(
        server: &OutsideServer,
        words: &[String],
        port: u16,
        cpus: &CpuList,
        count_syscalls: bool,
        stop: &AtomicBool,
    ) -> anyhow::Result<OutsideProcess> {
        crate::sys::tree::become_subreaper()
            .context("cannot make bench a subreaper, to keep a server's processes in reach")?;
        let exe = std::env::current_exe().context("cannot find the bench executable")?;
        let mut command = Command::new(exe);
        guard(&mut command);
        command
            .args(words)
            .env(HOLD_EXEC, "1")
            .env(HOLD_EXEC_COMMAND, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = command
            .spawn()
            .with_context(|| format!("cannot start the server `{}`", server.name))?;
        let mut child = GuardedChild::adopt(child, "the server")?;
        let pid = child.pid() as i32;
        let pinned = crate::sys::pin_pid(pid, cpus.cpus());
        let accountant = count_syscalls
            .then(|| crate::metrics::syscalls::SyscallCounters::open_before_exec(child.pid()));
        // Release it whatever happened; a pinning error stops it first.
        if let Some(mut hold) = child.pipes().stdin.take() {
            use std::io::Write;
            if pinned.is_ok() {
                let _ = hold.write_all(b"g");
            }
        }
        pinned
            .with_context(|| format!("cannot pin the server `{}` to CPUs {cpus}", server.name))?;
        let stdout = StderrTail::follow_named(
            child
                .pipes()
                .stdout
                .take()
                .context("the server has no stdout")?,
            format!("{}-stdout", server.name),
            "stdout",
        )?;
        let stderr = StderrTail::follow(
            child
                .pipes()
                .stderr
                .take()
                .context("the server has no stderr")?,
            format!("{}-stderr", server.name),
        )?;
        let mut process = OutsideProcess {
            child,
            tree: Tree::new(pid),
            accountant,
            stdout,
            stderr,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            name: server.name.clone(),
        };
        process.wait_ready(stop, &server.command)?;
        Ok(process)
    }

    /// Waits until a connection to the server's port succeeds.
    fn wait_ready(&mut self, stop: &AtomicBool, command: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if stop.load(Ordering::Acquire) {
                anyhow::bail!(Error::Measured(
                    "interrupted before the server was ready".into()
                ));
            }
            if let Some(status) = self.exited() {
                if let Some(daemon) = self.left_behind() {
                    anyhow::bail!(Error::Usage(daemon));
                }
                anyhow::bail!(Error::Environment(format!(
                    "the server `{}` exited before it accepted a connection on {} ({}): is \
                     `{{port}}` where its command takes the port? (command: {command}){}",
                    self.name,
                    self.addr,
                    describe(Some(status)),
                    self.output_note()
                )));
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(100)).is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                anyhow::bail!(Error::Environment(format!(
                    "the server `{}` accepted no connection on {} within {} s: does its \
                     command listen on 127.0.0.1:{{port}}? (command: {command}){}",
                    self.name,
                    self.addr,
                    READY_TIMEOUT.as_secs(),
                    self.output_note()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// When the first process has exited and others of its tree run on: kills them and says
    /// why the server is refused.
    fn left_behind(&mut self) -> Option<String> {
        let left = self.tree.kill_others();
        (left > 0).then(|| {
            format!(
                "the server `{}` daemonized: its first process exited and left {left} \
                 process{} running in the background (stopped now). bench must own the server \
                 to measure and stop it: {DAEMON_FIX}",
                self.name,
                if left == 1 { "" } else { "es" }
            )
        })
    }

    /// The tree's counters now (every process of it; see `sys/tree.rs`).
    pub fn counters(&mut self) -> anyhow::Result<ProcessCounters> {
        if let Some(status) = self.exited() {
            anyhow::bail!(
                "the server's first process has exited ({})",
                describe(Some(status))
            );
        }
        let c = self.tree.counters();
        Ok(ProcessCounters {
            cpu_user_s: c.user_s,
            cpu_sys_s: c.sys_s,
            voluntary_ctx_switches: Some(c.voluntary_ctx_switches),
            involuntary_ctx_switches: Some(c.involuntary_ctx_switches),
            peak_rss_bytes: c.peak_rss_bytes,
            rss_bytes: c.rss_bytes,
            threads: c.threads,
        })
    }

    /// The tree's system calls so far, as a model's are counted.
    pub fn syscalls(&mut self) -> Option<Result<crate::metrics::syscalls::SyscallCounts, String>> {
        match self.accountant.as_mut()? {
            Ok(counters) => Some(counters.read()),
            Err(why) => Some(Err(why.clone())),
        }
    }

    /// `Some(status)` once the first process has exited (and was reaped: its pid no longer
    /// names the tree).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        let status = self.child.exited();
        if status.is_some() {
            self.tree.root_reaped();
        }
        status
    }

    /// Why the server stopped during the run, if it did (it exited); `Err` when it
    /// daemonized (its first process exited after it became ready, its others ran on): that
    /// server is refused, whenever it is found out.
    pub fn gone(&mut self) -> Result<Option<String>, Error> {
        let Some(status) = self.exited() else {
            return Ok(None);
        };
        if let Some(daemon) = self.left_behind() {
            return Err(Error::Usage(daemon));
        }
        Ok(Some(format!(
            "the server exited during the run ({}){}",
            describe(Some(status)),
            self.output_note()
        )))
    }

    /// Stops the tree: SIGTERM to every process, a grace period, SIGKILL to what is left.
    /// Returns the first process's status and whether the stop was clean (an exit with 0, or
    /// the death by SIGTERM of a server that installs no handler for it).
    pub fn stop_within(mut self, grace: Duration) -> (Option<ExitStatus>, bool) {
        if self.exited().is_none() {
            self.tree.signal(libc::SIGTERM);
            self.tree.signal(libc::SIGCONT);
        }
        let status = self.child.wait_within(grace);
        // Waited for, whatever the status: its pid may name another process now.
        self.tree.root_reaped();
        let left = self.tree.kill_others();
        let clean = status.is_some_and(|s| {
            use std::os::unix::process::ExitStatusExt;
            s.success() || s.signal() == Some(libc::SIGTERM)
        });
        (status, clean && left == 0)
    }

    /// The tails of the server's stderr and stdout, for an error message.
    pub fn output_note(&self) -> String {
        format!("{}{}", self.stderr.note(), self.stdout.note())
    }
}

impl Drop for OutsideProcess {
    fn drop(&mut self) {
        // The root goes with `child`; what it started goes here.
        if self.exited().is_none() {
            self.child.kill();
        }
        self.tree.kill_others();
    }
}
