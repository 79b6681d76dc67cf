//! `blocking`: one OS thread per accepted connection, blocking sockets.
//!
//! The classic Apache worker / Java BIO shape: an acceptor thread blocks in `accept`, and every
//! connection gets a thread of its own that blocks in `read`, runs the handler, and blocks in
//! `write`. Simple and fair under blocking handlers; each connection costs a thread (stack,
//! scheduler work, a context switch per request). A reaper thread shuts down connections idle
//! past `--idle-timeout` (see `parts/conns.rs`).

use std::io;
use std::net::TcpListener;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use super::contract::{Model, RunningServer, ServerConfig, Threads};
use super::parts::conns::{accept_loop, serve_stream, Registry, THREAD_STACK};

pub const MODEL: Model = Model {
    name: "blocking",
    summary: "one blocking thread per connection",
    example: "Apache prefork/worker, Java BIO",
    threads: Threads::PerConnection,
    start,
    ..Model::BASE
};

struct Blocking {
    listener: Arc<TcpListener>,
    registry: Arc<Registry>,
    live_threads: Arc<WaitGroup>,
    acceptor: JoinHandle<()>,
    reaper: Option<JoinHandle<()>>,
}

fn start(listener: TcpListener, config: &ServerConfig) -> io::Result<Box<dyn RunningServer>> {
    let listener = Arc::new(listener);
    let registry = Arc::new(Registry::default());
    let live_threads = Arc::new(WaitGroup::default());
    let reaper = registry.spawn_reaper(config.idle_timeout())?;
    let spawned_acceptor = {
        let (listener, registry, live_threads) =
            (listener.clone(), registry.clone(), live_threads.clone());
        let protocol = config.protocol.clone();
        std::thread::Builder::new()
            .name("acceptor".into())
            .spawn(move || {
                accept_loop(&listener, &registry, |conn| {
                    let Some(id) = registry.add(&conn) else {
                        return;
                    };
                    let (registry, protocol, guard) =
                        (registry.clone(), protocol.clone(), live_threads.enter());
                    let spawned = std::thread::Builder::new()
                        .name("conn".into())
                        .stack_size(THREAD_STACK)
                        .spawn(move || {
                            let _ = serve_stream(&conn, &protocol);
                            registry.remove(id);
                            // The socket closes before `stop` may return.
                            drop(conn);
                            drop(guard);
                        });
                    if let Err(e) = spawned {
                        // The stream and the guard went down with the closure.
                        eprintln!("cannot start a thread for a connection: {e}");
                    }
                })
            })
    };
    let acceptor = match spawned_acceptor {
        Ok(a) => a,
        Err(e) => {
            registry.close_all(&listener);
            if let Some(r) = reaper {
                let _ = r.join();
            }
            return Err(e);
        }
    };
    Ok(Box::new(Blocking {
        listener,
        registry,
        live_threads,
        acceptor,
        reaper,
    }))
}

impl RunningServer for Blocking {
    fn stop(self: Box<Self>) -> io::Result<()> {
        self.registry.close_all(&self.listener);
        self.acceptor
            .join()
            .map_err(|_| io::Error::other("the acceptor thread panicked"))?;
        // Connections accepted while close_all ran were refused by the registry; the rest
        // were shut down, so their threads return.
        self.registry.close_all(&self.listener);
        self.live_threads.wait_empty();
        if let Some(reaper) = self.reaper {
            reaper
                .join()
                .map_err(|_| io::Error::other("the reaper thread panicked"))?;
        }
        Ok(())
    }
}

/// Counts live connection threads; `wait_empty` returns when the last one has finished.
#[derive(Default)]
struct WaitGroup {
    count: Mutex<usize>,
    empty: Condvar,
}

struct WaitGuard(Arc<WaitGroup>);

impl WaitGroup {
    fn enter(self: &Arc<Self>) -> WaitGuard {
        *self.count.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        WaitGuard(self.clone())
    }

    fn wait_empty(&self) {
        let mut count = self.count.lock().unwrap_or_else(|e| e.into_inner());
        while *count > 0 {
            count = self.empty.wait(count).unwrap_or_else(|e| e.into_inner());
        }
    }
}

impl Drop for WaitGuard {
    fn drop(&mut self) {
        let mut count = self.0.count.lock().unwrap_or_else(|e| e.into_inner());
        *count -= 1;
        if *count == 0 {
            self.0.empty.notify_all();
        }
    }
}
