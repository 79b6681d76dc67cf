//! What the harness writes: the result file (a versioned JSON contract) and the printed table.

pub mod charts;
pub mod document;
pub mod env;
pub mod findings;
pub mod result;
pub mod table;
pub mod warning;

pub use result::{ResultFile, Run, ServerCosts};
