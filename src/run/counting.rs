//! System-call counting in `bench run`: what a pass counts, and the tracefs the counters need
//! (mounted when `bench` may, or the line that says why there are no counts).

use super::{Plan, RunOptions};
use crate::cli::Accounting;

/// What a pass counts.
#[derive(Clone, Copy, Debug)]
pub(super) struct Counting {
    /// `same` or `separate`, as recorded.
    pub pass: &'static str,
    pub server: bool,
    pub client: bool,
}

impl Counting {
    /// Everything, in the timed pass.
    pub const SAME: Counting = Counting {
        pass: "same",
        server: true,
        client: true,
    };
    /// The server alone, in a pass of its own.
    pub const SERVER: Counting = Counting {
        pass: "separate",
        server: true,
        client: false,
    };
    /// The load generator alone, in a pass of its own.
    pub const CLIENT: Counting = Counting {
        pass: "separate",
        server: false,
        client: true,
    };
}

/// Whether this point counts system calls at all (on a platform that can).
pub(super) fn counts(opts: &RunOptions) -> bool {
    cfg!(target_os = "linux") && opts.accounting != Accounting::Off
}

/// Makes sure the counters can be had before the first pass: on Linux, with some point
/// counting, mounts tracefs when it is missing and this process is root (and says so in one
/// line). Returns why there will be no counts when tracefs is missing for good.
#[cfg(target_os = "linux")]
pub(super) fn prepare(plan: &Plan) -> Option<String> {
    use crate::metrics::tracefs::{self, Tracefs, TRACEFS};
    if !plan.points.iter().any(|p| counts(&p.opts)) {
        return None;
    }
    match tracefs::ensure() {
        Tracefs::Present => None,
        Tracefs::Mounted => {
            crate::errln!("note: mounted tracefs at {TRACEFS} to count system calls");
            None
        }
        Tracefs::Missing(why) => Some(why),
    }
}

/// Off Linux nothing is counted, and the result file says why.
#[cfg(not(target_os = "linux"))]
pub(super) fn prepare(_: &Plan) -> Option<String> {
    None
}
