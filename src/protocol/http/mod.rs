//! HTTP/1.1, server side: keep-alive and pipelining, answered like the TechEmpower plaintext
//! test. Every model runs this same session.
//!
//! - `GET /plaintext` (and `HEAD`): 200 with `Server`, `Date`, `Content-Type: text/plain`,
//!   `Content-Length: 13` and `Hello, World!`. Other paths: 404. Other methods on
//!   `/plaintext`: 405 with `Allow`.
//! - Requests are parsed with httparse, as many as a read holds; responses are appended in
//!   request order. A request split over several reads waits in the session's own buffer,
//!   whose capacity is kept: after the first requests a connection allocates nothing more.
//! - The request head (request line and headers) may be at most [`MAX_HEAD`] bytes and hold
//!   at most [`MAX_HEADERS`] headers; past either, 431 and close (nginx answers 400 or 414 past
//!   its 8 KiB buffers; 431 is the status made for it). Only a request's first [`MAX_HEAD`]
//!   bytes are parsed, so the answer to a long head does not depend on how it was cut into
//!   reads. A body announced by `Content-Length` is read and discarded, up to [`MAX_BODY`]
//!   (413 and close past it); `Transfer-Encoding` bodies are not taken (501 and close).
//!   Anything httparse rejects, a missing `Host` in HTTP/1.1, or a bad `Content-Length`: 400
//!   and close.
//! - `Connection: close` (or HTTP/1.0 without `keep-alive`) is honoured: the response says
//!   `Connection: close` and the model closes once it is written. After a close, the session
//!   ignores whatever else arrives.
//! - `Date` is formatted once a second per thread and copied into every response (see
//!   [`with_date`]); the per-request cost is reading the clock, which the vDSO answers without
//!   a system call on Linux.
//! - The handler's cost (`--work-us`, `--block-us`) is charged once per request, before its
//!   response is written.

mod date;
#[cfg(test)]
mod tests;

pub use date::with_date;

use super::{Cost, Flow};

/// The largest request head (request line and headers, with the blank line) accepted.
pub const MAX_HEAD: usize = 8 * 1024;
/// The most headers a request may have.
pub const MAX_HEADERS: usize = 64;
/// The largest request body accepted (and discarded).
pub const MAX_BODY: usize = 1024 * 1024;
/// The plaintext test's body.
pub const PLAINTEXT_BODY: &[u8] = b"Hello, World!";
/// The path answered with [`PLAINTEXT_BODY`].
pub const PLAINTEXT_PATH: &str = "/plaintext";
/// The `Server` header's value.
pub const SERVER: &str = "iomodels";

#[derive(Debug)]
pub struct HttpSession {
    /// Bytes of an unfinished request carried over from earlier reads.
    pending: Vec<u8>,
    /// Bytes of a request body still to be discarded.
    body_left: usize,
    /// A response said `Connection: close`: ignore the rest.
    closed: bool,
    /// The last call stopped answering at [`REPLY_BATCH`](super::REPLY_BATCH) with whole
    /// requests left in `pending`.
    held: bool,
    /// Requests answered so far (errors included).
    completed: u64,
    cost: Cost,
}

/// What a request gets back.
struct Reply {
    status: &'static str,
    body: &'static [u8],
    /// HEAD: headers as for GET, no body.
    head_only: bool,
    allow: bool,
    close: bool,
    /// HTTP/1.0 with `Connection: keep-alive`: say it back.
    keep_alive_1_0: bool,
}

impl Reply {
    fn error(status: &'static str) -> Reply {
        Reply {
            status,
            body: status.as_bytes().get(4..).unwrap_or_default(),
            head_only: false,
            allow: false,
            close: true,
            keep_alive_1_0: false,
        }
    }
}

impl HttpSession {
    pub fn new(cost: Cost) -> Self {
        HttpSession {
            pending: Vec::new(),
            body_left: 0,
            closed: false,
            held: false,
            completed: 0,
            cost,
        }
    }

    /// Requests answered so far, errors included.
    #[inline]
    pub fn completed(&self) -> u64 {
        self.completed
    }

    /// Bytes held between reads: an unfinished request, at most [`MAX_HEAD`] once every
    /// request is answered (a longer head is refused with 431), so a session holds at most
    /// that plus the read being parsed; while [`unanswered`](Self::unanswered), the rest of the
    /// read that stopped at the reply batch too. Bodies are counted off, never held.
    pub fn buffered(&self) -> usize {
        self.pending.len()
    }

    /// Whether the last [`on_data`](Self::on_data) stopped at the reply batch with requests
    /// still to answer: the model calls it again (with no new input) once it has written the
    /// replies, before it reads more.
    #[inline]
    pub fn unanswered(&self) -> bool {
        self.held
    }

    /// Consumes `input`, appending a response per complete request to `out`, until this call
    /// has appended [`REPLY_BATCH`](super::REPLY_BATCH) bytes; the requests left are kept (see
    /// [`unanswered`](Self::unanswered)).
    pub fn on_data(&mut self, input: &[u8], out: &mut Vec<u8>) -> Flow {
        self.held = false;
        if self.closed {
            return Flow::Close;
        }
        let flow = if self.pending.is_empty() {
            // The usual case: whole requests in one read, parsed where they landed.
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

    /// Answers every complete request in `buf`; returns how many bytes it used (the rest is
    /// an unfinished request) and whether to close.
    fn process(&mut self, buf: &[u8], out: &mut Vec<u8>) -> (usize, Flow) {
        let mut pos = 0;
        let batch_end = out.len() + super::REPLY_BATCH;
        loop {
            if self.body_left > 0 {
                let skip = self.body_left.min(buf.len() - pos);
                pos += skip;
                self.body_left -= skip;
                if self.body_left > 0 {
                    return (pos, Flow::Continue);
                }
            }
            if pos == buf.len() {
                return (pos, Flow::Continue);
            }
            // Replies are bounded per call, not requests per read: pipelined requests of a
            // few bytes each would otherwise make a reply several times the read's size,
            // held in memory while a client that does not read its answers keeps sending.
            if out.len() >= batch_end {
                self.held = true;
                return (pos, Flow::Continue);
            }
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut request = httparse::Request::new(&mut headers);
            // At most MAX_HEAD bytes are parsed: a head unfinished there is too long whatever
            // follows. Parsing further made the answer depend on how the bytes were cut into
            // reads (a syntax error past the limit: 400 when one read held it, 431 when the
            // limit was passed before it arrived).
            let window = &buf[pos..buf.len().min(pos + MAX_HEAD)];
            let reply = match request.parse(window) {
                Ok(httparse::Status::Complete(head)) => {
                    pos += head;
                    self.route(&request)
                }
                Ok(httparse::Status::Partial) if window.len() == MAX_HEAD => {
                    Reply::error("431 Request Header Fields Too Large")
                }
                Ok(httparse::Status::Partial) => return (pos, Flow::Continue),
                Err(httparse::Error::TooManyHeaders) => {
                    Reply::error("431 Request Header Fields Too Large")
                }
                Err(_) => Reply::error("400 Bad Request"),
            };
            self.cost.charge(1);
            write_reply(&reply, out);
            self.completed += 1;
            if reply.close {
                return (buf.len(), Flow::Close);
            }
        }
    }

    /// The reply to a parsed request, headers only for HEAD whatever the status.
    fn route(&mut self, request: &httparse::Request) -> Reply {
        let mut reply = self.reply_to(request);
        reply.head_only = request.method == Some("HEAD");
        reply
    }

    /// The reply to a parsed request; sets up the discarding of its body.
    fn reply_to(&mut self, request: &httparse::Request) -> Reply {
        let version_1_0 = request.version == Some(0);
        let (mut close, mut keep_alive, mut host) = (false, false, false);
        let mut length: Option<usize> = None;
        for header in request.headers.iter() {
            let name = header.name;
            if name.eq_ignore_ascii_case("connection") {
                close |= has_token(header.value, b"close");
                keep_alive |= has_token(header.value, b"keep-alive");
            } else if name.eq_ignore_ascii_case("host") {
                host = true;
            } else if name.eq_ignore_ascii_case("content-length") {
                let Some(n) = parse_length(header.value) else {
                    return Reply::error("400 Bad Request");
                };
                if length.is_some_and(|m| m != n) {
                    return Reply::error("400 Bad Request");
                }
                length = Some(n);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                return Reply::error("501 Not Implemented");
            }
        }
        if !version_1_0 && !host {
            return Reply::error("400 Bad Request");
        }
        let length = length.unwrap_or(0);
        if length > MAX_BODY {
            return Reply::error("413 Content Too Large");
        }
        self.body_left = length;
        // HTTP/1.0 keeps the connection only when asked to.
        let close = if version_1_0 {
            close || !keep_alive
        } else {
            close
        };
        let keep_alive_1_0 = version_1_0 && !close;
        let path = request.path.unwrap_or_default();
        let path = path.split_once('?').map_or(path, |(p, _)| p);
        let method = request.method.unwrap_or_default();
        let mut reply = if path != PLAINTEXT_PATH {
            Reply::error("404 Not Found")
        } else if method == "GET" || method == "HEAD" {
            Reply {
                status: "200 OK",
                body: PLAINTEXT_BODY,
                head_only: false,
                allow: false,
                close,
                keep_alive_1_0,
            }
        } else {
            Reply {
                allow: true,
                ..Reply::error("405 Method Not Allowed")
            }
        };
        reply.close = close;
        reply.keep_alive_1_0 = keep_alive_1_0;
        reply
    }
}

/// Whether a comma-separated header value (`Connection`, `Transfer-Encoding`) lists `token`,
/// case-insensitively. Shared by the server and the load generator's response check.
pub fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

/// A `Content-Length` value: digits only (no sign, no spaces inside), no overflow. Shared by
/// the server and the load generator's response check.
pub fn parse_length(value: &[u8]) -> Option<usize> {
    let value = value.trim_ascii();
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    value.iter().try_fold(0usize, |n, &d| {
        n.checked_mul(10)?.checked_add(usize::from(d - b'0'))
    })
}

fn write_reply(reply: &Reply, out: &mut Vec<u8>) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(reply.status.as_bytes());
    out.extend_from_slice(b"\r\nServer: ");
    out.extend_from_slice(SERVER.as_bytes());
    out.extend_from_slice(b"\r\nDate: ");
    with_date(|date| out.extend_from_slice(date));
    out.extend_from_slice(b"\r\nContent-Type: text/plain\r\nContent-Length: ");
    let mut digits = itoa::Buffer::new();
    out.extend_from_slice(digits.format(reply.body.len()).as_bytes());
    if reply.allow {
        out.extend_from_slice(b"\r\nAllow: GET, HEAD");
    }
    if reply.close {
        out.extend_from_slice(b"\r\nConnection: close");
    } else if reply.keep_alive_1_0 {
        out.extend_from_slice(b"\r\nConnection: keep-alive");
    }
    out.extend_from_slice(b"\r\n\r\n");
    if !reply.head_only {
        out.extend_from_slice(reply.body);
    }
}
