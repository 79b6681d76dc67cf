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

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use super::alarm::Alarm;
use super::http::{parse_response, HttpCheck};
use super::part::{kind, Part};
use super::{Live, LoadConfig, Timeline};
use crate::metrics::histogram::{new_histogram, new_interval_histogram, record, MAX_US};
use crate::sys::SHORT_READ_DRAINS;

const PERIOD: usize = 251;
const RETRY_AFTER: Duration = Duration::from_millis(10);
const SCRATCH: usize = 64 * 1024;
/// The longest a poll may sleep, so that the end of the run and a stop are noticed promptly.
const MAX_POLL: Duration = Duration::from_millis(50);
/// The alarm's token: no connection has it.
const ALARM: Token = Token(usize::MAX);
/// At most this many distinct ages are recorded for the requests a connection left unsent at
/// the close (a dead server under `--rate` leaves rate x duration of them); the rest are
/// recorded with counts, so the histogram's shape holds and the loop stays short.
const UNSENT_STEPS: u64 = 100_000;

/// Open loop: when each request is due.
#[derive(Clone, Copy, Debug)]
pub(super) struct Schedule {
    /// Requests per second over every connection of the run.
    pub rate: f64,
    /// Connections of the run, over every thread.
    pub connections: u64,
    /// The run-wide index of this worker's first connection.
    pub first: u64,
}

impl Schedule {
    /// When request `k` of this worker's connection `i` is due, after `origin`.
    fn due(&self, origin: Instant, i: usize, k: u64) -> Instant {
        let n = k * self.connections + self.first + i as u64;
        origin + Duration::from_secs_f64(n as f64 / self.rate)
    }
}

/// The bytes requests are cut from: `payload + PERIOD` bytes of a period-251 sequence.
pub(super) fn pattern(payload: usize) -> Vec<u8> {
    (0..payload + PERIOD).map(|i| (i % PERIOD) as u8).collect()
}

/// How often in-flight requests are checked against `--timeout`.
const TIMEOUT_SCAN: Duration = Duration::from_millis(10);

/// What a connection sends and how the answers are checked.
pub(super) enum Exchange {
    /// Requests of `payload` bytes cut from `pattern`; each answer is the request itself.
    Echo { payload: usize, pattern: Arc<[u8]> },
    /// The same HTTP request each time.
    Http(Arc<HttpCheck>),
}

enum State {
    /// Waiting for a non-blocking connect to finish.
    Connecting { since: Instant },
    /// Connected; a request is in flight when `in_flight`.
    Active,
    /// Failed; reconnect at this time.
    Retry { at: Instant },
}

struct Conn {
    stream: Option<TcpStream>,
    state: State,
    /// Echo: the number of the batch's first request (it picks the bytes).
    seq: u64,
    in_flight: bool,
    /// Bytes of the batch written so far.
    sent: usize,
    /// Echo: bytes of the batch's answer read so far.
    recvd: usize,
    /// Answers to the batch taken so far.
    answered: usize,
    /// When the batch was sent: uncorrected latency runs from here.
    started: Instant,
    /// When the batch was due: corrected latency runs from here. The closed loop has no due
    /// times: there it is `started`.
    due: Instant,
    /// Batches started, over the whole run (open loop: it picks the next due time).
    issued: u64,
    /// Open loop: the due time the free connection waits for.
    scheduled: Option<Instant>,
    completed_in_window: u64,
    /// Echo with `--pipeline` > 1: the batch's bytes (one window of the pattern per request).
    batch: Vec<u8>,
    /// HTTP: the start of a response that has not all arrived yet.
    partial: Vec<u8>,
    /// HTTP: the server said it closes after the last answer taken.
    closing: bool,
}

/// What one call of [`step`] did to a connection.
#[derive(Default)]
struct Progress {
    /// Answers taken and checked, and their bytes.
    answers: usize,
    bytes: u64,
    /// Answers with a status outside 2xx-3xx, and with a body that differs.
    bad_status: usize,
    bad_body: usize,
}

/// Where [`step`] left a connection.
enum Outcome {
    /// It waits for the socket.
    Blocked,
    /// Every answer of the batch is in.
    BatchDone,
    /// It failed: count this kind (with the OS's words when there are some) and reconnect.
    Failed(&'static str, Option<io::Error>),
}

pub(super) struct Worker {
    target: SocketAddr,
    exchange: Exchange,
    pipeline: usize,
    timeout: Option<Duration>,
    next_timeout_scan: Option<Instant>,
    poll: Poll,
    conns: Vec<Conn>,
    scratch: Vec<u8>,
    part: Part,
    /// Connections not `Active`: only while some exist does the loop look for retries due.
    inactive: usize,
    /// Set once the timeline is known: completions count only inside [start, end).
    window_start: Option<Instant>,
    window_end: Option<Instant>,
    interval: Duration,
    /// Open loop: the schedule, its origin (set when the run starts), the free connections by
    /// due time, and the alarm that wakes the loop for the first of them.
    schedule: Option<Schedule>,
    origin: Instant,
    waiting: BinaryHeap<Reverse<(Instant, usize)>>,
    alarm: Option<Alarm>,
    /// Running totals for the progress line.
    live: Arc<Live>,
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
            .map(|i| Conn {
                stream: None,
                state: State::Retry { at: now },
                // Distinct starting points per connection.
                seq: ((index * 7919 + i * 104_729) % PERIOD) as u64,
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
            })
            .collect();
        // Echo reads at most one request's bytes at a time (the rest of a pipelined batch is
        // read on the next pass); HTTP reads whatever is there.
        let scratch = match &exchange {
            Exchange::Echo { payload, .. } => SCRATCH.min((*payload).max(1)),
            Exchange::Http(_) => SCRATCH,
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

    /// Establishes every connection, waiting at most `timeout` (or until `cut`); failures are
    /// counted.
    pub(super) fn connect_all(&mut self, timeout: Duration, cut: &AtomicBool) {
        let deadline = Instant::now() + timeout;
        for i in 0..self.conns.len() {
            self.start_connect(i, Instant::now());
        }
        let mut events = Events::with_capacity(1024);
        loop {
            // Past the deadline (starting 10,000 connects against a slow acceptor can take
            // most of it), what is ready is still taken, a full batch at a time, before the
            // rest fail: a connection that came up in time is up, not an error.
            let now = Instant::now();
            let late = now >= deadline || cut.load(Ordering::Acquire);
            let wait = if late {
                Duration::ZERO
            } else {
                (deadline - now).min(MAX_POLL)
            };
            let mut seen = 0;
            if self.poll.poll(&mut events, Some(wait)).is_ok() {
                for event in events.iter() {
                    seen += 1;
                    self.on_connect_event(event.token().0, Instant::now(), false);
                }
            }
            let connecting = self
                .conns
                .iter()
                .any(|c| matches!(c.state, State::Connecting { .. }));
            if !connecting || (late && seen < events.capacity()) {
                break;
            }
        }
        let now = Instant::now();
        let why = io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "not established within the connect phase's {:.0} s (the server accepted too \
                 slowly, or its backlog was full)",
                timeout.as_secs_f64()
            ),
        );
        for i in 0..self.conns.len() {
            if matches!(self.conns[i].state, State::Connecting { .. }) {
                self.fail_with(i, kind::CONNECT, now, &why);
            }
        }
        self.part.connected = self
            .conns
            .iter()
            .filter(|c| matches!(c.state, State::Active))
            .count() as u64;
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
        let stopped = Instant::now().min(timeline.end);
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
        std::mem::replace(&mut self.part, Part::new())
    }

    /// Open loop: records the requests connection `i` had due before `stopped` but never sent,
    /// at their ages then (from their due times).
    fn record_unsent(&mut self, i: usize, stopped: Instant) {
        let Some(schedule) = self.schedule else {
            return;
        };
        let first = self.conns[i].issued;
        let due = |k: u64| schedule.due(self.origin, i, k);
        if due(first) >= stopped {
            return;
        }
        // Requests due before `stopped`: k from `first` while due(k) < stopped.
        let per_conn = schedule.connections as f64 / schedule.rate;
        let span = stopped.duration_since(due(first)).as_secs_f64();
        let count = (span / per_conn).floor() as u64 + 1;
        let step = count.div_ceil(UNSENT_STEPS).max(1);
        let mut k = 0;
        while k < count {
            let n = step.min(count - k);
            let age = stopped
                .saturating_duration_since(due(first + k))
                .as_micros() as u64;
            let _ = self.part.unfinished.record_n(age.clamp(1, MAX_US), n);
            k += n;
        }
        self.part.unsent += count;
    }

    /// Open loop: starts every free connection whose due time has come (counting how late it
    /// went out); returns the time after.
    fn release_due(&mut self) -> Instant {
        let mut now = Instant::now();
        while let Some(&Reverse((at, i))) = self.waiting.peek() {
            if at > now {
                break;
            }
            self.waiting.pop();
            let c = &mut self.conns[i];
            // An entry left by a connection that failed or was started another way since.
            if c.scheduled != Some(at) || c.in_flight || !matches!(c.state, State::Active) {
                continue;
            }
            c.scheduled = None;
            if self.in_window(at) {
                if let Some(h) = self.part.pacing.as_mut() {
                    record(h, now.duration_since(at).as_micros() as u64);
                }
            }
            self.start_batch(i, now, at);
            self.drive(i, !SHORT_READ_DRAINS, false);
            now = Instant::now();
        }
        now
    }

    /// Whether `t` falls in the measured window [start, end) (false before the timeline is
    /// known).
    fn in_window(&self, t: Instant) -> bool {
        self.window_start.is_some_and(|start| t >= start)
            && self.window_end.is_some_and(|end| t < end)
    }

    /// When connection `i`'s next batch is due: `None` in the closed loop (at once).
    fn next_due(&self, i: usize) -> Option<Instant> {
        let schedule = self.schedule?;
        Some(schedule.due(self.origin, i, self.conns[i].issued))
    }

    /// Fails the connections whose batch has waited longer than `timeout` (looked at every
    /// [`TIMEOUT_SCAN`], so a timeout fires up to that much late).
    fn expire(&mut self, now: Instant, timeout: Duration) {
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

    /// Reconnects connections whose retry time has come; returns the next retry time.
    fn retry_due(&mut self, now: Instant) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        for i in 0..self.conns.len() {
            match self.conns[i].state {
                State::Retry { at } if at <= now => self.start_connect(i, now),
                State::Retry { at } => next = Some(next.map_or(at, |n| n.min(at))),
                State::Connecting { since } if now - since > Duration::from_secs(3) => {
                    self.fail(i, kind::CONNECT, now)
                }
                _ => {}
            }
        }
        next
    }

    fn start_connect(&mut self, i: usize, now: Instant) {
        match TcpStream::connect(self.target) {
            Ok(mut stream) => {
                let interest = Interest::READABLE | Interest::WRITABLE;
                if self
                    .poll
                    .registry()
                    .register(&mut stream, Token(i), interest)
                    .is_err()
                {
                    self.fail(i, kind::CONNECT, now);
                    return;
                }
                let c = &mut self.conns[i];
                c.stream = Some(stream);
                c.state = State::Connecting { since: now };
            }
            Err(e) => self.fail_with(i, kind::CONNECT, now, &e),
        }
    }

    /// A readiness event on a connecting socket: connected, failed, or not yet.
    fn on_connect_event(&mut self, i: usize, now: Instant, start: bool) {
        // Later edges of a connection that is already up (the connect phase sees them too).
        if !matches!(self.conns[i].state, State::Connecting { .. }) {
            return;
        }
        let Some(stream) = self.conns[i].stream.as_ref() else {
            return;
        };
        match stream.take_error() {
            Ok(None) => {}
            Ok(Some(e)) | Err(e) => return self.fail_with(i, kind::CONNECT, now, &e),
        }
        match stream.peer_addr() {
            Ok(_) => {
                if stream.set_nodelay(true).is_err() {
                    return self.fail(i, kind::CONNECT, now);
                }
                self.conns[i].state = State::Active;
                self.inactive -= 1;
                if start {
                    self.start_request(i, now);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotConnected => {}
            Err(e) => self.fail_with(i, kind::CONNECT, now, &e),
        }
    }

    /// Starts connection `i`'s next batch now, or (open loop) when it falls due.
    fn start_request(&mut self, i: usize, now: Instant) {
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

    /// Open loop: connection `i` is free until `due`.
    fn wait_until(&mut self, i: usize, due: Instant) {
        self.conns[i].in_flight = false;
        self.conns[i].scheduled = Some(due);
        self.waiting.push(Reverse((due, i)));
    }

    /// Resets connection `i` for its next batch (echo: the batch's bytes, when pipelined),
    /// sent at `now` and due at `due`.
    fn start_batch(&mut self, i: usize, now: Instant, due: Instant) {
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
    fn drive(&mut self, i: usize, readable: bool, peer_closed: bool) {
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

    /// Records the answers `progress` took (inside the window only) and counts the bad ones.
    fn complete(&mut self, i: usize, now: Instant, progress: &Progress) {
        for _ in 0..progress.bad_status {
            self.count_error(kind::STATUS, now);
        }
        for _ in 0..progress.bad_body {
            self.count_error(kind::BODY, now);
        }
        let good = progress.answers - progress.bad_status - progress.bad_body;
        if good == 0 {
            return;
        }
        // Warm-up, or answers that arrived in the same poll batch after the window closed.
        let Some(window_start) = self.window_start.filter(|_| self.in_window(now)) else {
            return;
        };
        let c = &mut self.conns[i];
        let us = now.saturating_duration_since(c.due).as_micros() as u64;
        let sent_us = now.saturating_duration_since(c.started).as_micros() as u64;
        c.completed_in_window += good as u64;
        self.part.requests += good as u64;
        // This worker's own counter: a plain store, no read-modify-write per answer.
        self.live
            .requests
            .store(self.part.requests, std::sync::atomic::Ordering::Relaxed);
        self.part.bytes += progress.bytes;
        let slot = self.interval_slot(now, window_start);
        for _ in 0..good {
            record(&mut self.part.histogram, us);
            record(&mut self.part.intervals[slot].0, us);
        }
        if let Some(h) = self.part.uncorrected.as_mut() {
            for _ in 0..good {
                record(h, sent_us);
            }
        }
    }

    fn interval_slot(&mut self, now: Instant, window_start: Instant) -> usize {
        let slot = (now.duration_since(window_start).as_nanos() / self.interval.as_nanos().max(1))
            as usize;
        if self.part.intervals.len() <= slot {
            // The intervals before this one are over: the last of them goes to the progress
            // line (once a second, one small histogram).
            if let (Some((done, _)), Ok(mut last)) =
                (self.part.intervals.last(), self.live.last_interval.lock())
            {
                *last = Some((self.part.intervals.len() - 1, done.clone()));
            }
            while self.part.intervals.len() <= slot {
                self.part.intervals.push((new_interval_histogram(), 0));
            }
        }
        slot
    }

    /// [`fail`](Self::fail), keeping the OS's words for the first error of its kind.
    fn fail_with(&mut self, i: usize, kind: &'static str, now: Instant, e: &io::Error) {
        self.part
            .first_errors
            .entry(kind)
            .or_insert_with(|| e.to_string());
        self.fail(i, kind, now);
    }

    /// Counts an error, closes the connection, and schedules a reconnect.
    fn fail(&mut self, i: usize, kind: &'static str, now: Instant) {
        self.count_error(kind, now);
        self.close(i, now + RETRY_AFTER);
    }

    /// Closes connection `i` and connects again at once: the server closed it after a
    /// complete answer, as it may.
    fn reconnect(&mut self, i: usize, now: Instant) {
        self.close(i, now);
    }

    /// Counts an error in the window, or in the warm-up before it.
    fn count_error(&mut self, kind: &'static str, now: Instant) {
        match self.window_start.filter(|&start| now >= start) {
            Some(start) => {
                *self.part.errors.entry(kind).or_insert(0) += 1;
                self.live
                    .errors
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                // An error noticed just after the close belongs to the last interval: errors
                // are never dropped, and the time series still sums to the total.
                let at = self
                    .window_end
                    .map_or(now, |end| now.min(end - Duration::from_nanos(1)));
                let slot = self.interval_slot(at, start);
                self.part.intervals[slot].1 += 1;
            }
            None => *self.part.warmup_errors.entry(kind).or_insert(0) += 1,
        }
    }

    /// Closes connection `i`; it connects again at `retry`.
    fn close(&mut self, i: usize, retry: Instant) {
        let c = &mut self.conns[i];
        if matches!(c.state, State::Active) {
            self.inactive += 1;
        }
        if let Some(mut stream) = c.stream.take() {
            let _ = self.poll.registry().deregister(&mut stream);
        }
        c.in_flight = false;
        c.closing = false;
        c.scheduled = None;
        c.partial.clear();
        c.state = State::Retry { at: retry };
    }
}

/// Writes what is left of the connection's batch, then (when `may_read`) reads and checks
/// answers until the socket has nothing more or the batch is answered.
fn step(
    c: &mut Conn,
    exchange: &Exchange,
    pipeline: usize,
    scratch: &mut [u8],
    may_read: bool,
    peer_closed: bool,
    progress: &mut Progress,
) -> Outcome {
    let Some(stream) = c.stream.as_mut() else {
        return Outcome::Blocked;
    };
    if !c.in_flight {
        return Outcome::Blocked;
    }
    let request: &[u8] = match exchange {
        Exchange::Echo { .. } if pipeline > 1 => &c.batch,
        Exchange::Echo { payload, pattern } => {
            let offset = (c.seq % PERIOD as u64) as usize;
            &pattern[offset..offset + payload]
        }
        Exchange::Http(check) => &check.batch,
    };
    while c.sent < request.len() {
        match stream.write(&request[c.sent..]) {
            Ok(0) => return Outcome::Failed(kind::CLOSED, None),
            Ok(n) => c.sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Outcome::Failed(io_kind(&e), Some(e)),
        }
    }
    if !may_read {
        return Outcome::Blocked;
    }
    while c.answered < pipeline && !c.closing {
        let want = match exchange {
            Exchange::Echo { .. } if c.recvd >= c.sent => break,
            Exchange::Echo { .. } => (c.sent - c.recvd).min(scratch.len()),
            Exchange::Http(_) => scratch.len(),
        };
        let n = match stream.read(&mut scratch[..want]) {
            Ok(0) => return Outcome::Failed(kind::CLOSED, None),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Outcome::Failed(io_kind(&e), Some(e)),
        };
        let taken = match exchange {
            Exchange::Echo { payload, .. } => {
                if scratch[..n] != request[c.recvd..c.recvd + n] {
                    return Outcome::Failed(kind::MISMATCH, None);
                }
                let before = c.recvd / payload;
                c.recvd += n;
                let done = c.recvd / payload - before;
                progress.answers += done;
                progress.bytes += (done * payload) as u64;
                c.answered += done;
                Ok(())
            }
            Exchange::Http(check) => {
                let answers = Answers {
                    partial: &mut c.partial,
                    answered: &mut c.answered,
                    closing: &mut c.closing,
                };
                take_responses(answers, &scratch[..n], check, pipeline, progress)
            }
        };
        if let Err(kind) = taken {
            return Outcome::Failed(kind, None);
        }
        // A short read drained the socket; new data raises a new edge (not under mio on
        // Windows: see SHORT_READ_DRAINS).
        if SHORT_READ_DRAINS && n < want && !peer_closed {
            break;
        }
    }
    if c.answered < pipeline && !c.closing {
        Outcome::Blocked
    } else {
        Outcome::BatchDone
    }
}

/// The parts of a connection that taking HTTP answers changes.
struct Answers<'a> {
    partial: &'a mut Vec<u8>,
    answered: &'a mut usize,
    closing: &'a mut bool,
}

/// Parses and checks the HTTP responses in `input` (after any partial one kept from earlier
/// reads); keeps the start of an incomplete one. An answer the batch did not ask for, or an
/// answer after the server said it closes, is a parse error.
fn take_responses(
    c: Answers,
    input: &[u8],
    check: &HttpCheck,
    pipeline: usize,
    progress: &mut Progress,
) -> Result<(), &'static str> {
    let mut c = c;
    if c.partial.is_empty() {
        // The usual case: whole responses, parsed where they landed.
        let (used, result) = parse_responses(&mut c, input, check, pipeline, progress);
        if result.is_ok() {
            c.partial.extend_from_slice(&input[used..]);
        }
        return result;
    }
    // The buffer keeps its capacity: a connection stops allocating after its first few reads.
    let mut pending = std::mem::take(c.partial);
    pending.extend_from_slice(input);
    let (used, result) = parse_responses(&mut c, &pending, check, pipeline, progress);
    pending.drain(..used);
    if result.is_err() {
        pending.clear();
    }
    *c.partial = pending;
    result
}

/// Takes the complete responses at the start of `buf`; returns the bytes they used.
fn parse_responses(
    c: &mut Answers,
    buf: &[u8],
    check: &HttpCheck,
    pipeline: usize,
    progress: &mut Progress,
) -> (usize, Result<(), &'static str>) {
    let mut pos = 0;
    while pos < buf.len() {
        if *c.answered >= pipeline || *c.closing {
            return (pos, Err(kind::PARSE));
        }
        match parse_response(&buf[pos..], check.expect_body.as_deref()) {
            Ok(Some(r)) => {
                pos += r.len;
                if r.interim {
                    continue;
                }
                *c.answered += 1;
                *c.closing = r.close;
                progress.answers += 1;
                progress.bytes += r.len as u64;
                if !(200..400).contains(&r.status) {
                    progress.bad_status += 1;
                } else if r.body_differs {
                    progress.bad_body += 1;
                }
            }
            Ok(None) => break,
            Err(_) => return (pos, Err(kind::PARSE)),
        }
    }
    (pos, Ok(()))
}

fn io_kind(e: &io::Error) -> &'static str {
    match e.kind() {
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => kind::RESET,
        io::ErrorKind::ConnectionRefused => kind::CONNECT,
        _ => kind::IO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::Shape;

    /// Regression: when starting the connects used up the connect phase (10,000 connects
    /// against a `blocking` server under load), every connection was failed unseen, even those
    /// the kernel had established meanwhile.
    #[test]
    fn connects_established_by_the_deadline_count_even_when_it_has_passed() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let config = LoadConfig {
            target: listener.local_addr().unwrap(),
            shape: Shape {
                workload: crate::protocol::Workload::Echo,
                connections: 8,
                duration: Duration::from_secs(1),
                warmup: Duration::ZERO,
                payload: 8,
                pipeline: 1,
                timeout: None,
                rate: None,
                interval: Duration::from_secs(1),
            },
            threads: 1,
            http: None,
            cpus: None,
            count_syscalls: false,
            connect_timeout: Duration::ZERO,
            processes: 1,
        };
        let exchange = Exchange::Echo {
            payload: 8,
            pattern: pattern(8).into(),
        };
        let mut w = Worker::new(&config, 0, 8, exchange, None, Arc::default()).unwrap();
        // Loopback connects to a listening socket complete inside connect(2).
        w.connect_all(Duration::ZERO, &AtomicBool::new(false));
        assert_eq!(w.part.connected, 8);
        assert!(
            w.part.warmup_errors.is_empty(),
            "{:?}",
            w.part.warmup_errors
        );
    }

    #[test]
    fn due_times_deal_the_rate_round_robin_over_every_connection() {
        // 4 connections at 1000 req/s, two threads of two: request n of the run is due at
        // n ms, connection i of 4 takes n = k*4 + i.
        let origin = Instant::now();
        let second = Schedule {
            rate: 1000.0,
            connections: 4,
            first: 2,
        };
        let ms = |t: Instant| t.duration_since(origin).as_secs_f64() * 1e3;
        assert!((ms(second.due(origin, 0, 0)) - 2.0).abs() < 1e-6);
        assert!((ms(second.due(origin, 1, 0)) - 3.0).abs() < 1e-6);
        assert!((ms(second.due(origin, 0, 1)) - 6.0).abs() < 1e-6);
        assert!((ms(second.due(origin, 1, 250)) - 1003.0).abs() < 1e-6);
    }
}
