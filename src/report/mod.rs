//! What the harness shows a person: the printed table, the Markdown and HTML report with its
//! charts, findings and verdicts. It reads results only through [`crate::result`].
//!
//! - [`document`]: the report as a whole (report.md, index.html, charts/);
//! - [`verdict`]: a claim scenario's expectations judged against its figures;
//! - [`findings`]: per point, who led on what, past the run-to-run spread;
//! - [`spread`]: how far apart figures must be, measured or from the A/A runs;
//! - [`charts`], [`table`]: the pictures and the tables.

pub mod charts;
pub mod docs;
pub mod document;
pub mod findings;
pub mod spread;
pub mod table;
pub mod verdict;
