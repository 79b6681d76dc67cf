//! The sweep's charts: throughput and p99 along the first swept key.

use serde_json::Value;

use super::axes::{extent, Axis, Fmt};
use super::chart::{Chart, Line, LinePanel, Panel};
use super::data::{context, groups, same, sweep_key};
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
    let mut values: Vec<Value> = file
        .scenario
        .matrix
        .as_ref()
        .and_then(|m| m.get(&key))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for r in &runs {
        if let Some(v) = r.point.get(&key) {
            if !values.iter().any(|x| same(x, v)) {
                values.push(v.clone());
            }
        }
    }
    let numeric = values
        .iter()
        .all(|v| v.as_f64().is_some_and(f64::is_finite));
    // Where a run's value lies along x: the number, or its position among the values.
    let x_of = |v: &Value| -> Option<f64> {
        if numeric {
            v.as_f64()
        } else {
            values.iter().position(|x| same(x, v)).map(|i| i as f64)
        }
    };
    let groups = groups(&runs, &[key.as_str()]);
    let mut tput = Vec::new();
    let mut p99 = Vec::new();
    for g in &groups {
        let mut xs: Vec<f64> = g
            .runs
            .iter()
            .filter_map(|r| x_of(r.point.get(&key)?))
            .collect();
        xs.sort_by(f64::total_cmp);
        xs.dedup();
        let at = |x: f64| -> Vec<&Run> {
            g.runs
                .iter()
                .copied()
                .filter(|r| r.point.get(&key).and_then(x_of) == Some(x))
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
        tput.push(line(|r| r.throughput_rps));
        p99.push(line(|r| r.latency_us.p99));
    }
    if tput.iter().all(|l| l.points.is_empty()) {
        return Vec::new();
    }
    let x_axis = || {
        if numeric {
            let nums: Vec<f64> = values.iter().filter_map(Value::as_f64).collect();
            Axis::of_values(&nums, Fmt::Count, &key)
        } else {
            Axis::names(values.iter().map(show_value).collect(), &key)
        }
    };
    let others = groups.iter().any(|g| g.variant > 0);
    let per = if others {
        "one line per model and combination of the other swept values"
    } else {
        "one line per model"
    };
    let log_x = x_axis().log;
    let scale = if log_x { " (logarithmic)" } else { "" };
    let top = tput
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .fold(0.0, f64::max);
    let (lo, hi) = extent(p99.iter().flat_map(|l| l.points.iter().map(|p| p.1)));
    vec![
        Chart {
            stem: "sweep-throughput",
            title: format!("Throughput by {key} ({})", context(file)),
            caption: format!(
                "Requests answered per second (median over repeats) at each {key} value along \
                 x{scale}, {per}; higher is better{}.",
                if numeric {
                    format!(", and where a line flattens the model has stopped scaling with {key}")
                } else {
                    String::new()
                }
            ),
            legend: line_legend(&tput, colors, true),
            panels: vec![Panel::Lines(LinePanel {
                title: None,
                x: x_axis(),
                y: Axis::from_zero(top, Fmt::Count, "requests per second"),
                lines: tput,
                markers: true,
                threshold: None,
            })],
        },
        Chart {
            stem: "sweep-p99",
            title: format!("p99 latency by {key} ({})", context(file)),
            caption: format!(
                "The 99th percentile latency (median over repeats, logarithmic) at each {key} \
                 value along x{scale}, {per}; lower is better{}.",
                if numeric {
                    ", and a steep rise marks where a model starts queueing"
                } else {
                    ""
                }
            ),
            legend: line_legend(&p99, colors, true),
            panels: vec![Panel::Lines(LinePanel {
                title: None,
                x: x_axis(),
                y: Axis::log(lo, hi, Fmt::Micros, "p99 latency"),
                lines: p99,
                markers: true,
                threshold: None,
            })],
        },
    ]
}
