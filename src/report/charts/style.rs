//! How the charts look: each model's colour, the lines' dashes and markers, and the bundled
//! font.

use std::sync::OnceLock;

use anyhow::anyhow;
use plotters::style::{Color, FontStyle, HSLColor, IntoFont, RGBColor, TextStyle};

use super::chart::{Dash, LegendEntry, Line, LineLook, Marker, Swatch};
use crate::output::format::label;
use crate::result::ResultFile;

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
pub(super) const CALL_COLORS: [RGBColor; 6] = [
    RGBColor(102, 194, 165),
    RGBColor(252, 141, 98),
    RGBColor(141, 160, 203),
    RGBColor(231, 138, 195),
    RGBColor(166, 216, 84),
    RGBColor(229, 196, 148),
];
pub(super) const OTHER_COLOR: RGBColor = RGBColor(190, 190, 190);
pub(super) const INK: RGBColor = RGBColor(40, 40, 40);
pub(super) const GRID: RGBColor = RGBColor(228, 228, 228);
pub(super) const MUTED: RGBColor = RGBColor(120, 120, 120);

/// A colour per model, from its position among every model the files hold.
pub(super) struct Colors {
    models: Vec<String>,
}

impl Colors {
    pub(super) fn new(files: &[ResultFile]) -> Self {
        let mut models: Vec<String> = Vec::new();
        for run in files.iter().flat_map(|f| f.runs.iter()) {
            let name = label(run);
            if !models.contains(&name) {
                models.push(name);
            }
        }
        Colors { models }
    }

    pub(super) fn of(&self, model: &str) -> RGBColor {
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

pub(super) fn line_look(line: &Line, colors: &Colors, markers: bool) -> LineLook {
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

pub(super) fn line_legend(lines: &[Line], colors: &Colors, markers: bool) -> Vec<LegendEntry> {
    lines
        .iter()
        .map(|l| LegendEntry {
            label: l.name.clone(),
            swatch: Swatch::Line(line_look(l, colors, markers)),
        })
        .collect()
}

/// The family the bundled font is registered under (what the SVG's text asks for).
const FONT: &str = "sans-serif";
static DEJAVU_SANS: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");

/// Registers the bundled font with plotters once per process.
pub(super) fn register_font() -> anyhow::Result<()> {
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

pub(super) fn font(size: f64) -> TextStyle<'static> {
    (FONT, size).into_font().color(&INK)
}
