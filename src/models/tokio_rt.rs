//! `tokio`: the tokio multi-thread runtime, one task per connection.
//!
//! The mainstream Rust server shape (hyper, axum, tonic all sit on it): `--threads` worker
//! threads, each with its own run queue, stealing tasks from the others when idle, and sharing
//! one epoll-driven I/O driver. An accept task spawns one task per connection; the task loops
//! `read` -> session -> `write_all` exactly like the blocking models' threads, but a read or
//! write that would block parks the task, not the thread.
//!
//! The handler runs on the worker thread that polls the task, so `--block-us` (a
//! `std::thread::sleep` in the shared session) blocks that worker and every task queued on it:
//! what blocking in async code does, on purpose. Nothing here special-cases it.
//!
//! Idle connections (`--idle-timeout`): each task has one `Sleep` on tokio's timer wheel, raced
//! against every read and write, and pushed back when a request completes. Pushing a deadline
//! later moves no entry in tokio's wheel (it moves only when the old deadline comes round), but
//! it is not free: a clock read, a clone and drop of the runtime handle (two atomic
//! read-modify-writes) and a compare-and-swap per request, and no system call or lock; a
//! connection that completes nothing until the deadline is dropped (closed).
//!
//! Stopping: a oneshot tells the accept task to stop; it aborts every connection task (a
//! `JoinSet`) and waits until each has been dropped, closing its socket, then returns, closing
//! the listener. Dropping the runtime then joins its worker threads.

use std::io;
use std::net::TcpListener as StdListener;
use std::pin::Pin;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Sleep;

use super::contract::{Model, RunningServer, ServerConfig, Threads};
use super::parts::conns::READ_BUF;
use crate::protocol::{Flow, Protocol, Session};

pub const MODEL: Model = Model {
    name: "tokio",
    summary: "the tokio multi-thread runtime, one task per connection",
    example: "most Rust network services (hyper, axum, tonic)",
    threads: Threads::Count("runtime worker threads"),
    start,
    ..Model::BASE
};

/// Pause before retrying an accept that failed for a reason other than the one connection
/// (EMFILE and the like: the connection waits in the backlog meanwhile).
const ACCEPT_RETRY: Duration = Duration::from_millis(10);

struct Tokio {
    runtime: Runtime,
    stop: oneshot::Sender<()>,
    acceptor: JoinHandle<()>,
}

fn start(listener: StdListener, config: &ServerConfig) -> io::Result<Box<dyn RunningServer>> {
    listener.set_nonblocking(true)?;
    // Worker threads are spawned here, by the calling thread, so they inherit its CPU affinity
    // and its blocked signals (see serve.rs).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.threads.max(1))
        .thread_name("tokio-worker")
        .enable_io()
        // The idle timeout, and the pause between failed accepts.
        .enable_time()
        .build()?;
    let listener = {
        let _context = runtime.enter();
        TcpListener::from_std(listener)?
    };
    let (stop, stopped) = oneshot::channel();
    let acceptor = runtime.spawn(accept_loop(
        listener,
        config.protocol.clone(),
        config.idle_timeout(),
        stopped,
    ));
    Ok(Box::new(Tokio {
        runtime,
        stop,
        acceptor,
    }))
}

impl RunningServer for Tokio {
    fn stop(self: Box<Self>) -> io::Result<()> {
        let Tokio {
            runtime,
            stop,
            acceptor,
        } = *self;
        // An error means the accept task has already ended (it panicked): the join reports it.
        let _ = stop.send(());
        let accepted = runtime.block_on(acceptor);
        // Every task has ended; this joins the worker threads (and would drop any task left).
        drop(runtime);
        accepted.map_err(|e| io::Error::other(format!("the tokio accept task failed: {e}")))
    }
}

/// Accepts until told to stop, one task per connection; then aborts every connection task and
/// waits until each is gone (its socket closed), and returns (closing the listener).
async fn accept_loop(
    listener: TcpListener,
    protocol: Protocol,
    idle_timeout: Option<Duration>,
    mut stop: oneshot::Receiver<()>,
) {
    let mut conns = JoinSet::new();
    // Whether the last accept failed: a shortage (EMFILE) is reported once, not every retry.
    let mut failing = false;
    loop {
        tokio::select! {
            biased;
            _ = &mut stop => break,
            // Reaps finished connections, so the set holds only live ones.
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    failing = false;
                    conns.spawn(serve(stream, protocol.session(), idle_timeout));
                }
                // These concern the one connection: go on with the rest.
                Err(e) if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionAborted
                        | io::ErrorKind::ConnectionReset
                        | io::ErrorKind::Interrupted
                ) => {}
                Err(e) => {
                    if !failing {
                        eprintln!("accept failed, retrying every 10 ms: {e}");
                        failing = true;
                    }
                    tokio::time::sleep(ACCEPT_RETRY).await;
                }
            },
        }
    }
    conns.shutdown().await;
}

/// Serves one connection until the peer closes it, an error occurs, the protocol says close, or
/// it completes no request for `idle_timeout`. Each reply is written completely before the
/// next read, so at EOF nothing is left to write.
async fn serve(
    mut stream: TcpStream,
    mut session: Session,
    idle_timeout: Option<Duration>,
) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf = vec![0u8; READ_BUF];
    let mut out = Vec::with_capacity(READ_BUF);
    let mut idle = idle_timeout.map(|t| Box::pin(tokio::time::sleep(t)));
    let mut seen = 0;
    loop {
        // Biased: a read or write that is ready goes first, and the timer is not even polled.
        let n = tokio::select! {
            biased;
            read = stream.read(&mut buf) => read?,
            () = expired(&mut idle) => return Ok(()),
        };
        if n == 0 {
            return Ok(());
        }
        let mut flow = session.on_data(&buf[..n], &mut out);
        loop {
            tokio::select! {
                biased;
                written = stream.write_all(&out) => written?,
                () = expired(&mut idle) => return Ok(()),
            }
            out.clear();
            if flow == Flow::Close {
                return Ok(());
            }
            // A read whose answers are more than a batch: the rest, once these are written.
            if !session.unanswered() {
                break;
            }
            flow = session.on_data(&[], &mut out);
        }
        if let (Some(sleep), Some(timeout)) = (&mut idle, idle_timeout) {
            let completed = session.completed();
            if completed != seen {
                seen = completed;
                sleep.as_mut().reset(tokio::time::Instant::now() + timeout);
            }
        }
    }
}

/// Completes when the connection's idle deadline passes; never without a timeout.
async fn expired(idle: &mut Option<Pin<Box<Sleep>>>) {
    match idle {
        Some(sleep) => sleep.as_mut().await,
        None => std::future::pending().await,
    }
}
