//! One connection of a client thread ([`Conn`]): its socket, where it stands
//! ([`State`]: connecting, active, waiting to reconnect), and its batch in flight.

use std::time::Instant;

use mio::net::TcpStream;

/// Where a connection stands.
pub(super) enum State {
    /// Waiting for a non-blocking connect to finish.
    Connecting { since: Instant },
    /// Connected; a request is in flight when `in_flight`.
    Active,
    /// Failed; reconnect at this time.
    Retry { at: Instant },
}

pub(super) struct Conn {
    pub(super) stream: Option<TcpStream>,
    pub(super) state: State,
    /// Echo: the number of the batch's first request (it picks the bytes).
    pub(super) seq: u64,
    pub(super) in_flight: bool,
    /// Bytes of the batch written so far.
    pub(super) sent: usize,
    /// Echo: bytes of the batch's answer read so far.
    pub(super) recvd: usize,
    /// Answers to the batch taken so far.
    pub(super) answered: usize,
    /// When the batch was sent: uncorrected latency runs from here.
    pub(super) started: Instant,
    /// When the batch was due: corrected latency runs from here. The closed loop has no due
    /// times: there it is `started`.
    pub(super) due: Instant,
    /// Batches started, over the whole run (open loop: it picks the next due time).
    pub(super) issued: u64,
    /// Open loop: the due time the free connection waits for.
    pub(super) scheduled: Option<Instant>,
    pub(super) completed_in_window: u64,
    /// Echo with `--pipeline` > 1: the batch's bytes (one window of the pattern per request).
    pub(super) batch: Vec<u8>,
    /// HTTP: the start of a response that has not all arrived yet.
    pub(super) partial: Vec<u8>,
    /// HTTP: the server said it closes after the last answer taken.
    pub(super) closing: bool,
}

impl Conn {
    /// A connection not yet connected (its first connect is due `now`) whose first batch has
    /// sequence number `seq` (echo: it picks the bytes).
    pub(super) fn new(seq: u64, now: Instant) -> Conn {
        Conn {
            stream: None,
            state: State::Retry { at: now },
            seq,
            in_flight: false,
            sent: 0,
            recvd: 0,
            answered: 0,
            started: now,
            due: now,
            issued: 0,
            scheduled: None,
            completed_in_window: 0,
            batch: Vec::new(),
            partial: Vec::new(),
            closing: false,
        }
    }
}
