//! The statistics of a comparison: the change of a median between two sets of repeats, its
//! 95% confidence interval and significance by bootstrap (as criterion does), and the verdict.

use super::Metric;
use crate::metrics::stats::median_of;

/// Bootstrap resamples per comparison.
pub const RESAMPLES: usize = 5000;
/// Significance level.
pub const ALPHA: f64 = 0.05;
/// Fixed seed: the same two files always give the same intervals.
const SEED: u64 = 0x10_4D_E1_5E;

/// improved / regressed / no change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Improved,
    Regressed,
    NoChange,
}

/// One metric compared.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Change {
    pub baseline: f64,
    pub current: f64,
    /// current / baseline - 1 (medians).
    pub change: f64,
    /// 95% confidence interval of `change`; `None` without repeats on both sides.
    pub interval: Option<(f64, f64)>,
    /// Two-sided bootstrap p-value of "no change"; `None` without repeats.
    pub p_value: Option<f64>,
    /// The threshold the change had to pass (relative).
    pub threshold: f64,
    pub verdict: Verdict,
}

/// How far apart repeats are: (largest - smallest) / median; 0 for fewer than two or a zero
/// median.
pub fn spread(values: &[f64]) -> f64 {
    let m = median(values);
    if values.len() < 2 || m <= 0.0 {
        return 0.0;
    }
    let (lo, hi) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    (hi - lo) / m
}

/// The median of samples ([`crate::metrics::stats::median_of`]: every value counts, none is
/// left out); NaN for none (a comparison never has none: a metric without values on both
/// sides is not compared).
pub fn median(values: &[f64]) -> f64 {
    median_of(values.to_vec()).unwrap_or(f64::NAN)
}

/// Compares the repeats of one metric. With two or more values on each side the change of
/// the medians is bootstrapped: regressed when it is significant (p < 0.05) and its whole 95%
/// interval lies past the threshold on the worse side; improved likewise on the better side;
/// otherwise no change. With fewer, the change alone is held against the threshold. Count
/// metrics also need an absolute change of `metric.floor` (0.01 -> 0.03 context switches per
/// request is +200% of nothing).
pub fn compare(metric: &Metric, baseline: &[f64], current: &[f64], threshold: f64) -> Change {
    let (b, c) = (median(baseline), median(current));
    let change = ratio(b, c);
    let worse = |x: f64| if metric.higher_is_better { -x } else { x };
    let big_enough = (c - b).abs() >= metric.floor;
    let (interval, p_value, verdict) = if baseline.len() >= 2 && current.len() >= 2 {
        let mut rng = fastrand::Rng::with_seed(SEED);
        let mut changes: Vec<f64> = (0..RESAMPLES)
            .map(|_| {
                ratio(
                    resampled_median(baseline, &mut rng),
                    resampled_median(current, &mut rng),
                )
            })
            .collect();
        changes.sort_by(f64::total_cmp);
        let lo = changes[(RESAMPLES as f64 * 0.025) as usize];
        let hi = changes[(RESAMPLES as f64 * 0.975) as usize - 1];
        // Ties at zero count on both sides: identical samples give p = 1, not 0.
        let up = changes.iter().filter(|&&x| x >= 0.0).count() as f64 / RESAMPLES as f64;
        let down = changes.iter().filter(|&&x| x <= 0.0).count() as f64 / RESAMPLES as f64;
        let p = (2.0 * up.min(down)).min(1.0);
        let (w_lo, w_hi) = (worse(lo).min(worse(hi)), worse(lo).max(worse(hi)));
        let verdict = if p < ALPHA && w_lo > threshold && big_enough {
            Verdict::Regressed
        } else if p < ALPHA && w_hi < -threshold && big_enough {
            Verdict::Improved
        } else {
            Verdict::NoChange
        };
        (Some((lo, hi)), Some(p), verdict)
    } else {
        let verdict = if worse(change) > threshold && big_enough {
            Verdict::Regressed
        } else if worse(change) < -threshold && big_enough {
            Verdict::Improved
        } else {
            Verdict::NoChange
        };
        (None, None, verdict)
    };
    Change {
        baseline: b,
        current: c,
        change,
        interval,
        p_value,
        threshold,
        verdict,
    }
}

fn ratio(baseline: f64, current: f64) -> f64 {
    if baseline == 0.0 {
        if current == 0.0 {
            0.0
        } else {
            f64::INFINITY
        }
    } else {
        current / baseline - 1.0
    }
}

fn resampled_median(values: &[f64], rng: &mut fastrand::Rng) -> f64 {
    let sample: Vec<f64> = (0..values.len())
        .map(|_| values[rng.usize(..values.len())])
        .collect();
    median_of(sample).unwrap_or(f64::NAN)
}

#[cfg(test)]
mod tests {
    use super::*;

    const THROUGHPUT: Metric = crate::compare::METRICS[0];

    #[test]
    fn a_clear_drop_with_low_noise_is_a_regression() {
        let base = [100.0, 101.0, 99.0, 100.5, 99.5];
        let cur = [90.0, 91.0, 89.0, 90.5, 89.5];
        let c = compare(&THROUGHPUT, &base, &cur, 0.05);
        assert_eq!(c.verdict, Verdict::Regressed, "{c:?}");
        assert!((c.change + 0.10).abs() < 0.001, "{c:?}");
        let (lo, hi) = c.interval.unwrap();
        assert!(lo <= c.change && c.change <= hi, "{c:?}");
        assert!(c.p_value.unwrap() < 0.05);
    }

    #[test]
    fn a_drop_inside_the_noise_is_no_change() {
        let base = [100.0, 108.0, 93.0, 104.0, 96.0];
        let cur = [97.0, 105.0, 90.0, 101.0, 93.0];
        let c = compare(&THROUGHPUT, &base, &cur, 0.05);
        assert_eq!(c.verdict, Verdict::NoChange, "{c:?}");
    }

    #[test]
    fn without_repeats_the_threshold_alone_decides() {
        let c = compare(&THROUGHPUT, &[100.0], &[80.0], 0.05);
        assert_eq!(c.verdict, Verdict::Regressed);
        assert!(c.interval.is_none() && c.p_value.is_none());
        let c = compare(&THROUGHPUT, &[100.0], &[97.0], 0.05);
        assert_eq!(c.verdict, Verdict::NoChange);
        let c = compare(&THROUGHPUT, &[100.0], &[120.0], 0.05);
        assert_eq!(c.verdict, Verdict::Improved);
    }

    #[test]
    fn the_same_files_give_the_same_interval() {
        let base = [100.0, 101.0, 99.0];
        let cur = [95.0, 96.0, 94.0];
        let a = compare(&THROUGHPUT, &base, &cur, 0.02);
        let b = compare(&THROUGHPUT, &base, &cur, 0.02);
        assert_eq!(a.interval, b.interval);
    }
}
