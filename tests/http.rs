//! The integration template with the HTTP workload: every model of this platform (every poller
//! and io_uring variant, as in tests/models.rs) serving HTTP/1.1 to plain blocking clients, and
//! `bench load` / `bench run` with `--workload http` end to end.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use iomodels::models::RunningServer;
use iomodels::protocol::http::{MAX_HEAD, PLAINTEXT_BODY};
use iomodels::protocol::{Cost, Protocol, Workload};

mod common;
use common::*;

const TIMEOUT: Duration = Duration::from_secs(30);
const GET: &[u8] = b"GET /plaintext HTTP/1.1\r\nHost: test\r\n\r\n";

fn start(v: &Variant) -> (SocketAddr, Box<dyn RunningServer>) {
    let protocol = Protocol {
        workload: Workload::Http,
        message_size: None,
        cost: Cost::default(),
    };
    start_server(v, protocol)
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect to the server");
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// One response read off `s`: status, headers (names lowercased), body.
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads `n` responses, keeping bytes of the next ones in `buf`.
fn read_responses(s: &mut TcpStream, buf: &mut Vec<u8>, n: usize, who: &str) -> Vec<Response> {
    let mut out = Vec::new();
    while out.len() < n {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut r = httparse::Response::new(&mut headers);
        if let Ok(httparse::Status::Complete(head)) = r.parse(buf) {
            let len: usize = r
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .map(|h| std::str::from_utf8(h.value).unwrap().parse().unwrap())
                .unwrap_or_else(|| panic!("{who}: a response without Content-Length"));
            if buf.len() >= head + len {
                out.push(Response {
                    status: r.code.unwrap(),
                    headers: r
                        .headers
                        .iter()
                        .map(|h| {
                            (
                                h.name.to_ascii_lowercase(),
                                String::from_utf8_lossy(h.value).into_owned(),
                            )
                        })
                        .collect(),
                    body: buf[head..head + len].to_vec(),
                });
                buf.drain(..head + len);
                continue;
            }
        }
        let mut chunk = [0u8; 16384];
        let got = s
            .read(&mut chunk)
            .unwrap_or_else(|e| panic!("{who}: reading response {}: {e}", out.len()));
        assert!(
            got > 0,
            "{who}: the server closed after {} responses",
            out.len()
        );
        buf.extend_from_slice(&chunk[..got]);
    }
    out
}

/// Reads until the server closes; panics if it does not within the timeout.
fn read_to_close(s: &mut TcpStream, who: &str) {
    let mut rest = Vec::new();
    match s.read_to_end(&mut rest) {
        Ok(_) => assert!(
            rest.is_empty(),
            "{who}: bytes after the last response: {rest:?}"
        ),
        // A reset after the answer is a close too.
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("{who}: the server did not close: {e}"),
    }
}

fn assert_plaintext(r: &Response, who: &str) {
    assert_eq!(r.status, 200, "{who}");
    assert_eq!(r.body, PLAINTEXT_BODY, "{who}");
    assert_eq!(r.header("content-type"), Some("text/plain"), "{who}");
    assert_eq!(r.header("content-length"), Some("13"), "{who}");
    assert_eq!(r.header("server"), Some("iomodels"), "{who}");
    let date = r.header("date").unwrap_or_else(|| panic!("{who}: no Date"));
    httpdate::parse_http_date(date).unwrap_or_else(|e| panic!("{who}: Date {date:?}: {e}"));
}

#[test]
fn every_model_answers_keep_alive_requests_one_after_another() {
    let _shared = shared_machine();
    for v in variants() {
        let (addr, server) = start(&v);
        let mut s = connect(addr);
        let mut buf = Vec::new();
        for i in 0..200 {
            s.write_all(GET).unwrap();
            let r = read_responses(&mut s, &mut buf, 1, &v.name);
            assert_plaintext(&r[0], &format!("{}: request {i}", v.name));
        }
        drop(s);
        server.stop().unwrap();
    }
}

#[test]
fn every_model_answers_a_pipelined_burst_in_order() {
    let _shared = shared_machine();
    for v in variants() {
        let (addr, server) = start(&v);
        let mut s = connect(addr);
        // 256 requests in one write, every 16th for another path.
        let mut burst = Vec::new();
        for i in 0..256 {
            if i % 16 == 15 {
                burst
                    .extend_from_slice(format!("GET /n{i} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
            } else {
                burst.extend_from_slice(GET);
            }
        }
        s.write_all(&burst).unwrap();
        let mut buf = Vec::new();
        let rs = read_responses(&mut s, &mut buf, 256, &v.name);
        for (i, r) in rs.iter().enumerate() {
            let who = format!("{}: response {i}", v.name);
            if i % 16 == 15 {
                assert_eq!(r.status, 404, "{who}");
                assert_eq!(r.body, b"Not Found", "{who}");
            } else {
                assert_plaintext(r, &who);
            }
        }
        drop(s);
        server.stop().unwrap();
    }
}

#[test]
fn every_model_answers_requests_split_over_many_reads() {
    let _shared = shared_machine();
    for v in variants() {
        let (addr, server) = start(&v);
        let mut s = connect(addr);
        let two = [GET, GET].concat();
        // Pieces of 1 to 7 bytes, each sent on its own (TCP_NODELAY) with a pause, so the
        // server reads them apart.
        let mut sent = 0;
        let mut piece = 1;
        while sent < two.len() {
            let end = (sent + piece).min(two.len());
            s.write_all(&two[sent..end]).unwrap();
            sent = end;
            piece = piece % 7 + 1;
            std::thread::sleep(Duration::from_millis(1));
        }
        let mut buf = Vec::new();
        for r in read_responses(&mut s, &mut buf, 2, &v.name) {
            assert_plaintext(&r, &v.name);
        }
        drop(s);
        server.stop().unwrap();
    }
}

#[test]
fn every_model_answers_malformed_requests_with_400_and_closes() {
    let _shared = shared_machine();
    for v in variants() {
        let (addr, server) = start(&v);
        let mut s = connect(addr);
        s.write_all(&[GET, b"NOT HTTP AT ALL\r\n\r\n"].concat())
            .unwrap();
        let mut buf = Vec::new();
        let rs = read_responses(&mut s, &mut buf, 2, &v.name);
        assert_plaintext(&rs[0], &v.name);
        assert_eq!(rs[1].status, 400, "{}", v.name);
        assert_eq!(rs[1].header("connection"), Some("close"), "{}", v.name);
        assert!(buf.is_empty(), "{}", v.name);
        read_to_close(&mut s, &v.name);
        // The server goes on serving others.
        let mut other = connect(addr);
        other.write_all(GET).unwrap();
        assert_plaintext(
            &read_responses(&mut other, &mut Vec::new(), 1, &v.name)[0],
            &v.name,
        );
        drop(other);
        server.stop().unwrap();
    }
}

#[test]
fn every_model_refuses_heads_over_the_limit_with_431() {
    let _shared = shared_machine();
    for v in variants() {
        let (addr, server) = start(&v);
        let mut s = connect(addr);
        let mut big = b"GET /plaintext HTTP/1.1\r\nHost: t\r\nX-Big: ".to_vec();
        big.resize(MAX_HEAD + 100, b'a');
        big.extend_from_slice(b"\r\n\r\n");
        // The server may close before it has read it all: a failed write is fine.
        let _ = s.write_all(&big);
        let rs = read_responses(&mut s, &mut Vec::new(), 1, &v.name);
        assert_eq!(rs[0].status, 431, "{}", v.name);
        assert_eq!(rs[0].header("connection"), Some("close"), "{}", v.name);
        read_to_close(&mut s, &v.name);
        server.stop().unwrap();
    }
}

#[test]
fn every_model_honours_connection_close() {
    let _shared = shared_machine();
    for v in variants() {
        let (addr, server) = start(&v);
        let mut s = connect(addr);
        s.write_all(b"GET /plaintext HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .unwrap();
        let rs = read_responses(&mut s, &mut Vec::new(), 1, &v.name);
        assert_plaintext(&rs[0], &v.name);
        assert_eq!(rs[0].header("connection"), Some("close"), "{}", v.name);
        read_to_close(&mut s, &v.name);
        server.stop().unwrap();
    }
}

/// 200 connections open at once, each with 8 pipelined requests, the last saying
/// `Connection: close`. Read in order, so that a model with a fixed pool (`threadpool`, which
/// holds a keep-alive connection for its whole life, as Tomcat's BIO connector did) serves the
/// queued connections as the earlier ones close.
#[test]
fn every_model_serves_many_http_connections_at_once() {
    let _shared = shared_machine();
    let last = b"GET /plaintext HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n";
    let requests = [GET.repeat(7), last.to_vec()].concat();
    for v in variants() {
        let (addr, server) = start(&v);
        let mut conns: Vec<TcpStream> = (0..200).map(|_| connect(addr)).collect();
        for s in &mut conns {
            s.write_all(&requests).unwrap();
        }
        for (i, s) in conns.iter_mut().enumerate() {
            let who = format!("{}: connection {i}", v.name);
            let rs = read_responses(s, &mut Vec::new(), 8, &who);
            for r in &rs {
                assert_plaintext(r, &who);
            }
            assert_eq!(rs[7].header("connection"), Some("close"), "{who}");
            read_to_close(s, &who);
        }
        drop(conns);
        server.stop().unwrap();
    }
}

/// `bench load` against a `bench serve --workload http`, pipelined, every body checked: no
/// error; then against a path the server does not have: every answer is a `status` error and
/// the exit code says the run failed.
#[test]
fn bench_load_drives_an_http_server_and_checks_every_answer() {
    let _alone = whole_machine();
    let mut server = bench()
        .args(["serve", "--model", "reactor", "--workload", "http"])
        .args(["--duration", "30s"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(server.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let ready: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(ready["workload"], "http", "{ready}");
    let addr = ready["listening"].as_str().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("load.json");
    let target = format!("http://{addr}/plaintext");
    let o = bench()
        .args([
            "load", "--target", &target, "-c", "8", "-p", "4", "-d", "1s",
        ])
        .args([
            "--warmup",
            "200ms",
            "--expect-body",
            "Hello, World!",
            "--json",
        ])
        .arg(&out)
        .output()
        .unwrap();
    expect(&o, 0, &[" 0 errors"]);
    let doc = valid_result(&out);
    let run = &doc["runs"][0];
    assert_eq!(run["workload"], "http");
    assert_eq!(run["pipeline"], 4);
    assert!(run["requests"].as_u64().unwrap() > 100, "{run}");
    assert_eq!(doc["scenario"]["target"], target.as_str());

    let o = bench()
        .args(["load", "--target", &format!("http://{addr}/missing")])
        .args(["-c", "2", "-d", "300ms", "--warmup", "0s"])
        .output()
        .unwrap();
    expect(&o, 1, &["status="]);

    let o = bench()
        .args(["load", "--target", &target, "-c", "2", "-d", "300ms"])
        .args(["--warmup", "0s", "--expect-body", "Goodbye"])
        .output()
        .unwrap();
    expect(&o, 1, &["body="]);
    let _ = server.kill();
    let _ = server.wait();
}

/// The target's forms: an http:// URL picks the HTTP workload, echo with one is refused, and
/// schemes other than http are refused with what to do.
#[test]
fn load_targets_are_checked_before_anything_runs() {
    let o = run(&["load", "--target", "https://127.0.0.1:1/", "-d", "1s"]);
    expect(&o, 2, &["https:// scheme is not supported"]);
    let o = run(&[
        "load",
        "--target",
        "http://127.0.0.1:1/",
        "--workload",
        "echo",
        "-d",
        "1s",
    ]);
    expect(&o, 2, &["drop --workload echo"]);
    let o = run(&[
        "load",
        "--target",
        "127.0.0.1:1",
        "--expect-body",
        "x",
        "-d",
        "1s",
    ]);
    expect(&o, 2, &["--expect-body is for the HTTP workload"]);
}

/// `bench run` with scenarios/http-pipelined.toml (HTTP, pipeline 16) over every model, its
/// length cut on the command line (which wins over the file): every answer checked by the load
/// generator, no error, and the result valid against the schema.
#[test]
fn bench_run_serves_http_with_every_model() {
    let _alone = whole_machine();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("http.json");
    let scenario = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/http-pipelined.toml");
    let mut cmd = bench();
    cmd.args(["run", "--scenario", scenario, "-c", "16"])
        .args(["-d", "500ms", "--warmup", "200ms", "--quiet", "--out"])
        .arg(&out);
    for m in models_here() {
        cmd.args(["--model", m.name]);
    }
    let o = cmd.output().unwrap();
    expect(&o, 0, &[]);
    let doc = valid_result(&out);
    assert_eq!(doc["scenario"]["file"], scenario);
    assert_eq!(doc["scenario"]["connections"], 16);
    let runs = doc["runs"].as_array().unwrap();
    assert_eq!(runs.len(), models_here().count());
    for run in runs {
        assert_eq!(run["workload"], "http", "{run}");
        assert_eq!(run["errors"], 0, "{run}");
        assert_eq!(run["pipeline"], 16, "{run}");
        assert!(run["requests"].as_u64().unwrap() > 0, "{run}");
    }
}

/// Servers that misbehave: one that never answers (every batch ends as a `timeout` with
/// `--timeout`), one that closes every connection at once (`closed`), one that answers with
/// something that is not HTTP (`parse`). Each run ends in time and exits 1.
#[test]
fn load_counts_timeouts_closes_and_garbage_by_kind() {
    use std::net::TcpListener;
    type Behaviour = fn(TcpStream);
    let behaviours: [(&str, Behaviour, &[&str]); 3] = [
        (
            "timeout",
            |s| {
                std::thread::sleep(Duration::from_secs(5));
                drop(s);
            },
            &["--timeout", "200ms"],
        ),
        ("closed", drop, &[]),
        (
            "parse",
            |mut s| {
                let mut b = [0u8; 256];
                let _ = s.read(&mut b);
                let _ = s.write_all(b"SSH-2.0-nope\r\n\r\n");
                std::thread::sleep(Duration::from_secs(2));
            },
            &[],
        ),
    ];
    for (kind, behaviour, extra) in behaviours {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for s in listener.incoming().flatten() {
                std::thread::spawn(move || behaviour(s));
            }
        });
        let start = std::time::Instant::now();
        let o = bench()
            .args(["load", "--target", &format!("http://{addr}/plaintext")])
            .args(["-c", "2", "-d", "1s", "--warmup", "0s"])
            .args(extra)
            .output()
            .unwrap();
        expect(&o, 1, &[&format!("{kind}=")]);
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "{kind}: {:?}",
            start.elapsed()
        );
    }
}

/// A server that answers one request per connection and says `Connection: close` (HTTP/1.0
/// servers, nginx at its keepalive_requests): the client reconnects without an error, pipelined
/// or not; the rest of a pipelined batch is abandoned, as the server said.
#[test]
fn load_reconnects_after_connection_close_without_an_error() {
    use std::net::TcpListener;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut b = [0u8; 4096];
                if s.read(&mut b).unwrap_or(0) > 0 {
                    let _ = s.write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\nConnection: close\r\n\r\nHello, World!",
                    );
                }
            });
        }
    });
    for pipeline in ["1", "4"] {
        let o = bench()
            .args(["load", "--target", &format!("http://{addr}/plaintext")])
            .args(["-c", "2", "-d", "500ms", "--warmup", "0s", "-p", pipeline])
            .args(["--expect-body", "Hello, World!"])
            .output()
            .unwrap();
        expect(&o, 0, &[" 0 errors"]);
    }
}
