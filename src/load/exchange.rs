//! The request/response exchange on one connection: what a connection sends (echo bytes cut
//! from a pattern, or the same HTTP request), and [`step`], which writes what is left of a
//! batch and reads and checks its answers as far as the socket allows.
//!
//! - Echo: a request is `payload` bytes; the bytes of request `n` are a window into a
//!   period-251 pattern starting at an offset that depends on the connection and on `n`, so a
//!   server that returns stale, shifted or another connection's bytes is caught.
//! - HTTP: the same GET each time; every response is parsed and checked (`http.rs`).

use std::io::{self, Read, Write};
use std::sync::Arc;

use super::conn::Conn;
use super::http::{parse_response, HttpCheck};
use super::part::kind;
use crate::sys::SHORT_READ_DRAINS;

pub(super) const PERIOD: usize = 251;

/// The bytes requests are cut from: `payload + PERIOD` bytes of a period-251 sequence.
pub(super) fn pattern(payload: usize) -> Vec<u8> {
    (0..payload + PERIOD).map(|i| (i % PERIOD) as u8).collect()
}

/// What a connection sends and how the answers are checked.
#[derive(Clone)]
pub(super) enum Exchange {
    /// Requests of `payload` bytes cut from `pattern`; each answer is the request itself.
    Echo { payload: usize, pattern: Arc<[u8]> },
    /// The same HTTP request each time.
    Http(Arc<HttpCheck>),
    /// A command workload (`resp`, `memcache`): `batch` is the request `pipeline` times,
    /// `replies` its answer as many times, each `reply` bytes long, checked byte for byte.
    Fixed {
        batch: Arc<[u8]>,
        replies: Arc<[u8]>,
        reply: usize,
    },
}

/// What one call of [`step`] did to a connection.
#[derive(Default)]
pub(super) struct Progress {
    /// Answers taken and checked, and their bytes.
    pub(super) answers: usize,
    pub(super) bytes: u64,
    /// Answers with a status outside 2xx-3xx, and with a body that differs.
    pub(super) bad_status: usize,
    pub(super) bad_body: usize,
}

/// Where [`step`] left a connection.
pub(super) enum Outcome {
    /// It waits for the socket.
    Blocked,
    /// Every answer of the batch is in.
    BatchDone,
    /// It failed: count this kind (with the OS's words when there are some) and reconnect.
    Failed(&'static str, Option<io::Error>),
}

/// Writes what is left of the connection's batch, then (when `may_read`) reads and checks
/// answers until the socket has nothing more or the batch is answered.
pub(super) fn step(
    c: &mut Conn,
    exchange: &Exchange,
    pipeline: usize,
    scratch: &mut [u8],
    may_read: bool,
    peer_closed: bool,
    progress: &mut Progress,
) -> Outcome {
    let Some(stream) = c.stream.as_mut() else {
        return Outcome::Blocked;
    };
    if !c.in_flight {
        return Outcome::Blocked;
    }
    let request: &[u8] = match exchange {
        Exchange::Echo { .. } if pipeline > 1 => &c.batch,
        Exchange::Echo { payload, pattern } => {
            let offset = (c.seq % PERIOD as u64) as usize;
            &pattern[offset..offset + payload]
        }
        Exchange::Http(check) => &check.batch,
        Exchange::Fixed { batch, .. } => batch,
    };
    while c.sent < request.len() {
        match stream.write(&request[c.sent..]) {
            Ok(0) => return Outcome::Failed(kind::CLOSED, None),
            Ok(n) => c.sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Outcome::Failed(io_kind(&e), Some(e)),
        }
    }
    if !may_read {
        return Outcome::Blocked;
    }
    while c.answered < pipeline && !c.closing {
        let want = match exchange {
            Exchange::Echo { .. } if c.recvd >= c.sent => break,
            Exchange::Echo { .. } => (c.sent - c.recvd).min(scratch.len()),
            Exchange::Http(_) => scratch.len(),
            Exchange::Fixed { replies, .. } if c.recvd >= replies.len() => break,
            Exchange::Fixed { replies, .. } => (replies.len() - c.recvd).min(scratch.len()),
        };
        let n = match stream.read(&mut scratch[..want]) {
            Ok(0) => return Outcome::Failed(kind::CLOSED, None),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Outcome::Failed(io_kind(&e), Some(e)),
        };
        let taken = match exchange {
            Exchange::Echo { payload, .. } => {
                if scratch[..n] != request[c.recvd..c.recvd + n] {
                    return Outcome::Failed(kind::MISMATCH, None);
                }
                let before = c.recvd / payload;
                c.recvd += n;
                let done = c.recvd / payload - before;
                progress.answers += done;
                progress.bytes += (done * payload) as u64;
                c.answered += done;
                Ok(())
            }
            Exchange::Fixed { replies, reply, .. } => {
                if scratch[..n] != replies[c.recvd..c.recvd + n] {
                    return Outcome::Failed(kind::MISMATCH, None);
                }
                let before = c.recvd / reply;
                c.recvd += n;
                let done = c.recvd / reply - before;
                progress.answers += done;
                progress.bytes += (done * reply) as u64;
                c.answered += done;
                Ok(())
            }
            Exchange::Http(check) => {
                let answers = Answers {
                    partial: &mut c.partial,
                    answered: &mut c.answered,
                    closing: &mut c.closing,
                };
                take_responses(answers, &scratch[..n], check, pipeline, progress)
            }
        };
        if let Err(kind) = taken {
            return Outcome::Failed(kind, None);
        }
        // A short read drained the socket; new data raises a new edge (not under mio on
        // Windows: see SHORT_READ_DRAINS).
        if SHORT_READ_DRAINS && n < want && !peer_closed {
            break;
        }
    }
    if c.answered < pipeline && !c.closing {
        Outcome::Blocked
    } else {
        Outcome::BatchDone
    }
}

/// The parts of a connection that taking HTTP answers changes.
struct Answers<'a> {
    partial: &'a mut Vec<u8>,
    answered: &'a mut usize,
    closing: &'a mut bool,
}

/// Parses and checks the HTTP responses in `input` (after any partial one kept from earlier
/// reads); keeps the start of an incomplete one. An answer the batch did not ask for, or an
/// answer after the server said it closes, is a parse error.
fn take_responses(
    c: Answers,
    input: &[u8],
    check: &HttpCheck,
    pipeline: usize,
    progress: &mut Progress,
) -> Result<(), &'static str> {
    let mut c = c;
    if c.partial.is_empty() {
        // The usual case: whole responses, parsed where they landed.
        let (used, result) = parse_responses(&mut c, input, check, pipeline, progress);
        if result.is_ok() {
            c.partial.extend_from_slice(&input[used..]);
        }
        return result;
    }
    // The buffer keeps its capacity: a connection stops allocating after its first few reads.
    let mut pending = std::mem::take(c.partial);
    pending.extend_from_slice(input);
    let (used, result) = parse_responses(&mut c, &pending, check, pipeline, progress);
    pending.drain(..used);
    if result.is_err() {
        pending.clear();
    }
    *c.partial = pending;
    result
}

/// Takes the complete responses at the start of `buf`; returns the bytes they used.
fn parse_responses(
    c: &mut Answers,
    buf: &[u8],
    check: &HttpCheck,
    pipeline: usize,
    progress: &mut Progress,
) -> (usize, Result<(), &'static str>) {
    let mut pos = 0;
    while pos < buf.len() {
        if *c.answered >= pipeline || *c.closing {
            return (pos, Err(kind::PARSE));
        }
        match parse_response(&buf[pos..], check.expect_body.as_deref()) {
            Ok(Some(r)) => {
                pos += r.len;
                if r.interim {
                    continue;
                }
                *c.answered += 1;
                *c.closing = r.close;
                progress.answers += 1;
                progress.bytes += r.len as u64;
                if !(200..400).contains(&r.status) {
                    progress.bad_status += 1;
                } else if r.body_differs {
                    progress.bad_body += 1;
                }
            }
            Ok(None) => break,
            Err(_) => return (pos, Err(kind::PARSE)),
        }
    }
    (pos, Ok(()))
}

fn io_kind(e: &io::Error) -> &'static str {
    match e.kind() {
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => kind::RESET,
        io::ErrorKind::ConnectionRefused => kind::CONNECT,
        _ => kind::IO,
    }
}
