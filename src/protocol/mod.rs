//! The wire protocols and the request handler that every model shares.
//!
//! A model moves bytes; what the bytes mean is decided here, identically for every model:
//! a model reads whatever arrived into a buffer, hands it to its connection's [`Session`], and
//! writes back what the session appended to the output buffer, in order. The session applies the
//! handler's cost ([`Cost`]: `--work-us`, `--block-us`) once per request.

pub mod command;
pub mod cost;
pub mod echo;
pub mod http;
pub mod memcache;
pub mod preset;
pub mod resp;

use serde::Serialize;

pub use command::CommandSession;
pub use cost::Cost;
pub use echo::EchoSession;
pub use http::HttpSession;

/// The most reply bytes one [`Session::on_data`] call appends, give or take one response:
/// past it, an HTTP session keeps the requests left for the next call
/// ([`Session::unanswered`]). With the models' 64 KiB reads and 64 KiB reply high-water mark,
/// a connection's memory stays bounded whatever its requests' size (Netty's default
/// write-buffer high-water mark is 64 KiB too). An echo reply is its read, never larger.
pub const REPLY_BATCH: usize = 32 * 1024;

/// The preset key's value size of `resp` and `memcache` when the server is not told.
pub const DEFAULT_VALUE: usize = 64;

/// The workload a server speaks and a client drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    /// TCP echo: every byte received is sent back.
    Echo,
    /// HTTP/1.1 keep-alive, `GET /plaintext` answered like the TechEmpower plaintext test.
    Http,
    /// Redis's protocol: a `GET` of a preset key (`PING` with a payload of 0).
    Resp,
    /// memcached's text protocol: a `get` of a preset key.
    Memcache,
}

impl Workload {
    /// Every workload, in the order `--help` lists them.
    pub const ALL: &'static [Workload] = &[
        Workload::Echo,
        Workload::Http,
        Workload::Resp,
        Workload::Memcache,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Workload::Echo => "echo",
            Workload::Http => "http",
            Workload::Resp => "resp",
            Workload::Memcache => "memcache",
        }
    }
}

impl std::fmt::Display for Workload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Workload {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Workload::ALL
            .iter()
            .copied()
            .find(|w| w.name() == s)
            .ok_or_else(|| format!("unknown workload `{s}`: write echo, http, resp or memcache"))
    }
}

/// What a model should do with a connection after a session consumed its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Write the output, keep reading.
    Continue,
    /// Write the output, then close the connection.
    Close,
}

/// Everything a model needs to build sessions: the workload and the handler's cost.
#[derive(Clone, Debug)]
pub struct Protocol {
    pub workload: Workload,
    /// Size of one echo request in bytes, so that the cost is charged once per request; `None`
    /// charges it once per read (an outside echo client's message size is unknown). For
    /// `resp` and `memcache`: the preset key's value size (`None`: [`DEFAULT_VALUE`]).
    pub message_size: Option<usize>,
    pub cost: Cost,
}

impl Protocol {
    /// A fresh per-connection session.
    pub fn session(&self) -> Session {
        match self.workload {
            Workload::Echo => Session::Echo(EchoSession::new(self.message_size, self.cost.clone())),
            Workload::Http => Session::Http(HttpSession::new(self.cost.clone())),
            Workload::Resp | Workload::Memcache => {
                let dialect = match self.workload {
                    Workload::Resp => preset::Dialect::Resp,
                    _ => preset::Dialect::Memcache,
                };
                let value = preset::value(self.message_size.unwrap_or(DEFAULT_VALUE));
                Session::Command(CommandSession::new(
                    dialect,
                    value.into(),
                    self.cost.clone(),
                ))
            }
        }
    }
}

/// One connection's protocol state. An enum rather than a trait object: no allocation per
/// connection and no indirect call per read.
#[derive(Debug)]
pub enum Session {
    Echo(EchoSession),
    Http(HttpSession),
    /// `resp` and `memcache`.
    Command(CommandSession),
}

impl Session {
    /// Consumes all of `input`, appending the reply bytes to `out`: at most about
    /// [`REPLY_BATCH`] of them; what is left to answer waits in the session
    /// ([`unanswered`](Session::unanswered)).
    #[inline]
    pub fn on_data(&mut self, input: &[u8], out: &mut Vec<u8>) -> Flow {
        match self {
            Session::Echo(s) => s.on_data(input, out),
            Session::Http(s) => s.on_data(input, out),
            Session::Command(s) => s.on_data(input, out),
        }
    }

    /// Whether the last [`on_data`](Session::on_data) left requests unanswered (it stopped at
    /// [`REPLY_BATCH`]). A model then writes what it has, and calls `on_data` again with no new
    /// input, before it reads more, as long as its reply backlog leaves room. No new bytes
    /// will announce the held requests: a model that waits for readiness must not wait.
    #[inline]
    pub fn unanswered(&self) -> bool {
        match self {
            Session::Echo(_) => false,
            Session::Http(s) => s.unanswered(),
            Session::Command(s) => s.unanswered(),
        }
    }

    /// Requests completed so far: HTTP requests answered, echo messages of the known size (or
    /// reads, without one). The idle timeout watches it move (`models/parts/idle.rs`).
    #[inline]
    pub fn completed(&self) -> u64 {
        match self {
            Session::Echo(s) => s.completed(),
            Session::Http(s) => s.completed(),
            Session::Command(s) => s.completed(),
        }
    }

    /// When the reply to `input` is `input` itself (echo), consumes it as [`on_data`] would,
    /// without copying it, and returns the flow: the model then sends the reply straight from
    /// its receive buffer (a proactor with provided buffers). `None`, with nothing consumed,
    /// when the reply must be built with [`on_data`].
    ///
    /// [`on_data`]: Session::on_data
    #[inline]
    pub fn reply_in_place(&mut self, input: &[u8]) -> Option<Flow> {
        match self {
            Session::Echo(s) => Some(s.consume(input)),
            Session::Http(_) | Session::Command(_) => None,
        }
    }
}
