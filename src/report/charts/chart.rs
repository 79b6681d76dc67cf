//! A chart as data: what the per-kind files build and `draw` draws.

use plotters::style::RGBColor;

use super::axes::Axis;

/// A chart as data: panels side by side under a title, a legend below them.
pub(super) struct Chart {
    pub(super) stem: &'static str,
    pub(super) title: String,
    pub(super) caption: String,
    pub(super) panels: Vec<Panel>,
    pub(super) legend: Vec<LegendEntry>,
}

pub(super) enum Panel {
    Lines(LinePanel),
    Bars(BarPanel),
}

pub(super) struct LinePanel {
    pub(super) title: Option<String>,
    pub(super) x: Axis,
    pub(super) y: Axis,
    pub(super) lines: Vec<Line>,
    /// Marks every point (lines of few points); the spectrum's dense lines go without.
    pub(super) markers: bool,
    /// A horizontal reference line and its label (an SLO objective).
    pub(super) threshold: Option<(f64, String)>,
}

/// One series: a model, or a model at one combination of a sweep's other values.
pub(super) struct Line {
    pub(super) name: String,
    pub(super) model: String,
    /// Which combination of a sweep's other values: picks the dash and the marker.
    pub(super) variant: usize,
    /// The open loop's uncorrected latency (from each request's send): dashed and lighter.
    pub(super) sent: bool,
    /// (x, y, whether the point's marker is filled: hollow for an SLO probe that missed).
    pub(super) points: Vec<(f64, f64, bool)>,
}

/// Horizontal bars, one row per model, the value along x.
pub(super) struct BarPanel {
    pub(super) title: Option<String>,
    pub(super) x: Axis,
    pub(super) rows: Vec<BarRow>,
    /// Writes the rows' names on the y axis (the first panel of a row of panels only).
    pub(super) names: bool,
}

pub(super) struct BarRow {
    pub(super) name: String,
    /// Stacked from zero; none when the row's data was not counted.
    pub(super) segments: Vec<(f64, RGBColor)>,
    /// The whisker: lowest and highest repeat.
    pub(super) range: Option<(f64, f64)>,
    /// The figure written at the bar's end.
    pub(super) text: String,
}

pub(super) struct LegendEntry {
    pub(super) label: String,
    pub(super) swatch: Swatch,
}

pub(super) enum Swatch {
    Fill(RGBColor),
    Line(LineLook),
    Whisker,
}

/// How a line is drawn.
#[derive(Clone, Copy)]
pub(super) struct LineLook {
    pub(super) color: RGBColor,
    pub(super) dash: Dash,
    pub(super) marker: Option<Marker>,
}

#[derive(Clone, Copy, PartialEq)]
pub(super) enum Dash {
    Solid,
    Dashed,
    Dotted,
}

#[derive(Clone, Copy)]
pub(super) enum Marker {
    Circle,
    Triangle,
    Square,
    Diamond,
    Cross,
}
