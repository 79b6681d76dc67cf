//! Execution segments: the one way a run's load is split, over client processes of one host
//! (`split.rs`) or over hosts (`bench load --segment I/N`, then `bench merge`), k6's way.
//!
//! Segment `I` of `N` drives the `I`-th of `N` contiguous stripes of the run's connections and
//! threads ([`Segment::share`], the first stripes taking one more of each remainder). The open
//! loop's schedule is the whole run's (request `n` due at `start + n/R`, dealt round robin over
//! every connection of the run: `schedule.rs`), so request `n` belongs to exactly one segment,
//! the one holding connection `n mod C`, and `N` segments together send exactly the schedule
//! one process would.
//!
//! Each segment tallies what it measured as one [`Part`] (its threads added together) and hands
//! it on exactly ([`SegmentRecord`]: every histogram in HdrHistogram's V2 form), through the
//! pipe to its parent or in its result file. [`merge`] adds the segments' tallies (exact: a
//! histogram sum is the histogram of the union of the samples), their intervals slot by slot
//! (every segment's slot `k` is the same stretch of the shared timeline: the segments started
//! at one go time, or one `--start-at`), their counts and their CPU time, and only then finds
//! the run's stalled requests and its percentiles, once, over the whole run.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use super::local::{run_local, Local};
use super::outcome::SATURATED_BUSY;
use super::part::{self, Part};
use super::plan::{shares, Share};
use super::start::unix_s;
use super::wire::PartWire;
use super::{client_cpus, ClientCost, Edge, LoadConfig, LoadOutcome, ProcessFigures};
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

/// What one segment measured, exactly: its place in the run, its clock, its CPU time and its
/// whole tally. A segment's result file carries it (`runs[0].segment`), and a client process
/// sends it to its parent.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SegmentRecord {
    /// I and N of `--segment I/N`.
    pub index: usize,
    pub of: usize,
    /// Its stripe: the connections it drove, the run-wide index of the first, its threads,
    /// and the CPUs its threads could use.
    pub connections: usize,
    pub first_connection: u64,
    pub threads: usize,
    pub cpus: usize,
    pub pid: u32,
    /// The host it ran on (`bench load --segment`); absent for a client process of one host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// `--start-at`, RFC 3339 in UTC; null when it started as soon as its connections were up.
    pub start_at: Option<String>,
    /// Its timeline's start on its own wall clock (seconds since the Unix epoch): `start_at`
    /// when given.
    pub started_unix_s: f64,
    /// How long after that start it began following its timeline (its connections were not up
    /// in time): 0 when it was waiting for it.
    pub late_s: f64,
    /// Its measured window's real length (ns).
    pub window_ns: u64,
    /// Its CPU time over the window; null when the window did not complete.
    pub cpu_user_s: Option<f64>,
    pub cpu_sys_s: Option<f64>,
    pub interrupted: bool,
    /// Every histogram and count it tallied, histograms in HdrHistogram's V2 form.
    pub tally: PartWire,
}

/// A segment's figures with its tally as a [`Part`], ready to merge.
pub(super) struct Measured {
    pub(super) record: SegmentRecord,
    pub(super) part: Part,
}

impl Measured {
    /// The record as it travels: its tally encoded.
    pub(super) fn record(&self) -> anyhow::Result<SegmentRecord> {
        Ok(SegmentRecord {
            tally: PartWire::of(&self.part)?,
            ..self.record.clone()
        })
    }

    /// A record back, its tally decoded; a damaged one is an error naming the segment.
    pub(super) fn of_record(record: SegmentRecord) -> anyhow::Result<Measured> {
        let part = record.tally.clone().into_part().map_err(|e| {
            anyhow::anyhow!(
                "segment {}/{} holds a damaged tally: {e}",
                record.index,
                record.of
            )
        })?;
        Ok(Measured { record, part })
    }

    fn busy_fraction(&self) -> Option<f64> {
        let r = &self.record;
        let capacity = r.window_ns as f64 / 1e9 * r.cpus.max(1) as f64;
        let cpu = r.cpu_user_s? + r.cpu_sys_s?;
        Some(if capacity > 0.0 { cpu / capacity } else { 0.0 })
    }
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

/// The segments of one run merged into its outcome: tallies added, then the percentiles and
/// the stalled requests found over the whole ([`part::finish`]). The client's cost is every
/// segment's CPU time over their CPUs together (`None` unless each measured its whole window);
/// the client counts as saturated when any segment was, since one saturated segment is enough
/// to bend the run's figures. With more than one segment, each is listed in
/// `client.per_process`.
pub(super) fn merge(segments: Vec<Measured>, interval: Duration) -> LoadOutcome {
    let n = segments.len();
    let window_ns = segments.iter().map(|s| s.record.window_ns).max();
    let window = Duration::from_nanos(window_ns.unwrap_or(0));
    let cpu = segments.iter().try_fold((0.0, 0.0), |(u, s), m| {
        Some((u + m.record.cpu_user_s?, s + m.record.cpu_sys_s?))
    });
    let capacity: f64 = segments
        .iter()
        .map(|m| m.record.window_ns as f64 / 1e9 * m.record.cpus.max(1) as f64)
        .sum();
    let busy = match cpu {
        Some((u, s)) if capacity > 0.0 => (u + s) / capacity,
        _ => 0.0,
    };
    let saturated = segments
        .iter()
        .any(|m| m.busy_fraction().is_some_and(|b| b > SATURATED_BUSY));
    let per_process = if n > 1 {
        segments.iter().map(figures).collect()
    } else {
        Vec::new()
    };
    let (u, s) = cpu.unwrap_or_default();
    let client = ClientCost {
        cpu_user_s: round3(u),
        cpu_sys_s: round3(s),
        busy_fraction: round3(busy),
        saturated,
        syscalls: None,
        processes: n,
        per_process,
    };
    let interrupted = segments.iter().any(|m| m.record.interrupted);
    let threads = segments.iter().map(|m| m.record.threads).sum();
    let whole = part::combine(segments.into_iter().map(|m| m.part));
    let mut outcome = part::finish(whole, window, client, interrupted, interval);
    outcome.threads = threads;
    outcome
}

/// `bench merge`: the outcome of the run whose segments' records these are (one each, checked
/// by the caller to be segments of one run), merged exactly as a split run's client processes
/// are; a damaged tally is an error naming its segment.
pub fn merge_segments(
    records: Vec<SegmentRecord>,
    interval: Duration,
) -> anyhow::Result<LoadOutcome> {
    let segments = records
        .into_iter()
        .map(Measured::of_record)
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(merge(segments, interval))
}

/// The stripe of the run's connections segment `segment` drives: its first connection and how
/// many (the same whatever the threads).
pub fn stripe(segment: Segment, connections: usize) -> (u64, usize) {
    let share = segment.share(connections, 1);
    (share.slice.first, share.connections)
}

/// What one segment did, as the merged run lists it.
fn figures(m: &Measured) -> ProcessFigures {
    let (r, p) = (&m.record, &m.part);
    ProcessFigures {
        pid: r.pid,
        connections: r.connections,
        threads: r.threads,
        connected: p.connected,
        requests: p.requests,
        errors: p.errors.values().sum(),
        warmup_errors: p.warmup_errors.values().sum(),
        cpu_user_s: round3(r.cpu_user_s.unwrap_or_default()),
        cpu_sys_s: round3(r.cpu_sys_s.unwrap_or_default()),
        segment: Some(format!("{}/{}", r.index, r.of)),
        host: r.host.clone(),
        late_s: Some(round3(r.late_s)),
        busy_fraction: m.busy_fraction().map(round3),
    }
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::histogram::{new_histogram, new_interval_histogram, record};

    /// A tally of `samples` (latency µs, interval slot), with `unanswered` ages and an open
    /// loop's histograms.
    fn tally(samples: &[(u64, usize)], unanswered: &[u64]) -> Part {
        let mut part = Part::new();
        part.uncorrected = Some(new_histogram());
        part.pacing = Some(new_histogram());
        for &(us, slot) in samples {
            record(&mut part.histogram, us);
            record(part.uncorrected.as_mut().unwrap(), us / 2 + 1);
            record(part.pacing.as_mut().unwrap(), us % 97 + 1);
            if part.intervals.len() <= slot {
                part.intervals
                    .resize_with(slot + 1, || (new_interval_histogram(), 0));
            }
            record(&mut part.intervals[slot].0, us);
            part.requests += 1;
            part.sent += 1;
            part.bytes += 64;
        }
        for &age in unanswered {
            record(&mut part.unfinished, age);
        }
        part.connected = 1;
        part
    }

    fn measured(index: usize, of: usize, part: Part) -> Measured {
        Measured {
            record: SegmentRecord {
                index,
                of,
                connections: 1,
                first_connection: index as u64 - 1,
                threads: 1,
                cpus: 1,
                pid: 1,
                host: Some(format!("h{index}")),
                start_at: Some("2026-12-02T18:00:00Z".into()),
                started_unix_s: 1_796_234_400.0,
                late_s: 0.0,
                window_ns: 3_000_000_000,
                cpu_user_s: Some(0.1),
                cpu_sys_s: Some(0.2),
                interrupted: false,
                tally: PartWire::default(),
            },
            part,
        }
    }

    #[test]
    fn merged_segments_are_the_run_one_tally_of_every_sample_gives() {
        // 20,000 samples over 3 one-second intervals, some far in the tail, and unanswered
        // requests (two older than every answer: stalled), dealt unevenly over 4 segments.
        let mut rng = fastrand::Rng::with_seed(22);
        let samples: Vec<(u64, usize)> = (0..20_000)
            .map(|_| {
                let us = if rng.u32(..100) == 0 {
                    rng.u64(10_000..2_000_000)
                } else {
                    rng.u64(20..900)
                };
                (us, rng.usize(..3))
            })
            .collect();
        let unanswered = [50, 3_000_000, 4_000_000];
        let whole = tally(&samples, &unanswered);
        let cuts = [0, 1_000, 7_500, 7_501, 20_000];
        let segments: Vec<SegmentRecord> = (0..4)
            .map(|i| {
                let mine = &samples[cuts[i]..cuts[i + 1]];
                let ages: &[u64] = if i == 2 { &unanswered } else { &[] };
                measured(i + 1, 4, tally(mine, ages)).record().unwrap()
            })
            .collect();
        // Through the wire form, as a file or a pipe carries them.
        let json = serde_json::to_string(&segments).unwrap();
        let back: Vec<SegmentRecord> = serde_json::from_str(&json).unwrap();
        let interval = Duration::from_secs(1);
        let merged = merge_segments(back, interval).unwrap();
        let one = part::finish(
            whole,
            Duration::from_secs(3),
            merged.client.clone(),
            false,
            interval,
        );
        assert_eq!(merged.histogram, one.histogram);
        assert_eq!(
            merged.histogram.len(),
            20_002,
            "every answer and the 2 stalled"
        );
        assert_eq!((merged.requests, merged.stalled), (20_000, 2));
        assert_eq!(merged.unfinished, 3);
        assert_eq!(merged.timeseries, one.timeseries);
        assert_eq!(merged.timeseries.len(), 3);
        let (m, o) = (merged.open_loop.unwrap(), one.open_loop.unwrap());
        assert_eq!(
            (m.uncorrected, m.pacing, m.sent),
            (o.uncorrected, o.pacing, o.sent)
        );
        // The client: every segment's CPU over every segment's CPUs; each listed.
        assert_eq!(merged.client.processes, 4);
        assert!((merged.client.cpu_user_s - 0.4).abs() < 1e-9);
        assert!((merged.client.busy_fraction - 0.1).abs() < 1e-9);
        let hosts: Vec<_> = merged
            .client
            .per_process
            .iter()
            .map(|p| p.host.clone().unwrap())
            .collect();
        assert_eq!(hosts, ["h1", "h2", "h3", "h4"]);
        let requests: u64 = merged.client.per_process.iter().map(|p| p.requests).sum();
        assert_eq!(requests, 20_000);
    }

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
    fn one_saturated_segment_makes_the_client_saturated() {
        let mut busy = measured(2, 2, tally(&[(100, 0)], &[]));
        busy.record.cpu_user_s = Some(2.9);
        let calm = measured(1, 2, tally(&[(100, 0)], &[]));
        let merged = merge(vec![calm, busy], Duration::from_secs(1));
        // 3.5 s of 6 CPU-seconds: 58% busy in all, but segment 2 was 97% busy.
        assert!(merged.client.busy_fraction < 0.9);
        assert!(merged.client.saturated);
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
