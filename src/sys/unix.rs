//! Unix (Linux): the raw system calls the harness needs beyond std: CPU affinity, signal
//! masks, rusage, /proc, and poll, select and eventfd for the level-triggered reactor.
//!
//! Calls that report failure as -1 and errno go through [`syscall!`], which turns -1 into
//! `io::Error::last_os_error()`; the pthread ones return the error number and are checked
//! where they are made.

use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;

use super::{Control, Memory, Rusage};

/// Calls a libc function and turns a -1 return into the OS error.
macro_rules! syscall {
    ($fn:ident ( $($arg:expr),* $(,)? )) => {{
        // SAFETY: the caller passes arguments valid for this libc function, as documented at
        // each use.
        let res = unsafe { libc::$fn($($arg),*) };
        if res == -1 {
            Err(io::Error::last_os_error())
        } else {
            Ok(res)
        }
    }};
}

/// How many CPU numbers this machine has (configured, not only online).
pub fn max_cpus() -> usize {
    // SAFETY: sysconf has no memory-safety preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_CONF) };
    if n < 1 {
        1
    } else {
        n as usize
    }
}

/// How many CPUs are online on this machine, whatever this process is pinned to.
pub fn online_cpus() -> usize {
    // SAFETY: sysconf has no memory-safety preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    if n < 1 {
        1
    } else {
        n as usize
    }
}

/// The CPUs this process may run on now.
pub fn allowed_cpus() -> io::Result<Vec<usize>> {
    // SAFETY: cpu_set_t is plain data; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    syscall!(sched_getaffinity(
        0,
        std::mem::size_of::<libc::cpu_set_t>(),
        &mut set
    ))?;
    Ok((0..libc::CPU_SETSIZE as usize)
        // SAFETY: `cpu` is below CPU_SETSIZE, the set's capacity.
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect())
}

/// Pins the calling thread (and the threads it creates later) to `cpus`.
pub fn pin_current_thread(cpus: &[usize]) -> io::Result<()> {
    pin_pid(0, cpus)
}

/// Pins the thread `pid` (0: the calling one; a process's main thread by its pid) and the
/// threads and processes it creates later to `cpus`.
pub fn pin_pid(pid: i32, cpus: &[usize]) -> io::Result<()> {
    // SAFETY: cpu_set_t is plain data; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &cpu in cpus {
        if cpu >= libc::CPU_SETSIZE as usize {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("CPU {cpu} is out of range"),
            ));
        }
        // SAFETY: `cpu` was checked against the set's capacity just above.
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    syscall!(sched_setaffinity(
        pid,
        std::mem::size_of::<libc::cpu_set_t>(),
        &set
    ))?;
    Ok(())
}

/// Pins the whole process to `cpus`: call it from the main thread before other threads are
/// created (Linux threads inherit their creator's affinity).
pub fn pin_process(cpus: &[usize]) -> io::Result<()> {
    pin_current_thread(cpus)
}

/// The signals the harness handles itself: stop (INT, TERM) and counters snapshot (USR1).
pub const HANDLED_SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGUSR1];

fn handled_set() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data, initialised by sigemptyset before use.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid sigset_t; the signal numbers are valid.
    unsafe {
        libc::sigemptyset(&mut set);
        for sig in HANDLED_SIGNALS {
            libc::sigaddset(&mut set, sig);
        }
    }
    set
}

/// Blocks SIGINT, SIGTERM and SIGUSR1 in the calling thread and every thread it creates later,
/// so that only a thread in [`wait_signal`] receives them. No handler runs, so no system call
/// in a server thread is ever interrupted (no EINTR in the measured code).
pub fn block_handled_signals() -> io::Result<()> {
    let set = handled_set();
    // SAFETY: `set` is a valid, initialised sigset_t; the old mask is not wanted.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(())
}

/// Takes the control events for the calling process: blocks SIGINT, SIGTERM and SIGUSR1 (see
/// [`block_handled_signals`]) so that [`wait_control`] receives them. Call it before any
/// thread is created.
pub fn capture_control() -> io::Result<()> {
    block_handled_signals()
}

/// Waits for the next control event: SIGUSR1 asks for counters, SIGINT and SIGTERM for a stop.
pub fn wait_control() -> io::Result<Control> {
    Ok(match wait_signal()? {
        libc::SIGUSR1 => Control::Snapshot,
        _ => Control::Stop,
    })
}

/// Waits for one of the blocked handled signals and returns its number.
pub fn wait_signal() -> io::Result<libc::c_int> {
    let set = handled_set();
    let mut sig: libc::c_int = 0;
    // SAFETY: `set` is initialised and `sig` is a valid place for the result.
    let rc = unsafe { libc::sigwait(&set, &mut sig) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(sig)
}

/// Sends `sig` to a process (positive pid) or a process group (negative pid).
pub fn kill(pid: i32, sig: libc::c_int) -> io::Result<()> {
    syscall!(kill(pid, sig)).map(drop)
}

/// CPU time and context switches of the whole calling process, every thread it ever had
/// included (getrusage(RUSAGE_SELF) keeps the counts of threads that already exited).
pub fn rusage_self() -> io::Result<Rusage> {
    // SAFETY: rusage is plain data that getrusage fills in.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    syscall!(getrusage(libc::RUSAGE_SELF, &mut ru))?;
    let secs = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    Ok(Rusage {
        user_s: secs(ru.ru_utime),
        sys_s: secs(ru.ru_stime),
        voluntary_ctx_switches: Some(ru.ru_nvcsw as u64),
        involuntary_ctx_switches: Some(ru.ru_nivcsw as u64),
        max_rss_bytes: ru.ru_maxrss as u64 * 1024,
    })
}

/// Asks the kernel to send SIGKILL to the calling process when its parent thread exits. Called
/// in a freshly forked child, before exec: the last line of defence that no server outlives the
/// harness, even one killed with SIGKILL.
pub fn die_with_parent() -> io::Result<()> {
    syscall!(prctl(
        libc::PR_SET_PDEATHSIG,
        libc::SIGKILL as libc::c_ulong,
        0,
        0,
        0
    ))
    .map(drop)
}

/// Whether the calling process runs as root (effective user id 0).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no memory-safety preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Mounts tracefs at `target` (`mount -t tracefs nodev TARGET`).
pub fn mount_tracefs(target: &str) -> io::Result<()> {
    let target = std::ffi::CString::new(target).map_err(io::Error::other)?;
    // The three strings are NUL-terminated and outlive the call; tracefs takes no data.
    syscall!(mount(
        c"nodev".as_ptr(),
        target.as_ptr(),
        c"tracefs".as_ptr(),
        0,
        std::ptr::null()
    ))
    .map(drop)
}

/// Unblocks every signal in the calling thread (a forked child must not inherit the harness's
/// mask: an exec keeps blocked signals blocked).
pub fn unblock_all_signals() -> io::Result<()> {
    // SAFETY: sigset_t is plain data, initialised by sigemptyset before use.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid sigset_t to initialise.
    unsafe { libc::sigemptyset(&mut set) };
    // sigprocmask is async-signal-safe: fine between fork and exec.
    syscall!(sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut())).map(drop)
}

/// The calling process's memory and live threads, from `/proc/self/status` (getrusage's
/// `ru_maxrss` when VmHWM is missing).
pub fn process_memory() -> io::Result<Memory> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let field = |name: &str| -> Option<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    };
    let peak = match field("VmHWM:") {
        Some(kb) => kb * 1024,
        None => rusage_self()?.max_rss_bytes,
    };
    Ok(Memory {
        peak_rss_bytes: peak,
        rss_bytes: field("VmRSS:").unwrap_or(0) * 1024,
        threads: field("Threads:").unwrap_or(0),
    })
}

/// Wakes every thread blocked in `read` or `write` on `stream` (they return 0 or an error), and
/// sends the peer a FIN: shutting a socket down is enough on Unix.
pub fn wake_blocked_stream(stream: &TcpStream) {
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

/// Wakes a thread blocked in `accept` on `listener` once the caller has marked the server
/// stopping: shutting a listening socket down makes Linux return EINVAL to the acceptor.
pub fn wake_acceptor(listener: &TcpListener) -> io::Result<()> {
    syscall!(shutdown(listener.as_raw_fd(), libc::SHUT_RDWR)).map(drop)
}

/// CLOCK_MONOTONIC now, in nanoseconds: one clock for every process of the machine, so a
/// time sent from one process to another means the same instant in both.
pub fn monotonic_ns() -> io::Result<u64> {
    // SAFETY: timespec is plain data that clock_gettime fills in.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    syscall!(clock_gettime(libc::CLOCK_MONOTONIC, &mut ts))?;
    Ok(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
}

/// The open-file limit: (soft, hard).
pub fn nofile_limit() -> io::Result<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    syscall!(getrlimit(libc::RLIMIT_NOFILE, &mut lim))?;
    Ok((lim.rlim_cur, lim.rlim_max))
}

/// Raises the soft open-file limit to the hard one; returns the limit now in force.
pub fn raise_nofile_limit() -> io::Result<u64> {
    let (soft, hard) = nofile_limit()?;
    if soft < hard {
        let raised = libc::rlimit {
            rlim_cur: hard,
            rlim_max: hard,
        };
        if syscall!(setrlimit(libc::RLIMIT_NOFILE, &raised)).is_ok() {
            return Ok(hard);
        }
    }
    Ok(soft)
}

/// The 1, 5 and 15 minute load averages, from `/proc/loadavg`.
pub fn loadavg() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut it = text.split_whitespace().map(|v| v.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

/// The running kernel's release (`uname -r`).
pub fn kernel_release() -> String {
    // SAFETY: utsname is plain data that uname fills in.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    if syscall!(uname(&mut uts)).is_err() {
        return "unknown".into();
    }
    // SAFETY: uname NUL-terminates `release` within the array.
    let release = unsafe { std::ffi::CStr::from_ptr(uts.release.as_ptr()) };
    release.to_string_lossy().into_owned()
}

/// Milliseconds for poll(2): `None` waits for ever (-1); a partial millisecond rounds up, so a
/// deadline 0.3 ms away does not become a busy `poll(.., 0)`.
fn poll_timeout_ms(timeout: Option<std::time::Duration>) -> libc::c_int {
    match timeout {
        None => -1,
        Some(d) => d
            .as_nanos()
            .div_ceil(1_000_000)
            .min(libc::c_int::MAX as u128) as libc::c_int,
    }
}

/// Waits with poll(2) until an entry of `fds` is ready or `timeout` passes (`None`: no
/// timeout); returns how many entries have `revents` set.
pub fn poll(fds: &mut [libc::pollfd], timeout: Option<std::time::Duration>) -> io::Result<usize> {
    // `fds` is a valid array of `fds.len()` pollfd entries that poll fills in.
    let n = syscall!(poll(
        fds.as_mut_ptr(),
        fds.len() as libc::nfds_t,
        poll_timeout_ms(timeout)
    ))?;
    Ok(n as usize)
}

/// A select(2) descriptor set that holds only what it can: descriptors 0 to FD_SETSIZE - 1.
/// Setting a bit for a larger descriptor would write past the set (memory corruption in C;
/// a panic in recent `libc` crates), so [`FdSet::insert`] refuses it instead.
pub struct FdSet {
    set: libc::fd_set,
    /// The largest descriptor in the set, -1 when empty (select's `nfds` is this + 1).
    max: std::os::fd::RawFd,
}

impl Default for FdSet {
    fn default() -> Self {
        Self::new()
    }
}

impl FdSet {
    pub fn new() -> Self {
        // SAFETY: fd_set is plain data; all-zero is the empty set (what FD_ZERO writes).
        let set: libc::fd_set = unsafe { std::mem::zeroed() };
        FdSet { set, max: -1 }
    }

    /// Empties the set.
    pub fn clear(&mut self) {
        // SAFETY: `self.set` is a valid fd_set.
        unsafe { libc::FD_ZERO(&mut self.set) };
        self.max = -1;
    }

    /// Whether `fd` can be in a set: 0 <= fd < FD_SETSIZE.
    pub fn fits(fd: std::os::fd::RawFd) -> bool {
        fd >= 0 && (fd as usize) < libc::FD_SETSIZE
    }

    /// Adds `fd`; `false`, leaving the set as it was, when `fd` does not fit (see
    /// [`FdSet::fits`]).
    pub fn insert(&mut self, fd: std::os::fd::RawFd) -> bool {
        if !Self::fits(fd) {
            return false;
        }
        // SAFETY: `self.set` is a valid fd_set and `fd` was checked to be below FD_SETSIZE.
        unsafe { libc::FD_SET(fd, &mut self.set) };
        self.max = self.max.max(fd);
        true
    }

    /// Whether `fd` is in the set (`false` for a descriptor that cannot be).
    pub fn contains(&self, fd: std::os::fd::RawFd) -> bool {
        // SAFETY: `self.set` is a valid fd_set and `fd` was checked to be below FD_SETSIZE.
        Self::fits(fd) && unsafe { libc::FD_ISSET(fd, &self.set) }
    }
}

/// Waits with select(2) until a descriptor of `read` is readable or one of `write` writable, or
/// `timeout` passes (`None`: no timeout). On return the sets hold only the ready descriptors;
/// returns how many there are (a descriptor ready both ways counts twice).
pub fn select(
    read: &mut FdSet,
    write: &mut FdSet,
    timeout: Option<std::time::Duration>,
) -> io::Result<usize> {
    let nfds = read.max.max(write.max) + 1;
    let mut tv = timeout.map(|d| libc::timeval {
        tv_sec: d.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
        tv_usec: d.subsec_micros() as libc::suseconds_t,
    });
    let tv_ptr = tv
        .as_mut()
        .map_or(std::ptr::null_mut(), |t| t as *mut libc::timeval);
    // Both sets are valid fd_sets holding descriptors below `nfds` <= FD_SETSIZE; no exception
    // set; `tv_ptr` is null or points at a timeval that lives through the call.
    let n = syscall!(select(
        nfds,
        &mut read.set,
        &mut write.set,
        std::ptr::null_mut(),
        tv_ptr
    ))?;
    Ok(n as usize)
}

/// A non-blocking, close-on-exec eventfd: the descriptor a thread waiting in poll or select
/// watches so that another thread can wake it ([`eventfd_signal`]).
pub fn eventfd() -> io::Result<std::os::fd::OwnedFd> {
    let fd = syscall!(eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC))?;
    // SAFETY: eventfd just returned this descriptor, and nothing else owns it.
    Ok(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

/// Makes an eventfd readable (adds 1 to its counter).
pub fn eventfd_signal(fd: std::os::fd::BorrowedFd<'_>) -> io::Result<()> {
    let one: u64 = 1;
    // An eventfd takes exactly 8 bytes, read from `one`, which lives through the call.
    syscall!(write(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        (&one as *const u64).cast(),
        8
    ))
    .map(drop)
}

/// Resets an eventfd's counter, so that it is no longer readable; a counter already at zero is
/// fine (EAGAIN on a non-blocking eventfd).
pub fn eventfd_drain(fd: std::os::fd::BorrowedFd<'_>) -> io::Result<()> {
    let mut value: u64 = 0;
    // An eventfd gives exactly 8 bytes, written into `value`, which lives through the call.
    match syscall!(read(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        (&mut value as *mut u64).cast(),
        8
    )) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
        Err(e) => Err(e),
    }
}
