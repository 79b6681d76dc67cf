//! What `bench` says while it works, beside the result file: the console (stdout and stderr,
//! quiet when their reader has gone), the live progress line of a pass, and the warnings under
//! `bench run`'s table, one line per kind.

pub mod console;
pub mod progress;
pub mod warnings;
