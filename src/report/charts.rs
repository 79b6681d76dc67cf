//! The report's charts: drawn with plotters from result files, each written as an SVG (also
//! returned, for inlining in HTML) and a PNG of [`WIDTH`] x [`HEIGHT`] pixels.
//!
//! Text is measured and rasterised with the bundled DejaVu Sans (assets/fonts), registered
//! under the family name `sans-serif`, so no system font is needed and an SVG viewer without
//! DejaVu falls back to its own sans-serif. A chart the data cannot support is skipped, never
//! drawn empty. Each model keeps one colour across every chart, from its position among all
//! the models seen.
//!
//! The module reads in two halves: what each chart shows (data only: a `Chart` of panels,
//! built from the runs), then how any chart is drawn on any plotters backend.

use std::path::Path;
use std::sync::OnceLock;

use anyhow::{anyhow, Context};
use hdrhistogram::Histogram as HdrHistogram;
use plotters::backend::{BitMapBackend, DrawingBackend, SVGBackend};
use plotters::chart::ChartBuilder;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::{CoordTranslate, Shift};
use plotters::drawing::{DrawingArea, IntoDrawingArea};
use plotters::element::{
    Circle, Cross, DashedPathElement, EmptyElement, PathElement, Polygon, Rectangle, Text,
    TriangleMarker,
};
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{Color, FontStyle, HSLColor, IntoFont, RGBColor, ShapeStyle, TextStyle};
use serde_json::Value;

use super::result::{ResultFile, Run};
use super::table::{label, median};
use crate::metrics::histogram;

/// Every chart's size in pixels (the PNG's, and the SVG's view box).
pub const WIDTH: u32 = 900;
pub const HEIGHT: u32 = 500;

/// One chart, written as DIR/<stem>.svg and DIR/<stem>.png.
#[derive(Debug, Clone)]
pub struct ChartFile {
    pub stem: String,
    pub title: String,
    /// One sentence saying what it shows and how to read it.
    pub caption: String,
    /// The SVG text, for inlining in HTML.
    pub svg: String,
}

/// Draws every chart the results support into `dir` (created if missing); returns them in a
/// stable order: per result file, throughput, latency-spectrum, mechanism, sweep-throughput,
/// sweep-p99, latency-vs-throughput, timeseries. With several files each stem starts with the
/// file's position from 1 (`2-throughput`). A chart the data does not support is skipped.
pub fn draw_all(files: &[ResultFile], dir: &Path) -> anyhow::Result<Vec<ChartFile>> {
    register_font()?;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the charts' folder {}", dir.display()))?;
    let colors = Colors::new(files);
    let mut out = Vec::new();
    for (i, file) in files.iter().enumerate() {
        let charts = charts_of(file, &colors)
            .with_context(|| format!("cannot chart result file {} of {}", i + 1, files.len()))?;
        for mut chart in charts {
            let stem = if files.len() > 1 {
                chart.title = format!("{} [{}]", chart.title, i + 1);
                format!("{}-{}", i + 1, chart.stem)
            } else {
                chart.stem.to_string()
            };
            let svg = write_chart(&chart, &colors, dir, &stem)
                .with_context(|| format!("cannot draw the chart {stem}"))?;
            out.push(ChartFile {
                stem,
                title: chart.title,
                caption: chart.caption,
                svg,
            });
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// What each chart shows.
// ---------------------------------------------------------------------------------------------

/// A chart as data: panels side by side under a title, a legend below them.
struct Chart {
    stem: &'static str,
    title: String,
    caption: String,
    panels: Vec<Panel>,
    legend: Vec<LegendEntry>,
}

enum Panel {
    Lines(LinePanel),
    Bars(BarPanel),
}

struct LinePanel {
    title: Option<String>,
    x: Axis,
    y: Axis,
    lines: Vec<Line>,
    /// Marks every point (lines of few points); the spectrum's dense lines go without.
    markers: bool,
    /// A horizontal reference line and its label (an SLO objective).
    threshold: Option<(f64, String)>,
}

/// One series: a model, or a model at one combination of a sweep's other values.
struct Line {
    name: String,
    model: String,
    /// Which combination of a sweep's other values: picks the dash and the marker.
    variant: usize,
    /// The open loop's uncorrected latency (from each request's send): dashed and lighter.
    sent: bool,
    /// (x, y, whether the point's marker is filled: hollow for an SLO probe that missed).
    points: Vec<(f64, f64, bool)>,
}

/// Horizontal bars, one row per model, the value along x.
struct BarPanel {
    title: Option<String>,
    x: Axis,
    rows: Vec<BarRow>,
    /// Writes the rows' names on the y axis (the first panel of a row of panels only).
    names: bool,
}

struct BarRow {
    name: String,
    /// Stacked from zero; none when the row's data was not counted.
    segments: Vec<(f64, RGBColor)>,
    /// The whisker: lowest and highest repeat.
    range: Option<(f64, f64)>,
    /// The figure written at the bar's end.
    text: String,
}

struct LegendEntry {
    label: String,
    swatch: Swatch,
}

enum Swatch {
    Fill(RGBColor),
    Line(LineLook),
    Whisker,
}

/// How a line is drawn.
#[derive(Clone, Copy)]
struct LineLook {
    color: RGBColor,
    dash: Dash,
    marker: Option<Marker>,
}

#[derive(Clone, Copy, PartialEq)]
enum Dash {
    Solid,
    Dashed,
    Dotted,
}

#[derive(Clone, Copy)]
enum Marker {
    Circle,
    Triangle,
    Square,
    Diamond,
    Cross,
}

/// One axis: its range and ticks in data units, drawn on a log10 scale when `log`.
struct Axis {
    log: bool,
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
    fmt: Fmt,
    desc: String,
}

/// How an axis writes its tick values.
#[derive(Clone)]
enum Fmt {
    /// 950, 15k, 1.2M.
    Count,
    /// 350µs, 1.2ms, 2s.
    Micros,
    /// 2.5, 10.
    Plain,
    /// The spectrum's x, log10(1/(1-p)): 90%, 99.9%.
    Percentile,
    /// Names at 0, 1, 2...
    Names(Vec<String>),
}

/// The charts one result file supports, in their fixed order.
fn charts_of(file: &ResultFile, colors: &Colors) -> anyhow::Result<Vec<Chart>> {
    let plain = Selection::plain(file);
    let mut out = Vec::new();
    out.extend(throughput(file, &plain, colors));
    out.extend(spectrum(file, &plain, colors)?);
    out.extend(mechanism(file, &plain, colors));
    out.extend(sweep(file, colors));
    out.extend(latency_vs_throughput(file, colors));
    out.extend(timeseries(file, colors));
    if file.runs.iter().any(|r| r.failure.is_some()) {
        for chart in &mut out {
            let caption = chart.caption.trim_end_matches('.');
            chart.caption = format!("{caption}; runs that failed are left out.");
        }
    }
    Ok(out)
}

/// The runs the per-model charts (throughput, spectrum, mechanism) show: complete runs, no SLO
/// probes; in a sweep, those at the largest value of the first swept key.
struct Selection<'a> {
    runs: Vec<&'a Run>,
    /// In a sweep: the swept key, and `key=value` of the point shown.
    sweep: Option<(String, String)>,
}

impl<'a> Selection<'a> {
    fn plain(file: &'a ResultFile) -> Self {
        let ok: Vec<&Run> = file
            .runs
            .iter()
            .filter(|r| r.failure.is_none() && r.slo_probe.is_none())
            .collect();
        let Some(key) = sweep_key(file) else {
            return Selection {
                runs: ok.into_iter().filter(|r| r.point.is_empty()).collect(),
                sweep: None,
            };
        };
        let values: Vec<&Value> = ok.iter().filter_map(|r| r.point.get(&key)).collect();
        let largest = if values.iter().all(|v| v.is_number()) {
            values
                .iter()
                .copied()
                .max_by(|a, b| num(a).total_cmp(&num(b)))
        } else {
            values.last().copied()
        };
        let Some(largest) = largest.cloned() else {
            return Selection {
                runs: Vec::new(),
                sweep: None,
            };
        };
        let runs = ok
            .into_iter()
            .filter(|r| r.point.get(&key).is_some_and(|v| same(v, &largest)))
            .collect();
        let at = format!("{key}={}", show(&largest));
        Selection {
            runs,
            sweep: Some((key, at)),
        }
    }

    fn skip(&self) -> Vec<&str> {
        self.sweep.iter().map(|(k, _)| k.as_str()).collect()
    }
}

/// The first key of the file's sweep, if it has one.
fn sweep_key(file: &ResultFile) -> Option<String> {
    let from_matrix = file
        .scenario
        .matrix
        .as_ref()
        .and_then(|m| m.keys().next().cloned());
    from_matrix.or_else(|| {
        file.runs
            .iter()
            .find_map(|r| r.point.keys().next().cloned())
    })
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

/// Whether two swept values are the same (100 and 100.0 are).
fn same(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Runs of one series, in the order the series first appear.
struct Group<'a> {
    name: String,
    model: String,
    variant: usize,
    runs: Vec<&'a Run>,
}

/// Groups runs by model and by their values of the swept keys not in `skip`
/// (`reactor, payload=64`).
fn groups<'a>(runs: &[&'a Run], skip: &[&str]) -> Vec<Group<'a>> {
    let mut out: Vec<Group<'a>> = Vec::new();
    let mut variants: Vec<String> = Vec::new();
    for run in runs {
        let model = label(run);
        let rest: String = run
            .point
            .iter()
            .filter(|(k, _)| !skip.contains(&k.as_str()))
            .map(|(k, v)| format!(", {k}={}", show(v)))
            .collect();
        let name = format!("{model}{rest}");
        match out.iter_mut().find(|g| g.name == name) {
            Some(g) => g.runs.push(run),
            None => {
                let variant = match variants.iter().position(|v| *v == rest) {
                    Some(i) => i,
                    None => {
                        variants.push(rest);
                        variants.len() - 1
                    }
                };
                out.push(Group {
                    name,
                    model,
                    variant,
                    runs: vec![run],
                });
            }
        }
    }
    out
}

fn med(runs: &[&Run], f: impl Fn(&Run) -> Option<f64>) -> Option<f64> {
    median(runs.iter().filter_map(|r| f(r)))
}

/// What the runs measured, for titles: `echo, 50 connections, 64 B`.
fn context(file: &ResultFile) -> String {
    let s = &file.scenario;
    let swept = |k: &str| s.matrix.as_ref().is_some_and(|m| m.contains_key(k));
    let mut parts = vec![s.workload.clone()];
    if !swept("connections") {
        let plural = if s.connections == 1 { "" } else { "s" };
        parts.push(format!("{} connection{plural}", s.connections));
    }
    if s.workload == "echo" && !swept("payload") {
        parts.push(format!("{} B", s.payload));
    }
    if let Some(rate) = s.rate.filter(|_| !swept("rate")) {
        parts.push(format!("open loop at {} req/s", fmt_count(rate)));
    }
    parts.join(", ")
}

fn repeats_text(n: usize) -> String {
    if n > 1 {
        format!("the median of {n} repeats")
    } else {
        "one run".to_string()
    }
}

fn throughput(file: &ResultFile, sel: &Selection, colors: &Colors) -> Option<Chart> {
    if sel.sweep.is_some() {
        return None;
    }
    let groups = groups(&sel.runs, &[]);
    if groups.is_empty() {
        return None;
    }
    let repeats = groups.iter().map(|g| g.runs.len()).max().unwrap_or(1);
    let mut rows = Vec::new();
    let mut top: f64 = 0.0;
    for g in &groups {
        let all: Vec<f64> = g.runs.iter().map(|r| r.throughput_rps).collect();
        let m = median(all.iter().copied())?;
        let lo = all.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = all.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        top = top.max(hi);
        rows.push(BarRow {
            name: g.name.clone(),
            segments: vec![(m, colors.of(&g.model))],
            range: (all.len() > 1).then_some((lo, hi)),
            text: fmt_count(m),
        });
    }
    let mut legend = vec![LegendEntry {
        label: format!("bar: {}", repeats_text(repeats)),
        swatch: Swatch::Fill(RGBColor(150, 150, 150)),
    }];
    if repeats > 1 {
        legend.push(LegendEntry {
            label: "whisker: lowest to highest repeat".into(),
            swatch: Swatch::Whisker,
        });
    }
    Some(Chart {
        stem: "throughput",
        title: format!("Throughput per model ({})", context(file)),
        caption: format!(
            "Requests answered per second in the measured window, one bar per model ({}{}); \
             longer is better.",
            repeats_text(repeats),
            if repeats > 1 {
                ", the whisker spanning the lowest to the highest repeat"
            } else {
                ""
            }
        ),
        panels: vec![Panel::Bars(BarPanel {
            title: None,
            x: Axis::from_zero(top, Fmt::Count, "requests per second"),
            rows,
            names: true,
        })],
        legend,
    })
}

/// Step of the spectrum's x, in decades of 1/(1-p).
const SPECTRUM_STEP: f64 = 0.025;
/// The spectrum's last decade: 99.9999%.
const SPECTRUM_MAX_X: f64 = 6.0;

fn spectrum(file: &ResultFile, sel: &Selection, colors: &Colors) -> anyhow::Result<Option<Chart>> {
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
    if lines.is_empty() {
        return Ok(None);
    }
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
    let (lo, hi) = extent(lines.iter().flat_map(|l| l.points.iter().map(|p| p.1)));
    let open = lines.iter().any(|l| l.sent);
    let repeats = sel
        .runs
        .iter()
        .map(|r| r.repeat_index + 1)
        .max()
        .unwrap_or(1);
    let at = sel
        .sweep
        .as_ref()
        .map(|(_, at)| format!(" at {at}"))
        .unwrap_or_default();
    Ok(Some(Chart {
        stem: "latency-spectrum",
        title: format!("Latency by percentile{at} ({})", context(file)),
        caption: format!(
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
        ),
        legend: line_legend(&lines, colors, false),
        panels: vec![Panel::Lines(LinePanel {
            title: None,
            x: Axis {
                log: false,
                lo: 0.0,
                hi: x_end,
                ticks,
                fmt: Fmt::Percentile,
                desc: "percentile".into(),
            },
            y: Axis::log(lo, hi, Fmt::Micros, "latency"),
            lines,
            markers: false,
            threshold: None,
        })],
    }))
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

/// The syscall names a stacked bar shows by name; the rest are `other`.
const TOP_CALLS: usize = 5;

/// The server's costs per request: system calls by name, context switches, CPU time; a panel
/// whose figures no run has is left out, and the caption says what was not counted.
fn mechanism(file: &ResultFile, sel: &Selection, colors: &Colors) -> Option<Chart> {
    let groups = groups(&sel.runs, &sel.skip());
    if groups.is_empty() {
        return None;
    }
    // Each panel with what it is called in the caption.
    let mut panels: Vec<(BarPanel, &str)> = Vec::new();
    let mut reads: Vec<String> = Vec::new();
    let mut uncounted: Vec<&str> = Vec::new();
    let mut legend = Vec::new();
    match syscall_panel(&groups) {
        Some((panel, entries)) => {
            reads.push(format!(
                "system calls stacked by name (the {} most made, the rest as other)",
                entries.len() - 1
            ));
            legend = entries;
            panels.push((panel, "system calls"));
        }
        None => uncounted.push("system calls"),
    }
    type Figure = fn(&Run) -> Option<f64>;
    let server: [(&str, &str, &str, &str, Figure); 2] = [
        (
            "Context switches",
            "switches per request",
            "context switches",
            "context switches (voluntary and involuntary)",
            |r| r.server.as_ref()?.ctx_switches_per_request,
        ),
        (
            "Server CPU time",
            "CPU µs per request",
            "server CPU time",
            "server CPU time in µs (user and system)",
            |r| r.server.as_ref()?.cpu_us_per_request,
        ),
    ];
    for (title, desc, what, read, figure) in server {
        let rows: Vec<BarRow> = groups
            .iter()
            .map(|g| match med(&g.runs, figure) {
                Some(v) => BarRow {
                    name: g.name.clone(),
                    segments: vec![(v, colors.of(&g.model))],
                    range: None,
                    text: fmt_plain(v),
                },
                None => BarRow::not_counted(&g.name),
            })
            .collect();
        if rows.iter().all(|r| r.segments.is_empty()) {
            uncounted.push(what);
            continue;
        }
        reads.push(read.into());
        panels.push((BarPanel::new(title, desc, rows), what));
    }
    if panels.is_empty() {
        return None;
    }
    let mut missing = Vec::new();
    if !uncounted.is_empty() {
        missing.push(format!("{} not counted", join_and(&uncounted)));
    }
    for (panel, what) in &panels {
        let rows: Vec<&str> = panel
            .rows
            .iter()
            .filter(|r| r.segments.is_empty())
            .map(|r| r.name.as_str())
            .collect();
        if !rows.is_empty() {
            missing.push(format!("{what} not counted for {}", rows.join(", ")));
        }
    }
    let missing = if missing.is_empty() {
        String::new()
    } else {
        format!(" ({})", missing.join("; "))
    };
    let at = sel
        .sweep
        .as_ref()
        .map(|(_, at)| format!(" at {at}"))
        .unwrap_or_default();
    let mut panels: Vec<BarPanel> = panels.into_iter().map(|(p, _)| p).collect();
    panels[0].names = true;
    Some(Chart {
        stem: "mechanism",
        title: format!("What a request costs the server{at} ({})", context(file)),
        caption: format!(
            "Per request, the median over repeats of what the server spent{at}: {}; shorter is \
             cheaper{missing}.",
            reads.join(", ")
        ),
        panels: panels.into_iter().map(Panel::Bars).collect(),
        legend,
    })
}

/// System calls per request stacked by name, with the legend of the names; none when no run
/// counted them.
fn syscall_panel(groups: &[Group]) -> Option<(BarPanel, Vec<LegendEntry>)> {
    // Each group's median calls per request, by name.
    let calls: Vec<Option<Vec<(String, f64)>>> = groups
        .iter()
        .map(|g| {
            let maps: Vec<&serde_json::Map<String, Value>> = g
                .runs
                .iter()
                .filter_map(|r| r.syscalls.as_ref()?["by_name_per_request"].as_object())
                .collect();
            if maps.is_empty() {
                return None;
            }
            let mut names: Vec<&String> = maps.iter().flat_map(|m| m.keys()).collect();
            names.sort();
            names.dedup();
            let per_name = names.into_iter().filter_map(|n| {
                let v = median(maps.iter().filter_map(|m| m[n].as_f64()))?;
                Some((n.clone(), v))
            });
            Some(per_name.collect())
        })
        .collect();
    if calls.iter().all(Option::is_none) {
        return None;
    }
    // The names made most by any model, in that order.
    let mut top: Vec<(&str, f64)> = Vec::new();
    for (name, v) in calls.iter().flatten().flatten() {
        match top.iter_mut().find(|(n, _)| n == name) {
            Some(t) => t.1 = t.1.max(*v),
            None => top.push((name, *v)),
        }
    }
    top.retain(|(_, v)| *v >= 0.005);
    top.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
    top.truncate(TOP_CALLS);
    let color = |i: usize| CALL_COLORS[i % CALL_COLORS.len()];
    let rows = groups
        .iter()
        .zip(&calls)
        .map(|(g, c)| {
            let Some(c) = c else {
                return BarRow::not_counted(&g.name);
            };
            let of = |name: &str| c.iter().find(|(n, _)| n == name).map_or(0.0, |x| x.1);
            let mut segments: Vec<(f64, RGBColor)> = top
                .iter()
                .enumerate()
                .map(|(i, (name, _))| (of(name), color(i)))
                .collect();
            let other = c
                .iter()
                .filter(|(n, _)| !top.iter().any(|(t, _)| t == n))
                .map(|(_, v)| v)
                .sum();
            segments.push((other, OTHER_COLOR));
            BarRow {
                name: g.name.clone(),
                text: fmt_plain(segments.iter().map(|s| s.0).sum()),
                segments,
                range: None,
            }
        })
        .collect();
    let mut legend: Vec<LegendEntry> = top
        .iter()
        .enumerate()
        .map(|(i, (name, _))| LegendEntry {
            label: name.to_string(),
            swatch: Swatch::Fill(color(i)),
        })
        .collect();
    legend.push(LegendEntry {
        label: "other calls".into(),
        swatch: Swatch::Fill(OTHER_COLOR),
    });
    let panel = BarPanel::new("System calls", "calls per request", rows);
    Some((panel, legend))
}

impl BarPanel {
    /// A titled panel whose axis runs from zero past its longest bar.
    fn new(title: &str, desc: &str, rows: Vec<BarRow>) -> Self {
        BarPanel {
            title: Some(title.into()),
            x: Axis::from_zero(max_of(&rows), Fmt::Plain, desc),
            rows,
            names: false,
        }
    }
}

impl BarRow {
    fn not_counted(name: &str) -> Self {
        BarRow {
            name: name.to_string(),
            segments: Vec::new(),
            range: None,
            text: "not counted".into(),
        }
    }
}

fn max_of(rows: &[BarRow]) -> f64 {
    rows.iter()
        .map(|r| {
            let total: f64 = r.segments.iter().map(|s| s.0).sum();
            total.max(r.range.map_or(0.0, |r| r.1))
        })
        .fold(0.0, f64::max)
}

fn join_and(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => one.to_string(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// Throughput and p99 along the first swept key: one line per model and combination of the
/// other keys' values.
fn sweep(file: &ResultFile, colors: &Colors) -> Vec<Chart> {
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
            Axis::names(values.iter().map(show).collect(), &key)
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

/// p99 against achieved throughput over open-loop runs at several rates: an SLO search's
/// probes, or a sweep over `rate`.
fn latency_vs_throughput(file: &ResultFile, colors: &Colors) -> Option<Chart> {
    let rate_swept = file
        .scenario
        .matrix
        .as_ref()
        .is_some_and(|m| m.contains_key("rate"));
    let runs: Vec<&Run> = file
        .runs
        .iter()
        .filter(|r| r.failure.is_none() && r.rate.is_some())
        .filter(|r| match &r.slo_probe {
            Some(p) => p.index > 0,
            None => rate_swept && r.point.contains_key("rate"),
        })
        .collect();
    let slo = runs.iter().any(|r| r.slo_probe.is_some());
    let mut lines = Vec::new();
    for g in groups(&runs, &["rate"]) {
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
        lines.push(Line {
            name: g.name,
            model: g.model,
            variant: g.variant,
            sent: false,
            points,
        });
    }
    if lines.iter().all(|l| l.points.len() < 2) {
        return None;
    }
    let objective = file
        .runs
        .iter()
        .filter_map(|r| r.slo_probe.as_ref())
        .flat_map(|p| p.objectives.iter())
        .find_map(|o| p99_objective(o));
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
    Some(Chart {
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
    })
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

/// Throughput and p99 per interval of the first repeat's window; not for sweeps and SLO
/// searches, whose many short runs would crowd it.
fn timeseries(file: &ResultFile, colors: &Colors) -> Option<Chart> {
    if file.scenario.matrix.is_some() || file.runs.iter().any(|r| r.slo_probe.is_some()) {
        return None;
    }
    let runs: Vec<&Run> = file
        .runs
        .iter()
        .filter(|r| r.failure.is_none() && r.repeat_index == 0 && r.point.is_empty())
        .collect();
    let mut tput = Vec::new();
    let mut p99 = Vec::new();
    for g in groups(&runs, &[]) {
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
        tput.push(line(rate_points));
        p99.push(line(p99_points));
    }
    if tput.iter().all(|l| l.points.is_empty()) {
        return None;
    }
    let t_end = tput
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.0))
        .fold(0.0, f64::max);
    let top = tput
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .fold(0.0, f64::max);
    let time = || Axis::from_zero(t_end, Fmt::Plain, "seconds into the window");
    let legend = line_legend(&tput, colors, true);
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
    Some(Chart {
        stem: "timeseries",
        title: format!("Over the measured window ({})", context(file)),
        caption: format!(
            "Each {} s interval of the first repeat's window, plotted at its end: left, \
             requests answered per second; right, the interval's p99 latency (logarithmic); a \
             dip or a spike is a stall that the run's totals average away.",
            fmt_plain(file.scenario.interval_s)
        ),
        panels,
        legend,
    })
}

/// The low and high ends of some values (1 and 10 when there are none).
fn extent(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if lo > hi {
        (1.0, 10.0)
    } else {
        (lo, hi)
    }
}

fn line_look(line: &Line, colors: &Colors, markers: bool) -> LineLook {
    const MARKERS: [Marker; 5] = [
        Marker::Circle,
        Marker::Triangle,
        Marker::Square,
        Marker::Diamond,
        Marker::Cross,
    ];
    const DASHES: [Dash; 3] = [Dash::Solid, Dash::Dashed, Dash::Dotted];
    let color = colors.of(&line.model);
    LineLook {
        color: if line.sent {
            lighten(color, 0.45)
        } else {
            color
        },
        dash: if line.sent {
            Dash::Dashed
        } else {
            DASHES[line.variant % DASHES.len()]
        },
        marker: markers.then_some(MARKERS[line.variant % MARKERS.len()]),
    }
}

fn line_legend(lines: &[Line], colors: &Colors, markers: bool) -> Vec<LegendEntry> {
    lines
        .iter()
        .map(|l| LegendEntry {
            label: l.name.clone(),
            swatch: Swatch::Line(line_look(l, colors, markers)),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Colours, axes and numbers.
// ---------------------------------------------------------------------------------------------

/// d3's category10: distinct, and readable as thin lines on white.
const MODEL_COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// The stacked system calls' names: ColorBrewer's Set2, paler than any model's colour.
const CALL_COLORS: [RGBColor; 6] = [
    RGBColor(102, 194, 165),
    RGBColor(252, 141, 98),
    RGBColor(141, 160, 203),
    RGBColor(231, 138, 195),
    RGBColor(166, 216, 84),
    RGBColor(229, 196, 148),
];
const OTHER_COLOR: RGBColor = RGBColor(190, 190, 190);
const INK: RGBColor = RGBColor(40, 40, 40);
const GRID: RGBColor = RGBColor(228, 228, 228);
const MUTED: RGBColor = RGBColor(120, 120, 120);

/// A colour per model, from its position among every model the files hold.
struct Colors {
    models: Vec<String>,
}

impl Colors {
    fn new(files: &[ResultFile]) -> Self {
        let mut models: Vec<String> = Vec::new();
        for run in files.iter().flat_map(|f| f.runs.iter()) {
            let name = label(run);
            if !models.contains(&name) {
                models.push(name);
            }
        }
        Colors { models }
    }

    fn of(&self, model: &str) -> RGBColor {
        let i = self
            .models
            .iter()
            .position(|m| m == model)
            .unwrap_or(self.models.len());
        match MODEL_COLORS.get(i) {
            Some(c) => *c,
            None => {
                let (r, g, b) = HSLColor((i as f64 * 0.618_034) % 1.0, 0.6, 0.42).rgb();
                RGBColor(r, g, b)
            }
        }
    }
}

fn lighten(c: RGBColor, by: f64) -> RGBColor {
    let mix = |v: u8| (f64::from(v) + (255.0 - f64::from(v)) * by).round() as u8;
    RGBColor(mix(c.0), mix(c.1), mix(c.2))
}

impl Axis {
    /// A linear axis from zero to a round number above `max`.
    fn from_zero(max: f64, fmt: Fmt, desc: &str) -> Self {
        let max = if max.is_finite() && max > 0.0 {
            max * 1.06
        } else {
            1.0
        };
        let step = nice_step(max / 5.0);
        let n = (max / step).ceil() as usize;
        Axis {
            log: false,
            lo: 0.0,
            hi: n as f64 * step,
            ticks: (0..=n).map(|i| i as f64 * step).collect(),
            fmt,
            desc: desc.into(),
        }
    }

    /// A linear axis over `lo..hi` and a little more, between round numbers (not below zero
    /// when the values are not).
    fn around(lo: f64, hi: f64, fmt: Fmt, desc: &str) -> Self {
        let pad = if hi > lo {
            (hi - lo) * 0.05
        } else {
            lo.abs().max(1.0) * 0.1
        };
        let step = nice_step((hi - lo + 2.0 * pad) / 5.0);
        let mut first = ((lo - pad) / step).floor();
        if lo >= 0.0 {
            first = first.max(0.0);
        }
        let last = ((hi + pad) / step).ceil();
        Axis {
            log: false,
            lo: first * step,
            hi: last * step,
            ticks: (first as i64..=last as i64)
                .map(|k| k as f64 * step)
                .collect(),
            fmt,
            desc: desc.into(),
        }
    }

    /// A log axis between values of the 1-2-5 series around `lo..hi`.
    fn log(lo: f64, hi: f64, fmt: Fmt, desc: &str) -> Self {
        let lo = if lo.is_finite() && lo > 0.0 { lo } else { 1.0 };
        let hi = if hi.is_finite() && hi > lo {
            hi
        } else {
            lo * 2.0
        };
        let series = |k: i32| [1.0, 2.0, 5.0].map(|m| m * 10f64.powi(k));
        let decade = |v: f64| v.log10().floor() as i32;
        let below = (decade(lo) - 1..=decade(lo))
            .flat_map(series)
            .filter(|v| *v <= lo * 1.0001)
            .fold(f64::NAN, f64::max);
        let above = (decade(hi)..=decade(hi) + 1)
            .flat_map(series)
            .filter(|v| *v >= hi * 0.9999)
            .fold(f64::NAN, f64::min);
        let decades = (above / below).log10();
        let within = |v: &f64| *v >= below * 0.9999 && *v <= above * 1.0001;
        let ticks: Vec<f64> = if decades > 2.5 {
            let powers: Vec<f64> = (decade(below)..=decade(above) + 1)
                .map(|k| 10f64.powi(k))
                .filter(within)
                .collect();
            // The ends too, unless they sit close to a power of ten.
            let far = |v: f64| powers.iter().all(|p| (v / p).log10().abs() > 0.25);
            let mut t: Vec<f64> = [below, above].into_iter().filter(|v| far(*v)).collect();
            t.extend(powers);
            t.sort_by(f64::total_cmp);
            t
        } else if decades >= 0.9 {
            (decade(below)..=decade(above))
                .flat_map(series)
                .filter(within)
                .collect()
        } else {
            (decade(below)..=decade(above))
                .flat_map(|k| (1..10).map(move |m| f64::from(m) * 10f64.powi(k)))
                .filter(within)
                .collect()
        };
        Axis {
            log: true,
            lo: below,
            hi: above,
            ticks,
            fmt,
            desc: format!("{desc} (log scale)"),
        }
    }

    /// An axis through the given values (a sweep's), logarithmic when they are positive and
    /// span more than a factor of 20.
    fn of_values(values: &[f64], fmt: Fmt, desc: &str) -> Self {
        let (lo, hi) = extent(values.iter().copied());
        let mut ticks = values.to_vec();
        ticks.sort_by(f64::total_cmp);
        ticks.dedup();
        let log = lo > 0.0 && hi / lo > 20.0;
        if ticks.len() > 12 {
            return if log {
                let mut a = Axis::log(lo, hi, fmt, desc);
                a.desc = desc.into();
                a
            } else {
                Axis::from_zero(hi, fmt, desc)
            };
        }
        let (lo, hi) = if log {
            (lo / 1.25, hi * 1.25)
        } else if hi > lo {
            let pad = (hi - lo) * 0.05;
            (lo - pad, hi + pad)
        } else {
            (lo - 1.0, hi + 1.0)
        };
        Axis {
            log,
            lo,
            hi,
            ticks,
            fmt,
            desc: if log {
                format!("{desc} (log scale)")
            } else {
                desc.into()
            },
        }
    }

    /// Named positions 0, 1, 2...
    fn names(names: Vec<String>, desc: &str) -> Self {
        Axis {
            log: false,
            lo: -0.5,
            hi: names.len() as f64 - 0.5,
            ticks: (0..names.len()).map(|i| i as f64).collect(),
            fmt: Fmt::Names(names),
            desc: desc.into(),
        }
    }

    /// Where a value lies on the drawn (linear) coordinate.
    fn at(&self, v: f64) -> f64 {
        if self.log {
            v.max(1e-12).log10()
        } else {
            v
        }
    }

    fn spec(&self) -> Ticked {
        Ticked {
            linear: (self.at(self.lo)..self.at(self.hi)).into(),
            ticks: self.ticks.iter().map(|t| self.at(*t)).collect(),
        }
    }

    /// A tick's label, from its drawn coordinate.
    fn label(&self, at: f64) -> String {
        let v = if self.log { 10f64.powf(at) } else { at };
        self.fmt.show(v)
    }
}

/// An axis as plotters draws it: linear (a log axis is drawn in log10 units), with the
/// axis's ticks and no lighter grid. (plotters' own `WithKeyPoints` over `f64` cannot take a
/// label formatter.)
struct Ticked {
    linear: RangedCoordf64,
    ticks: Vec<f64>,
}

impl Ranged for Ticked {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.linear.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.linear.range()
    }
}

impl Fmt {
    fn show(&self, v: f64) -> String {
        match self {
            Fmt::Count => fmt_count(v),
            Fmt::Micros => fmt_micros(v),
            Fmt::Plain => fmt_plain(v),
            Fmt::Percentile => fmt_percentile(v),
            Fmt::Names(names) => names
                .get(v.round().max(0.0) as usize)
                .cloned()
                .unwrap_or_default(),
        }
    }
}

/// 1, 2, 2.5 or 5 times a power of ten, at least `raw`.
fn nice_step(raw: f64) -> f64 {
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let nice = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .find(|n| f <= n * 1.0001)
        .unwrap_or(10.0);
    nice * mag
}

/// Rounds to three significant digits, trailing zeros dropped: 1.25, 150, 0.058.
fn fmt_plain(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return "0".into();
    }
    let digits = (2 - v.abs().log10().floor() as i32).clamp(0, 6) as usize;
    let s = format!("{v:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Rounds to three significant digits before picking the unit, so 999.7 reads 1k.
fn round3(v: f64) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return 0.0;
    }
    let scale = 10f64.powi(2 - v.abs().log10().floor() as i32);
    (v * scale).round() / scale
}

/// 950, 15k, 1.2M.
fn fmt_count(v: f64) -> String {
    let v = round3(v);
    match v.abs() {
        a if a >= 1e9 => format!("{}G", fmt_plain(v / 1e9)),
        a if a >= 1e6 => format!("{}M", fmt_plain(v / 1e6)),
        a if a >= 1e3 => format!("{}k", fmt_plain(v / 1e3)),
        _ => fmt_plain(v),
    }
}

/// 350µs, 1.2ms, 2s.
fn fmt_micros(v: f64) -> String {
    let v = round3(v);
    match v.abs() {
        a if a >= 1e6 => format!("{}s", fmt_plain(v / 1e6)),
        a if a >= 1e3 => format!("{}ms", fmt_plain(v / 1e3)),
        _ => format!("{}µs", fmt_plain(v)),
    }
}

/// The spectrum's x, log10(1/(1-p)), as a percentile: 0.301 is 50%, 3 is 99.9%.
fn fmt_percentile(x: f64) -> String {
    let digits = (x.round() as i32 - 2).clamp(0, 6) as usize;
    let p = 100.0 * (1.0 - 10f64.powf(-x));
    let s = format!("{p:.digits$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    format!("{s}%")
}

// ---------------------------------------------------------------------------------------------
// Drawing, on any plotters backend.
// ---------------------------------------------------------------------------------------------

/// The family the bundled font is registered under (what the SVG's text asks for).
const FONT: &str = "sans-serif";
static DEJAVU_SANS: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// Registers the bundled font with plotters once per process.
fn register_font() -> anyhow::Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, DEJAVU_SANS).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(anyhow!(
            "the bundled font assets/fonts/DejaVuSans.ttf is not a font plotters can read"
        ))
    }
}

/// A plotters error as an anyhow one (plotters' errors borrow the backend's type).
fn drawn<T, E: std::fmt::Display>(r: Result<T, E>) -> anyhow::Result<T> {
    r.map_err(|e| anyhow!("plotters: {e}"))
}

/// Draws the chart as SVG and PNG into `dir`; returns the SVG.
fn write_chart(chart: &Chart, colors: &Colors, dir: &Path, stem: &str) -> anyhow::Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        render(&root, chart, colors).context("drawing the SVG")?;
        drawn(root.present())?;
    }
    let mut rgb = vec![0u8; WIDTH as usize * HEIGHT as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (WIDTH, HEIGHT)).into_drawing_area();
        render(&root, chart, colors).context("drawing the PNG")?;
        drawn(root.present())?;
    }
    let png = encode_png(&rgb)?;
    let svg_path = dir.join(format!("{stem}.svg"));
    std::fs::write(&svg_path, &svg)
        .with_context(|| format!("cannot write {}", svg_path.display()))?;
    let png_path = dir.join(format!("{stem}.png"));
    std::fs::write(&png_path, png)
        .with_context(|| format!("cannot write {}", png_path.display()))?;
    Ok(svg)
}

fn encode_png(rgb: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, WIDTH, HEIGHT);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Fast);
    let mut writer = encoder
        .write_header()
        .context("cannot encode the PNG header")?;
    writer
        .write_image_data(rgb)
        .context("cannot encode the PNG image")?;
    writer.finish().context("cannot finish the PNG")?;
    Ok(out)
}

fn font(size: f64) -> TextStyle<'static> {
    (FONT, size).into_font().color(&INK)
}

const LEGEND_ROW: i32 = 22;
const SWATCH: i32 = 30;

fn render<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    chart: &Chart,
    colors: &Colors,
) -> anyhow::Result<()> {
    drawn(root.fill(&RGBColor(255, 255, 255)))?;
    let w = root.dim_in_pixel().0;
    // A long title shrinks rather than overflows.
    let mut size = 20.0;
    while size > 12.0 && drawn(root.estimate_text_size(&chart.title, &font(size)))?.0 + 24 > w {
        size -= 1.0;
    }
    let body = drawn(root.titled(&chart.title, font(size)))?;
    let rows = legend_rows(root, &chart.legend, w as i32 - 40)?;
    let body_h = body.dim_in_pixel().1 as i32;
    // However many entries, the legend leaves the plots most of the height.
    let legend_h = if rows.is_empty() {
        0
    } else {
        (rows.len() as i32 * LEGEND_ROW + 10).min(body_h / 3)
    };
    let (plots, legend) = body.split_vertically(body_h - legend_h);
    draw_legend(&legend, &chart.legend, &rows)?;

    // Panels side by side; a bar panel naming its rows gets their width on top of its share.
    let names_w = chart
        .panels
        .iter()
        .filter_map(|p| match p {
            Panel::Bars(b) if b.names => Some(names_width(root, b)),
            _ => None,
        })
        .next()
        .transpose()?
        .unwrap_or(0);
    let share = (w as i32 - names_w) / chart.panels.len().max(1) as i32;
    let mut rest = plots;
    for (i, panel) in chart.panels.iter().enumerate() {
        let area = if i + 1 == chart.panels.len() {
            rest.clone()
        } else {
            let extra = if matches!(panel, Panel::Bars(b) if b.names) {
                names_w
            } else {
                0
            };
            let (left, right) = rest.split_horizontally(share + extra);
            rest = right;
            left
        };
        match panel {
            Panel::Lines(p) => draw_lines(&area, p, colors)?,
            Panel::Bars(b) => draw_bars(&area, b, names_w)?,
        }
    }
    Ok(())
}

fn names_width<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    bars: &BarPanel,
) -> anyhow::Result<i32> {
    let mut widest = 0;
    for row in &bars.rows {
        widest = widest.max(drawn(root.estimate_text_size(&row.name, &font(13.0)))?.0);
    }
    Ok(widest as i32 + 14)
}

fn draw_lines<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    p: &LinePanel,
    colors: &Colors,
) -> anyhow::Result<()> {
    let mut label_w = 0;
    for t in &p.y.ticks {
        let text = p.y.label(p.y.at(*t));
        label_w = label_w.max(drawn(area.estimate_text_size(&text, &font(13.0)))?.0);
    }
    let mut builder = ChartBuilder::on(area);
    builder
        .margin(8)
        .margin_right(38)
        .x_label_area_size(44)
        .y_label_area_size(label_w as i32 + 34);
    if let Some(title) = &p.title {
        builder.caption(title, font(15.0));
    }
    let mut chart = drawn(builder.build_cartesian_2d(p.x.spec(), p.y.spec()))?;
    let x_label = |v: &f64| p.x.label(*v);
    let y_label = |v: &f64| p.y.label(*v);
    drawn(
        chart
            .configure_mesh()
            .x_label_formatter(&x_label)
            .y_label_formatter(&y_label)
            .x_desc(p.x.desc.as_str())
            .y_desc(p.y.desc.as_str())
            .label_style(font(13.0))
            .axis_desc_style(font(14.0))
            .bold_line_style(GRID)
            .light_line_style(GRID)
            .axis_style(MUTED)
            .draw(),
    )?;
    let plot = chart.plotting_area();
    if let Some((y, text)) = &p.threshold {
        let y = p.y.at(*y);
        let (x0, x1) = (p.x.at(p.x.lo), p.x.at(p.x.hi));
        let style = ShapeStyle::from(&MUTED).stroke_width(1);
        drawn(plot.draw(&DashedPathElement::new(vec![(x0, y), (x1, y)], 6, 4, style)))?;
        let style = font(12.0)
            .color(&MUTED)
            .pos(Pos::new(HPos::Right, VPos::Bottom));
        drawn(plot.draw(&(EmptyElement::at((x1, y)) + Text::new(text.clone(), (-4, -3), style))))?;
    }
    for line in &p.lines {
        let look = line_look(line, colors, p.markers);
        let pts: Vec<(f64, f64)> = line
            .points
            .iter()
            .map(|(x, y, _)| (p.x.at(*x), p.y.at(*y)))
            .collect();
        let style = ShapeStyle::from(&look.color).stroke_width(2);
        match look.dash {
            Dash::Solid => drawn(plot.draw(&PathElement::new(pts.clone(), style)))?,
            Dash::Dashed => drawn(plot.draw(&DashedPathElement::new(pts.clone(), 8, 5, style)))?,
            Dash::Dotted => drawn(plot.draw(&DashedPathElement::new(pts.clone(), 2, 4, style)))?,
        }
        if let Some(marker) = look.marker {
            for (at, (_, _, filled)) in pts.iter().zip(&line.points) {
                draw_marker(plot, *at, marker, look.color, *filled)?;
            }
        }
    }
    Ok(())
}

fn draw_bars<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    b: &BarPanel,
    names_w: i32,
) -> anyhow::Result<()> {
    let n = b.rows.len();
    // Row i is drawn at y = n-1-i, so the first row is on top.
    let y_of = |i: usize| (n - 1 - i) as f64;
    let names: Vec<String> = (0..n).rev().map(|i| b.rows[i].name.clone()).collect();
    let y = Axis::names(names, "");
    let mut builder = ChartBuilder::on(area);
    builder
        .margin(8)
        .margin_right(26)
        .x_label_area_size(44)
        .y_label_area_size(if b.names { names_w } else { 6 });
    if let Some(title) = &b.title {
        builder.caption(title, font(15.0));
    }
    let mut chart = drawn(builder.build_cartesian_2d(b.x.spec(), y.spec()))?;
    let x_label = |v: &f64| b.x.label(*v);
    let y_label = |v: &f64| {
        if b.names {
            y.label(*v)
        } else {
            String::new()
        }
    };
    drawn(
        chart
            .configure_mesh()
            .disable_y_mesh()
            .x_label_formatter(&x_label)
            .y_label_formatter(&y_label)
            .x_desc(b.x.desc.as_str())
            .label_style(font(13.0))
            .axis_desc_style(font(14.0))
            .bold_line_style(GRID)
            .light_line_style(GRID)
            .axis_style(MUTED)
            .draw(),
    )?;
    let plot = chart.plotting_area();
    // Bars at most 36 px thick, however few the rows.
    let px_per_row = f64::from(plot.dim_in_pixel().1) / n.max(1) as f64;
    let half = (18.0 / px_per_row).min(0.36);
    let text_style = font(12.0).pos(Pos::new(HPos::Left, VPos::Center));
    for (i, row) in b.rows.iter().enumerate() {
        let y = y_of(i);
        let mut x = 0.0;
        for (v, color) in &row.segments {
            if *v > 0.0 {
                let rect = Rectangle::new([(x, y - half), (x + v, y + half)], color.filled());
                drawn(plot.draw(&rect))?;
            }
            x += v;
        }
        if let Some((lo, hi)) = row.range {
            let style = ShapeStyle::from(&INK).stroke_width(2);
            let cap = half * 0.5;
            for path in [
                vec![(lo, y), (hi, y)],
                vec![(lo, y - cap), (lo, y + cap)],
                vec![(hi, y - cap), (hi, y + cap)],
            ] {
                drawn(plot.draw(&PathElement::new(path, style)))?;
            }
            x = x.max(hi);
        }
        let style = if row.segments.is_empty() {
            text_style.color(&MUTED)
        } else {
            text_style.clone()
        };
        drawn(plot.draw(&(EmptyElement::at((x, y)) + Text::new(row.text.clone(), (6, 0), style))))?;
    }
    Ok(())
}

fn draw_marker<DB: DrawingBackend, CT: CoordTranslate>(
    area: &DrawingArea<DB, CT>,
    at: CT::From,
    marker: Marker,
    color: RGBColor,
    filled: bool,
) -> anyhow::Result<()>
where
    CT::From: Clone,
{
    let style = if filled {
        color.filled()
    } else {
        ShapeStyle::from(&color).stroke_width(2)
    };
    if !filled {
        // Hollow: white inside, so a line through it does not show.
        drawn(area.draw(&Circle::new(
            at.clone(),
            4,
            RGBColor(255, 255, 255).filled(),
        )))?;
    }
    let r = 4;
    match marker {
        Marker::Circle => drawn(area.draw(&Circle::new(at, r, style))),
        Marker::Triangle => drawn(area.draw(&TriangleMarker::new(at, r + 1, style))),
        Marker::Cross => drawn(area.draw(&Cross::new(at, r, style.stroke_width(2)))),
        Marker::Square => {
            drawn(area.draw(&(EmptyElement::at(at) + Rectangle::new([(-r, -r), (r, r)], style))))
        }
        Marker::Diamond => {
            let d = r + 1;
            let corners = vec![(0, -d), (d, 0), (0, d), (-d, 0)];
            if filled {
                drawn(area.draw(&(EmptyElement::at(at) + Polygon::new(corners, style))))
            } else {
                let mut closed = corners;
                closed.push((0, -d));
                drawn(area.draw(&(EmptyElement::at(at) + PathElement::new(closed, style))))
            }
        }
    }
}

/// The legend's entries laid out in centred rows: each row's entries and their widths.
fn legend_rows<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    entries: &[LegendEntry],
    max_w: i32,
) -> anyhow::Result<Vec<Vec<(usize, i32)>>> {
    const GAP: i32 = 22;
    let mut rows: Vec<Vec<(usize, i32)>> = Vec::new();
    let mut used = 0;
    for (i, e) in entries.iter().enumerate() {
        let w = SWATCH + 6 + drawn(root.estimate_text_size(&e.label, &font(13.0)))?.0 as i32;
        match rows.last_mut() {
            Some(row) if used + GAP + w <= max_w => {
                row.push((i, w));
                used += GAP + w;
            }
            _ => {
                rows.push(vec![(i, w)]);
                used = w;
            }
        }
    }
    Ok(rows)
}

fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[LegendEntry],
    rows: &[Vec<(usize, i32)>],
) -> anyhow::Result<()> {
    const GAP: i32 = 22;
    let w = area.dim_in_pixel().0 as i32;
    let text = font(13.0).pos(Pos::new(HPos::Left, VPos::Center));
    for (r, row) in rows.iter().enumerate() {
        let total: i32 = row.iter().map(|(_, w)| w).sum::<i32>() + GAP * (row.len() as i32 - 1);
        let mut x = (w - total) / 2;
        let y = r as i32 * LEGEND_ROW + LEGEND_ROW / 2;
        for &(i, entry_w) in row {
            let e = &entries[i];
            match &e.swatch {
                Swatch::Fill(c) => drawn(area.draw(&Rectangle::new(
                    [(x + 4, y - 6), (x + SWATCH - 4, y + 6)],
                    c.filled(),
                )))?,
                Swatch::Whisker => {
                    let style = ShapeStyle::from(&INK).stroke_width(2);
                    for path in [
                        vec![(x + 3, y), (x + SWATCH - 3, y)],
                        vec![(x + 3, y - 5), (x + 3, y + 5)],
                        vec![(x + SWATCH - 3, y - 5), (x + SWATCH - 3, y + 5)],
                    ] {
                        drawn(area.draw(&PathElement::new(path, style)))?;
                    }
                }
                Swatch::Line(look) => {
                    let style = ShapeStyle::from(&look.color).stroke_width(2);
                    let path = vec![(x, y), (x + SWATCH, y)];
                    match look.dash {
                        Dash::Solid => drawn(area.draw(&PathElement::new(path, style)))?,
                        Dash::Dashed => {
                            drawn(area.draw(&DashedPathElement::new(path, 8, 5, style)))?
                        }
                        Dash::Dotted => {
                            drawn(area.draw(&DashedPathElement::new(path, 2, 4, style)))?
                        }
                    }
                    if let Some(m) = look.marker {
                        draw_marker(area, (x + SWATCH / 2, y), m, look.color, true)?;
                    }
                }
            }
            drawn(area.draw_text(&e.label, &text, (x + SWATCH + 6, y)))?;
            x += entry_w + GAP;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_like_a_person_writes_them() {
        assert_eq!(fmt_count(150_000.0), "150k");
        assert_eq!(fmt_count(165_758.0), "166k");
        assert_eq!(fmt_count(999.7), "1k");
        assert_eq!(fmt_count(1_250_000.0), "1.25M");
        assert_eq!(fmt_count(0.0), "0");
        assert_eq!(fmt_micros(376.0), "376µs");
        assert_eq!(fmt_micros(1200.0), "1.2ms");
        assert_eq!(fmt_micros(2_000_000.0), "2s");
        assert_eq!(fmt_plain(0.0583), "0.0583");
        assert_eq!(fmt_plain(0.1 * 3.0), "0.3");
        assert_eq!(fmt_percentile(2f64.log10()), "50%");
        assert_eq!(fmt_percentile(1.0), "90%");
        assert_eq!(fmt_percentile(3.0), "99.9%");
        assert_eq!(fmt_percentile(5.0), "99.999%");
    }

    #[test]
    fn log_axis_has_ticks_inside_a_narrow_range() {
        // No power of ten lies between 350 and 700: the ticks must not be empty.
        let axis = Axis::log(350.0, 700.0, Fmt::Micros, "p99");
        assert!(axis.lo <= 350.0 && axis.hi >= 700.0);
        assert!(axis.ticks.len() >= 3, "{:?}", axis.ticks);
        let wide = Axis::log(92.0, 10_759.0, Fmt::Micros, "p99");
        assert!(wide.ticks.contains(&100.0) && wide.ticks.contains(&10_000.0));
    }

    #[test]
    fn sweep_axis_turns_logarithmic_past_twenty_fold() {
        assert!(Axis::of_values(&[1.0, 10.0, 100.0], Fmt::Count, "connections").log);
        assert!(!Axis::of_values(&[10.0, 50.0, 100.0], Fmt::Count, "connections").log);
        assert!(!Axis::of_values(&[0.0, 20.0, 200.0], Fmt::Count, "work_us").log);
    }

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

    #[test]
    fn reads_the_p99_objective() {
        assert_eq!(p99_objective("p99<=1ms"), Some(1000.0));
        assert_eq!(p99_objective("p99 <= 250us"), Some(250.0));
        assert_eq!(p99_objective("p99=5ms"), Some(5000.0));
        assert_eq!(p99_objective("p50<=1ms"), None);
    }
}
