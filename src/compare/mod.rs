//! `bench compare BASELINE CURRENT`: a verdict per run and metric (improved, regressed, no
//! change) with the change and its significance, for a CI gate that neither cries wolf nor can
//! be fooled (the decision rule is in `stats.rs`, the rules in DESIGN.md "Comparing").
//!
//! Runs are matched by what makes them the same experiment: the model (with its poller), the
//! workload, the sweep point, connections, payload, pipeline and rate. Their repeats are the
//! samples. With `--normalize-to MODEL` every other model's figures are first divided by that
//! model's at the same point of the same file, so that a baseline from another machine can gate
//! this one; the reference itself is gated on its counts as they are and on its figures against
//! the others' (`samples.rs`). A run of the baseline that failed or is absent in the current
//! file is a regression; a change common to every model is reported on its own (`common.rs`);
//! a saturated load generator's throughput and latency are not gated.

mod common;
mod metric;
mod render;
mod samples;
mod setup;
pub mod stats;
mod within;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Serialize;

use crate::output::format::label;
use crate::result::{self, describe_point, ResultFile, Run};
use crate::Error;
pub use common::CommonChange;
pub use metric::{short_name, Metric, METRICS, VARYING_COUNT_THRESHOLD};
pub use render::{render, Format};
use samples::{Experiments, Repeats};
pub use stats::{Change, Verdict};

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
    /// Under `--normalize-to`, the reference model's own row: its counts as they are, its time
    /// and rate figures as ratios to the geometric mean of the other models.
    pub reference: bool,
    /// The load generator was saturated on a side: throughput and latency not gated.
    pub saturated: bool,
    pub metrics: BTreeMap<&'static str, Change>,
}

impl Row {
    /// The run as a table shows it.
    pub fn describe(&self) -> String {
        let run = self.key.describe();
        if self.reference {
            format!("{run} (vs the others)")
        } else {
            run
        }
    }
}

/// A run of the baseline that did not run in the current file: gone, or failed.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Missing {
    pub run: String,
    pub why: String,
}

/// The whole comparison.
#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    pub rows: Vec<Row>,
    /// Runs of the baseline that failed or are absent in the current file: regressions, unless
    /// `--allow-missing`.
    pub missing: Vec<Missing>,
    /// Whether a missing run counts as a regression.
    pub missing_is_regression: bool,
    /// Runs only the current file has.
    pub only_in_current: Vec<String>,
    /// Time and rate figures are ratios to this model at the same point (`--normalize-to`);
    /// counts per request are compared as they are.
    pub normalized_to: Option<String>,
    /// Metrics that moved alike for every model (raw figures).
    pub common: Vec<CommonChange>,
    /// What the reader must know: setups that differ, single repeats, saturated clients.
    pub notes: Vec<String>,
}

impl Comparison {
    /// Regressed metrics, plus the runs that failed or went missing (unless allowed).
    pub fn regressions(&self) -> usize {
        let metrics = self
            .rows
            .iter()
            .flat_map(|r| r.metrics.values())
            .filter(|c| c.verdict == Verdict::Regressed)
            .count();
        metrics
            + if self.missing_is_regression {
                self.missing.len()
            } else {
                0
            }
    }
}

/// Options of a comparison.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// One threshold (relative) for every time and rate metric instead of the defaults.
    pub threshold: Option<f64>,
    /// Thresholds of single metrics by short name (`cpu`, `syscalls`: [`short_name`]), over
    /// both the defaults and `threshold`.
    pub metric_thresholds: Vec<(String, f64)>,
    pub normalize_to: Option<String>,
    /// A run of the baseline that failed or is absent in the current file is noted, not a
    /// regression.
    pub allow_missing: bool,
    /// Accept a baseline made by a build with uncommitted changes.
    pub allow_dirty: bool,
    /// Judge only these models' runs (`bench run --model X --baseline FILE` judges the models
    /// it ran, not the baseline's others); `None`: every run of the baseline.
    pub only_models: Option<Vec<String>>,
}

/// Reads both files and compares them; files that cannot be compared are an error (exit 2)
/// that says what differs.
/// `bench compare RESULT --base A --head B`: `head`'s runs judged against `base`'s, both from
/// one file (`within.rs`).
pub fn compare_within(
    file: &Path,
    base: &str,
    head: &str,
    opts: &Options,
) -> anyhow::Result<Comparison> {
    let f = result::load(file)?;
    let (b, c) = within::split(&f, base, head, opts.normalize_to.as_deref())?;
    // One file, one build of the harness: whatever made it, both sides share it.
    let opts = Options {
        allow_dirty: true,
        ..opts.clone()
    };
    compare(&b, &c, &opts)
}

pub fn compare_files(
    baseline: &Path,
    current: &Path,
    opts: &Options,
) -> anyhow::Result<Comparison> {
    let b = result::load(baseline)?;
    let c = result::load(current)?;
    compare(&b, &c, opts)
}

/// A baseline made by a build with uncommitted changes is refused unless `allow_dirty`:
/// nobody can rebuild the code it measured.
pub fn check_baseline(base: &ResultFile, allow_dirty: bool) -> anyhow::Result<()> {
    if base.tool.git_commit.ends_with("-dirty") && !allow_dirty {
        return Err(Error::Usage(format!(
            "the baseline was made by a build with uncommitted changes (commit {}): nobody can \
             rebuild the code it measured; remake it from a clean commit, or pass --allow-dirty",
            base.tool.git_commit
        ))
        .into());
    }
    Ok(())
}

/// Compares two result files.
pub fn compare(base: &ResultFile, cur: &ResultFile, opts: &Options) -> anyhow::Result<Comparison> {
    check_baseline(base, opts.allow_dirty)?;
    let (mut differs, mut notes) = setup::differences(base, cur);
    let mut raw_b = samples::experiments(base);
    let raw_c = samples::experiments(cur);
    if let Some(only) = &opts.only_models {
        let keep = |k: &RunKey| {
            let model = k.model.split(' ').next().unwrap_or_default();
            only.iter().any(|m| m == model) || opts.normalize_to.as_deref() == Some(model)
        };
        raw_b.retain(|k, _| keep(k));
    }
    if !raw_b.keys().any(|k| raw_c.contains_key(k)) {
        differs.push(format!(
            "no run of one file matches a run of the other (baseline: {}; current: {})",
            join_or_none(&raw_b.keys().map(RunKey::describe).collect::<Vec<_>>()),
            join_or_none(&raw_c.keys().map(RunKey::describe).collect::<Vec<_>>())
        ));
    }
    if !differs.is_empty() {
        return Err(Error::Usage(format!(
            "the two files are not the same experiment: {}",
            differs.join("; ")
        ))
        .into());
    }
    let (gated_b, gated_c) = match opts.normalize_to.as_deref() {
        None => (raw_b.clone(), raw_c.clone()),
        Some(reference) => {
            if !raw_b
                .iter()
                .any(|(k, r)| k.model == reference && !r.ok.is_empty())
            {
                return Err(Error::Usage(format!(
                    "--normalize-to {reference}: the baseline has no {reference} run to divide \
                        by (run it with the others)"
                ))
                .into());
            }
            // The experiments that ran in both files: the only ones the reference is held
            // against.
            let shared: BTreeSet<RunKey> = raw_b
                .iter()
                .filter(|(k, b)| {
                    !b.ok.is_empty() && raw_c.get(*k).is_some_and(|c| !c.ok.is_empty())
                })
                .map(|(k, _)| k.clone())
                .collect();
            (
                normalizing(&raw_b, reference, &shared),
                normalizing(&raw_c, reference, &shared),
            )
        }
    };
    let mut rows = Vec::new();
    for (key, b) in gated_b.iter().filter(|(_, b)| !b.ok.is_empty()) {
        let Some(c) = gated_c.get(key).filter(|c| !c.ok.is_empty()) else {
            continue;
        };
        let reference = opts.normalize_to.as_deref() == Some(key.model.as_str());
        rows.push(compare_runs(key, b, c, reference, opts, &mut notes));
    }
    let missing = missing(&raw_b, &raw_c, &gated_b, &gated_c, opts, &mut notes);
    let only_in_current = raw_c
        .keys()
        .filter(|k| !raw_b.contains_key(k))
        .map(RunKey::describe)
        .collect();
    saturation_note(&rows, &mut notes);
    Ok(Comparison {
        rows,
        missing,
        missing_is_regression: !opts.allow_missing,
        only_in_current,
        normalized_to: opts.normalize_to.clone(),
        common: common::common_changes(&raw_b, &raw_c, opts.threshold),
        notes,
    })
}

/// Under `--normalize-to`: every other experiment as ratios to the reference, and the
/// reference itself against the rest.
fn normalizing(all: &Experiments, reference: &str, shared: &BTreeSet<RunKey>) -> Experiments {
    let mut out = samples::normalized(all, reference);
    out.extend(samples::reference_against_the_rest(all, reference, shared));
    out
}

/// The runs of the baseline that did not run in the current file: absent, failed in every
/// repeat, or failed in a larger share of repeats than in the baseline. Under `--normalize-to`,
/// a run that ran on both sides but lost its reference on one is noted as not compared.
fn missing(
    raw_b: &Experiments,
    raw_c: &Experiments,
    gated_b: &Experiments,
    gated_c: &Experiments,
    opts: &Options,
    notes: &mut Vec<String>,
) -> Vec<Missing> {
    let share = |r: &Repeats| r.failed.len() as f64 / (r.failed.len() + r.ok.len()).max(1) as f64;
    let mut out = Vec::new();
    for (key, b) in raw_b.iter().filter(|(_, b)| !b.ok.is_empty()) {
        let why = match raw_c.get(key) {
            None => Some("not in the current file".to_string()),
            Some(c) if !c.failed.is_empty() && (c.ok.is_empty() || share(c) > share(b)) => {
                Some(format!(
                    "failed in the current file ({} of {} repeats, against {} of {} in the \
                     baseline: {})",
                    c.failed.len(),
                    c.failed.len() + c.ok.len(),
                    b.failed.len(),
                    b.failed.len() + b.ok.len(),
                    c.failed.join("; ")
                ))
            }
            Some(_) => None,
        };
        if let Some(why) = why {
            out.push(Missing {
                run: key.describe(),
                why,
            });
            continue;
        }
        let ran_both = raw_c.get(key).is_some_and(|c| !c.ok.is_empty());
        let lost = |g: &Experiments| g.get(key).map_or(true, |r| r.ok.is_empty());
        if opts.normalize_to.is_some() && ran_both && (lost(gated_b) || lost(gated_c)) {
            notes.push(format!(
                "{}: not compared, its reference ran in no repeat of the {} at this point",
                key.describe(),
                if lost(gated_b) {
                    "baseline"
                } else {
                    "current file"
                }
            ));
        }
    }
    out
}

/// One note for every experiment whose load generator was saturated.
fn saturation_note(rows: &[Row], notes: &mut Vec<String>) {
    let saturated: Vec<String> = rows
        .iter()
        .filter(|r| r.saturated)
        .map(Row::describe)
        .collect();
    if !saturated.is_empty() {
        notes.push(format!(
            "the load generator was saturated in {}: their throughput and latency describe the \
                client, not the server, and are not gated (CPU and counts per request are); gate \
                on an open loop below capacity (--rate)",
            saturated.join(", ")
        ));
    }
}

/// One experiment's repeats on both sides, metric by metric; a note on `notes` for a count
/// that varies, and for a single repeat.
fn compare_runs(
    key: &RunKey,
    b: &Repeats,
    c: &Repeats,
    reference: bool,
    opts: &Options,
    notes: &mut Vec<String>,
) -> Row {
    let saturated = b.saturated || c.saturated;
    let mut metrics = BTreeMap::new();
    for m in METRICS {
        if saturated && m.client_bound_when_saturated() {
            continue;
        }
        let (bv, cv) = (b.values(m.key), c.values(m.key));
        if bv.is_empty() || cv.is_empty() {
            continue;
        }
        // A count is gated tightly only where it is deterministic: the baseline's repeats
        // within its threshold of each other. io_uring's system calls per request are not
        // (each wait reaps however many completions are in): gated like a time there. The
        // baseline alone decides, so a change that makes a count noisier cannot loosen its
        // own gate.
        let varies = m.count && stats::spread(&bv) > m.threshold;
        let own = opts
            .metric_thresholds
            .iter()
            .rev()
            .find(|(name, _)| name == short_name(m.key))
            .map(|(_, t)| *t);
        let threshold = match (own, m.count && !varies, opts.threshold) {
            (Some(t), _, _) => t,
            (None, true, _) => m.threshold,
            (None, false, Some(t)) => t,
            (None, false, None) if varies => VARYING_COUNT_THRESHOLD,
            (None, false, None) => m.threshold,
        };
        // (Counts under the floor cannot regress anyway: not worth a note.)
        if varies && stats::median(&bv).max(stats::median(&cv)) > m.floor {
            notes.push(format!(
                "{} of {} varies between the baseline's repeats (by {:.0}%): not a \
                    deterministic count there, so it is gated like a time ({:.0}%)",
                m.name,
                key.describe(),
                100.0 * stats::spread(&bv),
                100.0 * threshold
            ));
        }
        metrics.insert(m.key, stats::compare(m, &bv, &cv, threshold));
    }
    if !stats::testable(b.ok.len(), c.ok.len()) {
        let note = "some runs have too few repeats for a test (fewer than 3 a side, or 2 \
                    against 5): no significance can be given for them, the threshold alone \
                    decides (use --repeat 3 or more)"
            .to_string();
        if !notes.contains(&note) {
            notes.push(note);
        }
    }
    Row {
        key: key.clone(),
        repeats: (b.ok.len(), c.ok.len()),
        reference,
        saturated,
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
