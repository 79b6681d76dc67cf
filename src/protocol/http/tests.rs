//! The HTTP session's unit tests: batching, limits, framing, closing, the cached `Date`.

use std::time::{Duration, SystemTime};

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
