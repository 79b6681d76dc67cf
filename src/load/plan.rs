//! How many client processes a run needs, and each one's share.
//!
//! One process may open only so many descriptors (RLIMIT_NOFILE), and each connection is one:
//! [`plan_processes`] finds the fewest processes whose share of the connections, plus their own
//! descriptors, fits under the limit (or checks the count asked for), and [`shares`] deals the
//! connections, threads and the open loop's schedule evenly over them.

use super::Slice;
use crate::{sys, Error};

/// Descriptors a client process keeps besides its connections: stdio and its pipes, and what
/// the runtime opens now and then.
const PROCESS_FDS: u64 = 16;
/// Per client thread: its poller and its open-loop timer, and some room.
const THREAD_FDS: u64 = 4;
/// How many client processes a run needs, and why when more than one.
#[derive(Clone, Debug, PartialEq)]
pub struct ProcessPlan {
    pub processes: usize,
    /// Why the load generator was split on its own (to print): `None` when it runs in one
    /// process or the count was asked for.
    pub reason: Option<String>,
}

/// The client processes for `connections` over `threads` client threads: `requested`
/// (`--client-processes`) when it fits the open-file limit, otherwise the fewest processes
/// whose share of the connections, plus their own descriptors (`counting`: a perf counter per
/// counted system call and thread too), fits under it. Call after raising the soft limit.
pub fn plan_processes(
    connections: usize,
    threads: usize,
    requested: Option<usize>,
    counting: bool,
) -> Result<ProcessPlan, Error> {
    let (limit, _) = sys::nofile_limit()
        .map_err(|e| Error::Environment(format!("cannot read the open-file limit: {e}")))?;
    plan_under(limit, connections, threads, requested, counting)
}

/// [`plan_processes`] under the open-file limit `limit`.
fn plan_under(
    limit: u64,
    connections: usize,
    threads: usize,
    requested: Option<usize>,
    counting: bool,
) -> Result<ProcessPlan, Error> {
    let needs = |p: usize| {
        let most = connections.div_ceil(p);
        let threads = threads.div_ceil(p).clamp(1, most.max(1));
        most as u64 + PROCESS_FDS + threads as u64 * thread_fds(counting)
    };
    // The parent holds three pipes per child.
    let fits = |p: usize| needs(p) <= limit && (p == 1 || 3 * p as u64 + PROCESS_FDS <= limit);
    let fewest = (1..=connections.max(1)).find(|&p| fits(p));
    match (requested, fewest) {
        (Some(p), _) if p > connections.max(1) => Err(Error::Usage(format!(
            "--client-processes {p} is more than the {connections} connections: each client \
             process drives at least one"
        ))),
        (Some(p), Some(least)) if !fits(p) => Err(Error::Environment(format!(
            "{connections} connections over {p} client process(es) need about {} open files in \
             each (the connections and the process's own), more than the {limit} one process \
             may have here: use --client-processes {least} or more",
            needs(p)
        ))),
        (Some(p), Some(_)) => Ok(ProcessPlan {
            processes: p,
            reason: None,
        }),
        (_, None) => Err(Error::Environment(format!(
            "this process may open only {limit} files, too few for even one connection per \
             client process beside the process's own descriptors: raise the limit (ulimit -n)"
        ))),
        (None, Some(p)) => Ok(ProcessPlan {
            processes: p,
            reason: (p > 1).then(|| {
                format!(
                    "{connections} connections and the load generator's own descriptors need \
                     about {} open files, more than the {limit} one process may have: the load \
                     generator runs in {p} processes of about {} connections each \
                     (--client-processes sets the count)",
                    needs(1),
                    connections.div_ceil(p)
                )
            }),
        }),
    }
}

fn thread_fds(counting: bool) -> u64 {
    THREAD_FDS
        + if counting {
            crate::metrics::syscalls::NAMES.len() as u64 + 1
        } else {
            0
        }
}

/// One client process's share: its connections (a contiguous slice of the run's) and threads.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Share {
    pub(super) connections: usize,
    pub(super) slice: Slice,
    pub(super) threads: usize,
}

/// Deals `connections` and `threads` evenly over `processes` (the first ones take one more
/// of each remainder); every process gets at least one thread.
pub(super) fn shares(connections: usize, threads: usize, processes: usize) -> Vec<Share> {
    let mut first = 0;
    (0..processes)
        .map(|i| {
            let n = connections / processes + usize::from(i < connections % processes);
            let t = threads / processes + usize::from(i < threads % processes);
            let share = Share {
                connections: n,
                slice: Slice {
                    first,
                    total: connections as u64,
                },
                threads: t.clamp(1, n.max(1)),
            };
            first += n as u64;
            share
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fewest_processes_that_fit_the_file_limit() {
        let plan = |limit, c, t, asked| plan_under(limit, c, t, asked, false);
        assert_eq!(plan(20_000, 10_000, 1, None).unwrap().processes, 1);
        assert!(plan(20_000, 10_000, 1, None).unwrap().reason.is_none());
        // 19,984 connections + 16 + 4 > 20,000: two processes, and the note says why.
        let split = plan(20_000, 19_984, 1, None).unwrap();
        assert_eq!(split.processes, 2);
        assert!(split.reason.unwrap().contains("runs in 2 processes"));
        // 100 connections under 64 files: 34 + 20 fit, 50 + 20 do not.
        assert_eq!(plan(64, 100, 1, None).unwrap().processes, 3);
        // Counting adds a counter per system call and thread.
        assert_eq!(plan(20_000, 19_960, 1, None).unwrap().processes, 1);
        assert_eq!(
            plan_under(20_000, 19_960, 1, None, true).unwrap().processes,
            2
        );
        // Asked for: kept when it fits, refused with the least that fits, or past the
        // connections.
        assert_eq!(plan(64, 100, 1, Some(4)).unwrap().processes, 4);
        let e = plan(64, 100, 1, Some(1)).unwrap_err().to_string();
        assert!(e.contains("--client-processes 3 or more"), "{e}");
        assert!(matches!(plan(64, 10, 1, Some(11)), Err(Error::Usage(_))));
        assert!(matches!(plan(16, 10, 1, None), Err(Error::Environment(_))));
    }

    #[test]
    fn shares_deal_connections_threads_and_slices_evenly() {
        let s = shares(100, 1, 3);
        let conns: Vec<usize> = s.iter().map(|s| s.connections).collect();
        assert_eq!(conns, [34, 33, 33]);
        let firsts: Vec<u64> = s.iter().map(|s| s.slice.first).collect();
        assert_eq!(firsts, [0, 34, 67]);
        assert!(s.iter().all(|s| s.threads == 1 && s.slice.total == 100));
        let s = shares(10, 5, 2);
        assert_eq!(s[0].threads + s[1].threads, 5);
        assert_eq!(shares(3, 8, 3).iter().map(|s| s.threads).sum::<usize>(), 3);
    }
}
