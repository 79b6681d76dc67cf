//! One ring, one thread: the connection state machine of `proactor-uring` (see the parent
//! module for the design), the ring setup with its fallbacks, and the startup probe.

use std::io;
use std::net::TcpListener;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use io_uring::{cqueue, opcode, register::Probe, types, IoUring};
use slab::Slab;

use super::buf_ring::BufRing;
use super::recv::Recv;
use super::options::{UringListener, UringOptions, UringSetup, ZC_MIN_BYTES};
use super::{REFUSE_ENV, SETUP_ENV};
use crate::models::parts::mio_loop::{ACCEPT_RETRY, OUT_HIGH_WATER};
use crate::models::parts::idle::{sweep_interval, Idle};
use crate::models::parts::listener::reuseport_group;
use crate::models::contract::{RunningServer, ServerConfig};
use crate::protocol::{Flow, Protocol, Session};
use crate::sys;

/// Submission queue entries per ring; a full queue is submitted early, never dropped.
const SQ_ENTRIES: u32 = 4096;
/// Completion queue entries per ring (the kernel keeps what overflows, but slowly).
const CQ_ENTRIES: u32 = 16384;
/// Provided buffers per ring (a power of two) and their size. Measured (64 B echo at 500
/// connections; 64 KiB echo at 50): 2048 x 4 KiB, 12 MiB resident and 33-46 CPU µs per 64 KiB
/// request (sixteen recvs each); 1024 x 32 KiB, 8 MiB resident at 64 B (a small message
/// touches one page of its buffer) and 27-35 µs per 64 KiB request. More connections than
/// buffers landing at once get `-ENOBUFS`, and are re-armed as buffers come back.
const BUFFERS: u16 = 1024;
const BUFFER_BYTES: u32 = 32 * 1024;
const GROUP: u16 = 0;
/// The registered file table's size, capped by the process's open-file limit (the kernel
/// refuses a larger one). A full table fails accept with -ENFILE: the ring backs off.
const FILES_MAX: u32 = 32768;
/// A multishot accept takes every connection queued on the listener at once (up to the
/// backlog) before the loop sees any of them: it runs only while more slots than that are free
/// in the file table. A full table would make the kernel accept a connection and drop it
/// (-ENFILE after the dequeue), so nearer the limit the ring accepts one at a time, and not at
/// all when the table is full, until a connection closes.
const MULTISHOT_MARGIN: usize = crate::models::parts::listener::BACKLOG as usize + 64;
/// With `--uring-sqpoll`: how long the kernel's polling thread spins before it sleeps.
const SQPOLL_IDLE_MS: u32 = 2000;
/// How long a stopping ring waits for its operations to end.
const STOP_GRACE: Duration = Duration::from_secs(3);
/// Reply bytes held (the send in flight's and the backlog) under this let a paused connection
/// receive again.
const RESUME_BELOW: usize = OUT_HIGH_WATER / 2;
/// An idle connection's spare send buffer is kept up to this capacity, dropped above it.
const SPARE_KEEP: usize = 256 * 1024;

// ---------------------------------------------------------------------------------------------
// The server: one thread per ring.

struct UringServer {
    rings: Vec<Ring>,
    setup: UringSetup,
}

struct Ring {
    shared: Arc<Shared>,
    thread: JoinHandle<io::Result<()>>,
}

struct Shared {
    stop: AtomicBool,
    /// Written to wake the ring's thread (it keeps a read armed on it).
    wake: OwnedFd,
    connections: AtomicU64,
}

pub(super) fn start(
    listener: TcpListener,
    config: &ServerConfig,
) -> io::Result<Box<dyn RunningServer>> {
    let threads = config.threads.max(1);
    let listeners = match config.uring.listener {
        UringListener::PerThread => reuseport_group(listener, threads)?,
        UringListener::Shared => {
            let mut clones = Vec::with_capacity(threads);
            for _ in 1..threads {
                clones.push(listener.try_clone()?);
            }
            clones.insert(0, listener);
            clones
        }
    };
    for l in &listeners {
        // Accepted sockets inherit TCP_NODELAY from the listener: a direct descriptor has no
        // file descriptor to set it on afterwards.
        socket2::SockRef::from(l).set_nodelay(true)?;
    }
    let mut rings = Vec::with_capacity(threads);
    let mut setup = None;
    for (i, l) in listeners.into_iter().enumerate() {
        let cpu = config
            .cpus
            .as_ref()
            .filter(|c| !c.is_empty())
            .map(|c| c[i % c.len()]);
        match Ring::spawn(i, l, cpu, config) {
            Ok((ring, s)) => {
                rings.push(ring);
                setup.get_or_insert(s);
            }
            Err(e) => {
                let _ = stop_all(rings);
                return Err(e);
            }
        }
    }
    let setup = setup.ok_or_else(|| io::Error::other("no ring started"))?;
    Ok(Box::new(UringServer { rings, setup }))
}

impl RunningServer for UringServer {
    fn stop(self: Box<Self>) -> io::Result<()> {
        stop_all(self.rings)
    }

    fn connections_per_loop(&self) -> Option<Vec<u64>> {
        Some(
            self.rings
                .iter()
                .map(|r| r.shared.connections.load(Ordering::Relaxed))
                .collect(),
        )
    }

    fn io_uring(&self) -> Option<UringSetup> {
        Some(self.setup.clone())
    }
}

/// Stops every ring (all asked first, then joined); the first error wins.
fn stop_all(rings: Vec<Ring>) -> io::Result<()> {
    crate::models::parts::stop_all(
        rings,
        |r| {
            r.shared.stop.store(true, Ordering::Release);
            sys::eventfd_signal(r.shared.wake.as_fd())
        },
        |r| {
            r.thread
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("a ring thread panicked")))
        },
    )
}

impl Ring {
    /// Starts ring thread `index`, pinned to `cpu`; returns once its ring is set up (or with
    /// the reason it could not be).
    fn spawn(
        index: usize,
        listener: TcpListener,
        cpu: Option<usize>,
        config: &ServerConfig,
    ) -> io::Result<(Ring, UringSetup)> {
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            wake: sys::eventfd()?,
            connections: AtomicU64::new(0),
        });
        let (tx, rx) = mpsc::sync_channel(1);
        let protocol = config.protocol.clone();
        let options = config.uring;
        let idle_timeout = config.idle_timeout();
        let theirs = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("ring-{index}"))
            .spawn(move || {
                if let Some(cpu) = cpu {
                    if let Err(e) = sys::pin_current_thread(&[cpu]) {
                        let _ = tx.send(Err(io::Error::new(
                            e.kind(),
                            format!("cannot pin ring {index} to CPU {cpu}: {e}"),
                        )));
                        return Ok(());
                    }
                }
                match Worker::new(listener, protocol, options, idle_timeout, theirs) {
                    Ok((worker, setup)) => {
                        let _ = tx.send(Ok(setup));
                        worker.run()
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        Ok(())
                    }
                }
            })?;
        match rx.recv() {
            Ok(Ok(setup)) => Ok((Ring { shared, thread }, setup)),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                Err(io::Error::other("a ring thread died while setting up"))
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Ring setup.

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
fn build_ring(options: &UringOptions) -> io::Result<(IoUring, Vec<String>, Vec<String>)> {
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

// ---------------------------------------------------------------------------------------------
// Operations in flight are named by their user_data: what they are, the connection's slot,
// and a 16-bit extra (for a zero-copy send, its held memory's key + 1).

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Accept = 1,
    AcceptRetry,
    Wake,
    /// Cancels of loop-wide operations when stopping.
    LoopCancel,
    /// Closes of connections accepted while stopping.
    StrayClose,
    Recv,
    Send,
    Cancel,
    Shutdown,
    Close,
    /// The idle sweep's timer.
    Sweep,
}

impl Op {
    fn from_u8(v: u8) -> Option<Op> {
        Some(match v {
            1 => Op::Accept,
            2 => Op::AcceptRetry,
            3 => Op::Wake,
            4 => Op::LoopCancel,
            5 => Op::StrayClose,
            6 => Op::Recv,
            7 => Op::Send,
            8 => Op::Cancel,
            9 => Op::Shutdown,
            10 => Op::Close,
            11 => Op::Sweep,
            _ => return None,
        })
    }
}

fn user_data(op: Op, slot: usize, extra: u16) -> u64 {
    debug_assert!(slot <= u32::MAX as usize);
    (op as u64) << 56 | (extra as u64) << 32 | slot as u64
}

fn decode(ud: u64) -> (Option<Op>, usize, u16) {
    (
        Op::from_u8((ud >> 56) as u8),
        (ud & 0xffff_ffff) as usize,
        (ud >> 32) as u16,
    )
}

// ---------------------------------------------------------------------------------------------
// Connections.

/// Bytes the kernel reads for a send: a provided buffer or a heap buffer.
enum Mem {
    /// Provided buffer `bid`, its first `len` bytes.
    Ring {
        bid: u16,
        len: u32,
    },
    Heap(Vec<u8>),
}

/// The send in flight on a connection.
enum Sending {
    /// From memory the connection owns, `off` bytes already sent.
    Own { mem: Mem, off: usize },
    /// A SEND_ZC from memory moved to `Worker::held[key]` until its notification.
    ZeroCopy { key: usize, off: usize },
}

struct Conn {
    /// Its direct descriptor: the index in the ring's registered file table.
    file: u32,
    session: Session,
    recv_armed: bool,
    /// The recv ended with -ENOBUFS: waits in `Worker::starved` for buffers.
    starved: bool,
    /// The backlog passed the high-water mark: its recv was cancelled until it drains.
    paused: bool,
    /// A cancel of its armed recv was submitted (paused, or the session asked to close).
    recv_cancelling: bool,
    /// Nothing more will be read: the peer closed its side, or the session asked to close.
    eof: bool,
    /// An error: close as soon as the operations in flight have ended.
    failed: bool,
    /// A Shutdown was submitted (to end the operations in flight).
    shut: bool,
    /// Its Close was submitted: the slot is freed when it completes.
    closing: bool,
    /// Operations in flight that name this slot (recv, send, cancel, shutdown, close).
    ops: u32,
    sending: Option<Sending>,
    /// Bytes of the memory the send in flight sends from (resident until it completes).
    in_flight: usize,
    /// Reply bytes waiting behind the send in flight.
    backlog: Vec<u8>,
    /// An empty buffer kept for the next backlog.
    spare: Vec<u8>,
    idle: Idle,
}

impl Conn {
    /// Reply bytes the connection holds: the send in flight's and the backlog behind it.
    fn queued(&self) -> usize {
        self.in_flight + self.backlog.len()
    }

    fn new(file: u32, session: Session, now: Instant) -> Conn {
        Conn {
            file,
            session,
            idle: Idle::new(now),
            recv_armed: false,
            starved: false,
            paused: false,
            recv_cancelling: false,
            eof: false,
            failed: false,
            shut: false,
            closing: false,
            ops: 0,
            sending: None,
            in_flight: 0,
            backlog: Vec::new(),
            spare: Vec::new(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The loop.

struct Worker {
    /// Declared first: dropped before the buffers the kernel may still write into.
    ring: IoUring,
    bufs: BufRing,
    /// Memory of zero-copy sends waiting for their notification.
    held: Slab<Mem>,
    conns: Slab<Conn>,
    /// Connections whose recv ended with -ENOBUFS, re-armed as buffers come back.
    starved: Vec<usize>,
    listener: TcpListener,
    protocol: Protocol,
    options: UringOptions,
    /// The recv connections arm (capped multishot, or single-shot on an older kernel).
    recv: Recv,
    shared: Arc<Shared>,
    /// Where the eventfd read lands; boxed so its address is stable while the read is armed.
    wake_buf: Box<[u8; 8]>,
    /// The accept back-off's timeout, boxed for the same reason.
    retry_after: Box<types::Timespec>,
    /// `--idle-timeout`, and the interval of the sweep timer (boxed: the kernel reads it).
    idle_timeout: Option<Duration>,
    sweep_every: Box<types::Timespec>,
    sweep_armed: bool,
    accept_armed: bool,
    /// The armed accept is multishot (else a single accept).
    accept_multishot: bool,
    /// A cancel of the multishot accept was submitted (the table is filling up).
    accept_cancelling: bool,
    /// Slots of the registered file table.
    files: usize,
    /// Connections accepted while stopping whose Close has not completed (they hold slots).
    strays: usize,
    /// Loop-wide operations in flight (accept, wake read, retry timer, stray closes, cancels).
    loop_ops: u32,
    retrying: bool,
    stopping: bool,
}

impl Worker {
    fn new(
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
        };
        Ok((worker, setup))
    }

    fn run(mut self) -> io::Result<()> {
        self.arm_wake();
        self.arm_accept();
        self.arm_sweep();
        let mut completions: Vec<(u64, i32, u32)> = Vec::with_capacity(CQ_ENTRIES as usize);
        let mut deadline = None;
        loop {
            self.bufs.publish();
            let waited = if self.stopping {
                // Bounded waits while stopping, so a stuck operation cannot hang `stop`.
                let ts = types::Timespec::new().nsec(50_000_000);
                let args = types::SubmitArgs::new().timespec(&ts);
                self.ring.submitter().submit_with_args(1, &args)
            } else {
                self.ring.submit_and_wait(1)
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

    /// Gives up on operations still in flight: the memory they may touch is leaked, never
    /// freed under the kernel.
    fn abandon(self) {
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
    fn push(&mut self, entry: io_uring::squeue::Entry) {
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

    fn arm_wake(&mut self) {
        let fd = self.shared.wake.as_raw_fd();
        let entry = opcode::Read::new(types::Fd(fd), self.wake_buf.as_mut_ptr(), 8)
            .build()
            .user_data(user_data(Op::Wake, 0, 0));
        self.loop_ops += 1;
        self.push(entry);
    }

    /// Arms the idle sweep's timer (with an idle timeout, unless stopping): a Timeout
    /// operation, whose completion the loop reaps with everything else.
    fn arm_sweep(&mut self) {
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
    fn sweep_idle(&mut self) {
        self.sweep_armed = false;
        self.loop_ops -= 1;
        let Some(timeout) = self.idle_timeout.filter(|_| !self.stopping) else {
            return;
        };
        let now = Instant::now();
        let expired: Vec<usize> = self
            .conns
            .iter_mut()
            .filter(|(_, c)| !c.closing && !c.failed)
            .filter_map(|(slot, c)| {
                c.idle
                    .expired(c.session.completed(), now, timeout)
                    .then_some(slot)
            })
            .collect();
        for slot in expired {
            self.conns[slot].failed = true;
            self.progress(slot);
        }
        self.arm_sweep();
    }

    /// Free slots in the registered file table.
    fn free_files(&self) -> usize {
        self.files.saturating_sub(self.conns.len() + self.strays)
    }

    /// Arms an accept unless one is armed: multishot while the table has room for a whole
    /// backlog, one at a time nearer its end, none when it is full.
    fn arm_accept(&mut self) {
        if self.accept_armed || self.retrying || self.stopping {
            return;
        }
        let free = self.free_files();
        if free == 0 {
            return; // re-armed when a connection's Close completes
        }
        let fd = types::Fd(self.listener.as_raw_fd());
        let multishot = free > MULTISHOT_MARGIN;
        let entry = if multishot {
            opcode::AcceptMulti::new(fd)
                .allocate_file_index(true)
                .build()
        } else {
            opcode::Accept::new(fd, std::ptr::null_mut(), std::ptr::null_mut())
                .file_index(Some(types::DestinationSlot::auto_target()))
                .build()
        };
        self.accept_armed = true;
        self.accept_multishot = multishot;
        self.accept_cancelling = false;
        self.loop_ops += 1;
        self.push(entry.user_data(user_data(Op::Accept, 0, 0)));
    }

    fn arm_recv(&mut self, slot: usize) {
        let c = &mut self.conns[slot];
        if c.recv_armed || c.eof || c.failed || c.shut || c.closing || c.starved {
            return;
        }
        if c.paused {
            if c.queued() > RESUME_BELOW || c.session.unanswered() {
                return;
            }
            c.paused = false;
        }
        c.recv_armed = true;
        c.ops += 1;
        let entry = self
            .recv
            .entry(c.file, self.bufs.group())
            .user_data(user_data(Op::Recv, slot, 0));
        self.push(entry);
    }

    fn complete(&mut self, ud: u64, res: i32, flags: u32) {
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

    fn on_accept(&mut self, res: i32, flags: u32) {
        if !self.accept_multishot || !cqueue::more(flags) {
            self.accept_armed = false;
            self.loop_ops -= 1;
        }
        if res >= 0 {
            if self.stopping {
                let close = opcode::Close::new(types::Fixed(res as u32))
                    .build()
                    .user_data(user_data(Op::StrayClose, 0, 0));
                self.strays += 1;
                self.loop_ops += 1;
                self.push(close);
            } else {
                let session = self.protocol.session();
                let slot = self
                    .conns
                    .insert(Conn::new(res as u32, session, Instant::now()));
                self.shared.connections.fetch_add(1, Ordering::Relaxed);
                self.arm_recv(slot);
            }
        }
        if self.accept_armed {
            if self.accept_multishot
                && !self.accept_cancelling
                && self.free_files() <= MULTISHOT_MARGIN
            {
                // The table is filling up: end the multishot, accept one at a time.
                self.accept_cancelling = true;
                let cancel = opcode::AsyncCancel::new(user_data(Op::Accept, 0, 0))
                    .build()
                    .user_data(user_data(Op::LoopCancel, 0, 0));
                self.loop_ops += 1;
                self.push(cancel);
            }
            return;
        }
        if self.stopping || self.retrying {
            return;
        }
        if matches!(
            -res,
            libc::ENFILE | libc::EMFILE | libc::ENOMEM | libc::ENOBUFS
        ) {
            // Out of descriptors (the file table) or memory: back off instead of spinning.
            let timer = opcode::Timeout::new(&*self.retry_after as *const types::Timespec)
                .build()
                .user_data(user_data(Op::AcceptRetry, 0, 0));
            self.retrying = true;
            self.loop_ops += 1;
            self.push(timer);
        } else {
            self.arm_accept();
        }
    }

    fn on_recv(&mut self, slot: usize, res: i32, flags: u32) {
        let c = &mut self.conns[slot];
        if !cqueue::more(flags) {
            c.recv_armed = false;
            c.recv_cancelling = false;
            c.ops -= 1;
        }
        if res > 0 {
            let Some(bid) = cqueue::buffer_select(flags) else {
                c.failed = true;
                return self.progress(slot);
            };
            self.bufs.taken(bid);
            self.on_bytes(slot, bid, res as usize);
        } else if res == 0 {
            c.eof = true;
        } else if res == -libc::ENOBUFS {
            if !c.eof && !c.failed && !c.starved {
                c.starved = true;
                self.starved.push(slot);
            }
        } else if res != -libc::ECANCELED {
            c.failed = true;
        }
        if !self.conns[slot].recv_armed {
            self.arm_recv(slot);
        }
        self.progress(slot);
    }

    /// `len` bytes arrived in provided buffer `bid`.
    fn on_bytes(&mut self, slot: usize, bid: u16, len: usize) {
        let Worker { conns, bufs, .. } = self;
        let c = &mut conns[slot];
        if c.eof || c.failed {
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
            c.eof = true;
        }
        if (over || c.eof) && c.recv_armed && !c.recv_cancelling {
            c.recv_cancelling = true;
            c.ops += 1;
            let cancel = opcode::AsyncCancel::new(user_data(Op::Recv, slot, 0))
                .build()
                .user_data(user_data(Op::Cancel, slot, 0));
            self.push(cancel);
        }
    }

    /// Starts sending the backlog if no send is in flight.
    fn send_backlog(&mut self, slot: usize) {
        let c = &mut self.conns[slot];
        if c.sending.is_some() || c.backlog.is_empty() || c.failed || c.shut || c.closing {
            return;
        }
        let next = std::mem::take(&mut c.spare);
        let buf = std::mem::replace(&mut c.backlog, next);
        self.start_send(slot, Mem::Heap(buf), 0);
    }

    fn mem_bytes(&self, mem: &Mem) -> (*const u8, usize) {
        match mem {
            Mem::Ring { bid, len } => {
                let s = self.bufs.slice(*bid, *len as usize);
                (s.as_ptr(), s.len())
            }
            Mem::Heap(v) => (v.as_ptr(), v.len()),
        }
    }

    /// Submits the send of `mem` from byte `off` (the connection has none in flight).
    fn start_send(&mut self, slot: usize, mem: Mem, off: usize) {
        let (ptr, len) = self.mem_bytes(&mem);
        debug_assert!(off < len);
        // SAFETY: `off < len`, inside the memory.
        let ptr = unsafe { ptr.add(off) };
        let remaining = (len - off).min(u32::MAX as usize) as u32;
        let file = types::Fixed(self.conns[slot].file);
        let zero_copy = self.options.zc
            && remaining as usize >= ZC_MIN_BYTES
            && self.held.vacant_key() < u16::MAX as usize - 1;
        let (entry, sending) = if zero_copy {
            let key = self.held.insert(mem);
            let entry = opcode::SendZc::new(file, ptr, remaining)
                .flags(libc::MSG_NOSIGNAL)
                .build()
                .user_data(user_data(Op::Send, slot, key as u16 + 1));
            (entry, Sending::ZeroCopy { key, off })
        } else {
            let entry = opcode::Send::new(file, ptr, remaining)
                .flags(libc::MSG_NOSIGNAL)
                .build()
                .user_data(user_data(Op::Send, slot, 0));
            (entry, Sending::Own { mem, off })
        };
        let c = &mut self.conns[slot];
        debug_assert!(c.sending.is_none(), "two sends in flight on one connection");
        c.sending = Some(sending);
        c.in_flight = len;
        c.ops += 1;
        self.push(entry);
    }

    fn on_send(&mut self, slot: usize, res: i32, flags: u32, extra: u16) {
        let sending = {
            let c = &mut self.conns[slot];
            c.ops -= 1;
            c.in_flight = 0;
            c.sending.take()
        };
        let Some(sending) = sending else {
            debug_assert!(
                false,
                "a send completed on a connection with none in flight"
            );
            return;
        };
        match sending {
            Sending::Own { mem, off } => {
                let (_, len) = self.mem_bytes(&mem);
                let sent = off + res.max(0) as usize;
                if res < 0 {
                    self.release(mem, None);
                    self.conns[slot].failed = true;
                } else if sent < len {
                    // A short send: the rest goes next, before anything queued behind it.
                    self.start_send(slot, mem, sent);
                } else {
                    self.release(mem, Some(slot));
                }
            }
            Sending::ZeroCopy { key, off } => {
                let (ptr, len) = self.mem_bytes(&self.held[key]);
                let sent = off + res.max(0) as usize;
                let c = &mut self.conns[slot];
                if res < 0 {
                    c.failed = true;
                } else if sent < len {
                    // A short zero-copy send: its memory waits for the notification, so the
                    // rest is copied in front of the backlog.
                    // SAFETY: `sent < len`, inside the held memory.
                    let rest = unsafe { std::slice::from_raw_parts(ptr.add(sent), len - sent) };
                    let mut front = Vec::with_capacity(rest.len() + c.backlog.len());
                    front.extend_from_slice(rest);
                    front.extend_from_slice(&c.backlog);
                    c.backlog = front;
                }
                debug_assert_eq!(extra as usize, key + 1);
                if !cqueue::more(flags) {
                    // No notification follows (the send failed before using the memory).
                    self.release_held(extra);
                }
            }
        }
        self.answer_held(slot);
        self.send_backlog(slot);
        if !self.conns[slot].recv_armed {
            self.arm_recv(slot);
        }
        self.progress(slot);
    }

    /// Answers the requests the session held back, while the backlog is under the point where
    /// a paused connection resumes: their replies join the backlog before anything received
    /// later.
    fn answer_held(&mut self, slot: usize) {
        let c = &mut self.conns[slot];
        while c.session.unanswered() && c.queued() <= RESUME_BELOW && !c.failed {
            if c.session.on_data(&[], &mut c.backlog) == Flow::Close {
                // Its recv was cancelled when the requests were held: nothing more is read.
                c.eof = true;
            }
        }
    }

    /// Memory a send finished with goes back: a provided buffer to the ring, a heap buffer to
    /// the connection's spare (when `slot` still wants one).
    fn release(&mut self, mem: Mem, slot: Option<usize>) {
        match mem {
            Mem::Ring { bid, .. } => self.bufs.give_back(bid),
            Mem::Heap(mut v) => {
                if let Some(c) = slot.and_then(|s| self.conns.get_mut(s)) {
                    if c.spare.capacity() == 0 && v.capacity() <= SPARE_KEEP {
                        v.clear();
                        c.spare = v;
                    }
                }
            }
        }
    }

    fn release_held(&mut self, extra: u16) {
        let key = (extra as usize).wrapping_sub(1);
        if let Some(mem) = self.held.try_remove(key) {
            self.release(mem, None);
        }
    }

    /// Closes the connection once it should be and nothing is in flight on it: a failed one
    /// at once (a Shutdown ends its operations first), one whose reading ended once every
    /// reply byte was sent.
    fn progress(&mut self, slot: usize) {
        let c = &mut self.conns[slot];
        if c.closing {
            return;
        }
        let drained = c.sending.is_none() && c.backlog.is_empty();
        if !(c.failed || (c.eof && drained)) {
            return;
        }
        let file = types::Fixed(c.file);
        if c.ops > 0 {
            if !c.shut {
                c.shut = true;
                c.ops += 1;
                let entry = opcode::Shutdown::new(file, libc::SHUT_RDWR)
                    .build()
                    .user_data(user_data(Op::Shutdown, slot, 0));
                self.push(entry);
            }
            return;
        }
        c.closing = true;
        let entry = opcode::Close::new(file)
            .build()
            .user_data(user_data(Op::Close, slot, 0));
        self.push(entry);
    }

    /// Re-arms connections starved of buffers, as many as there are buffers free.
    fn rearm_starved(&mut self) {
        let mut budget = self.bufs.available();
        while budget > 0 {
            let Some(slot) = self.starved.pop() else {
                return;
            };
            if let Some(c) = self.conns.get_mut(slot) {
                if c.starved {
                    c.starved = false;
                    budget -= 1;
                    self.arm_recv(slot);
                    self.progress(slot);
                }
            }
        }
    }

    /// Stops listening and closes every connection; `run` returns once nothing is in flight.
    fn begin_stop(&mut self) {
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
            self.conns[slot].failed = true;
            self.progress(slot);
        }
        self.starved.clear();
    }
}
