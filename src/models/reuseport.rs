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

use super::contract::{Model, RunningServer, ServerConfig, Threads};
use super::parts::listener::{reuse_port_available, reuseport_group};
use super::parts::mio_loop::Loop;

pub const MODEL: Model = Model {
    name: "reuseport",
    summary: "N independent reactors, each accepting on its own SO_REUSEPORT listener",
    example: "nginx workers (without accept_mutex)",
    threads: Threads::Count("reactors"),
    reuse_port: true,
    availability: reuse_port_available,
    start,
    ..Model::BASE
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

impl RunningServer for ReusePort {
    fn stop(self: Box<Self>) -> io::Result<()> {
        Loop::stop_all(self.0)
    }

    fn connections_per_loop(&self) -> Option<Vec<u64>> {
        Some(self.0.iter().map(Loop::connections).collect())
    }
}
