//! The machinery several models share, named as such: the listeners, the reply backlog of the
//! non-blocking loops, the edge-triggered mio loop, the level-triggered poll/select loop, the blocking models' connection threads, the
//! idle sweep. A part depends on the contract and on other parts, never on a model.

pub(crate) mod backlog;
pub(crate) mod conns;
pub mod idle;
#[cfg(unix)]
pub(crate) mod level_loop;
pub mod listener;
pub(crate) mod mio_loop;

use std::io;

/// Stops a model's threads together: every one is asked first (`signal`), then each is
/// joined (`join`); the first error wins.
pub(crate) fn stop_all<T>(
    threads: Vec<T>,
    signal: impl Fn(&T) -> io::Result<()>,
    mut join: impl FnMut(T) -> io::Result<()>,
) -> io::Result<()> {
    let mut first_error = None;
    for t in &threads {
        if let Err(e) = signal(t) {
            first_error.get_or_insert(e);
        }
    }
    for t in threads {
        if let Err(e) = join(t) {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}
