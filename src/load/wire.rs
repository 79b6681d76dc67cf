//! What the load generator's parent process and its client processes say to each other: JSON
//! lines on the child's stdin and stdout (`bench load-part`, a hidden command).
//!
//! ```text
//! parent -> child   {"config": PartConfig}        first line: what this child drives
//! child -> parent   "ready"                       every connection is up (or failed, counted)
//! parent -> child   {"go": {"start_mono_ns": T}}  the timeline starts at T (CLOCK_MONOTONIC)
//! child -> parent   {"live": {...}}               twice a second: answers and errors so far
//! parent -> child   "release" | "cut"             the window closed and the server's counters
//!                                                 are read: close the connections | stop now
//! child -> parent   {"done": Done}                the threads' tallies, CPU time, counts
//! ```
//!
//! The end of the child's stdin means the parent is gone: the child stops at once. Anything
//! else the child has to say (an error) goes to its stderr, which the parent quotes.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::part::{kind, Part};
use super::{HttpRequest, LoadConfig, Segment, SegmentRecord, Shape, StartAt};
use crate::metrics::histogram::{decode, encode};
use crate::metrics::syscalls::SyscallCounts;
use crate::units::CpuList;

/// What one client process drives: a segment of the run's [`LoadConfig`].
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct PartConfig {
    /// Its segment: client process `i` (from 1) of `n` runs segment `i/n`.
    pub segment: Segment,
    pub target: SocketAddr,
    /// The whole run's shape and client threads (the segment takes its stripe of them); the
    /// shape's fields sit in the line beside the others.
    #[serde(flatten)]
    pub shape: Shape,
    pub threads: usize,
    pub http: Option<HttpRequest>,
    pub cpus: Option<Vec<usize>>,
    pub count_syscalls: bool,
    pub connect_timeout: Duration,
    pub start_at: Option<StartAt>,
}

impl PartConfig {
    /// The configuration the child's threads run with.
    pub fn load_config(&self) -> LoadConfig {
        LoadConfig {
            target: self.target,
            shape: self.shape.clone(),
            threads: self.threads,
            http: self.http.clone(),
            cpus: self.cpus.clone().map(CpuList::new),
            count_syscalls: self.count_syscalls,
            connect_timeout: self.connect_timeout,
            processes: 1,
            segment: Some(self.segment),
            start_at: self.start_at,
        }
    }
}

/// A line from the parent.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum ToChild {
    Config(Box<PartConfig>),
    Go { start_mono_ns: u64 },
    Release,
    Cut,
}

/// A line from a child.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum FromChild {
    Ready,
    Live { requests: u64, errors: u64 },
    Done(Box<Done>),
}

/// What a child measured: its segment, and its threads' system calls when counted.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Done {
    pub segment: SegmentRecord,
    pub client_syscalls: Option<Result<SyscallCounts, String>>,
}

/// A [`Part`] as a client process sends it to the parent: every histogram in HdrHistogram's V2
/// form (compressed, base64, as in the result file), so the parent merges exactly what the
/// child counted.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct PartWire {
    histogram: String,
    /// Each interval's histogram and errors.
    intervals: Vec<(String, u64)>,
    requests: u64,
    bytes: u64,
    errors: BTreeMap<String, u64>,
    warmup_errors: BTreeMap<String, u64>,
    first_errors: BTreeMap<String, String>,
    unfinished: String,
    unsent: u64,
    uncorrected: Option<String>,
    pacing: Option<String>,
    sent: u64,
    starved: u64,
    connected: u64,
}

impl PartWire {
    pub(super) fn of(part: &Part) -> anyhow::Result<PartWire> {
        let named = |m: &BTreeMap<&'static str, u64>| -> BTreeMap<String, u64> {
            m.iter().map(|(k, n)| (k.to_string(), *n)).collect()
        };
        Ok(PartWire {
            histogram: encode(&part.histogram)?,
            intervals: part
                .intervals
                .iter()
                .map(|(h, errors)| Ok((encode(h)?, *errors)))
                .collect::<anyhow::Result<_>>()?,
            requests: part.requests,
            bytes: part.bytes,
            errors: named(&part.errors),
            warmup_errors: named(&part.warmup_errors),
            first_errors: part
                .first_errors
                .iter()
                .map(|(k, text)| (k.to_string(), text.clone()))
                .collect(),
            unfinished: encode(&part.unfinished)?,
            unsent: part.unsent,
            uncorrected: part.uncorrected.as_ref().map(encode).transpose()?,
            pacing: part.pacing.as_ref().map(encode).transpose()?,
            sent: part.sent,
            starved: part.starved,
            connected: part.connected,
        })
    }

    /// The tally back; an unknown error kind or a damaged histogram is an error (the two
    /// ends are the same binary, so either means the message was damaged).
    pub(super) fn into_part(self) -> anyhow::Result<Part> {
        let kinds = |m: BTreeMap<String, u64>| -> anyhow::Result<BTreeMap<&'static str, u64>> {
            m.into_iter().map(|(k, n)| Ok((known(&k)?, n))).collect()
        };
        Ok(Part {
            histogram: decode(&self.histogram)?,
            intervals: self
                .intervals
                .iter()
                .map(|(h, errors)| Ok((decode(h)?, *errors)))
                .collect::<anyhow::Result<_>>()?,
            requests: self.requests,
            bytes: self.bytes,
            errors: kinds(self.errors)?,
            warmup_errors: kinds(self.warmup_errors)?,
            first_errors: self
                .first_errors
                .into_iter()
                .map(|(k, text)| Ok((known(&k)?, text)))
                .collect::<anyhow::Result<_>>()?,
            unfinished: decode(&self.unfinished)?,
            unsent: self.unsent,
            uncorrected: self.uncorrected.as_deref().map(decode).transpose()?,
            pacing: self.pacing.as_deref().map(decode).transpose()?,
            sent: self.sent,
            starved: self.starved,
            connected: self.connected,
        })
    }
}

fn known(name: &str) -> anyhow::Result<&'static str> {
    kind::named(name).ok_or_else(|| anyhow::anyhow!("unknown error kind `{name}`"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::histogram::{new_histogram, new_interval_histogram, record};

    #[test]
    fn a_tally_crosses_the_pipe_unchanged() {
        let mut part = Part::new();
        for us in [3, 40, 500, 6_000, 70_000] {
            record(&mut part.histogram, us);
        }
        let mut interval = new_interval_histogram();
        record(&mut interval, 123);
        part.intervals = vec![(interval, 2), (new_interval_histogram(), 0)];
        part.requests = 5;
        part.bytes = 320;
        part.errors.insert(kind::MISMATCH, 2);
        part.warmup_errors.insert(kind::CONNECT, 1);
        part.first_errors.insert(kind::CONNECT, "refused".into());
        record(&mut part.unfinished, 9_000_000);
        part.uncorrected = Some(new_histogram());
        part.pacing = Some(new_histogram());
        (part.unsent, part.sent, part.starved, part.connected) = (7, 8, 1, 4);

        let line = serde_json::to_string(&PartWire::of(&part).unwrap()).unwrap();
        let back = serde_json::from_str::<PartWire>(&line)
            .unwrap()
            .into_part()
            .unwrap();
        assert_eq!(back.histogram, part.histogram);
        assert_eq!(back.histogram.sigfig(), 3);
        assert_eq!(back.intervals.len(), 2);
        assert_eq!(back.intervals[0].0, part.intervals[0].0);
        assert_eq!(back.intervals[0].1, 2);
        assert_eq!(back.unfinished, part.unfinished);
        assert_eq!(back.errors, part.errors);
        assert_eq!(back.warmup_errors, part.warmup_errors);
        assert_eq!(back.first_errors, part.first_errors);
        assert_eq!(back.uncorrected, part.uncorrected);
        assert_eq!(
            (
                back.requests,
                back.bytes,
                back.unsent,
                back.sent,
                back.starved,
                back.connected
            ),
            (5, 320, 7, 8, 1, 4)
        );
    }

    #[test]
    fn a_part_config_crosses_the_pipe_with_its_shape_flattened() {
        let part = PartConfig {
            segment: Segment { index: 2, of: 2 },
            target: "127.0.0.1:7000".parse().unwrap(),
            shape: Shape {
                workload: crate::protocol::Workload::Echo,
                connections: 6,
                duration: Duration::from_millis(1500),
                warmup: Duration::ZERO,
                payload: 64,
                pipeline: 2,
                timeout: Some(Duration::from_secs(2)),
                rate: Some(1000.0),
                interval: Duration::from_secs(1),
            },
            threads: 1,
            http: None,
            cpus: Some(vec![0, 1]),
            count_syscalls: false,
            connect_timeout: Duration::from_secs(10),
            start_at: Some(crate::load::parse_start_at("2026-12-02T18:00:00.123456789Z").unwrap()),
        };
        let line = serde_json::to_string(&ToChild::Config(Box::new(part))).unwrap();
        // One level: the shape's fields beside the others.
        assert!(line.contains(r#""connections":6"#), "{line}");
        let Ok(ToChild::Config(back)) = serde_json::from_str::<ToChild>(&line) else {
            panic!("{line}");
        };
        let load = back.load_config();
        assert_eq!(load.shape.connections, 6);
        assert_eq!(load.segment, Some(Segment { index: 2, of: 2 }));
        // The start time crosses to the nanosecond.
        assert_eq!(load.start_at, back.start_at);
        assert_eq!(
            load.start_at.unwrap().time(),
            crate::load::parse_start_at("2026-12-02T18:00:00.123456789Z")
                .unwrap()
                .time()
        );
        assert_eq!(load.shape.rate, Some(1000.0));
        assert_eq!(load.shape.timeout, Some(Duration::from_secs(2)));
        assert_eq!(load.shape.duration, Duration::from_millis(1500));
        assert_eq!(load.processes, 1);
    }

    #[test]
    fn an_unknown_error_kind_is_refused() {
        let mut wire = PartWire::of(&Part::new()).unwrap();
        wire.errors.insert("gremlins".into(), 1);
        assert!(wire.into_part().is_err());
    }
}
