//! Charts of a report (placeholder until the plotters charts land: draws none).

use crate::report::result::ResultFile;

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

/// Draws every chart the results support into `dir`.
pub fn draw_all(_files: &[ResultFile], _dir: &std::path::Path) -> anyhow::Result<Vec<ChartFile>> {
    Ok(Vec::new())
}
