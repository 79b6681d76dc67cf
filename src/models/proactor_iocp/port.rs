//! The completion port of `proactor-iocp` and its threads: the start, the wait for completions
//! and their dispatch, the idle sweep, the stop. The state the threads share and the completion
//! keys are in `shared.rs`, the accept slots in `accept.rs`, the connections in `conn.rs`, the
//! objects handed to the system in `op.rs` (see the parent module for the design).
//!
//! Memory handed to the system: every pending operation's `OVERLAPPED` (and the buffer it
//! reads into or sends from) lives in a heap object that the operation keeps alive. A
//! connection's operations each hold a strong reference to the connection (`Arc::into_raw`
//! when posted, `Arc::from_raw` when its completion is taken), so a connection is freed only
//! once nothing of the system's points into it. Accept slots live as long as the port's shared
//! state, which outlives every thread and, when an operation is still pending after the stop
//! grace, is leaked.

use std::cell::UnsafeCell;
use std::io;
use std::net::TcpListener;
use std::os::windows::io::AsRawSocket;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use slab::Slab;
use windows_sys::Win32::Foundation::{CloseHandle, HANDLE, INVALID_HANDLE_VALUE, WAIT_TIMEOUT};
use windows_sys::Win32::Networking::WinSock::{
    WSAGetOverlappedResult, AF_INET, AF_INET6, INVALID_SOCKET, SOCKET,
};
use windows_sys::Win32::System::Threading::INFINITE;
use windows_sys::Win32::System::IO::{
    CreateIoCompletionPort, GetQueuedCompletionStatusEx, PostQueuedCompletionStatus, OVERLAPPED,
    OVERLAPPED_ENTRY,
};

use super::accept::{load_accept_ex, ACCEPTS};
use super::op::{last_wsa_error, lock, AcceptSlot, Conn, ConnOp, Header, Kind, ADDR_ROOM};
use super::shared::{Shared, IO_KEY, RETRY_KEY, STOP_KEY};
use crate::models::contract::{RunningServer, ServerConfig};
use crate::models::parts::idle::sweep_interval;

/// Completions taken per `GetQueuedCompletionStatusEx`.
const BATCH: usize = 64;
/// How long `stop` waits for the aborted operations to come back before giving up on them.
const STOP_GRACE: Duration = Duration::from_secs(3);

pub(super) struct IocpServer {
    shared: Arc<Shared>,
    /// Keeps the listener open until `stop` closes it.
    listener: Option<TcpListener>,
    threads: Vec<JoinHandle<()>>,
}

pub(super) fn start(
    listener: TcpListener,
    config: &ServerConfig,
) -> io::Result<Box<dyn RunningServer>> {
    let threads = config.threads.max(1);
    let listen_socket = listener.as_raw_socket() as SOCKET;
    let family = if listener.local_addr()?.is_ipv4() {
        AF_INET
    } else {
        AF_INET6
    };
    // SAFETY: creating a new port: no file handle, no existing port.
    let port = unsafe {
        CreateIoCompletionPort(
            INVALID_HANDLE_VALUE,
            std::ptr::null_mut(),
            0,
            threads as u32,
        )
    };
    if port.is_null() {
        return Err(io::Error::last_os_error());
    }
    let fail = |e: io::Error| {
        // SAFETY: the port was created above and nothing else holds it yet.
        unsafe { CloseHandle(port) };
        e
    };
    // SAFETY: the listener socket is open (owned by `listener`); the port is ours.
    if unsafe { CreateIoCompletionPort(listen_socket as HANDLE, port, IO_KEY, 0) }.is_null() {
        return Err(fail(io::Error::last_os_error()));
    }
    let accept_ex = load_accept_ex(listen_socket).map_err(fail)?;
    let slots = (0..ACCEPTS)
        .map(|_| AcceptSlot {
            header: UnsafeCell::new(Header::new(Kind::Accept)),
            socket: UnsafeCell::new(INVALID_SOCKET),
            addresses: UnsafeCell::new([0; 2 * ADDR_ROOM]),
        })
        .collect();
    let shared = Arc::new(Shared {
        port,
        listener: listen_socket,
        family: i32::from(family),
        accept_ex,
        protocol: config.protocol.clone(),
        slots,
        stopping: AtomicBool::new(false),
        outstanding: AtomicUsize::new(0),
        conns: Mutex::new(Slab::new()),
        accept_failing: AtomicBool::new(false),
        idle_timeout: config.idle_timeout().map(|t| (t, sweep_interval(t))),
        next_sweep: Mutex::new(Instant::now()),
    });
    let mut server = IocpServer {
        shared: shared.clone(),
        listener: Some(listener),
        threads: Vec::with_capacity(threads),
    };
    for i in 0..threads {
        let shared = shared.clone();
        let cpu = config.cpus.as_ref().map(|c| c[i % c.len()]);
        let spawned = std::thread::Builder::new()
            .name(format!("iocp-{i}"))
            .spawn(move || {
                if let Some(cpu) = cpu {
                    if let Err(e) = crate::sys::pin_current_thread(&[cpu]) {
                        eprintln!("cannot pin iocp-{i} to CPU {cpu}: {e}");
                    }
                }
                shared.run();
            });
        match spawned {
            Ok(handle) => server.threads.push(handle),
            Err(e) => {
                let _ = Box::new(server).stop();
                return Err(e);
            }
        }
    }
    for slot in shared.slots.iter() {
        shared.post_accept(slot);
    }
    Ok(Box::new(server))
}

impl Shared {
    /// One thread: takes batches of completions until it receives a stop packet. With an idle
    /// timeout, no wait outlasts the sweep interval, and whichever thread finds a sweep due
    /// does it.
    pub(super) fn run(self: &Arc<Self>) {
        let mut entries = [OVERLAPPED_ENTRY::default(); BATCH];
        let wait_ms = self
            .idle_timeout
            .map_or(INFINITE, |(_, every)| every.as_millis().max(1) as u32);
        loop {
            let mut taken = 0u32;
            // SAFETY: `entries` has room for BATCH entries; the port stays open until every
            // thread has been joined.
            let ok = unsafe {
                GetQueuedCompletionStatusEx(
                    self.port,
                    entries.as_mut_ptr(),
                    BATCH as u32,
                    &mut taken,
                    wait_ms,
                    0,
                )
            };
            if ok == 0 {
                let e = io::Error::last_os_error();
                if e.raw_os_error() == Some(WAIT_TIMEOUT as i32) {
                    self.sweep_idle();
                    continue;
                }
                eprintln!("proactor-iocp: GetQueuedCompletionStatusEx failed, thread returns: {e}");
                return;
            }
            let mut stops = 0;
            for entry in &entries[..taken as usize] {
                match entry.lpCompletionKey {
                    STOP_KEY => stops += 1,
                    RETRY_KEY => {
                        // SAFETY: a retry packet carries the address of one of our slots.
                        let slot = unsafe { &*(entry.lpOverlapped as *const AcceptSlot) };
                        self.outstanding.fetch_sub(1, Ordering::AcqRel);
                        self.post_accept(slot);
                    }
                    _ => self.complete(entry),
                }
            }
            if stops > 0 {
                // One packet per thread was posted: pass on those meant for other threads.
                for _ in 1..stops {
                    self.post_stop();
                }
                return;
            }
            self.sweep_idle();
        }
    }

    /// When a sweep is due (and no other thread is doing it): closes every connection that
    /// completed no request for the idle timeout. Closing the socket completes its pending
    /// operations as aborted, and their completions finish it as for any failed connection.
    pub(super) fn sweep_idle(self: &Arc<Self>) {
        let Some((timeout, every)) = self.idle_timeout else {
            return;
        };
        let now = Instant::now();
        {
            let Ok(mut next) = self.next_sweep.try_lock() else {
                return;
            };
            if now < *next || self.stopping.load(Ordering::Acquire) {
                return;
            }
            *next = now + every;
        }
        // Copied out first: a connection's lock is taken before the registry's elsewhere.
        let live: Vec<Arc<Conn>> = {
            let conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
            conns.iter().map(|(_, c)| c.clone()).collect()
        };
        for conn in &live {
            let mut state = lock(&conn.state);
            let completed = state.session.completed();
            if !state.closed && state.idle.expired(completed, now, timeout) {
                self.close(conn, &mut state);
                self.forget_if_idle(&state);
            }
        }
    }

    pub(super) fn post_stop(&self) {
        // SAFETY: a plain packet with no OVERLAPPED; the port is open.
        unsafe { PostQueuedCompletionStatus(self.port, 0, STOP_KEY, std::ptr::null()) };
    }

    /// Handles one completion of an operation we posted.
    pub(super) fn complete(self: &Arc<Self>, entry: &OVERLAPPED_ENTRY) {
        let overlapped = entry.lpOverlapped;
        // SAFETY: every OVERLAPPED we post is the first field of a Header (repr(C)).
        let kind = unsafe { (*(overlapped as *const Header)).kind };
        // The NTSTATUS of the operation, as the system left it in the OVERLAPPED.
        let failed = entry.Internal != 0;
        let bytes = entry.dwNumberOfBytesTransferred as usize;
        match kind {
            Kind::Accept => {
                // SAFETY: an Accept header is the first field of an AcceptSlot (repr(C)).
                let slot = unsafe { &*(overlapped as *const AcceptSlot) };
                self.accepted(slot, failed);
            }
            Kind::Recv | Kind::Send => {
                // SAFETY: a Recv/Send header is the first field of a ConnOp (repr(C)), whose
                // `owner` came from Arc::into_raw when the operation was posted: this takes
                // that reference back.
                let conn = unsafe {
                    let op = &*(overlapped as *const ConnOp);
                    Arc::from_raw(op.owner)
                };
                let error = failed.then(|| self.error_of(conn.socket, overlapped));
                let mut state = lock(&conn.state);
                if kind == Kind::Recv {
                    self.received(&conn, &mut state, bytes, error);
                } else {
                    self.sent(&conn, &mut state, bytes, error);
                }
                drop(state);
            }
        }
        self.outstanding.fetch_sub(1, Ordering::AcqRel);
    }

    /// The Winsock error of a failed operation, read from its completion.
    pub(super) fn error_of(&self, socket: SOCKET, overlapped: *mut OVERLAPPED) -> io::Error {
        let (mut bytes, mut flags) = (0u32, 0u32);
        // SAFETY: the operation has completed (we took its completion), so this only reads
        // its OVERLAPPED; no wait.
        let ok = unsafe { WSAGetOverlappedResult(socket, overlapped, &mut bytes, 0, &mut flags) };
        if ok != 0 {
            io::Error::other("the operation failed with no Winsock error")
        } else {
            last_wsa_error()
        }
    }
}

impl RunningServer for IocpServer {
    fn stop(mut self: Box<Self>) -> io::Result<()> {
        let shared = self.shared.clone();
        {
            let conns = shared.conns.lock().unwrap_or_else(|e| e.into_inner());
            shared.stopping.store(true, Ordering::Release);
            drop(conns);
        }
        // Closing the listener completes every pending AcceptEx as aborted.
        drop(self.listener.take());
        let live: Vec<Arc<Conn>> = {
            let conns = shared.conns.lock().unwrap_or_else(|e| e.into_inner());
            conns.iter().map(|(_, c)| c.clone()).collect()
        };
        for conn in &live {
            let mut state = lock(&conn.state);
            shared.close(conn, &mut state);
        }
        drop(live);
        let deadline = Instant::now() + STOP_GRACE;
        while shared.outstanding.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        let left = shared.outstanding.load(Ordering::Acquire);
        for _ in 0..self.threads.len() {
            shared.post_stop();
        }
        let mut result = Ok(());
        for handle in self.threads.drain(..) {
            if handle.join().is_err() {
                result = Err(io::Error::other("a proactor-iocp thread panicked"));
            }
        }
        if left > 0 {
            // The system may still write into these operations' memory: never free it.
            std::mem::forget(shared);
            return Err(io::Error::other(format!(
                "{left} operations were still pending {STOP_GRACE:?} after every socket was \
                 closed; their memory is left allocated"
            )));
        }
        // SAFETY: every thread has returned and no operation is pending: nothing uses the
        // port any more.
        unsafe { CloseHandle(shared.port) };
        result
    }
}
