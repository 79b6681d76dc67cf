//! `proactor-emulated`: completion handlers (start an operation, get called when it is done)
//! emulated over epoll, like Boost.Asio on Linux and Python's asynchat.
//!
//! The completion API is in `proactor_emulated/proactor.rs`; this file is the echo server
//! written only against it, as an Asio echo server is: accept, then per connection read,
//! handle, write the whole reply, read again. One operation in flight per connection; the
//! read buffer and the reply buffer travel through the operations and come back in their
//! completions, so each connection keeps reusing its own two buffers.
//!
//! Idle connections (`--idle-timeout`): each connection's deadline in the proactor is moved to
//! a timeout past the loop's clock whenever a request completes, and the proactor aborts the
//! operations of a connection past it, which then closes like any connection whose read failed.
//!
//! `--threads` event-loop threads, each with its own proactor and its own SO_REUSEPORT
//! listener (as `reuseport`), so that `proactor-emulated` with N threads differs from
//! `reuseport` with N reactors only by the completion layer.

mod proactor;

use std::io;
use std::net::TcpListener;
use std::rc::Rc;
use std::time::Duration;

use self::proactor::{ConnId, Handle, Proactor};
use super::parts::idle::sweep_interval;
use super::parts::listener::reuse_port_available;
use super::parts::listener::reuseport_group;
use crate::models::contract::{Model, RunningServer, ServerConfig, Threads};
use crate::protocol::{Flow, Protocol, Session};

pub const MODEL: Model = Model {
    name: "proactor-emulated",
    summary: "completion handlers (start an operation, get called when done) emulated over epoll",
    example: "Boost.Asio on Linux, Python asynchat",
    threads: Threads::Count("event-loop threads"),
    reuse_port: true,
    availability: reuse_port_available,
    start,
    ..Model::BASE
};

/// Each connection's read buffer, committed for its whole life as a proactor requires
/// (Asio's echo example reads 1 KiB; the blocking models and `tokio` read 16 KiB).
const READ_BUF: usize = 16 * 1024;

struct ProactorServer(Vec<Handle>);

fn start(listener: TcpListener, config: &ServerConfig) -> io::Result<Box<dyn RunningServer>> {
    let listeners = reuseport_group(listener, config.threads)?;
    let mut handles = Vec::with_capacity(listeners.len());
    let idle_timeout = config.idle_timeout();
    for (i, l) in listeners.into_iter().enumerate() {
        let protocol = config.protocol.clone();
        let main = move |p: &mut Proactor| {
            accept_next(
                p,
                Rc::new(Setup {
                    protocol,
                    idle_timeout,
                }),
            )
        };
        let sweep = idle_timeout.map(sweep_interval);
        match Handle::spawn(format!("proactor-{i}"), l, sweep, main) {
            Ok(h) => handles.push(h),
            Err(e) => {
                let _ = Handle::stop_all(handles);
                return Err(e);
            }
        }
    }
    Ok(Box::new(ProactorServer(handles)))
}

impl RunningServer for ProactorServer {
    fn stop(self: Box<Self>) -> io::Result<()> {
        Handle::stop_all(self.0)
    }

    fn connections_per_loop(&self) -> Option<Vec<u64>> {
        Some(self.0.iter().map(Handle::connections).collect())
    }
}

/// What every connection of a loop is served with.
struct Setup {
    protocol: Protocol,
    idle_timeout: Option<Duration>,
}

/// One connection's state; owned by whichever handler runs next.
struct Echo {
    conn: ConnId,
    session: Session,
    /// The reply buffer, here between writes.
    out: Vec<u8>,
    idle_timeout: Option<Duration>,
    /// The session's request count when the deadline was last moved.
    seen: u64,
}

/// Accepts a connection, starts its first read, and accepts the next.
fn accept_next(p: &mut Proactor, setup: Rc<Setup>) {
    p.async_accept(move |p, conn| {
        let echo = Echo {
            conn,
            session: setup.protocol.session(),
            out: Vec::new(),
            idle_timeout: setup.idle_timeout,
            seen: 0,
        };
        if let Some(timeout) = echo.idle_timeout {
            p.expire_at(conn, p.now() + timeout);
        }
        read_next(p, echo, vec![0; READ_BUF]);
        accept_next(p, setup);
    });
}

fn read_next(p: &mut Proactor, echo: Echo, buf: Vec<u8>) {
    let conn = echo.conn;
    p.async_read(conn, buf, move |p, result, buf| {
        on_read(p, echo, result, buf)
    });
}

/// A read completed: handle the bytes and write the whole reply, or close at EOF or error.
fn on_read(p: &mut Proactor, mut echo: Echo, result: io::Result<usize>, buf: Vec<u8>) {
    let n = match result {
        Ok(0) | Err(_) => return p.close(echo.conn),
        Ok(n) => n,
    };
    let mut out = std::mem::take(&mut echo.out);
    out.clear();
    let flow = echo.session.on_data(&buf[..n], &mut out);
    send(p, echo, buf, out, flow);
}

/// Writes the replies `out` of one session call (moving the idle deadline if requests
/// completed), then goes on with [`next`].
fn send(p: &mut Proactor, mut echo: Echo, buf: Vec<u8>, out: Vec<u8>, flow: Flow) {
    if let Some(timeout) = echo.idle_timeout {
        let completed = echo.session.completed();
        if completed != echo.seen {
            echo.seen = completed;
            p.expire_at(echo.conn, p.now() + timeout);
        }
    }
    if out.is_empty() {
        echo.out = out;
        return match flow {
            Flow::Continue => next(p, echo, buf),
            Flow::Close => p.close(echo.conn),
        };
    }
    let conn = echo.conn;
    p.async_write(conn, out, move |p, result, out| {
        on_written(p, echo, buf, flow, result, out)
    });
}

/// The whole reply was written: go on with the same buffers.
fn on_written(
    p: &mut Proactor,
    mut echo: Echo,
    buf: Vec<u8>,
    flow: Flow,
    result: io::Result<usize>,
    out: Vec<u8>,
) {
    echo.out = out;
    match (result, flow) {
        (Ok(_), Flow::Continue) => next(p, echo, buf),
        _ => p.close(echo.conn),
    }
}

/// Reads the next request, unless the session still holds requests it has not answered (a
/// read whose answers were more than a batch): those are answered and written first.
fn next(p: &mut Proactor, mut echo: Echo, buf: Vec<u8>) {
    if !echo.session.unanswered() {
        return read_next(p, echo, buf);
    }
    let mut out = std::mem::take(&mut echo.out);
    out.clear();
    let flow = echo.session.on_data(&[], &mut out);
    send(p, echo, buf, out, flow);
}
