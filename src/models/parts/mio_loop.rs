//! One reactor thread: a mio poller (epoll, edge-triggered) and the connections it owns.
//!
//! Shared by the models that differ only in how connections reach a reactor: `reactor` (one
//! loop accepting on the listener), `reuseport` (one loop per SO_REUSEPORT listener), and
//! `multi-reactor` (a main loop accepts and hands each connection to a sub-reactor's inbox).
//!
//! Redis's shape: the thread waits for readiness, reads what is ready, runs the handler, and
//! writes the reply straight away; only a reply the socket could not take at once waits for a
//! writable event. Edge-triggered registration: a connection is registered once, for reads and
//! writes, and never re-armed. A read shorter than the buffer means the socket's receive queue
//! is empty, and new data will raise a new edge, so the loop stops there instead of paying one
//! more `read` for `EAGAIN` per request (unless the peer also closed: that edge has already
//! fired).
//!
//! Idle connections (`--idle-timeout`) are found the way Redis's `clientsCron` finds them: the
//! poller's wait ends by the next sweep, and a sweep closes every connection whose session's
//! request count has not moved for the timeout. The clock is read once per wake-up; nothing is
//! done per request.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream as StdStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::net::{TcpListener as MioListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;

use super::backlog::Backlog;
use super::idle::{earliest, sweep_due, Idle, Sweep};
use crate::protocol::{Flow, Protocol, Session};

const LISTENER: Token = Token(usize::MAX - 1);
const WAKER: Token = Token(usize::MAX - 2);
/// The one read buffer every connection of a loop shares (Redis reads 16 KiB, Netty adapts up
/// to 64 KiB).
pub(crate) const SCRATCH: usize = 64 * 1024;
/// A reply backlog above this stops reading from that connection until it drains, so a client
/// that sends without reading holds at most this, one read's replies (at most
/// [`REPLY_BATCH`](crate::protocol::REPLY_BATCH) of them) and its session's held requests:
/// under 256 KiB. Netty's default write-buffer high-water mark. (It was 4 MiB: fifty
/// never-reading HTTP clients took `reactor` to 223 MB; with 64 KiB, see DESIGN.md, "Hostile
/// clients".) Every model that keeps a reply backlog uses it.
pub(crate) const OUT_HIGH_WATER: usize = 64 * 1024;
const EVENTS: usize = 1024;
/// Session calls (a read handed to the session, or a batch of its held requests answered) one
/// connection gets per wake-up before the loop turns to the others; what is left (data in the
/// socket, held requests) is served on the next turn, without a new readiness. One call is at
/// most a 64 KiB read and 32 KiB of replies: the quantum Redis gives a client (one 16 KiB read
/// per event), where reading until EAGAIN let a client that pipelines as fast as the server
/// answers keep the loop for as long as it sent (issue 18: a well-behaved request waited 2.2 s
/// behind a thousand such HTTP clients).
pub(crate) const CALLS_PER_TURN: usize = 1;
/// Pause before retrying an accept that failed for lack of descriptors or memory.
pub(crate) const ACCEPT_RETRY: Duration = Duration::from_millis(10);

/// A running reactor thread.
pub(crate) struct Loop {
    shared: Arc<Shared>,
    thread: JoinHandle<io::Result<()>>,
}

/// What a loop shares with the threads that talk to it.
struct Shared {
    waker: Waker,
    stop: AtomicBool,
    /// Connections handed over by another thread (multi-reactor), taken on the next wake-up.
    inbox: Mutex<Vec<StdStream>>,
    /// Connections this loop has taken on since it started.
    connections: AtomicU64,
}

impl Loop {
    /// Starts a reactor thread named `name`. With a listener it accepts for itself; without,
    /// it serves what [`Loop::hand_over`] gives it. Connections that complete no request for
    /// `idle_timeout` are closed.
    pub(crate) fn spawn(
        name: String,
        listener: Option<TcpListener>,
        protocol: &Protocol,
        idle_timeout: Option<Duration>,
    ) -> io::Result<Loop> {
        let poll = Poll::new()?;
        let listener = match listener {
            Some(l) => Some(listen_on(&poll, l, LISTENER)?),
            None => None,
        };
        let shared = Arc::new(Shared {
            waker: Waker::new(poll.registry(), WAKER)?,
            stop: AtomicBool::new(false),
            inbox: Mutex::new(Vec::new()),
            connections: AtomicU64::new(0),
        });
        let thread = {
            let (shared, protocol) = (shared.clone(), protocol.clone());
            std::thread::Builder::new()
                .name(name)
                .spawn(move || run(poll, listener, &protocol, &shared, idle_timeout))?
        };
        Ok(Loop { shared, thread })
    }

    /// Gives the loop a connection accepted elsewhere; it registers it on its next wake-up.
    pub(crate) fn hand_over(&self, stream: StdStream) -> io::Result<()> {
        self.shared
            .inbox
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(stream);
        self.shared.waker.wake()
    }

    /// Connections this loop has taken on so far.
    pub(crate) fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::Relaxed)
    }

    /// Asks the loop to stop; [`Loop::join`] waits for it.
    pub(crate) fn signal_stop(&self) -> io::Result<()> {
        self.shared.stop.store(true, Ordering::Release);
        self.shared.waker.wake()
    }

    /// Waits for the thread; every socket it owned is closed when this returns.
    pub(crate) fn join(self) -> io::Result<()> {
        self.thread
            .join()
            .map_err(|_| io::Error::other("a reactor thread panicked"))?
    }

    /// Stops several loops: all are signalled first, so they wind down together.
    pub(crate) fn stop_all(loops: Vec<Loop>) -> io::Result<()> {
        super::stop_all(loops, Loop::signal_stop, Loop::join)
    }
}

struct Conn {
    stream: TcpStream,
    session: Session,
    /// Reply bytes not yet written.
    out: Backlog,
    /// Reading stopped because `out` passed the high-water mark.
    read_paused: bool,
    /// The peer's FIN (or an error) was reported: read on to EOF, never stop at a short read.
    peer_closed: bool,
    /// EOF was read or the protocol asked to close: no more reads, close once `out` is written.
    closing: bool,
    /// Its last turn ended with more to serve ([`ReadStop::Turn`]).
    more: bool,
    /// It is in the loop's list of connections waiting for their next turn.
    queued: bool,
    idle: Idle,
}

fn run(
    mut poll: Poll,
    listener: Option<MioListener>,
    protocol: &Protocol,
    shared: &Shared,
    idle_timeout: Option<Duration>,
) -> io::Result<()> {
    let mut events = Events::with_capacity(EVENTS);
    let mut conns: Slab<Conn> = Slab::new();
    let mut scratch = vec![0u8; SCRATCH];
    // Set when accept failed for lack of descriptors or memory: the listener's edge is spent,
    // so the loop wakes up on its own to retry instead of waiting for a new connection.
    let mut accept_retry: Option<Instant> = None;
    let mut sweep = Sweep::new(idle_timeout);
    let mut expired: Vec<usize> = Vec::new();
    // Connections whose turn ended with more to serve, and those of the turn being served.
    let mut next: Vec<usize> = Vec::new();
    let mut turn: Vec<usize> = Vec::new();
    // Read once per wake-up (the vDSO: no system call); the wait computed from it may end a
    // little late, never early.
    let mut now = Instant::now();
    loop {
        let wake_at = earliest(accept_retry, sweep.as_ref().map(Sweep::next));
        // With connections waiting for their next turn, the wait only collects new readiness.
        let timeout = if next.is_empty() {
            wake_at.map(|at| at.saturating_duration_since(now))
        } else {
            Some(Duration::ZERO)
        };
        if let Err(e) = poll.poll(&mut events, timeout) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        now = Instant::now();
        if let Some(l) = &listener {
            if accept_retry.is_some_and(|at| now >= at) {
                accept_retry = accept_all(&poll, l, &mut conns, protocol, shared, true);
            }
        }
        for event in events.iter() {
            match event.token() {
                WAKER => {
                    if shared.stop.load(Ordering::Acquire) {
                        return Ok(());
                    }
                    adopt_handed(&poll, &mut conns, protocol, shared);
                }
                LISTENER => {
                    if let Some(l) = &listener {
                        let retrying = accept_retry.is_some();
                        accept_retry = accept_all(&poll, l, &mut conns, protocol, shared, retrying);
                    }
                }
                Token(key) => {
                    let Some(conn) = conns.get_mut(key) else {
                        continue;
                    };
                    if !conn.on_event(event, &mut scratch) {
                        let mut conn = conns.remove(key);
                        let _ = poll.registry().deregister(&mut conn.stream);
                    } else if conn.wants_turn() {
                        next.push(key);
                    }
                }
            }
        }
        // The next turn of those whose last one ended with more to serve, after every
        // connection that became ready meanwhile (a key reused by a newer connection gets a
        // read that finds nothing).
        std::mem::swap(&mut turn, &mut next);
        for key in turn.drain(..) {
            let Some(conn) = conns.get_mut(key) else {
                continue;
            };
            conn.queued = false;
            if !conn.take_turn(&mut scratch) {
                let mut conn = conns.remove(key);
                let _ = poll.registry().deregister(&mut conn.stream);
            } else if conn.wants_turn() {
                next.push(key);
            }
        }
        if let Some(timeout) = sweep_due(&mut sweep, now) {
            close_idle(&poll, &mut conns, &mut expired, now, timeout);
        }
    }
}

/// Adopts the connections another thread handed over through the inbox (`multi-reactor`'s
/// acceptor).
fn adopt_handed(poll: &Poll, conns: &mut Slab<Conn>, protocol: &Protocol, shared: &Shared) {
    let handed: Vec<StdStream> =
        std::mem::take(&mut *shared.inbox.lock().unwrap_or_else(|e| e.into_inner()));
    for stream in handed {
        if stream.set_nonblocking(true).is_ok() {
            adopt(poll, TcpStream::from_std(stream), conns, protocol, shared);
        }
    }
}

/// The idle sweep: closes every connection that completed no request for `timeout`
/// (`expired` is the loop's reusable list of their keys).
fn close_idle(
    poll: &Poll,
    conns: &mut Slab<Conn>,
    expired: &mut Vec<usize>,
    now: Instant,
    timeout: Duration,
) {
    expired.extend(conns.iter_mut().filter_map(|(key, c)| {
        c.idle
            .expired(c.session.completed(), now, timeout)
            .then_some(key)
    }));
    for key in expired.drain(..) {
        let mut conn = conns.remove(key);
        let _ = poll.registry().deregister(&mut conn.stream);
    }
}

/// Registers a new connection with this loop (TCP_NODELAY, a fresh session).
fn adopt(
    poll: &Poll,
    mut stream: TcpStream,
    conns: &mut Slab<Conn>,
    protocol: &Protocol,
    shared: &Shared,
) {
    let entry = conns.vacant_entry();
    if register_conn(poll, &mut stream, entry.key()) {
        shared.connections.fetch_add(1, Ordering::Relaxed);
        entry.insert(Conn {
            stream,
            session: protocol.session(),
            out: Backlog::default(),
            read_paused: false,
            peer_closed: false,
            closing: false,
            more: false,
            queued: false,
            idle: Idle::new(Instant::now()),
        });
    }
}

/// Accepts every pending connection. Returns when to try again if accept failed for lack of
/// resources (EMFILE, ENFILE, ENOBUFS, ENOMEM).
fn accept_all(
    poll: &Poll,
    listener: &MioListener,
    conns: &mut Slab<Conn>,
    protocol: &Protocol,
    shared: &Shared,
    retrying: bool,
) -> Option<Instant> {
    loop {
        match listener.accept() {
            Ok((stream, _)) => adopt(poll, stream, conns, protocol, shared),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                if let Some(at) = accept_failed(&e, retrying) {
                    return Some(at);
                }
            }
        }
    }
}

/// Makes `listener` non-blocking and registers it with `poll` for reads under `token`.
pub(crate) fn listen_on(
    poll: &Poll,
    listener: TcpListener,
    token: Token,
) -> io::Result<MioListener> {
    listener.set_nonblocking(true)?;
    let mut listener = MioListener::from_std(listener);
    poll.registry()
        .register(&mut listener, token, Interest::READABLE)?;
    Ok(listener)
}

/// Sets TCP_NODELAY on a new connection and registers it with `poll`, edge-triggered for reads
/// and writes, under the slab key it will take; `false` when either fails (drop it).
pub(crate) fn register_conn(poll: &Poll, stream: &mut TcpStream, key: usize) -> bool {
    stream.set_nodelay(true).is_ok()
        && poll
            .registry()
            .register(stream, Token(key), Interest::READABLE | Interest::WRITABLE)
            .is_ok()
}

/// Why [`serve_reads`] stopped reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReadStop {
    /// The socket has nothing more now (EAGAIN, or a short read when asked to stop there).
    Drained,
    /// EOF, or the session asked to close: no more reads; close once the backlog is written.
    Closing,
    /// The reply backlog passed [`OUT_HIGH_WATER`]: read no more until it drains.
    OverMark,
    /// A read or write error: drop the connection.
    Failed,
    /// The turn's [`CALLS_PER_TURN`] were spent: more may be waiting (in the socket, or held in
    /// the session); serve it on the next turn, as no readiness may announce it.
    Turn,
}

/// The non-blocking loops' read path: reads into `scratch`, hands each read to the session,
/// writes what it replied (the rest stays in `out`), until one of
/// [`ReadStop`]. With `stop_on_short_read`, a read shorter than `scratch` ends it: the receive
/// queue is empty, and an edge (or the next level-triggered wait) reports new data. It never
/// returns `Drained` with requests held in the session ([`Session::unanswered`]): they are
/// answered first, and only `OverMark`, `Turn` (or the end) leaves them for later. At most
/// [`CALLS_PER_TURN`] session calls are made.
pub(crate) fn serve_reads(
    stream: &mut (impl Read + Write),
    session: &mut Session,
    out: &mut Backlog,
    scratch: &mut [u8],
    stop_on_short_read: bool,
) -> ReadStop {
    let mut calls = 0;
    loop {
        if calls == CALLS_PER_TURN {
            return ReadStop::Turn;
        }
        calls += 1;
        // Requests a read left unanswered (its answers were more than a batch) go first: no
        // readiness will announce them.
        let (flow, read) = if session.unanswered() {
            (session.on_data(&[], out.buf()), None)
        } else {
            let n = match stream.read(scratch) {
                Ok(0) => return ReadStop::Closing,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return ReadStop::Drained,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return ReadStop::Failed,
            };
            (session.on_data(&scratch[..n], out.buf()), Some(n))
        };
        if !out.flush(stream) {
            return ReadStop::Failed;
        }
        if flow == Flow::Close {
            return ReadStop::Closing;
        }
        if out.pending() > OUT_HIGH_WATER {
            return ReadStop::OverMark;
        }
        // Held requests answered: whether the read they came from drained the socket is
        // not known, so read on.
        if stop_on_short_read && !session.unanswered() && read.is_some_and(|n| n < scratch.len()) {
            return ReadStop::Drained;
        }
    }
}

/// The accept errors that mean "out of descriptors or memory", not "this connection failed".
#[cfg(unix)]
const SHORTAGES: [i32; 4] = [libc::EMFILE, libc::ENFILE, libc::ENOBUFS, libc::ENOMEM];
/// WSAEMFILE and WSAENOBUFS (Winsock's codes).
#[cfg(windows)]
const SHORTAGES: [i32; 2] = [10024, 10055];

/// What a failed non-blocking `accept` means, for every loop that accepts: `Some(retry time)`
/// when the process is out of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM: the
/// connection waits in the backlog; reported once per shortage, `retrying` saying one is
/// already being retried); `None` when the error concerned one connection (ECONNABORTED...:
/// reported, and the loop goes on with the rest).
pub(crate) fn accept_failed(e: &io::Error, retrying: bool) -> Option<Instant> {
    let shortage = matches!(e.raw_os_error(), Some(code) if SHORTAGES.contains(&code));
    if !shortage {
        eprintln!("accept failed: {e}");
        return None;
    }
    if !retrying {
        eprintln!("accept failed, retrying every 10 ms: {e}");
    }
    Some(Instant::now() + ACCEPT_RETRY)
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
        // While paused, new data waits in the socket (resuming reads it all): reading on each
        // new edge would grow the backlog by a buffer per edge, past the high-water mark.
        let resume = self.read_paused && self.pending() == 0;
        if !self.closing && ((readable && !self.read_paused) || resume) {
            self.read_paused = false;
            if !self.read_all(scratch) {
                return false;
            }
        }
        // A closing connection stays until its last reply bytes are written.
        !(self.closing && self.pending() == 0)
    }

    fn pending(&self) -> usize {
        self.out.pending()
    }

    /// Reads, handles and replies until the socket is drained, the backlog is too long, or the
    /// connection is closing; `false` on an error that ends the connection at once. A short
    /// read ends it unless the peer closed (that edge has fired already: read to EOF).
    fn read_all(&mut self, scratch: &mut [u8]) -> bool {
        let stop_on_short_read = crate::sys::SHORT_READ_DRAINS && !self.peer_closed;
        match serve_reads(
            &mut self.stream,
            &mut self.session,
            &mut self.out,
            scratch,
            stop_on_short_read,
        ) {
            ReadStop::Drained => true,
            ReadStop::Closing => {
                self.closing = true;
                true
            }
            ReadStop::OverMark => {
                self.read_paused = true;
                true
            }
            ReadStop::Turn => {
                self.more = true;
                true
            }
            ReadStop::Failed => false,
        }
    }

    /// Whether its turn ended with more to serve and it is not queued yet (then it is, by the
    /// caller).
    fn wants_turn(&mut self) -> bool {
        let wants = self.more && !self.queued;
        self.queued |= wants;
        wants
    }

    /// Serves what a turn left; `false` when the connection is finished.
    fn take_turn(&mut self, scratch: &mut [u8]) -> bool {
        self.more = false;
        if !self.closing && !self.read_paused && !self.read_all(scratch) {
            return false;
        }
        !(self.closing && self.pending() == 0)
    }

    /// Writes as much of the backlog as the socket takes; `false` on a write error.
    fn flush(&mut self) -> bool {
        self.out.flush(&mut self.stream)
    }
}
