//! The completion port, its threads, the accept slots and the connections of `proactor-iocp`
//! (see `proactor_iocp.rs` for the design).
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
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use slab::Slab;
use windows_sys::Win32::Foundation::{CloseHandle, HANDLE, INVALID_HANDLE_VALUE, WAIT_TIMEOUT};
use windows_sys::Win32::Networking::WinSock::{
    closesocket, setsockopt, WSAGetLastError, WSAGetOverlappedResult, WSAIoctl, WSARecv, WSASend,
    WSASocketW, AF_INET, AF_INET6, INVALID_SOCKET, IPPROTO_TCP, LPFN_ACCEPTEX,
    SIO_GET_EXTENSION_FUNCTION_POINTER, SOCKET, SOCKET_ERROR, SOCK_STREAM, SOL_SOCKET,
    SO_UPDATE_ACCEPT_CONTEXT, TCP_NODELAY, WSABUF, WSAEINVAL, WSAENOTSOCK, WSAID_ACCEPTEX,
    WSA_FLAG_NO_HANDLE_INHERIT, WSA_FLAG_OVERLAPPED, WSA_IO_PENDING,
};
use windows_sys::Win32::System::Threading::INFINITE;
use windows_sys::Win32::System::IO::{
    CreateIoCompletionPort, GetQueuedCompletionStatusEx, PostQueuedCompletionStatus, OVERLAPPED,
    OVERLAPPED_ENTRY,
};

use crate::models::contract::{RunningServer, ServerConfig};
use crate::models::parts::idle::{sweep_interval, Idle};
use crate::models::parts::mio_loop::{ACCEPT_RETRY, OUT_HIGH_WATER};
use crate::protocol::{Flow, Protocol, Session};

/// `AcceptEx` operations kept pending on the listener.
const ACCEPTS: usize = 64;
/// Each connection's receive buffer, committed while its `WSARecv` waits (the blocking models
/// and `proactor-emulated` read 16 KiB too).
const RECV_BUF: usize = 16 * 1024;
/// Completions taken per `GetQueuedCompletionStatusEx`.
const BATCH: usize = 64;
/// Completion key of the listener and of every connection.
const IO_KEY: usize = 0;
/// Completion key of a posted "this thread should return" packet.
const STOP_KEY: usize = 1;
/// Completion key of a posted "post this accept slot again" packet (its `OVERLAPPED` is the
/// slot's).
const RETRY_KEY: usize = 2;
/// How long `stop` waits for the aborted operations to come back before giving up on them.
const STOP_GRACE: Duration = Duration::from_secs(3);
/// Room AcceptEx needs for each address: the largest sockaddr plus 16 bytes.
const ADDR_ROOM: usize =
    std::mem::size_of::<windows_sys::Win32::Networking::WinSock::SOCKADDR_STORAGE>() + 16;

/// What an `OVERLAPPED` belongs to; every operation object starts with this header, so a
/// completion's `OVERLAPPED` pointer tells which object to cast it to.
#[repr(u8)]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Accept,
    Recv,
    Send,
}

#[repr(C)]
struct Header {
    overlapped: OVERLAPPED,
    kind: Kind,
}

impl Header {
    fn new(kind: Kind) -> Self {
        Header {
            overlapped: OVERLAPPED::default(),
            kind,
        }
    }
}

/// One pending `AcceptEx`: its socket and the buffer the addresses are written into.
#[repr(C)]
struct AcceptSlot {
    header: UnsafeCell<Header>,
    socket: UnsafeCell<SOCKET>,
    addresses: UnsafeCell<[u8; 2 * ADDR_ROOM]>,
}

// SAFETY: a slot has at most one operation at a time, and only the thread that took that
// operation's completion (or the one posting it) touches its cells.
unsafe impl Sync for AcceptSlot {}

/// A receive or a send of one connection; `owner` is the connection (the pointer
/// `Arc::into_raw` gives), taken back as an `Arc` when the completion arrives.
#[repr(C)]
struct ConnOp {
    header: UnsafeCell<Header>,
    owner: *const Conn,
}

struct Conn {
    socket: SOCKET,
    recv_op: ConnOp,
    send_op: ConnOp,
    state: Mutex<ConnState>,
}

// SAFETY: the `OVERLAPPED` headers are written only by the thread that posts the operation,
// while holding `state`, and read back by the one that takes its completion; `owner` never
// changes. Everything else is behind the mutex.
unsafe impl Sync for Conn {}
// SAFETY: as above.
unsafe impl Send for Conn {}

struct ConnState {
    /// The slab key in the registry of live connections.
    id: usize,
    session: Session,
    /// Where `WSARecv` writes; not touched while a receive is pending.
    recv_buf: Box<[u8]>,
    /// The reply being sent; not touched while a send is pending.
    sending: Vec<u8>,
    /// How much of `sending` the system has taken.
    sent: usize,
    /// Replies made while a send was in flight, sent next.
    backlog: Vec<u8>,
    recv_pending: bool,
    send_pending: bool,
    /// The peer sent its FIN, or an operation failed: no more receives.
    read_done: bool,
    /// The session asked to close once its replies are out.
    closing: bool,
    /// The socket is closed (its pending operations complete as aborted).
    closed: bool,
    /// Receives stopped because the unsent replies passed the high-water mark.
    paused: bool,
    idle: Idle,
}

impl ConnState {
    fn unsent(&self) -> usize {
        self.sending.len() - self.sent + self.backlog.len()
    }
}

/// What every thread of the port shares.
struct Shared {
    port: HANDLE,
    listener: SOCKET,
    family: i32,
    accept_ex: unsafe extern "system" fn(
        SOCKET,
        SOCKET,
        *mut core::ffi::c_void,
        u32,
        u32,
        u32,
        *mut u32,
        *mut OVERLAPPED,
    ) -> windows_sys::core::BOOL,
    protocol: Protocol,
    slots: Box<[AcceptSlot]>,
    stopping: AtomicBool,
    /// Operations posted whose completion has not been handled yet.
    outstanding: AtomicUsize,
    /// Live connections, so that `stop` can close each one.
    conns: Mutex<Slab<Arc<Conn>>>,
    /// Whether an accept failure is being retried, so it is reported once.
    accept_failing: AtomicBool,
    /// `--idle-timeout` and the sweep interval; the threads wait no longer than that.
    idle_timeout: Option<(Duration, Duration)>,
    /// When the next idle sweep is due; the thread that holds the lock sweeps.
    next_sweep: Mutex<Instant>,
}

// SAFETY: the port and socket handles are usable from any thread; the slots are Sync (above);
// the rest is atomics and mutexes.
unsafe impl Sync for Shared {}
// SAFETY: as above.
unsafe impl Send for Shared {}

pub(super) struct IocpServer {
    shared: Arc<Shared>,
    /// Keeps the listener open until `stop` closes it.
    listener: Option<TcpListener>,
    threads: Vec<JoinHandle<()>>,
}

fn last_wsa_error() -> io::Error {
    // SAFETY: no arguments.
    io::Error::from_raw_os_error(unsafe { WSAGetLastError() })
}

fn lock(state: &Mutex<ConnState>) -> MutexGuard<'_, ConnState> {
    state.lock().unwrap_or_else(|e| e.into_inner())
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

/// AcceptEx, looked up through the listener as Microsoft documents (a layered provider may
/// supply its own).
fn load_accept_ex(
    listener: SOCKET,
) -> io::Result<
    unsafe extern "system" fn(
        SOCKET,
        SOCKET,
        *mut core::ffi::c_void,
        u32,
        u32,
        u32,
        *mut u32,
        *mut OVERLAPPED,
    ) -> windows_sys::core::BOOL,
> {
    let guid = WSAID_ACCEPTEX;
    let mut function: LPFN_ACCEPTEX = None;
    let mut bytes = 0u32;
    // SAFETY: in and out buffers are valid for the sizes given; no overlapped call.
    let rc = unsafe {
        WSAIoctl(
            listener,
            SIO_GET_EXTENSION_FUNCTION_POINTER,
            (&guid as *const windows_sys::core::GUID).cast(),
            std::mem::size_of_val(&guid) as u32,
            (&mut function as *mut LPFN_ACCEPTEX).cast(),
            std::mem::size_of::<LPFN_ACCEPTEX>() as u32,
            &mut bytes,
            std::ptr::null_mut(),
            None,
        )
    };
    if rc == SOCKET_ERROR {
        return Err(last_wsa_error());
    }
    function.ok_or_else(|| io::Error::other("the socket provider has no AcceptEx"))
}

impl Shared {
    /// One thread: takes batches of completions until it receives a stop packet. With an idle
    /// timeout, no wait outlasts the sweep interval, and whichever thread finds a sweep due
    /// does it.
    fn run(self: &Arc<Self>) {
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
    fn sweep_idle(self: &Arc<Self>) {
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

    fn post_stop(&self) {
        // SAFETY: a plain packet with no OVERLAPPED; the port is open.
        unsafe { PostQueuedCompletionStatus(self.port, 0, STOP_KEY, std::ptr::null()) };
    }

    /// Handles one completion of an operation we posted.
    fn complete(self: &Arc<Self>, entry: &OVERLAPPED_ENTRY) {
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
    fn error_of(&self, socket: SOCKET, overlapped: *mut OVERLAPPED) -> io::Error {
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

    /// Arms `slot` with a fresh overlapped socket and an `AcceptEx`; when the system is out
    /// of sockets, retries in [`ACCEPT_RETRY`] through a posted packet.
    fn post_accept(&self, slot: &AcceptSlot) {
        if self.stopping.load(Ordering::Acquire) {
            return;
        }
        // SAFETY: no protocol info; a plain overlapped TCP socket.
        let socket = unsafe {
            WSASocketW(
                self.family,
                SOCK_STREAM,
                IPPROTO_TCP,
                std::ptr::null(),
                0,
                WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT,
            )
        };
        if socket == INVALID_SOCKET {
            self.retry_accept(slot, last_wsa_error());
            return;
        }
        // SAFETY: this slot has no operation pending (it is being armed), so its cells are
        // ours; the buffers outlive the operation (the slot lives as long as `self`).
        let rc = unsafe {
            *slot.socket.get() = socket;
            let header = &mut *slot.header.get();
            header.overlapped = OVERLAPPED::default();
            let mut bytes = 0u32;
            self.outstanding.fetch_add(1, Ordering::AcqRel);
            (self.accept_ex)(
                self.listener,
                socket,
                slot.addresses.get().cast(),
                0, // complete on the connection, not on its first bytes
                ADDR_ROOM as u32,
                ADDR_ROOM as u32,
                &mut bytes,
                &mut header.overlapped,
            )
        };
        // SAFETY: no arguments.
        if rc == 0 && unsafe { WSAGetLastError() } != WSA_IO_PENDING {
            // Failed at once: no completion will come.
            let e = last_wsa_error();
            self.outstanding.fetch_sub(1, Ordering::AcqRel);
            // SAFETY: the socket was created above and is not in use.
            unsafe { closesocket(socket) };
            self.retry_accept(slot, e);
        }
        // Success or pending: the completion arrives on the port either way.
    }

    /// Posts `slot` again after [`ACCEPT_RETRY`] (this thread sleeps: as nginx does when accept
    /// fails for lack of descriptors, the server stops taking connections for a moment rather
    /// than spin). A listener that is no longer a socket (closed under the server) is not
    /// retried at all: the slot is given up, and said so once.
    fn retry_accept(&self, slot: &AcceptSlot, e: io::Error) {
        if self.stopping.load(Ordering::Acquire) {
            return;
        }
        if matches!(e.raw_os_error(), Some(WSAENOTSOCK | WSAEINVAL)) {
            if !self.accept_failing.swap(true, Ordering::AcqRel) {
                eprintln!("proactor-iocp: the listener is gone, no more accepts: {e}");
            }
            return;
        }
        if !self.accept_failing.swap(true, Ordering::AcqRel) {
            eprintln!("proactor-iocp: accept failed, retrying every 10 ms: {e}");
        }
        std::thread::sleep(ACCEPT_RETRY);
        self.outstanding.fetch_add(1, Ordering::AcqRel);
        // SAFETY: the slot outlives the packet (it lives as long as `self`).
        let ok = unsafe {
            PostQueuedCompletionStatus(
                self.port,
                0,
                RETRY_KEY,
                slot.header.get().cast::<OVERLAPPED>(),
            )
        };
        if ok == 0 {
            self.outstanding.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// An `AcceptEx` completed: set the new connection up and re-arm the slot.
    fn accepted(self: &Arc<Self>, slot: &AcceptSlot, failed: bool) {
        // SAFETY: the slot's operation has completed, so its cells are ours.
        let socket = unsafe { *slot.socket.get() };
        // SAFETY: as above.
        unsafe { *slot.socket.get() = INVALID_SOCKET };
        if failed || self.stopping.load(Ordering::Acquire) {
            // Aborted by the listener's close, or a connection reset before it was accepted.
            // SAFETY: the socket is ours and not in use.
            unsafe { closesocket(socket) };
            self.post_accept(slot);
            return;
        }
        self.accept_failing.store(false, Ordering::Release);
        match self.setup(socket) {
            Ok(()) => self.adopt(socket),
            Err(e) => {
                eprintln!("proactor-iocp: cannot set an accepted connection up: {e}");
                // SAFETY: as above.
                unsafe { closesocket(socket) };
            }
        }
        self.post_accept(slot);
    }

    /// SO_UPDATE_ACCEPT_CONTEXT (getpeername, shutdown and the like then work on it),
    /// TCP_NODELAY, and the port.
    fn setup(&self, socket: SOCKET) -> io::Result<()> {
        let listener = self.listener;
        let one: i32 = 1;
        // SAFETY: option values valid for the lengths given; the socket is open.
        unsafe {
            if setsockopt(
                socket,
                SOL_SOCKET,
                SO_UPDATE_ACCEPT_CONTEXT,
                (&listener as *const SOCKET).cast(),
                std::mem::size_of::<SOCKET>() as i32,
            ) == SOCKET_ERROR
            {
                return Err(last_wsa_error());
            }
            if setsockopt(
                socket,
                IPPROTO_TCP,
                TCP_NODELAY,
                (&one as *const i32).cast(),
                4,
            ) == SOCKET_ERROR
            {
                return Err(last_wsa_error());
            }
            if CreateIoCompletionPort(socket as HANDLE, self.port, IO_KEY, 0).is_null() {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    }

    /// Registers a set-up connection and posts its first receive.
    fn adopt(self: &Arc<Self>, socket: SOCKET) {
        let mut conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        if self.stopping.load(Ordering::Acquire) {
            // SAFETY: the socket is ours and not in use.
            unsafe { closesocket(socket) };
            return;
        }
        let entry = conns.vacant_entry();
        let id = entry.key();
        let conn = Arc::new_cyclic(|me: &std::sync::Weak<Conn>| Conn {
            socket,
            recv_op: ConnOp {
                header: UnsafeCell::new(Header::new(Kind::Recv)),
                owner: me.as_ptr(),
            },
            send_op: ConnOp {
                header: UnsafeCell::new(Header::new(Kind::Send)),
                owner: me.as_ptr(),
            },
            state: Mutex::new(ConnState {
                id,
                session: self.protocol.session(),
                recv_buf: vec![0u8; RECV_BUF].into_boxed_slice(),
                sending: Vec::new(),
                sent: 0,
                backlog: Vec::new(),
                recv_pending: false,
                send_pending: false,
                read_done: false,
                closing: false,
                closed: false,
                paused: false,
                idle: Idle::new(Instant::now()),
            }),
        });
        entry.insert(conn.clone());
        drop(conns);
        let mut state = lock(&conn.state);
        self.drive(&conn, &mut state);
    }

    /// A receive completed with `bytes` (0: the peer closed its side).
    fn received(
        self: &Arc<Self>,
        conn: &Arc<Conn>,
        state: &mut ConnState,
        bytes: usize,
        error: Option<io::Error>,
    ) {
        state.recv_pending = false;
        match error {
            Some(_) => {
                // Reset by the peer, or aborted by our own close: nothing more to do for it.
                state.read_done = true;
                self.close(conn, state);
            }
            None if bytes == 0 => state.read_done = true,
            None => {
                let ConnState {
                    session,
                    recv_buf,
                    sending,
                    sent,
                    backlog,
                    send_pending,
                    ..
                } = state;
                let input = &recv_buf[..bytes];
                // Replies go straight into the send buffer when no send is in flight.
                let out = if *send_pending {
                    backlog
                } else {
                    if *sent == sending.len() {
                        sending.clear();
                        *sent = 0;
                    }
                    sending
                };
                if session.on_data(input, out) == Flow::Close {
                    state.closing = true;
                }
            }
        }
        self.drive(conn, state);
    }

    /// A send completed having taken `bytes`.
    fn sent(
        self: &Arc<Self>,
        conn: &Arc<Conn>,
        state: &mut ConnState,
        bytes: usize,
        error: Option<io::Error>,
    ) {
        state.send_pending = false;
        if error.is_some() {
            state.read_done = true;
            self.close(conn, state);
        } else {
            state.sent = (state.sent + bytes).min(state.sending.len());
        }
        self.drive(conn, state);
    }

    /// Posts what the connection's state calls for: the rest of the reply or the backlog, the
    /// next receive (unless paused), or the close once everything is out.
    fn drive(self: &Arc<Self>, conn: &Arc<Conn>, state: &mut ConnState) {
        if !state.closed && self.stopping.load(Ordering::Acquire) {
            self.close(conn, state);
        }
        if state.closed {
            self.forget_if_idle(state);
            return;
        }
        // Requests the session held back (a receive whose answers were more than a batch)
        // are answered before the next receive, while the unsent replies leave room; their
        // answers queue behind those already made.
        while state.session.unanswered() && !state.closing && state.unsent() <= OUT_HIGH_WATER / 2 {
            if state.session.on_data(&[], &mut state.backlog) == Flow::Close {
                state.closing = true;
            }
        }
        if !state.send_pending {
            if state.sent == state.sending.len() {
                state.sending.clear();
                state.sent = 0;
                std::mem::swap(&mut state.sending, &mut state.backlog);
            }
            if state.sent < state.sending.len() {
                if let Err(e) = self.post_send(conn, state) {
                    eprintln!("proactor-iocp: WSASend failed: {e}");
                    self.close(conn, state);
                    self.forget_if_idle(state);
                    return;
                }
            }
        }
        let unsent = state.unsent();
        if state.paused && unsent <= OUT_HIGH_WATER / 2 {
            state.paused = false;
        } else if !state.paused && unsent > OUT_HIGH_WATER {
            state.paused = true;
        }
        let held = state.session.unanswered();
        if !state.recv_pending && !state.read_done && !state.closing && !state.paused && !held {
            if let Err(e) = self.post_recv(conn, state) {
                if e.kind() != io::ErrorKind::ConnectionReset {
                    eprintln!("proactor-iocp: WSARecv failed: {e}");
                }
                state.read_done = true;
            }
        }
        if (state.read_done || state.closing) && !state.send_pending && state.unsent() == 0 {
            self.close(conn, state);
        }
        self.forget_if_idle(state);
    }

    fn post_recv(&self, conn: &Arc<Conn>, state: &mut ConnState) -> io::Result<()> {
        let buf = WSABUF {
            len: state.recv_buf.len() as u32,
            buf: state.recv_buf.as_mut_ptr(),
        };
        let mut flags = 0u32;
        self.outstanding.fetch_add(1, Ordering::AcqRel);
        let owner = Arc::into_raw(conn.clone());
        // SAFETY: no receive is pending on this connection (so its header is ours) and the
        // buffer lives in the connection, kept alive by the reference `owner` holds until the
        // completion is taken. The WSABUF array is captured during the call.
        let rc = unsafe {
            let header = &mut *conn.recv_op.header.get();
            header.overlapped = OVERLAPPED::default();
            WSARecv(
                conn.socket,
                &buf,
                1,
                std::ptr::null_mut(),
                &mut flags,
                &mut header.overlapped,
                None,
            )
        };
        self.posted(rc, owner)?;
        state.recv_pending = true;
        Ok(())
    }

    fn post_send(&self, conn: &Arc<Conn>, state: &mut ConnState) -> io::Result<()> {
        let rest = &mut state.sending[state.sent..];
        let buf = WSABUF {
            len: rest.len().min(u32::MAX as usize) as u32,
            buf: rest.as_mut_ptr(),
        };
        self.outstanding.fetch_add(1, Ordering::AcqRel);
        let owner = Arc::into_raw(conn.clone());
        // SAFETY: as in `post_recv`: no send is pending, and `sending` is not touched until
        // this send's completion is taken.
        let rc = unsafe {
            let header = &mut *conn.send_op.header.get();
            header.overlapped = OVERLAPPED::default();
            WSASend(
                conn.socket,
                &buf,
                1,
                std::ptr::null_mut(),
                0,
                &mut header.overlapped,
                None,
            )
        };
        self.posted(rc, owner)?;
        state.send_pending = true;
        Ok(())
    }

    /// After WSARecv/WSASend: success and pending both bring a completion (the port gets one
    /// even for an immediate success); any other error brings none, so the reference and the
    /// count taken for it are given back here.
    fn posted(&self, rc: i32, owner: *const Conn) -> io::Result<()> {
        if rc == 0 {
            return Ok(());
        }
        // SAFETY: no arguments.
        let code = unsafe { WSAGetLastError() };
        if code == WSA_IO_PENDING {
            return Ok(());
        }
        self.outstanding.fetch_sub(1, Ordering::AcqRel);
        // SAFETY: `owner` came from Arc::into_raw for this operation, which never started.
        drop(unsafe { Arc::from_raw(owner) });
        Err(io::Error::from_raw_os_error(code))
    }

    /// Closes the socket once; its pending operations then complete as aborted.
    fn close(&self, conn: &Conn, state: &mut ConnState) {
        if !state.closed {
            state.closed = true;
            state.read_done = true;
            // SAFETY: the socket is open and closed only here, once.
            unsafe { closesocket(conn.socket) };
        }
    }

    /// Drops the registry's reference once the connection is closed and the system holds
    /// none of its operations: the last reference then goes with the caller's.
    fn forget_if_idle(&self, state: &ConnState) {
        if state.closed && !state.recv_pending && !state.send_pending {
            let mut conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
            conns.try_remove(state.id);
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
