//! How a connection receives: a multishot recv capped at [`RECV_CAP`] bytes per arming where
//! the kernel has the cap (Linux 6.17), else a single-shot recv; both into the provided buffer
//! ring.
//!
//! An uncapped multishot recv goes on posting completions until it is cancelled, and the cancel
//! lands only after the completions already posted: a client that sends without reading got up
//! to 32 buffers (1 MiB) past the reply high-water mark into the server per round (issue 18:
//! 1.2 MiB per never-reading connection). Capped, an arming ends after `RECV_CAP` bytes and the
//! loop re-arms it only while the connection's replies are being taken: the backpressure
//! Netty's io_uring transport asked the kernel for (the cap's patch is Norman Maurer's). With
//! small requests the cap costs one submission entry per 32 KiB received, and no system call
//! (it rides on the next wait).
//!
//! Below that choice, the ring's side of receiving: arming a connection's recv (unless it is
//! paused, starved of buffers or done reading), taking a completion, and handing the bytes to
//! the session, echoing straight from the provided buffer when nothing is queued before them.

use std::os::fd::AsRawFd;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use io_uring::{cqueue, opcode, squeue, types, IoUring};

use super::buf_ring::BufRing;
use super::conn::{Mem, RecvState, RESUME_BELOW};
use super::op::{user_data, Op};
use super::worker::Worker;
use super::RECV_ENV;
use crate::models::parts::mio_loop::OUT_HIGH_WATER;
use crate::protocol::Flow;

/// Bytes one arming of a multishot recv takes before it ends (the last buffer may take it up to
/// one buffer past this); a reply batch's worth (`protocol::REPLY_BATCH`).
pub const RECV_CAP: u32 = crate::protocol::REPLY_BATCH as u32;

/// The recv a ring arms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recv {
    /// Multishot, ended by the kernel after [`RECV_CAP`] bytes.
    CappedMultishot,
    /// One completion per arming (a kernel without the cap, or the test hook).
    SingleShot,
}

impl Recv {
    /// The recv this kernel takes (probed once per process; `IOMODELS_URING_RECV=single`
    /// forces the fallback).
    pub fn here() -> Recv {
        static PROBED: OnceLock<Recv> = OnceLock::new();
        *PROBED.get_or_init(|| {
            if std::env::var(RECV_ENV).as_deref() == Ok("single") || !cap_works() {
                Recv::SingleShot
            } else {
                Recv::CappedMultishot
            }
        })
    }

    /// As recorded in the ring setup.
    pub fn describe(self) -> String {
        match self {
            Recv::CappedMultishot => format!("multishot, {} KiB per arming", RECV_CAP >> 10),
            Recv::SingleShot => "single-shot (this kernel has no multishot recv cap: \
                                 Linux 6.17 or later)"
                .into(),
        }
    }

    /// The entry that arms a recv on direct descriptor `file` from buffer group `group`.
    pub fn entry(self, file: u32, group: u16) -> squeue::Entry {
        match self {
            Recv::CappedMultishot => with_optlen(
                opcode::RecvMulti::new(types::Fixed(file), group).build(),
                RECV_CAP,
            ),
            Recv::SingleShot => opcode::Recv::new(types::Fixed(file), std::ptr::null_mut(), 0)
                .buf_group(group)
                .build()
                .flags(squeue::Flags::BUFFER_SELECT),
        }
    }
}

/// `entry` with the submission entry's `optlen` set: for a multishot recv, the total it takes
/// before it ends. The io-uring crate has no setter for it yet.
fn with_optlen(entry: squeue::Entry, optlen: u32) -> squeue::Entry {
    // Bytes 44..48 of the kernel's 64-byte `struct io_uring_sqe` are the union of
    // `splice_fd_in`, `file_index` and `optlen` (include/uapi/linux/io_uring.h).
    const OPTLEN: usize = 44;
    // SAFETY: `squeue::Entry` is `#[repr(C)]` around the kernel's `io_uring_sqe`, 64 bytes of
    // plain integers (transmute checks the size); any bytes make a valid entry.
    let mut raw: [u8; 64] = unsafe { std::mem::transmute(entry) };
    raw[OPTLEN..OPTLEN + 4].copy_from_slice(&optlen.to_ne_bytes());
    // SAFETY: as above.
    unsafe { std::mem::transmute::<[u8; 64], squeue::Entry>(raw) }
}

/// Whether a capped multishot recv works here: on a socket pair, with 6 bytes sent and a cap of
/// 4, the first completion takes the bytes and ends the arming (a kernel without the cap
/// refuses the entry with EINVAL).
fn cap_works() -> bool {
    let Ok(mut ring) = IoUring::new(8) else {
        return false;
    };
    let Ok(bufs) = BufRing::new(&ring, 2, 64, 0) else {
        return false;
    };
    let Ok((mine, theirs)) = std::os::unix::net::UnixStream::pair() else {
        return false;
    };
    let recv = with_optlen(
        opcode::RecvMulti::new(types::Fd(mine.as_raw_fd()), 0).build(),
        4,
    )
    .user_data(1);
    // SAFETY: the recv writes only into the buffer ring's memory, dropped after the ring.
    if unsafe { ring.submission().push(&recv) }.is_err() {
        return false;
    }
    if std::io::Write::write_all(&mut &theirs, b"probe!").is_err() {
        return false;
    }
    let first = next(&mut ring);
    // Whatever happened, end the recv before the buffers go away.
    drop(theirs);
    let mut last = first;
    while last.is_some_and(|(_, flags)| cqueue::more(flags)) {
        last = next(&mut ring);
    }
    drop(ring);
    drop(bufs);
    matches!(first, Some((res, flags)) if res > 0 && !cqueue::more(flags))
}

/// The next completion within a second.
fn next(ring: &mut IoUring) -> Option<(i32, u32)> {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        if let Some(cqe) = ring.completion().next() {
            return Some((cqe.result(), cqe.flags()));
        }
        if Instant::now() > deadline {
            return None;
        }
        let ts = types::Timespec::new().nsec(10_000_000);
        let args = types::SubmitArgs::new().timespec(&ts);
        if let Err(e) = ring.submitter().submit_with_args(1, &args) {
            if !matches!(e.raw_os_error(), Some(libc::ETIME) | Some(libc::EINTR)) {
                return None;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The ring's side: arming a connection's recv and taking what it received.

impl Worker {
    pub(super) fn arm_recv(&mut self, slot: usize) {
        let c = &mut self.conns[slot];
        if c.recv != RecvState::Idle || !c.reading() {
            return;
        }
        if c.paused {
            if c.queued() > RESUME_BELOW || c.session.unanswered() {
                return;
            }
            c.paused = false;
        }
        c.recv = RecvState::Armed;
        c.ops += 1;
        let entry = self
            .recv
            .entry(c.file, self.bufs.group())
            .user_data(user_data(Op::Recv, slot, 0));
        self.push(entry);
    }

    pub(super) fn on_recv(&mut self, slot: usize, res: i32, flags: u32) {
        let c = &mut self.conns[slot];
        if !cqueue::more(flags) {
            c.recv = RecvState::Idle;
            c.ops -= 1;
        }
        if res > 0 {
            let Some(bid) = cqueue::buffer_select(flags) else {
                c.fail();
                return self.progress(slot);
            };
            self.bufs.taken(bid);
            self.on_bytes(slot, bid, res as usize);
        } else if res == 0 {
            c.end_reading();
        } else if res == -libc::ENOBUFS {
            if c.reading() && c.recv != RecvState::Starved {
                c.recv = RecvState::Starved;
                self.starved.push(slot);
            }
        } else if res != -libc::ECANCELED {
            c.fail();
        }
        if !self.conns[slot].recv.armed() {
            self.arm_recv(slot);
        }
        self.progress(slot);
    }

    /// `len` bytes arrived in provided buffer `bid`.
    pub(super) fn on_bytes(&mut self, slot: usize, bid: u16, len: usize) {
        let Worker { conns, bufs, .. } = self;
        let c = &mut conns[slot];
        if !c.reading() {
            bufs.give_back(bid);
            return;
        }
        let data = bufs.slice(bid, len);
        let idle = c.sending.is_none() && c.backlog.is_empty();
        let in_place = if idle {
            c.session.reply_in_place(data)
        } else {
            None
        };
        let flow = match in_place {
            Some(flow) => {
                // The echo goes out straight from the provided buffer, which comes back
                // when the send completed.
                self.start_send(
                    slot,
                    Mem::Ring {
                        bid,
                        len: len as u32,
                    },
                    0,
                );
                flow
            }
            None => {
                let flow = c.session.on_data(data, &mut c.backlog);
                bufs.give_back(bid);
                self.send_backlog(slot);
                flow
            }
        };
        let c = &mut self.conns[slot];
        // Memory stays bounded: over the mark (the send in flight and the backlog behind it: the
        // in-flight buffer is resident until its send completes), or with requests the session
        // held back (their answers were more than a batch), stop receiving until the peer reads
        // its replies.
        let over = c.queued() > OUT_HIGH_WATER || c.session.unanswered();
        c.paused |= over;
        if flow == Flow::Close {
            // Nothing more will be read: end the multishot recv, or it would go on taking
            // (and dropping) whatever the peer sends until the connection closes.
            c.end_reading();
        }
        if (over || !c.reading()) && c.recv == RecvState::Armed {
            c.recv = RecvState::Cancelling;
            c.ops += 1;
            let cancel = opcode::AsyncCancel::new(user_data(Op::Recv, slot, 0))
                .build()
                .user_data(user_data(Op::Cancel, slot, 0));
            self.push(cancel);
        }
    }
}
