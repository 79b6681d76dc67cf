//! A connection of a ring: its session, where its recv stands, how far it is towards its
//! close, and the reply bytes it holds (the send in flight and the backlog behind it).

use std::time::Instant;

use crate::models::parts::idle::Idle;
use crate::models::parts::mio_loop::OUT_HIGH_WATER;
use crate::protocol::Session;

/// Reply bytes held (the send in flight's and the backlog) under this let a paused connection
/// receive again.
pub(super) const RESUME_BELOW: usize = OUT_HIGH_WATER / 2;

/// Bytes the kernel reads for a send: a provided buffer or a heap buffer.
pub(super) enum Mem {
    /// Provided buffer `bid`, its first `len` bytes.
    Ring {
        bid: u16,
        len: u32,
    },
    Heap(Vec<u8>),
}

/// The send in flight on a connection.
pub(super) enum Sending {
    /// From memory the connection owns, `off` bytes already sent.
    Own { mem: Mem, off: usize },
    /// A SEND_ZC from memory moved to `Worker::held[key]` until its notification.
    ZeroCopy { key: usize, off: usize },
}

pub(super) struct Conn {
    /// Its direct descriptor: the index in the ring's registered file table.
    pub(super) file: u32,
    pub(super) session: Session,
    pub(super) recv_armed: bool,
    /// The recv ended with -ENOBUFS: waits in `Worker::starved` for buffers.
    pub(super) starved: bool,
    /// The backlog passed the high-water mark: its recv was cancelled until it drains.
    pub(super) paused: bool,
    /// A cancel of its armed recv was submitted (paused, or the session asked to close).
    pub(super) recv_cancelling: bool,
    /// Nothing more will be read: the peer closed its side, or the session asked to close.
    pub(super) eof: bool,
    /// An error: close as soon as the operations in flight have ended.
    pub(super) failed: bool,
    /// A Shutdown was submitted (to end the operations in flight).
    pub(super) shut: bool,
    /// Its Close was submitted: the slot is freed when it completes.
    pub(super) closing: bool,
    /// Operations in flight that name this slot (recv, send, cancel, shutdown, close).
    pub(super) ops: u32,
    pub(super) sending: Option<Sending>,
    /// Bytes of the memory the send in flight sends from (resident until it completes).
    pub(super) in_flight: usize,
    /// Reply bytes waiting behind the send in flight.
    pub(super) backlog: Vec<u8>,
    /// An empty buffer kept for the next backlog.
    pub(super) spare: Vec<u8>,
    pub(super) idle: Idle,
}

impl Conn {
    /// Reply bytes the connection holds: the send in flight's and the backlog behind it.
    pub(super) fn queued(&self) -> usize {
        self.in_flight + self.backlog.len()
    }

    pub(super) fn new(file: u32, session: Session, now: Instant) -> Conn {
        Conn {
            file,
            session,
            idle: Idle::new(now),
            recv_armed: false,
            starved: false,
            paused: false,
            recv_cancelling: false,
            eof: false,
            failed: false,
            shut: false,
            closing: false,
            ops: 0,
            sending: None,
            in_flight: 0,
            backlog: Vec::new(),
            spare: Vec::new(),
        }
    }
}
