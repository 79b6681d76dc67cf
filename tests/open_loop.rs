//! The open loop (`--rate`): the schedule is kept, and latency is corrected for coordinated
//! omission.
//!
//! The classic demonstration (wrk2's): a server that stops answering for 200 ms once a second.
//! A load generator that times each request from its send sees one slow request per connection
//! per stall and reports a fine p99; timed from the due time, every request that fell due during
//! the stall carries its wait, and the p99 shows the stall.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use common::{bench, expect, text, valid_result};

/// An echo server, thread per connection, that holds every answer back while the first
/// `stall` of each second (since it started) lasts.
fn stalling_echo_server(stall: Duration) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let start = Instant::now();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            std::thread::spawn(move || {
                let _ = stream.set_nodelay(true);
                let mut buf = [0u8; 4096];
                loop {
                    let n = match stream.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    let into_second =
                        Duration::from_nanos((start.elapsed().as_nanos() % 1_000_000_000) as u64);
                    if into_second < stall {
                        std::thread::sleep(stall - into_second);
                    }
                    if stream.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// `bench load` against `addr` with `args`; returns the result file's only run.
fn load(addr: SocketAddr, args: &[&str], code: i32) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("load.json");
    let o = bench()
        .args(["load", "--target", &addr.to_string()])
        .args(args)
        .arg("--json")
        .arg(&out)
        .output()
        .unwrap();
    expect(&o, code, &[]);
    let doc = valid_result(&out);
    doc["runs"][0].clone()
}

fn f(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("{v} is not a number"))
}

#[test]
#[cfg(unix)]
fn corrected_latency_shows_a_stall_that_uncorrected_latency_hides() {
    let _machine = common::whole_machine();
    let addr = stalling_echo_server(Duration::from_millis(200));
    // 4 connections at 2000 req/s: each has a request due every 2 ms, so about 100 fall due on
    // each connection during a stall while only one is in flight.
    let run = load(
        addr,
        &["--rate", "2000", "-c", "4", "-d", "3s", "--warmup", "200ms"],
        0,
    );
    let corrected = &run["latency_us"];
    let uncorrected = &run["latency_uncorrected_us"];
    let (c99, u99) = (f(&corrected["p99"]), f(&uncorrected["p99"]));
    eprintln!("corrected {corrected}\nuncorrected {uncorrected}");
    // A fifth of the requests fall due inside a stall: the corrected p99 is most of it.
    assert!(c99 >= 100_000.0, "corrected p99 {c99} µs misses the stall");
    // Only the one request in flight per connection waits from its send: 4 per 2000.
    assert!(u99 < 20_000.0, "uncorrected p99 {u99} µs");
    assert!(c99 > 10.0 * u99, "corrected p99 {c99} vs uncorrected {u99}");
    // Both see the stall at the top.
    assert!(f(&uncorrected["max"]) >= 100_000.0, "{uncorrected}");
    assert!(f(&corrected["max"]) >= 150_000.0, "{corrected}");
    // The connections caught up after each stall: the rate held.
    let achieved = f(&run["open_loop"]["achieved_rps"]);
    assert!(
        (achieved / 2000.0 - 1.0).abs() < 0.02,
        "achieved {achieved} req/s of 2000"
    );
    assert_eq!(run["errors"], 0);
}

/// `bench serve --model reactor` pinned to CPU 0, with its ready line's address.
#[cfg(target_os = "linux")]
fn reactor_on_cpu0() -> (std::process::Child, SocketAddr) {
    use std::process::Stdio;
    let mut child = bench()
        .args(["serve", "--model", "reactor", "--cpus", "0"])
        .args(["--duration", "60s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let ready: serde_json::Value = serde_json::from_str(&line).expect("ready line is JSON");
    let addr = ready["listening"].as_str().unwrap().parse().unwrap();
    (child, addr)
}

/// Within 1% at 1k and 20k req/s: `bench load` against a reactor at 1k, `bench run` (which
/// pins the server to CPU 0 and the client to CPU 1 itself) at 20k.
#[test]
#[cfg(target_os = "linux")]
fn the_achieved_rate_is_within_one_percent_of_the_rate_asked_for() {
    let _machine = common::whole_machine();
    let (mut server, addr) = reactor_on_cpu0();
    let run = load(
        addr,
        &[
            "--rate", "1000", "-c", "10", "-d", "3s", "--warmup", "500ms", "--cpus", "1",
        ],
        0,
    );
    let _ = server.kill();
    let _ = server.wait();
    let open = &run["open_loop"];
    eprintln!("1k: {open}");
    assert_eq!(f(&open["requested_rps"]), 1000.0);
    assert_eq!(f(&run["rate"]), 1000.0);
    for key in ["achieved_rps", "sent_rps"] {
        let got = f(&open[key]);
        assert!((got / 1000.0 - 1.0).abs() <= 0.01, "{key} {got} of 1000");
    }
    // Paced by a timer, not the poller's millisecond: the median request goes out well under
    // a millisecond late.
    assert!(f(&open["pacing_error_us"]["p50"]) < 500.0, "{open}");
    assert!(f(&open["pacing_error_us"]["samples"]) > 2000.0, "{open}");

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run.json");
    let o = bench()
        .args(["run", "--model", "reactor", "--rate", "20k", "-c", "50"])
        .args([
            "-d",
            "3s",
            "--warmup",
            "500ms",
            "--accounting",
            "off",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    expect(&o, 0, &["reactor"]);
    let doc = valid_result(&out);
    assert_eq!(doc["scenario"]["rate"], 20000.0);
    let run = &doc["runs"][0];
    let open = &run["open_loop"];
    eprintln!("20k: {open}");
    for key in ["achieved_rps", "sent_rps"] {
        let got = f(&open[key]);
        assert!((got / 20_000.0 - 1.0).abs() <= 0.01, "{key} {got} of 20000");
    }
    assert!(run["latency_uncorrected_us"]["p99"].is_number(), "{run}");
    assert!(run["histogram_uncorrected"].is_string(), "{run}");
    // Corrected latency is never below the uncorrected (a request cannot be sent before it
    // is due).
    assert!(f(&run["latency_us"]["p50"]) >= f(&run["latency_uncorrected_us"]["p50"]));
}

/// A slow open loop works on every platform (under Wine too): the rate is held and every
/// answer checked.
#[test]
fn a_slow_open_loop_holds_its_rate_everywhere() {
    let _machine = common::shared_machine();
    let addr = stalling_echo_server(Duration::ZERO);
    let run = load(
        addr,
        &["--rate", "200", "-c", "2", "-d", "2s", "--warmup", "200ms"],
        0,
    );
    let achieved = f(&run["open_loop"]["achieved_rps"]);
    assert!(
        (achieved / 200.0 - 1.0).abs() <= 0.05,
        "achieved {achieved}"
    );
    assert_eq!(run["errors"], 0);
    assert_eq!(run["open_loop"]["unsent_requests"], 0);
}

#[test]
fn bad_rates_are_refused_with_the_fix() {
    for (args, needle) in [
        (vec!["--rate", "0"], "20k"),
        (vec!["--rate", "fast"], "20k"),
        (vec!["--rate", "1000", "-p", "4"], "drop --pipeline"),
    ] {
        let o = bench()
            .args(["load", "--target", "127.0.0.1:9"])
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        assert!(text(&o).contains(needle), "{args:?}: {}", text(&o));
    }
    let o = bench()
        .args([
            "run", "--model", "reactor", "--slo", "p99=1ms", "--rate", "5k",
        ])
        .output()
        .unwrap();
    expect(&o, 2, &["drop --rate"]);
    let o = bench()
        .args(["run", "--model", "reactor", "--slo", "p99"])
        .output()
        .unwrap();
    expect(&o, 2, &["p99=2ms"]);
}

/// The live progress line: drawn on a terminal (here a pseudo-terminal from util-linux's
/// `script`), not when stdout is a pipe, and not with `--quiet`.
#[test]
#[cfg(target_os = "linux")]
fn the_progress_line_shows_on_a_terminal_only() {
    let _machine = common::shared_machine();
    let addr = stalling_echo_server(Duration::ZERO);
    let command = |extra: &str| {
        format!(
            "{} load --target {addr} -c 2 --rate 500 -d 2s --warmup 1s {extra}",
            env!("CARGO_BIN_EXE_bench")
        )
    };
    let in_terminal = |extra: &str| {
        let o = std::process::Command::new("script")
            .args(["-qfec", &command(extra), "/dev/null"])
            .output()
            .expect("`script` (Debian: bsdutils) runs a command in a pseudo-terminal");
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        text(&o)
    };
    let shown = in_terminal("");
    assert!(shown.contains("warm-up "), "{shown}");
    assert!(shown.contains(" req/s  p99 "), "{shown}");
    assert!(shown.contains(" errors"), "{shown}");
    let quiet = in_terminal("--quiet");
    assert!(!quiet.contains("warm-up "), "{quiet}");
    let o = bench()
        .args(command("").split_whitespace().skip(1).collect::<Vec<_>>())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(!text(&o).contains("warm-up "), "{}", text(&o));
}
