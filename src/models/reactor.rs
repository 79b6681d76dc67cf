//! `reactor`: one thread, non-blocking sockets, one readiness poller.
//!
//! Redis's shape: one loop accepts on the listener and serves every connection. Every handler
//! runs on this one thread, so a slow handler delays every connection: the seeds' central
//! warning about reactors. With `--poller epoll` (the default) the loop is the edge-triggered
//! mio [`Loop`] of `parts/mio_loop.rs`, shared with `reuseport` and `multi-reactor`; with `poll` or
//! `select` it is the level-triggered loop of `parts/level_loop.rs`.

use std::io;
use std::net::TcpListener;

use super::contract::{Model, Poller, RunningServer, ServerConfig, Threads};
use super::parts::mio_loop::Loop;

pub const MODEL: Model = Model {
    name: "reactor",
    summary: "one thread, non-blocking sockets, one readiness poller (epoll, poll or select; mio's AFD poll on Windows)",
    example: "Redis (single reactor, single thread)",
    threads: Threads::One,
    pollers: POLLERS,
    start,
    ..Model::BASE
};

/// epoll (through mio), poll(2) and select(2). On Windows the loop waits in mio's poller
/// there (AFD polling over a completion port, as wepoll and libuv do), which is no epoll, so
/// it offers no `--poller` choice.
#[cfg(unix)]
const POLLERS: &[Poller] = &[Poller::Epoll, Poller::Poll, Poller::Select];
#[cfg(not(unix))]
const POLLERS: &[Poller] = &[];

struct Reactor(Loop);

fn start(listener: TcpListener, config: &ServerConfig) -> io::Result<Box<dyn RunningServer>> {
    #[cfg(unix)]
    if config.poller != Poller::Epoll {
        return super::parts::level_loop::start(listener, config);
    }
    let reactor = Loop::spawn(
        "reactor".into(),
        Some(listener),
        &config.protocol,
        config.idle_timeout(),
    )?;
    Ok(Box::new(Reactor(reactor)))
}

impl RunningServer for Reactor {
    fn stop(self: Box<Self>) -> io::Result<()> {
        Loop::stop_all(vec![self.0])
    }
}
