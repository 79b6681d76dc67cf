//! The objects handed to the system: every pending operation's `OVERLAPPED` is the first
//! field of one of them ([`Header`], repr(C)), so a completion's `OVERLAPPED` pointer says which
//! object to cast it to. Accept slots live as long as the port's shared state; a connection's
//! receive and send live in the connection.

use std::cell::UnsafeCell;
use std::io;

use windows_sys::Win32::Networking::WinSock::{WSAGetLastError, SOCKET};
use windows_sys::Win32::System::IO::OVERLAPPED;

use super::conn::Conn;

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
