//! A change common to every model: when every model's raw figure moved the same way past its
//! threshold, the machine changed, or a code path that every model shares (the load generator,
//! the shared protocol session). Ratios to a reference model (`--normalize-to`) divide such a
//! change out, so it is reported on its own, from the raw figures.

use serde::Serialize;

use super::samples::Experiments;
use super::{stats, METRICS};

/// One metric that moved alike for every model.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct CommonChange {
    pub metric: &'static str,
    /// `worse` or `better`.
    pub direction: &'static str,
    /// The smallest and the largest change (current / baseline - 1) across the models.
    pub least: f64,
    pub most: f64,
    /// How many experiments moved (every one the two files share).
    pub experiments: usize,
}

/// The time and rate metrics whose raw medians moved past their threshold (`threshold` when
/// given, as `--threshold`) the same way in every experiment both files ran, of two models at
/// least; runs with a saturated load generator do not count for throughput and latency.
pub fn common_changes(
    base: &Experiments,
    cur: &Experiments,
    threshold: Option<f64>,
) -> Vec<CommonChange> {
    let mut out = Vec::new();
    for m in METRICS.iter().filter(|m| !m.count) {
        let threshold = threshold.unwrap_or(m.threshold);
        let moved: Vec<(&str, f64)> = base
            .iter()
            .filter_map(|(key, b)| Some((key, b, cur.get(key)?)))
            .filter(|(_, b, c)| !(m.client_bound_when_saturated() && (b.saturated || c.saturated)))
            .filter_map(|(key, b, c)| {
                let (bv, cv) = (b.values(m.key), c.values(m.key));
                if bv.is_empty() || cv.is_empty() {
                    return None;
                }
                let (bm, cm) = (stats::median(&bv), stats::median(&cv));
                (bm > 0.0).then(|| (key.model.as_str(), cm / bm - 1.0))
            })
            .collect();
        let mut models: Vec<&str> = moved.iter().map(|(m, _)| *m).collect();
        models.sort_unstable();
        models.dedup();
        // One model at several points is that model's change, not a common one.
        if models.len() < 2 {
            continue;
        }
        let changes: Vec<f64> = moved.iter().map(|(_, c)| *c).collect();
        let worse = |x: f64| if m.higher_is_better { -x } else { x };
        let direction = if changes.iter().all(|c| worse(*c) > threshold) {
            "worse"
        } else if changes.iter().all(|c| worse(*c) < -threshold) {
            "better"
        } else {
            continue;
        };
        let (least, most) = changes
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &c| {
                (lo.min(c), hi.max(c))
            });
        out.push(CommonChange {
            metric: m.name,
            direction,
            least,
            most,
            experiments: changes.len(),
        });
    }
    out
}

impl CommonChange {
    /// How the change reads in a note.
    pub fn describe(&self, normalized: bool) -> String {
        format!(
            "common to every model: {} {} in all {} experiments ({:+.1}% to {:+.1}%, raw \
             figures): the machine changed, or a code path every model shares (the load \
             generator, the protocol session){}",
            self.metric,
            self.direction,
            self.experiments,
            100.0 * self.least,
            100.0 * self.most,
            if normalized {
                "; the ratios above divide it out, so it is not gated: compare raw figures \
                 from one machine to tell which"
            } else {
                ""
            }
        )
    }
}
