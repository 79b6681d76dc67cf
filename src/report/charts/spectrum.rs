//! The latency spectrum: each model's latency at every percentile the samples resolve, from
//! its repeats' histograms merged.

use anyhow::{anyhow, Context};
use hdrhistogram::Histogram as HdrHistogram;

use super::axes::{extent, Axis, Fmt};
use super::chart::{Chart, Line, LinePanel, Panel};
use super::data::{context, groups, Selection};
use super::style::{line_legend, Colors};
use crate::metrics::histogram;
use crate::output::format::label;
use crate::result::{ResultFile, Run};

/// Step of the spectrum's x, in decades of 1/(1-p).
const SPECTRUM_STEP: f64 = 0.025;
/// The spectrum's last decade: 99.9999%.
const SPECTRUM_MAX_X: f64 = 6.0;

/// Each model's latency at every percentile its merged histograms resolve, with a dashed
/// line timed from send where the runs kept one; none when no run has a histogram.
pub(super) fn spectrum(
    file: &ResultFile,
    sel: &Selection,
    colors: &Colors,
) -> anyhow::Result<Option<Chart>> {
    let lines = lines(sel)?;
    if lines.is_empty() {
        return Ok(None);
    }
    let x = percentile_axis(&lines);
    let (lo, hi) = extent(lines.iter().flat_map(|l| l.points.iter().map(|p| p.1)));
    let at = sel
        .sweep
        .as_ref()
        .map(|(_, at)| format!(" at {at}"))
        .unwrap_or_default();
    Ok(Some(Chart {
        stem: "latency-spectrum",
        title: format!("Latency by percentile{at} ({})", context(file)),
        caption: caption(sel, &lines, &at),
        legend: line_legend(&lines, colors, false),
        panels: vec![Panel::Lines(LinePanel {
            title: None,
            x,
            y: Axis::log(lo, hi, Fmt::Micros, "latency"),
            lines,
            markers: false,
            threshold: None,
        })],
    }))
}

/// Per group, the line of its corrected histograms, then the line of its sent ones.
fn lines(sel: &Selection) -> anyhow::Result<Vec<Line>> {
    let mut lines = Vec::new();
    for g in groups(&sel.runs, &sel.skip()) {
        let corrected = merged(&g.runs, |r| Some(&r.histogram))?;
        let sent = merged(&g.runs, |r| r.histogram_uncorrected.as_ref())?;
        for (h, is_sent) in [(corrected, false), (sent, true)] {
            let Some(h) = h else { continue };
            let points = percentiles(&h);
            if points.is_empty() {
                continue;
            }
            lines.push(Line {
                name: if is_sent {
                    format!("{} (sent)", g.name)
                } else {
                    g.name.clone()
                },
                model: g.model.clone(),
                variant: g.variant,
                sent: is_sent,
                points,
            });
        }
    }
    Ok(lines)
}

/// The x axis in decades of 1/(1-p), from 0% to the next whole decade past the longest line
/// (at least 99%, at most 99.9999%), ticked at 50% and each decade.
fn percentile_axis(lines: &[Line]) -> Axis {
    let x_end = lines
        .iter()
        .flat_map(|l| l.points.last().map(|p| p.0))
        .fold(2.0, f64::max)
        .ceil()
        .min(SPECTRUM_MAX_X);
    let ticks = std::iter::once(2f64.log10())
        .chain((1..=6).map(f64::from))
        .filter(|t| *t <= x_end + 1e-9)
        .collect();
    Axis {
        log: false,
        lo: 0.0,
        hi: x_end,
        ticks,
        fmt: Fmt::Percentile,
        desc: "percentile".into(),
    }
}

/// How to read the chart: merged repeats or one histogram, and the sent lines if any.
fn caption(sel: &Selection, lines: &[Line], at: &str) -> String {
    let open = lines.iter().any(|l| l.sent);
    let repeats = sel
        .runs
        .iter()
        .map(|r| r.repeat_index + 1)
        .max()
        .unwrap_or(1);
    format!(
        "Each line is one model's latency distribution ({} merged){at}: read across to a \
         percentile and up to the latency at or under which that share of requests \
         finished; both axes are logarithmic, so the right end shows the rarest, slowest \
         requests{}.",
        if repeats > 1 {
            "its repeats' histograms"
        } else {
            "its histogram"
        },
        if open {
            "; the dashed, lighter lines (sent) time each request from its send instead of \
             its due time, as a load generator blind to coordinated omission would"
        } else {
            ""
        }
    )
}

/// The runs' histograms merged; none when no run has one.
fn merged(
    runs: &[&Run],
    text: impl Fn(&Run) -> Option<&String>,
) -> anyhow::Result<Option<HdrHistogram<u64>>> {
    let mut acc: Option<HdrHistogram<u64>> = None;
    for run in runs {
        let Some(text) = text(run).filter(|t| !t.is_empty()) else {
            continue;
        };
        let h = histogram::decode(text).with_context(|| {
            format!(
                "the histogram of {} (repeat {}) cannot be read",
                label(run),
                run.repeat_index
            )
        })?;
        match acc.as_mut() {
            None => acc = Some(h),
            Some(acc) => {
                acc.auto(true);
                acc.add(&h)
                    .map_err(|e| anyhow!("cannot merge the histograms of {}: {e}", label(run)))?;
            }
        }
    }
    Ok(acc)
}

/// Latency at percentiles evenly spread on the log axis of 1/(1-p), up to the last one the
/// sample count resolves (1 - 1/n), in one pass over the histogram.
fn percentiles(h: &HdrHistogram<u64>) -> Vec<(f64, f64, bool)> {
    let n = h.len();
    if n == 0 {
        return Vec::new();
    }
    let end = (n as f64).log10().min(SPECTRUM_MAX_X);
    let steps = (end / SPECTRUM_STEP).floor() as usize;
    let xs = (0..=steps)
        .map(|i| i as f64 * SPECTRUM_STEP)
        .filter(|x| *x < end)
        .chain(std::iter::once(end));
    let mut recorded = h.iter_recorded();
    let (mut seen, mut value) = (0u64, None);
    let mut out = Vec::new();
    for x in xs {
        let quantile = 1.0 - 10f64.powf(-x);
        // The line ends at the slowest request.
        let rank = if x >= end {
            n
        } else {
            ((quantile * n as f64).ceil() as u64).clamp(1, n)
        };
        while seen < rank {
            let Some(v) = recorded.next() else { break };
            seen += v.count_since_last_iteration();
            value = Some(h.highest_equivalent(v.value_iterated_to()));
        }
        if let Some(v) = value {
            out.push((x, v as f64, true));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spectrum_matches_the_histograms_percentiles() {
        let mut h = histogram::new_histogram();
        for us in 1..=10_000 {
            histogram::record(&mut h, us);
        }
        let points = percentiles(&h);
        let at = |x: f64| {
            points
                .iter()
                .find(|p| (p.0 - x).abs() < 1e-9)
                .map(|p| p.1)
                .unwrap()
        };
        assert_eq!(at(1.0), h.value_at_quantile(0.9) as f64);
        assert_eq!(at(2.0), h.value_at_quantile(0.99) as f64);
        let last = points.last().unwrap();
        assert!((last.0 - 4.0).abs() < 1e-9, "10,000 samples resolve 99.99%");
        assert_eq!(last.1, h.highest_equivalent(h.max()) as f64);
    }
}
