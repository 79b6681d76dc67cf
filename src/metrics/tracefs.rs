//! tracefs, where the perf tracepoints' ids are read ([`super::syscalls`]). A fresh machine
//! often has it unmounted; `bench run`, when it counts system calls, mounts it if it may
//! (root), and otherwise says why there are no counts and the command that fixes it.

use std::path::PathBuf;

/// Where tracefs is mounted on current kernels.
pub const TRACEFS: &str = "/sys/kernel/tracing";

/// The command that mounts tracefs, for a user who is not root.
pub const MOUNT_COMMAND: &str = "sudo mount -t tracefs nodev /sys/kernel/tracing";

use crate::hooks;

/// What [`ensure`] found or did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tracefs {
    /// Mounted already.
    Present,
    /// Mounted by this call.
    Mounted,
    /// Not mounted, and this process could not mount it: why, and the fix.
    Missing(String),
}

/// The pretence asked for by [`hooks::TRACEFS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pretend {
    Missing,
    Mountable,
}

fn pretend() -> Option<Pretend> {
    match std::env::var(hooks::TRACEFS).ok()?.as_str() {
        "missing" => Some(Pretend::Missing),
        "mountable" => Some(Pretend::Mountable),
        _ => None,
    }
}

/// The `events` folder of a mounted tracefs; `None` when tracefs is not mounted (or
/// `IOMODELS_TRACEFS=missing` says so).
pub fn events_dir() -> Option<PathBuf> {
    let events = PathBuf::from(TRACEFS).join("events");
    (pretend() != Some(Pretend::Missing) && events.is_dir()).then_some(events)
}

/// Makes sure tracefs is mounted: mounts it when it is not and this process is root.
pub fn ensure() -> Tracefs {
    let pretence = pretend();
    if pretence.is_none() && events_dir().is_some() {
        return Tracefs::Present;
    }
    let why = match pretence {
        Some(Pretend::Mountable) => return Tracefs::Mounted,
        Some(Pretend::Missing) => format!("{}=missing says so, for tests", hooks::TRACEFS),
        None if !crate::sys::is_root() => "bench is not root, so it cannot mount it".to_string(),
        None => match crate::sys::mount_tracefs(TRACEFS) {
            Ok(()) if events_dir().is_some() => return Tracefs::Mounted,
            Ok(()) => format!("it was mounted, but {TRACEFS}/events is not there"),
            Err(e) => format!("mounting it failed ({e})"),
        },
    };
    Tracefs::Missing(format!(
        "no system call counts (sys/req): tracefs is not mounted at {TRACEFS} and {why}; \
         to count them, run `{MOUNT_COMMAND}`"
    ))
}
