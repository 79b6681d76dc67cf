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
    cost: Cost,
}

impl EchoSession {
    pub fn new(message_size: Option<usize>, cost: Cost) -> Self {
        EchoSession {
            message_size: message_size.filter(|&n| n > 0),
            filled: 0,
            cost,
        }
    }

    #[inline]
    pub fn on_data(&mut self, input: &[u8], out: &mut Vec<u8>) -> Flow {
        if !self.cost.is_free() {
            let requests = match self.message_size {
                Some(size) => {
                    let total = self.filled + input.len();
                    self.filled = total % size;
                    total / size
                }
                None => 1,
            };
            self.cost.charge(requests);
        }
        out.extend_from_slice(input);
        Flow::Continue
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
        let mut s = EchoSession::new(Some(4), Cost::new(0, 1));
        let mut out = Vec::new();
        let start = std::time::Instant::now();
        s.on_data(b"abc", &mut out); // 0 requests complete
        s.on_data(b"defghijk", &mut out); // 2 complete, 3 bytes into the next
        assert_eq!(s.filled, 3);
        assert!(start.elapsed() >= std::time::Duration::from_micros(2));
    }
}
