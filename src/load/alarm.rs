//! Waking a load thread when an open-loop request falls due, to well under a millisecond.
//!
//! A poller's own timeout is too coarse for pacing: epoll_wait takes milliseconds, and mio
//! rounds a timeout up to the next one, so a request due in 300 µs would go out up to 1 ms late
//! and that lateness would land in its latency. On Linux a timerfd in the same poller wakes the
//! thread at the due time (a high-resolution timer; the thread's timer slack is set to 1 µs
//! so the kernel does not defer the wake-up by its default 50 µs). Elsewhere the poll waits
//! until 2 ms before the due time and then polls without waiting (a busy wait over the last
//! stretch, the usual remedy when there is no precise timer).

use std::io;
use std::time::{Duration, Instant};

use mio::{Registry, Token};

/// The last stretch before a due time that is busy-waited where there is no timerfd.
#[cfg(not(target_os = "linux"))]
const SPIN: Duration = Duration::from_millis(2);

pub(super) struct Alarm {
    #[cfg(target_os = "linux")]
    fd: std::os::fd::OwnedFd,
    /// The time the timer is set for, while it is set.
    armed: Option<Instant>,
}

impl Alarm {
    /// An alarm whose expiry raises a readable event with `token` in `registry`'s poller.
    #[cfg(target_os = "linux")]
    pub(super) fn new(registry: &Registry, token: Token) -> io::Result<Alarm> {
        use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
        // SAFETY: plain system calls on arguments that are constants; the descriptor returned is
        // checked and then owned by `OwnedFd` alone.
        let fd = unsafe {
            libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0);
            let fd = libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            );
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            OwnedFd::from_raw_fd(fd)
        };
        registry.register(
            &mut mio::unix::SourceFd(&fd.as_raw_fd()),
            token,
            mio::Interest::READABLE,
        )?;
        Ok(Alarm { fd, armed: None })
    }

    #[cfg(not(target_os = "linux"))]
    pub(super) fn new(_: &Registry, _: Token) -> io::Result<Alarm> {
        Ok(Alarm { armed: None })
    }

    /// Makes the next poll return by `at` (not before `now`); returns the longest the poll may
    /// wait for it (`None`: the alarm itself will end the wait).
    pub(super) fn wake_at(&mut self, at: Instant, now: Instant) -> io::Result<Option<Duration>> {
        if at <= now {
            return Ok(Some(Duration::ZERO));
        }
        self.set(at, now)
    }

    #[cfg(target_os = "linux")]
    fn set(&mut self, at: Instant, now: Instant) -> io::Result<Option<Duration>> {
        use std::os::fd::AsRawFd;
        if self.armed == Some(at) {
            return Ok(None);
        }
        let after = at - now;
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: after.as_secs() as libc::time_t,
                // Never zero: a zero value would disarm the timer.
                tv_nsec: libc::c_long::from(after.subsec_nanos().max(1)),
            },
        };
        // SAFETY: `spec` lives through the call; the old value is not asked for.
        let rc =
            unsafe { libc::timerfd_settime(self.fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        self.armed = Some(at);
        Ok(None)
    }

    #[cfg(not(target_os = "linux"))]
    fn set(&mut self, at: Instant, now: Instant) -> io::Result<Option<Duration>> {
        let left = at - now;
        self.armed = Some(at);
        Ok(Some(left.saturating_sub(SPIN)))
    }

    /// The alarm's event came: it is no longer set. Its expiry count is not read off: mio's
    /// poller is edge-triggered, and every expiry raises a new edge whether or not the last
    /// one was read (a `read` per wake-up would cost the client a system call per request).
    pub(super) fn fired(&mut self) {
        self.armed = None;
    }
}
