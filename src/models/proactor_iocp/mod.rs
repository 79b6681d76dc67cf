//! `proactor-iocp`: Windows I/O completion ports, the reference proactor, written the way IIS,
//! Boost.Asio on Windows and the Windows SDK's IOCP samples are:
//! - one completion port; the listener and every connection are associated with it;
//! - several `AcceptEx` kept pending on the listener (`ACCEPTS` in `accept.rs`), each with its
//!   own socket created beforehand (`WSASocketW` with `WSA_FLAG_OVERLAPPED`), so a burst of
//!   connects is taken without a round trip per connection; a completed accept gets
//!   `SO_UPDATE_ACCEPT_CONTEXT` (so the socket behaves as an accepted one) and `TCP_NODELAY`,
//!   and the slot is re-armed with a fresh socket;
//! - per connection one overlapped `WSARecv` into the connection's own buffer and at most one
//!   overlapped `WSASend` in flight (two could reorder bytes); replies made while a send is in
//!   flight wait in a backlog; a partial send is resubmitted from where it stopped; a backlog
//!   over [`OUT_HIGH_WATER`](super::parts::mio_loop::OUT_HIGH_WATER) stops the receives until it
//!   drains, so a client that never reads cannot make the server buffer without limit;
//! - `--threads` threads wait in `GetQueuedCompletionStatusEx`, taking up to 64 completions
//!   per call; any thread may complete any connection's operation, so each connection's state
//!   sits behind its own lock (held only to run the handler and post the next operation);
//! - errors come from the completion itself (its NTSTATUS; `WSAGetOverlappedResult` for the
//!   Winsock code), never from a separate readiness check;
//! - idle connections (`--idle-timeout`): the threads wait on the port no longer than the
//!   sweep interval, and the one that finds a sweep due closes (`closesocket`) every
//!   connection whose request count has not moved for the timeout; its pending operations
//!   then complete as aborted, like a reset connection's;
//! - stop: every socket is closed (which completes its pending operations as aborted), the
//!   threads drain those completions, then one stop packet per thread is posted and every
//!   thread joined. Operations the system still holds after a grace period keep their memory
//!   (leaked), never freed under the kernel.
//!
//! Good at: a few threads serve any number of connections, and the port wakes only as many
//! threads as it has CPUs for (its concurrency value), so a blocked handler lets another thread
//! run. Bad at: memory (a receive buffer committed per connection while its `WSARecv` waits;
//! IIS and libuv post zero-byte reads to avoid that at large scale), and portability (Windows
//! only).
//!
//! The files, bottom up: `op.rs` (the objects whose `OVERLAPPED` is handed to the system, and
//! the connection they point back to), `shared.rs` (what every thread of the port shares, and
//! the completion keys), `accept.rs` (the `AcceptEx` slots), `conn.rs` (a connection's receive
//! and send and their completions), `port.rs` (the port, its threads, the dispatch of
//! completions, the idle sweep, the stop).

#[cfg(windows)]
mod accept;
#[cfg(windows)]
mod conn;
#[cfg(windows)]
mod op;
#[cfg(windows)]
mod port;
#[cfg(windows)]
mod shared;

use std::io;
use std::net::TcpListener;

use crate::models::contract::{Model, RunningServer, ServerConfig, Threads};

pub const MODEL: Model = Model {
    name: "proactor-iocp",
    summary: "Windows I/O completion ports: AcceptEx, overlapped WSARecv/WSASend, \
              GetQueuedCompletionStatusEx",
    example: "IIS, Boost.Asio on Windows",
    threads: Threads::Count("threads waiting on the port"),
    availability,
    start,
    ..Model::BASE
};

/// Why the model cannot run on this platform.
#[cfg(not(windows))]
const WINDOWS_ONLY: &str =
    "Windows only: I/O completion ports are a Windows interface (build and run bench on \
     Windows; see the README)";

#[cfg(windows)]
fn availability() -> Result<(), String> {
    Ok(())
}

#[cfg(not(windows))]
fn availability() -> Result<(), String> {
    Err(WINDOWS_ONLY.into())
}

#[cfg(windows)]
fn start(listener: TcpListener, config: &ServerConfig) -> io::Result<Box<dyn RunningServer>> {
    port::start(listener, config)
}

#[cfg(not(windows))]
fn start(_: TcpListener, _: &ServerConfig) -> io::Result<Box<dyn RunningServer>> {
    Err(io::Error::new(io::ErrorKind::Unsupported, WINDOWS_ONLY))
}
