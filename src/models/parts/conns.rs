//! What the blocking models share: the serving loop of one connection on one thread, a
//! registry of live connections so that `stop` can wake every thread blocked in `read`, and the
//! reaper thread that shuts down connections idle past `--idle-timeout`.
//!
//! The idle timeout, blocking-style: a connection's thread publishes its session's request
//! count after each read (a relaxed store: no system call, no lock), and a reaper thread
//! wakes every sweep interval, looks over the registry and shuts down each connection whose
//! count has not moved for the timeout. The shutdown wakes its thread out of the blocked `read`
//! (or `write`, when the client stopped reading) and the thread closes it. A connection still
//! waiting in the threadpool's queue is in the registry too, and its clock runs from its
//! accept.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::idle::{sweep_interval, Idle};
use crate::protocol::{Flow, Protocol, Session};

/// Read buffer of one blocking connection. Tomcat's BIO connector reads 8 KiB at a time; 16 KiB
/// keeps a 1 MiB echo at 64 reads.
pub(crate) const READ_BUF: usize = 16 * 1024;

/// Stack of a connection thread: the handler is shallow, and 10,000 threads with the default
/// 2 MiB would reserve 20 GB of address space.
pub(crate) const THREAD_STACK: usize = 256 * 1024;

/// One accepted connection: its socket, and how many requests its thread has completed on it
/// (published for the reaper).
pub(crate) struct Conn {
    pub(crate) stream: TcpStream,
    completed: AtomicU64,
    /// Its thread is running the handler: the server, not the client, is taking its time,
    /// and the reaper leaves it alone.
    handling: AtomicBool,
}

impl Conn {
    pub(crate) fn new(stream: TcpStream) -> Arc<Conn> {
        Arc::new(Conn {
            stream,
            completed: AtomicU64::new(0),
            handling: AtomicBool::new(false),
        })
    }
}

impl Conn {
    /// Runs the session on `input`, marked as handling meanwhile, and publishes its request
    /// count for the reaper. (Two relaxed stores a request: no system call, no lock.)
    fn handle(&self, session: &mut Session, input: &[u8], out: &mut Vec<u8>) -> Flow {
        self.handling.store(true, Ordering::Relaxed);
        let flow = session.on_data(input, out);
        self.completed.store(session.completed(), Ordering::Relaxed);
        self.handling.store(false, Ordering::Relaxed);
        flow
    }
}

/// Serves one connection until the peer closes it, an error occurs, or the protocol says close.
pub(crate) fn serve_stream(conn: &Conn, protocol: &Protocol) -> io::Result<()> {
    let mut stream = &conn.stream;
    stream.set_nodelay(true)?;
    let mut session = protocol.session();
    let mut buf = vec![0u8; READ_BUF];
    let mut out = Vec::with_capacity(READ_BUF);
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let mut flow = conn.handle(&mut session, &buf[..n], &mut out);
        loop {
            stream.write_all(&out)?;
            out.clear();
            if flow == Flow::Close {
                return Ok(());
            }
            // A read whose answers are more than a batch: the rest, once these are written.
            if !session.unanswered() {
                break;
            }
            flow = conn.handle(&mut session, &[], &mut out);
        }
    }
}

/// Live connections by id, so that [`Registry::close_all`] can shut each one down and every
/// thread blocked in `read` on it returns. The registry shares each socket with its thread
/// (an `Arc`, not a `dup`): one descriptor per connection, as in the servers it stands for.
#[derive(Default)]
pub(crate) struct Registry {
    stopping: AtomicBool,
    next_id: AtomicU64,
    live: Mutex<HashMap<u64, Entry>>,
    /// Wakes the reaper when the server stops.
    stopped: Condvar,
}

struct Entry {
    conn: Arc<Conn>,
    idle: Idle,
    /// Shut down by the reaper; its thread (or its turn in the queue) will find out.
    expired: bool,
}

impl Registry {
    /// Records a connection; `None` when the server is stopping (the caller drops it).
    pub(crate) fn add(&self, conn: &Arc<Conn>) -> Option<u64> {
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        if self.stopping() {
            return None;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        live.insert(
            id,
            Entry {
                conn: conn.clone(),
                idle: Idle::new(Instant::now()),
                expired: false,
            },
        );
        Some(id)
    }

    pub(crate) fn remove(&self, id: u64) {
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }

    pub(crate) fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Marks the server stopping, wakes the acceptor, the reaper and every connection thread.
    pub(crate) fn close_all(&self, listener: &TcpListener) {
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        self.stopping.store(true, Ordering::Release);
        for entry in live.values() {
            crate::sys::wake_blocked_stream(&entry.conn.stream);
        }
        self.stopped.notify_all();
        drop(live);
        // Wakes the acceptor; if this failed, the listener is unusable anyway and its thread
        // returns on the next accept error.
        let _ = crate::sys::wake_acceptor(listener);
    }

    /// Starts the reaper thread for `timeout` (none without one); it returns once
    /// [`Registry::close_all`] has run.
    pub(crate) fn spawn_reaper(
        self: &Arc<Self>,
        timeout: Option<Duration>,
    ) -> io::Result<Option<JoinHandle<()>>> {
        let Some(timeout) = timeout else {
            return Ok(None);
        };
        let registry = self.clone();
        std::thread::Builder::new()
            .name("reaper".into())
            .stack_size(THREAD_STACK)
            .spawn(move || registry.reap(timeout))
            .map(Some)
    }

    /// Every sweep interval until stopped: shuts down the connections that completed no
    /// request for `timeout`.
    fn reap(&self, timeout: Duration) {
        let interval = sweep_interval(timeout);
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            // An early (spurious) wake-up only makes this sweep come sooner.
            live = self
                .stopped
                .wait_timeout(live, interval)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            if self.stopping() {
                return;
            }
            let now = Instant::now();
            for entry in live.values_mut().filter(|e| !e.expired) {
                // A request being handled is the server's time, not the client's: its
                // connection is not idle (the count moves when the handler returns).
                if entry.conn.handling.load(Ordering::Relaxed) {
                    continue;
                }
                let completed = entry.conn.completed.load(Ordering::Relaxed);
                if entry.idle.expired(completed, now, timeout) {
                    entry.expired = true;
                    crate::sys::wake_blocked_stream(&entry.conn.stream);
                }
            }
        }
    }
}

/// After a blocking `accept` failed (EMFILE and the like: the connection waits in the backlog
/// until a descriptor is free): says so once per run of failures, and sleeps before the retry.
pub(crate) fn accept_backoff(e: &io::Error, failing: &mut bool) {
    if !*failing {
        eprintln!("accept failed, retrying every 10 ms: {e}");
        *failing = true;
    }
    std::thread::sleep(super::mio_loop::ACCEPT_RETRY);
}

/// Accepts until the registry is stopping, handing each connection to `dispatch`.
pub(crate) fn accept_loop(
    listener: &TcpListener,
    registry: &Registry,
    mut dispatch: impl FnMut(Arc<Conn>),
) {
    // Whether the last accept failed: a shortage (EMFILE) is reported once, not every retry.
    let mut failing = false;
    loop {
        match listener.accept() {
            Ok((stream, _)) if !registry.stopping() => {
                failing = false;
                dispatch(Conn::new(stream))
            }
            Ok(_) => return,
            Err(_) if registry.stopping() => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => accept_backoff(&e, &mut failing),
        }
    }
}
