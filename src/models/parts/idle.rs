//! The idle timeout (`--idle-timeout`): what the models share to close connections that
//! complete no request for too long.
//!
//! The rule, the same in every model: a connection is closed once it has completed no request
//! for the timeout, counted from its accept or from the last request it completed. That covers
//! an idle keep-alive connection, a connection that never sends, one that trickles a request a
//! byte at a time (slowloris: bytes arrive, no request completes), and one whose client stopped
//! reading its replies (reading paused, no request completes). It is nginx's
//! `client_header_timeout` and `keepalive_timeout` in one, Redis's `timeout`, Tomcat's
//! `connectionTimeout`. A request is what the session counts ([`Session::completed`]): an HTTP
//! response, an echo message of `--message-size` bytes (without one, every read).
//!
//! What a model may not do for it is pay per request: system calls per request are a published
//! figure. So no model makes a system call or takes a lock per request for it (only `tokio`
//! touches a timer per request: a clock read through the vDSO and a few atomics). The loops (reactors, io_uring)
//! sweep their connections every [`sweep_interval`], as Redis's `clientsCron` does: each
//! connection remembers the request count it had at the previous sweep ([`Idle`]), and one
//! whose count has not moved for the timeout is closed. The blocking models' reaper thread and
//! the IOCP threads do the same over their registries; `proactor-emulated` and `tokio` use
//! timers in their own idiom. A connection is therefore closed between the timeout and the
//! timeout plus two sweep intervals after its last request, never before.
//!
//! [`Session::completed`]: crate::protocol::Session::completed

use std::time::{Duration, Instant};

/// How often a model looks for idle connections under `timeout`: an eighth of it (so a
/// connection outlives its timeout by a quarter at most), between 10 ms and 1 s (Redis checks
/// its clients ten times a second; more often buys nothing at a minute's timeout).
pub fn sweep_interval(timeout: Duration) -> Duration {
    (timeout / 8).clamp(Duration::from_millis(10), Duration::from_secs(1))
}

/// When a single-threaded loop sweeps next: its poller's wait ends by then.
#[derive(Debug)]
pub struct Sweep {
    timeout: Duration,
    interval: Duration,
    next: Instant,
}

impl Sweep {
    /// `None` when there is no timeout (`--idle-timeout 0`).
    pub fn new(timeout: Option<Duration>) -> Option<Sweep> {
        let timeout = timeout.filter(|t| !t.is_zero())?;
        let interval = sweep_interval(timeout);
        Some(Sweep {
            timeout,
            interval,
            next: Instant::now() + interval,
        })
    }

    /// The idle timeout it sweeps for.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// When the next sweep is due.
    pub fn next(&self) -> Instant {
        self.next
    }

    /// Whether a sweep is due at `now`; when it is, the one after is scheduled.
    pub fn due(&mut self, now: Instant) -> bool {
        if now < self.next {
            return false;
        }
        self.next = now + self.interval;
        true
    }
}

/// For a loop's optional sweep: the timeout, when a sweep is due at `now` (the next one is
/// then scheduled).
pub fn sweep_due(sweep: &mut Option<Sweep>, now: Instant) -> Option<Duration> {
    let sweep = sweep.as_mut()?;
    sweep.due(now).then_some(sweep.timeout)
}

/// One connection's idle bookkeeping: its request count at the last sweep that saw it move,
/// and when that was.
#[derive(Clone, Copy, Debug)]
pub struct Idle {
    seen: u64,
    since: Instant,
}

impl Idle {
    /// A connection accepted `now` (it has completed no request yet).
    pub fn new(now: Instant) -> Idle {
        Idle {
            seen: 0,
            since: now,
        }
    }

    /// At a sweep at `now`, with the connection's request count `completed`: whether it has
    /// completed none for `timeout`. A count that moved restarts the clock from `now` (later
    /// than the request itself: the close comes late, never early).
    pub fn expired(&mut self, completed: u64, now: Instant, timeout: Duration) -> bool {
        if completed != self.seen {
            self.seen = completed;
            self.since = now;
            return false;
        }
        now.saturating_duration_since(self.since) >= timeout
    }
}

/// The earlier of two optional deadlines.
pub fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_expires_a_timeout_after_its_last_request_and_not_before() {
        let t0 = Instant::now();
        let timeout = Duration::from_secs(2);
        let mut idle = Idle::new(t0);
        assert!(!idle.expired(0, t0 + Duration::from_millis(1999), timeout));
        assert!(
            idle.expired(0, t0 + timeout, timeout),
            "never sent a request"
        );
        let mut idle = Idle::new(t0);
        // A request completed; the sweep at 1.5 s sees it.
        assert!(!idle.expired(1, t0 + Duration::from_millis(1500), timeout));
        assert!(!idle.expired(1, t0 + Duration::from_millis(3400), timeout));
        assert!(idle.expired(1, t0 + Duration::from_millis(3500), timeout));
    }

    #[test]
    fn sweeps_come_an_eighth_of_the_timeout_apart_within_bounds() {
        assert_eq!(
            sweep_interval(Duration::from_secs(2)),
            Duration::from_millis(250)
        );
        assert_eq!(
            sweep_interval(Duration::from_secs(60)),
            Duration::from_secs(1)
        );
        assert_eq!(
            sweep_interval(Duration::from_millis(20)),
            Duration::from_millis(10)
        );
        assert!(Sweep::new(Some(Duration::ZERO)).is_none(), "0 means never");
        assert!(Sweep::new(None).is_none());
        let mut s = Sweep::new(Some(Duration::from_secs(2))).unwrap();
        let first = s.next();
        assert!(!s.due(first - Duration::from_millis(1)));
        assert!(s.due(first));
        assert_eq!(s.next(), first + Duration::from_millis(250));
    }
}
