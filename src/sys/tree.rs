//! A process tree on Linux, read from `/proc`: an outside server's processes (nginx's master and
//! workers, a server's helpers), their counters summed, and every one of them stopped.
//!
//! The harness makes itself a child subreaper ([`become_subreaper`]), so that a process of the
//! tree whose parent exits (a daemon's double fork) is reparented to the harness instead of
//! init: it stays in reach. A tree is its root, every process whose parent is in the tree, and
//! every child of the harness that the harness did not start itself (such an orphan can only
//! come from a tree: the harness's own children are the servers and the client processes,
//! registered by [`super::child::GuardedChild`]).
//!
//! The counters are the kernel's per process: CPU (`/proc/PID/stat`: user and system time of
//! every thread, those that exited included, plus the children the process waited for, so a
//! worker that exits and is reaped inside the tree keeps its CPU in the sum), context switches
//! (`/proc/PID/task/*/status`: live threads only), memory (`VmHWM` and `VmRSS` summed: the sum
//! of the processes' peaks is an upper bound of the tree's peak) and threads.

use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

/// A tree's counters summed over its live processes.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TreeCounters {
    pub user_s: f64,
    pub sys_s: f64,
    pub voluntary_ctx_switches: u64,
    pub involuntary_ctx_switches: u64,
    /// The sum of the processes' peaks: an upper bound of the tree's.
    pub peak_rss_bytes: u64,
    pub rss_bytes: u64,
    pub threads: u64,
}

impl TreeCounters {
    pub fn cpu_s(&self) -> f64 {
        self.user_s + self.sys_s
    }
}

/// Whether this process is a subreaper: only then are its unknown children orphans of a tree.
static SUBREAPER: AtomicBool = AtomicBool::new(false);

/// Makes the calling process a child subreaper (PR_SET_CHILD_SUBREAPER): orphans of its
/// descendants are reparented to it.
pub fn become_subreaper() -> io::Result<()> {
    // SAFETY: prctl with an integer option and argument has no memory-safety preconditions.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0) };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    SUBREAPER.store(true, Ordering::Release);
    Ok(())
}

/// Every live process's `/proc/PID/stat`, by pid.
fn parents() -> BTreeMap<i32, Stat> {
    let mut map = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return map;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        if let Some(stat) = Stat::read(pid) {
            map.insert(pid, stat);
        }
    }
    map
}

/// What `/proc/PID/stat` says of a process, the fields used here.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Stat {
    ppid: i32,
    /// Zombie: exited, not yet waited for.
    zombie: bool,
    /// user + system + waited-for children's, in clock ticks.
    utime: u64,
    stime: u64,
    /// When it started, in clock ticks after boot: with the pid, names one process for good
    /// (a pid alone may be reused once its process is gone).
    start: u64,
}

impl Stat {
    fn read(pid: i32) -> Option<Stat> {
        Stat::parse(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
    }

    /// The fields after the command name, which is in parentheses and may hold any byte.
    fn parse(text: &str) -> Option<Stat> {
        let rest = &text[text.rfind(')')? + 1..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        // f[0] is field 3 (state); field N is f[N - 3].
        let num = |n: usize| f.get(n - 3)?.parse::<u64>().ok();
        Some(Stat {
            ppid: f.get(1)?.parse().ok()?,
            zombie: f.first()? == &"Z",
            utime: num(14)? + num(16)?,
            stime: num(15)? + num(17)?,
            start: num(22)?,
        })
    }
}

/// One tree: its root and every process seen in it since (pid and start time).
#[derive(Debug)]
pub struct Tree {
    root: i32,
    known: BTreeMap<i32, u64>,
}

impl Tree {
    pub fn new(root: i32) -> Tree {
        let start = Stat::read(root).map_or(0, |s| s.start);
        Tree {
            root,
            known: BTreeMap::from([(root, start)]),
        }
    }

    /// The live processes of the tree now (zombies left out), the root first when alive.
    pub fn members(&mut self) -> Vec<i32> {
        let parents = parents();
        let me = std::process::id() as i32;
        let own = super::child::own_children();
        // Those known that are gone, or whose pid now names another process, leave.
        self.known
            .retain(|pid, start| parents.get(pid).is_some_and(|s| s.start == *start));
        // Orphans of the tree reparented to us.
        if SUBREAPER.load(Ordering::Acquire) {
            for (&pid, stat) in &parents {
                if stat.ppid == me && !own.contains(&pid) {
                    self.known.insert(pid, stat.start);
                }
            }
        }
        // Descendants of any process known, to a fixed point.
        loop {
            let before = self.known.len();
            for (&pid, stat) in &parents {
                if self.known.contains_key(&stat.ppid) {
                    self.known.entry(pid).or_insert(stat.start);
                }
            }
            if self.known.len() == before {
                break;
            }
        }
        let mut live: Vec<i32> = self
            .known
            .keys()
            .copied()
            .filter(|p| parents.get(p).is_some_and(|s| !s.zombie))
            .collect();
        live.sort_by_key(|&p| p != self.root);
        live
    }

    /// Every process of the tree except the root: what the root left running (a daemon that
    /// forked into the background and exited, workers of a master that died).
    pub fn others(&mut self) -> Vec<i32> {
        let root = self.root;
        self.members().into_iter().filter(|&p| p != root).collect()
    }

    /// The tree's counters now, summed over its live processes.
    pub fn counters(&mut self) -> TreeCounters {
        let tick = clock_ticks();
        let mut sum = TreeCounters::default();
        for pid in self.members() {
            let Some(stat) = Stat::read(pid) else {
                continue;
            };
            sum.user_s += stat.utime as f64 / tick;
            sum.sys_s += stat.stime as f64 / tick;
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            sum.peak_rss_bytes += kib(&status, "VmHWM:") * 1024;
            sum.rss_bytes += kib(&status, "VmRSS:") * 1024;
            sum.threads += kib(&status, "Threads:");
            let (voluntary, involuntary) = switches(pid);
            sum.voluntary_ctx_switches += voluntary;
            sum.involuntary_ctx_switches += involuntary;
        }
        sum
    }

    /// The root has been waited for: its pid may be reused by any process from now on, so it
    /// stops naming the tree (its children were reparented to the harness, and are found as
    /// orphans).
    pub fn root_reaped(&mut self) {
        self.known.remove(&self.root);
    }

    /// Sends `signal` to every live process of the tree.
    pub fn signal(&mut self, signal: libc::c_int) {
        for pid in self.members() {
            let _ = super::kill(pid, signal);
        }
    }

    /// Kills every process of the tree but the root (whose owner kills and reaps it) and reaps
    /// those that were reparented to the harness; returns how many there were.
    pub fn kill_others(&mut self) -> usize {
        let others = self.others();
        for &pid in &others {
            let _ = super::kill(pid, libc::SIGKILL);
        }
        reap_orphans(&others);
        others.len()
    }
}

/// Waits for those of `pids` that are the harness's children (orphans reparented to it), so
/// that none stays a zombie; the others' parents wait for them.
fn reap_orphans(pids: &[i32]) {
    let me = std::process::id() as i32;
    for &pid in pids {
        if Stat::read(pid).is_some_and(|s| s.ppid == me) {
            let mut status = 0;
            // SAFETY: waitpid on a pid with a valid out-pointer.
            unsafe { libc::waitpid(pid, &mut status, 0) };
        }
    }
}

/// Clock ticks per second, the unit of `/proc/PID/stat`'s times.
fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// The number after `key` in a `/proc/PID/status` text (kB for memory lines), or 0.
fn kib(status: &str, key: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Voluntary and involuntary context switches of a process's live threads.
fn switches(pid: i32) -> (u64, u64) {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return (0, 0);
    };
    let mut sum = (0, 0);
    for task in tasks.flatten() {
        let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
        sum.0 += kib(&status, "voluntary_ctxt_switches:");
        sum.1 += kib(&status, "nonvoluntary_ctxt_switches:");
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_with_parentheses_in_the_name_parses() {
        let line = "42 (a) b) (c) S 7 42 42 0 -1 4194560 100 0 0 0 250 30 5 6 20 0 1 0 987 1 1";
        let s = Stat::parse(line).unwrap();
        assert_eq!(
            (s.ppid, s.zombie, s.utime, s.stime, s.start),
            (7, false, 255, 36, 987)
        );
        assert!(Stat::parse("garbage").is_none());
    }

    #[test]
    fn a_tree_holds_a_forked_grandchild_and_counts_its_cpu() {
        // sh -> a subshell in the background -> a busy loop: the first sh's tree holds all three.
        let mut child = std::process::Command::new("sh")
            .args(["-c", "(sh -c 'while :; do :; done'; :) & wait"])
            .spawn()
            .unwrap();
        let mut tree = Tree::new(child.id() as i32);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while tree.members().len() < 3 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(tree.members().len(), 3, "{:?}", tree.members());
        std::thread::sleep(std::time::Duration::from_millis(300));
        let c = tree.counters();
        assert!(c.cpu_s() > 0.05, "{c:?}");
        assert!(c.threads >= 3 && c.peak_rss_bytes > 0, "{c:?}");
        assert_eq!(tree.kill_others(), 2);
        let _ = child.kill();
        let _ = child.wait();
        // SIGKILL takes effect when the process next runs: give them a moment to die.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !tree.members().is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(tree.members().is_empty(), "{:?}", tree.members());
    }
}
