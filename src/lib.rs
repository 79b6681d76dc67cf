//! iomodels: one server per classic I/O concurrency model, one load generator, and the
//! accounting that says what each model costs.
//!
//! The binary `bench` (src/main.rs) only parses the command line ([`cli`]) and calls
//! [`app::execute`].
//! Everything else lives here so that tests can drive it in-process:
//!
//! - [`models`]: the model contract and one file per model;
//! - [`protocol`]: the wire protocols and the shared request handler (`--work-us`, `--block-us`);
//! - [`serve`]: `bench serve`, a model behind a listener with a ready line and counters;
//! - [`load`]: the load generator;
//! - [`run`]: `bench run`, which starts servers as child processes and measures them;
//! - [`cli`]: the command line, scenario files (`bench run --scenario FILE`), and the settings
//!   each command runs with;
//! - [`metrics`]: latency histograms, process accounting;
//! - [`sys`]: the raw system calls (CPU affinity, signals, rusage, poll, select, eventfd);
//! - [`result`]: the result file (the JSON contract): its types, reading and writing;
//! - [`report`]: the printed table, the Markdown/HTML report and its charts.
//!
//! Output goes through [`output::console`] (`out!`, `outln!`, `errln!`), never `println!`:
//! a reader that goes away must end `bench` quietly, not panic it.

#![warn(clippy::print_stdout)]

pub mod app;
pub mod cli;
pub mod compare;
pub mod config;
pub mod error;
pub mod hooks;
pub mod load;
pub mod metrics;
pub mod models;
pub mod output;
pub mod protocol;
pub mod report;
pub mod result;
pub mod run;
pub mod serve;
pub mod sys;

pub use error::Error;
