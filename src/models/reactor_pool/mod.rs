//! `reactor-pool`: one reactor thread does all the I/O, a pool of `--threads` workers runs the
//! handler, and the results are handed back to the reactor to write.
//!
//! The seeds' "single reactor, multi-thread" shape (Netty with a separate `EventExecutorGroup`
//! for its handlers): the reactor accepts, reads and writes every socket, edge-triggered, with
//! the rules of `parts/mio_loop.rs` (short-read rule, backpressure, EOF waits for the last reply
//! byte, EMFILE accept retry); it never runs the session. When bytes have arrived and the
//! connection has no job in flight, it moves the accumulated input and the connection's
//! [`Session`] into a job on the workers' queue. At most one job per connection is in flight, so
//! its requests are handled in order and its session is never shared; meanwhile the reactor
//! keeps reading into a second input buffer. A worker runs the session, puts the result on the
//! results list and wakes the reactor (one eventfd write per batch of results), which writes the
//! reply, takes the session back and dispatches the next job if more input has accumulated.
//! Buffers move back and forth between the reactor and the workers, so the steady state
//! allocates nothing per request.
//!
//! Idle connections (`--idle-timeout`) are swept as in `parts/mio_loop.rs`, by the request count
//! each job brings back (the session may be away on a worker when the sweep looks; looking
//! only at sessions at home, a sweep that kept meeting a trickling client's one-byte job
//! never closed it).
//!
//! Good: a slow handler (`--work-us`, `--block-us`) no longer stalls the reactor, and the
//! handler's CPU spreads over the workers. Bad: every request crosses threads twice (a queue
//! lock, a futex wake when a worker sleeps, an eventfd write back), and one reactor thread
//! still does every system call.
//!
//! Here: the reactor's loop; `conn.rs` a connection on the reactor's side; `pool.rs` the job
//! queue and the workers.

use std::io;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::net::TcpListener as MioListener;
use mio::{Events, Poll, Token, Waker};
use slab::Slab;

use super::contract::{Model, RunningServer, ServerConfig, Threads};
use super::parts::backlog::Backlog;
use super::parts::idle::{earliest, sweep_due, Idle, Sweep};
use crate::protocol::Protocol;

pub const MODEL: Model = Model {
    name: "reactor-pool",
    summary: "one reactor thread does all I/O, a worker pool runs the handler",
    example: "the seeds' single reactor + worker pool; Netty with a separate EventExecutorGroup",
    threads: Threads::Count("worker pool size"),
    start,
    ..Model::BASE
};

// The scratch buffer and accept retry pause are parts/mio_loop.rs's.
use super::parts::mio_loop::{accept_failed, listen_on, register_conn, SCRATCH};

const LISTENER: Token = Token(usize::MAX - 1);
const WAKER: Token = Token(usize::MAX - 2);
const EVENTS: usize = 1024;

mod conn;
mod pool;

use conn::Conn;
use pool::{stop_workers, work, Job, Queue, Shared};

struct ReactorPool {
    shared: Arc<Shared>,
    reactor: JoinHandle<io::Result<()>>,
    workers: Vec<JoinHandle<()>>,
}

fn start(listener: TcpListener, config: &ServerConfig) -> io::Result<Box<dyn RunningServer>> {
    let poll = Poll::new()?;
    let listener = listen_on(&poll, listener, LISTENER)?;
    let shared = Arc::new(Shared {
        stop: AtomicBool::new(false),
        waker: Waker::new(poll.registry(), WAKER)?,
        queue: Mutex::new(Queue::default()),
        job_ready: Condvar::new(),
        results: Mutex::new(Vec::new()),
    });
    let mut workers = Vec::with_capacity(config.threads.max(1));
    for i in 0..config.threads.max(1) {
        let spawned = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("worker-{i}"))
                .spawn(move || work(&shared))
        };
        match spawned {
            Ok(w) => workers.push(w),
            Err(e) => {
                stop_workers(&shared, workers);
                return Err(e);
            }
        }
    }
    let reactor = {
        let (shared, protocol) = (shared.clone(), config.protocol.clone());
        let idle_timeout = config.idle_timeout();
        std::thread::Builder::new()
            .name("reactor".into())
            .spawn(move || run(poll, listener, &protocol, &shared, idle_timeout))
    };
    match reactor {
        Ok(reactor) => Ok(Box::new(ReactorPool {
            shared,
            reactor,
            workers,
        })),
        Err(e) => {
            stop_workers(&shared, workers);
            Err(e)
        }
    }
}

impl RunningServer for ReactorPool {
    fn stop(self: Box<Self>) -> io::Result<()> {
        self.shared.stop.store(true, Ordering::Release);
        let woken = self.shared.waker.wake();
        let workers_fine = stop_workers(&self.shared, self.workers);
        woken?;
        self.reactor
            .join()
            .map_err(|_| io::Error::other("the reactor thread panicked"))??;
        if workers_fine {
            Ok(())
        } else {
            Err(io::Error::other("a worker thread panicked"))
        }
    }
}

/// The reactor thread: accepts, reads and writes every connection; never runs the handler.
fn run(
    mut poll: Poll,
    listener: MioListener,
    protocol: &Protocol,
    shared: &Shared,
    idle_timeout: Option<Duration>,
) -> io::Result<()> {
    let mut events = Events::with_capacity(EVENTS);
    let mut conns: Slab<Conn> = Slab::new();
    let mut scratch = vec![0u8; SCRATCH];
    let mut done: Vec<Job> = Vec::new();
    // Jobs made during one wake-up of the loop, handed to the workers together at its end.
    let mut outbox: Vec<Job> = Vec::new();
    let mut next_id = 0u64;
    // Set when accept failed for lack of descriptors or memory: the listener's edge is spent,
    // so the loop wakes up on its own to retry instead of waiting for a new connection.
    let mut accept_retry: Option<Instant> = None;
    let mut sweep = Sweep::new(idle_timeout);
    let mut expired: Vec<usize> = Vec::new();
    // Read once per wake-up (the vDSO: no system call).
    let mut now = Instant::now();
    loop {
        let wake_at = earliest(accept_retry, sweep.as_ref().map(Sweep::next));
        let timeout = wake_at.map(|at| at.saturating_duration_since(now));
        if let Err(e) = poll.poll(&mut events, timeout) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        now = Instant::now();
        if accept_retry.is_some_and(|at| now >= at) {
            accept_retry = accept_all(&poll, &listener, &mut conns, protocol, &mut next_id, true);
        }
        for event in events.iter() {
            match event.token() {
                WAKER => {
                    if shared.stop.load(Ordering::Acquire) {
                        return Ok(());
                    }
                    let idle_timeout = sweep.as_ref().map(Sweep::timeout);
                    let (done, scratch, outbox) = (&mut done, &mut scratch, &mut outbox);
                    let taken = Taken {
                        shared,
                        done,
                        scratch,
                        outbox,
                    };
                    take_results(&poll, &mut conns, taken, idle_timeout, now);
                }
                LISTENER => {
                    let retrying = accept_retry.is_some();
                    accept_retry = accept_all(
                        &poll,
                        &listener,
                        &mut conns,
                        protocol,
                        &mut next_id,
                        retrying,
                    );
                }
                Token(key) => {
                    let Some(conn) = conns.get_mut(key) else {
                        continue;
                    };
                    if !conn.on_event(event, key, &mut scratch, &mut outbox) {
                        close(&poll, &mut conns, key);
                    }
                }
            }
        }
        if let Some(timeout) = sweep_due(&mut sweep, now) {
            close_idle(&poll, &mut conns, &mut expired, now, timeout);
        }
        // Every job this wake-up made, handed over at once.
        shared.submit_all(&mut outbox);
    }
}

/// What [`take_results`] works with: the finished jobs' list, the loop's reusable list, the
/// scratch buffer, and the outbox the next jobs go to.
struct Taken<'a> {
    shared: &'a Shared,
    done: &'a mut Vec<Job>,
    scratch: &'a mut [u8],
    outbox: &'a mut Vec<Job>,
}

/// Takes the jobs the workers finished (into `done`, the loop's reusable list) and hands each
/// back to its connection.
fn take_results(
    poll: &Poll,
    conns: &mut Slab<Conn>,
    taken: Taken,
    idle_timeout: Option<Duration>,
    now: Instant,
) {
    let Taken {
        shared,
        done,
        scratch,
        outbox,
    } = taken;
    std::mem::swap(
        &mut *shared.results.lock().unwrap_or_else(|e| e.into_inner()),
        done,
    );
    for job in done.drain(..) {
        let key = job.key;
        // Dropped when its connection has gone (an error while it was away).
        let Some(conn) = conns.get_mut(key).filter(|c| c.id == job.id) else {
            continue;
        };
        if !conn.on_result(job, key, scratch, outbox) {
            close(poll, conns, key);
            continue;
        }
        // The sweep skips a connection whose job is away; one whose job came back having
        // completed nothing for the timeout (a trickling client whose one-byte jobs the sweeps
        // kept meeting on the workers) is closed here.
        if idle_timeout.is_some_and(|t| conn.idle.expired(conn.completed, now, t)) {
            close(poll, conns, key);
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
    // A connection whose job is on a worker waits for the server, not for its client: it is
    // not idle (its count moves when the job comes back).
    expired.extend(conns.iter_mut().filter_map(|(key, c)| {
        let away = c.session.is_none();
        (!away && c.idle.expired(c.completed, now, timeout)).then_some(key)
    }));
    // A job still out for one of these comes back to a missing or newer id: dropped.
    for key in expired.drain(..) {
        close(poll, conns, key);
    }
}

fn close(poll: &Poll, conns: &mut Slab<Conn>, key: usize) {
    let mut conn = conns.remove(key);
    let _ = poll.registry().deregister(&mut conn.stream);
}

/// Accepts every pending connection (TCP_NODELAY, a fresh session each). Returns when to try
/// again if accept failed for lack of resources (EMFILE, ENFILE, ENOBUFS, ENOMEM).
fn accept_all(
    poll: &Poll,
    listener: &MioListener,
    conns: &mut Slab<Conn>,
    protocol: &Protocol,
    next_id: &mut u64,
    retrying: bool,
) -> Option<Instant> {
    loop {
        match listener.accept() {
            Ok((mut stream, _)) => {
                let entry = conns.vacant_entry();
                if register_conn(poll, &mut stream, entry.key()) {
                    *next_id += 1;
                    entry.insert(Conn {
                        stream,
                        id: *next_id,
                        session: Some(protocol.session()),
                        input: Vec::new(),
                        spare_in: Vec::new(),
                        out: Backlog::default(),
                        spare_out: Vec::new(),
                        read_paused: false,
                        peer_closed: false,
                        eof: false,
                        closing: false,
                        completed: 0,
                        idle: Idle::new(Instant::now()),
                    });
                }
            }
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
