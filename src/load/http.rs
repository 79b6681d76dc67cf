//! HTTP/1.1, client side: the request a connection sends (`--pipeline` copies of it at once)
//! and the check of every response: well framed (`Content-Length` or chunked), a 2xx or 3xx
//! status (as wrk counts them), and the body when it is known.

use std::sync::Arc;

use crate::protocol::http::{has_token, parse_length};

/// What the HTTP workload sends and expects.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct HttpRequest {
    /// The `Host` header: the target's host and port as given.
    pub host: String,
    /// The request target, `/plaintext` by default.
    pub path: String,
    /// The body every response must carry, when known (`bench run` knows its servers').
    pub expect_body: Option<Vec<u8>>,
}

/// The largest response head taken; past it the response is a parse error.
const MAX_HEAD: usize = 64 * 1024;
/// The largest response body taken.
const MAX_BODY: usize = 16 * 1024 * 1024;
/// Headers per response.
const MAX_HEADERS: usize = 64;

/// The request bytes (one request, `pipeline` times) and the expected body, shared by every
/// connection of a worker.
#[derive(Debug)]
pub(super) struct HttpCheck {
    pub batch: Vec<u8>,
    pub expect_body: Option<Vec<u8>>,
}

impl HttpCheck {
    pub fn new(request: &HttpRequest, pipeline: usize) -> Arc<HttpCheck> {
        // What wrk sends, nothing more.
        let one = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\n\r\n",
            request.path, request.host
        );
        Arc::new(HttpCheck {
            batch: one.as_bytes().repeat(pipeline.max(1)),
            expect_body: request.expect_body.clone(),
        })
    }
}

/// One parsed response.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Response {
    /// Bytes it took, head and body.
    pub len: usize,
    pub status: u16,
    /// The body was known and differed.
    pub body_differs: bool,
    /// The server will close after it (`Connection: close`, or HTTP/1.0 without keep-alive).
    pub close: bool,
    /// An interim 1xx response: not the answer to a request.
    pub interim: bool,
}

/// Why a response could not be taken.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum ParseError {
    /// Not HTTP, no framing, or over the limits.
    Malformed,
}

/// Parses the response at the start of `buf`: `Ok(None)` when it is not complete yet.
pub(super) fn parse_response(
    buf: &[u8],
    expect_body: Option<&[u8]>,
) -> Result<Option<Response>, ParseError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let head = match response.parse(buf) {
        Ok(httparse::Status::Complete(head)) => head,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => return Err(ParseError::Malformed),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(ParseError::Malformed),
    };
    let status = response.code.unwrap_or(0);
    let version_1_0 = response.version == Some(0);
    let (mut close, mut keep_alive) = (false, false);
    let (mut length, mut chunked) = (None, false);
    for header in response.headers.iter() {
        if header.name.eq_ignore_ascii_case("content-length") {
            let n = parse_length(header.value).ok_or(ParseError::Malformed)?;
            if length.is_some_and(|m| m != n) {
                return Err(ParseError::Malformed);
            }
            length = Some(n);
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = has_token(header.value, b"chunked");
        } else if header.name.eq_ignore_ascii_case("connection") {
            close |= has_token(header.value, b"close");
            keep_alive |= has_token(header.value, b"keep-alive");
        }
    }
    // HTTP/1.1 stays open unless told `close`; HTTP/1.0 closes unless told `keep-alive`.
    let close = close || (version_1_0 && !keep_alive);
    let interim = (100..200).contains(&status);
    if interim || status == 204 || status == 304 {
        return Ok(Some(Response {
            len: head,
            status,
            body_differs: false,
            close,
            interim,
        }));
    }
    let (len, body_differs) = if chunked {
        match dechunk(&buf[head..], expect_body)? {
            Some((len, differs)) => (head + len, differs),
            None => return Ok(None),
        }
    } else {
        // Without a length, the body would end at the close: not a keep-alive answer.
        let length = length.ok_or(ParseError::Malformed)?;
        if length > MAX_BODY {
            return Err(ParseError::Malformed);
        }
        if buf.len() < head + length {
            return Ok(None);
        }
        let body = &buf[head..head + length];
        (head + length, expect_body.is_some_and(|e| e != body))
    };
    Ok(Some(Response {
        len,
        status,
        body_differs,
        close,
        interim: false,
    }))
}

/// Walks a chunked body: its length (up to and including the last CRLF) and whether it
/// differs from `expect`; `None` when it is not complete. Trailers are skipped.
fn dechunk(buf: &[u8], expect: Option<&[u8]>) -> Result<Option<(usize, bool)>, ParseError> {
    let (mut pos, mut seen, mut differs) = (0usize, 0usize, false);
    loop {
        let (used, size) = match httparse::parse_chunk_size(&buf[pos..]) {
            Ok(httparse::Status::Complete(c)) => c,
            // A chunk-size line (with its extensions) that never ends is not waited for.
            Ok(httparse::Status::Partial) if buf.len() - pos > MAX_HEAD => {
                return Err(ParseError::Malformed)
            }
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(_) => return Err(ParseError::Malformed),
        };
        pos += used;
        let size = usize::try_from(size).map_err(|_| ParseError::Malformed)?;
        // `seen` <= MAX_BODY always, so this cannot overflow (a hostile size can be 2^64 - 1).
        if size > MAX_BODY - seen {
            return Err(ParseError::Malformed);
        }
        if size == 0 {
            // Trailer fields, then an empty line.
            loop {
                let Some(end) = buf[pos..].windows(2).position(|w| w == b"\r\n") else {
                    return if buf.len() - pos > MAX_HEAD {
                        Err(ParseError::Malformed)
                    } else {
                        Ok(None)
                    };
                };
                pos += end + 2;
                if end == 0 {
                    let differs = differs || expect.is_some_and(|e| e.len() != seen);
                    return Ok(Some((pos, differs)));
                }
            }
        }
        if buf.len() < pos + size + 2 {
            return Ok(None);
        }
        if &buf[pos + size..pos + size + 2] != b"\r\n" {
            return Err(ParseError::Malformed);
        }
        if let Some(e) = expect {
            differs |= e.get(seen..seen + size) != Some(&buf[pos..pos + size]);
        }
        seen += size;
        pos += size + 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nHello, World!";

    #[test]
    fn takes_a_response_once_complete() {
        for cut in 0..OK.len() {
            assert_eq!(parse_response(&OK[..cut], None), Ok(None), "cut at {cut}");
        }
        let r = parse_response(OK, Some(b"Hello, World!")).unwrap().unwrap();
        assert_eq!(r.len, OK.len());
        assert_eq!(r.status, 200);
        assert!(!r.body_differs && !r.close && !r.interim);
        let r = parse_response(OK, Some(b"Hello, Wirld!")).unwrap().unwrap();
        assert!(r.body_differs);
    }

    #[test]
    fn reads_chunked_bodies() {
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nHello\r\n8\r\n, World!\r\n0\r\n\r\nNEXT";
        let r = parse_response(chunked, Some(b"Hello, World!"))
            .unwrap()
            .unwrap();
        assert_eq!(r.len, chunked.len() - 4);
        assert!(!r.body_differs);
        let r = parse_response(chunked, Some(b"Hello, World?"))
            .unwrap()
            .unwrap();
        assert!(r.body_differs);
        assert_eq!(parse_response(&chunked[..60], None), Ok(None));
    }

    #[test]
    fn refuses_what_it_cannot_frame() {
        let no_length = b"HTTP/1.1 200 OK\r\n\r\nbody";
        assert_eq!(parse_response(no_length, None), Err(ParseError::Malformed));
        assert_eq!(
            parse_response(b"SSH-2.0-OpenSSH\r\n\r\n", None),
            Err(ParseError::Malformed)
        );
        let two = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab";
        assert_eq!(parse_response(two, None), Err(ParseError::Malformed));
    }

    #[test]
    fn hostile_chunks_and_lengths_are_refused_not_waited_for() {
        let huge = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nHello\r\nffffffffffffffff\r\nxx";
        assert_eq!(parse_response(huge, None), Err(ParseError::Malformed));
        let mut endless = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;".to_vec();
        endless.resize(endless.len() + MAX_HEAD + 1, b'x');
        assert_eq!(parse_response(&endless, None), Err(ParseError::Malformed));
        let plus = b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nHello";
        assert_eq!(parse_response(plus, None), Err(ParseError::Malformed));
    }

    #[test]
    fn notices_the_servers_close() {
        let r = parse_response(
            b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            None,
        )
        .unwrap()
        .unwrap();
        assert!(r.close);
        assert_eq!(r.status, 400);
        let r = parse_response(
            b"HTTP/1.1 200 OK\r\nConnection: close, keep-alive\r\nContent-Length: 0\r\n\r\n",
            None,
        )
        .unwrap()
        .unwrap();
        assert!(r.close, "close wins in HTTP/1.1");
        let r = parse_response(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", None)
            .unwrap()
            .unwrap();
        assert!(r.close);
    }

    #[test]
    fn the_batch_is_the_request_pipeline_times() {
        let check = HttpCheck::new(
            &HttpRequest {
                host: "127.0.0.1:8080".into(),
                path: "/plaintext".into(),
                expect_body: None,
            },
            3,
        );
        let one = b"GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";
        assert_eq!(check.batch, one.repeat(3));
    }
}
