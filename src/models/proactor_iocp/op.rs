//! The objects handed to the system: every pending operation's `OVERLAPPED` is the first
//! field of one of them ([`Header`], repr(C)), so a completion's `OVERLAPPED` pointer says which
//! object to cast it to. Accept slots live as long as the port's shared state; a connection's
//! receive and send live in the connection, defined here too (its operations point back to it):
//! the connection, its state behind a lock (held only to run the handler and post the next
//! operation), and the lock. What its completions do is `conn.rs`.

use std::cell::UnsafeCell;
use std::io;
use std::sync::{Mutex, MutexGuard};

use windows_sys::Win32::Networking::WinSock::{WSAGetLastError, SOCKET};
use windows_sys::Win32::System::IO::OVERLAPPED;

use crate::models::parts::idle::Idle;
use crate::protocol::Session;

/// Room AcceptEx needs for each address: the largest sockaddr plus 16 bytes.
pub(super) const ADDR_ROOM: usize =
    std::mem::size_of::<windows_sys::Win32::Networking::WinSock::SOCKADDR_STORAGE>() + 16;

/// What an `OVERLAPPED` belongs to; every operation object starts with this header, so a
/// completion's `OVERLAPPED` pointer tells which object to cast it to.
#[repr(u8)]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Kind {
    Accept,
    Recv,
    Send,
}

#[repr(C)]
pub(super) struct Header {
    pub(super) overlapped: OVERLAPPED,
    pub(super) kind: Kind,
}

impl Header {
    pub(super) fn new(kind: Kind) -> Self {
        Header {
            overlapped: OVERLAPPED::default(),
            kind,
        }
    }
}

/// One pending `AcceptEx`: its socket and the buffer the addresses are written into.
#[repr(C)]
pub(super) struct AcceptSlot {
    pub(super) header: UnsafeCell<Header>,
    pub(super) socket: UnsafeCell<SOCKET>,
    pub(super) addresses: UnsafeCell<[u8; 2 * ADDR_ROOM]>,
}

// SAFETY: a slot has at most one operation at a time, and only the thread that took that
// operation's completion (or the one posting it) touches its cells.
unsafe impl Sync for AcceptSlot {}

/// A receive or a send of one connection; `owner` is the connection (the pointer
/// `Arc::into_raw` gives), taken back as an `Arc` when the completion arrives.
#[repr(C)]
pub(super) struct ConnOp {
    pub(super) header: UnsafeCell<Header>,
    pub(super) owner: *const Conn,
}

pub(super) fn last_wsa_error() -> io::Error {
    // SAFETY: no arguments.
    io::Error::from_raw_os_error(unsafe { WSAGetLastError() })
}

pub(super) struct Conn {
    pub(super) socket: SOCKET,
    pub(super) recv_op: ConnOp,
    pub(super) send_op: ConnOp,
    pub(super) state: Mutex<ConnState>,
}

// SAFETY: the `OVERLAPPED` headers are written only by the thread that posts the operation,
// while holding `state`, and read back by the one that takes its completion; `owner` never
// changes. Everything else is behind the mutex.
unsafe impl Sync for Conn {}
// SAFETY: as above.
unsafe impl Send for Conn {}

pub(super) struct ConnState {
    /// The slab key in the registry of live connections.
    pub(super) id: usize,
    pub(super) session: Session,
    /// Where `WSARecv` writes; not touched while a receive is pending.
    pub(super) recv_buf: Box<[u8]>,
    /// The reply being sent; not touched while a send is pending.
    pub(super) sending: Vec<u8>,
    /// How much of `sending` the system has taken.
    pub(super) sent: usize,
    /// Replies made while a send was in flight, sent next.
    pub(super) backlog: Vec<u8>,
    pub(super) recv_pending: bool,
    pub(super) send_pending: bool,
    /// The peer sent its FIN, or an operation failed: no more receives.
    pub(super) read_done: bool,
    /// The session asked to close once its replies are out.
    pub(super) closing: bool,
    /// The socket is closed (its pending operations complete as aborted).
    pub(super) closed: bool,
    /// Receives stopped because the unsent replies passed the high-water mark.
    pub(super) paused: bool,
    pub(super) idle: Idle,
}

impl ConnState {
    pub(super) fn unsent(&self) -> usize {
        self.sending.len() - self.sent + self.backlog.len()
    }
}

pub(super) fn lock(state: &Mutex<ConnState>) -> MutexGuard<'_, ConnState> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}
