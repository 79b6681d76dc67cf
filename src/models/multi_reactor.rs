//! `multi-reactor`: a main reactor accepts and hands each new connection, round-robin, to one
//! of `--threads` sub-reactors, which owns it for life.
//!
//! Netty's boss and worker event-loop groups, memcached's dispatcher thread and its workers:
//! one thread's only job is `accept`; it passes the socket to a sub-reactor's inbox and wakes
//! it (one eventfd write per connection, never per request), and from then on that
//! sub-reactor alone reads, runs the handler and writes for the connection. Good: scales with
//! cores like `reuseport`, spreads connections evenly whatever their addresses, and a burst of
//! connects does not slow the sub-reactors' I/O. Bad: one more thread, one hand-over per
//! connection, and a slow handler still stalls every connection of its sub-reactor.

use std::io;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::contract::{Model, RunningServer, ServerConfig, Threads};
use super::parts::conns::accept_backoff;
use super::parts::mio_loop::Loop;

pub const MODEL: Model = Model {
    name: "multi-reactor",
    summary: "a main reactor accepts, N sub-reactors own the connections (round-robin)",
    example: "Netty boss/worker groups, memcached",
    threads: Threads::Count("sub-reactors (plus one acceptor)"),
    start,
    ..Model::BASE
};

struct MultiReactor {
    acceptor: JoinHandle<()>,
    stop: Arc<AtomicBool>,
    /// Shared with the acceptor so its descriptor stays open until `stop` has shut it down.
    listener: Arc<TcpListener>,
    subs: Arc<Vec<Loop>>,
}

fn start(listener: TcpListener, config: &ServerConfig) -> io::Result<Box<dyn RunningServer>> {
    let mut subs = Vec::with_capacity(config.threads.max(1));
    for i in 0..config.threads.max(1) {
        match Loop::spawn(
            format!("sub-reactor-{i}"),
            None,
            &config.protocol,
            config.idle_timeout(),
        ) {
            Ok(l) => subs.push(l),
            Err(e) => {
                let _ = Loop::stop_all(subs);
                return Err(e);
            }
        }
    }
    let subs = Arc::new(subs);
    let stop = Arc::new(AtomicBool::new(false));
    let listener = Arc::new(listener);
    let acceptor = {
        let (subs, stop, listener) = (subs.clone(), stop.clone(), listener.clone());
        std::thread::Builder::new()
            .name("main-reactor".into())
            .spawn(move || accept_loop(&listener, &subs, &stop))
    };
    let acceptor = match acceptor {
        Ok(a) => a,
        Err(e) => {
            if let Ok(subs) = Arc::try_unwrap(subs) {
                let _ = Loop::stop_all(subs);
            }
            return Err(e);
        }
    };
    Ok(Box::new(MultiReactor {
        acceptor,
        stop,
        listener,
        subs,
    }))
}

/// The main reactor: blocks in `accept` (its only event source is the listener, so a poller
/// would add a system call per connection and nothing else) and deals connections out.
fn accept_loop(listener: &TcpListener, subs: &[Loop], stop: &AtomicBool) {
    let mut next = 0;
    let mut failing = false;
    loop {
        match listener.accept() {
            Ok(_) if stop.load(Ordering::Acquire) => return,
            Ok((stream, _)) => {
                failing = false;
                // A sub-reactor that cannot be woken is stopping: the connection closes.
                let _ = subs[next].hand_over(stream);
                next = (next + 1) % subs.len();
            }
            Err(_) if stop.load(Ordering::Acquire) => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => accept_backoff(&e, &mut failing),
        }
    }
}

impl RunningServer for MultiReactor {
    fn stop(self: Box<Self>) -> io::Result<()> {
        self.stop.store(true, Ordering::Release);
        // Wakes the acceptor out of accept(2); it then sees `stop` and returns.
        let _ = crate::sys::wake_acceptor(&self.listener);
        // The sub-reactors are stopped whatever happened to the acceptor.
        let acceptor = self
            .acceptor
            .join()
            .map_err(|_| io::Error::other("the main reactor panicked"));
        let subs = match Arc::try_unwrap(self.subs) {
            Ok(subs) => Loop::stop_all(subs),
            // Only the acceptor held another reference, and it has been joined.
            Err(subs) => {
                subs.iter().for_each(|l| drop(l.signal_stop()));
                Err(io::Error::other("a sub-reactor is still referenced"))
            }
        };
        acceptor.and(subs)
    }

    fn connections_per_loop(&self) -> Option<Vec<u64>> {
        Some(self.subs.iter().map(Loop::connections).collect())
    }
}
