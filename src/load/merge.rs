//! What a segment measured ([`SegmentRecord`]) and the merge of a run's segments.
//!
//! Each segment tallies what it measured as one [`Part`] (its threads added together) and hands
//! it on exactly (every histogram in HdrHistogram's V2 form), through the pipe to its parent or
//! in its result file. [`merge`] adds the segments' tallies (exact: a histogram sum is the
//! histogram of the union of the samples), their intervals slot by slot (every segment's slot
//! `k` is the same stretch of the shared timeline: the segments started at one go time, or one
//! `--start-at`), their counts and their CPU time, and only then finds the run's stalled
//! requests and its percentiles, once, over the whole run.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::outcome::SATURATED_BUSY;
use super::part::{self, Part};
use super::wire::PartWire;
use super::{ClientCost, LoadOutcome, ProcessFigures};

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
    fn one_saturated_segment_makes_the_client_saturated() {
        let mut busy = measured(2, 2, tally(&[(100, 0)], &[]));
        busy.record.cpu_user_s = Some(2.9);
        let calm = measured(1, 2, tally(&[(100, 0)], &[]));
        let merged = merge(vec![calm, busy], Duration::from_secs(1));
        // 3.5 s of 6 CPU-seconds: 58% busy in all, but segment 2 was 97% busy.
        assert!(merged.client.busy_fraction < 0.9);
        assert!(merged.client.saturated);
    }
}
