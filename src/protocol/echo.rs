//! TCP echo: every byte received goes back, in order.
//!
//! A request is `message_size` bytes when the client's message size is known (`bench run` passes
//! `--payload` to the server); the handler's cost is charged when a request's last byte arrives,
//! before that byte is echoed, so the cost is inside the client's measured round trip.

use super::{Cost, Flow};

#[derive(Debug)]
pub struct EchoSession {
    message_size: Option<usize>,
    /// Bytes of the current request received so far.
    filled: usize,
    /// Requests completed so far.
    completed: u64,
    cost: Cost,
}

impl EchoSession {
    pub fn new(message_size: Option<usize>, cost: Cost) -> Self {
        EchoSession {
            message_size: message_size.filter(|&n| n > 0),
            filled: 0,
            completed: 0,
            cost,
        }
    }

    #[inline]
    pub fn on_data(&mut self, input: &[u8], out: &mut Vec<u8>) -> Flow {
        let flow = self.consume(input);
        out.extend_from_slice(input);
        flow
    }

    /// Counts the requests `input` completes and charges the handler's cost for them; the
    /// echo of `input` is `input` itself.
    #[inline]
    pub fn consume(&mut self, input: &[u8]) -> Flow {
        let requests = self.requests_completed(input.len());
        self.completed += requests as u64;
        if !self.cost.is_free() {
            self.cost.charge(requests);
        }
        Flow::Continue
    }

    /// Requests completed so far.
    #[inline]
    pub fn completed(&self) -> u64 {
        self.completed
    }

    /// How many requests the next `len` bytes complete (one per read without a message size).
    #[inline]
    fn requests_completed(&mut self, len: usize) -> usize {
        match self.message_size {
            Some(size) => {
                let total = self.filled + len;
                // The usual reads (one whole message, or part of one): no division.
                if total == size {
                    self.filled = 0;
                    return 1;
                }
                if total < size {
                    self.filled = total;
                    return 0;
                }
                self.filled = total % size;
                total / size
            }
            None => 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoes_every_byte_in_order() {
        let mut s = EchoSession::new(Some(4), Cost::default());
        let mut out = Vec::new();
        s.on_data(b"ab", &mut out);
        s.on_data(b"cdefg", &mut out);
        assert_eq!(out, b"abcdefg");
    }

    #[test]
    fn counts_requests_across_reads() {
        let mut s = EchoSession::new(Some(4), Cost::default());
        assert_eq!(s.requests_completed(3), 0);
        assert_eq!(s.requests_completed(8), 2); // completes 1, then 1 more, 3 bytes into a third
        assert_eq!(s.filled, 3);
        assert_eq!(s.requests_completed(1), 1);
        assert_eq!(s.requests_completed(12), 3);
        assert_eq!(s.filled, 0);
    }

    #[test]
    fn counts_completed_requests_whatever_the_cost() {
        let mut s = EchoSession::new(Some(4), Cost::default());
        let mut out = Vec::new();
        s.on_data(b"abc", &mut out);
        assert_eq!(s.completed(), 0, "a request a byte short");
        s.on_data(b"defghijkl", &mut out);
        assert_eq!(s.completed(), 3);
        let mut s = EchoSession::new(None, Cost::default());
        s.on_data(b"a", &mut out);
        s.consume(b"b");
        assert_eq!(s.completed(), 2, "without a message size every read counts");
    }

    #[test]
    fn without_a_message_size_each_read_is_a_request() {
        let mut s = EchoSession::new(None, Cost::default());
        assert_eq!(s.requests_completed(3), 1);
        assert_eq!(s.requests_completed(100_000), 1);
    }
}
