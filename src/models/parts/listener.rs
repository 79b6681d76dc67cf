//! Listening sockets: the one `bench serve` binds for a model, and the SO_REUSEPORT siblings
//! the models with one listener per thread add beside it (`reuseport`, `proactor-emulated`,
//! `proactor-uring --uring-listener per-thread`).

use std::io;
use std::net::{SocketAddr, TcpListener};

use anyhow::Context;
use socket2::{Domain, Protocol as Proto, Socket, Type};

use crate::Error;

/// A connection backlog that a burst of 10,000 connects does not overflow (capped by the
/// kernel's `net.core.somaxconn`).
pub const BACKLOG: i32 = 4096;

/// Binds a listening socket with SO_REUSEADDR (and SO_REUSEPORT when asked) and a deep
/// backlog; port 0 picks a free port.
pub fn bind(addr: SocketAddr, reuse_port: bool) -> anyhow::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Proto::TCP))
        .context("cannot create a listening socket")?;
    // On Unix SO_REUSEADDR only lets a restarted server bind past TIME_WAIT; on Windows it
    // would let this socket steal a port another process listens on (so "port in use" would
    // go unnoticed), hence not there.
    #[cfg(unix)]
    socket
        .set_reuse_address(true)
        .context("cannot set SO_REUSEADDR")?;
    if reuse_port {
        #[cfg(unix)]
        socket
            .set_reuse_port(true)
            .context("cannot set SO_REUSEPORT")?;
        #[cfg(not(unix))]
        anyhow::bail!(Error::Environment(
            "SO_REUSEPORT (several listeners sharing a port, the kernel spreading connections \
             over them) is not available on this platform"
                .into()
        ));
    }
    socket.bind(&addr.into()).map_err(|e| {
        let fix = if e.kind() == std::io::ErrorKind::AddrInUse {
            format!("port {} is in use: pick another with --listen 127.0.0.1:PORT, or port 0 for a free one", addr.port())
        } else {
            format!("check the address given to --listen ({e})")
        };
        Error::Environment(format!("cannot listen on {addr}: {fix}"))
    })?;
    socket
        .listen(BACKLOG)
        .with_context(|| format!("cannot listen on {addr}"))?;
    Ok(socket.into())
}

/// Why a model built on SO_REUSEPORT listeners cannot run here.
const REUSE_PORT_MISSING: &str = "it needs SO_REUSEPORT listeners that share a port with the \
    kernel spreading connections over them, which this platform lacks (Linux has them)";

/// For models that give each thread its own SO_REUSEPORT listener: Linux only (other systems
/// either lack the option or do not spread connections over the listeners).
pub(crate) fn reuse_port_available() -> Result<(), String> {
    if cfg!(target_os = "linux") {
        Ok(())
    } else {
        Err(REUSE_PORT_MISSING.into())
    }
}

/// `listener` (bound by `serve` with SO_REUSEPORT) and `count - 1` siblings on its port: one
/// listener per event loop.
pub(crate) fn reuseport_group(listener: TcpListener, count: usize) -> io::Result<Vec<TcpListener>> {
    let addr = listener.local_addr()?;
    let mut listeners = vec![listener];
    for _ in 1..count.max(1) {
        listeners.push(sibling(addr)?);
    }
    Ok(listeners)
}

/// Another listener on `addr`, in the same SO_REUSEPORT group as the one `serve` bound.
#[cfg(unix)]
fn sibling(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Proto::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// No SO_REUSEPORT here (the models that need it are unavailable, see `reuse_port_available`).
#[cfg(not(unix))]
fn sibling(_: SocketAddr) -> io::Result<TcpListener> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        REUSE_PORT_MISSING,
    ))
}
