//! iomodels: one server per classic I/O concurrency model, one load generator, and the
//! accounting that says what each model costs.
//!
//! The binary `bench` (src/main.rs) only parses the command line ([`cli`]) and calls
//! [`app::execute`]. Everything else lives here so that tests can drive it in-process. The
//! modules, from the top down; each imports only modules below it in this list (a line with
//! several imports none of the others on it):
//!
//! - [`app`]: one function per command;
//! - [`cli`]: the command line (the only module that knows clap), scenario files
//!   (`bench run --scenario FILE`), and the settings each command runs with;
//! - [`run`]: `bench run`, which starts servers as child processes and measures them;
//! - [`compare`]: `bench compare` and its verdict;
//! - [`report`]: the printed table, the Markdown/HTML report and its charts;
//! - [`output`]: the console, how figures are written, the progress line, the warnings' lines;
//! - [`result`]: the result file (the JSON contract): its types, reading, the one atomic
//!   writer, a run made from a measured outcome, typed warnings;
//! - [`load`]: the load generator; [`serve`]: `bench serve`, a model behind a listener with a
//!   ready line and counters;
//! - [`models`]: the model contract, the parts models share, one module per model;
//! - [`protocol`]: the wire protocols and the shared request handler (`--work-us`,
//!   `--block-us`); [`metrics`]: latency histograms, process accounting, system-call counters;
//! - [`units`]: CPU lists, durations, sizes, rates;
//! - [`sys`]: the raw system calls (CPU affinity, signals, rusage, poll, select, eventfd) and
//!   the guarded child process; [`hooks`]: every `IOMODELS_*` variable; [`error`]: the errors
//!   that pick the exit code.
//!
//! Output goes through [`output::console`] (`out!`, `outln!`, `errln!`), never `println!`:
//! a reader that goes away must end `bench` quietly, not panic it.

#![warn(clippy::print_stdout)]

pub mod app;
pub mod cli;
pub mod compare;
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
pub mod units;

pub use error::Error;
