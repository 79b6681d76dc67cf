//! A `bench serve` child for one trial, and what /proc says about it.

use std::io::{BufRead, BufReader, Read, Seek};
use std::net::SocketAddr;
use std::process::{Child, Stdio};
use std::time::Duration;

use super::common::{bench, with_fd_limit};
use super::Config;

/// How a trial's server is started.
pub struct Opts {
    pub threads: usize,
    pub idle_timeout: Duration,
    /// RLIMIT_NOFILE for the server (soft and hard); `None` keeps the test's own.
    pub fd_limit: Option<u64>,
}

/// A running `bench serve`, killed (and reaped) when dropped, whatever failed.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    pub pid: u32,
    stderr: std::fs::File,
}

impl Server {
    pub fn start(cfg: &Config, opts: &Opts) -> Result<Server, String> {
        let stderr = tempfile::tempfile().map_err(|e| format!("cannot make a temp file: {e}"))?;
        let err_copy = stderr
            .try_clone()
            .map_err(|e| format!("cannot share the temp file: {e}"))?;
        let mut cmd = bench();
        cmd.args(["serve", "--model", cfg.model, "--workload", cfg.workload])
            .args(["--threads", &opts.threads.to_string()])
            .args([
                "--idle-timeout",
                &format!("{}ms", opts.idle_timeout.as_millis()),
            ])
            // A safety net: a server outlives no test run by more than this.
            .args(["--duration", "300s"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(err_copy);
        if cfg.workload == "echo" {
            cmd.args(["--message-size", &super::ECHO_MESSAGE.to_string()]);
        }
        if let Some(p) = cfg.poller {
            cmd.args(["--poller", p]);
        }
        if let Some(n) = opts.fd_limit {
            with_fd_limit(&mut cmd, n);
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start bench serve: {e}"))?;
        let pid = child.id();
        let mut line = String::new();
        let read = child
            .stdout
            .take()
            .map(|out| BufReader::new(out).read_line(&mut line));
        let mut server = Server {
            child,
            addr: "127.0.0.1:0".parse().expect("an address"),
            pid,
            stderr,
        };
        let ready: serde_json::Value = match read {
            Some(Ok(n)) if n > 0 => serde_json::from_str(&line)
                .map_err(|e| format!("ready line `{line}` is not JSON: {e}"))?,
            _ => return Err(format!("no ready line; stderr: {}", server.stderr_text())),
        };
        server.addr = ready["listening"]
            .as_str()
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| format!("ready line without an address: {line}"))?;
        let want = opts.idle_timeout.as_secs_f64();
        if ready["idle_timeout_s"].as_f64() != Some(want) {
            return Err(format!(
                "the server did not take --idle-timeout {want}s: {line}"
            ));
        }
        Ok(server)
    }

    /// Whether the process still runs.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// What the server wrote on stderr so far.
    pub fn stderr_text(&mut self) -> String {
        let mut text = String::new();
        if self.stderr.rewind().is_ok() {
            let _ = self.stderr.read_to_string(&mut text);
        }
        text
    }

    /// A `kB` line of /proc/PID/status, in bytes.
    fn status_bytes(&self, key: &str) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    }

    /// Resident memory now (VmRSS).
    pub fn rss(&self) -> u64 {
        self.status_bytes("VmRSS:")
    }

    /// Peak resident memory so far (VmHWM).
    pub fn peak_rss(&self) -> u64 {
        self.status_bytes("VmHWM:")
    }

    /// CPU time used so far, user and system, every thread.
    pub fn cpu_time(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).unwrap_or_default();
        // Fields after the command name, which is in parentheses and may hold spaces.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
        Duration::from_millis((ticks(11) + ticks(12)) * 1000 / hz)
    }

    /// Open descriptors. (proactor-uring's connections are direct descriptors, not counted.)
    pub fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid)).map_or(0, |d| d.count())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
