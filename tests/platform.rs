//! What differs between platforms, tested on each: the models of the other platform are
//! refused with the platform they need (exit 3), `bench serve --stdin-control` (how `bench run`
//! drives its servers on Windows, which has no SIGUSR1), and on Windows an end-to-end
//! `bench run --model proactor-iocp` whose result file validates against the schema.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdout, Stdio};
use std::time::Duration;

mod common;
use common::*;

#[test]
fn the_other_platforms_models_exit_3_naming_the_platform_they_need() {
    let listed = run(&["models", "--json"]);
    assert!(listed.status.success(), "{}", text(&listed));
    let list: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    for name in OTHER_PLATFORM_MODELS {
        let entry = list
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == *name)
            .unwrap_or_else(|| panic!("{name} is not listed by bench models"));
        assert_eq!(entry["available"], false, "{entry}");
        let why = entry["unavailable_reason"].as_str().unwrap_or_default();
        assert!(
            why.contains("Windows only") || why.contains("Linux"),
            "{why}"
        );

        let o = run(&["run", "--model", name, "--duration", "1s", "--quiet"]);
        expect(&o, 3, &[&format!("model `{name}` cannot run here"), why]);
        let o = run(&["serve", "--model", name]);
        expect(&o, 3, &["cannot run here"]);
    }
}

/// `bench serve --stdin-control` with its stdin and stdout piped; returns the ready line too.
fn serve_with_stdin() -> (Child, BufReader<ChildStdout>, serde_json::Value) {
    let mut child = bench()
        .args(["serve", "--model", "tokio", "--stdin-control"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start bench serve");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let ready = next_line(&mut out);
    assert!(ready["listening"].is_string(), "{ready}");
    (child, out, ready)
}

fn next_line(out: &mut BufReader<ChildStdout>) -> serde_json::Value {
    let mut line = String::new();
    out.read_line(&mut line).expect("read the server's stdout");
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?}"))
}

/// Waits up to 20 s for the child's exit code.
fn exit_code(child: &mut Child) -> Option<i32> {
    for _ in 0..2000 {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    panic!("the server did not exit within 20 s");
}

#[test]
fn serve_takes_counters_and_stop_on_stdin() {
    let (mut child, mut out, _) = serve_with_stdin();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"counters\n").unwrap();
    let counters = next_line(&mut out);
    assert!(counters["counters"]["cpu_user_s"].is_number(), "{counters}");
    // Unknown commands are reported and ignored; the server keeps serving.
    stdin.write_all(b"hello\ncounters\n").unwrap();
    let again = next_line(&mut out);
    assert!(again["counters"].is_object(), "{again}");
    stdin.write_all(b"stop\n").unwrap();
    let end = next_line(&mut out);
    assert_eq!(end["stopped"], true, "{end}");
    assert_eq!(exit_code(&mut child), Some(0));
}

#[test]
fn serve_stops_at_the_end_of_its_stdin() {
    let (mut child, mut out, _) = serve_with_stdin();
    // The harness holding the pipe is gone: the server must not outlive it.
    drop(child.stdin.take());
    let end = next_line(&mut out);
    assert_eq!(end["stopped"], true, "{end}");
    assert_eq!(exit_code(&mut child), Some(0));
}

/// The IOCP server end to end, through `bench run` (a `bench serve` child driven over its
/// stdin, the load generator in the harness): every request answered and checked, the result
/// valid against the schema, and Windows' missing counters null rather than zero.
#[cfg(windows)]
#[test]
fn proactor_iocp_runs_end_to_end_and_its_result_validates() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("iocp.json");
    let o = bench()
        .args(["run", "--model", "proactor-iocp", "--duration", "3s"])
        .args([
            "--warmup",
            "500ms",
            "--connections",
            "20",
            "--quiet",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    expect(&o, 0, &[]);
    let doc = valid_result(&out);
    let run = &doc["runs"][0];
    assert_eq!(run["model"], "proactor-iocp");
    assert!(run["requests"].as_u64().unwrap() > 0, "{run}");
    assert_eq!(run["errors"], 0, "{}", run["error_kinds"]);
    assert!(run["server"]["ctx_switches_per_request"].is_null());
    assert!(doc["env"]["kernel"]
        .as_str()
        .unwrap()
        .starts_with("Windows"));
}
