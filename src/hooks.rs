//! Every `IOMODELS_*` environment variable, on one page. All but [`HOLD_EXEC`] and [`HOLD_EXEC_COMMAND`] are test hooks:
//! they make `bench` act as a machine that refuses something, or a process that fails, would,
//! so that the tests can check what it then says and does on machines where nothing fails.
//! Unset, none changes anything; none is meant for users.
//!
//! Not read at run time, so not here: `IOMODELS_GIT_COMMIT` and `IOMODELS_RUSTC` (set by
//! build.rs for the result file's `tool`), and `IOMODELS_SKIP_WINDOWS` (read by
//! scripts/test.sh).

/// A process that fails on purpose, by value:
/// - [`FAULT_EXIT_BEFORE_READY`]: `bench serve` fails before its ready line (read once, at
///   start), for the harness's handling of a server that never comes up;
/// - [`FAULT_CLIENT_PROCESS_EXIT`]: the second client process of a split load generator exits
///   (code 3) one second into the measured window, for the parent's handling of a client
///   process that dies.
pub const FAULT: &str = "IOMODELS_FAULT";
/// [`FAULT`]'s value for `bench serve`.
pub const FAULT_EXIT_BEFORE_READY: &str = "exit-before-ready";
/// [`FAULT`]'s value for the client processes.
pub const FAULT_CLIENT_PROCESS_EXIT: &str = "client-process-exit";

/// Set (to anything): system-call counting is unavailable, as if the kernel refused the perf
/// counters.
pub const REFUSE_PERF: &str = "IOMODELS_REFUSE_PERF";

/// `missing`: tracefs looks unmounted and the mount impossible; `mountable`: it looks unmounted
/// and the mount is a no-op that succeeds (counting then reads the real tracefs, where there is
/// one).
pub const TRACEFS: &str = "IOMODELS_TRACEFS";

/// Set (to anything): `proactor-uring` acts as if the kernel refused io_uring.
pub const REFUSE_IO_URING: &str = "IOMODELS_REFUSE_IO_URING";

/// `coop` or `none`: `proactor-uring`'s ring setup starts its fallback further down, as on a
/// kernel that refuses `DEFER_TASKRUN` (`coop`) or both it and `COOP_TASKRUN` (`none`).
pub const URING_SETUP: &str = "IOMODELS_URING_SETUP";

/// `single`: `proactor-uring`'s rings arm single-shot recvs, as on a kernel without the
/// multishot recv cap (Linux before 6.17).
pub const URING_RECV: &str = "IOMODELS_URING_RECV";

/// Not a test hook: how `bench run` starts a server held. A `bench` started with it set waits
/// for one byte on its stdin, then execs itself again without it; the harness opens the
/// system-call counters on the held process in between, so that they count from the server's
/// first instruction.
pub const HOLD_EXEC: &str = "IOMODELS_HOLD_EXEC";

/// Not a test hook: with [`HOLD_EXEC`], what the held `bench` execs once released: set, its
/// arguments are a program and its arguments (an outside server, `bench run --server`) instead
/// of `bench`'s own.
pub const HOLD_EXEC_COMMAND: &str = "IOMODELS_HOLD_EXEC_COMMAND";

/// Whether [`FAULT`] asks for `which`.
pub fn fault(which: &str) -> bool {
    std::env::var(FAULT).as_deref() == Ok(which)
}
