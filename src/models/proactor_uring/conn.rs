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
    /// From memory the connection owns, `off` bytes already sent. `parked`: submitted
    /// without MSG_DONTWAIT after the socket had no room, so it completes whenever the peer
    /// reads, not inside the call that submits it (see `Worker::wait_nr`).
    Own { mem: Mem, off: usize, parked: bool },
    /// A SEND_ZC from memory moved to `Worker::held[key]` until its notification.
    ZeroCopy { key: usize, off: usize },
}

pub(super) struct Conn {
    /// Its direct descriptor: the index in the ring's registered file table.
    pub(super) file: u32,
    pub(super) session: Session,
    pub(super) recv: RecvState,
    /// The backlog passed the high-water mark: its recv was cancelled until it drains.
    pub(super) paused: bool,
    pub(super) life: Life,
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

/// Where a connection's recv stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum RecvState {
    /// None armed: the loop arms one unless the connection is paused or done reading.
    Idle,
    /// A recv is armed (a multishot one until a completion without `IORING_CQE_F_MORE`).
    Armed,
    /// Armed, and a cancel of it was submitted (paused, or the session asked to close).
    Cancelling,
    /// It ended with -ENOBUFS: waits in `Worker::starved` for buffers.
    Starved,
}

impl RecvState {
    /// A recv is in flight (cancelled or not).
    pub(super) fn armed(self) -> bool {
        matches!(self, RecvState::Armed | RecvState::Cancelling)
    }
}

/// How far a connection is towards its close. It only moves forward: [`Conn::end_reading`]
/// and [`Conn::fail`] leave a later state as it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Life {
    /// Reading and replying.
    Open,
    /// Nothing more will be read (the peer closed its side, or the session asked to close):
    /// closed once every reply byte is sent.
    ReadDone,
    /// An error (or the idle sweep, or the stop): close as soon as the operations in flight
    /// have ended.
    Failed,
    /// A Shutdown was submitted to end the operations in flight (the connection had failed, or
    /// was done reading with every reply sent).
    ShuttingDown,
    /// Its Close was submitted: the slot is freed when it completes.
    Closing,
}

impl Conn {
    /// Still reading: not done reading, not failed, not on its way to the close.
    pub(super) fn reading(&self) -> bool {
        self.life == Life::Open
    }

    /// Failed, or already shutting down or closing: no send starts, no held request is
    /// answered.
    pub(super) fn ending(&self) -> bool {
        matches!(self.life, Life::Failed | Life::ShuttingDown | Life::Closing)
    }

    /// Nothing more will be read.
    pub(super) fn end_reading(&mut self) {
        if self.life == Life::Open {
            self.life = Life::ReadDone;
        }
    }

    /// Close as soon as the operations in flight have ended.
    pub(super) fn fail(&mut self) {
        if matches!(self.life, Life::Open | Life::ReadDone) {
            self.life = Life::Failed;
        }
    }

    /// Reply bytes the connection holds: the send in flight's and the backlog behind it.
    pub(super) fn queued(&self) -> usize {
        self.in_flight + self.backlog.len()
    }

    pub(super) fn new(file: u32, session: Session, now: Instant) -> Conn {
        Conn {
            file,
            session,
            idle: Idle::new(now),
            recv: RecvState::Idle,
            paused: false,
            life: Life::Open,
            ops: 0,
            sending: None,
            in_flight: 0,
            backlog: Vec::new(),
            spare: Vec::new(),
        }
    }
}
