//! System-call accounting (`bench run --accounting`), Linux only: counts against a server (and
//! the load generator) whose calls per request are known, warm-up excluded, and the path where
//! counting is refused.
//! Needs perf tracepoints: root (or CAP_PERFMON) and tracefs mounted at /sys/kernel/tracing
//! (scripts/test.sh mounts it).
#![cfg(target_os = "linux")]

mod common;
use common::*;

/// `bench run --model MODEL -c 1` with `extra`, its result.
fn run_counted(model: &str, extra: &[&str]) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("acc.json");
    let o = bench()
        .args(["run", "--model", model, "-c", "1", "--quiet", "--out"])
        .arg(&out)
        .args(extra)
        .output()
        .unwrap();
    expect(&o, 0, &[]);
    valid_result(&out)
}

/// `blocking` with one connection makes exactly one `recvfrom` and one `sendto` per echo (std's
/// blocking read and write on a socket): over the window, each name's count is within 1% of
/// the requests, and so is the total within 1% of twice that. A warm-up as long as the window
/// is excluded: were it counted, the ratios would be about 2 (1.5 in a counting pass of its
/// own, whose warm-up is capped at 0.5 s). That pass measures 1 s when the timed one is longer.
#[test]
fn a_known_server_makes_the_counted_calls_per_request() {
    for (accounting, duration, counted_s) in [("same", "1s", 1.0), ("separate", "2s", 1.0)] {
        let doc = run_counted(
            "blocking",
            &["--accounting", accounting, "-d", duration, "--warmup", "1s"],
        );
        assert_eq!(doc["scenario"]["accounting"], accounting);
        let run = &doc["runs"][0];
        let s = &run["syscalls"];
        assert!(
            !s.is_null(),
            "system calls cannot be counted here: {}",
            run["syscalls_unavailable"]
        );
        assert_eq!(s["pass"], accounting, "{s}");
        for counts in [s, &run["client"]["syscalls"]] {
            let window = counts["window_s"].as_f64().unwrap();
            assert!((window - counted_s).abs() < 0.1, "{accounting}: {counts}");
        }
        let requests = s["requests"].as_u64().unwrap() as f64;
        assert!(requests > 1000.0, "{s}");
        for name in ["recvfrom", "sendto"] {
            let n = s["by_name"][name].as_u64().unwrap_or(0) as f64;
            assert!(
                (n / requests - 1.0).abs() < 0.01,
                "{accounting}: {name} {n} for {requests} requests: {s}"
            );
        }
        let total = s["total"].as_u64().unwrap() as f64;
        assert!(
            (total / (2.0 * requests) - 1.0).abs() < 0.01,
            "{accounting}: {total} calls for {requests} requests: {s}"
        );
        assert!(run.get("syscalls_unavailable").is_none(), "{run}");
        // The load generator's own: one send and one receive per request (its epoll_wait
        // depends on timing).
        // (With `separate` they come from a pass of their own, with its own request count.)
        let c = &run["client"]["syscalls"];
        assert_eq!(c["pass"], accounting, "{c}");
        let client_requests = c["requests"].as_u64().unwrap() as f64;
        for name in ["recvfrom", "sendto"] {
            let n = c["by_name"][name].as_u64().unwrap_or(0) as f64;
            assert!(
                (n / client_requests - 1.0).abs() < 0.01,
                "{accounting}: client {name} {n} for {client_requests} requests: {c}"
            );
        }
    }
}

/// `proactor-uring` with one connection makes one `io_uring_enter` per echo (issue 23): the
/// call that submits the answer's send also waits for its completion and the next request,
/// where it made two (submit and reap the send, then wait). Nothing else: the ring's setup
/// happens before the window.
#[test]
fn the_proactor_makes_one_enter_per_request_at_one_connection() {
    let doc = run_counted("proactor-uring", &["--accounting", "same", "-d", "1s"]);
    let s = &doc["runs"][0]["syscalls"];
    assert!(!s.is_null(), "system calls not counted: {}", doc["runs"][0]);
    let requests = s["requests"].as_u64().unwrap() as f64;
    assert!(requests > 1000.0, "{s}");
    let enters = s["by_name"]["io_uring_enter"].as_u64().unwrap_or(0) as f64;
    assert!(
        (enters / requests - 1.0).abs() < 0.01,
        "{enters} io_uring_enter for {requests} requests: {s}"
    );
    let total = s["total"].as_u64().unwrap() as f64;
    assert!(total - enters < 0.01 * requests, "{s}");
}

/// Counting refused (as the kernel would refuse it: IOMODELS_REFUSE_PERF): by default the run
/// goes on with `syscalls` null and the reason; asked for explicitly, exit 3 with the reason.
#[test]
fn refused_counting_is_reported_or_fatal_when_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("refused.json");
    let o = bench()
        .env(iomodels::hooks::REFUSE_PERF, "1")
        .args([
            "run", "--model", "reactor", "-c", "2", "-d", "300ms", "--warmup", "0s",
        ])
        .args(["--quiet", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    expect(&o, 0, &[]);
    let doc = valid_result(&out);
    let run = &doc["runs"][0];
    assert!(run["syscalls"].is_null(), "{run}");
    let why = run["syscalls_unavailable"].as_str().unwrap();
    assert!(why.contains("refused"), "{why}");

    for accounting in ["same", "separate"] {
        let o = bench()
            .env(iomodels::hooks::REFUSE_PERF, "1")
            .args(["run", "--model", "reactor", "-c", "2", "-d", "300ms"])
            .args([
                "--warmup",
                "0s",
                "--quiet",
                "--accounting",
                accounting,
                "--out",
            ])
            .arg(dir.path().join("x.json"))
            .output()
            .unwrap();
        expect(
            &o,
            3,
            &[
                &format!("--accounting {accounting} was asked for"),
                "refused",
            ],
        );
    }

    // Off: not counted, and said so.
    let o = bench()
        .args([
            "run", "--model", "reactor", "-c", "2", "-d", "300ms", "--warmup", "0s",
        ])
        .args(["--quiet", "--accounting", "off", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    expect(&o, 0, &[]);
    let doc = valid_result(&out);
    assert!(doc["runs"][0]["syscalls"].is_null());
    assert_eq!(doc["scenario"]["accounting"], "off");
}
