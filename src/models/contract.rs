//! The model contract: how a server built on one I/O concurrency model plugs into the harness.
//!
//! A model is a [`Model`] value in [`MODELS`](super::MODELS). Adding one is a new file in the
//! models folder that defines `pub const MODEL: Model = Model { name, summary, .., start,
//! ..Model::BASE }`, spelling only what differs from [`Model::BASE`], plus one line in
//! [`MODELS`](super::MODELS) (and its `mod` line).
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
//!   system call or timer operation per request for it (see `parts/idle.rs`).

use std::fmt;
use std::io;
use std::net::TcpListener;
use std::str::FromStr;

use super::proactor_uring::options::{UringOptions, UringSetup};
use crate::protocol::Protocol;

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
    /// `--threads` caps the connections it serves at once: each thread keeps one connection
    /// until it closes, so live connections past the thread count wait unserved, by design
    /// (`threadpool`). `bench run` then says so in the result instead of leaving the starved
    /// connections unexplained.
    pub threads_cap_live_connections: bool,
    /// `Err(reason)` when the model cannot run here.
    pub availability: fn() -> Result<(), String>,
    pub start: fn(TcpListener, &ServerConfig) -> io::Result<Box<dyn RunningServer>>,
}

impl Model {
    /// The defaults a model spells with `..Model::BASE`: runs anywhere, one plain listener,
    /// no poller, no io_uring options, serves every connection. `name`, `summary`, `example`,
    /// `threads` and `start` are placeholders every model replaces.
    pub const BASE: Model = Model {
        name: "",
        summary: "",
        example: "",
        threads: Threads::One,
        reuse_port: false,
        pollers: &[],
        uring_options: false,
        threads_cap_live_connections: false,
        availability: always_available,
        start: no_start,
    };

    /// Fails with exit code 3 and the reason when the model cannot run here.
    pub fn ensure_available(&self) -> Result<(), crate::Error> {
        (self.availability)().map_err(|why| {
            crate::Error::Environment(format!("model `{}` cannot run here: {why}", self.name))
        })
    }
}

/// [`Model::BASE`]'s `start`: every model replaces it.
fn no_start(_: TcpListener, _: &ServerConfig) -> io::Result<Box<dyn RunningServer>> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "this model does not define `start`",
    ))
}

/// For models that run anywhere std's blocking sockets and mio (epoll, kqueue, or Windows'
/// AFD poll) do.
fn always_available() -> Result<(), String> {
    Ok(())
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
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
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
    /// Every poller, in the order `--help` lists them.
    pub const ALL: &'static [Poller] = &[Poller::Epoll, Poller::Poll, Poller::Select];

    pub fn name(self) -> &'static str {
        match self {
            Poller::Epoll => "epoll",
            Poller::Poll => "poll",
            Poller::Select => "select",
        }
    }

    /// One line for `--help`: what waiting with it costs.
    pub fn help(self) -> &'static str {
        match self {
            Poller::Epoll => {
                "epoll through mio, edge-triggered: the cost of a wait grows with the ready events"
            }
            Poller::Poll => {
                "poll(2), level-triggered: the whole descriptor array goes to the kernel on every \
                 wait"
            }
            Poller::Select => {
                "select(2), level-triggered: bit sets rebuilt on every wait, descriptors below \
                 FD_SETSIZE (1024) only"
            }
        }
    }
}

impl fmt::Display for Poller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Poller {
    type Err = String;

    /// A poller by its name; the error names the choices.
    fn from_str(s: &str) -> Result<Self, String> {
        Poller::ALL
            .iter()
            .copied()
            .find(|p| p.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Poller::ALL.iter().map(|p| p.name()).collect();
                format!(
                    "invalid value '{s}' [possible values: {}]",
                    names.join(", ")
                )
            })
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

#[cfg(test)]
mod tests {
    use super::Poller;

    #[test]
    fn poller_names_parse_back_and_a_bad_one_names_the_choices() {
        for &p in Poller::ALL {
            assert_eq!(p.name().parse::<Poller>(), Ok(p));
            assert_eq!(p.to_string(), p.name());
        }
        assert_eq!(
            Poller::ALL[0],
            Poller::default(),
            "the default is listed first"
        );
        let e = "kqueue".parse::<Poller>().unwrap_err();
        assert!(e.contains("epoll, poll, select"), "{e}");
    }
}
