//! `reactor`: one thread, non-blocking sockets, one readiness poller (epoll through mio).
//!
//! Redis's shape: one [`Loop`] accepts on the listener and serves every connection. Every
//! handler runs on this one thread, so a slow handler delays every connection: the seeds'
//! central warning about reactors. The loop itself (edge-triggered epoll, short-read rule,
//! backpressure, EOF handling) is in `event_loop.rs`, shared with `reuseport` and
//! `multi-reactor`.

use std::io;
use std::net::TcpListener;

use super::event_loop::Loop;
use super::{always_available, Model, RunningServer, ServerConfig, Threads};

pub const MODEL: Model = Model {
    name: "reactor",
    summary: "one thread, non-blocking sockets, one readiness poller (epoll)",
    example: "Redis (single reactor, single thread)",
    threads: Threads::One,
    reuse_port: false,
    availability: always_available,
    start,
};

struct Reactor(Loop);

fn start(listener: TcpListener, config: &ServerConfig) -> io::Result<Box<dyn RunningServer>> {
    let reactor = Loop::spawn("reactor".into(), Some(listener), &config.protocol)?;
    Ok(Box::new(Reactor(reactor)))
}

impl RunningServer for Reactor {
    fn stop(self: Box<Self>) -> io::Result<()> {
        Loop::stop_all(vec![self.0])
    }
}
