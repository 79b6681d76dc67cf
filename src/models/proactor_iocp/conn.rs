//! A connection of the port: adopting it, posting its receive and send operations, and what
//! its completions do: answer, send the rest or the backlog, receive again unless paused, close
//! once everything is out. The connection itself and its state behind a lock (held only to run
//! the handler and post the next operation) are defined in `op.rs`, beside the operations that
//! point back to it.

use std::cell::UnsafeCell;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use windows_sys::Win32::Networking::WinSock::{
    closesocket, WSAGetLastError, WSARecv, WSASend, SOCKET, WSABUF, WSA_IO_PENDING,
};
use windows_sys::Win32::System::IO::OVERLAPPED;

use super::op::{lock, Conn, ConnOp, ConnState, Header, Kind};
use super::shared::Shared;
use crate::models::parts::idle::Idle;
use crate::models::parts::mio_loop::OUT_HIGH_WATER;
use crate::protocol::Flow;

/// Each connection's receive buffer, committed while its `WSARecv` waits (the blocking models
/// and `proactor-emulated` read 16 KiB too).
pub(super) const RECV_BUF: usize = 16 * 1024;

impl Shared {
    /// Registers a set-up connection and posts its first receive.
    pub(super) fn adopt(self: &Arc<Self>, socket: SOCKET) {
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
    pub(super) fn received(
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
    pub(super) fn sent(
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
    pub(super) fn drive(self: &Arc<Self>, conn: &Arc<Conn>, state: &mut ConnState) {
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

    pub(super) fn post_recv(&self, conn: &Arc<Conn>, state: &mut ConnState) -> io::Result<()> {
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

    pub(super) fn post_send(&self, conn: &Arc<Conn>, state: &mut ConnState) -> io::Result<()> {
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
    pub(super) fn posted(&self, rc: i32, owner: *const Conn) -> io::Result<()> {
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
    pub(super) fn close(&self, conn: &Conn, state: &mut ConnState) {
        if !state.closed {
            state.closed = true;
            state.read_done = true;
            // SAFETY: the socket is open and closed only here, once.
            unsafe { closesocket(conn.socket) };
        }
    }

    /// Drops the registry's reference once the connection is closed and the system holds
    /// none of its operations: the last reference then goes with the caller's.
    pub(super) fn forget_if_idle(&self, state: &ConnState) {
        if state.closed && !state.recv_pending && !state.send_pending {
            let mut conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
            conns.try_remove(state.id);
        }
    }
}
