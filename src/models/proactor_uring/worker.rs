//! One ring, one thread: what the thread shares with the server, the worker built on its ring
//! (file table and provided buffers registered), the loop that submits and reaps (one
//! `io_uring_enter` per iteration that both submits and waits), the dispatch of completions,
//! the idle sweep, the close of a connection, and the stop. The operations are steps of the
//! worker, above it: `accept.rs`, `recv.rs`, `send.rs`; below it the ring's setup flags and
//! sizes in `setup.rs`, the recv a ring arms in `recv_mode.rs`.

use std::io;
use std::net::TcpListener;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use io_uring::{cqueue, opcode, types, IoUring};
use slab::Slab;

use super::buf_ring::BufRing;
use super::conn::{Conn, Life, Mem, RecvState, Sending};
use super::op::{decode, user_data, Op};
use super::options::{UringOptions, UringSetup, ZC_MIN_BYTES};
use super::recv_mode::Recv;
use super::setup::{build_ring, BUFFERS, BUFFER_BYTES, CQ_ENTRIES, FILES_MAX, GROUP};
use crate::models::parts::idle::sweep_interval;
use crate::models::parts::mio_loop::ACCEPT_RETRY;
use crate::protocol::Protocol;
use crate::sys;

/// How long a stopping ring waits for its operations to end.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// What a ring's thread shares with the server that started it.
pub(super) struct Shared {
    pub(super) stop: AtomicBool,
    /// Written to wake the ring's thread (it keeps a read armed on it).
    pub(super) wake: OwnedFd,
    pub(super) connections: AtomicU64,
}

pub(super) struct Worker {
    /// Declared first: dropped before the buffers the kernel may still write into.
    pub(super) ring: IoUring,
    pub(super) bufs: BufRing,
    /// Memory of zero-copy sends waiting for their notification.
    pub(super) held: Slab<Mem>,
    pub(super) conns: Slab<Conn>,
    /// Connections whose recv ended with -ENOBUFS, re-armed as buffers come back.
    pub(super) starved: Vec<usize>,
    pub(super) listener: TcpListener,
    pub(super) protocol: Protocol,
    pub(super) options: UringOptions,
    /// The recv connections arm (capped multishot, or single-shot on an older kernel).
    pub(super) recv: Recv,
    pub(super) shared: Arc<Shared>,
    /// Where the eventfd read lands; boxed so its address is stable while the read is armed.
    pub(super) wake_buf: Box<[u8; 8]>,
    /// The accept back-off's timeout, boxed for the same reason.
    pub(super) retry_after: Box<types::Timespec>,
    /// `--idle-timeout`, and the interval of the sweep timer (boxed: the kernel reads it).
    pub(super) idle_timeout: Option<Duration>,
    pub(super) sweep_every: Box<types::Timespec>,
    pub(super) sweep_armed: bool,
    pub(super) accept_armed: bool,
    /// The armed accept is multishot (else a single accept).
    pub(super) accept_multishot: bool,
    /// A cancel of the multishot accept was submitted (the table is filling up).
    pub(super) accept_cancelling: bool,
    /// Slots of the registered file table.
    pub(super) files: usize,
    /// Connections accepted while stopping whose Close has not completed (they hold slots).
    pub(super) strays: usize,
    /// Loop-wide operations in flight (accept, wake read, retry timer, stray closes, cancels).
    pub(super) loop_ops: u32,
    pub(super) retrying: bool,
    pub(super) stopping: bool,
    /// Connections whose send was queued since the last wait (see [`Worker::wait_nr`]).
    pub(super) sent: Vec<usize>,
}

impl Worker {
    pub(super) fn new(
        listener: TcpListener,
        protocol: Protocol,
        options: UringOptions,
        idle_timeout: Option<Duration>,
        shared: Arc<Shared>,
    ) -> io::Result<(Worker, UringSetup)> {
        let (ring, flags, refused) = build_ring(&options)?;
        // Direct descriptors do not take slots in the process's descriptor table, but the
        // kernel caps the registered table at the open-file limit.
        let nofile = sys::nofile_limit().map_or(1024, |(soft, _)| soft);
        let files = (FILES_MAX as u64).min(nofile).max(1) as u32;
        ring.submitter().register_files_sparse(files).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot register a file table of {files} entries: {e}"),
            )
        })?;
        let bufs = BufRing::new(&ring, BUFFERS, BUFFER_BYTES, GROUP).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot register a provided buffer ring: {e}"),
            )
        })?;
        let setup = UringSetup {
            setup_flags: flags,
            refused,
            sqpoll: options.sqpoll,
            send_zc: options.zc,
            zc_min_bytes: ZC_MIN_BYTES,
            listener: options.listener,
            registered_files: true,
            buffers: bufs.entries() as u32,
            buffer_bytes: bufs.size(),
            recv: Recv::here().describe(),
        };
        let worker = Worker {
            ring,
            bufs,
            held: Slab::new(),
            conns: Slab::new(),
            starved: Vec::new(),
            listener,
            protocol,
            options,
            recv: Recv::here(),
            shared,
            wake_buf: Box::new([0; 8]),
            retry_after: Box::new(types::Timespec::from(ACCEPT_RETRY)),
            idle_timeout,
            sweep_every: Box::new(types::Timespec::from(
                idle_timeout.map_or(Duration::ZERO, sweep_interval),
            )),
            sweep_armed: false,
            accept_armed: false,
            accept_multishot: false,
            accept_cancelling: false,
            files: files as usize,
            strays: 0,
            loop_ops: 0,
            retrying: false,
            stopping: false,
            sent: Vec::new(),
        };
        Ok((worker, setup))
    }
}

impl Worker {
    pub(super) fn run(mut self) -> io::Result<()> {
        self.arm_wake();
        self.arm_accept();
        self.arm_sweep();
        let mut completions: Vec<(u64, i32, u32)> = Vec::with_capacity(CQ_ENTRIES as usize);
        let mut deadline = None;
        loop {
            self.bufs.publish();
            let wait_nr = self.wait_nr();
            self.sent.clear();
            let waited = if self.stopping {
                // Bounded waits while stopping, so a stuck operation cannot hang `stop`.
                let ts = types::Timespec::new().nsec(50_000_000);
                let args = types::SubmitArgs::new().timespec(&ts);
                self.ring.submitter().submit_with_args(1, &args)
            } else {
                self.ring.submit_and_wait(wait_nr)
            };
            match waited {
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::EINTR) | Some(libc::EBUSY) | Some(libc::ETIME)
                    ) => {}
                Err(e) => {
                    self.abandon();
                    return Err(e);
                }
            }
            completions.clear();
            completions.extend(
                self.ring
                    .completion()
                    .map(|c| (c.user_data(), c.result(), c.flags())),
            );
            for &(ud, res, flags) in &completions {
                self.complete(ud, res, flags);
            }
            self.rearm_starved();
            if self.stopping {
                if self.conns.is_empty() && self.loop_ops == 0 && self.held.is_empty() {
                    return Ok(());
                }
                let at = *deadline.get_or_insert_with(|| Instant::now() + STOP_GRACE);
                if Instant::now() > at {
                    let left = self.conns.len();
                    self.abandon();
                    return Err(io::Error::other(format!(
                        "a ring did not stop within {STOP_GRACE:?} ({left} connections left)"
                    )));
                }
            }
        }
    }

    /// How many completions the next `io_uring_enter` waits for: one, plus one for each send
    /// queued since the last wait when none of their completions would lead to anything but a
    /// buffer going back. Such a send completes inside the call that submits it (a plain send
    /// carries MSG_DONTWAIT, so io_uring never leaves it waiting for room: see
    /// `Worker::submit_send`), so waiting for it too costs nothing, and the call returns with
    /// the next request instead of returning at once with the send's completion and entering
    /// again (two calls per request on one connection, one with this; liburing's
    /// `io_uring_submit_and_wait` takes the count for this). The wait stays at one when a
    /// send's completion would start something (more bytes queued behind it, held requests, a
    /// paused recv, a connection closing, buffers that a starved recv waits for), or could come
    /// later (a parked send, waiting for the peer to read; a zero-copy send). No timeout
    /// bounds the wait, since none is needed: a first version instead bounded it by 1 ms, and
    /// arming that timer on every wait cost 13-17% more CPU per request at one connection on the
    /// reference VM (results/reference/exhibits/README.md).
    fn wait_nr(&self) -> usize {
        if self.sent.is_empty() || !self.starved.is_empty() {
            return 1;
        }
        let waits_on_it = |slot: &usize| {
            self.conns.get(*slot).map_or(true, |c| {
                !c.backlog.is_empty()
                    || c.ending()
                    || !c.recv.armed()
                    || c.session.unanswered()
                    || !matches!(c.sending, Some(Sending::Own { parked: false, .. }))
            })
        };
        if self.sent.iter().any(waits_on_it) {
            1
        } else {
            1 + self.sent.len()
        }
    }

    /// Gives up on operations still in flight: the memory they may touch is leaked, never
    /// freed under the kernel.
    pub(super) fn abandon(self) {
        let Worker {
            ring,
            bufs,
            held,
            conns,
            ..
        } = self;
        drop(ring);
        std::mem::forget(bufs);
        std::mem::forget(held);
        std::mem::forget(conns);
    }

    /// Queues `entry`, submitting what is queued first when the submission queue is full.
    pub(super) fn push(&mut self, entry: io_uring::squeue::Entry) {
        loop {
            // SAFETY: every buffer an entry points at outlives its operation: provided buffers
            // and held memory live in `self` until the ring is gone, a connection's send
            // memory stays in its `sending` until the send completed, and the boxed wake
            // buffer and timespec live as long as `self`.
            if unsafe { self.ring.submission().push(&entry) }.is_ok() {
                return;
            }
            if let Err(e) = self.ring.submit() {
                if e.raw_os_error() != Some(libc::EBUSY) && e.raw_os_error() != Some(libc::EINTR) {
                    // Nothing sensible is left to do with an io_uring that refuses to submit.
                    panic!("io_uring_enter failed while submitting: {e}");
                }
            }
        }
    }

    pub(super) fn arm_wake(&mut self) {
        let fd = self.shared.wake.as_raw_fd();
        let entry = opcode::Read::new(types::Fd(fd), self.wake_buf.as_mut_ptr(), 8)
            .build()
            .user_data(user_data(Op::Wake, 0, 0));
        self.loop_ops += 1;
        self.push(entry);
    }

    /// Arms the idle sweep's timer (with an idle timeout, unless stopping): a Timeout
    /// operation, whose completion the loop reaps with everything else.
    pub(super) fn arm_sweep(&mut self) {
        if self.idle_timeout.is_none() || self.sweep_armed || self.stopping {
            return;
        }
        let timer = opcode::Timeout::new(&*self.sweep_every as *const types::Timespec)
            .build()
            .user_data(user_data(Op::Sweep, 0, 0));
        self.sweep_armed = true;
        self.loop_ops += 1;
        self.push(timer);
    }

    /// The sweep's timer went off: closes every connection that completed no request for the
    /// idle timeout (a Shutdown ends its operations first), and arms the next.
    pub(super) fn sweep_idle(&mut self) {
        self.sweep_armed = false;
        self.loop_ops -= 1;
        let Some(timeout) = self.idle_timeout.filter(|_| !self.stopping) else {
            return;
        };
        let now = Instant::now();
        let expired: Vec<usize> = self
            .conns
            .iter_mut()
            .filter(|(_, c)| !c.ending())
            .filter_map(|(slot, c)| {
                c.idle
                    .expired(c.session.completed(), now, timeout)
                    .then_some(slot)
            })
            .collect();
        for slot in expired {
            self.conns[slot].fail();
            self.progress(slot);
        }
        self.arm_sweep();
    }

    pub(super) fn complete(&mut self, ud: u64, res: i32, flags: u32) {
        let (op, slot, extra) = decode(ud);
        match op {
            Some(Op::Accept) => self.on_accept(res, flags),
            Some(Op::AcceptRetry) => {
                self.loop_ops -= 1;
                self.retrying = false;
                self.arm_accept();
            }
            Some(Op::Wake) => {
                self.loop_ops -= 1;
                if self.shared.stop.load(Ordering::Acquire) {
                    self.begin_stop();
                } else if !self.stopping {
                    self.arm_wake();
                }
            }
            Some(Op::LoopCancel) => self.loop_ops -= 1,
            Some(Op::StrayClose) => {
                self.loop_ops -= 1;
                self.strays -= 1;
            }
            Some(Op::Recv) => self.on_recv(slot, res, flags),
            Some(Op::Send) if cqueue::notif(flags) => self.release_held(extra),
            Some(Op::Send) => self.on_send(slot, res, flags, extra),
            Some(Op::Cancel) | Some(Op::Shutdown) => {
                self.conns[slot].ops -= 1;
                self.progress(slot);
            }
            Some(Op::Close) => {
                self.conns.remove(slot);
                self.arm_accept();
            }
            Some(Op::Sweep) => self.sweep_idle(),
            None => debug_assert!(false, "a completion with unknown user_data {ud:#x}"),
        }
    }

    /// Closes the connection once it should be and nothing is in flight on it: a failed one
    /// at once (a Shutdown ends its operations first), one whose reading ended once every
    /// reply byte was sent.
    pub(super) fn progress(&mut self, slot: usize) {
        let c = &mut self.conns[slot];
        let drained = c.sending.is_none() && c.backlog.is_empty();
        let due = match c.life {
            Life::Open | Life::Closing => false,
            Life::ReadDone => drained,
            // A connection shutting down had failed, or was done reading and drained.
            Life::Failed | Life::ShuttingDown => true,
        };
        if !due {
            return;
        }
        let file = types::Fixed(c.file);
        if c.ops > 0 {
            if c.life != Life::ShuttingDown {
                c.life = Life::ShuttingDown;
                c.ops += 1;
                let entry = opcode::Shutdown::new(file, libc::SHUT_RDWR)
                    .build()
                    .user_data(user_data(Op::Shutdown, slot, 0));
                self.push(entry);
            }
            return;
        }
        c.life = Life::Closing;
        let entry = opcode::Close::new(file)
            .build()
            .user_data(user_data(Op::Close, slot, 0));
        self.push(entry);
    }

    /// Re-arms connections starved of buffers, as many as there are buffers free.
    pub(super) fn rearm_starved(&mut self) {
        let mut budget = self.bufs.available();
        while budget > 0 {
            let Some(slot) = self.starved.pop() else {
                return;
            };
            if let Some(c) = self.conns.get_mut(slot) {
                if c.recv == RecvState::Starved {
                    c.recv = RecvState::Idle;
                    budget -= 1;
                    self.arm_recv(slot);
                    self.progress(slot);
                }
            }
        }
    }

    /// Stops listening and closes every connection; `run` returns once nothing is in flight.
    pub(super) fn begin_stop(&mut self) {
        if self.stopping {
            return;
        }
        self.stopping = true;
        // Refuse new connections now, whatever the ring still has armed.
        let _ = sys::wake_acceptor(&self.listener);
        for (op, armed) in [
            (Op::Accept, self.accept_armed),
            (Op::AcceptRetry, self.retrying),
            (Op::Sweep, self.sweep_armed),
        ] {
            if armed {
                let cancel = opcode::AsyncCancel::new(user_data(op, 0, 0))
                    .build()
                    .user_data(user_data(Op::LoopCancel, 0, 0));
                self.loop_ops += 1;
                self.push(cancel);
            }
        }
        let slots: Vec<usize> = self.conns.iter().map(|(slot, _)| slot).collect();
        for slot in slots {
            self.conns[slot].fail();
            self.progress(slot);
        }
        self.starved.clear();
    }
}
