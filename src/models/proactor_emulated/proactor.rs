//! A completion-style API (Boost.Asio's shape) emulated over a readiness poller (mio, epoll).
//!
//! The user starts an operation (`async_accept`, `async_read`, `async_write`) and hands over
//! its buffer and a completion handler; the proactor performs the `accept`/`read`/`write`
//! itself when epoll says the socket is ready, retries on EAGAIN, and calls the handler once
//! the operation is done, with the result and the buffer. The user never sees readiness.
//! This is what Asio's `epoll_reactor` does on Linux and what Python's asynchat did over
//! asyncore: the proactor's programming model, the reactor's system calls.
//!
//! Rules, as in Asio:
//! - a handler is never called from inside the call that starts the operation: completions
//!   are queued and run by the loop, so handlers can start new operations without recursion;
//! - `async_write` completes only when the whole buffer is written (`asio::async_write`);
//!   `async_read` completes with whatever one `read` returned (`async_read_some`), 0 at EOF;
//! - at most one read and one write in flight per connection;
//! - an operation is attempted at once when the socket is known to be ready (a write on a
//!   socket with room, a read after a full buffer), otherwise when its edge arrives: the
//!   speculative read Asio makes right after a reply was sent would return EAGAIN for every
//!   request, one wasted system call, so readiness is tracked per socket instead (the short-
//!   read rule of `parts/mio_loop.rs`).
//!
//! Handlers are boxed `FnOnce` closures, like Asio's type-erased handlers: the echo logic
//! then reads as continuation-passing code and its state travels by move from one handler to
//! the next. The price is one small allocation per operation.
//!
//! Timeouts: the user gives a connection a deadline ([`Proactor::expire_at`]) and moves it as
//! the connection makes progress. The loop reads the clock once per wake-up ([`Proactor::now`],
//! like nginx's cached time), its wait ends by the next sweep, and a sweep aborts the
//! operations of every connection past its deadline: they complete with `TimedOut`, and so
//! does any operation started on it afterwards, so the handler chain that owns the connection
//! closes it (Asio's deadline pattern, where the timer's handler closes the socket and the
//! pending operations complete with `operation_aborted`). Moving a deadline is a store, and
//! nothing is left behind when a connection closes.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::net::{TcpListener as MioListener, TcpStream};
use mio::{Events, Poll, Token, Waker};
use slab::Slab;

use crate::models::parts::idle::earliest;
use crate::models::parts::mio_loop::{accept_failed, listen_on, register_conn};

const LISTENER: Token = Token(usize::MAX - 1);
const WAKER: Token = Token(usize::MAX - 2);
const EVENTS: usize = 1024;
/// Completions run before the loop polls again, so that a connection whose reads keep
/// filling the buffer cannot starve the others' events.
const COMPLETIONS_PER_ROUND: usize = 1024;

/// A connection owned by a [`Proactor`]. Valid until [`Proactor::close`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ConnId(usize);

/// Completion handler of a read or write: the result and the operation's buffer, handed back.
type IoHandler = Box<dyn FnOnce(&mut Proactor, io::Result<usize>, Vec<u8>)>;
/// Completion handler of an accept: the new connection.
type AcceptHandler = Box<dyn FnOnce(&mut Proactor, ConnId)>;

enum Completion {
    Io {
        handler: IoHandler,
        result: io::Result<usize>,
        buf: Vec<u8>,
    },
    Accept {
        handler: AcceptHandler,
        conn: ConnId,
    },
}

struct ReadOp {
    buf: Vec<u8>,
    handler: IoHandler,
}

struct WriteOp {
    buf: Vec<u8>,
    written: usize,
    handler: IoHandler,
}

struct Socket {
    stream: TcpStream,
    /// A readable edge was seen and the receive queue has not been found empty since.
    readable: bool,
    /// The send buffer has not been found full since the last writable edge.
    writable: bool,
    /// The peer's FIN (or an error) was reported: a short read no longer means drained.
    peer_closed: bool,
    read: Option<ReadOp>,
    write: Option<WriteOp>,
    /// Past this, its operations are aborted ([`Proactor::expire_at`]).
    deadline: Option<Instant>,
    /// Aborted: every operation on it fails with `TimedOut` until it is closed.
    aborted: bool,
}

struct Acceptor {
    listener: MioListener,
    /// The backlog has not been found empty since the last edge.
    ready: bool,
    pending: Option<AcceptHandler>,
    /// Set when accept failed for lack of resources: the edge is spent, so retry on a timer.
    retry_at: Option<Instant>,
}

/// One event-loop thread's proactor.
pub(crate) struct Proactor {
    poll: Poll,
    acceptor: Option<Acceptor>,
    sockets: Slab<Socket>,
    completions: VecDeque<Completion>,
    shared: Arc<Shared>,
    /// The clock, read once per wake-up.
    now: Instant,
    /// How often deadlines are checked, and when next (`None`: no deadlines are used).
    sweep: Option<(Duration, Instant)>,
}

/// What a loop shares with the thread that stops it.
struct Shared {
    waker: Waker,
    stop: AtomicBool,
    /// Connections accepted so far.
    connections: AtomicU64,
}

/// A running proactor thread.
pub(crate) struct Handle {
    shared: Arc<Shared>,
    thread: JoinHandle<io::Result<()>>,
}

impl Handle {
    /// Starts a thread named `name` with its own proactor accepting on `listener`: `main`
    /// starts the first operations, then the thread runs completions until stopped. With a
    /// `sweep` interval, connection deadlines are checked that often.
    pub(crate) fn spawn(
        name: String,
        listener: TcpListener,
        sweep: Option<Duration>,
        main: impl FnOnce(&mut Proactor) + Send + 'static,
    ) -> io::Result<Handle> {
        let poll = Poll::new()?;
        let listener = listen_on(&poll, listener, LISTENER)?;
        let shared = Arc::new(Shared {
            waker: Waker::new(poll.registry(), WAKER)?,
            stop: AtomicBool::new(false),
            connections: AtomicU64::new(0),
        });
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new().name(name).spawn(move || {
                // Built here: handlers are not `Send`, they never leave this thread.
                let mut proactor = Proactor {
                    poll,
                    acceptor: Some(Acceptor {
                        listener,
                        ready: true,
                        pending: None,
                        retry_at: None,
                    }),
                    sockets: Slab::new(),
                    completions: VecDeque::new(),
                    shared,
                    now: Instant::now(),
                    sweep: sweep.map(|every| (every, Instant::now() + every)),
                };
                main(&mut proactor);
                // Returning drops the proactor: every socket, the listener and every pending
                // handler (with the state it owns) go with it.
                proactor.run()
            })?
        };
        Ok(Handle { shared, thread })
    }

    pub(crate) fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::Relaxed)
    }

    fn signal_stop(&self) -> io::Result<()> {
        self.shared.stop.store(true, Ordering::Release);
        self.shared.waker.wake()
    }

    /// Stops several loops: all are signalled first, then joined.
    pub(crate) fn stop_all(handles: Vec<Handle>) -> io::Result<()> {
        crate::models::parts::stop_all(handles, Handle::signal_stop, |h| {
            h.thread
                .join()
                .map_err(|_| io::Error::other("a proactor thread panicked"))
                .and_then(|r| r)
        })
    }
}

impl Proactor {
    /// Accepts the next connection (TCP_NODELAY, registered with this proactor) and calls
    /// `handler` with it. Accept errors are not reported: one connection's (ECONNABORTED) is
    /// skipped, a shortage of descriptors or memory is retried every 10 ms, because a
    /// listener here must never stop accepting.
    pub(crate) fn async_accept(&mut self, handler: impl FnOnce(&mut Proactor, ConnId) + 'static) {
        let Some(acceptor) = &mut self.acceptor else {
            return;
        };
        debug_assert!(acceptor.pending.is_none(), "one accept in flight at a time");
        acceptor.pending = Some(Box::new(handler));
        self.perform_accept();
    }

    /// Reads once into `buf` (its whole length) and calls `handler` with the byte count (0 at
    /// EOF) or the error, and the buffer.
    pub(crate) fn async_read(
        &mut self,
        conn: ConnId,
        buf: Vec<u8>,
        handler: impl FnOnce(&mut Proactor, io::Result<usize>, Vec<u8>) + 'static,
    ) {
        let handler: IoHandler = Box::new(handler);
        let Some(socket) = self.sockets.get_mut(conn.0) else {
            return self.complete(handler, Err(io::ErrorKind::NotConnected.into()), buf);
        };
        if socket.aborted {
            return self.complete(handler, Err(timed_out()), buf);
        }
        if socket.read.is_some() {
            return self.complete(handler, Err(io::Error::other("a read is in flight")), buf);
        }
        socket.read = Some(ReadOp { buf, handler });
        self.perform_read(conn.0);
    }

    /// Writes all of `buf` and then calls `handler` with its length (or the error), and the
    /// buffer.
    pub(crate) fn async_write(
        &mut self,
        conn: ConnId,
        buf: Vec<u8>,
        handler: impl FnOnce(&mut Proactor, io::Result<usize>, Vec<u8>) + 'static,
    ) {
        let handler: IoHandler = Box::new(handler);
        let Some(socket) = self.sockets.get_mut(conn.0) else {
            return self.complete(handler, Err(io::ErrorKind::NotConnected.into()), buf);
        };
        if socket.aborted {
            return self.complete(handler, Err(timed_out()), buf);
        }
        if socket.write.is_some() {
            return self.complete(handler, Err(io::Error::other("a write is in flight")), buf);
        }
        socket.write = Some(WriteOp {
            buf,
            written: 0,
            handler,
        });
        self.perform_write(conn.0);
    }

    /// The time of the loop's last wake-up: what deadlines are reckoned from.
    pub(crate) fn now(&self) -> Instant {
        self.now
    }

    /// Aborts the connection's operations if it is still open at `at` (checked every sweep
    /// interval, so up to one interval later); replaces any earlier deadline.
    pub(crate) fn expire_at(&mut self, conn: ConnId, at: Instant) {
        if let Some(socket) = self.sockets.get_mut(conn.0) {
            socket.deadline = Some(at);
        }
    }

    /// Completes the connection's pending operations with `TimedOut`, and any it starts from
    /// now on; its owner then closes it.
    fn abort(&mut self, key: usize) {
        let Some(socket) = self.sockets.get_mut(key) else {
            return;
        };
        socket.aborted = true;
        let (read, write) = (socket.read.take(), socket.write.take());
        if let Some(ReadOp { buf, handler }) = read {
            self.complete(handler, Err(timed_out()), buf);
        }
        if let Some(WriteOp { buf, handler, .. }) = write {
            self.complete(handler, Err(timed_out()), buf);
        }
    }

    /// Aborts every connection past its deadline, when a sweep is due.
    fn sweep_deadlines(&mut self) {
        let now = self.now;
        match &mut self.sweep {
            Some((every, next)) if now >= *next => *next = now + *every,
            _ => return,
        }
        let expired: Vec<usize> = self
            .sockets
            .iter()
            .filter(|(_, s)| !s.aborted && s.deadline.is_some_and(|at| at <= now))
            .map(|(key, _)| key)
            .collect();
        for key in expired {
            self.abort(key);
        }
    }

    /// Closes the connection; the handlers of its pending operations are dropped uncalled.
    pub(crate) fn close(&mut self, conn: ConnId) {
        if let Some(mut socket) = self.sockets.try_remove(conn.0) {
            let _ = self.poll.registry().deregister(&mut socket.stream);
        }
    }

    fn complete(&mut self, handler: IoHandler, result: io::Result<usize>, buf: Vec<u8>) {
        self.completions.push_back(Completion::Io {
            handler,
            result,
            buf,
        });
    }

    /// Runs queued completions, then waits for readiness and performs the operations it
    /// allows; returns when stopped.
    fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(EVENTS);
        loop {
            for _ in 0..COMPLETIONS_PER_ROUND {
                match self.completions.pop_front() {
                    Some(Completion::Io {
                        handler,
                        result,
                        buf,
                    }) => handler(&mut self, result, buf),
                    Some(Completion::Accept { handler, conn }) => handler(&mut self, conn),
                    None => break,
                }
            }
            let retry_at = self.acceptor.as_ref().and_then(|a| a.retry_at);
            let timeout = if self.completions.is_empty() {
                earliest(retry_at, self.sweep.map(|(_, next)| next))
                    .map(|at| at.saturating_duration_since(self.now))
            } else {
                Some(Duration::ZERO)
            };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            self.now = Instant::now();
            if retry_at.is_some_and(|at| self.now >= at) {
                self.perform_accept();
            }
            for event in events.iter() {
                match event.token() {
                    WAKER => {
                        if self.shared.stop.load(Ordering::Acquire) {
                            return Ok(());
                        }
                    }
                    LISTENER => {
                        if let Some(a) = &mut self.acceptor {
                            a.ready = true;
                        }
                        self.perform_accept();
                    }
                    Token(key) => {
                        let Some(socket) = self.sockets.get_mut(key) else {
                            continue;
                        };
                        // Sticky: a FIN seen once must not be forgotten.
                        socket.peer_closed |= event.is_read_closed() || event.is_error();
                        socket.readable |= event.is_readable() || socket.peer_closed;
                        socket.writable |=
                            event.is_writable() || event.is_write_closed() || event.is_error();
                        self.perform_write(key);
                        self.perform_read(key);
                    }
                }
            }
            self.sweep_deadlines();
        }
    }

    /// Accepts one connection for the pending accept, if the backlog may hold one.
    fn perform_accept(&mut self) {
        let retrying = match &mut self.acceptor {
            Some(a) if a.pending.is_some() && a.ready => a.retry_at.take().is_some(),
            _ => return,
        };
        loop {
            let Some(a) = &mut self.acceptor else {
                return;
            };
            let stream = match a.listener.accept() {
                Ok((stream, _)) => stream,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    a.ready = false;
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    if let Some(at) = accept_failed(&e, retrying) {
                        a.retry_at = Some(at);
                        return;
                    }
                    continue;
                }
            };
            let Some(conn) = self.adopt(stream) else {
                continue;
            };
            let Some(handler) = self.acceptor.as_mut().and_then(|a| a.pending.take()) else {
                return;
            };
            self.shared.connections.fetch_add(1, Ordering::Relaxed);
            self.completions
                .push_back(Completion::Accept { handler, conn });
            return;
        }
    }

    /// Registers an accepted connection, edge-triggered for reads and writes, once.
    fn adopt(&mut self, mut stream: TcpStream) -> Option<ConnId> {
        let entry = self.sockets.vacant_entry();
        let key = entry.key();
        if !register_conn(&self.poll, &mut stream, key) {
            return None;
        }
        entry.insert(Socket {
            stream,
            // Data that arrived before registration raises an edge at once.
            readable: false,
            writable: true,
            peer_closed: false,
            read: None,
            write: None,
            deadline: None,
            aborted: false,
        });
        Some(ConnId(key))
    }

    /// Performs the pending read if the socket may have data; queues its completion.
    fn perform_read(&mut self, key: usize) {
        let Some(socket) = self.sockets.get_mut(key) else {
            return;
        };
        if !socket.readable {
            return;
        }
        let Some(op) = &mut socket.read else {
            return;
        };
        let result = loop {
            match socket.stream.read(&mut op.buf) {
                Ok(n) => {
                    // Shorter than the buffer: the queue is empty, new data raises a new edge
                    // (unless the FIN's edge has fired already: then read on to EOF).
                    if crate::sys::SHORT_READ_DRAINS && n < op.buf.len() && !socket.peer_closed {
                        socket.readable = false;
                    }
                    break Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    socket.readable = false;
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        let Some(ReadOp { buf, handler }) = socket.read.take() else {
            return;
        };
        self.complete(handler, result, buf);
    }

    /// Writes as much of the pending write as the socket takes; queues its completion once
    /// every byte is written or on an error.
    fn perform_write(&mut self, key: usize) {
        let Some(socket) = self.sockets.get_mut(key) else {
            return;
        };
        if !socket.writable {
            return;
        }
        let Some(op) = &mut socket.write else {
            return;
        };
        let result = loop {
            if op.written == op.buf.len() {
                break Ok(op.written);
            }
            match socket.stream.write(&op.buf[op.written..]) {
                Ok(0) => break Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => op.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    socket.writable = false;
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        let Some(WriteOp { buf, handler, .. }) = socket.write.take() else {
            return;
        };
        self.complete(handler, result, buf);
    }
}

/// What an aborted operation completes with.
fn timed_out() -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        "the connection passed its deadline",
    )
}
