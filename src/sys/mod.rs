//! The operating system below the harness: CPUs and pinning, process counters, the control
//! events that stop a server or ask it for its counters, the open-file limit, the OS release.
//!
//! One module per platform, chosen here; both export the same functions, documented in
//! `unix.rs`. What only one platform has stays in its module and is used under the same
//! `cfg` (POSIX signals and process groups, poll/select/eventfd for the level-triggered
//! reactor; the console control handler and job objects on Windows). `child.rs` is the guarded
//! child process, both platforms in one file.

pub mod child;
#[cfg(target_os = "linux")]
pub mod tree;

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub use unix::*;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub use windows::*;

/// Whether a read shorter than asked proves a socket drained under an edge-triggered mio
/// poller, so that the next arrival raises a new event without a read that fails with
/// WouldBlock first. True on Linux (epoll's edges, and kqueue's EV_CLEAR, fire on every
/// arrival): the readiness models save that extra `read` there. False on Windows, where mio
/// re-arms a socket's AFD poll only after an operation returned WouldBlock, so there every
/// reader goes on to WouldBlock.
pub const SHORT_READ_DRAINS: bool = cfg!(unix);

/// What a server or the harness is asked to do from outside: stop (SIGINT, SIGTERM, Ctrl-C,
/// or `stop` / end of input on a control pipe), or report its counters now (SIGUSR1, or
/// `counters` on a control pipe).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    Stop,
    Snapshot,
}

/// CPU time and context switches of the whole calling process, every thread it ever had
/// included, and its peak resident memory.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Rusage {
    pub user_s: f64,
    pub sys_s: f64,
    /// `None` where the platform does not count them per process (Windows).
    pub voluntary_ctx_switches: Option<u64>,
    pub involuntary_ctx_switches: Option<u64>,
    pub max_rss_bytes: u64,
}

/// A process's memory and threads now.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Memory {
    /// High-water mark of resident memory over the process's life.
    pub peak_rss_bytes: u64,
    /// Resident memory now.
    pub rss_bytes: u64,
    /// Live threads now.
    pub threads: u64,
}
