//! Request-reply command protocols, server side: Redis's RESP (`--workload resp`) and
//! memcached's text protocol (`--workload memcache`), each with one preset key, so that the
//! exhibits and the real servers (Redis, memcached) are compared on the same bytes.
//!
//! The key is [`KEY`](super::preset::KEY); its value is [`value`](super::preset::value) of the
//! run's payload size, the same bytes the load
//! generator expects. The exhibits do not store anything: a `GET` of the key answers the value
//! and a `SET` is acknowledged and dropped (the load generator sets the key once before the run,
//! for the real servers' sake). Requests are parsed as they arrive, pipelined or cut anywhere;
//! an unfinished one waits in the session's buffer (at most [`MAX_REQUEST`] bytes: past it,
//! an error and close). As HTTP's session does, a call stops answering at
//! [`REPLY_BATCH`](super::REPLY_BATCH) bytes and holds the rest
//! ([`unanswered`](CommandSession::unanswered)). The handler's cost is charged once per
//! command.

use std::sync::Arc;

use super::preset::{Dialect, Parsed, MAX_REQUEST};
use super::{memcache, resp, Cost, Flow};

#[derive(Debug)]
pub struct CommandSession {
    dialect: Dialect,
    /// The preset key's value.
    value: Arc<[u8]>,
    /// Bytes of an unfinished request, or of requests held past the reply batch.
    pending: Vec<u8>,
    held: bool,
    closed: bool,
    completed: u64,
    cost: Cost,
}

impl CommandSession {
    pub fn new(dialect: Dialect, value: Arc<[u8]>, cost: Cost) -> CommandSession {
        CommandSession {
            dialect,
            value,
            pending: Vec::new(),
            held: false,
            closed: false,
            completed: 0,
            cost,
        }
    }

    /// Requests answered so far.
    pub fn completed(&self) -> u64 {
        self.completed
    }

    /// Whether the last call stopped at the reply batch with requests left.
    pub fn unanswered(&self) -> bool {
        self.held
    }

    /// Consumes `input`, appending a reply per complete request to `out` (at most about
    /// [`REPLY_BATCH`](super::REPLY_BATCH) bytes per call).
    pub fn on_data(&mut self, input: &[u8], out: &mut Vec<u8>) -> Flow {
        self.held = false;
        if self.closed {
            return Flow::Close;
        }
        let flow = if self.pending.is_empty() {
            let (used, flow) = self.process(input, out);
            if flow == Flow::Continue {
                self.pending.extend_from_slice(&input[used..]);
            }
            flow
        } else {
            let mut pending = std::mem::take(&mut self.pending);
            pending.extend_from_slice(input);
            let (used, flow) = self.process(&pending, out);
            pending.drain(..used);
            self.pending = pending;
            flow
        };
        if flow == Flow::Close {
            self.closed = true;
            self.pending.clear();
        }
        flow
    }

    /// Answers every complete request in `buf`; returns the bytes used and whether to close.
    fn process(&mut self, buf: &[u8], out: &mut Vec<u8>) -> (usize, Flow) {
        let mut pos = 0;
        let batch_end = out.len() + super::REPLY_BATCH;
        while pos < buf.len() {
            if out.len() >= batch_end {
                self.held = true;
                return (pos, Flow::Continue);
            }
            let rest = &buf[pos..];
            let parsed = match self.dialect {
                Dialect::Resp => resp::answer(rest, &self.value, out),
                Dialect::Memcache => memcache::answer(rest, &self.value, out),
            };
            match parsed {
                Parsed::Incomplete if rest.len() > MAX_REQUEST => {
                    match self.dialect {
                        Dialect::Resp => out.extend_from_slice(b"-ERR request too long\r\n"),
                        Dialect::Memcache => {
                            out.extend_from_slice(b"CLIENT_ERROR request too long\r\n")
                        }
                    }
                    return (buf.len(), Flow::Close);
                }
                Parsed::Incomplete => return (pos, Flow::Continue),
                Parsed::Answered { used, close } => {
                    self.cost.charge(1);
                    self.completed += 1;
                    if close {
                        return (buf.len(), Flow::Close);
                    }
                    pos += used;
                }
                Parsed::Skipped { used } => pos += used,
            }
        }
        (pos, Flow::Continue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::protocol::preset::value;

    fn session(dialect: Dialect) -> CommandSession {
        CommandSession::new(dialect, value(5).into(), Cost::default())
    }

    #[test]
    fn pipelined_requests_cut_anywhere_get_their_replies_in_order() {
        let requests = b"*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$8\r\niomodels\r\nPING\r\n";
        let want = b"+PONG\r\n$5\r\nabcde\r\n+PONG\r\n";
        for cut in 0..requests.len() {
            let mut s = session(Dialect::Resp);
            let mut out = Vec::new();
            assert_eq!(s.on_data(&requests[..cut], &mut out), Flow::Continue);
            assert_eq!(s.on_data(&requests[cut..], &mut out), Flow::Continue);
            assert_eq!(out, want, "cut at {cut}");
            assert_eq!(s.completed(), 3);
        }
    }

    #[test]
    fn replies_stop_at_the_batch_and_the_rest_is_held() {
        let mut s = session(Dialect::Memcache);
        let many = b"get iomodels\r\n".repeat(4000);
        let mut out = Vec::new();
        s.on_data(&many, &mut out);
        assert!(s.unanswered());
        assert!(
            out.len() < crate::protocol::REPLY_BATCH + 64,
            "{}",
            out.len()
        );
        while s.unanswered() {
            s.on_data(&[], &mut out);
        }
        assert_eq!(s.completed(), 4000);
    }

    #[test]
    fn an_endless_request_is_refused_and_closed() {
        let mut s = session(Dialect::Memcache);
        let mut out = Vec::new();
        let long = vec![b'x'; MAX_REQUEST + 10];
        assert_eq!(s.on_data(&long, &mut out), Flow::Close);
        assert!(out.starts_with(b"CLIENT_ERROR"));
        assert_eq!(s.on_data(b"get iomodels\r\n", &mut out), Flow::Close);
    }
}
