//! `threadpool`: a fixed pool of blocking workers; accepted connections wait in a queue.
//!
//! Tomcat's BIO connector: an acceptor thread queues each accepted connection, and a worker
//! takes one and serves it, blocking, until it closes. With more live connections than workers
//! the extra connections wait in the queue, unserved: the model's known limit, which the load
//! generator reports as starved connections. A reaper thread shuts down connections that
//! complete no request for `--idle-timeout`, queued ones included (their clock runs from the
//! accept): that is what frees the pool from clients that hold a worker and send nothing, or
//! trickle (slowloris), as Tomcat's `connectionTimeout` does.

use std::collections::VecDeque;
use std::io;
use std::net::TcpListener;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use super::contract::{Model, RunningServer, ServerConfig, Threads};
use super::parts::conns::{accept_loop, serve_stream, Conn, Registry, THREAD_STACK};

pub const MODEL: Model = Model {
    name: "threadpool",
    summary: "fixed pool of blocking workers, accepted connections queued",
    example: "Tomcat BIO connector",
    threads: Threads::Count("pool size"),
    threads_cap_live_connections: true,
    start,
    ..Model::BASE
};

#[derive(Default)]
struct Queue {
    waiting: Mutex<VecDeque<(u64, Arc<Conn>)>>,
    ready: Condvar,
}

struct ThreadPool {
    listener: Arc<TcpListener>,
    registry: Arc<Registry>,
    queue: Arc<Queue>,
    threads: Vec<JoinHandle<()>>,
}

fn start(listener: TcpListener, config: &ServerConfig) -> io::Result<Box<dyn RunningServer>> {
    let listener = Arc::new(listener);
    let registry = Arc::new(Registry::default());
    let queue = Arc::new(Queue::default());
    let mut threads = Vec::with_capacity(config.threads + 2);
    // Threads are pushed as they start, so that a failure stops (below) the ones started.
    let started = start_threads(&listener, &registry, &queue, config, &mut threads);
    let pool = ThreadPool {
        listener,
        registry,
        queue,
        threads,
    };
    match started {
        Ok(()) => Ok(Box::new(pool)),
        Err(e) => {
            let _ = Box::new(pool).stop();
            Err(e)
        }
    }
}

fn start_threads(
    listener: &Arc<TcpListener>,
    registry: &Arc<Registry>,
    queue: &Arc<Queue>,
    config: &ServerConfig,
    threads: &mut Vec<JoinHandle<()>>,
) -> io::Result<()> {
    threads.extend(registry.spawn_reaper(config.idle_timeout())?);
    for i in 0..config.threads.max(1) {
        let (registry, queue, protocol) =
            (registry.clone(), queue.clone(), config.protocol.clone());
        threads.push(
            std::thread::Builder::new()
                .name(format!("worker-{i}"))
                .stack_size(THREAD_STACK)
                .spawn(move || {
                    while let Some((id, conn)) = queue.take(&registry) {
                        let _ = serve_stream(&conn, &protocol);
                        registry.remove(id);
                    }
                })?,
        );
    }
    {
        let (listener, registry, queue) = (listener.clone(), registry.clone(), queue.clone());
        threads.push(
            std::thread::Builder::new()
                .name("acceptor".into())
                .spawn(move || {
                    accept_loop(&listener, &registry, |conn| {
                        if let Some(id) = registry.add(&conn) {
                            queue.put(id, conn);
                        }
                    })
                })?,
        );
    }
    Ok(())
}

impl Queue {
    fn put(&self, id: u64, conn: Arc<Conn>) {
        self.waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back((id, conn));
        self.ready.notify_one();
    }

    /// The next queued connection; `None` once the server is stopping.
    fn take(&self, registry: &Registry) -> Option<(u64, Arc<Conn>)> {
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if registry.stopping() {
                return None;
            }
            if let Some(conn) = waiting.pop_front() {
                return Some(conn);
            }
            waiting = self.ready.wait(waiting).unwrap_or_else(|e| e.into_inner());
        }
    }
}

impl RunningServer for ThreadPool {
    fn stop(self: Box<Self>) -> io::Result<()> {
        self.registry.close_all(&self.listener);
        {
            // Taking the lock orders this wake-up after any worker's check of `stopping`.
            let mut waiting = self.queue.waiting.lock().unwrap_or_else(|e| e.into_inner());
            waiting.clear();
            self.queue.ready.notify_all();
        }
        for thread in self.threads {
            thread
                .join()
                .map_err(|_| io::Error::other("a threadpool thread panicked"))?;
        }
        Ok(())
    }
}
