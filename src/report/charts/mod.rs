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
//! built from the runs), then how any chart is drawn on any plotters backend. The first half
//! is `chart` (the data types), `data` (the runs and series every kind shares) and one file
//! per kind of chart; the second is `draw`, with `axes` (ranges, ticks, numbers) and `style`
//! (colours, lines, the font) serving both.

mod axes;
mod chart;
mod data;
mod draw;
mod latency_vs_throughput;
mod mechanism;
mod spectrum;
mod style;
mod sweep;
mod throughput;
mod timeseries;
#[cfg(test)]
mod values;

use std::path::Path;

use anyhow::Context;
use plotters::backend::{BitMapBackend, SVGBackend};
use plotters::drawing::IntoDrawingArea;

use self::chart::Chart;
use self::data::Selection;
use self::draw::{drawn, render};
use self::style::{register_font, Colors};
use crate::result::ResultFile;

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

/// The charts one result file supports, in their fixed order.
fn charts_of(file: &ResultFile, colors: &Colors) -> anyhow::Result<Vec<Chart>> {
    let plain = Selection::plain(file);
    let mut out = Vec::new();
    out.extend(throughput::throughput(file, &plain, colors));
    out.extend(spectrum::spectrum(file, &plain, colors)?);
    out.extend(mechanism::mechanism(file, &plain, colors));
    out.extend(sweep::sweep(file, colors));
    out.extend(latency_vs_throughput::latency_vs_throughput(file, colors));
    out.extend(timeseries::timeseries(file, colors));
    if file.runs.iter().any(|r| r.failure.is_some()) {
        for chart in &mut out {
            let caption = chart.caption.trim_end_matches('.');
            chart.caption = format!("{caption}; runs that failed are left out.");
        }
    }
    Ok(out)
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
