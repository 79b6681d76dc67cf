//! `reactor --poller poll|select`: the single-threaded reactor of
//! [`reactor`](crate::models::reactor), waiting with poll(2) or select(2), level-triggered, as
//! servers did before epoll.
//!
//! The C10K page's point, made measurable: epoll keeps the interest list in the kernel and
//! costs per ready event, while poll and select hand the kernel every watched descriptor on
//! every wait, and the kernel checks each one. So each iteration of this loop, like a classic
//! poll/select server's:
//! 1. rebuilds the `pollfd` array (or the read and write `fd_set`s) from every connection:
//!    readable interest unless the connection is closing or its reply backlog is above the
//!    high-water mark, writable interest only while it has reply bytes pending (level-triggered
//!    readiness of an idle socket's send buffer is permanent: asking for it always would spin);
//! 2. waits;
//! 3. scans the array (or tests every connection's bits) for what is ready, stopping once it
//!    has seen as many ready entries as the wait reported (Stevens's `nready` countdown).
//!
//! That per-iteration O(n) work is the experiment, not an oversight: it is not optimised away.
//!
//! Level-triggered readiness repeats for as long as it holds, which makes three things simpler
//! than with edges: a read shorter than the buffer can stop reading (data left or arriving
//! later is reported again), a FIN need not be remembered (EOF stays readable), and reading
//! resumes by itself when a paused connection's backlog falls back under the mark. What stays
//! the same as the epoll reactor: one scratch buffer, replies written at once and the rest when
//! writable, EOF ends reading but the connection stays until its last reply byte is written,
//! and an `accept` that fails for lack of descriptors is retried every 10 ms (meanwhile the
//! listener leaves the set, or its level would make the loop spin), and connections that
//! complete no request for `--idle-timeout` are closed by a sweep the wait's timeout brings
//! round (see `idle.rs`).
//!
//! select(2) can hold descriptors below FD_SETSIZE (1024) only; a connection accepted on a
//! larger descriptor is closed at once (and counted), with one line on stderr that names the
//! fix. `bench run` refuses `--poller select` with more connections than can fit, before it
//! starts anything.

use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use slab::Slab;

use super::backlog::Backlog;
use super::idle::{earliest, sweep_due, Idle, Sweep};
use super::mio_loop::{accept_failed, serve_reads, ReadStop, OUT_HIGH_WATER, SCRATCH};
use crate::models::contract::{Poller, RunningServer, ServerConfig, FD_SETSIZE};
use crate::protocol::{Protocol, Session};
use crate::sys::{self, FdSet};

struct LevelReactor {
    /// The eventfd the loop watches: `stop` makes it readable.
    wake: Arc<OwnedFd>,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<io::Result<()>>,
}

/// The message, printed once, when select meets a descriptor it cannot watch.
fn select_cannot_watch(fd: RawFd) -> String {
    format!("select cannot watch descriptor {fd} (FD_SETSIZE is {FD_SETSIZE}): use --poller poll or epoll")
}

pub(crate) fn start(
    listener: TcpListener,
    config: &ServerConfig,
) -> io::Result<Box<dyn RunningServer>> {
    let poller = config.poller;
    if poller == Poller::Epoll {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the level-triggered reactor waits with poll or select, not epoll",
        ));
    }
    listener.set_nonblocking(true)?;
    let wake = Arc::new(sys::eventfd()?);
    if poller == Poller::Select {
        for fd in [listener.as_raw_fd(), wake.as_raw_fd()] {
            if !FdSet::fits(fd) {
                return Err(io::Error::other(select_cannot_watch(fd)));
            }
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let state = State {
        listener,
        wake: wake.clone(),
        protocol: config.protocol.clone(),
        poller,
        conns: Slab::new(),
        scratch: vec![0u8; SCRATCH],
        accept_retry: None,
        refused: 0,
        sweep: Sweep::new(config.idle_timeout()),
        now: Instant::now(),
        expired: Vec::new(),
        next: Vec::new(),
        turn: Vec::new(),
    };
    let thread = {
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("reactor".into())
            .spawn(move || match poller {
                Poller::Select => select_loop(state, &stop),
                _ => poll_loop(state, &stop),
            })?
    };
    Ok(Box::new(LevelReactor { wake, stop, thread }))
}

impl RunningServer for LevelReactor {
    fn stop(self: Box<Self>) -> io::Result<()> {
        self.stop.store(true, Ordering::Release);
        sys::eventfd_signal(self.wake.as_fd())?;
        self.thread
            .join()
            .map_err(|_| io::Error::other("the reactor thread panicked"))?
    }
}

/// What both loops share: the sockets, the connections, and the accept logic.
struct State {
    listener: TcpListener,
    wake: Arc<OwnedFd>,
    protocol: Protocol,
    poller: Poller,
    conns: Slab<Conn>,
    scratch: Vec<u8>,
    /// Set while accept fails for lack of descriptors or memory: when to try again. Meanwhile
    /// the listener is not watched (it stays readable, and the loop would spin).
    accept_retry: Option<Instant>,
    /// select only: connections closed because their descriptor was FD_SETSIZE or more.
    refused: u64,
    /// When idle connections are looked for next (`None`: no idle timeout).
    sweep: Option<Sweep>,
    /// The clock, read once per wake-up.
    now: Instant,
    /// The keys of the connections a sweep closes.
    expired: Vec<usize>,
    /// Connections whose turn ended with requests held in the session (no readiness announces
    /// them; what is left in a socket is reported again), and those of the turn being served.
    next: Vec<usize>,
    turn: Vec<usize>,
}

impl State {
    /// How long the wait may block: for ever, or until the accept retry or the next sweep is
    /// due.
    fn timeout(&self) -> Option<Duration> {
        if !self.next.is_empty() {
            // Connections wait for their next turn: the wait only collects new readiness.
            return Some(Duration::ZERO);
        }
        earliest(self.accept_retry, self.sweep.as_ref().map(Sweep::next))
            .map(|at| at.saturating_duration_since(self.now))
    }

    /// After each wait: reads the clock.
    fn woke(&mut self) {
        self.now = Instant::now();
    }

    fn accepting(&self) -> bool {
        self.accept_retry.is_none()
    }

    fn retry_due(&self) -> bool {
        self.accept_retry.is_some_and(|at| self.now >= at)
    }

    /// Closes the connections that completed no request for the idle timeout, when a sweep is
    /// due.
    fn sweep_idle(&mut self) {
        let now = self.now;
        let Some(timeout) = sweep_due(&mut self.sweep, now) else {
            return;
        };
        self.expired
            .extend(self.conns.iter_mut().filter_map(|(key, c)| {
                c.idle
                    .expired(c.session.completed(), now, timeout)
                    .then_some(key)
            }));
        for key in self.expired.drain(..) {
            // Dropping the stream closes it.
            self.conns.remove(key);
        }
    }

    /// Drains the wake-up eventfd; `true` when the loop must return.
    fn woken(&self, stop: &AtomicBool) -> io::Result<bool> {
        sys::eventfd_drain(self.wake.as_fd())?;
        Ok(stop.load(Ordering::Acquire))
    }

    /// Handles one ready connection, dropping it when it is finished.
    fn on_ready(&mut self, key: usize, readable: bool, writable: bool) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if !conn.on_ready(readable, writable, &mut self.scratch) {
            self.conns.remove(key);
        } else if conn.wants_turn() {
            self.next.push(key);
        }
    }

    /// The next turn of the connections whose last one ended with requests held, after every
    /// connection that became ready meanwhile.
    fn take_turns(&mut self) {
        std::mem::swap(&mut self.turn, &mut self.next);
        let mut turn = std::mem::take(&mut self.turn);
        for key in turn.drain(..) {
            if let Some(conn) = self.conns.get_mut(key) {
                conn.queued = false;
            }
            self.on_ready(key, false, false);
        }
        self.turn = turn;
    }

    /// Accepts every pending connection, or notes when to retry if accept failed for lack of
    /// resources (EMFILE, ENFILE, ENOBUFS, ENOMEM).
    fn accept_all(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    let fd = stream.as_raw_fd();
                    if self.poller == Poller::Select && !FdSet::fits(fd) {
                        if self.refused == 0 {
                            eprintln!("{}", select_cannot_watch(fd));
                        }
                        self.refused += 1;
                        // Dropping the stream closes it: the client sees EOF.
                        continue;
                    }
                    if stream.set_nonblocking(true).is_err() || stream.set_nodelay(true).is_err() {
                        continue;
                    }
                    self.conns.insert(Conn {
                        fd,
                        stream,
                        session: self.protocol.session(),
                        out: Backlog::default(),
                        closing: false,
                        more: false,
                        queued: false,
                        idle: Idle::new(self.now),
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.accept_retry = None;
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    if let Some(at) = accept_failed(&e, self.accept_retry.is_some()) {
                        self.accept_retry = Some(at);
                        return;
                    }
                }
            }
        }
    }

    /// Said when the loop returns, so that refused connections do not go unnoticed.
    fn report(&self) {
        if self.refused > 0 {
            eprintln!(
                "select: closed {} connections whose descriptor was FD_SETSIZE ({FD_SETSIZE}) \
                 or more",
                self.refused
            );
        }
    }
}

fn pollfd(fd: RawFd, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

/// Entries 0 and 1 of the pollfd array: the wake-up eventfd and the listener.
const FIXED: usize = 2;

fn poll_loop(mut st: State, stop: &AtomicBool) -> io::Result<()> {
    let mut fds: Vec<libc::pollfd> = Vec::new();
    // The connection behind each pollfd entry from FIXED on.
    let mut keys: Vec<usize> = Vec::new();
    loop {
        fds.clear();
        keys.clear();
        fds.push(pollfd(st.wake.as_raw_fd(), libc::POLLIN));
        // A negative descriptor is skipped by poll: the listener sits out an accept shortage.
        let listener = if st.accepting() {
            st.listener.as_raw_fd()
        } else {
            -1
        };
        fds.push(pollfd(listener, libc::POLLIN));
        for (key, conn) in &st.conns {
            let mut events = 0;
            if conn.wants_read() {
                events |= libc::POLLIN;
            }
            if conn.wants_write() {
                events |= libc::POLLOUT;
            }
            fds.push(pollfd(conn.fd, events));
            keys.push(key);
        }
        let mut ready = match sys::poll(&mut fds, st.timeout()) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        st.woke();
        if fds[0].revents != 0 {
            ready = ready.saturating_sub(1);
            if st.woken(stop)? {
                st.report();
                return Ok(());
            }
        }
        let accept = fds[1].revents != 0 || st.retry_due();
        if fds[1].revents != 0 {
            ready = ready.saturating_sub(1);
        }
        for (pfd, &key) in fds[FIXED..].iter().zip(&keys) {
            if ready == 0 {
                break;
            }
            let re = pfd.revents;
            if re == 0 {
                continue;
            }
            ready = ready.saturating_sub(1);
            if re & libc::POLLNVAL != 0 {
                st.conns.remove(key);
                continue;
            }
            // POLLHUP and POLLERR come whatever was asked: let the read or write find out.
            let readable = re & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0;
            let writable = re & (libc::POLLOUT | libc::POLLHUP | libc::POLLERR) != 0;
            st.on_ready(key, readable, writable);
        }
        // After the scan, so that a connection accepted now waits for the next array.
        if accept {
            st.accept_all();
        }
        st.take_turns();
        st.sweep_idle();
    }
}

fn select_loop(mut st: State, stop: &AtomicBool) -> io::Result<()> {
    let mut read = FdSet::new();
    let mut write = FdSet::new();
    // The connections put in the sets, with their descriptors.
    let mut watched: Vec<(usize, RawFd)> = Vec::new();
    let wake = st.wake.as_raw_fd();
    let listener = st.listener.as_raw_fd();
    loop {
        read.clear();
        write.clear();
        watched.clear();
        // Both were checked against FD_SETSIZE at start, and every connection when accepted:
        // no insert below is refused.
        read.insert(wake);
        if st.accepting() {
            read.insert(listener);
        }
        for (key, conn) in &st.conns {
            if conn.wants_read() {
                read.insert(conn.fd);
            }
            if conn.wants_write() {
                write.insert(conn.fd);
            }
            watched.push((key, conn.fd));
        }
        let mut ready = match sys::select(&mut read, &mut write, st.timeout()) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        st.woke();
        if read.contains(wake) {
            ready = ready.saturating_sub(1);
            if st.woken(stop)? {
                st.report();
                return Ok(());
            }
        }
        let listener_ready = read.contains(listener);
        let accept = listener_ready || st.retry_due();
        if listener_ready {
            ready = ready.saturating_sub(1);
        }
        for &(key, fd) in &watched {
            if ready == 0 {
                break;
            }
            let (readable, writable) = (read.contains(fd), write.contains(fd));
            ready = ready.saturating_sub(usize::from(readable) + usize::from(writable));
            if readable || writable {
                st.on_ready(key, readable, writable);
            }
        }
        if accept {
            st.accept_all();
        }
        st.take_turns();
        st.sweep_idle();
    }
}

struct Conn {
    fd: RawFd,
    stream: TcpStream,
    session: Session,
    /// Reply bytes not yet written.
    out: Backlog,
    /// EOF was read or the protocol asked to close: no more reads, close once `out` is written.
    closing: bool,
    /// Its last turn ended with requests held in the session.
    more: bool,
    /// It is in the loop's list of connections waiting for their next turn.
    queued: bool,
    idle: Idle,
}

impl Conn {
    /// Readable interest: not closing, and the backlog not above the high-water mark (a client
    /// that sends without reading waits in its socket, not in our memory).
    fn wants_read(&self) -> bool {
        !self.closing && self.pending() <= OUT_HIGH_WATER
    }

    /// Whether its turn ended with requests held and it is not queued yet (then it is, by the
    /// caller).
    fn wants_turn(&mut self) -> bool {
        let wants = self.more && !self.queued;
        self.more = false;
        self.queued |= wants;
        wants
    }

    /// Writable interest: only with reply bytes pending.
    fn wants_write(&self) -> bool {
        self.pending() > 0
    }

    /// Handles one readiness report; `false` when the connection is finished.
    fn on_ready(&mut self, readable: bool, writable: bool, scratch: &mut [u8]) -> bool {
        if writable && self.pending() > 0 && !self.flush() {
            return false;
        }
        // Requests held in the session (a read whose answers passed the mark) are answered
        // once the backlog is under it again, though the socket may have nothing new.
        let held = self.session.unanswered();
        if (readable || held) && self.wants_read() && !self.read_all(scratch) {
            return false;
        }
        // A closing connection stays until its last reply bytes are written.
        !(self.closing && self.pending() == 0)
    }

    fn pending(&self) -> usize {
        self.out.pending()
    }

    /// Reads, handles and replies until a short read or EAGAIN, the backlog passes the mark,
    /// or the connection is closing; `false` on an error that ends the connection at once.
    /// Level-triggered: what is left in the socket is reported again.
    fn read_all(&mut self, scratch: &mut [u8]) -> bool {
        match serve_reads(
            &mut self.stream,
            &mut self.session,
            &mut self.out,
            scratch,
            true,
        ) {
            ReadStop::Drained | ReadStop::OverMark => true,
            // What is left in the socket is reported again; held requests are not.
            ReadStop::Turn => {
                self.more = self.session.unanswered();
                true
            }
            ReadStop::Closing => {
                self.closing = true;
                true
            }
            ReadStop::Failed => false,
        }
    }

    /// Writes as much of the backlog as the socket takes; `false` on a write error.
    fn flush(&mut self) -> bool {
        self.out.flush(&mut self.stream)
    }
}
