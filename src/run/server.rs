//! The server of one pass, whichever it is: a model's `bench serve` child (`child.rs`) or an
//! outside server (`outside.rs`, Linux). One face for what a pass asks of it: its address, its
//! counters at the window's edges, its system calls, whether it is gone, its stop.

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use super::child::ServerProcess;
use super::plan::Placement;
use super::subject::Subject;
use super::RunOptions;
use crate::metrics::process::ProcessCounters;
use crate::models::UringSetup;

pub(super) enum Server {
    Exhibit(ServerProcess),
    #[cfg(target_os = "linux")]
    Outside(super::outside::OutsideProcess),
}

/// A started server and what the run records of how it was started.
pub(super) struct Started {
    pub(super) server: Server,
    /// The thread count the run records (a model's effective count; an outside server's
    /// `{threads}` when its command takes it).
    pub(super) threads: Option<usize>,
    pub(super) io_uring: Option<UringSetup>,
    /// An outside server's command as given.
    pub(super) command: Option<String>,
}

impl Server {
    /// Starts `subject`'s server for one pass (`serve_args`: a model's `bench serve`
    /// arguments).
    pub(super) fn start(
        subject: Subject,
        serve_args: &[String],
        opts: &RunOptions,
        place: &Placement,
        stop: &AtomicBool,
        count: bool,
    ) -> anyhow::Result<Started> {
        let threads = opts.threads.unwrap_or(place.server.len());
        match subject {
            Subject::Model(model) => {
                let server = ServerProcess::spawn_counted(serve_args, stop, count)?;
                Ok(Started {
                    io_uring: server.ready.as_ref().and_then(|r| r.io_uring.clone()),
                    server: Server::Exhibit(server),
                    threads: model.threads.effective(threads),
                    command: None,
                })
            }
            #[cfg(target_os = "linux")]
            Subject::Server(outside) => {
                let port = super::outside::free_port()?;
                let words = outside.words(port, threads, &place.server);
                let process = super::outside::OutsideProcess::spawn(
                    outside,
                    &words,
                    port,
                    &place.server,
                    count,
                    stop,
                )?;
                Ok(Started {
                    server: Server::Outside(process),
                    threads: outside.takes_threads().then_some(threads),
                    io_uring: None,
                    command: Some(outside.command.clone()),
                })
            }
            #[cfg(not(target_os = "linux"))]
            Subject::Server(_) => anyhow::bail!(crate::Error::Environment(
                "--server needs Linux (its process tree is read from /proc)".into()
            )),
        }
    }

    pub(super) fn addr(&self) -> SocketAddr {
        match self {
            Server::Exhibit(s) => s.addr,
            #[cfg(target_os = "linux")]
            Server::Outside(s) => s.addr,
        }
    }

    /// Its counters now, and for a model with several loops the connections each took on.
    pub(super) fn counters(&mut self) -> anyhow::Result<(ProcessCounters, Option<Vec<u64>>)> {
        match self {
            Server::Exhibit(s) => s.counters(),
            #[cfg(target_os = "linux")]
            Server::Outside(s) => Ok((s.counters()?, None)),
        }
    }

    /// Its system calls so far, when counted.
    #[cfg(target_os = "linux")]
    pub(super) fn syscalls(
        &mut self,
    ) -> Option<Result<crate::metrics::syscalls::SyscallCounts, String>> {
        match self {
            Server::Exhibit(s) => s.syscalls(),
            Server::Outside(s) => s.syscalls(),
        }
    }

    /// Why the server is gone before its stop, if it is; `Err`: an outside server that
    /// daemonized, refused.
    pub(super) fn gone(&mut self) -> Result<Option<String>, crate::Error> {
        match self {
            Server::Exhibit(s) => Ok(s.exited().map(|status| {
                format!(
                    "the server exited during the run ({}){}",
                    crate::sys::child::describe(Some(status)),
                    s.stderr_note()
                )
            })),
            #[cfg(target_os = "linux")]
            Server::Outside(s) => s.gone(),
        }
    }

    /// Stops it; `Err` says how the stop was not clean.
    pub(super) fn stop_within(self, grace: Duration) -> Result<(), String> {
        let (status, clean) = match self {
            Server::Exhibit(s) => {
                let status = s.stop_within(grace);
                // A status that cannot be had is not held against the server.
                (status, !status.is_some_and(|s| !s.success()))
            }
            #[cfg(target_os = "linux")]
            Server::Outside(s) => s.stop_within(grace),
        };
        if clean {
            return Ok(());
        }
        Err(format!(
            "the server did not stop cleanly within {} s of SIGTERM ({}; SIGKILL follows the \
             grace period)",
            grace.as_secs(),
            crate::sys::child::describe(status)
        ))
    }
}
