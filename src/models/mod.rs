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
//!   never started (see `bench models`);
//! - a model that waits on a readiness poller lists the ones it can use in [`Model::pollers`]
//!   and honours `config.poller`; the others list none and never see `--poller`;
//! - likewise only a model with [`Model::uring_options`] sees `--uring-*` (`config.uring`);
//! - a connection that completes no request for `config.idle_timeout` is closed, with no
//!   system call or timer operation per request for it (see `idle.rs`).

mod blocking;
mod conns;
mod event_loop;
pub mod idle;
mod multi_reactor;
mod proactor_emulated;
mod proactor_iocp;
mod proactor_uring;
mod reactor;
#[cfg(unix)]
mod reactor_level;
mod reactor_pool;
mod reuseport;
mod threadpool;
mod tokio_rt;

use std::io;
use std::net::TcpListener;

use crate::protocol::Protocol;

pub use proactor_uring::{UringListener, UringOptions, UringSetup, REFUSE_ENV as URING_REFUSE_ENV};
pub use proactor_uring::{RECV_ENV as URING_RECV_ENV, SETUP_ENV as URING_SETUP_ENV, ZC_MIN_BYTES};

/// Every model this build knows, in the order `bench run --all` runs them.
pub const MODELS: &[Model] = &[
    blocking::MODEL,
    threadpool::MODEL,
    reactor::MODEL,
    multi_reactor::MODEL,
    reactor_pool::MODEL,
    reuseport::MODEL,
    proactor_uring::MODEL,
    proactor_iocp::MODEL,
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
    /// The readiness pollers it can wait with (`--poller`), the default first; empty when it
    /// waits on none (`--poller` does not apply to it).
    pub pollers: &'static [Poller],
    /// It takes the io_uring experiment options (`--uring-sqpoll`, `--uring-zc`,
    /// `--uring-listener`).
    pub uring_options: bool,
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

/// The readiness poller of a reactor (`--poller`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Poller {
    /// epoll through mio, edge-triggered: the cost of a wait grows with the ready events.
    #[default]
    Epoll,
    /// poll(2), level-triggered: the whole descriptor array goes to the kernel on every wait.
    Poll,
    /// select(2), level-triggered: bit sets rebuilt on every wait, descriptors below
    /// FD_SETSIZE (1024) only.
    Select,
}

impl Poller {
    pub fn name(self) -> &'static str {
        match self {
            Poller::Epoll => "epoll",
            Poller::Poll => "poll",
            Poller::Select => "select",
        }
    }
}

/// select(2)'s fd_set holds descriptors 0 to FD_SETSIZE - 1 and no more.
#[cfg(unix)]
pub const FD_SETSIZE: usize = libc::FD_SETSIZE;
/// Winsock's default FD_SETSIZE (the select poller is not offered on Windows).
#[cfg(not(unix))]
pub const FD_SETSIZE: usize = 64;

/// Descriptors a `bench serve` process holds besides its connections (stdio, the listener,
/// the reactor's wake-up descriptor, a counters snapshot's /proc files), with room to spare.
pub const SERVER_OWN_FDS: usize = 16;

/// The most connections `--poller select` can serve: every descriptor must stay below
/// FD_SETSIZE.
pub const SELECT_MAX_CONNECTIONS: usize = FD_SETSIZE - SERVER_OWN_FDS;

/// How a model serves: the protocol and handler cost, its parallelism, its poller.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub protocol: Protocol,
    /// `--threads`, already defaulted to the number of server CPUs.
    pub threads: usize,
    /// `--poller`; models whose [`Model::pollers`] is empty ignore it.
    pub poller: Poller,
    /// The server's CPUs (`--cpus`), for models that pin each of their threads to one.
    pub cpus: Option<Vec<usize>>,
    /// `--uring-*`; only models with [`Model::uring_options`] read it.
    pub uring: UringOptions,
    /// `--idle-timeout`: close a connection that completed no request for this long; `None`
    /// (or zero) never.
    pub idle_timeout: Option<std::time::Duration>,
}

impl ServerConfig {
    /// The idle timeout in force, `None` for never.
    pub fn idle_timeout(&self) -> Option<std::time::Duration> {
        self.idle_timeout.filter(|t| !t.is_zero())
    }
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

    /// For `proactor-uring`: how its rings were set up (what the kernel accepted).
    fn io_uring(&self) -> Option<UringSetup> {
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

    /// The poller this model runs with when `--poller` is `requested`. Without `--poller`: the
    /// model's default, or `None` for a model that waits on no poller. With it: that poller, or
    /// a usage error (exit code 2) naming the fix when the model cannot use it.
    pub fn poller(&self, requested: Option<Poller>) -> Result<Option<Poller>, crate::Error> {
        match (requested, self.pollers.first()) {
            (None, default) => Ok(default.copied()),
            (Some(p), _) if self.pollers.contains(&p) => Ok(Some(p)),
            (Some(p), None) => Err(crate::Error::Usage(format!(
                "--poller {} does not apply to model `{}`, which waits on no readiness poller: \
                 drop --poller, or use it with {}",
                p.name(),
                self.name,
                poller_models().join(", ")
            ))),
            (Some(p), Some(_)) => Err(crate::Error::Usage(format!(
                "model `{}` cannot use --poller {}: choose one of {}",
                self.name,
                p.name(),
                self.pollers
                    .iter()
                    .map(|p| p.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
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

/// The names of the models that take `--poller`.
pub fn poller_models() -> Vec<&'static str> {
    MODELS
        .iter()
        .filter(|m| !m.pollers.is_empty())
        .map(|m| m.name)
        .collect()
}

/// Stops a model's threads together: every one is asked first (`signal`), then each is
/// joined (`join`); the first error wins.
fn stop_all<T>(
    threads: Vec<T>,
    signal: impl Fn(&T) -> io::Result<()>,
    mut join: impl FnMut(T) -> io::Result<()>,
) -> io::Result<()> {
    let mut first_error = None;
    for t in &threads {
        if let Err(e) = signal(t) {
            first_error.get_or_insert(e);
        }
    }
    for t in threads {
        if let Err(e) = join(t) {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// For models that run anywhere std's blocking sockets and mio (epoll, kqueue, or Windows'
/// AFD poll) do.
fn always_available() -> Result<(), String> {
    Ok(())
}

/// Why a model built on SO_REUSEPORT listeners cannot run here.
const REUSE_PORT_MISSING: &str = "it needs SO_REUSEPORT listeners that share a port with the \
    kernel spreading connections over them, which this platform lacks (Linux has them)";

/// For models that give each thread its own SO_REUSEPORT listener: Linux only (other systems
/// either lack the option or do not spread connections over the listeners).
fn reuse_port_available() -> Result<(), String> {
    if cfg!(target_os = "linux") {
        Ok(())
    } else {
        Err(REUSE_PORT_MISSING.into())
    }
}

/// clap value parser for `--model`: any known model name.
pub fn parse_model(name: &str) -> Result<&'static Model, String> {
    Model::by_name(name).map_err(|e| e.to_string())
}
