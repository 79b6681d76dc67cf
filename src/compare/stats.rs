//! The statistics of a comparison: the change of the median between two sets of repeats, an
//! exact one-sided rank test (Mann-Whitney) of "worse (or better) by more than the threshold",
//! the confidence bounds that test gives the change (Hodges-Lehmann), and the verdict.
//!
//! Why a rank test: with 3 to 10 repeats a side nothing can be assumed about the shape of the
//! noise (on a shared machine a latency jumps tenfold in one repeat of five), and resampling
//! methods are not calibrated there (a percentile bootstrap of medians calls any two
//! non-overlapping pairs significant at p = 0). Under "no change beyond the threshold" every
//! split of the pooled repeats is as likely as the one observed, whatever the noise's shape,
//! so the test's false-alarm rate is at most [`ALPHA`] by construction; the number of splits,
//! C(m + n, m), sets the smallest p-value there is: 1/20 = 0.05 at 3 against 3, 1/6 at 2 against
//! 2. Its null distribution depends only on the repeat counts and is computed exactly, at any
//! count, without sampling. How often it raises false alarms and finds real changes at the
//! default thresholds on the noise measured here is checked by tests/calibration.rs.

use super::Metric;
use crate::metrics::stats::median_of;

/// Significance level of each one-sided test (regressed; improved).
pub const ALPHA: f64 = 0.05;

/// Slack for comparing exact tail probabilities computed in floating point with [`ALPHA`]
/// (at 3 against 3 the smallest p-value is exactly 1/20).
const EPS: f64 = 1e-9;

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
    /// The exact one-sided 95% lower and upper confidence bounds of the change (together a 90%
    /// interval), from the ratios of every current repeat to every baseline repeat
    /// (Hodges-Lehmann: the bounds the rank test inverts to). `None` below the test's minimum
    /// ([`min_p_value`] over [`ALPHA`]: 3 repeats a side, or 2 against 5 or more), and when a
    /// baseline repeat is 0.
    pub interval: Option<(f64, f64)>,
    /// The exact one-sided p-value of "no change" against the direction the medians moved
    /// (double it for a two-sided one); 1 when they did not move. `None` with a single repeat
    /// on a side.
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

/// The smallest p-value the rank test can give with `m` and `n` repeats: 1 / C(m + n, m).
pub fn min_p_value(m: usize, n: usize) -> f64 {
    // C(m + n, m) as a product of ratios: no overflow, exact enough for a comparison with ALPHA.
    1.0 / (1..=m.min(n)).fold(1.0, |c, i| c * (m.max(n) + i) as f64 / i as f64)
}

/// Compares the repeats of one metric.
///
/// With at least 2 repeats on each side and enough of them for the test to reach [`ALPHA`]
/// (3 against 3; 2 against 5): **regressed** when the exact one-sided rank test rejects "worse
/// by no more than the threshold" at [`ALPHA`], that is when the whole confidence interval lies
/// past the threshold on the worse side (for a lower-is-better figure: at least `k` of the
/// m x n pairs (baseline repeat, current repeat) have current > baseline x (1 + threshold),
/// `k` the test's critical count); **improved** likewise on the better side; otherwise **no
/// change**. With fewer repeats no test can be significant: the change of the medians alone is
/// held against the threshold. Count metrics also need an absolute change of `metric.floor`
/// (0.01 -> 0.03 context switches per request is +200% of nothing).
pub fn compare(metric: &Metric, baseline: &[f64], current: &[f64], threshold: f64) -> Change {
    let (b, c) = (median(baseline), median(current));
    let change = ratio(b, c);
    let big_enough = (c - b).abs() >= metric.floor;
    // A pair (baseline x, current y) "went up by more than t": y > x (1 + t); "down": y < x (1 - t).
    let (up, down) = (1.0 + threshold, 1.0 - threshold);
    let (m, n) = (baseline.len(), current.len());
    let null = (m >= 2 && n >= 2).then(|| RankNull::new(m, n));
    let p_value = null.as_ref().map(|null| {
        if c > b {
            null.tail(pairs(baseline, current, |x, y| y > x))
        } else if c < b {
            null.tail(pairs(baseline, current, |x, y| y < x))
        } else {
            1.0
        }
    });
    let critical = null.as_ref().and_then(RankNull::critical);
    let (interval, verdict) = match critical {
        Some(k) => {
            let went_up = pairs(baseline, current, |x, y| y > x * up) >= k;
            let went_down = pairs(baseline, current, |x, y| y < x * down) >= k;
            let (worse, better) = if metric.higher_is_better {
                (went_down, went_up)
            } else {
                (went_up, went_down)
            };
            let verdict = match (worse && big_enough, better && big_enough) {
                (true, _) => Verdict::Regressed,
                (false, true) => Verdict::Improved,
                _ => Verdict::NoChange,
            };
            (bounds(baseline, current, k), verdict)
        }
        None => {
            let worse = |x: f64| if metric.higher_is_better { -x } else { x };
            let verdict = if worse(change) > threshold && big_enough {
                Verdict::Regressed
            } else if worse(change) < -threshold && big_enough {
                Verdict::Improved
            } else {
                Verdict::NoChange
            };
            (None, verdict)
        }
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

/// Whether `m` repeats against `n` can be significant at all: the test's smallest p-value,
/// 1 / C(m + n, m), must reach [`ALPHA`] (3 against 3, or 2 against 5, at the least).
pub fn testable(m: usize, n: usize) -> bool {
    // One repeat on a side has no spread: never a test (see [`compare`]).
    if m < 2 || n < 2 {
        return false;
    }
    // C(m + n, m) >= 1 / ALPHA, computed without overflow (it only has to pass 20).
    let mut c = 1.0f64;
    for i in 1..=m.min(n) {
        c = c * (m + n + 1 - i) as f64 / i as f64;
        if c * ALPHA >= 1.0 - EPS {
            return true;
        }
    }
    c * ALPHA >= 1.0 - EPS
}

/// How many of the pairs (baseline repeat x, current repeat y) satisfy `holds(x, y)`.
fn pairs(baseline: &[f64], current: &[f64], holds: impl Fn(f64, f64) -> bool) -> usize {
    baseline
        .iter()
        .map(|&x| current.iter().filter(|&&y| holds(x, y)).count())
        .sum()
}

/// The `k`-th smallest and `k`-th largest of the m x n ratios y / x - 1, as (lower, upper):
/// "went up by more than t" holds for at least `k` pairs exactly when the lower bound is past
/// t, so the bounds are the thresholds the test would just reject. `None` when a baseline
/// repeat is not positive (no ratio).
fn bounds(baseline: &[f64], current: &[f64], k: usize) -> Option<(f64, f64)> {
    if baseline.iter().any(|&x| x <= 0.0) {
        return None;
    }
    let mut ratios: Vec<f64> = baseline
        .iter()
        .flat_map(|&x| current.iter().map(move |&y| y / x - 1.0))
        .collect();
    ratios.sort_by(f64::total_cmp);
    let all = ratios.len();
    Some((ratios[all - k], ratios[k - 1]))
}

/// The exact null distribution of the Mann-Whitney count U (how many of the m x n pairs have
/// the current repeat above the baseline one) when every split of the pooled repeats is as
/// likely: the coefficients of the Gaussian binomial [m + n choose m]_q, divided by their sum.
///
/// With ties in the data, counting strict inequalities only (as [`compare`] does) gives a count
/// that is never above the one with the ties broken at random, which has this distribution: the
/// test stays valid, a little conservative.
struct RankNull {
    /// P(U = u), u = 0 ..= m n.
    probability: Vec<f64>,
}

impl RankNull {
    fn new(m: usize, n: usize) -> RankNull {
        // [m + n choose m]_q = prod_{i=1..m} (1 - q^(n+i)) / (1 - q^i): m steps of one
        // multiplication and one division, each linear in the degree (m n at most).
        let top = m * n;
        let mut poly = vec![0.0; top + n + m + 1];
        poly[0] = 1.0;
        let mut degree = 0;
        for i in 1..=m {
            let shift = n + i;
            for u in (shift..=degree + shift).rev() {
                poly[u] -= poly[u - shift];
            }
            degree += shift;
            // Dividing by (1 - q^i) is a running sum with step i (exact: the quotient is a
            // polynomial).
            for u in i..=degree {
                poly[u] += poly[u - i];
            }
            degree -= i;
            poly[degree + 1..].iter_mut().for_each(|c| *c = 0.0);
            // The coefficients grow like C(m + n, m): rescaled (the distribution is their
            // ratio to their sum) so that hundreds of repeats a side stay finite.
            let largest = poly.iter().fold(0.0f64, |a: f64, c: &f64| a.max(c.abs()));
            if largest > 1e100 {
                poly.iter_mut().for_each(|c| *c /= largest);
            }
        }
        poly.truncate(top + 1);
        let total: f64 = poly.iter().sum();
        RankNull {
            probability: poly.iter().map(|c| c / total).collect(),
        }
    }

    /// P(U >= u).
    fn tail(&self, u: usize) -> f64 {
        self.probability.iter().skip(u).sum::<f64>().min(1.0)
    }

    /// The smallest count `k` with P(U >= k) <= ALPHA; `None` when even all m n pairs are not
    /// that rare (too few repeats for the test).
    fn critical(&self) -> Option<usize> {
        let top = self.probability.len() - 1;
        (1..=top).find(|&k| self.tail(k) <= ALPHA + EPS)
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

#[cfg(test)]
mod tests {
    use super::*;

    const THROUGHPUT: Metric = crate::compare::METRICS[0];
    const P50: Metric = crate::compare::METRICS[1];

    #[test]
    fn testable_sizes_are_those_whose_smallest_p_reaches_alpha() {
        assert!(testable(3, 3) && testable(2, 5) && testable(5, 2) && testable(10, 10));
        assert!(!testable(2, 2) && !testable(2, 4) && !testable(1, 100) && !testable(0, 5));
    }

    /// Slow in a debug build (over two minutes): `cargo test --release --lib -- --ignored
    /// hundreds_of_repeats`.
    #[test]
    #[ignore]
    fn hundreds_of_repeats_a_side_still_give_a_test() {
        // C(1040, 520) is past f64: without rescaling every coefficient would overflow.
        let null = RankNull::new(520, 520);
        assert!(null.probability.iter().all(|p| p.is_finite()));
        assert!(null.critical().is_some());
    }

    #[test]
    fn a_clear_drop_with_low_noise_is_a_regression() {
        let base = [100.0, 101.0, 99.0, 100.5, 99.5];
        let cur = [90.0, 91.0, 89.0, 90.5, 89.5];
        let c = compare(&THROUGHPUT, &base, &cur, 0.05);
        assert_eq!(c.verdict, Verdict::Regressed, "{c:?}");
        assert!((c.change + 0.10).abs() < 0.001, "{c:?}");
        let (lo, hi) = c.interval.unwrap();
        assert!(lo <= c.change && c.change <= hi, "{c:?}");
        assert!(
            hi < -0.05,
            "the whole interval is past the threshold: {c:?}"
        );
        // Every current repeat below every baseline one: the smallest p of 5 against 5.
        assert!((c.p_value.unwrap() - 1.0 / 252.0).abs() < 1e-12, "{c:?}");
    }

    #[test]
    fn a_clear_25_percent_rise_at_five_repeats_is_a_regression() {
        let base = [200.0, 203.0, 198.0, 201.0, 199.0];
        let cur = [250.0, 252.0, 247.0, 251.0, 249.0];
        let c = compare(&P50, &base, &cur, 0.10);
        assert_eq!(c.verdict, Verdict::Regressed, "{c:?}");
        let c = compare(&P50, &cur, &base, 0.10);
        assert_eq!(c.verdict, Verdict::Improved, "{c:?}");
    }

    #[test]
    fn a_drop_inside_the_noise_is_no_change() {
        let base = [100.0, 108.0, 93.0, 104.0, 96.0];
        let cur = [97.0, 105.0, 90.0, 101.0, 93.0];
        let c = compare(&THROUGHPUT, &base, &cur, 0.05);
        assert_eq!(c.verdict, Verdict::NoChange, "{c:?}");
    }

    #[test]
    fn a_significant_change_smaller_than_the_threshold_is_no_change() {
        let base = [100.0, 100.5, 99.5, 100.2, 99.8];
        let cur = [97.0, 97.5, 96.5, 97.2, 96.8];
        let c = compare(&THROUGHPUT, &base, &cur, 0.05);
        assert!(c.p_value.unwrap() <= ALPHA, "{c:?}");
        assert_eq!(c.verdict, Verdict::NoChange, "{c:?}");
    }

    /// Issue 20: the bootstrap gave p = 0 here; 2 against 2 has only 6 splits.
    #[test]
    fn two_non_overlapping_pairs_are_not_significant() {
        let c = compare(&P50, &[100.0, 101.0], &[150.0, 151.0], 0.10);
        let p = c.p_value.unwrap();
        assert!((p - 1.0 / 6.0).abs() < 1e-12, "{c:?}");
        assert!(p > ALPHA);
        assert!(c.interval.is_none(), "no test, no interval: {c:?}");
    }

    #[test]
    fn three_against_three_reaches_alpha_only_when_separated() {
        let base = [100.0, 102.0, 98.0];
        let c = compare(&P50, &base, &[130.0, 131.0, 129.0], 0.10);
        assert!((c.p_value.unwrap() - 0.05).abs() < 1e-12, "{c:?}");
        assert_eq!(c.verdict, Verdict::Regressed, "{c:?}");
        // One current repeat among the baseline's: 2 splits of 20 are as extreme.
        let c = compare(&P50, &base, &[130.0, 131.0, 101.0], 0.10);
        assert!((c.p_value.unwrap() - 0.10).abs() < 1e-12, "{c:?}");
        assert_eq!(c.verdict, Verdict::NoChange, "{c:?}");
    }

    #[test]
    fn identical_samples_have_p_one() {
        let v = [100.0, 101.0, 99.0, 100.0];
        let c = compare(&THROUGHPUT, &v, &v, 0.05);
        assert!((c.p_value.unwrap() - 1.0).abs() < 1e-12, "{c:?}");
        assert_eq!(c.verdict, Verdict::NoChange);
        let same = [2.0; 5];
        let c = compare(&P50, &same, &same, 0.0);
        assert!((c.p_value.unwrap() - 1.0).abs() < 1e-12, "{c:?}");
        assert_eq!(c.verdict, Verdict::NoChange, "ties are not a change: {c:?}");
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
    fn the_null_distribution_is_exact() {
        // 3 against 3: 20 splits, U = 0..9 with counts 1 1 2 3 3 3 3 2 1 1.
        let null = RankNull::new(3, 3);
        let counts: Vec<f64> = null.probability.iter().map(|p| p * 20.0).collect();
        let want = [1.0, 1.0, 2.0, 3.0, 3.0, 3.0, 3.0, 2.0, 1.0, 1.0];
        for (got, want) in counts.iter().zip(want) {
            assert!((got - want).abs() < 1e-9, "{counts:?}");
        }
        assert_eq!(null.critical(), Some(9));
        assert_eq!(RankNull::new(2, 2).critical(), None);
        assert_eq!(RankNull::new(5, 5).critical(), Some(21));
        // Symmetric, and the tail of 10 against 10 sums to one.
        let big = RankNull::new(10, 10);
        assert!((big.tail(0) - 1.0).abs() < 1e-12);
        for u in 0..=100 {
            let (a, b) = (big.probability[u], big.probability[100 - u]);
            assert!((a - b).abs() < 1e-12);
        }
        assert!((min_p_value(3, 3) - 0.05).abs() < 1e-12);
        assert!((min_p_value(2, 5) - 1.0 / 21.0).abs() < 1e-12);
    }

    #[test]
    fn the_bounds_are_where_the_test_turns() {
        let base = [100.0, 104.0, 97.0, 101.0, 99.0];
        let cur = [121.0, 126.0, 118.0, 124.0, 119.0];
        let c = compare(&P50, &base, &cur, 0.10);
        let (lo, _) = c.interval.unwrap();
        assert_eq!(c.verdict, Verdict::Regressed, "{c:?}");
        let just_below = compare(&P50, &base, &cur, lo * 0.999);
        let just_above = compare(&P50, &base, &cur, lo * 1.001);
        assert_eq!(just_below.verdict, Verdict::Regressed, "{just_below:?}");
        assert_eq!(just_above.verdict, Verdict::NoChange, "{just_above:?}");
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
