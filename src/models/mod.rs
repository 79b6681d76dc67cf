//! The model contract: how a server built on one I/O concurrency model plugs into the harness.
//!
//! A model is a [`Model`] value in [`MODELS`]. Adding one is a new file in this folder that
//! defines `pub const MODEL: Model` plus one line in [`MODELS`] (and its `mod` line).
//!
//! What every model promises:
//! - [`Model::start`] takes a bound, listening `std::net::TcpListener` and a [`ServerConfig`],
//!   spawns the model's threads, and returns at once with a [`RunningServer`];
//! - each accepted connection gets TCP_NODELAY and its own [`Session`](crate::protocol::Session)
//!   from `config.protocol`, which decides every reply: the model only moves bytes. Replies are
//!   written in order and completely (short writes continue where they stopped);
//! - a connection that fails or closes is dropped without disturbing the others;
//! - [`RunningServer::stop`] makes every thread of the model return, closes every socket (the
//!   listener included) and joins the threads before it returns;
//! - a model that cannot run on this machine says why in [`Model::availability`]; it is then
//!   never started (see `bench models`).

mod blocking;
mod conns;
mod event_loop;
mod multi_reactor;
mod proactor_emulated;
mod reactor;
mod reuseport;
mod threadpool;
mod tokio_rt;

use std::io;
use std::net::TcpListener;

use crate::protocol::Protocol;

/// Every model this build knows, in the order `bench run --all` runs them.
pub const MODELS: &[Model] = &[
    blocking::MODEL,
    threadpool::MODEL,
    reactor::MODEL,
    multi_reactor::MODEL,
    reuseport::MODEL,
    proactor_emulated::MODEL,
    tokio_rt::MODEL,
];

/// One I/O concurrency model.
#[derive(Debug)]
pub struct Model {
    /// The name used on the command line and in result files.
    pub name: &'static str,
    /// One line: how bytes move.
    pub summary: &'static str,
    /// The best-known real-world server built this way.
    pub example: &'static str,
    /// What `--threads N` means for this model.
    pub threads: Threads,
    /// The listener `start` receives has SO_REUSEPORT set, so the model can bind more sockets
    /// to the same port (nginx-style workers).
    pub reuse_port: bool,
    /// `Err(reason)` when the model cannot run here.
    pub availability: fn() -> Result<(), String>,
    pub start: fn(TcpListener, &ServerConfig) -> io::Result<Box<dyn RunningServer>>,
}

/// What `--threads` means for a model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Threads {
    /// Ignored: one thread per connection.
    PerConnection,
    /// Ignored: always one thread.
    One,
    /// A count of the model's own threads, described by the text (e.g. "pool size").
    Count(&'static str),
}

impl Threads {
    /// The model threads a server runs with, for `requested`; `None` when it depends on the
    /// number of connections.
    pub fn effective(self, requested: usize) -> Option<usize> {
        match self {
            Threads::PerConnection => None,
            Threads::One => Some(1),
            Threads::Count(_) => Some(requested.max(1)),
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Threads::PerConnection => "ignored (one thread per connection)",
            Threads::One => "ignored (always 1)",
            Threads::Count(what) => what,
        }
    }
}

/// How a model serves: the protocol and handler cost, and its parallelism.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub protocol: Protocol,
    /// `--threads`, already defaulted to the number of server CPUs.
    pub threads: usize,
}

/// A started server. Dropping it without [`stop`](RunningServer::stop) leaks its threads.
pub trait RunningServer: Send {
    /// Stops every thread of the model, closes every socket, joins the threads.
    fn stop(self: Box<Self>) -> io::Result<()>;

    /// For models with several event loops: how many connections each has taken on so far,
    /// so that a user (and a test) can see how the load was spread.
    fn connections_per_loop(&self) -> Option<Vec<u64>> {
        None
    }
}

impl Model {
    /// Looks a model up by name; the error lists the valid names.
    pub fn by_name(name: &str) -> Result<&'static Model, crate::Error> {
        MODELS.iter().find(|m| m.name == name).ok_or_else(|| {
            crate::Error::Usage(format!(
                "unknown model `{name}`: choose one of {} (see `bench models`)",
                names().join(", ")
            ))
        })
    }

    /// Fails with exit code 3 and the reason when the model cannot run here.
    pub fn ensure_available(&self) -> Result<(), crate::Error> {
        (self.availability)().map_err(|why| {
            crate::Error::Environment(format!("model `{}` cannot run here: {why}", self.name))
        })
    }
}

/// The names of every model, in order.
pub fn names() -> Vec<&'static str> {
    MODELS.iter().map(|m| m.name).collect()
}

/// For models that run anywhere std's blocking sockets and epoll/kqueue do.
fn always_available() -> Result<(), String> {
    Ok(())
}

/// clap value parser for `--model`: any known model name.
pub fn parse_model(name: &str) -> Result<&'static Model, String> {
    Model::by_name(name).map_err(|e| e.to_string())
}
