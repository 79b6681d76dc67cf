//! The throughput chart: one bar per model, the whisker spanning its repeats.

use plotters::style::RGBColor;

use super::axes::{fmt_count, Axis, Fmt};
use super::chart::{BarPanel, BarRow, Chart, LegendEntry, Panel, Swatch};
use super::data::{context, groups, Selection};
use super::style::Colors;
use crate::metrics::stats::median;
use crate::result::ResultFile;

fn repeats_text(n: usize) -> String {
    if n > 1 {
        format!("the median of {n} repeats")
    } else {
        "one run".to_string()
    }
}

pub(super) fn throughput(file: &ResultFile, sel: &Selection, colors: &Colors) -> Option<Chart> {
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
