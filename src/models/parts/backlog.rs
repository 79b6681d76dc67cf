//! A connection's reply backlog in the non-blocking loops (`mio_loop`, `level_loop`,
//! `reactor-pool`): the replies the socket has not taken yet, written on from where the last
//! write stopped.
//!
//! A backlog written completely is emptied (its buffer kept for the next replies); one left
//! waiting drops its written prefix once that is half the buffer, so that a slow reader's
//! backlog does not keep every byte ever sent.

use std::io::{self, Write};

/// Reply bytes not yet written: `out` from `written` on.
#[derive(Debug, Default)]
pub(crate) struct Backlog {
    out: Vec<u8>,
    written: usize,
}

impl Backlog {
    /// Reply bytes not yet written.
    pub(crate) fn pending(&self) -> usize {
        self.out.len() - self.written
    }

    /// The buffer replies are appended to (behind those not yet written).
    pub(crate) fn buf(&mut self) -> &mut Vec<u8> {
        &mut self.out
    }

    /// For a backlog with nothing pending: `replies` becomes the backlog, and the old buffer
    /// comes back empty, for reuse.
    pub(crate) fn swap_in(&mut self, replies: Vec<u8>) -> Vec<u8> {
        debug_assert_eq!(self.pending(), 0);
        self.out.clear();
        self.written = 0;
        std::mem::replace(&mut self.out, replies)
    }

    /// Writes the backlog as far as the socket takes it; `false` on a write error (the
    /// connection is finished).
    pub(crate) fn flush(&mut self, stream: &mut impl Write) -> bool {
        while self.written < self.out.len() {
            match stream.write(&self.out[self.written..]) {
                Ok(0) => return false,
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.compact();
                    return true;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        self.out.clear();
        self.written = 0;
        true
    }

    /// Drops the written prefix once it is at least half the buffer.
    fn compact(&mut self) {
        if self.written > 0 && self.written >= self.out.len() / 2 {
            self.out.drain(..self.written);
            self.written = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Backlog;

    #[test]
    fn compact_drops_the_written_prefix_once_it_is_half_the_backlog() {
        let mut b = Backlog {
            out: b"abcdef".to_vec(),
            written: 2,
        };
        b.compact();
        assert_eq!(
            (b.out.as_slice(), b.written),
            (&b"abcdef"[..], 2),
            "a third written: kept"
        );
        b.written = 3;
        b.compact();
        assert_eq!(
            (b.out.as_slice(), b.written),
            (&b"def"[..], 0),
            "half written: dropped"
        );
        b.compact();
        assert_eq!(b.out, b"def", "nothing written: nothing to drop");
    }
}
