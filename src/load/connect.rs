//! A client thread's connections to the target: the connect phase (every connection up, or
//! counted as failed, before the clock starts), connecting again, and failing a connection.
//!
//! A connection that fails is counted by kind, closed, and reconnected 10 ms later. A
//! connection the server closes after a complete answer (as HTTP allows) reconnects at once.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Token};

use super::conn::State;
use super::part::kind;
use super::worker::{Worker, MAX_POLL};

const RETRY_AFTER: Duration = Duration::from_millis(10);

/// The worker's connection steps.
impl Worker {
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

    /// Reconnects connections whose retry time has come; returns the next retry time.
    pub(super) fn retry_due(&mut self, now: Instant) -> Option<Instant> {
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

    pub(super) fn start_connect(&mut self, i: usize, now: Instant) {
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
    pub(super) fn on_connect_event(&mut self, i: usize, now: Instant, start: bool) {
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

    /// [`fail`](Self::fail), keeping the OS's words for the first error of its kind.
    pub(super) fn fail_with(&mut self, i: usize, kind: &'static str, now: Instant, e: &io::Error) {
        self.part
            .first_errors
            .entry(kind)
            .or_insert_with(|| e.to_string());
        self.fail(i, kind, now);
    }

    /// Counts an error, closes the connection, and schedules a reconnect.
    pub(super) fn fail(&mut self, i: usize, kind: &'static str, now: Instant) {
        self.count_error(kind, now);
        self.close(i, now + RETRY_AFTER);
    }

    /// Closes connection `i` and connects again at once: the server closed it after a
    /// complete answer, as it may.
    pub(super) fn reconnect(&mut self, i: usize, now: Instant) {
        self.close(i, now);
    }

    /// Closes connection `i`; it connects again at `retry`.
    pub(super) fn close(&mut self, i: usize, retry: Instant) {
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::load::exchange::{pattern, Exchange};
    use crate::load::{LoadConfig, Shape};

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
            segment: None,
            start_at: None,
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
}
