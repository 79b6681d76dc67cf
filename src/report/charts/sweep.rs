//! The sweep's charts: throughput and p99 along the first swept key.

use serde_json::Value;

use super::axes::{extent, Axis, Fmt};
use super::chart::{Chart, Line, LinePanel, Panel};
use super::data::{context, groups, same, sweep_key, Group};
use super::style::{line_legend, Colors};
use crate::metrics::stats::med;
use crate::result::show_value;
use crate::result::{ResultFile, Run};

/// Throughput and p99 along the first swept key: one line per model and combination of the
/// other keys' values.
pub(super) fn sweep(file: &ResultFile, colors: &Colors) -> Vec<Chart> {
    let Some(key) = file.scenario.matrix.as_ref().and(sweep_key(file)) else {
        return Vec::new();
    };
    let runs: Vec<&Run> = file
        .runs
        .iter()
        .filter(|r| r.failure.is_none() && r.slo_probe.is_none() && r.point.contains_key(&key))
        .collect();
    let along = Along::new(file, key, &runs);
    let groups = groups(&runs, &[along.key.as_str()]);
    let (tput, p99): (Vec<Line>, Vec<Line>) = groups.iter().map(|g| along.lines(g)).unzip();
    if tput.iter().all(|l| l.points.is_empty()) {
        return Vec::new();
    }
    let per = if groups.iter().any(|g| g.variant > 0) {
        "one line per model and combination of the other swept values"
    } else {
        "one line per model"
    };
    vec![
        along.throughput_chart(file, per, tput, colors),
        along.p99_chart(file, per, p99, colors),
    ]
}

/// The swept key and its values, in the matrix's order then as the runs first show the rest:
/// what the charts' x is.
struct Along {
    key: String,
    values: Vec<Value>,
    /// Every value a finite number: x is the value itself, else its position among the values.
    numeric: bool,
}

impl Along {
    /// The key's values from the matrix, and any others the runs were at.
    fn new(file: &ResultFile, key: String, runs: &[&Run]) -> Self {
        let mut values: Vec<Value> = file
            .scenario
            .matrix
            .as_ref()
            .and_then(|m| m.get(&key))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for r in runs {
            if let Some(v) = r.point.get(&key) {
                if !values.iter().any(|x| same(x, v)) {
                    values.push(v.clone());
                }
            }
        }
        let numeric = values
            .iter()
            .all(|v| v.as_f64().is_some_and(f64::is_finite));
        Along {
            key,
            values,
            numeric,
        }
    }

    /// Where a run's value lies along x: the number, or its position among the values.
    fn x_of(&self, v: &Value) -> Option<f64> {
        if self.numeric {
            v.as_f64()
        } else {
            self.values
                .iter()
                .position(|x| same(x, v))
                .map(|i| i as f64)
        }
    }

    /// The group's throughput and p99 lines: the median over the runs at each x.
    fn lines(&self, g: &Group) -> (Line, Line) {
        let key = &self.key;
        let mut xs: Vec<f64> = g
            .runs
            .iter()
            .filter_map(|r| self.x_of(r.point.get(key)?))
            .collect();
        xs.sort_by(f64::total_cmp);
        xs.dedup();
        let at = |x: f64| -> Vec<&Run> {
            g.runs
                .iter()
                .copied()
                .filter(|r| r.point.get(key).and_then(|v| self.x_of(v)) == Some(x))
                .collect()
        };
        let line = |f: fn(&Run) -> f64| Line {
            name: g.name.clone(),
            model: g.model.clone(),
            variant: g.variant,
            sent: false,
            points: xs
                .iter()
                .filter_map(|&x| Some((x, med(&at(x), |r| Some(f(r)))?, true)))
                .collect(),
        };
        (line(|r| r.throughput_rps), line(|r| r.latency_us.p99))
    }

    /// The x axis: the numbers, or the values by name.
    fn axis(&self) -> Axis {
        if self.numeric {
            let nums: Vec<f64> = self.values.iter().filter_map(Value::as_f64).collect();
            Axis::of_values(&nums, Fmt::Count, &self.key)
        } else {
            Axis::names(self.values.iter().map(show_value).collect(), &self.key)
        }
    }

    /// What the captions say of a logarithmic x.
    fn scale(&self) -> &'static str {
        if self.axis().log {
            " (logarithmic)"
        } else {
            ""
        }
    }

    /// Requests per second along x, from zero.
    fn throughput_chart(
        &self,
        file: &ResultFile,
        per: &str,
        tput: Vec<Line>,
        colors: &Colors,
    ) -> Chart {
        let key = &self.key;
        let top = tput
            .iter()
            .flat_map(|l| l.points.iter().map(|p| p.1))
            .fold(0.0, f64::max);
        Chart {
            stem: "sweep-throughput",
            title: format!("Throughput by {key} ({})", context(file)),
            caption: format!(
                "Requests answered per second (median over repeats) at each {key} value along \
                 x{}, {per}; higher is better{}.",
                self.scale(),
                if self.numeric {
                    format!(", and where a line flattens the model has stopped scaling with {key}")
                } else {
                    String::new()
                }
            ),
            legend: line_legend(&tput, colors, true),
            panels: vec![Panel::Lines(LinePanel {
                title: None,
                x: self.axis(),
                y: Axis::from_zero(top, Fmt::Count, "requests per second"),
                lines: tput,
                markers: true,
                threshold: None,
            })],
        }
    }

    /// p99 latency along x, on a logarithmic y.
    fn p99_chart(&self, file: &ResultFile, per: &str, p99: Vec<Line>, colors: &Colors) -> Chart {
        let key = &self.key;
        let (lo, hi) = extent(p99.iter().flat_map(|l| l.points.iter().map(|p| p.1)));
        Chart {
            stem: "sweep-p99",
            title: format!("p99 latency by {key} ({})", context(file)),
            caption: format!(
                "The 99th percentile latency (median over repeats, logarithmic) at each {key} \
                 value along x{}, {per}; lower is better{}.",
                self.scale(),
                if self.numeric {
                    ", and a steep rise marks where a model starts queueing"
                } else {
                    ""
                }
            ),
            legend: line_legend(&p99, colors, true),
            panels: vec![Panel::Lines(LinePanel {
                title: None,
                x: self.axis(),
                y: Axis::log(lo, hi, Fmt::Micros, "p99 latency"),
                lines: p99,
                markers: true,
                threshold: None,
            })],
        }
    }
}
