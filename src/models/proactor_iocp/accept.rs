//! Accepting: [`ACCEPTS`] `AcceptEx` kept pending on the listener, each with its own socket
//! created beforehand; a completed accept is set up (`SO_UPDATE_ACCEPT_CONTEXT`,
//! `TCP_NODELAY`, the port) and its slot re-armed with a fresh socket; when the system is out of
//! sockets the slot is retried through a posted packet.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use windows_sys::Win32::Foundation::HANDLE;
use windows_sys::Win32::Networking::WinSock::{
    closesocket, setsockopt, WSAGetLastError, WSAIoctl, WSASocketW, INVALID_SOCKET, IPPROTO_TCP,
    LPFN_ACCEPTEX, SIO_GET_EXTENSION_FUNCTION_POINTER, SOCKET, SOCKET_ERROR, SOCK_STREAM,
    SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT, TCP_NODELAY, WSAEINVAL, WSAENOTSOCK, WSAID_ACCEPTEX,
    WSA_FLAG_NO_HANDLE_INHERIT, WSA_FLAG_OVERLAPPED, WSA_IO_PENDING,
};
use windows_sys::Win32::System::IO::{
    CreateIoCompletionPort, PostQueuedCompletionStatus, OVERLAPPED,
};

use super::op::{last_wsa_error, AcceptSlot, ADDR_ROOM};
use super::shared::{Shared, IO_KEY, RETRY_KEY};
use crate::models::parts::mio_loop::ACCEPT_RETRY;

/// `AcceptEx` operations kept pending on the listener.
pub(super) const ACCEPTS: usize = 64;

/// AcceptEx, looked up through the listener as Microsoft documents (a layered provider may
/// supply its own).
pub(super) fn load_accept_ex(
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
    /// Arms `slot` with a fresh overlapped socket and an `AcceptEx`; when the system is out
    /// of sockets, retries in [`ACCEPT_RETRY`] through a posted packet.
    pub(super) fn post_accept(&self, slot: &AcceptSlot) {
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
    pub(super) fn retry_accept(&self, slot: &AcceptSlot, e: io::Error) {
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
    pub(super) fn accepted(self: &Arc<Self>, slot: &AcceptSlot, failed: bool) {
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
    pub(super) fn setup(&self, socket: SOCKET) -> io::Result<()> {
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
}
