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

use std::time::{Duration, SystemTime, UNIX_EPOCH};

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

/// The IMF-fixdate of the current second ("Sun, 06 Nov 1994 08:49:37 GMT").
struct CachedDate {
    second: u64,
    text: [u8; 29],
}

/// No second seen yet.
const NO_DATE: CachedDate = CachedDate {
    second: u64::MAX,
    text: [b' '; 29],
};

// The initializer is const already; Debian's clippy 1.96 on a -Zbuild-std build (the Windows
// lint in scripts/test-windows.sh) reports it anyway.
#[allow(clippy::missing_const_for_thread_local)]
mod date_cell {
    thread_local! {
        pub(super) static DATE: std::cell::RefCell<super::CachedDate> =
            const { std::cell::RefCell::new(super::NO_DATE) };
    }
}
use date_cell::DATE;

/// Calls `f` with the `Date` header's value: formatted (by httpdate) when this thread first
/// sees a new second, copied otherwise. Reading the clock is the only per-request cost.
pub fn with_date<R>(f: impl FnOnce(&[u8]) -> R) -> R {
    let now = SystemTime::now();
    let second = now
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    DATE.with(|cell| {
        let mut date = cell.borrow_mut();
        if date.second != second {
            let text = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(second));
            if text.len() == date.text.len() {
                date.text.copy_from_slice(text.as_bytes());
            }
            date.second = second;
        }
        f(&date.text)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GET: &[u8] = b"GET /plaintext HTTP/1.1\r\nHost: localhost\r\n\r\n";

    fn session() -> HttpSession {
        HttpSession::new(Cost::default())
    }

    #[test]
    fn a_call_answers_one_reply_batch_and_holds_the_rest_in_order() {
        // Tiny requests: a 404 answer is several times a request's size.
        let tiny = b"GET / HTTP/1.1\r\nHost:a\r\n\r\n";
        let (n, mut s) = (5000, session());
        let input = [GET, tiny].concat().repeat(n / 2);
        let mut out = Vec::new();
        let mut calls = 0;
        let mut flow = s.on_data(&input, &mut out);
        let longest = out.len();
        assert!(
            s.unanswered(),
            "{n} requests' answers are more than a batch"
        );
        let mut most = longest;
        while s.unanswered() {
            let before = out.len();
            flow = s.on_data(&[], &mut out);
            most = most.max(out.len() - before);
            calls += 1;
        }
        assert_eq!(flow, Flow::Continue);
        assert!(calls > 1, "answered in {calls} more calls");
        // A batch ends with the response that crossed it.
        assert!(
            most < crate::protocol::REPLY_BATCH + 256,
            "{most} bytes in one call"
        );
        let all = responses(&out);
        assert_eq!(all.len(), n);
        assert!(all.iter().step_by(2).all(|r| r.0 == 200));
        assert!(all.iter().skip(1).step_by(2).all(|r| r.0 == 404));
        assert_eq!(s.completed(), n as u64);
        assert_eq!(s.buffered(), 0);
        // New input after held requests goes behind them.
        let mut s = session();
        let mut out = Vec::new();
        s.on_data(&tiny.repeat(2000), &mut out);
        assert!(s.unanswered());
        s.on_data(GET, &mut out);
        while s.unanswered() {
            s.on_data(&[], &mut out);
        }
        let all = responses(&out);
        assert_eq!(all.len(), 2001);
        assert_eq!(all.last().map(|r| r.0), Some(200), "the GET came last");
    }

    /// A parsed response: status, headers (names lowercased), body.
    type Parsed = (u16, Vec<(String, String)>, Vec<u8>);

    /// The responses in `out`.
    fn responses(mut out: &[u8]) -> Vec<Parsed> {
        let mut all = Vec::new();
        while !out.is_empty() {
            let mut headers = [httparse::EMPTY_HEADER; 16];
            let mut r = httparse::Response::new(&mut headers);
            let head = match r.parse(out).expect("a well-formed response") {
                httparse::Status::Complete(n) => n,
                httparse::Status::Partial => panic!("a truncated response: {out:?}"),
            };
            let headers: Vec<(String, String)> = r
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_ascii_lowercase(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect();
            let len: usize = headers
                .iter()
                .find(|(n, _)| n == "content-length")
                .map(|(_, v)| v.parse().unwrap())
                .unwrap();
            all.push((r.code.unwrap(), headers, out[head..head + len].to_vec()));
            out = &out[head + len..];
        }
        all
    }

    fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn plaintext_is_answered_like_techempower() {
        let mut s = session();
        let mut out = Vec::new();
        assert_eq!(s.on_data(GET, &mut out), Flow::Continue);
        let r = responses(&out);
        assert_eq!(r.len(), 1);
        let (status, headers, body) = &r[0];
        assert_eq!(*status, 200);
        assert_eq!(body, b"Hello, World!");
        assert_eq!(header(headers, "content-length"), Some("13"));
        assert_eq!(header(headers, "content-type"), Some("text/plain"));
        assert_eq!(header(headers, "server"), Some(SERVER));
        let date = header(headers, "date").unwrap();
        let parsed = httpdate::parse_http_date(date).expect("an IMF-fixdate");
        let skew = SystemTime::now()
            .duration_since(parsed)
            .unwrap_or_else(|e| e.duration());
        assert!(skew < Duration::from_secs(3), "{date}");
        assert_eq!(header(headers, "connection"), None);
    }

    #[test]
    fn a_request_split_over_many_reads_is_answered_once() {
        let mut s = session();
        let mut out = Vec::new();
        let two = [GET, GET].concat();
        for (i, byte) in two.chunks(1).enumerate() {
            // The idle timeout's count moves only when a request is complete (slowloris).
            let whole = (i + 1) / GET.len();
            assert_eq!(s.completed(), (i / GET.len()) as u64, "at byte {i}");
            assert_eq!(s.on_data(byte, &mut out), Flow::Continue);
            assert_eq!(s.completed(), whole as u64);
        }
        let r = responses(&out);
        assert_eq!(r.len(), 2);
        assert!(r
            .iter()
            .all(|(status, _, body)| *status == 200 && body == b"Hello, World!"));
        assert!(s.pending.is_empty());
    }

    #[test]
    fn a_pipelined_burst_is_answered_in_order() {
        let mut s = session();
        let mut out = Vec::new();
        // 16 requests in one read, the 9th for another path, then one cut in the middle.
        let mut burst = Vec::new();
        for i in 0..16 {
            if i == 8 {
                burst.extend_from_slice(b"GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n");
            } else {
                burst.extend_from_slice(GET);
            }
        }
        burst.extend_from_slice(&GET[..10]);
        assert_eq!(s.on_data(&burst, &mut out), Flow::Continue);
        let r = responses(&out);
        assert_eq!(r.len(), 16);
        for (i, (status, _, _)) in r.iter().enumerate() {
            assert_eq!(*status, if i == 8 { 404 } else { 200 }, "response {i}");
        }
        out.clear();
        assert_eq!(s.on_data(&GET[10..], &mut out), Flow::Continue);
        assert_eq!(responses(&out).len(), 1);
    }

    #[test]
    fn malformed_requests_get_400_and_close() {
        for bad in [
            &b"GARBAGE\r\n\r\n"[..],
            b"GET /plaintext HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
            b"GET /plaintext HTTP/9.9\r\nHost: x\r\n\r\n",
            b"\x00\x01\x02\x03\r\n\r\n",
            // HTTP/1.1 without Host (RFC 9112, 3.2).
            b"GET /plaintext HTTP/1.1\r\n\r\n",
            b"GET /plaintext HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
            b"GET /plaintext HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        ] {
            let mut s = session();
            let mut out = Vec::new();
            // A good request first: it is answered before the bad one.
            let input = [GET, bad, GET].concat();
            assert_eq!(s.on_data(&input, &mut out), Flow::Close, "{bad:?}");
            let r = responses(&out);
            assert_eq!(r.len(), 2, "{bad:?}");
            assert_eq!(r[0].0, 200);
            assert_eq!(r[1].0, 400, "{bad:?}");
            assert_eq!(header(&r[1].1, "connection"), Some("close"));
            // Nothing more is answered once closed.
            out.clear();
            assert_eq!(s.on_data(GET, &mut out), Flow::Close);
            assert!(out.is_empty());
        }
    }

    #[test]
    fn heads_over_the_limit_get_431_and_close() {
        // One header too long, split over reads: refused once the head passes MAX_HEAD, before
        // it ends.
        let mut s = session();
        let mut out = Vec::new();
        let head = b"GET /plaintext HTTP/1.1\r\nHost: x\r\nX-Big: ";
        assert_eq!(s.on_data(head, &mut out), Flow::Continue);
        let filler = vec![b'a'; 1024];
        let mut flow = Flow::Continue;
        for _ in 0..9 {
            flow = s.on_data(&filler, &mut out);
            if flow == Flow::Close {
                break;
            }
        }
        assert_eq!(flow, Flow::Close);
        assert_eq!(responses(&out)[0].0, 431);

        // Too many headers.
        let mut s = session();
        let mut out = Vec::new();
        let mut many = b"GET /plaintext HTTP/1.1\r\nHost: x\r\n".to_vec();
        for i in 0..MAX_HEADERS {
            many.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(s.on_data(&many, &mut out), Flow::Close);
        assert_eq!(responses(&out)[0].0, 431);

        // Just under the limit is fine.
        let mut s = session();
        let mut out = Vec::new();
        let mut near = b"GET /plaintext HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
        near.resize(MAX_HEAD - 4, b'a');
        near.extend_from_slice(b"\r\n\r\n");
        assert_eq!(near.len(), MAX_HEAD);
        assert_eq!(s.on_data(&near, &mut out), Flow::Continue);
        assert_eq!(responses(&out)[0].0, 200);
    }

    #[test]
    fn connection_close_is_honoured() {
        let mut s = session();
        let mut out = Vec::new();
        let input = [
            b"GET /plaintext HTTP/1.1\r\nHost: x\r\nConnection: Close\r\n\r\n".as_slice(),
            GET,
        ]
        .concat();
        assert_eq!(s.on_data(&input, &mut out), Flow::Close);
        let r = responses(&out);
        assert_eq!(r.len(), 1, "the request after the close is not answered");
        assert_eq!(r[0].0, 200);
        assert_eq!(header(&r[0].1, "connection"), Some("close"));

        // HTTP/1.0: closes unless asked to keep alive.
        let mut s = session();
        let mut out = Vec::new();
        let keep = b"GET /plaintext HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
        assert_eq!(s.on_data(keep, &mut out), Flow::Continue);
        assert_eq!(
            header(&responses(&out)[0].1, "connection"),
            Some("keep-alive")
        );
        out.clear();
        assert_eq!(
            s.on_data(b"GET /plaintext HTTP/1.0\r\n\r\n", &mut out),
            Flow::Close
        );
        assert_eq!(header(&responses(&out)[0].1, "connection"), Some("close"));
    }

    #[test]
    fn other_paths_get_404_and_other_methods_405() {
        let mut s = session();
        let mut out = Vec::new();
        let input = [
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".as_slice(),
            b"GET /plaintext/more HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /plaintext?x=1 HTTP/1.1\r\nHost: x\r\n\r\n",
            b"DELETE /plaintext HTTP/1.1\r\nHost: x\r\n\r\n",
        ]
        .concat();
        assert_eq!(s.on_data(&input, &mut out), Flow::Continue);
        let r = responses(&out);
        let statuses: Vec<u16> = r.iter().map(|r| r.0).collect();
        assert_eq!(statuses, [404, 404, 200, 405]);
        assert_eq!(r[0].2, b"Not Found");
        assert_eq!(header(&r[3].1, "allow"), Some("GET, HEAD"));
    }

    #[test]
    fn head_gets_the_headers_only() {
        let mut s = session();
        let mut out = Vec::new();
        let input = [
            b"HEAD /plaintext HTTP/1.1\r\nHost: x\r\n\r\n".as_slice(),
            GET,
        ]
        .concat();
        s.on_data(&input, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.matches("Content-Length: 13").count(), 2);
        assert_eq!(text.matches("Hello, World!").count(), 1);
        assert!(text.ends_with("Hello, World!"));

        // A HEAD that is not answered 200 has no body either.
        let mut s = session();
        let mut out = Vec::new();
        let input = [b"HEAD /missing HTTP/1.1\r\nHost: x\r\n\r\n".as_slice(), GET].concat();
        s.on_data(&input, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("Content-Length: 9\r\n\r\nHTTP/1.1 200 OK"),
            "{text}"
        );
    }

    #[test]
    fn bodies_are_discarded_and_oversized_ones_refused() {
        let mut s = session();
        let mut out = Vec::new();
        let post = b"POST /nothing HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123";
        assert_eq!(s.on_data(post, &mut out), Flow::Continue);
        assert_eq!(s.on_data(b"456789", &mut out), Flow::Continue);
        assert_eq!(s.on_data(GET, &mut out), Flow::Continue);
        let statuses: Vec<u16> = responses(&out).iter().map(|r| r.0).collect();
        assert_eq!(statuses, [404, 200]);

        let mut s = session();
        let mut out = Vec::new();
        let huge = format!(
            "POST /plaintext HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY + 1
        );
        assert_eq!(s.on_data(huge.as_bytes(), &mut out), Flow::Close);
        assert_eq!(responses(&out)[0].0, 413);

        let mut s = session();
        let mut out = Vec::new();
        let chunked = b"POST /plaintext HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(s.on_data(chunked, &mut out), Flow::Close);
        assert_eq!(responses(&out)[0].0, 501);
    }

    #[test]
    fn the_date_is_the_current_second() {
        let a = with_date(|d| d.to_vec());
        let parsed = httpdate::parse_http_date(std::str::from_utf8(&a).unwrap()).unwrap();
        let now = SystemTime::now();
        assert!(parsed <= now && now.duration_since(parsed).unwrap() < Duration::from_secs(2));
    }

    #[test]
    fn the_cost_is_charged_once_per_request() {
        let mut s = HttpSession::new(Cost::new(0, 2000));
        let mut out = Vec::new();
        let start = std::time::Instant::now();
        s.on_data(&[GET, GET, GET].concat(), &mut out);
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(6), "{took:?}");
        assert!(took < Duration::from_millis(500), "{took:?}");
        assert_eq!(responses(&out).len(), 3);
    }
}
