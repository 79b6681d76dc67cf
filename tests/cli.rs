//! The binary as a user meets it: each error with the exit code the README gives ("Exit codes:")
//! and a message that names the fix, and no server left behind whatever happens to `bench run`.
//!
//! Unix only: these tests send signals and read /proc; tests/platform.rs covers the binary on
//! Windows (scripts/test-windows.sh runs it under Wine).
#![cfg(unix)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::*;

/// Every model, once with its default poller (None) and once with each other poller it takes.
fn every_model_and_poller() -> Vec<(&'static str, Option<&'static str>)> {
    let mut all = Vec::new();
    for m in models_here() {
        all.push((m.name, None));
        all.extend(m.pollers.iter().skip(1).map(|p| (m.name, Some(p.name()))));
    }
    all
}

#[test]
fn unknown_model_exits_2_and_lists_the_models() {
    let o = run(&["run", "--model", "nosuch"]);
    expect(
        &o,
        2,
        &["unknown model `nosuch`", "blocking, threadpool, reactor"],
    );
    let o = run(&["serve", "--model", "nosuch"]);
    expect(&o, 2, &["unknown model"]);
}

#[test]
fn bad_duration_exits_2_and_shows_the_syntax() {
    let o = run(&["run", "--model", "reactor", "--duration", "10"]);
    expect(&o, 2, &["`10` is not a duration", "10s, 500ms or 2m"]);
    let o = run(&["load", "--target", "127.0.0.1:1", "--warmup", "soon"]);
    expect(&o, 2, &["is not a duration"]);
}

#[test]
fn bad_cpu_list_exits_2_and_shows_the_syntax() {
    let o = run(&["run", "--model", "reactor", "--server-cpus", "0-x"]);
    expect(&o, 2, &["0-3 or 0,2"]);
    let o = run(&["serve", "--model", "reactor", "--cpus", "4096"]);
    expect(&o, 2, &["does not exist"]);
}

#[test]
fn port_in_use_exits_3_and_suggests_another() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let o = run(&["serve", "--model", "reactor", "--listen", &addr]);
    expect(&o, 3, &["is in use", "--listen"]);
}

#[test]
fn server_exiting_before_ready_shows_its_stderr() {
    let o = bench()
        .args(["run", "--model", "reactor", "-d", "1s", "--quiet"])
        .env(
            iomodels::hooks::FAULT,
            iomodels::hooks::FAULT_EXIT_BEFORE_READY,
        )
        .output()
        .unwrap();
    expect(
        &o,
        3,
        &["exited before it was ready", "exit code 3", "a test hook"],
    );
}

#[test]
fn invalid_echo_bytes_are_counted_and_exit_1() {
    // An echo server that flips one bit of every read.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut s = stream;
                let mut buf = [0u8; 4096];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 || {
                        buf[n - 1] ^= 1;
                        s.write_all(&buf[..n]).is_err()
                    } {
                        return;
                    }
                }
            });
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bad.json");
    let o = run(&[
        "load",
        "--target",
        &addr,
        "-c",
        "4",
        "-d",
        "1s",
        "--warmup",
        "0s",
        "--json",
        json.to_str().unwrap(),
    ]);
    expect(&o, 1, &["mismatch"]);
    let result: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let mismatches = result["runs"][0]["error_kinds"]["mismatch"]
        .as_u64()
        .unwrap_or(0);
    assert!(mismatches > 0, "no mismatch counted: {result}");
}

#[test]
fn load_against_nothing_exits_3() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let o = run(&[
        "load",
        "--target",
        &port.to_string(),
        "-d",
        "1s",
        "--warmup",
        "0s",
    ]);
    expect(&o, 3, &["cannot connect", "is a server listening"]);
}

/// The first `bench serve` child of `bench`, waited for up to 20 s.
fn wait_for_child(bench: &Child) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(&pid) = children(bench.id()).first() {
            return pid;
        }
        assert!(Instant::now() < deadline, "bench run started no server");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_gone(pid: u32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(pid) {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

fn long_run(out: &std::path::Path) -> Child {
    bench()
        .args([
            "run", "--model", "blocking", "-d", "60s", "--warmup", "1s", "-c", "4", "--quiet",
        ])
        .arg("--out")
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Signals `bench run` 1.5 s into its measured window; returns its exit code, its server's
/// pid and the result file as it was left (`None` when there is none).
fn stop_mid_run(signal: i32) -> (Option<i32>, u32, Option<serde_json::Value>) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let mut bench = long_run(&out);
    let server = wait_for_child(&bench);
    std::thread::sleep(Duration::from_millis(1500));
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(bench.id() as i32, signal) };
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = bench.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "bench run ignored signal {signal}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        wait_gone(server),
        "bench serve {server} outlived bench run (signal {signal})"
    );
    // Whatever is left is whole: written to a temporary file and renamed.
    let left = std::fs::read_to_string(&out).ok().map(|text| {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("half-written result: {e}"))
    });
    let strays: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        // r/ is the report of the partial result.
        .filter(|n| n != "r.json" && n != "r")
        .collect();
    if signal != libc::SIGKILL {
        assert!(strays.is_empty(), "left behind: {strays:?}");
    }
    (status.code(), server, left)
}

/// SIGINT and SIGTERM: the run so far is written as a partial result that says why it ended.
fn assert_partial(left: Option<serde_json::Value>) {
    let result = left.expect("an interrupted run wrote no result");
    let run = &result["runs"][0];
    assert!(
        run["failure"]
            .as_str()
            .unwrap_or("")
            .contains("interrupted by a signal"),
        "{run}"
    );
    assert!(run["requests"].as_u64().unwrap() > 0, "nothing kept: {run}");
}

#[test]
fn sigint_mid_run_leaves_no_server() {
    let (code, _, left) = stop_mid_run(libc::SIGINT);
    assert_eq!(code, Some(130));
    assert_partial(left);
}

#[test]
fn sigterm_mid_run_leaves_no_server() {
    let (code, _, left) = stop_mid_run(libc::SIGTERM);
    assert_eq!(code, Some(130));
    assert_partial(left);
}

#[test]
fn sigkill_of_bench_run_still_leaves_no_server() {
    let (code, _, _) = stop_mid_run(libc::SIGKILL);
    assert_eq!(code, None);
}

/// A server that stops answering (here: its process stopped with SIGSTOP, so it answers
/// neither the clients nor the harness's counters request) fails the run within the run's
/// length plus a bounded grace (the counters request's 5 s and the stop), keeps the partial
/// result, and counts the requests left waiting as errors of their own kind.
#[test]
fn a_stalled_server_fails_the_run_in_bounded_time_and_keeps_the_partial_result() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let started = Instant::now();
    let (o, server) = signal_the_server_mid_run(&out, libc::SIGSTOP);
    let took = started.elapsed();
    expect(&o, 1, &["FAILED", "stopped answering", "unanswered="]);
    assert!(
        took < Duration::from_secs(4 + 1 + 12),
        "a stalled server held bench run for {took:?}"
    );
    assert!(wait_gone(server), "the stopped server was left behind");
    let result: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("result file kept")).unwrap();
    let run = &result["runs"][0];
    let failure = run["failure"].as_str().unwrap_or("");
    assert!(failure.contains("stopped answering"), "{run}");
    assert!(failure.contains("its process is stopped"), "{run}");
    assert!(run["requests"].as_u64().unwrap() > 0, "nothing kept: {run}");
    assert_eq!(run["error_kinds"]["unanswered"], 4, "{run}");
}

/// `bench load` against a server that answers for a while and then goes silent (its serving
/// thread stuck, its process alive): exit 1 within the run's length, the silence named.
#[test]
fn load_against_a_server_that_goes_silent_fails_with_unanswered_errors() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let silent_from = Instant::now() + Duration::from_millis(1500);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 {
                        return;
                    }
                    if Instant::now() >= silent_from {
                        // Stuck: holds the connection and answers nothing more.
                        std::thread::sleep(Duration::from_secs(30));
                        return;
                    }
                    if s.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            });
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("load.json");
    let started = Instant::now();
    let o = bench()
        .args(["load", "--target", &addr.to_string(), "-c", "2", "-d", "3s"])
        .args(["--warmup", "500ms", "--quiet", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    expect(&o, 1, &["stopped answering"]);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let result: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let run = &result["runs"][0];
    assert_eq!(run["error_kinds"]["unanswered"], 2, "{run}");
    assert!(run["requests"].as_u64().unwrap() > 0, "{run}");
}

/// `bench run --model reactor -d 4s` with `signal` sent to its server 2 s in; its output and
/// the server's pid.
fn signal_the_server_mid_run(out: &std::path::Path, signal: i32) -> (std::process::Output, u32) {
    let bench = bench()
        .args([
            "run", "--model", "reactor", "-d", "4s", "--warmup", "500ms", "-c", "4", "--quiet",
        ])
        .arg("--out")
        .arg(out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let server = wait_for_child(&bench);
    std::thread::sleep(Duration::from_millis(2000));
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(server as i32, signal) };
    (bench.wait_with_output().unwrap(), server)
}

#[test]
fn server_dying_mid_run_fails_the_run_and_keeps_the_partial_result() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let (o, _) = signal_the_server_mid_run(&out, libc::SIGKILL);
    expect(
        &o,
        1,
        &["FAILED", "exited during the run", "killed by signal 9"],
    );
    let result: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("result file kept")).unwrap();
    let run = &result["runs"][0];
    assert!(run["failure"]
        .as_str()
        .unwrap_or("")
        .contains("exited during the run"));
    assert!(
        run["requests"].as_u64().unwrap() > 0,
        "the partial measurement was lost: {run}"
    );
    assert!(
        run["errors"].as_u64().unwrap() > 0,
        "the dead server caused no client error"
    );
}

#[test]
fn models_json_lists_every_model_with_availability() {
    let o = run(&["models", "--json"]);
    expect(&o, 0, &[]);
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    for expected in [
        "blocking",
        "threadpool",
        "reactor",
        "multi-reactor",
        "reactor-pool",
        "reuseport",
        "proactor-emulated",
        "tokio",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    for m in list.as_array().unwrap() {
        assert!(
            m["available"].is_boolean() && m["threads"].is_string(),
            "{m}"
        );
        assert_eq!(
            m["available"] == false,
            m["unavailable_reason"].is_string(),
            "{m}"
        );
    }
}

/// Regressions: the reactor stopped accepting for good after EMFILE (its edge was spent), and
/// the blocking models used two descriptors per connection and dropped connections silently.
/// The level-triggered pollers must retry too, without spinning on the readable listener.
#[test]
fn every_model_serves_everyone_after_running_out_of_descriptors() {
    for (model, poller) in every_model_and_poller() {
        let mut cmd = bench();
        cmd.args([
            "serve",
            "--model",
            model,
            "--threads",
            "4",
            "--duration",
            "60s",
        ])
        .args(poller.map(|p| ["--poller", p]).into_iter().flatten())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
        with_fd_limit(&mut cmd, 32);
        let mut server = cmd.spawn().unwrap();
        let mut ready = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(server.stdout.as_mut().unwrap()),
            &mut ready,
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&ready).expect("ready line");
        let addr: std::net::SocketAddr = v["listening"].as_str().unwrap().parse().unwrap();
        // More clients than the server has descriptors: the rest wait in the backlog.
        let left = clients_left_unserved(addr, 48);
        let _ = server.kill();
        let _ = server.wait();
        assert_eq!(
            left, 0,
            "{model} {poller:?}: {left} of 48 clients never served"
        );
    }
}

/// Regression: a load thread that failed before the connect barrier left `bench load` hanging
/// for ever, deaf to SIGTERM.
#[test]
fn load_that_cannot_set_up_exits_instead_of_hanging() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    for limit in [5, 6, 7] {
        let mut cmd = bench();
        cmd.args([
            "load",
            "--target",
            &addr,
            "-c",
            "4",
            "--threads",
            "2",
            "-d",
            "1s",
        ])
        .args(["--warmup", "0s"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        with_fd_limit(&mut cmd, limit);
        let mut child = cmd.spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("bench load with {limit} descriptors hung");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(
            !status.success(),
            "with {limit} descriptors it cannot succeed"
        );
    }
}

/// Regression: connections a `threadpool` never served did not show in the latency figures,
/// which then looked better than every other model's.
#[test]
fn starved_connections_show_in_the_latency_tail() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let o = bench()
        .args([
            "run",
            "--model",
            "threadpool",
            "--threads",
            "1",
            "-c",
            "4",
            "-d",
            "1s",
        ])
        .args(["--warmup", "200ms", "--quiet", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    expect(
        &o,
        0,
        &[
            "3 of 4 connections completed no request",
            "a pool of 1 worker thread(s) serves at most 1 live connection(s)",
            "--threads 4 would serve every connection",
        ],
    );
    let result: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let run = &result["runs"][0];
    assert_eq!(run["starved_connections"], 3, "{run}");
    assert!(run["unfinished_requests"].as_u64().unwrap() >= 3, "{run}");
    // They waited the warm-up and the whole window at least.
    let max = run["latency_us"]["max"].as_f64().unwrap();
    assert!(
        max >= 1_200_000.0,
        "max latency {max} µs hides the starved connections"
    );
}

/// Starts `bench serve` and returns it with its ready line parsed.
fn serve(
    extra: &[&str],
) -> (
    Child,
    std::io::BufReader<std::process::ChildStdout>,
    serde_json::Value,
) {
    let mut child = bench()
        .args(["serve", "--model", "reactor"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    let ready: serde_json::Value = serde_json::from_str(&line).expect("ready line is JSON");
    (child, out, ready)
}

fn last_line(out: std::io::BufReader<std::process::ChildStdout>) -> serde_json::Value {
    let lines: Vec<String> = std::io::BufRead::lines(out).map_while(Result::ok).collect();
    serde_json::from_str(lines.last().expect("no final line")).expect("final line is JSON")
}

#[test]
fn serve_prints_its_counters_and_exits_0_on_sigterm_and_at_the_end_of_duration() {
    let (mut child, out, ready) = serve(&[]);
    assert!(
        ready["listening"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:"),
        "{ready}"
    );
    assert_eq!(ready["model"], "reactor");
    std::thread::sleep(Duration::from_millis(200));
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let end = last_line(out);
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert_eq!(end["stopped"], true, "{end}");
    assert!(
        end["counters"]["peak_rss_bytes"].as_u64().unwrap() > 0,
        "{end}"
    );

    let started = Instant::now();
    let (mut child, out, _) = serve(&["--duration", "500ms"]);
    let end = last_line(out);
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert_eq!(end["stopped"], true, "{end}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "--duration did not stop it"
    );
}

#[test]
fn an_unwritable_result_path_fails_before_measuring() {
    let started = Instant::now();
    let o = run(&[
        "run",
        "--model",
        "reactor",
        "-d",
        "30s",
        "--out",
        "/proc/no/such/r.json",
    ]);
    expect(&o, 3, &["cannot write the result file", "--out"]);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "it measured first"
    );
}

#[test]
fn zero_threads_or_connections_are_refused_naming_the_flag() {
    let o = run(&["serve", "--model", "reactor", "--threads", "0"]);
    expect(&o, 2, &["--threads", "at least 1"]);
    let o = run(&["run", "--all", "--client-threads", "0"]);
    expect(&o, 2, &["--client-threads", "at least 1"]);
    let o = run(&["load", "--target", "127.0.0.1:1", "-c", "0"]);
    expect(&o, 2, &["--connections", "at least 1"]);
}

#[test]
fn serve_reports_how_connections_spread_over_its_reactors() {
    for model in ["reuseport", "multi-reactor"] {
        let mut child = bench()
            .args(["serve", "--model", model, "--threads", "2"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        std::io::BufRead::read_line(&mut out, &mut line).unwrap();
        let ready: serde_json::Value = serde_json::from_str(&line).unwrap();
        let addr = ready["listening"].as_str().unwrap().to_string();
        let clients: Vec<std::net::TcpStream> = (0..20)
            .map(|i| {
                let mut s = std::net::TcpStream::connect(&addr).unwrap();
                s.write_all(&[i]).unwrap();
                let mut b = [0u8; 1];
                s.read_exact(&mut b).unwrap();
                s
            })
            .collect();
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let end = last_line(out);
        drop(clients);
        assert_eq!(child.wait().unwrap().code(), Some(0));
        let spread: Vec<u64> =
            serde_json::from_value(end["counters"]["connections_per_loop"].clone())
                .unwrap_or_else(|_| panic!("{model}: no connections_per_loop in {end}"));
        assert_eq!(spread.len(), 2, "{model}: {spread:?}");
        assert_eq!(spread.iter().sum::<u64>(), 20, "{model}: {spread:?}");
        assert!(
            spread.iter().all(|&n| n > 0),
            "{model}: a reactor got nothing: {spread:?}"
        );
    }
}

#[test]
fn poller_select_with_more_connections_than_fd_setsize_exits_2_before_starting() {
    let started = Instant::now();
    let o = run(&[
        "run", "--model", "reactor", "--poller", "select", "-c", "2000", "-d", "1s",
    ]);
    expect(&o, 2, &["FD_SETSIZE is 1024", "--poller poll or epoll"]);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "it started something first"
    );
    // The check is about the model that uses the poller, whatever else runs beside it.
    let o = run(&[
        "run", "--model", "blocking", "--model", "reactor", "--poller", "select", "-c", "1010",
    ]);
    expect(&o, 2, &["FD_SETSIZE"]);
}

#[test]
fn poller_for_a_model_without_one_exits_2_naming_the_fix() {
    let o = run(&["run", "--model", "blocking", "--poller", "poll", "-d", "1s"]);
    expect(
        &o,
        2,
        &["does not apply to model `blocking`", "drop --poller"],
    );
    let o = bench()
        .args(["serve", "--model", "threadpool", "--poller", "select"])
        .output()
        .unwrap();
    expect(&o, 2, &["does not apply to model `threadpool`"]);
    let o = run(&["serve", "--model", "reactor", "--poller", "kqueue"]);
    expect(&o, 2, &["epoll", "poll", "select"]);
}

#[test]
fn serve_names_its_poller_in_the_ready_line() {
    for (extra, want) in [
        (&[][..], serde_json::json!("epoll")),
        (&["--poller", "poll"][..], serde_json::json!("poll")),
        (&["--poller", "select"][..], serde_json::json!("select")),
    ] {
        let mut args = vec!["--duration", "200ms"];
        args.extend_from_slice(extra);
        let (mut child, out, ready) = serve(&args);
        assert_eq!(ready["poller"], want, "{ready}");
        last_line(out);
        assert_eq!(child.wait().unwrap().code(), Some(0));
    }
    let mut child = bench()
        .args(["serve", "--model", "blocking", "--duration", "200ms"])
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
    let ready: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert!(ready["poller"].is_null(), "{ready}");
    child.wait().unwrap();
}

/// select can watch descriptors below FD_SETSIZE only. A server whose low descriptors are all
/// taken closes each connection it cannot watch (never putting it in an fd_set), says so once
/// on stderr, and goes on serving the connections it can watch.
#[test]
fn select_closes_connections_it_cannot_watch_and_serves_the_others() {
    const FIRST_FILLED: libc::c_int = 12;
    const FD_SETSIZE: libc::c_int = 1024;
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit for getrlimit to fill in.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    // Not a skip: a machine that cannot open FD_SETSIZE descriptors cannot run the project's
    // C10K tests either (README, "Two commands").
    assert!(
        lim.rlim_max >= 1100,
        "the hard open-file limit ({}) is below FD_SETSIZE + 76: raise it (`ulimit -Hn 65536` \
         as root, or LimitNOFILE= in the service), then run the tests again",
        lim.rlim_max
    );
    let mut cmd = bench();
    cmd.args(["serve", "--model", "reactor", "--poller", "select"])
        .args(["--duration", "60s"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let soft = lim.rlim_max.min(4096);
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: setrlimit, fcntl and close are async-signal-safe; the closure allocates
        // nothing. It takes every free descriptor from FIRST_FILLED to FD_SETSIZE - 1 with a
        // copy of stdin (descriptors already open are left alone).
        unsafe {
            cmd.pre_exec(move || {
                let raised = libc::rlimit {
                    rlim_cur: soft,
                    rlim_max: lim.rlim_max,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                loop {
                    let fd = libc::fcntl(0, libc::F_DUPFD, FIRST_FILLED);
                    if fd < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    if fd >= FD_SETSIZE {
                        libc::close(fd);
                        return Ok(());
                    }
                }
            });
        }
    }
    let mut server = cmd.spawn().unwrap();
    let mut out = std::io::BufReader::new(server.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    let ready: serde_json::Value = serde_json::from_str(&line).expect("ready line");
    let addr: std::net::SocketAddr = ready["listening"].as_str().unwrap().parse().unwrap();

    // Whether a fresh connection is echoed (true) or closed unanswered (false).
    let try_one = |i: usize| -> (std::net::TcpStream, bool) {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let served = s.write_all(&[i as u8]).is_ok() && {
            let mut b = [0u8; 1];
            matches!(s.read(&mut b), Ok(1)) && b[0] == i as u8
        };
        (s, served)
    };
    // The first connections land in the descriptors left below FD_SETSIZE (a few, plus any
    // the test process had open at fork and closed at exec); keep them open until one lands
    // above.
    let mut served = Vec::new();
    let refused = loop {
        assert!(
            served.len() < 900,
            "every connection was served: were the descriptors filled?"
        );
        let (s, ok) = try_one(served.len());
        if !ok {
            break s;
        }
        served.push(s);
    };
    drop(refused);
    assert!(!served.is_empty(), "no connection was served");
    assert!(!try_one(1).1, "a second high descriptor was served");
    // The server carries on: the served connections still echo, and a slot freed below
    // FD_SETSIZE serves a new connection.
    for (i, s) in served.iter_mut().enumerate().rev().take(3) {
        s.write_all(&[i as u8]).unwrap();
        let mut b = [0u8; 1];
        s.read_exact(&mut b).unwrap();
        assert_eq!(b[0], i as u8);
    }
    drop(served.pop());
    // The server sees the close only when it next waits; give it a moment.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !try_one(7).1 {
        assert!(
            Instant::now() < deadline,
            "a freed descriptor was not reused"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(server.id() as i32, libc::SIGTERM) };
    let status = server.wait().unwrap();
    let mut stderr = String::new();
    server
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_eq!(
        stderr
            .matches("select cannot watch descriptor 1024 (FD_SETSIZE is 1024): use --poller poll or epoll")
            .count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains("closed"), "{stderr}");
}

/// The resident memory of a process, from /proc.
fn rss_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}

/// A client that sends without reading must not grow any server's memory: every model either
/// blocks on the write, alternates read and write, or pauses reading above its high-water
/// mark. (Measured when written: the client gets 7-13 MiB out, the servers stay at 3-8 MiB.)
#[test]
fn a_client_that_never_reads_cannot_grow_any_servers_memory() {
    for (model, poller) in every_model_and_poller() {
        let mut extra = vec!["--threads", "1"];
        if let Some(p) = poller {
            extra.extend(["--poller", p]);
        }
        let mut cmd = bench();
        cmd.args(["serve", "--model", model])
            .args(&extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().unwrap();
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        std::io::BufRead::read_line(&mut out, &mut line).unwrap();
        let ready: serde_json::Value = serde_json::from_str(&line).unwrap();
        let mut s = std::net::TcpStream::connect(ready["listening"].as_str().unwrap()).unwrap();
        s.set_nonblocking(true).unwrap();
        let chunk = vec![7u8; 64 * 1024];
        let (mut sent, deadline) = (0usize, Instant::now() + Duration::from_millis(1500));
        while sent < 64 << 20 && Instant::now() < deadline {
            match s.write(&chunk) {
                Ok(n) => sent += n,
                Err(_) => std::thread::sleep(Duration::from_millis(1)),
            }
        }
        let rss = rss_bytes(child.id());
        let _ = child.kill();
        let _ = child.wait();
        let name = format!(
            "{model}{}",
            poller.map(|p| format!(" ({p})")).unwrap_or_default()
        );
        assert!(
            rss < 40 << 20,
            "{name}: {} MiB resident after the client sent {} MiB without reading",
            rss >> 20,
            sent >> 20
        );
    }
}

/// `--idle-timeout` reaches `bench run`'s servers: an open loop that leaves each connection
/// quiet for a second between requests runs clean with the default timeout (60 s), and with
/// 300 ms the server closes the connections between requests (echo counts each as an error
/// of kind `closed`). The result records the timeout given.
#[test]
fn bench_run_passes_the_idle_timeout_to_its_servers() {
    let dir = tempfile::tempdir().unwrap();
    let quiet_run = |extra: &[&str]| {
        let out = dir.path().join("r.json");
        let o = bench()
            .args(["run", "--model", "reactor", "-c", "2", "-d", "2s"])
            .args(["--warmup", "0s", "--rate", "2", "--accounting", "off"])
            .args(["--no-report", "--quiet", "--out"])
            .arg(&out)
            .args(extra)
            .output()
            .unwrap();
        let result: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
        (o, result)
    };
    let (o, result) = quiet_run(&[]);
    expect(&o, 0, &[]);
    assert_eq!(result["scenario"]["idle_timeout_s"], 60.0);
    let (o, result) = quiet_run(&["--idle-timeout", "300ms"]);
    expect(&o, 1, &["closed="]);
    assert_eq!(result["scenario"]["idle_timeout_s"], 0.3);
    assert!(
        result["runs"][0]["error_kinds"]["closed"].as_u64() >= Some(1),
        "{}",
        result["runs"][0]
    );
}

/// The ready line says the idle timeout in force: 60 s by default, none for `0`.
#[test]
fn serve_names_its_idle_timeout_in_the_ready_line() {
    for (extra, want) in [
        (&[][..], serde_json::json!(60.0)),
        (&["--idle-timeout", "2m"][..], serde_json::json!(120.0)),
        (&["--idle-timeout", "0"][..], serde_json::Value::Null),
    ] {
        let (mut child, _out, ready) = serve(extra);
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(ready["idle_timeout_s"], want, "{extra:?}: {ready}");
    }
}
