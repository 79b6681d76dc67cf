//! `proactor-uring`: an io_uring proactor, written the way io_uring's authors recommend
//! (liburing's examples and networking notes; monoio and glommio are built this way).
//!
//! `--threads` rings, one per thread, each thread pinned to one of the server's CPUs and
//! accepting on its own SO_REUSEPORT listener (or, with `--uring-listener shared`, all on one).
//! A thread never waits for readiness: it asks the kernel for whole operations and reaps their
//! completions, one `io_uring_enter` per loop iteration that both submits and waits:
//! - one multishot accept per ring, re-armed when a completion lacks `IORING_CQE_F_MORE`; the
//!   kernel puts each new connection straight into the ring's registered file table (a direct
//!   descriptor), so recv and send skip the process's file table;
//! - one multishot recv per connection into a provided buffer ring (buffers belong to no
//!   connection until data arrives); `-ENOBUFS` ends it, and it is re-armed once buffers are
//!   back;
//! - one send in flight per connection (two can reorder bytes); the echo is sent straight from
//!   the provided buffer, which goes back to the ring only when that send completed; bytes that
//!   arrive while a send is in flight are copied to the connection's backlog and their buffer
//!   given back at once, so one connection holds at most one ring buffer (plus those waiting
//!   for a zero-copy notification) and a client that never reads cannot starve the others;
//! - a backlog over [`OUT_HIGH_WATER`](super::parts::mio_loop::OUT_HIGH_WATER) cancels the
//!   connection's recv until the backlog drains: memory stays bounded;
//! - ring setup asks for `SINGLE_ISSUER | DEFER_TASKRUN` (completions run only when the thread
//!   enters the kernel to wait, never interrupting it), else `COOP_TASKRUN`, else nothing.
//!
//! Good at: many connections, few system calls per request (a submit-and-wait serves every
//! connection that completed). Bad at: a handful of connections (nothing to batch, and the
//! ring's bookkeeping is extra work), memory (a buffer ring per thread), portability (Linux 6.0+,
//! and refused by Docker's default seccomp profile and some distributions' sysctl).
//!
//! The files, bottom up: `options.rs` (the `--uring-*` options and the setup record, on every
//! platform), `op.rs` (what a submission's user_data names), `buf_ring.rs` (the provided
//! buffer ring), `conn.rs` (a connection's state), `recv_mode.rs` (the recv a ring arms:
//! capped multishot or single-shot), `setup.rs` (ring setup flags and sizes, and the startup
//! probe), `worker.rs` (the worker and its loop that submits, reaps and dispatches),
//! `accept.rs`, `recv.rs`, `send.rs` (one operation each, steps of the worker), `server.rs`
//! (the threads, started and stopped together).

pub mod options;

#[cfg(target_os = "linux")]
mod accept;
#[cfg(target_os = "linux")]
mod buf_ring;
#[cfg(target_os = "linux")]
mod conn;
#[cfg(target_os = "linux")]
mod op;
#[cfg(target_os = "linux")]
mod recv;
#[cfg(target_os = "linux")]
mod recv_mode;
#[cfg(target_os = "linux")]
mod send;
#[cfg(target_os = "linux")]
mod server;
#[cfg(target_os = "linux")]
mod setup;
#[cfg(target_os = "linux")]
mod worker;

use std::io;
use std::net::TcpListener;

use crate::models::contract::{Model, RunningServer, ServerConfig, Threads};

pub const MODEL: Model = Model {
    name: "proactor-uring",
    summary: "io_uring completions: multishot accept, multishot recv into a provided buffer ring",
    example: "monoio, glommio, tokio-uring, liburing's examples",
    threads: Threads::Count("rings (one per thread)"),
    reuse_port: true,
    uring_options: true,
    availability,
    start,
    ..Model::BASE
};

// The test hooks this model reads (crate::hooks says what each does).
#[cfg(target_os = "linux")]
use crate::hooks::{
    REFUSE_IO_URING as REFUSE_ENV, URING_RECV as RECV_ENV, URING_SETUP as SETUP_ENV,
};

#[cfg(target_os = "linux")]
fn availability() -> Result<(), String> {
    use std::sync::OnceLock;
    static PROBED: OnceLock<Result<(), String>> = OnceLock::new();
    PROBED.get_or_init(setup::probe).clone()
}

#[cfg(not(target_os = "linux"))]
fn availability() -> Result<(), String> {
    Err("io_uring is a Linux interface".into())
}

#[cfg(target_os = "linux")]
fn start(listener: TcpListener, config: &ServerConfig) -> io::Result<Box<dyn RunningServer>> {
    server::start(listener, config)
}

#[cfg(not(target_os = "linux"))]
fn start(_: TcpListener, _: &ServerConfig) -> io::Result<Box<dyn RunningServer>> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "io_uring is a Linux interface",
    ))
}
