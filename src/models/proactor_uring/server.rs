//! The `proactor-uring` server: one thread per ring, each with its own listener (or a clone
//! of the shared one), started together and stopped together.

use std::io;
use std::net::TcpListener;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use super::options::{UringListener, UringSetup};
use super::worker::{Shared, Worker};
use crate::models::contract::{RunningServer, ServerConfig};
use crate::models::parts::listener::reuseport_group;
use crate::sys;

struct UringServer {
    rings: Vec<Ring>,
    setup: UringSetup,
}

struct Ring {
    shared: Arc<Shared>,
    thread: JoinHandle<io::Result<()>>,
}

pub(super) fn start(
    listener: TcpListener,
    config: &ServerConfig,
) -> io::Result<Box<dyn RunningServer>> {
    let threads = config.threads.max(1);
    let listeners = match config.uring.listener {
        UringListener::PerThread => reuseport_group(listener, threads)?,
        UringListener::Shared => {
            let mut clones = Vec::with_capacity(threads);
            for _ in 1..threads {
                clones.push(listener.try_clone()?);
            }
            clones.insert(0, listener);
            clones
        }
    };
    for l in &listeners {
        // Accepted sockets inherit TCP_NODELAY from the listener: a direct descriptor has no
        // file descriptor to set it on afterwards.
        socket2::SockRef::from(l).set_nodelay(true)?;
    }
    let mut rings = Vec::with_capacity(threads);
    let mut setup = None;
    for (i, l) in listeners.into_iter().enumerate() {
        let cpu = config
            .cpus
            .as_ref()
            .filter(|c| !c.is_empty())
            .map(|c| c[i % c.len()]);
        match Ring::spawn(i, l, cpu, config) {
            Ok((ring, s)) => {
                rings.push(ring);
                setup.get_or_insert(s);
            }
            Err(e) => {
                let _ = stop_all(rings);
                return Err(e);
            }
        }
    }
    let setup = setup.ok_or_else(|| io::Error::other("no ring started"))?;
    Ok(Box::new(UringServer { rings, setup }))
}

impl RunningServer for UringServer {
    fn stop(self: Box<Self>) -> io::Result<()> {
        stop_all(self.rings)
    }

    fn connections_per_loop(&self) -> Option<Vec<u64>> {
        Some(
            self.rings
                .iter()
                .map(|r| r.shared.connections.load(Ordering::Relaxed))
                .collect(),
        )
    }

    fn io_uring(&self) -> Option<UringSetup> {
        Some(self.setup.clone())
    }
}

/// Stops every ring (all asked first, then joined); the first error wins.
fn stop_all(rings: Vec<Ring>) -> io::Result<()> {
    crate::models::parts::stop_all(
        rings,
        |r| {
            r.shared.stop.store(true, Ordering::Release);
            sys::eventfd_signal(r.shared.wake.as_fd())
        },
        |r| {
            r.thread
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("a ring thread panicked")))
        },
    )
}

impl Ring {
    /// Starts ring thread `index`, pinned to `cpu`; returns once its ring is set up (or with
    /// the reason it could not be).
    fn spawn(
        index: usize,
        listener: TcpListener,
        cpu: Option<usize>,
        config: &ServerConfig,
    ) -> io::Result<(Ring, UringSetup)> {
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            wake: sys::eventfd()?,
            connections: AtomicU64::new(0),
        });
        let (tx, rx) = mpsc::sync_channel(1);
        let protocol = config.protocol.clone();
        let options = config.uring;
        let idle_timeout = config.idle_timeout();
        let theirs = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("ring-{index}"))
            .spawn(move || {
                if let Some(cpu) = cpu {
                    if let Err(e) = sys::pin_current_thread(&[cpu]) {
                        let _ = tx.send(Err(io::Error::new(
                            e.kind(),
                            format!("cannot pin ring {index} to CPU {cpu}: {e}"),
                        )));
                        return Ok(());
                    }
                }
                match Worker::new(listener, protocol, options, idle_timeout, theirs) {
                    Ok((worker, setup)) => {
                        let _ = tx.send(Ok(setup));
                        worker.run()
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        Ok(())
                    }
                }
            })?;
        match rx.recv() {
            Ok(Ok(setup)) => Ok((Ring { shared, thread }, setup)),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                Err(io::Error::other("a ring thread died while setting up"))
            }
        }
    }
}
