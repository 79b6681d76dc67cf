//! Execution segments: the one way a run's load is split, over client processes of one host
//! (`split.rs`) or over hosts (`bench load --segment I/N`, then `bench merge`), k6's way.
//!
//! Segment `I` of `N` drives the `I`-th of `N` contiguous stripes of the run's connections and
//! threads ([`Segment::share`], the first stripes taking one more of each remainder). The open
//! loop's schedule is the whole run's (request `n` due at `start + n/R`, dealt round robin over
//! every connection of the run: `schedule.rs`), so request `n` belongs to exactly one segment,
//! the one holding connection `n mod C`, and `N` segments together send exactly the schedule
//! one process would. [`run_segment`] runs one in this process; `merge.rs` holds what it
//! measured and adds segments together.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use super::local::{run_local, Local};
use super::merge::{Measured, SegmentRecord};
use super::part;
use super::plan::{shares, Share};
use super::start::unix_s;
use super::wire::PartWire;
use super::{client_cpus, Edge, LoadConfig};
use crate::metrics::syscalls::SyscallCounts;

/// `--segment I/N`: the `index`-th (from 1) of `of` stripes of the run's load.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    pub index: usize,
    pub of: usize,
}

impl Segment {
    /// The whole run, unsplit.
    pub const WHOLE: Segment = Segment { index: 1, of: 1 };

    /// This segment's stripe of `connections` over `threads` threads: the same deal the
    /// client processes of one host get (`plan.rs`).
    pub(super) fn share(&self, connections: usize, threads: usize) -> Share {
        shares(connections, threads, self.of)[self.index - 1]
    }
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.of)
    }
}

impl FromStr for Segment {
    type Err = String;

    fn from_str(text: &str) -> Result<Segment, String> {
        let bad = |why: &str| {
            format!(
                "`{text}` is not a segment: {why} (write I/N, the I-th of N segments, I from 1 \
                 to N: --segment 2/4)"
            )
        };
        let (i, n) = text.split_once('/').ok_or_else(|| bad("it has no `/`"))?;
        let number = |s: &str| {
            s.trim()
                .parse::<usize>()
                .map_err(|_| bad("not two numbers"))
        };
        let (index, of) = (number(i)?, number(n)?);
        if of == 0 || index == 0 || index > of {
            return Err(bad("I must be from 1 to N"));
        }
        Ok(Segment { index, of })
    }
}

impl LoadConfig {
    /// The run as a segment's own figures see it: its stripe of the connections and its share
    /// of the rate (`c` of the run's `C` connections carry `c/C` of its requests); the whole
    /// run when it is not a segment.
    pub fn segment_view(&self) -> LoadConfig {
        let Some(segment) = self.segment else {
            return self.clone();
        };
        let whole = self.shape.connections.max(1);
        let share = segment.share(whole, self.threads);
        LoadConfig {
            shape: super::Shape {
                connections: share.connections,
                rate: self
                    .shape
                    .rate
                    .map(|r| r * share.connections as f64 / whole as f64),
                ..self.shape.clone()
            },
            threads: share.threads,
            ..self.clone()
        }
    }
}

/// clap value parser for `--segment`.
pub fn parse_segment(text: &str) -> Result<Segment, String> {
    text.parse()
}

/// The stripe of the run's connections segment `segment` drives: its first connection and how
/// many (the same whatever the threads).
pub fn stripe(segment: Segment, connections: usize) -> (u64, usize) {
    let share = segment.share(connections, 1);
    (share.slice.first, share.connections)
}

/// A segment run in this process, and what its threads measured besides the tally.
pub(super) struct Ran {
    pub(super) measured: Measured,
    pub(super) client_syscalls: Option<Result<SyscallCounts, String>>,
}

/// Runs `segment` of the run `config` describes in this process: its stripe of the connections
/// over its share of the threads, on the whole run's schedule. `start` gives the go time once
/// every connection is up (`None`: do not start); how long after it this segment began is its
/// lateness. `stopped` and `on_edge` are [`run_local`]'s.
pub(super) fn run_segment(
    config: &LoadConfig,
    segment: Segment,
    stopped: &dyn Fn() -> bool,
    start: &mut dyn FnMut() -> Option<Instant>,
    on_edge: &mut dyn FnMut(Edge),
) -> anyhow::Result<Ran> {
    let share = segment.share(config.shape.connections, config.threads);
    let mine = LoadConfig {
        shape: super::Shape {
            connections: share.connections,
            ..config.shape.clone()
        },
        threads: share.threads,
        processes: 1,
        ..config.clone()
    };
    let mut began: Option<(Instant, Duration)> = None;
    let mut timed = || {
        let at = start()?;
        began = Some((at, Instant::now().saturating_duration_since(at)));
        Some(at)
    };
    let local = run_local(&mine, share.slice, stopped, &mut timed, on_edge)?;
    let (late, started_unix_s) = match (began, config.start_at) {
        (Some((_, late)), Some(at)) => (late, at.unix_s()),
        (Some((at, late)), None) => {
            let ago = Instant::now().saturating_duration_since(at);
            (late, unix_s(SystemTime::now()) - ago.as_secs_f64())
        }
        (None, _) => (Duration::ZERO, unix_s(SystemTime::now())),
    };
    let Local {
        parts,
        cpu,
        interrupted,
        window,
        client_syscalls,
        threads,
        ..
    } = local;
    let record = SegmentRecord {
        index: segment.index,
        of: segment.of,
        connections: share.connections,
        first_connection: share.slice.first,
        threads,
        cpus: client_cpus(&mine, threads),
        pid: std::process::id(),
        host: None,
        start_at: config.start_at.map(|at| at.to_string()),
        started_unix_s,
        late_s: late.as_secs_f64(),
        window_ns: window.as_nanos() as u64,
        cpu_user_s: cpu.map(|(u, _)| u),
        cpu_sys_s: cpu.map(|(_, s)| s),
        interrupted,
        // The tally travels as `part` until [`Measured::record`] encodes it.
        tally: PartWire::default(),
    };
    Ok(Ran {
        measured: Measured {
            record,
            part: part::combine(parts),
        },
        client_syscalls,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_segments_together_send_exactly_the_whole_schedule() {
        // 7 connections at 700 req/s in 3 segments: every request n of the first 70 is due at
        // n ms in exactly one segment, as in one process.
        let (connections, rate) = (7usize, 700.0);
        let origin = std::time::Instant::now();
        let mut due_ms: Vec<u64> = Vec::new();
        for index in 1..=3 {
            let share = Segment { index, of: 3 }.share(connections, 2);
            let schedule = super::super::schedule::Schedule {
                rate,
                connections: connections as u64,
                first: share.slice.first,
            };
            for i in 0..share.connections {
                for k in 0..10 {
                    let at = schedule.due(origin, i, k).duration_since(origin);
                    due_ms.push((at.as_secs_f64() * rate).round() as u64);
                }
            }
        }
        due_ms.sort_unstable();
        assert_eq!(due_ms, (0..70).collect::<Vec<u64>>());
    }

    #[test]
    fn segments_read_as_i_of_n() {
        assert_eq!("2/4".parse(), Ok(Segment { index: 2, of: 4 }));
        assert_eq!(Segment { index: 2, of: 4 }.to_string(), "2/4");
        for bad in ["0/4", "5/4", "1/0", "2", "a/b", "2/4/1"] {
            let e = bad.parse::<Segment>().unwrap_err();
            assert!(e.contains("--segment 2/4"), "{bad}: {e}");
        }
    }

    #[test]
    fn the_segments_stripes_cover_every_connection_once() {
        // 10 connections, 3 threads, 4 segments: 3 3 2 2 connections from 0, 3, 6, 8.
        let stripes: Vec<Share> = (1..=4)
            .map(|index| Segment { index, of: 4 }.share(10, 3))
            .collect();
        let firsts: Vec<u64> = stripes.iter().map(|s| s.slice.first).collect();
        assert_eq!(firsts, [0, 3, 6, 8]);
        let conns: Vec<usize> = stripes.iter().map(|s| s.connections).collect();
        assert_eq!(conns, [3, 3, 2, 2]);
        assert!(stripes
            .iter()
            .all(|s| s.threads >= 1 && s.slice.total == 10));
        assert_eq!(Segment::WHOLE.share(10, 3).connections, 10);
    }
}
