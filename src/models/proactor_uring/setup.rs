//! Ring setup: the best `IORING_SETUP_*` flags the kernel accepts (with fallbacks), the sizes of
//! a ring's queues, file table and provided buffers (registered when the worker is built, in
//! `worker.rs`), and the startup probe that decides whether the model can run here.

use std::io;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use io_uring::{cqueue, opcode, register::Probe, types, IoUring};

use super::buf_ring::BufRing;
use super::options::UringOptions;
use super::{REFUSE_ENV, SETUP_ENV};
use crate::sys;

/// Submission queue entries per ring; a full queue is submitted early, never dropped.
const SQ_ENTRIES: u32 = 4096;
/// Completion queue entries per ring (the kernel keeps what overflows, but slowly).
pub(super) const CQ_ENTRIES: u32 = 16384;
/// Provided buffers per ring (a power of two) and their size. Measured (64 B echo at 500
/// connections; 64 KiB echo at 50): 2048 x 4 KiB, 12 MiB resident and 33-46 CPU µs per 64 KiB
/// request (sixteen recvs each); 1024 x 32 KiB, 8 MiB resident at 64 B (a small message
/// touches one page of its buffer) and 27-35 µs per 64 KiB request. More connections than
/// buffers landing at once get `-ENOBUFS`, and are re-armed as buffers come back.
pub(super) const BUFFERS: u16 = 1024;
pub(super) const BUFFER_BYTES: u32 = 32 * 1024;
pub(super) const GROUP: u16 = 0;
/// The registered file table's size, capped by the process's open-file limit (the kernel
/// refuses a larger one). A full table fails accept with -ENFILE: the ring backs off.
pub(super) const FILES_MAX: u32 = 32768;
/// With `--uring-sqpoll`: how long the kernel's polling thread spins before it sleeps.
const SQPOLL_IDLE_MS: u32 = 2000;

/// A set of `IORING_SETUP_*` flags to try.
#[derive(Clone, Copy)]
enum Tier {
    DeferTaskrun,
    CoopTaskrun,
    Plain,
    Sqpoll,
    SqpollPlain,
}

impl Tier {
    fn flags(self) -> &'static [&'static str] {
        match self {
            Tier::DeferTaskrun => &["SINGLE_ISSUER", "DEFER_TASKRUN"],
            Tier::CoopTaskrun => &["COOP_TASKRUN"],
            Tier::Plain => &[],
            Tier::Sqpoll => &["SQPOLL", "SINGLE_ISSUER"],
            Tier::SqpollPlain => &["SQPOLL"],
        }
    }
}

/// Builds the ring with the best flags the kernel accepts: `SINGLE_ISSUER | DEFER_TASKRUN`,
/// else `COOP_TASKRUN`, else none (with SQPOLL: `SQPOLL | SINGLE_ISSUER`, else `SQPOLL`;
/// DEFER_TASKRUN cannot go with SQPOLL). Returns the ring, the flags used, the sets refused.
pub(super) fn build_ring(
    options: &UringOptions,
) -> io::Result<(IoUring, Vec<String>, Vec<String>)> {
    let mut tiers: &[Tier] = if options.sqpoll {
        &[Tier::Sqpoll, Tier::SqpollPlain]
    } else {
        &[Tier::DeferTaskrun, Tier::CoopTaskrun, Tier::Plain]
    };
    let mut refused = Vec::new();
    let skip = match std::env::var(SETUP_ENV).as_deref() {
        Ok("coop") => 1,
        Ok("none") => 2,
        _ => 0,
    };
    for _ in 0..skip.min(tiers.len() - 1) {
        refused.push(format!("{} ({SETUP_ENV})", tiers[0].flags().join("|")));
        tiers = &tiers[1..];
    }
    let mut last = None;
    for &tier in tiers {
        let mut builder = IoUring::builder();
        builder.setup_cqsize(CQ_ENTRIES);
        match tier {
            Tier::DeferTaskrun => {
                builder.setup_single_issuer().setup_defer_taskrun();
            }
            Tier::CoopTaskrun => {
                builder.setup_coop_taskrun();
            }
            Tier::Plain => {}
            Tier::Sqpoll => {
                builder.setup_sqpoll(SQPOLL_IDLE_MS).setup_single_issuer();
            }
            Tier::SqpollPlain => {
                builder.setup_sqpoll(SQPOLL_IDLE_MS);
            }
        }
        match builder.build(SQ_ENTRIES) {
            Ok(ring) => {
                let flags = tier.flags().iter().map(|f| f.to_string()).collect();
                return Ok((ring, flags, refused));
            }
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                refused.push(tier.flags().join("|"));
                last = Some(e);
            }
            Err(e) => return Err(setup_error(e)),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no ring setup to try")))
}

/// io_uring_setup's failure, with the reason a user can act on.
fn setup_error(e: io::Error) -> io::Error {
    io::Error::new(e.kind(), refused_reason(&e))
}

fn refused_reason(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => {
            let sysctl = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "absent".into());
            format!(
                "the kernel refused io_uring_setup ({e}): the sysctl kernel.io_uring_disabled is \
                 {sysctl} (0 allows io_uring for everyone), or a seccomp profile blocks io_uring \
                 (Docker's default profile does: run the container with \
                 --security-opt seccomp=unconfined)"
            )
        }
        Some(libc::ENOSYS) => format!(
            "this kernel ({}) has no io_uring (io_uring_setup: ENOSYS): Linux 6.0 or later \
             built with CONFIG_IO_URING is needed",
            sys::kernel_release()
        ),
        _ => format!("io_uring_setup failed: {e}"),
    }
}

/// Whether io_uring can run this model here: the ring can be set up, the kernel has every
/// operation the model uses, and a multishot recv into a provided buffer ring works on a
/// real socket pair (Linux 6.0+).
pub(super) fn probe() -> Result<(), String> {
    if std::env::var_os(REFUSE_ENV).is_some() {
        return Err(format!(
            "io_uring refused: {REFUSE_ENV} is set, which makes bench act as if the kernel \
             refused io_uring (a test hook: unset it)"
        ));
    }
    let mut ring = IoUring::new(8).map_err(|e| refused_reason(&e))?;
    let old = || {
        format!(
            "Linux 6.0 or later is needed (this is {})",
            sys::kernel_release()
        )
    };
    let mut probe = Probe::new();
    ring.submitter()
        .register_probe(&mut probe)
        .map_err(|e| format!("cannot probe io_uring's operations ({e}): {}", old()))?;
    let needed = [
        (opcode::AcceptMulti::CODE, "ACCEPT"),
        (opcode::RecvMulti::CODE, "RECV"),
        (opcode::Send::CODE, "SEND"),
        (opcode::Close::CODE, "CLOSE"),
        (opcode::AsyncCancel::CODE, "ASYNC_CANCEL"),
        (opcode::Shutdown::CODE, "SHUTDOWN"),
        (opcode::Read::CODE, "READ"),
        (opcode::Timeout::CODE, "TIMEOUT"),
    ];
    for (code, name) in needed {
        if !probe.is_supported(code) {
            return Err(format!(
                "this kernel's io_uring lacks IORING_OP_{name}: {}",
                old()
            ));
        }
    }
    let bufs = BufRing::new(&ring, 2, 64, GROUP)
        .map_err(|e| format!("cannot register a provided buffer ring ({e}): {}", old()))?;
    let (mine, theirs) = std::os::unix::net::UnixStream::pair()
        .map_err(|e| format!("cannot make a socket pair to probe io_uring: {e}"))?;
    let recv = opcode::RecvMulti::new(types::Fd(mine.as_raw_fd()), GROUP)
        .build()
        .user_data(1);
    // SAFETY: the recv writes only into the buffer ring's memory, which outlives the ring
    // (dropped after it, and only once the recv has ended: see below).
    unsafe { ring.submission().push(&recv) }.map_err(|_| "the probe's ring is full".to_string())?;
    std::io::Write::write_all(&mut &theirs, b"probe")
        .map_err(|e| format!("cannot write to the probe's socket pair: {e}"))?;
    let first = wait_one(&mut ring)?;
    // End the multishot recv (EOF) before the buffers go away.
    drop(theirs);
    let mut last = first;
    while cqueue::more(last.1) {
        last = wait_one(&mut ring)?;
    }
    drop(ring);
    drop(bufs);
    match first {
        (5, flags) if cqueue::more(flags) && cqueue::buffer_select(flags).is_some() => Ok(()),
        (res, _) if res < 0 => Err(format!(
            "multishot recv into a provided buffer ring failed ({}): {}",
            io::Error::from_raw_os_error(-res),
            old()
        )),
        (res, flags) => Err(format!(
            "multishot recv into a provided buffer ring is not supported (result {res}, flags \
             {flags:#x}): {}",
            old()
        )),
    }
}

/// Waits up to a second for one completion of the probe's ring: (result, flags).
fn wait_one(ring: &mut IoUring) -> Result<(i32, u32), String> {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        if let Some(cqe) = ring.completion().next() {
            return Ok((cqe.result(), cqe.flags()));
        }
        if Instant::now() > deadline {
            return Err("io_uring's probe got no completion within a second".into());
        }
        let ts = types::Timespec::new().nsec(10_000_000);
        let args = types::SubmitArgs::new().timespec(&ts);
        match ring.submitter().submit_with_args(1, &args) {
            Ok(_) => {}
            Err(e) if matches!(e.raw_os_error(), Some(libc::ETIME) | Some(libc::EINTR)) => {}
            Err(e) => return Err(format!("io_uring_enter failed in the probe: {e}")),
        }
    }
}
