//! What the threads of the port share: the port, the listener and its `AcceptEx`, the accept
//! slots, the live connections, the idle sweep's clock, and the completion keys that tell a
//! connection's or the listener's completion from a posted packet. Its steps are `accept.rs`
//! (accepting), `conn.rs` (a connection's completions) and `port.rs` (the threads, the
//! dispatch, the idle sweep, the stop).

use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use slab::Slab;
use windows_sys::Win32::Foundation::HANDLE;
use windows_sys::Win32::Networking::WinSock::SOCKET;
use windows_sys::Win32::System::IO::OVERLAPPED;

use super::op::{AcceptSlot, Conn};
use crate::protocol::Protocol;

/// Completion key of the listener and of every connection.
pub(super) const IO_KEY: usize = 0;
/// Completion key of a posted "this thread should return" packet.
pub(super) const STOP_KEY: usize = 1;
/// Completion key of a posted "post this accept slot again" packet (its `OVERLAPPED` is the
/// slot's).
pub(super) const RETRY_KEY: usize = 2;

/// What every thread of the port shares.
pub(super) struct Shared {
    pub(super) port: HANDLE,
    pub(super) listener: SOCKET,
    pub(super) family: i32,
    pub(super) accept_ex: unsafe extern "system" fn(
        SOCKET,
        SOCKET,
        *mut core::ffi::c_void,
        u32,
        u32,
        u32,
        *mut u32,
        *mut OVERLAPPED,
    ) -> windows_sys::core::BOOL,
    pub(super) protocol: Protocol,
    pub(super) slots: Box<[AcceptSlot]>,
    pub(super) stopping: AtomicBool,
    /// Operations posted whose completion has not been handled yet.
    pub(super) outstanding: AtomicUsize,
    /// Live connections, so that `stop` can close each one.
    pub(super) conns: Mutex<Slab<Arc<Conn>>>,
    /// Whether an accept failure is being retried, so it is reported once.
    pub(super) accept_failing: AtomicBool,
    /// `--idle-timeout` and the sweep interval; the threads wait no longer than that.
    pub(super) idle_timeout: Option<(Duration, Duration)>,
    /// When the next idle sweep is due; the thread that holds the lock sweeps.
    pub(super) next_sweep: Mutex<Instant>,
}

// SAFETY: the port and socket handles are usable from any thread; the slots are Sync (`op.rs`);
// the rest is atomics and mutexes.
unsafe impl Sync for Shared {}
// SAFETY: as above.
unsafe impl Send for Shared {}
