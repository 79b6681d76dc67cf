//! What `bench` says while it works, beside the result file: the console (stdout and stderr,
//! quiet when their reader has gone), how figures are written for a person, the live progress
//! line of a pass, and the warnings under `bench run`'s table, one line per kind.

pub mod console;
pub mod format;
pub mod progress;
pub mod warnings;
