//! Drawing a chart on any plotters backend: the title, the panels side by side, the legend.

use anyhow::anyhow;
use plotters::backend::DrawingBackend;
use plotters::chart::ChartBuilder;
use plotters::coord::{CoordTranslate, Shift};
use plotters::drawing::DrawingArea;
use plotters::element::{
    Circle, Cross, DashedPathElement, EmptyElement, PathElement, Polygon, Rectangle, Text,
    TriangleMarker,
};
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{Color, RGBColor, ShapeStyle};

use super::axes::Axis;
use super::chart::{BarPanel, Chart, LegendEntry, LinePanel, Panel, Swatch};
use super::chart::{Dash, Marker};
use super::style::{font, line_look, Colors, GRID, INK, MUTED};

/// A plotters error as an anyhow one (plotters' errors borrow the backend's type).
pub(super) fn drawn<T, E: std::fmt::Display>(r: Result<T, E>) -> anyhow::Result<T> {
    r.map_err(|e| anyhow!("plotters: {e}"))
}

const LEGEND_ROW: i32 = 22;
const SWATCH: i32 = 30;

pub(super) fn render<DB: DrawingBackend>(
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
