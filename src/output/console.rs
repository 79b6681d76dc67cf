//! Everything `bench` prints on stdout goes through [`print`] (the [`out!`](crate::out) and
//! [`outln!`](crate::outln) macros), so that a reader that goes away (`bench models | head -1`)
//! ends the output quietly instead of panicking as `println!` does.
//!
//! Why not restore SIGPIPE's default action, as ripgrep does: `bench` relies on SIGPIPE being
//! ignored (Rust's default). `bench run` and `bench load` write into pipes to their children
//! (the release byte of a held server, the lines to `load-part` processes) and take a write
//! error as "the child is gone", which they report; with SIGPIPE's default action such a
//! write would kill `bench run` silently, with no result file and no message. Sockets would
//! be safe either way (std's `write` on a socket sends with MSG_NOSIGNAL, as does the io_uring
//! model), but those pipes are not.
//!
//! So SIGPIPE stays ignored and a broken stdout is handled here: the first write that fails
//! with EPIPE turns the rest of stdout into a no-op, and the command carries on and exits
//! with its own code. A `bench run` whose reader left still stops its servers and writes its
//! result file and report (exiting at once would skip both). Any other write error is said
//! once on stderr, and the rest of stdout is dropped too.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// Raised by the first write to stdout that fails: nothing more is written there.
static CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes `args` to stdout and flushes; after a failed write, does nothing.
pub fn print(args: std::fmt::Arguments<'_>) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush()) {
        CLOSED.store(true, Ordering::Relaxed);
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("warning: cannot write to stdout ({e}): the rest of its output is dropped");
        }
    }
}

/// `print!` to stdout, quiet when the reader has gone (see [`crate::output::console`]).
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::console::print(format_args!($($arg)*))
    };
}

/// `println!` to stdout, quiet when the reader has gone (see [`crate::output::console`]).
#[macro_export]
macro_rules! outln {
    () => {
        $crate::output::console::print(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::output::console::print(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// Writes `args` to stderr; a stderr that is gone (`bench run 2>&1 | head -1`) is ignored, as
/// there is nowhere left to say anything.
pub fn print_err(args: std::fmt::Arguments<'_>) {
    let _ = std::io::stderr().lock().write_fmt(args);
}

/// `eprintln!`, quiet when stderr's reader has gone (see [`crate::output::console`]).
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::output::console::print_err(format_args!("{}\n", format_args!($($arg)*)))
    };
}
