//! `bench compare BASELINE CURRENT`: a verdict per run and metric (improved, regressed, no
//! change) with the change and its 95% confidence interval, for a CI gate that does not cry
//! wolf (the decision rule is in `stats.rs` and DESIGN.md).
//!
//! Runs are matched by what makes them the same experiment: the model (with its poller), the
//! workload, the sweep point, connections, payload, pipeline and rate. Their repeats are the
//! samples. With `--normalize-to MODEL` every figure is first divided by that model's median
//! figure at the same point of the same file, so that a baseline from another machine can gate
//! this one.

mod render;
pub mod stats;

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::output::format::{fmt_rate, fmt_us, label};
use crate::result::{self, describe_point, ResultFile, Run};
use crate::Error;
pub use render::{render, Format};
pub use stats::{Change, Verdict};

/// A figure compared.
#[derive(Clone, Copy, Debug)]
pub struct Metric {
    /// The key in the JSON verdict.
    pub key: &'static str,
    /// How a person names it.
    pub name: &'static str,
    pub higher_is_better: bool,
    /// A count per request (system calls, context switches): nearly deterministic, gated
    /// tightly, and compared as it is under `--normalize-to`.
    pub count: bool,
    /// The smallest absolute change that can count (for counts per request).
    pub floor: f64,
    /// The default threshold: the relative change the metric must pass to count. Counts are
    /// tight; times and rates are the smallest round values with at most 1% false alarms at 3,
    /// 5 and 10 repeats on the A/A noise of a shared 2-CPU machine (tests/calibration.rs;
    /// DESIGN.md, "Comparing").
    pub threshold: f64,
    /// The figure in a run, if the run has it.
    pub value: fn(&Run) -> Option<f64>,
    /// How a figure is written.
    pub show: fn(f64) -> String,
}

impl Metric {
    fn of(&self, run: &Run) -> Option<f64> {
        (self.value)(run).filter(|v| v.is_finite())
    }
}

/// A time or rate figure.
const fn timed(
    key: &'static str,
    name: &'static str,
    higher_is_better: bool,
    threshold: f64,
    value: fn(&Run) -> Option<f64>,
    show: fn(f64) -> String,
) -> Metric {
    Metric {
        key,
        name,
        higher_is_better,
        count: false,
        floor: 0.0,
        threshold,
        value,
        show,
    }
}

/// A count per request: 5%, and at least 0.05 per request.
const fn counted(key: &'static str, name: &'static str, value: fn(&Run) -> Option<f64>) -> Metric {
    Metric {
        key,
        name,
        higher_is_better: false,
        count: true,
        floor: 0.05,
        threshold: 0.05,
        value,
        show: |v| format!("{v:.3}"),
    }
}

/// The metrics, in the order they are shown.
pub const METRICS: &[Metric] = &[
    timed(
        "throughput_rps",
        "throughput",
        true,
        0.40,
        |r| Some(r.throughput_rps),
        fmt_rate,
    ),
    timed(
        "p50_us",
        "p50",
        false,
        0.40,
        |r| Some(r.latency_us.p50),
        fmt_us,
    ),
    timed(
        "p99_us",
        "p99",
        false,
        0.50,
        |r| Some(r.latency_us.p99),
        fmt_us,
    ),
    timed(
        "p999_us",
        "p99.9",
        false,
        0.75,
        |r| Some(r.latency_us.p999),
        fmt_us,
    ),
    timed(
        "cpu_us_per_request",
        "CPU µs/req",
        false,
        0.15,
        |r| r.server.as_ref()?.cpu_us_per_request,
        |v| format!("{v:.2}"),
    ),
    counted("syscalls_per_request", "syscalls/req", |r| {
        r.syscalls.as_ref()?.per_request
    }),
    counted("ctx_switches_per_request", "ctxsw/req", |r| {
        r.server.as_ref()?.ctx_switches_per_request
    }),
];

/// The threshold of a count that varies between repeats (io_uring's system calls per request):
/// gated like a time. Measured: DESIGN.md, "Comparing".
pub const VARYING_COUNT_THRESHOLD: f64 = 0.50;

/// What identifies the same experiment in two files.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct RunKey {
    pub model: String,
    pub workload: String,
    pub point: String,
    pub connections: usize,
    pub payload: usize,
    pub pipeline: usize,
    /// The open loop's rate, as text (`-` for the closed loop).
    pub rate: String,
}

impl RunKey {
    fn of(run: &Run) -> RunKey {
        RunKey {
            model: label(run),
            workload: run.workload.clone(),
            point: describe_point(&run.point),
            connections: run.connections,
            payload: run.payload,
            pipeline: run.pipeline,
            rate: run.rate.map_or("-".into(), |r| format!("{r}")),
        }
    }

    /// How the key reads in a table: the model, then what differs from the defaults.
    pub fn describe(&self) -> String {
        let mut s = self.model.clone();
        if !self.point.is_empty() {
            s.push_str(&format!(" [{}]", self.point));
        }
        if self.rate != "-" {
            s.push_str(&format!(" @{} req/s", self.rate));
        }
        s
    }
}

/// One matched run and its metrics.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub key: RunKey,
    /// Repeats on each side.
    pub repeats: (usize, usize),
    pub metrics: BTreeMap<&'static str, Change>,
}

/// The whole comparison.
#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    pub rows: Vec<Row>,
    /// Runs only one side has.
    pub only_in_baseline: Vec<String>,
    pub only_in_current: Vec<String>,
    /// Time and rate figures are ratios to this model at the same point (`--normalize-to`);
    /// counts per request are compared as they are.
    pub normalized_to: Option<String>,
    /// Why no significance could be given, when it could not.
    pub notes: Vec<String>,
}

impl Comparison {
    pub fn regressions(&self) -> usize {
        self.rows
            .iter()
            .flat_map(|r| r.metrics.values())
            .filter(|c| c.verdict == Verdict::Regressed)
            .count()
    }
}

/// Options of a comparison.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// One threshold (relative) for every time and rate metric instead of the defaults.
    pub threshold: Option<f64>,
    pub normalize_to: Option<String>,
}

/// Reads both files and compares them; files that cannot be compared are an error (exit 2)
/// that says what differs.
pub fn compare_files(
    baseline: &Path,
    current: &Path,
    opts: &Options,
) -> anyhow::Result<Comparison> {
    let b = result::load(baseline)?;
    let c = result::load(current)?;
    compare(&b, &c, opts)
}

/// Compares two result files.
pub fn compare(base: &ResultFile, cur: &ResultFile, opts: &Options) -> anyhow::Result<Comparison> {
    let (differs, mut notes) = differences(base, cur);
    let grouped_b = groups(base, opts.normalize_to.as_deref())?;
    let grouped_c = groups(cur, opts.normalize_to.as_deref())?;
    let mut rows = Vec::new();
    for (key, b_runs) in &grouped_b {
        let Some(c_runs) = grouped_c.get(key) else {
            continue;
        };
        rows.push(compare_runs(key, b_runs, c_runs, opts, &mut notes));
    }
    let only_in_baseline: Vec<String> = grouped_b
        .keys()
        .filter(|k| !grouped_c.contains_key(k))
        .map(RunKey::describe)
        .collect();
    let only_in_current: Vec<String> = grouped_c
        .keys()
        .filter(|k| !grouped_b.contains_key(k))
        .map(RunKey::describe)
        .collect();
    if rows.is_empty() || !differs.is_empty() {
        let mut why = differs;
        if rows.is_empty() {
            why.push(format!(
                "no run of one file matches a run of the other (baseline: {}; current: {})",
                join_or_none(&only_in_baseline),
                join_or_none(&only_in_current)
            ));
        }
        return Err(Error::Usage(format!(
            "the two files are not the same experiment: {}",
            why.join("; ")
        ))
        .into());
    }
    Ok(Comparison {
        rows,
        only_in_baseline,
        only_in_current,
        normalized_to: opts.normalize_to.clone(),
        notes,
    })
}

/// How the two files' experiments differ: what makes them incomparable (the workload), and
/// the notes on what a change under test may bring (a slower handler is what a regression
/// looks like: said, not refused), another machine, another load.
fn differences(base: &ResultFile, cur: &ResultFile) -> (Vec<String>, Vec<String>) {
    let (bs, cs) = (&base.scenario, &cur.scenario);
    let mut differs = Vec::new();
    if bs.workload != cs.workload {
        differs.push(format!("workload {} vs {}", bs.workload, cs.workload));
    }
    // Differences a change under test may bring (a slower handler is what a regression
    // looks like) are said, not refused.
    let mut notes = Vec::new();
    if bs.duration_s != cs.duration_s || bs.warmup_s != cs.warmup_s {
        notes.push(format!(
            "the runs differ in length: {} s (+{} s warm-up) vs {} s (+{} s)",
            bs.duration_s, bs.warmup_s, cs.duration_s, cs.warmup_s
        ));
    }
    if bs.work_us != cs.work_us || bs.block_us != cs.block_us {
        notes.push(format!(
            "the handler's cost differs: work_us/block_us {}/{} vs {}/{}",
            bs.work_us, bs.block_us, cs.work_us, cs.block_us
        ));
    }
    if base.env.cpu_model != cur.env.cpu_model || base.env.cpus != cur.env.cpus {
        notes.push(format!(
            "measured on different machines ({}, {} CPUs vs {}, {} CPUs): compare ratios \
             (--normalize-to MODEL)",
            base.env.cpu_model, base.env.cpus, cur.env.cpu_model, cur.env.cpus
        ));
    }
    if let (Some(lb), Some(lc)) = (base.env.loadavg_at_start, cur.env.loadavg_at_start) {
        let cpus = base.env.cpus.max(1) as f64;
        if (lb[0] - lc[0]).abs() / cpus > 1.0 {
            notes.push(format!(
                "the machine's load differed (load average {:.1} vs {:.1} on {} CPUs at the \
                 start): times move with it, and not alike for every model (thread-per-connection \
                 models take a larger share of a crowded CPU); compare runs taken under like load",
                lb[0], lc[0], base.env.cpus
            ));
        }
    }
    (differs, notes)
}

/// One experiment's repeats on both sides, metric by metric; a note on `notes` for a count
/// that varies, and for a single repeat.
fn compare_runs(
    key: &RunKey,
    b_runs: &[Figures],
    c_runs: &[Figures],
    opts: &Options,
    notes: &mut Vec<String>,
) -> Row {
    let mut metrics = BTreeMap::new();
    for m in METRICS {
        let bv: Vec<f64> = b_runs
            .iter()
            .filter_map(|v| v.get(m.key).copied())
            .collect();
        let cv: Vec<f64> = c_runs
            .iter()
            .filter_map(|v| v.get(m.key).copied())
            .collect();
        if bv.is_empty() || cv.is_empty() {
            continue;
        }
        // A count is gated tightly only where it is deterministic: repeats within its
        // threshold of each other on both sides. io_uring's system calls per request are
        // not (each wait reaps however many completions are in): gated like a time there.
        let varies =
            m.count && (stats::spread(&bv) > m.threshold || stats::spread(&cv) > m.threshold);
        let threshold = match (m.count && !varies, opts.threshold) {
            (true, _) => m.threshold,
            (false, Some(t)) => t,
            (false, None) if varies => VARYING_COUNT_THRESHOLD,
            (false, None) => m.threshold,
        };
        // (Counts under the floor cannot regress anyway: not worth a note.)
        if varies && stats::median(&bv).max(stats::median(&cv)) > m.floor {
            notes.push(format!(
                "{} of {} varies between repeats (by up to {:.0}%): not a deterministic count \
                 there, so it is gated like a time ({:.0}%)",
                m.name,
                key.describe(),
                100.0 * stats::spread(&bv).max(stats::spread(&cv)),
                100.0 * threshold
            ));
        }
        metrics.insert(m.key, stats::compare(m, &bv, &cv, threshold));
    }
    if b_runs.len() < 2 || c_runs.len() < 2 {
        let note = "some runs have a single repeat on a side: no significance can be given \
                    for them, the threshold alone decides (use --repeat 3 or more)"
            .to_string();
        if !notes.contains(&note) {
            notes.push(note);
        }
    }
    Row {
        key: key.clone(),
        repeats: (b_runs.len(), c_runs.len()),
        metrics,
    }
}

fn join_or_none(v: &[String]) -> String {
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

/// One repeat's figures, by metric key.
type Figures = BTreeMap<&'static str, f64>;

/// Each experiment's repeats, as metric -> value maps (normalized when asked).
fn groups(
    file: &ResultFile,
    normalize_to: Option<&str>,
) -> anyhow::Result<BTreeMap<RunKey, Vec<Figures>>> {
    // Each repeat keeps its index: under --normalize-to it is divided by the reference's
    // repeat of the same index, measured right beside it.
    let mut out: BTreeMap<RunKey, Vec<(usize, Figures)>> = BTreeMap::new();
    for run in file
        .runs
        .iter()
        .filter(|r| r.slo_probe.is_none() && r.failure.is_none())
    {
        let values: Figures = METRICS
            .iter()
            .filter_map(|m| Some((m.key, m.of(run)?)))
            .collect();
        out.entry(RunKey::of(run))
            .or_default()
            .push((run.repeat_index, values));
    }
    let Some(reference) = normalize_to else {
        return Ok(out
            .into_iter()
            .map(|(k, v)| (k, v.into_iter().map(|(_, f)| f).collect()))
            .collect());
    };
    let mut scaled = BTreeMap::new();
    for (key, repeats) in &out {
        let mut ref_key = key.clone();
        ref_key.model = reference.to_string();
        let Some(ref_runs) = out.get(&ref_key) else {
            return Err(Error::Usage(format!(
                "--normalize-to {reference}: a result file has no {reference} run at {} to \
                 divide by (run it with the others)",
                if key.point.is_empty() {
                    "its point".to_string()
                } else {
                    key.point.clone()
                }
            ))
            .into());
        };
        if key.model == reference {
            continue;
        }
        let norm = repeats
            .iter()
            .map(|(index, values)| normalized(values, *index, ref_runs))
            .collect();
        scaled.insert(key.clone(), norm);
    }
    Ok(scaled)
}

/// One repeat's figures over the reference model's: its repeat of the same index when it has
/// one (the two ran side by side, A B A B, so a slow spell of the machine divides out), else
/// the median of its repeats. Counts per request do not depend on the machine's speed: they
/// are kept as they are.
fn normalized(values: &Figures, index: usize, reference: &[(usize, Figures)]) -> Figures {
    let beside = reference.iter().find(|(i, _)| *i == index).map(|(_, f)| f);
    let mut out = Figures::new();
    for (m, x) in values {
        if METRICS
            .iter()
            .any(|metric| metric.key == *m && metric.count)
        {
            out.insert(*m, *x);
            continue;
        }
        let r = match beside.and_then(|f| f.get(m)) {
            Some(r) => *r,
            None => {
                let all: Vec<f64> = reference
                    .iter()
                    .filter_map(|(_, f)| f.get(m).copied())
                    .collect();
                if all.is_empty() {
                    continue;
                }
                stats::median(&all)
            }
        };
        if r > 0.0 {
            out.insert(*m, x / r);
        }
    }
    out
}
