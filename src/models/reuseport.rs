//! `reuseport`: `--threads` independent reactors, each accepting on its own SO_REUSEPORT
//! listener bound to the same port.
//!
//! nginx's workers without `accept_mutex`: the kernel spreads incoming connections over the
//! listeners by a hash of the connection's addresses, so no thread hands connections to
//! another and no lock is shared; each reactor is the single-thread `reactor` loop. Good: it
//! scales with cores and keeps a connection on one thread for life. Bad: the spread is by hash,
//! not by load, so with few connections a reactor can get more than its share while another
//! idles, and a slow handler still stalls every connection of its reactor.

use std::io;
use std::net::TcpListener;

#[cfg(unix)]
use socket2::{Domain, Protocol as Proto, Socket, Type};

use super::event_loop::Loop;
#[cfg(not(unix))]
use super::REUSE_PORT_MISSING;
use super::{reuse_port_available, Model, RunningServer, ServerConfig, Threads};

pub const MODEL: Model = Model {
    name: "reuseport",
    summary: "N independent reactors, each accepting on its own SO_REUSEPORT listener",
    example: "nginx workers (without accept_mutex)",
    threads: Threads::Count("reactors"),
    reuse_port: true,
    pollers: &[],
    uring_options: false,
    availability: reuse_port_available,
    start,
};

struct ReusePort(Vec<Loop>);

fn start(listener: TcpListener, config: &ServerConfig) -> io::Result<Box<dyn RunningServer>> {
    let listeners = reuseport_group(listener, config.threads)?;
    let mut loops = Vec::with_capacity(listeners.len());
    for (i, l) in listeners.into_iter().enumerate() {
        match Loop::spawn(
            format!("reactor-{i}"),
            Some(l),
            &config.protocol,
            config.idle_timeout(),
        ) {
            Ok(l) => loops.push(l),
            Err(e) => {
                let _ = Loop::stop_all(loops);
                return Err(e);
            }
        }
    }
    Ok(Box::new(ReusePort(loops)))
}

/// `listener` (bound by `serve` with SO_REUSEPORT) and `count - 1` siblings on its port: one
/// listener per event loop.
pub(super) fn reuseport_group(listener: TcpListener, count: usize) -> io::Result<Vec<TcpListener>> {
    let addr = listener.local_addr()?;
    let mut listeners = vec![listener];
    for _ in 1..count.max(1) {
        listeners.push(sibling(addr)?);
    }
    Ok(listeners)
}

/// Another listener on `addr`, in the same SO_REUSEPORT group as the one `serve` bound.
#[cfg(unix)]
pub(super) fn sibling(addr: std::net::SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Proto::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    socket.listen(crate::serve::BACKLOG)?;
    Ok(socket.into())
}

/// No SO_REUSEPORT here (the models that need it are unavailable, see `reuse_port_available`).
#[cfg(not(unix))]
pub(super) fn sibling(_: std::net::SocketAddr) -> io::Result<TcpListener> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        REUSE_PORT_MISSING,
    ))
}

impl RunningServer for ReusePort {
    fn stop(self: Box<Self>) -> io::Result<()> {
        Loop::stop_all(self.0)
    }

    fn connections_per_loop(&self) -> Option<Vec<u64>> {
        Some(self.0.iter().map(Loop::connections).collect())
    }
}
