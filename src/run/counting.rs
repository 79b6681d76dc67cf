//! System-call counting in `bench run`: what a pass counts, and the tracefs the counters need
//! (mounted when `bench` may, or the line that says why there are no counts).

use std::time::Duration;

use super::server::Server;
use super::{Plan, RunOptions};
use crate::metrics::syscalls::Accounting;
use crate::result::syscalls::{self, SyscallFigures};

/// The measured window of a counting pass of `--accounting separate`, when the timed pass's is
/// longer. Counts per request settle fast: over `bench run --all` (echo and http, 3 repeats)
/// every call but the waits was within 0.07% of a 5 s pass at 1 s (0.15% at 500 ms, 0.32% at
/// 250 ms); the waits (epoll_wait, io_uring_enter) move as much between two 5 s passes.
pub(super) const COUNTING_WINDOW: Duration = Duration::from_secs(1);
/// The warm-up of a counting pass, when the timed pass's is longer.
pub(super) const COUNTING_WARMUP: Duration = Duration::from_millis(500);

/// `opts` shortened for a pass of its own that only counts (`--accounting separate`): the
/// window and warm-up capped at `COUNTING_WINDOW` and `COUNTING_WARMUP`.
pub(super) fn counting_pass(opts: &RunOptions) -> RunOptions {
    let mut opts = opts.clone();
    opts.shape.duration = opts.shape.duration.min(COUNTING_WINDOW);
    opts.shape.warmup = opts.shape.warmup.min(COUNTING_WARMUP);
    opts
}

/// What a pass counts.
#[derive(Clone, Copy, Debug)]
pub(super) struct Counting {
    /// `same` or `separate`, as recorded.
    pub pass: &'static str,
    pub server: bool,
    pub client: bool,
}

impl Counting {
    /// Everything, in the timed pass.
    pub const SAME: Counting = Counting {
        pass: "same",
        server: true,
        client: true,
    };
    /// The server alone, in a pass of its own.
    pub const SERVER: Counting = Counting {
        pass: "separate",
        server: true,
        client: false,
    };
    /// The load generator alone, in a pass of its own.
    pub const CLIENT: Counting = Counting {
        pass: "separate",
        server: false,
        client: true,
    };
}

impl Counting {
    /// A pass of its own that only counts (`--accounting separate`), not the timed pass.
    pub fn only_counts(self) -> bool {
        self.pass == Counting::SERVER.pass
    }
}

/// Whether this point counts system calls at all (on a platform that can).
pub(super) fn counts(opts: &RunOptions) -> bool {
    cfg!(target_os = "linux") && opts.accounting != Accounting::Off
}

/// Makes sure the counters can be had before the first pass: on Linux, with some point
/// counting, mounts tracefs when it is missing and this process is root (and says so in one
/// line). Returns why there will be no counts when tracefs is missing for good.
#[cfg(target_os = "linux")]
pub(super) fn prepare(plan: &Plan) -> Option<String> {
    use crate::metrics::tracefs::{self, Tracefs, TRACEFS};
    if !plan.points.iter().any(|p| counts(&p.opts)) {
        return None;
    }
    match tracefs::ensure() {
        Tracefs::Present => None,
        Tracefs::Mounted => {
            crate::errln!("note: mounted tracefs at {TRACEFS} to count system calls");
            None
        }
        Tracefs::Missing(why) => Some(why),
    }
}

/// Off Linux nothing is counted, and the result file says why.
#[cfg(not(target_os = "linux"))]
pub(super) fn prepare(_: &Plan) -> Option<String> {
    None
}

#[cfg(target_os = "linux")]
pub(super) type SyscallSnapshot = crate::metrics::syscalls::SyscallCounts;
/// Off Linux there are no counts to hold.
#[cfg(not(target_os = "linux"))]
#[derive(Clone, Debug)]
pub(super) struct SyscallSnapshot;

#[cfg(target_os = "linux")]
pub(super) fn server_syscalls(server: &mut Server) -> Result<SyscallSnapshot, String> {
    server
        .syscalls()
        .unwrap_or_else(|| Err("the server was started without counters".into()))
}

/// Why there are no counts off Linux.
pub(super) const NO_PERF: &str =
    "system calls are counted with Linux perf tracepoints; this platform has none";

#[cfg(not(target_os = "linux"))]
pub(super) fn server_syscalls(_: &mut Server) -> Result<SyscallSnapshot, String> {
    Err(NO_PERF.into())
}

#[cfg(target_os = "linux")]
pub(super) fn window_of(start: &SyscallSnapshot, end: &SyscallSnapshot) -> SyscallSnapshot {
    end.since(start)
}

#[cfg(not(target_os = "linux"))]
pub(super) fn window_of(_: &SyscallSnapshot, _: &SyscallSnapshot) -> SyscallSnapshot {
    SyscallSnapshot
}

/// The counts between the window's two edges.
pub(super) fn syscall_window(
    snapshots: &[Result<SyscallSnapshot, String>],
) -> Result<SyscallSnapshot, String> {
    match snapshots {
        [Ok(start), Ok(end)] => Ok(window_of(start, end)),
        [Err(why), ..] | [_, Err(why)] => Err(why.clone()),
        _ => Err("the measured window did not complete, so there are no counts".into()),
    }
}

/// The `syscalls` figures of a run: the server's counts over the window, per request of the
/// counted pass.
#[cfg(target_os = "linux")]
pub(super) fn server_syscall_figures(
    window: &SyscallSnapshot,
    requests: u64,
    pass: &str,
) -> Option<SyscallFigures> {
    Some(SyscallFigures::new(
        window,
        requests,
        pass,
        syscalls::SERVER_METHOD,
    ))
}

#[cfg(not(target_os = "linux"))]
pub(super) fn server_syscall_figures(
    _: &SyscallSnapshot,
    _: u64,
    _: &str,
) -> Option<SyscallFigures> {
    None
}

/// The load generator's counts over the window, per request of the same pass.
pub(super) fn client_syscall_figures(
    window: &crate::metrics::syscalls::SyscallCounts,
    requests: u64,
    pass: &str,
) -> SyscallFigures {
    SyscallFigures::new(window, requests, pass, syscalls::CLIENT_METHOD)
}
