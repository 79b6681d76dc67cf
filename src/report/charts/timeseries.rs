//! Throughput and p99 over the measured window, interval by interval.

use super::axes::{extent, fmt_plain, Axis, Fmt};
use super::chart::{Chart, Line, LinePanel, Panel};
use super::data::{context, groups, Group};
use super::style::{line_legend, Colors};
use crate::result::{ResultFile, Run};

/// Throughput and p99 per interval of the first repeat's window; not for sweeps and SLO
/// searches, whose many short runs would crowd it.
pub(super) fn timeseries(file: &ResultFile, colors: &Colors) -> Option<Chart> {
    if file.scenario.matrix.is_some() || file.runs.iter().any(|r| r.slo_probe.is_some()) {
        return None;
    }
    let runs: Vec<&Run> = file
        .runs
        .iter()
        .filter(|r| r.failure.is_none() && r.repeat_index == 0 && r.point.is_empty())
        .collect();
    let (tput, p99): (Vec<Line>, Vec<Line>) = groups(&runs, &[]).iter().map(lines).unzip();
    if tput.iter().all(|l| l.points.is_empty()) {
        return None;
    }
    let legend = line_legend(&tput, colors, true);
    Some(Chart {
        stem: "timeseries",
        title: format!("Over the measured window ({})", context(file)),
        caption: format!(
            "Each {} s interval of the first repeat's window, plotted at its end: left, \
             requests answered per second; right, the interval's p99 latency (logarithmic); a \
             dip or a spike is a stall that the run's totals average away.",
            fmt_plain(file.scenario.interval_s)
        ),
        panels: panels(tput, p99),
        legend,
    })
}

/// The group's throughput and p99 lines, a point at the end of each interval.
fn lines(g: &Group) -> (Line, Line) {
    let mut rate_points = Vec::new();
    let mut p99_points = Vec::new();
    for run in &g.runs {
        let mut start = 0.0;
        for i in &run.timeseries {
            let len = i.t_s - start;
            start = i.t_s;
            if len > 0.0 {
                rate_points.push((i.t_s, i.requests as f64 / len, true));
            }
            if let Some(v) = i.p99_us.filter(|v| *v > 0.0) {
                p99_points.push((i.t_s, v, true));
            }
        }
    }
    let line = |points| Line {
        name: g.name.clone(),
        model: g.model.clone(),
        variant: g.variant,
        sent: false,
        points,
    };
    (line(rate_points), line(p99_points))
}

/// The throughput panel, and the p99 panel beside it when any interval has a p99.
fn panels(tput: Vec<Line>, p99: Vec<Line>) -> Vec<Panel> {
    let t_end = tput
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.0))
        .fold(0.0, f64::max);
    let top = tput
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .fold(0.0, f64::max);
    let time = || Axis::from_zero(t_end, Fmt::Plain, "seconds into the window");
    let mut panels = vec![Panel::Lines(LinePanel {
        title: Some("Throughput".into()),
        x: time(),
        y: Axis::from_zero(top, Fmt::Count, "requests per second"),
        lines: tput,
        markers: true,
        threshold: None,
    })];
    if p99.iter().any(|l| !l.points.is_empty()) {
        let (lo, hi) = extent(p99.iter().flat_map(|l| l.points.iter().map(|p| p.1)));
        panels.push(Panel::Lines(LinePanel {
            title: Some("p99 latency".into()),
            x: time(),
            y: Axis::log(lo, hi, Fmt::Micros, "p99 latency"),
            lines: p99,
            markers: true,
            threshold: None,
        }));
    }
    panels
}
