//! How far apart two figures must be before the report calls one ahead: a model's repeats as
//! a [`Sample`] (median, range, count), the spread they measure, and, for a single run, the
//! spread this machine's A/A runs measured ([`expected`]).
//!
//! A lead is a lead only past the spread: the ratio of two medians must exceed 1 + the larger
//! relative spread, (max - min) / median, of the two models' repeats. One run has no spread of
//! its own: it gets the A/A figure of its metric, a constant here that a test recomputes from
//! the committed A/A files, every one made by a clean commit (results/calibration/ci-aa-*.json
//! and oos-a-*.json: the CI scenario, an open loop at 20,000 req/s, 5 repeats a file;
//! results/reference/restructure/aa-*.json: closed loop, a pair of runs a round), so the report
//! stays a pure function of the files it is given.

use crate::metrics::stats;
use crate::result::{Metric, Run};

/// Two runs of one model, back to back on the reference machine (a shared 2-CPU VM), differ
/// by less than this fraction of their mean in three pairs out of four (the 75th percentile
/// of |a - b| / ((a + b) / 2) over every consecutive pair of repeats of one model in the A/A
/// files; the test `the_expected_spreads_are_the_aa_files` recomputes it).
pub fn expected(metric: Metric) -> f64 {
    match metric {
        Metric::Throughput => 0.129,
        Metric::P50 => 0.044,
        Metric::P99 => 0.535,
        Metric::P999 => 1.015,
        Metric::Cpu => 0.050,
        Metric::Syscalls => 0.008,
        Metric::Ctxsw => 0.021,
        Metric::Rss => 0.030,
        Metric::Threads => 0.0,
        Metric::Served => 0.0,
    }
}

/// One model's figure at one point over its repeats.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    /// Repeats with the figure.
    pub n: usize,
}

impl Sample {
    /// The metric's figures of `runs` (those that have it, finite); `None` when none has.
    pub fn of(runs: &[&Run], metric: Metric) -> Option<Sample> {
        let values: Vec<f64> = runs
            .iter()
            .filter_map(|r| metric.of(r))
            .filter(|v| v.is_finite())
            .collect();
        Sample::from_values(&values)
    }

    pub fn from_values(values: &[f64]) -> Option<Sample> {
        let median = stats::median_of(values.to_vec())?;
        Some(Sample {
            median,
            min: values.iter().copied().fold(f64::INFINITY, f64::min),
            max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            n: values.len(),
        })
    }

    /// Whether the spread is its own (two repeats or more) rather than the A/A figure.
    pub fn measured(&self) -> bool {
        self.n >= 2
    }

    /// Its relative spread, (max - min) / median, measured when it has two repeats or more,
    /// else the A/A figure of `metric`; infinite for a median of 0 with a range.
    pub fn spread(&self, metric: Metric) -> f64 {
        if !self.measured() {
            return expected(metric);
        }
        let range = self.max - self.min;
        if range == 0.0 {
            0.0
        } else if self.median > 0.0 {
            range / self.median
        } else {
            f64::INFINITY
        }
    }
}

/// A fraction as a whole percentage: `0.53` -> `53%`.
pub fn pct(x: f64) -> String {
    if x.is_finite() {
        format!("{:.0}%", x * 100.0)
    } else {
        "unbounded".into()
    }
}

/// What a comparison of `samples` rests on: "medians of 3 repeats, spread up to 7%", or, with
/// a single run among them, "one run each: two runs of one model differ by up to 53% (A/A)".
pub fn basis(samples: &[Sample], metric: Metric) -> String {
    let fewest = samples.iter().map(|s| s.n).min().unwrap_or(0);
    if fewest >= 2 {
        let widest = samples.iter().map(|s| s.spread(metric)).fold(0.0, f64::max);
        let repeats = if samples.iter().all(|s| s.n == fewest) {
            fewest.to_string()
        } else {
            format!("{fewest} or more")
        };
        format!("medians of {repeats} repeats, spread up to {}", pct(widest))
    } else {
        format!(
            "one run {}: no spread of its own; two runs of one model differ by up to {} in \
             {metric} on the reference machine (A/A)",
            if samples.iter().all(|s| s.n == 1) {
                "each"
            } else {
                "for some"
            },
            pct(expected(metric))
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Each model's runs, in the order they ran.
    fn by_model(runs: &[Run]) -> Vec<Vec<Run>> {
        let mut out: Vec<Vec<Run>> = Vec::new();
        for r in runs {
            match out.iter_mut().find(|g| g[0].model == r.model) {
                Some(g) => g.push(r.clone()),
                None => out.push(vec![r.clone()]),
            }
        }
        out
    }

    /// The 75th percentile (nearest rank) of the A/A pairs' relative differences.
    fn aa_spread(metric: Metric) -> f64 {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("results");
        let load = |p: &Path| crate::result::load(p).unwrap_or_else(|e| panic!("{e:#}"));
        // Each group: one model's repeats in the order they ran.
        let mut groups: Vec<Vec<Run>> = Vec::new();
        let files = (1..=4)
            .map(|i| format!("calibration/ci-aa-{i}.json"))
            .chain((1..=6).map(|i| format!("calibration/oos-a-{i}.json")));
        for name in files {
            let file = load(&root.join(name));
            assert!(!file.tool.git_commit.ends_with("-dirty"));
            let mut runs: Vec<Run> = file
                .runs
                .into_iter()
                .filter(|r| r.failure.is_none())
                .collect();
            runs.sort_by_key(|r| r.repeat_index);
            groups.extend(by_model(&runs));
        }
        for i in 1..=6 {
            let mut both = Vec::new();
            for side in ["a", "b"] {
                let dir = root.join("reference/restructure");
                both.extend(load(&dir.join(format!("aa-{side}-{i}.json"))).runs);
            }
            groups.extend(by_model(&both));
        }
        let mut diffs: Vec<f64> = Vec::new();
        for runs in &groups {
            // An open loop's throughput is the rate asked for: no measure of the noise.
            if metric == Metric::Throughput && runs.iter().any(|r| r.rate.is_some()) {
                continue;
            }
            for pair in runs.windows(2) {
                let (Some(a), Some(b)) = (metric.of(&pair[0]), metric.of(&pair[1])) else {
                    continue;
                };
                if a + b > 0.0 {
                    diffs.push((a - b).abs() / ((a + b) / 2.0));
                }
            }
        }
        // Throughput has the closed-loop pairs only (12); the other metrics every pair.
        let least = if metric == Metric::Throughput {
            10
        } else {
            100
        };
        assert!(diffs.len() >= least, "{metric}: only {} pairs", diffs.len());
        diffs.sort_by(f64::total_cmp);
        let rank = (diffs.len() * 3).div_ceil(4);
        diffs[rank - 1]
    }

    #[test]
    fn the_expected_spreads_are_the_aa_files() {
        let drifted: Vec<String> = Metric::ALL
            .into_iter()
            .map(|metric| (metric, aa_spread(metric)))
            .filter(|(metric, measured)| (measured - expected(*metric)).abs() >= 0.0005)
            .map(|(metric, measured)| {
                format!(
                    "{metric}: files {measured:.3}, constant {}",
                    expected(metric)
                )
            })
            .collect();
        assert!(
            drifted.is_empty(),
            "the A/A files give other spreads than the constants: set them to the files' \
             figures: {}",
            drifted.join("; ")
        );
    }

    #[test]
    fn a_single_run_takes_the_aa_spread() {
        let one = Sample::from_values(&[100.0]).unwrap();
        assert_eq!(one.spread(Metric::P99), expected(Metric::P99));
        let three = Sample::from_values(&[90.0, 100.0, 110.0]).unwrap();
        assert!((three.spread(Metric::P99) - 0.2).abs() < 1e-9);
        assert!(basis(&[one, three], Metric::P99).starts_with("one run for some"));
        assert_eq!(
            basis(&[three, three], Metric::P99),
            "medians of 3 repeats, spread up to 20%"
        );
    }
}
