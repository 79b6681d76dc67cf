//! What the blocking models share: the serving loop of one connection on one thread, and a
//! registry of live connections so that `stop` can wake every thread blocked in `read`.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::protocol::{Flow, Protocol};

/// Read buffer of one blocking connection. Tomcat's BIO connector reads 8 KiB at a time; 16 KiB
/// keeps a 1 MiB echo at 64 reads.
pub(super) const READ_BUF: usize = 16 * 1024;

/// Stack of a connection thread: the handler is shallow, and 10,000 threads with the default
/// 2 MiB would reserve 20 GB of address space.
pub(super) const THREAD_STACK: usize = 256 * 1024;

/// Serves one connection until the peer closes it, an error occurs, or the protocol says close.
pub(super) fn serve_stream(mut stream: &TcpStream, protocol: &Protocol) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut session = protocol.session();
    let mut buf = vec![0u8; READ_BUF];
    let mut out = Vec::with_capacity(READ_BUF);
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let flow = session.on_data(&buf[..n], &mut out);
        stream.write_all(&out)?;
        out.clear();
        if flow == Flow::Close {
            return Ok(());
        }
    }
}

/// Live connections by id, so that [`Registry::close_all`] can shut each one down and every
/// thread blocked in `read` on it returns. The registry shares each socket with its thread
/// (an `Arc`, not a `dup`): one descriptor per connection, as in the servers it stands for.
#[derive(Default)]
pub(super) struct Registry {
    stopping: AtomicBool,
    next_id: AtomicU64,
    live: Mutex<HashMap<u64, Arc<TcpStream>>>,
}

impl Registry {
    /// Records a connection; `None` when the server is stopping (the caller drops it).
    pub(super) fn add(&self, stream: &Arc<TcpStream>) -> Option<u64> {
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        if self.stopping() {
            return None;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        live.insert(id, stream.clone());
        Some(id)
    }

    pub(super) fn remove(&self, id: u64) {
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }

    pub(super) fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Marks the server stopping, wakes the acceptor and every connection thread.
    pub(super) fn close_all(&self, listener: &TcpListener) {
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        self.stopping.store(true, Ordering::Release);
        for stream in live.values() {
            crate::sys::wake_blocked_stream(stream);
        }
        drop(live);
        // Wakes the acceptor; if this failed, the listener is unusable anyway and its thread
        // returns on the next accept error.
        let _ = crate::sys::wake_acceptor(listener);
    }
}

/// After a blocking `accept` failed (EMFILE and the like: the connection waits in the backlog
/// until a descriptor is free): says so once per run of failures, and sleeps before the retry.
pub(super) fn accept_backoff(e: &io::Error, failing: &mut bool) {
    if !*failing {
        eprintln!("accept failed, retrying every 10 ms: {e}");
        *failing = true;
    }
    std::thread::sleep(super::event_loop::ACCEPT_RETRY);
}

/// Accepts until the registry is stopping, handing each connection to `dispatch`.
pub(super) fn accept_loop(
    listener: &TcpListener,
    registry: &Registry,
    mut dispatch: impl FnMut(Arc<TcpStream>),
) {
    // Whether the last accept failed: a shortage (EMFILE) is reported once, not every retry.
    let mut failing = false;
    loop {
        match listener.accept() {
            Ok((stream, _)) if !registry.stopping() => {
                failing = false;
                dispatch(Arc::new(stream))
            }
            Ok(_) => return,
            Err(_) if registry.stopping() => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => accept_backoff(&e, &mut failing),
        }
    }
}
