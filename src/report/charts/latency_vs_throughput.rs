//! p99 latency against achieved throughput, over open-loop runs at several rates.

use super::axes::{extent, fmt_micros, Axis, Fmt};
use super::chart::{Chart, Line, LinePanel, Panel};
use super::data::{context, groups, Group};
use super::style::{line_legend, Colors};
use crate::metrics::stats::med;
use crate::result::{ResultFile, Run};

/// p99 against achieved throughput over open-loop runs at several rates: an SLO search's
/// probes, or a sweep over `rate`.
pub(super) fn latency_vs_throughput(file: &ResultFile, colors: &Colors) -> Option<Chart> {
    let runs = open_loop_runs(file);
    let slo = runs.iter().any(|r| r.slo_probe.is_some());
    let lines: Vec<Line> = groups(&runs, &["rate"]).into_iter().map(line).collect();
    if lines.iter().all(|l| l.points.len() < 2) {
        return None;
    }
    let objective = file
        .runs
        .iter()
        .filter_map(|r| r.slo_probe.as_ref())
        .flat_map(|p| p.objectives.iter())
        .find_map(|o| p99_objective(o));
    Some(chart(file, lines, slo, objective, colors))
}

/// The complete open-loop runs at a requested rate: an SLO search's probes after the first, or
/// a sweep's runs at a swept rate.
fn open_loop_runs(file: &ResultFile) -> Vec<&Run> {
    let rate_swept = file
        .scenario
        .matrix
        .as_ref()
        .is_some_and(|m| m.contains_key("rate"));
    file.runs
        .iter()
        .filter(|r| r.failure.is_none() && r.rate.is_some())
        .filter(|r| match &r.slo_probe {
            Some(p) => p.index > 0,
            None => rate_swept && r.point.contains_key("rate"),
        })
        .collect()
}

/// The group's line in order of requested rate: median throughput and p99 at each rate, the
/// marker filled where every probe at that rate met the objectives.
fn line(g: Group) -> Line {
    let mut rates: Vec<f64> = g.runs.iter().filter_map(|r| r.rate).collect();
    rates.sort_by(f64::total_cmp);
    rates.dedup();
    let points: Vec<(f64, f64, bool)> = rates
        .iter()
        .filter_map(|&rate| {
            let at: Vec<&Run> = g
                .runs
                .iter()
                .copied()
                .filter(|r| r.rate == Some(rate))
                .collect();
            let met = at
                .iter()
                .all(|r| r.slo_probe.as_ref().map_or(true, |p| p.met));
            Some((
                med(&at, |r| Some(r.throughput_rps))?,
                med(&at, |r| Some(r.latency_us.p99))?,
                met,
            ))
        })
        .collect();
    Line {
        name: g.name,
        model: g.model,
        variant: g.variant,
        sent: false,
        points,
    }
}

/// The chart of the lines, the p99 objective (if any) drawn as a threshold within the y axis.
fn chart(
    file: &ResultFile,
    lines: Vec<Line>,
    slo: bool,
    objective: Option<f64>,
    colors: &Colors,
) -> Chart {
    let (left, right) = extent(lines.iter().flat_map(|l| l.points.iter().map(|p| p.0)));
    let (mut lo, mut hi) = extent(lines.iter().flat_map(|l| l.points.iter().map(|p| p.1)));
    if let Some(us) = objective {
        lo = lo.min(us);
        hi = hi.max(us);
    }
    let source = if slo {
        "an SLO search's probes"
    } else {
        "a sweep over rate"
    };
    Chart {
        stem: "latency-vs-throughput",
        title: format!("p99 latency against throughput ({})", context(file)),
        caption: format!(
            "Each point is an open-loop run ({source}) at one requested rate, joined in order of \
             rate: x is the throughput achieved, y the p99 latency measured from each request's \
             due time (logarithmic){}; where a line turns upward the model has passed its \
             capacity.",
            if slo {
                "; filled markers met the objectives, hollow ones missed them, and the dashed \
                 line is the p99 objective"
            } else {
                ""
            }
        ),
        legend: line_legend(&lines, colors, true),
        panels: vec![Panel::Lines(LinePanel {
            title: None,
            x: Axis::around(left, right, Fmt::Count, "achieved requests per second"),
            y: Axis::log(lo, hi, Fmt::Micros, "p99 latency"),
            lines,
            markers: true,
            threshold: objective.map(|us| (us, format!("objective p99 ≤ {}", fmt_micros(us)))),
        })],
    }
}

/// `p99<=1ms` as microseconds.
fn p99_objective(text: &str) -> Option<f64> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let rest = compact.strip_prefix("p99")?;
    let rest = rest
        .strip_prefix("<=")
        .or_else(|| rest.strip_prefix('='))
        .or_else(|| rest.strip_prefix('<'))?;
    let split = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let value: f64 = rest[..split].parse().ok()?;
    let scale = match &rest[split..] {
        "us" | "µs" => 1.0,
        "ms" => 1e3,
        "s" => 1e6,
        _ => return None,
    };
    Some(value * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_p99_objective() {
        assert_eq!(p99_objective("p99<=1ms"), Some(1000.0));
        assert_eq!(p99_objective("p99 <= 250us"), Some(250.0));
        assert_eq!(p99_objective("p99=5ms"), Some(5000.0));
        assert_eq!(p99_objective("p50<=1ms"), None);
    }
}
