//! How a connection receives (the recv a ring arms): a multishot recv capped at [`RECV_CAP`]
//! bytes per arming where the kernel has the cap (Linux 6.17), else a single-shot recv; both
//! into the provided buffer ring.
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
//! The ring's side of receiving, which arms and takes these recvs, is `recv.rs`.

use std::os::fd::AsRawFd;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use io_uring::{cqueue, opcode, squeue, types, IoUring};

use super::buf_ring::BufRing;
use super::RECV_ENV;

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
