//! One client thread: a mio poller driving its share of the connections, closed or open loop.
//!
//! Closed loop: each connection sends a batch of `--pipeline` requests, reads and checks every
//! answer, records each one's latency from the moment the batch was started (as wrk does), and
//! sends the next batch once all are answered.
//!
//! Open loop (`--rate R`, wrk2's way): request `n` of the run is due at `start + n/R`, dealt
//! round robin over every connection of every thread, so connection `i` of `C` has its requests
//! due at `start + (k*C + i)/R`. A connection keeps one request in flight: a free connection
//! waits for its next due time (woken by an [`Alarm`]); a connection still waiting for an
//! answer when its next request falls due sends that one as soon as the answer is in, and so
//! catches up. Latency runs from the due time (corrected: a stalled server cannot hide its
//! stall by delaying the requests that would have measured it); the latency from the send
//! (uncorrected) is kept beside it, and so is how late each request went out on a free
//! connection (the client's own pacing error).
//! - Echo: a request is `payload` bytes; the bytes of request `n` are a window into a
//!   period-251 pattern starting at an offset that depends on the connection and on `n`, so a
//!   server that returns stale, shifted or another connection's bytes is caught.
//! - HTTP: the same GET each time; every response is parsed and checked (`http.rs`).
//!
//! A connection that fails is counted by kind, closed, and reconnected 10 ms later. A status
//! outside 2xx-3xx or a body that differs is counted too, on a connection that goes on.
//!
//! Where each part lives: the connection's state `conn.rs`, connecting and failing `connect.rs`,
//! the bytes on the wire and their checks `exchange.rs`, the open loop's due times
//! `schedule.rs` and its steps `open_loop.rs`, the recording of answers and errors `tally.rs`;
//! this file holds the worker and its event loop.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token};

use super::alarm::Alarm;
use super::conn::{Conn, State};
use super::exchange::{step, Exchange, Outcome, Progress, PERIOD};
use super::part::{kind, Part};
use super::schedule::Schedule;
use super::timeline::{Live, Timeline};
use super::LoadConfig;
use crate::metrics::histogram::{new_histogram, MAX_US};
use crate::sys::SHORT_READ_DRAINS;

const SCRATCH: usize = 64 * 1024;
/// The longest a poll may sleep, so that the end of the run and a stop are noticed promptly.
pub(super) const MAX_POLL: Duration = Duration::from_millis(50);
/// The alarm's token: no connection has it.
const ALARM: Token = Token(usize::MAX);

/// How often in-flight requests are checked against `--timeout`.
const TIMEOUT_SCAN: Duration = Duration::from_millis(10);

pub(super) struct Worker {
    pub(super) target: SocketAddr,
    pub(super) exchange: Exchange,
    pub(super) pipeline: usize,
    pub(super) timeout: Option<Duration>,
    pub(super) next_timeout_scan: Option<Instant>,
    pub(super) poll: Poll,
    pub(super) conns: Vec<Conn>,
    pub(super) scratch: Vec<u8>,
    pub(super) part: Part,
    /// Connections not `Active`: only while some exist does the loop look for retries due.
    pub(super) inactive: usize,
    /// Set once the timeline is known: completions count only inside [start, end).
    pub(super) window_start: Option<Instant>,
    pub(super) window_end: Option<Instant>,
    pub(super) interval: Duration,
    /// Open loop: the schedule, its origin (set when the run starts), the free connections by
    /// due time, and the alarm that wakes the loop for the first of them.
    pub(super) schedule: Option<Schedule>,
    pub(super) origin: Instant,
    pub(super) waiting: BinaryHeap<Reverse<(Instant, usize)>>,
    pub(super) alarm: Option<Alarm>,
    /// Running totals for the progress line.
    pub(super) live: Arc<Live>,
}

impl Worker {
    pub(super) fn new(
        config: &LoadConfig,
        index: usize,
        connections: usize,
        exchange: Exchange,
        schedule: Option<Schedule>,
        live: Arc<Live>,
    ) -> io::Result<Worker> {
        let now = Instant::now();
        let conns: Vec<Conn> = (0..connections)
            // Distinct starting points per connection.
            .map(|i| Conn::new(((index * 7919 + i * 104_729) % PERIOD) as u64, now))
            .collect();
        // Echo reads at most one request's bytes at a time (the rest of a pipelined batch is
        // read on the next pass); HTTP reads whatever is there.
        let scratch = match &exchange {
            Exchange::Echo { payload, .. } => SCRATCH.min((*payload).max(1)),
            Exchange::Http(_) | Exchange::Fixed { .. } => SCRATCH,
        };
        let poll = Poll::new()?;
        let alarm = match schedule {
            Some(_) => Some(Alarm::new(poll.registry(), ALARM)?),
            None => None,
        };
        let mut part = Part::new();
        if schedule.is_some() {
            part.uncorrected = Some(new_histogram());
            part.pacing = Some(new_histogram());
        }
        Ok(Worker {
            target: config.target,
            exchange,
            pipeline: config.shape.pipeline.max(1),
            timeout: config.shape.timeout,
            next_timeout_scan: None,
            poll,
            inactive: conns.len(),
            conns,
            scratch: vec![0u8; scratch],
            part,
            window_start: None,
            window_end: None,
            interval: config.shape.interval,
            schedule,
            origin: now,
            waiting: BinaryHeap::new(),
            alarm,
            live,
        })
    }

    /// The closed loop, from the go signal to the end of the timeline (or a stop).
    pub(super) fn run(&mut self, timeline: Timeline, stop: &AtomicBool) -> Part {
        self.window_start = Some(timeline.window_start);
        self.window_end = Some(timeline.end);
        self.origin = timeline.start;
        let now = Instant::now();
        for i in 0..self.conns.len() {
            if matches!(self.conns[i].state, State::Active) {
                self.start_request(i, now);
            }
        }
        let mut events = Events::with_capacity(1024);
        loop {
            let now = Instant::now();
            if now >= timeline.end || stop.load(Ordering::Acquire) {
                break;
            }
            let next_retry = if self.inactive > 0 {
                self.retry_due(now)
            } else {
                None
            };
            if let Some(timeout) = self.timeout {
                self.expire(now, timeout);
            }
            let mut wait = (timeline.end - now)
                .min(MAX_POLL)
                .min(next_retry.map_or(MAX_POLL, |at| at.saturating_duration_since(now)));
            if self.schedule.is_some() {
                let now = self.release_due();
                if let (Some(&Reverse((at, _))), Some(alarm)) =
                    (self.waiting.peek(), self.alarm.as_mut())
                {
                    match alarm.wake_at(at, now) {
                        Ok(Some(limit)) => wait = wait.min(limit),
                        Ok(None) => {}
                        // No timer: fall back on the poller's own (coarser) timeout.
                        Err(_) => wait = wait.min(at.saturating_duration_since(now)),
                    }
                }
            }
            if let Err(e) = self.poll.poll(&mut events, Some(wait)) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                break;
            }
            for event in events.iter() {
                if event.token() == ALARM {
                    if let Some(alarm) = self.alarm.as_mut() {
                        alarm.fired();
                    }
                    continue;
                }
                let i = event.token().0;
                let now = Instant::now();
                match self.conns[i].state {
                    State::Connecting { .. } => self.on_connect_event(i, now, true),
                    State::Active => {
                        let closed = event.is_read_closed() || event.is_error();
                        self.drive(i, event.is_readable() || closed, closed)
                    }
                    State::Retry { .. } => {}
                }
            }
        }
        // Ages are taken at the close, or when a stop cut the run short.
        self.tally_close(Instant::now().min(timeline.end));
        std::mem::replace(&mut self.part, Part::new())
    }

    /// At the close (`stopped`): counts the connections that completed nothing in the window,
    /// and records the ages of the requests still unanswered and (open loop) never sent.
    pub(super) fn tally_close(&mut self, stopped: Instant) {
        for i in 0..self.conns.len() {
            let c = &self.conns[i];
            self.part.starved += u64::from(c.completed_in_window == 0);
            if c.in_flight && c.due < stopped {
                let age = stopped.duration_since(c.due).as_micros() as u64;
                let unanswered = self.pipeline.saturating_sub(c.answered) as u64;
                let _ = self
                    .part
                    .unfinished
                    .record_n(age.clamp(1, MAX_US), unanswered);
            }
            self.record_unsent(i, stopped);
        }
    }

    /// Fails the connections whose batch has waited longer than `timeout` (looked at every
    /// [`TIMEOUT_SCAN`], so a timeout fires up to that much late).
    pub(super) fn expire(&mut self, now: Instant, timeout: Duration) {
        if self.next_timeout_scan.is_some_and(|at| now < at) {
            return;
        }
        self.next_timeout_scan = Some(now + TIMEOUT_SCAN);
        for i in 0..self.conns.len() {
            let c = &self.conns[i];
            if c.in_flight && matches!(c.state, State::Active) && now - c.started > timeout {
                self.fail(i, kind::TIMEOUT, now);
            }
        }
    }

    /// Starts connection `i`'s next batch now, or (open loop) when it falls due.
    pub(super) fn start_request(&mut self, i: usize, now: Instant) {
        let due = match self.next_due(i) {
            Some(due) if due > now => return self.wait_until(i, due),
            Some(due) => due,
            None => now,
        };
        self.start_batch(i, now, due);
        // Nothing to read yet: the answer's arrival will raise a readable edge (on Windows,
        // once a read has found nothing: see SHORT_READ_DRAINS).
        self.drive(i, !SHORT_READ_DRAINS, false);
    }

    /// Resets connection `i` for its next batch (echo: the batch's bytes, when pipelined),
    /// sent at `now` and due at `due`.
    pub(super) fn start_batch(&mut self, i: usize, now: Instant, due: Instant) {
        if self.schedule.is_some() && self.in_window(now) {
            self.part.sent += 1;
        }
        let c = &mut self.conns[i];
        c.in_flight = true;
        c.sent = 0;
        c.recvd = 0;
        c.answered = 0;
        c.started = now;
        c.due = due;
        c.issued += 1;
        if let Exchange::Echo { payload, pattern } = &self.exchange {
            if self.pipeline > 1 {
                c.batch.clear();
                for k in 0..self.pipeline as u64 {
                    let offset = ((c.seq + k) % PERIOD as u64) as usize;
                    c.batch
                        .extend_from_slice(&pattern[offset..offset + payload]);
                }
            }
        }
    }

    /// Moves connection `i` as far as the socket allows: writes the rest of the batch, reads
    /// and checks the answers (only after a readable edge: reading right after sending would
    /// almost always cost a `recvfrom` that finds nothing), records each answer, and once the
    /// batch is answered starts the next, whose answers then wait for the next edge.
    pub(super) fn drive(&mut self, i: usize, readable: bool, peer_closed: bool) {
        let mut may_read = readable;
        loop {
            let mut progress = Progress::default();
            let outcome = step(
                &mut self.conns[i],
                &self.exchange,
                self.pipeline,
                &mut self.scratch,
                may_read,
                peer_closed,
                &mut progress,
            );
            let now = Instant::now();
            self.complete(i, now, &progress);
            match outcome {
                Outcome::Blocked => return,
                Outcome::Failed(kind, Some(e)) => return self.fail_with(i, kind, now, &e),
                Outcome::Failed(kind, None) => return self.fail(i, kind, now),
                Outcome::BatchDone => {}
            }
            let http = matches!(self.exchange, Exchange::Http(_));
            let c = &mut self.conns[i];
            c.seq += self.pipeline as u64;
            if c.closing || (http && peer_closed) {
                // The server closes after an answer (HTTP `Connection: close`, or a keep-alive
                // connection closed between requests, as HTTP allows): not an error; the next
                // batch goes on a new connection. The rest of a pipelined batch after a
                // `Connection: close` answer is abandoned, as the server said it would be.
                return self.reconnect(i, now);
            }
            let due = match self.next_due(i) {
                Some(due) if due > now => return self.wait_until(i, due),
                Some(due) => due,
                None => now,
            };
            self.start_batch(i, now, due);
            // Under mio on Windows only a read that finds nothing re-arms the socket.
            may_read = !SHORT_READ_DRAINS;
        }
    }
}
