//! `reactor`: one thread, non-blocking sockets, one readiness poller (epoll through mio).
//!
//! Redis's shape: a single thread waits for readiness, reads what is ready, runs the handler,
//! and writes the reply straight away; only a reply the socket could not take at once waits for
//! a writable event. Every handler runs on this one thread, so a slow handler delays every
//! connection: the seeds' central warning about reactors.
//!
//! Edge-triggered registration (mio's only mode): a connection is registered once, for reads and
//! writes, and never re-armed. A read shorter than the buffer means the socket's receive queue is
//! empty, and new data will raise a new edge, so the loop stops there instead of paying one more
//! `read` for `EAGAIN` per request (unless the peer also closed: that edge has already fired).

use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::net::{TcpListener as MioListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;

use super::{always_available, Model, RunningServer, ServerConfig, Threads};
use crate::protocol::{Flow, Protocol, Session};

pub const MODEL: Model = Model {
    name: "reactor",
    summary: "one thread, non-blocking sockets, one readiness poller (epoll)",
    example: "Redis (single reactor, single thread)",
    threads: Threads::One,
    availability: always_available,
    start,
};

const LISTENER: Token = Token(usize::MAX - 1);
const WAKER: Token = Token(usize::MAX - 2);
/// The one read buffer every connection shares (Redis reads 16 KiB, Netty adapts up to 64 KiB).
const SCRATCH: usize = 64 * 1024;
/// A reply backlog above this stops reading from that connection until it drains, so a client
/// that sends without reading cannot grow the server's memory without bound.
const OUT_HIGH_WATER: usize = 4 * 1024 * 1024;
const EVENTS: usize = 1024;
/// Pause before retrying an accept that failed for lack of descriptors or memory.
const ACCEPT_RETRY: Duration = Duration::from_millis(10);

struct Reactor {
    waker: Arc<Waker>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: JoinHandle<io::Result<()>>,
}

struct Conn {
    stream: TcpStream,
    session: Session,
    /// Reply bytes not yet written, from `written` on.
    out: Vec<u8>,
    written: usize,
    /// Reading stopped because `out` passed the high-water mark.
    read_paused: bool,
    /// The peer's FIN (or an error) was reported: read on to EOF, never stop at a short read.
    peer_closed: bool,
    /// EOF was read or the protocol asked to close: no more reads, close once `out` is written.
    closing: bool,
}

fn start(listener: TcpListener, config: &ServerConfig) -> io::Result<Box<dyn RunningServer>> {
    listener.set_nonblocking(true)?;
    let mut listener = MioListener::from_std(listener);
    let poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let protocol = config.protocol.clone();
    let thread = {
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("reactor".into())
            .spawn(move || event_loop(poll, listener, &protocol, &stop))?
    };
    Ok(Box::new(Reactor {
        waker,
        stop,
        thread,
    }))
}

impl RunningServer for Reactor {
    fn stop(self: Box<Self>) -> io::Result<()> {
        self.stop.store(true, std::sync::atomic::Ordering::Release);
        self.waker.wake()?;
        self.thread
            .join()
            .map_err(|_| io::Error::other("the reactor thread panicked"))?
    }
}

fn event_loop(
    mut poll: Poll,
    listener: MioListener,
    protocol: &Protocol,
    stop: &std::sync::atomic::AtomicBool,
) -> io::Result<()> {
    let mut events = Events::with_capacity(EVENTS);
    let mut conns: Slab<Conn> = Slab::new();
    let mut scratch = vec![0u8; SCRATCH];
    // Set when accept failed for lack of descriptors or memory: the listener's edge is spent,
    // so the loop wakes up on its own to retry instead of waiting for a new connection.
    let mut accept_retry: Option<Instant> = None;
    loop {
        let timeout = accept_retry.map(|at| at.saturating_duration_since(Instant::now()));
        if let Err(e) = poll.poll(&mut events, timeout) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if accept_retry.is_some_and(|at| Instant::now() >= at) {
            accept_retry = accept_all(&poll, &listener, &mut conns, protocol, true);
        }
        for event in events.iter() {
            match event.token() {
                WAKER => {
                    if stop.load(std::sync::atomic::Ordering::Acquire) {
                        return Ok(());
                    }
                }
                LISTENER => {
                    let retrying = accept_retry.is_some();
                    accept_retry = accept_all(&poll, &listener, &mut conns, protocol, retrying);
                }
                Token(key) => {
                    let Some(conn) = conns.get_mut(key) else {
                        continue;
                    };
                    if !conn.on_event(event, &mut scratch) {
                        let mut conn = conns.remove(key);
                        let _ = poll.registry().deregister(&mut conn.stream);
                    }
                }
            }
        }
    }
}

/// Accepts every pending connection. Returns when to try again if accept failed for lack of
/// resources (EMFILE, ENFILE, ENOBUFS, ENOMEM).
fn accept_all(
    poll: &Poll,
    listener: &MioListener,
    conns: &mut Slab<Conn>,
    protocol: &Protocol,
    retrying: bool,
) -> Option<Instant> {
    loop {
        match listener.accept() {
            Ok((mut stream, _)) => {
                if stream.set_nodelay(true).is_err() {
                    continue;
                }
                let entry = conns.vacant_entry();
                let token = Token(entry.key());
                if poll
                    .registry()
                    .register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
                    .is_ok()
                {
                    entry.insert(Conn {
                        stream,
                        session: protocol.session(),
                        out: Vec::new(),
                        written: 0,
                        read_paused: false,
                        peer_closed: false,
                        closing: false,
                    });
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                let starved = matches!(
                    e.raw_os_error(),
                    Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
                );
                // Other errors (ECONNABORTED...) concern one connection: go on with the rest.
                if starved {
                    // Reported once per shortage, not on every retry.
                    if !retrying {
                        eprintln!("accept failed, retrying every 10 ms: {e}");
                    }
                    return Some(Instant::now() + ACCEPT_RETRY);
                }
                eprintln!("accept failed: {e}");
            }
        }
    }
}

impl Conn {
    /// Handles one readiness event; `false` when the connection is finished.
    fn on_event(&mut self, event: &mio::event::Event, scratch: &mut [u8]) -> bool {
        if event.is_writable() && self.pending() > 0 && !self.flush() {
            return false;
        }
        // Sticky: a FIN seen once must not be forgotten while reading is paused.
        self.peer_closed |= event.is_read_closed() || event.is_error();
        let readable = event.is_readable() || self.peer_closed;
        if !self.closing && (readable || (self.read_paused && self.pending() == 0)) {
            self.read_paused = false;
            if !self.read_all(scratch) {
                return false;
            }
        }
        // A closing connection stays until its last reply bytes are written.
        !(self.closing && self.pending() == 0)
    }

    fn pending(&self) -> usize {
        self.out.len() - self.written
    }

    /// Reads, handles and replies until the socket is drained, the backlog is too long, or the
    /// connection is closing; `false` on an error that ends the connection at once.
    fn read_all(&mut self, scratch: &mut [u8]) -> bool {
        loop {
            let n = match self.stream.read(scratch) {
                Ok(0) => {
                    self.closing = true;
                    return true;
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return false,
            };
            let flow = self.session.on_data(&scratch[..n], &mut self.out);
            if !self.flush() {
                return false;
            }
            if flow == Flow::Close {
                self.closing = true;
                return true;
            }
            if self.pending() > OUT_HIGH_WATER {
                self.read_paused = true;
                return true;
            }
            if n < scratch.len() && !self.peer_closed {
                return true;
            }
        }
    }

    /// Writes as much of the backlog as the socket takes; `false` on a write error.
    fn flush(&mut self) -> bool {
        while self.pending() > 0 {
            match self.stream.write(&self.out[self.written..]) {
                Ok(0) => return false,
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        self.out.clear();
        self.written = 0;
        true
    }
}
