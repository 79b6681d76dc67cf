//! Windows: the counterparts of `unix.rs`, through windows-sys. Same functions, same meaning;
//! where Windows has no such thing the function says so in its result (no per-process context
//! switch counts, no open-file limit, no load average) rather than inventing a figure.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use windows_sys::Win32::Foundation::{CloseHandle, FILETIME, INVALID_HANDLE_VALUE};
use windows_sys::Win32::System::Console::{SetConsoleCtrlHandler, CTRL_BREAK_EVENT, CTRL_C_EVENT};
use windows_sys::Win32::System::Diagnostics::ToolHelp::{
    CreateToolhelp32Snapshot, Thread32First, Thread32Next, TH32CS_SNAPTHREAD, THREADENTRY32,
};
use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleA, GetProcAddress};
use windows_sys::Win32::System::ProcessStatus::{K32GetProcessMemoryInfo, PROCESS_MEMORY_COUNTERS};
use windows_sys::Win32::System::SystemInformation::{GetSystemInfo, OSVERSIONINFOW, SYSTEM_INFO};
use windows_sys::Win32::System::Threading::{
    GetCurrentProcess, GetCurrentProcessId, GetCurrentThread, GetProcessAffinityMask,
    GetProcessTimes, SetProcessAffinityMask, SetThreadAffinityMask,
};

use super::{Control, Memory, Rusage};

/// An affinity mask has one bit per CPU of the process's processor group.
const MASK_BITS: usize = usize::BITS as usize;

/// How many logical processors this machine has (in the current processor group).
pub fn max_cpus() -> usize {
    online_cpus()
}

/// How many logical processors are online.
pub fn online_cpus() -> usize {
    // SAFETY: SYSTEM_INFO is plain data that GetSystemInfo fills in.
    let mut info: SYSTEM_INFO = unsafe { std::mem::zeroed() };
    // SAFETY: `info` is a valid place for the result.
    unsafe { GetSystemInfo(&mut info) };
    (info.dwNumberOfProcessors as usize).max(1)
}

/// The CPUs this process may run on now (its affinity mask).
pub fn allowed_cpus() -> io::Result<Vec<usize>> {
    let mut process: usize = 0;
    let mut system: usize = 0;
    // SAFETY: both out-pointers are valid for the call; the pseudo-handle needs no closing.
    if unsafe { GetProcessAffinityMask(GetCurrentProcess(), &mut process, &mut system) } == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((0..MASK_BITS)
        .filter(|&c| process & (1 << c) != 0)
        .collect())
}

/// Pins the calling thread to `cpus` (within the process's affinity).
pub fn pin_current_thread(cpus: &[usize]) -> io::Result<()> {
    let mask = affinity_mask(cpus)?;
    // SAFETY: the pseudo-handle of the current thread; `mask` is a plain value.
    if unsafe { SetThreadAffinityMask(GetCurrentThread(), mask) } == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Pins the whole process, its threads now and later, to `cpus`. Windows threads inherit the
/// process's affinity, not their creator's, so this sets the process's mask (and the calling
/// thread's, which may have had its own).
pub fn pin_process(cpus: &[usize]) -> io::Result<()> {
    let mask = affinity_mask(cpus)?;
    // SAFETY: pseudo-handles of the current process and thread; `mask` is a plain value.
    if unsafe { SetProcessAffinityMask(GetCurrentProcess(), mask) } == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { SetThreadAffinityMask(GetCurrentThread(), mask) } == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn affinity_mask(cpus: &[usize]) -> io::Result<usize> {
    let mut mask: usize = 0;
    for &cpu in cpus {
        if cpu >= MASK_BITS {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("CPU {cpu} is out of range (one processor group holds {MASK_BITS})"),
            ));
        }
        mask |= 1 << cpu;
    }
    Ok(mask)
}

/// Control events waiting to be taken by [`wait_control`]: Ctrl-C and Ctrl-Break on the
/// console become [`Control::Stop`].
static PENDING: Mutex<Vec<Control>> = Mutex::new(Vec::new());
static ARRIVED: Condvar = Condvar::new();

unsafe extern "system" fn on_console_event(event: u32) -> i32 {
    if event == CTRL_C_EVENT || event == CTRL_BREAK_EVENT {
        let mut pending = PENDING.lock().unwrap_or_else(|e| e.into_inner());
        pending.push(Control::Stop);
        ARRIVED.notify_all();
        1 // handled: the process is not terminated, it stops in order
    } else {
        0 // close, logoff, shutdown: Windows' default (terminate)
    }
}

/// Takes Ctrl-C and Ctrl-Break for [`wait_control`] instead of letting Windows terminate the
/// process.
pub fn capture_control() -> io::Result<()> {
    // SAFETY: `on_console_event` has the signature of a PHANDLER_ROUTINE and lives for ever.
    if unsafe { SetConsoleCtrlHandler(Some(on_console_event), 1) } == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Waits for the next control event from the console.
pub fn wait_control() -> io::Result<Control> {
    let mut pending = PENDING.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if !pending.is_empty() {
            return Ok(pending.remove(0));
        }
        pending = ARRIVED.wait(pending).unwrap_or_else(|e| e.into_inner());
    }
}

fn seconds(t: FILETIME) -> f64 {
    // FILETIME counts 100 ns units.
    ((u64::from(t.dwHighDateTime) << 32) | u64::from(t.dwLowDateTime)) as f64 / 1e7
}

/// CPU time of the whole process (GetProcessTimes) and its peak working set. Windows keeps no
/// per-process count of context switches: they are `None`.
pub fn rusage_self() -> io::Result<Rusage> {
    let zero = FILETIME {
        dwLowDateTime: 0,
        dwHighDateTime: 0,
    };
    let (mut created, mut exited, mut kernel, mut user) = (zero, zero, zero, zero);
    // SAFETY: four valid FILETIME places; the pseudo-handle needs no closing.
    let ok = unsafe {
        GetProcessTimes(
            GetCurrentProcess(),
            &mut created,
            &mut exited,
            &mut kernel,
            &mut user,
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Rusage {
        user_s: seconds(user),
        sys_s: seconds(kernel),
        voluntary_ctx_switches: None,
        involuntary_ctx_switches: None,
        max_rss_bytes: process_memory()?.peak_rss_bytes,
    })
}

/// The working set (peak and now) and the live threads of the calling process.
pub fn process_memory() -> io::Result<Memory> {
    // SAFETY: plain data that K32GetProcessMemoryInfo fills in.
    let mut pmc: PROCESS_MEMORY_COUNTERS = unsafe { std::mem::zeroed() };
    pmc.cb = std::mem::size_of::<PROCESS_MEMORY_COUNTERS>() as u32;
    // SAFETY: `pmc` is valid for `cb` bytes; the pseudo-handle needs no closing.
    if unsafe { K32GetProcessMemoryInfo(GetCurrentProcess(), &mut pmc, pmc.cb) } == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Memory {
        peak_rss_bytes: pmc.PeakWorkingSetSize as u64,
        rss_bytes: pmc.WorkingSetSize as u64,
        threads: own_threads()?,
    })
}

/// Counts the threads of this process in a ToolHelp snapshot of the system's threads.
fn own_threads() -> io::Result<u64> {
    // SAFETY: no pointers; the snapshot handle is closed below.
    let snapshot = unsafe { CreateToolhelp32Snapshot(TH32CS_SNAPTHREAD, 0) };
    if snapshot == INVALID_HANDLE_VALUE {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: no pointers.
    let me = unsafe { GetCurrentProcessId() };
    // SAFETY: plain data; dwSize set before use as the API requires.
    let mut entry: THREADENTRY32 = unsafe { std::mem::zeroed() };
    entry.dwSize = std::mem::size_of::<THREADENTRY32>() as u32;
    let mut count = 0;
    // SAFETY: `snapshot` is open and `entry` valid, with dwSize set.
    let mut more = unsafe { Thread32First(snapshot, &mut entry) } != 0;
    while more {
        if entry.th32OwnerProcessID == me {
            count += 1;
        }
        // SAFETY: as above.
        more = unsafe { Thread32Next(snapshot, &mut entry) } != 0;
    }
    // SAFETY: the snapshot is ours and closed once.
    unsafe { CloseHandle(snapshot) };
    Ok(count)
}

/// Wakes a thread blocked in `accept` on `listener` once the caller has marked the server
/// stopping. Windows does not wake an acceptor on `shutdown` of a listening socket, so this
/// connects to it once: the acceptor gets that connection, sees the stop and returns.
pub fn wake_acceptor(listener: &TcpListener) -> io::Result<()> {
    let mut addr = listener.local_addr()?;
    if addr.ip().is_unspecified() {
        addr = match addr {
            SocketAddr::V4(a) => SocketAddr::from(([127, 0, 0, 1], a.port())),
            SocketAddr::V6(a) => SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, a.port())),
        };
    }
    TcpStream::connect_timeout(&addr, Duration::from_secs(1)).map(drop)
}

/// Wakes every thread blocked in `recv` or `send` on `stream`, and sends the peer a FIN. A
/// shutdown alone does not end a blocking `recv` on Windows (nor under Wine): the receive is an
/// I/O request of the socket's handle, which `CancelIoEx` cancels whichever thread issued it,
/// so the call returns an error and its thread goes on to close the socket itself. (Closing
/// the socket from here would also wake it, but the thread would then hold a handle value
/// that Windows may give to the next socket.)
pub fn wake_blocked_stream(stream: &TcpStream) {
    use std::os::windows::io::AsRawSocket;
    let _ = stream.shutdown(std::net::Shutdown::Both);
    // SAFETY: the socket is open for as long as `stream` is borrowed; a null OVERLAPPED
    // pointer cancels every request on the handle, and the call touches no memory of ours.
    unsafe {
        windows_sys::Win32::System::IO::CancelIoEx(
            stream.as_raw_socket() as windows_sys::Win32::Foundation::HANDLE,
            std::ptr::null(),
        )
    };
}

/// Client processes (`bench load` split over processes) are Unix-only: no shared clock is
/// read here.
pub fn monotonic_ns() -> io::Result<u64> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "a clock shared by processes is not read on Windows",
    ))
}

/// Windows has no per-process open-file limit: sockets are bounded by memory.
pub fn nofile_limit() -> io::Result<(u64, u64)> {
    Ok((u64::MAX, u64::MAX))
}

/// Nothing to raise on Windows (see [`nofile_limit`]).
pub fn raise_nofile_limit() -> io::Result<u64> {
    Ok(u64::MAX)
}

/// Windows keeps no load average.
pub fn loadavg() -> Option<[f64; 3]> {
    None
}

/// "Windows 10.0.19045", and the Wine version when running under Wine (whose figures are for
/// correctness only: it routes socket calls through its server process).
pub fn kernel_release() -> String {
    type RtlGetVersion = unsafe extern "system" fn(*mut OSVERSIONINFOW) -> i32;
    // SAFETY: a NUL-terminated name; ntdll is loaded in every process.
    let ntdll = unsafe { GetModuleHandleA(c"ntdll.dll".as_ptr().cast()) };
    if ntdll.is_null() {
        return "Windows".into();
    }
    let mut release = "Windows".to_string();
    // SAFETY: ntdll's RtlGetVersion has this signature.
    if let Some(f) = unsafe { GetProcAddress(ntdll, c"RtlGetVersion".as_ptr().cast()) } {
        // SAFETY: the pointer came from GetProcAddress for this exact function.
        let get: RtlGetVersion = unsafe { std::mem::transmute(f) };
        // SAFETY: plain data; the size field set as the API requires.
        let mut info: OSVERSIONINFOW = unsafe { std::mem::zeroed() };
        info.dwOSVersionInfoSize = std::mem::size_of::<OSVERSIONINFOW>() as u32;
        // SAFETY: `info` is valid and sized.
        if unsafe { get(&mut info) } == 0 {
            release = format!(
                "Windows {}.{}.{}",
                info.dwMajorVersion, info.dwMinorVersion, info.dwBuildNumber
            );
        }
    }
    if let Some(wine) = wine_version() {
        release.push_str(&format!(" (Wine {wine})"));
    }
    release
}

/// The Wine version when this process runs under Wine (ntdll then exports `wine_get_version`).
pub fn wine_version() -> Option<String> {
    type WineGetVersion = unsafe extern "C" fn() -> *const std::ffi::c_char;
    // SAFETY: a NUL-terminated name; ntdll is loaded in every process.
    let ntdll = unsafe { GetModuleHandleA(c"ntdll.dll".as_ptr().cast()) };
    if ntdll.is_null() {
        return None;
    }
    // SAFETY: a NUL-terminated name.
    let f = unsafe { GetProcAddress(ntdll, c"wine_get_version".as_ptr().cast()) }?;
    // SAFETY: Wine's wine_get_version takes nothing and returns a static C string.
    let get: WineGetVersion = unsafe { std::mem::transmute(f) };
    // SAFETY: as above: a static, NUL-terminated string.
    let text = unsafe { std::ffi::CStr::from_ptr(get()) };
    Some(text.to_string_lossy().into_owned())
}
