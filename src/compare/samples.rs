//! The samples of a comparison: each experiment's repeats in one file as metric -> value maps,
//! with what keeps a run from being gated (a failed repeat, a saturated load generator), and
//! the same figures as ratios to a reference model measured beside them (`--normalize-to`).

use std::collections::{BTreeMap, BTreeSet};

use super::{stats, RunKey, METRICS};
use crate::result::{ResultFile, Run};

/// One repeat's figures, by metric key.
pub type Figures = BTreeMap<&'static str, f64>;

/// One experiment's repeats in one file.
#[derive(Clone, Debug, Default)]
pub struct Repeats {
    /// The repeats that ran, each with its index.
    pub ok: Vec<(usize, Figures)>,
    /// The repeats that failed: "repeat 2: the server died".
    pub failed: Vec<String>,
    /// The load generator was saturated in at least one repeat: its throughput and latency
    /// describe the client, not the server.
    pub saturated: bool,
}

impl Repeats {
    /// Every repeat's value of one metric.
    pub fn values(&self, key: &str) -> Vec<f64> {
        self.ok
            .iter()
            .filter_map(|(_, f)| f.get(key).copied())
            .collect()
    }
}

/// A file's experiments, by key.
pub type Experiments = BTreeMap<RunKey, Repeats>;

/// Every experiment of a file with its repeats (SLO probes are not experiments of their own).
pub fn experiments(file: &ResultFile) -> Experiments {
    let mut out = Experiments::new();
    for run in file.runs.iter().filter(|r| r.slo_probe.is_none()) {
        let repeats = out.entry(RunKey::of(run)).or_default();
        match &run.failure {
            Some(why) => repeats
                .failed
                .push(format!("repeat {}: {why}", run.repeat_index + 1)),
            None => {
                repeats.ok.push((run.repeat_index, figures(run)));
                repeats.saturated |= run.client.saturated;
            }
        }
    }
    out
}

fn figures(run: &Run) -> Figures {
    METRICS
        .iter()
        .filter_map(|m| Some((m.key, m.of(run)?)))
        .collect()
}

/// The reference's key at another experiment's point.
pub fn reference_key(key: &RunKey, reference: &str) -> RunKey {
    RunKey {
        model: reference.to_string(),
        ..key.clone()
    }
}

/// Every experiment but the reference's, its time and rate figures divided by the reference
/// model's at the same point: repeat k by the reference's repeat k when it has one (the two
/// ran side by side, A B A B, so a slow spell of the machine divides out), else by the median
/// of its repeats. Counts per request do not depend on the machine's speed: kept as they are.
/// An experiment whose point has no reference run that ran is left out (and named by the
/// caller: the reference is missing there).
pub fn normalized(all: &Experiments, reference: &str) -> Experiments {
    let mut out = Experiments::new();
    for (key, repeats) in all {
        if key.model == reference {
            continue;
        }
        let Some(base) = all.get(&reference_key(key, reference)) else {
            continue;
        };
        if base.ok.is_empty() {
            continue;
        }
        let ok = repeats
            .ok
            .iter()
            .map(|(i, f)| (*i, divided(f, *i, &base.ok)))
            .collect();
        out.insert(
            key.clone(),
            Repeats {
                ok,
                failed: repeats.failed.clone(),
                saturated: repeats.saturated || base.saturated,
            },
        );
    }
    out
}

/// The reference model itself under `--normalize-to`: its counts as they are (they are gated
/// raw), its time and rate figures over the geometric mean of the other models' at the same
/// point and repeat, of those in `shared` only (the models that ran at that point in both
/// files, so that a model added or lost does not move the reference). A reference that got
/// slower then reads as slower than the rest, instead of as every other model getting faster.
pub fn reference_against_the_rest(
    all: &Experiments,
    reference: &str,
    shared: &BTreeSet<RunKey>,
) -> Experiments {
    let mut out = Experiments::new();
    for (key, repeats) in all.iter().filter(|(k, _)| k.model == reference) {
        let others: Vec<&Repeats> = all
            .iter()
            .filter(|(k, r)| {
                k.model != reference
                    && reference_key(k, reference) == *key
                    && !r.ok.is_empty()
                    && shared.contains(*k)
            })
            .map(|(_, r)| r)
            .collect();
        let ok = repeats
            .ok
            .iter()
            .map(|(i, f)| {
                let rest: Vec<Figures> = others
                    .iter()
                    .map(|o| beside(o, *i))
                    .collect::<Option<Vec<_>>>()
                    .unwrap_or_default();
                (*i, over_the_rest(f, &rest))
            })
            .collect();
        out.insert(
            key.clone(),
            Repeats {
                ok,
                failed: repeats.failed.clone(),
                saturated: repeats.saturated || others.iter().any(|o| o.saturated),
            },
        );
    }
    out
}

/// Another model's figures for repeat `index`: that repeat's, else the median of its repeats.
fn beside(other: &Repeats, index: usize) -> Option<Figures> {
    if let Some((_, f)) = other.ok.iter().find(|(i, _)| *i == index) {
        return Some(f.clone());
    }
    let mut out = Figures::new();
    for m in METRICS {
        let all = other.values(m.key);
        if !all.is_empty() {
            out.insert(m.key, stats::median(&all));
        }
    }
    (!out.is_empty()).then_some(out)
}

fn is_count(key: &str) -> bool {
    METRICS.iter().any(|m| m.key == key && m.count)
}

/// The reference's figures over the geometric mean of the rest (counts kept as they are;
/// time figures dropped when there is no other model to hold them against).
fn over_the_rest(values: &Figures, rest: &[Figures]) -> Figures {
    let mut out = Figures::new();
    for (m, x) in values {
        if is_count(m) {
            out.insert(*m, *x);
            continue;
        }
        let logs: Vec<f64> = rest
            .iter()
            .filter_map(|f| f.get(m).copied())
            .filter(|v| *v > 0.0)
            .map(f64::ln)
            .collect();
        if logs.is_empty() || logs.len() < rest.len() {
            continue;
        }
        let mean = (logs.iter().sum::<f64>() / logs.len() as f64).exp();
        out.insert(*m, x / mean);
    }
    out
}

/// One repeat's figures over the reference's (counts kept as they are).
fn divided(values: &Figures, index: usize, reference: &[(usize, Figures)]) -> Figures {
    let beside = reference.iter().find(|(i, _)| *i == index).map(|(_, f)| f);
    let mut out = Figures::new();
    for (m, x) in values {
        if is_count(m) {
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
