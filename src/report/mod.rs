//! What the harness shows a person: the printed table, the Markdown and HTML report with its
//! charts and findings. It reads results only through [`crate::result`].

pub mod charts;
pub mod docs;
pub mod document;
pub mod findings;
pub mod table;
