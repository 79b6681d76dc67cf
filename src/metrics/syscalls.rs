//! System calls of a whole process, counted by the kernel: perf tracepoint counters
//! (`raw_syscalls:sys_enter` for the total, `syscalls:sys_enter_<name>` per name), opened on a
//! process that has not exec'd yet, with `inherit` (every thread it will create is counted)
//! and `enable_on_exec` (counting starts at its first instruction of the new program).
//!
//! perf-event2 builds and reads the counters (a well-kept wrapper; its two traps
//! are avoided here: the tracepoint id is read from tracefs ourselves, since the crate looks
//! under debugfs, and kernel events are included, without which `raw_syscalls` counts 0).
//! Counters are read, never reset: a window's counts are the difference of two snapshots.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[cfg(target_os = "linux")]
use crate::hooks::REFUSE_PERF;

#[cfg(target_os = "linux")]
use super::tracefs::{self, MOUNT_COMMAND, TRACEFS};

/// How `bench run` counts system calls (`--accounting`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accounting {
    /// Count in short passes of their own (the server, then the load generator; 1 s each after
    /// 0.5 s of warm-up); timings come from the timed pass.
    Separate,
    /// Count in the timed pass itself.
    Same,
    /// Do not count.
    Off,
}

impl Accounting {
    /// Every way, in the order `--help` lists them.
    pub const ALL: &'static [Accounting] =
        &[Accounting::Separate, Accounting::Same, Accounting::Off];

    pub fn name(self) -> &'static str {
        match self {
            Accounting::Separate => "separate",
            Accounting::Same => "same",
            Accounting::Off => "off",
        }
    }
}

impl std::fmt::Display for Accounting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Accounting {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Accounting::ALL
            .iter()
            .copied()
            .find(|a| a.name() == s)
            .ok_or_else(|| format!("unknown accounting `{s}`: write separate, same or off"))
    }
}

/// The calls counted by name: what these models and the load generator make. Names the kernel
/// lacks (e.g. `select` on arm64) are skipped; the total counts every call anyway.
pub const NAMES: &[&str] = &[
    "read",
    "write",
    "readv",
    "writev",
    "recvfrom",
    "sendto",
    "recvmsg",
    "sendmsg",
    "epoll_wait",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_ctl",
    "poll",
    "ppoll",
    "select",
    "pselect6",
    "accept",
    "accept4",
    "io_uring_enter",
    "futex",
    "sched_yield",
    "clone3",
    "close",
    "nanosleep",
    "clock_nanosleep",
    "mmap",
    "munmap",
    "madvise",
    "rt_sigprocmask",
    "getrusage",
    "shutdown",
    // What real servers make besides (`bench run --server`): files, socket options,
    // descriptor flags, clocks, timers.
    "pread64",
    "pwrite64",
    "sendfile64",
    "splice",
    "sendmmsg",
    "recvmmsg",
    "fcntl",
    "ioctl",
    "setsockopt",
    "getsockopt",
    "openat",
    "newfstatat",
    "statx",
    "lseek",
    "clock_gettime",
    "gettimeofday",
    "getpid",
    "getrandom",
    "brk",
    "timerfd_settime",
];

/// Counts over a window: the total, and each name's.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SyscallCounts {
    pub total: u64,
    pub by_name: BTreeMap<String, u64>,
}

impl SyscallCounts {
    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &SyscallCounts) {
        self.total += other.total;
        for (name, n) in &other.by_name {
            *self.by_name.entry(name.clone()).or_insert(0) += n;
        }
    }

    /// `self - earlier`, name by name (saturating: counters only grow).
    pub fn since(&self, earlier: &SyscallCounts) -> SyscallCounts {
        SyscallCounts {
            total: self.total.saturating_sub(earlier.total),
            by_name: self
                .by_name
                .iter()
                .map(|(name, n)| {
                    let before = earlier.by_name.get(name).copied().unwrap_or(0);
                    (name.clone(), n.saturating_sub(before))
                })
                .collect(),
        }
    }

    /// The names with the most calls, most first (ties by name).
    pub fn top(&self, n: usize) -> Vec<(&str, u64)> {
        let mut all: Vec<(&str, u64)> = self
            .by_name
            .iter()
            .filter(|(_, &c)| c > 0)
            .map(|(k, &c)| (k.as_str(), c))
            .collect();
        all.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        all.truncate(n);
        all
    }
}

/// Why there are no counts off Linux.
pub const NO_PERF: &str =
    "system calls are counted with Linux perf tracepoints; this platform has none";

/// Off Linux: counters that can never be opened.
#[cfg(not(target_os = "linux"))]
pub struct SyscallCounters {
    never: std::convert::Infallible,
}

#[cfg(not(target_os = "linux"))]
impl SyscallCounters {
    pub fn open_before_exec(_pid: u32) -> Result<SyscallCounters, String> {
        Err(NO_PERF.into())
    }

    pub fn open_on_this_thread() -> Result<SyscallCounters, String> {
        Err(NO_PERF.into())
    }

    pub fn read(&mut self) -> Result<SyscallCounts, String> {
        match self.never {}
    }
}

/// The counters of one process (and every thread it creates after they were opened).
#[cfg(target_os = "linux")]
pub struct SyscallCounters {
    total: perf_event::Counter,
    named: Vec<(String, perf_event::Counter)>,
}

#[cfg(target_os = "linux")]
impl SyscallCounters {
    /// Opens the counters on process `pid`, disabled until it calls `execve`. `Err` says why
    /// they cannot be had and what to change.
    pub fn open_before_exec(pid: u32) -> Result<SyscallCounters, String> {
        if std::env::var_os(REFUSE_PERF).is_some() {
            return Err(format!(
                "system call counting was refused ({REFUSE_PERF} is set, for tests)"
            ));
        }
        let total_id = tracepoint_id("raw_syscalls", "sys_enter")?;
        let total = open(total_id, pid).map_err(refused)?;
        let mut named = Vec::new();
        for name in NAMES {
            // A name this kernel does not have is left out of the breakdown.
            let Ok(id) = tracepoint_id("syscalls", &format!("sys_enter_{name}")) else {
                continue;
            };
            named.push((name.to_string(), open(id, pid).map_err(refused)?));
        }
        Ok(SyscallCounters { total, named })
    }

    /// Counters on the calling thread alone, counting from now (the load generator's threads
    /// count themselves this way; any thread may read them).
    pub fn open_on_this_thread() -> Result<SyscallCounters, String> {
        if std::env::var_os(REFUSE_PERF).is_some() {
            return Err(format!(
                "system call counting was refused ({REFUSE_PERF} is set, for tests)"
            ));
        }
        let open_here = |id: u64| {
            perf_event::Builder::new(perf_event::events::Tracepoint::with_id(id))
                .observe_self()
                .any_cpu()
                .include_kernel()
                .enabled(true)
                .build()
        };
        let total = open_here(tracepoint_id("raw_syscalls", "sys_enter")?).map_err(refused)?;
        let mut named = Vec::new();
        for name in NAMES {
            let Ok(id) = tracepoint_id("syscalls", &format!("sys_enter_{name}")) else {
                continue;
            };
            named.push((name.to_string(), open_here(id).map_err(refused)?));
        }
        Ok(SyscallCounters { total, named })
    }

    /// The counts so far, every thread of the process included.
    pub fn read(&mut self) -> Result<SyscallCounts, String> {
        let total = self
            .total
            .read()
            .map_err(|e| format!("cannot read a counter: {e}"))?;
        let mut by_name = BTreeMap::new();
        for (name, counter) in &mut self.named {
            let n = counter
                .read()
                .map_err(|e| format!("cannot read a counter: {e}"))?;
            by_name.insert(name.clone(), n);
        }
        Ok(SyscallCounts { total, by_name })
    }
}

#[cfg(target_os = "linux")]
/// One tracepoint counter on `pid`: kernel events included (a syscall tracepoint fires in the
/// kernel), inherited by new threads, enabled by the process's next `execve`.
fn open(id: u64, pid: u32) -> std::io::Result<perf_event::Counter> {
    perf_event::Builder::new(perf_event::events::Tracepoint::with_id(id))
        .observe_pid(pid as i32)
        .any_cpu()
        .include_kernel()
        .inherit(true)
        .enable_on_exec(true)
        .build()
}

/// The id of tracepoint `category:name`, from tracefs.
#[cfg(target_os = "linux")]
fn tracepoint_id(category: &str, name: &str) -> Result<u64, String> {
    let Some(events) = tracefs::events_dir() else {
        return Err(format!(
            "tracefs is not mounted at {TRACEFS}: to count system calls, run `{MOUNT_COMMAND}` \
             (`bench run` mounts it itself when it runs as root)"
        ));
    };
    let path = events.join(category).join(name).join("id");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "cannot read {} ({e}): the kernel has no such tracepoint, or tracefs is not \
             readable (run as root, or give the user access to {TRACEFS})",
            path.display()
        )
    })?;
    text.trim()
        .parse()
        .map_err(|_| format!("{} does not hold a number", path.display()))
}

/// What to do when the kernel refuses a counter.
#[cfg(target_os = "linux")]
fn refused(e: std::io::Error) -> String {
    let paranoid = std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    format!(
        "the kernel refused a perf tracepoint counter ({e}; perf_event_paranoid is {paranoid}): \
         run as root, or with CAP_PERFMON, or lower kernel.perf_event_paranoid (sysctl \
         kernel.perf_event_paranoid=-1); containers often block perf_event_open altogether"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_and_the_top_names() {
        let a = SyscallCounts {
            total: 10,
            by_name: [("read".into(), 3), ("write".into(), 2)].into(),
        };
        let b = SyscallCounts {
            total: 30,
            by_name: [
                ("read".into(), 8),
                ("write".into(), 12),
                ("futex".into(), 1),
            ]
            .into(),
        };
        let d = b.since(&a);
        assert_eq!(d.total, 20);
        assert_eq!(d.by_name["read"], 5);
        assert_eq!(d.by_name["write"], 10);
        assert_eq!(d.by_name["futex"], 1);
        assert_eq!(d.top(2), [("write", 10), ("read", 5)]);
    }
}
