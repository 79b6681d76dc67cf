//! The load generator split over client processes (`--client-processes`, or on its own when
//! one process's open-file limit cannot hold the connections): every connection served, the
//! tallies merged without loss, errors counted, and no client process left behind whatever
//! happens to the parent.
#![cfg(target_os = "linux")]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{alive, bench, children, expect, text, valid_result, with_fd_limit};
use iomodels::metrics::histogram::decode;
use iomodels::protocol::{Cost, Protocol, Workload};
use serde_json::Value;

/// A reactor in this process (whose open-file limit is the machine's, not the client's).
fn reactor() -> (SocketAddr, Box<dyn iomodels::models::RunningServer>) {
    let variant = common::variants()
        .into_iter()
        .find(|v| v.name == "reactor")
        .expect("the reactor model");
    let protocol = Protocol {
        workload: Workload::Echo,
        message_size: Some(64),
        cost: Cost::new(0, 0),
    };
    common::start_server(&variant, protocol)
}

/// `bench load` against `addr` with `args`, its open-file limit 64 (one process holds about
/// 40 connections then), the result in `out`.
fn load_with_64_files(addr: SocketAddr, args: &[&str], out: &std::path::Path) -> Command {
    let mut cmd = bench();
    cmd.args(["load", "--target", &addr.to_string(), "--cpus", "1"])
        .args(args)
        .arg("--json")
        .arg(out);
    with_fd_limit(&mut cmd, 64);
    cmd
}

/// The client processes (`bench load-part`) among `pid`'s children now.
fn client_processes(pid: u32) -> Vec<u32> {
    children(pid)
        .into_iter()
        .filter(|child| {
            let cmdline = std::fs::read(format!("/proc/{child}/cmdline")).unwrap_or_default();
            String::from_utf8_lossy(&cmdline).contains("load-part")
        })
        .collect()
}

/// Waits up to 10 s for every pid to be gone; returns those still alive.
fn survivors(pids: &[u32]) -> Vec<u32> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left: Vec<u32> = pids.iter().copied().filter(|&p| alive(p)).collect();
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `child` to the end, noting every client process it had meanwhile.
fn watch(mut child: Child) -> (Output, Vec<u32>) {
    let mut seen = Vec::new();
    while child.try_wait().unwrap().is_none() {
        for pid in client_processes(child.id()) {
            if !seen.contains(&pid) {
                seen.push(pid);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    (child.wait_with_output().unwrap(), seen)
}

fn spawn(mut cmd: Command) -> Child {
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start bench")
}

/// The checks every split run must pass: the figures of the processes add up to the run's,
/// and the histogram holds every answered (and stalled) request.
fn assert_merged(run: &Value, processes: usize) {
    let client = &run["client"];
    assert_eq!(client["processes"], processes, "{client}");
    let per = client["per_process"].as_array().expect("per_process");
    assert_eq!(per.len(), processes);
    let sum = |key: &str| per.iter().map(|p| p[key].as_u64().unwrap()).sum::<u64>();
    assert_eq!(sum("connections"), run["connections"].as_u64().unwrap());
    assert_eq!(sum("requests"), run["requests"].as_u64().unwrap());
    assert_eq!(sum("errors"), run["errors"].as_u64().unwrap());
    assert_eq!(sum("warmup_errors"), run["warmup_errors"].as_u64().unwrap());
    assert_eq!(sum("threads"), run["client_threads"].as_u64().unwrap());
    let histogram = decode(run["histogram"].as_str().unwrap()).unwrap();
    assert_eq!(
        histogram.len(),
        run["requests"].as_u64().unwrap() + run["stalled_requests"].as_u64().unwrap()
    );
    let series: u64 = run["timeseries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(series, run["requests"].as_u64().unwrap());
    let cpu: f64 = per
        .iter()
        .map(|p| p["cpu_user_s"].as_f64().unwrap() + p["cpu_sys_s"].as_f64().unwrap())
        .sum();
    let total = client["cpu_user_s"].as_f64().unwrap() + client["cpu_sys_s"].as_f64().unwrap();
    assert!(
        total + 0.01 >= cpu && cpu > 0.0,
        "the client's CPU ({total} s) must include its processes' ({cpu} s)"
    );
}

#[test]
fn a_low_file_limit_splits_the_client_and_every_connection_is_served() {
    let _machine = common::shared_machine();
    let (addr, server) = reactor();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let cmd = load_with_64_files(addr, &["-c", "100", "-d", "2s", "--warmup", "500ms"], &out);
    let (o, seen) = watch(spawn(cmd));
    expect(&o, 0, &["runs in 3 processes", "served"]);
    assert_eq!(seen.len(), 3, "client processes seen: {seen:?}");
    assert!(
        survivors(&seen).is_empty(),
        "a client process outlived bench load"
    );
    let doc = valid_result(&out);
    let run = &doc["runs"][0];
    assert_eq!(run["connections_established"], 100, "{run}");
    assert_eq!(run["starved_connections"], 0, "{run}");
    assert_eq!(run["errors"], 0, "{run}");
    assert!(run["requests"].as_u64().unwrap() > 100);
    assert_merged(run, 3);
    server.stop().unwrap();
}

#[test]
fn the_open_loop_keeps_its_rate_over_client_processes() {
    let _machine = common::shared_machine();
    let (addr, server) = reactor();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let cmd = load_with_64_files(
        addr,
        &[
            "-c",
            "100",
            "--rate",
            "2000",
            "-d",
            "2s",
            "--warmup",
            "500ms",
            "--client-processes",
            "4",
        ],
        &out,
    );
    let (o, _) = watch(spawn(cmd));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let doc = valid_result(&out);
    let run = &doc["runs"][0];
    assert_merged(run, 4);
    // Each process sends its slice of one schedule: 2,000 a second between them, not each.
    let sent = run["open_loop"]["sent_rps"].as_f64().unwrap();
    assert!((1900.0..=2100.0).contains(&sent), "sent {sent}/s: {run}");
    assert_eq!(run["starved_connections"], 0, "{run}");
    server.stop().unwrap();
}

/// An echo server that corrupts the 20th answer on every connection: each connection fails
/// once in 20 requests (`mismatch`), reconnects, and goes on.
fn corrupting_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            std::thread::spawn(move || {
                let _ = stream.set_nodelay(true);
                let mut buf = [0u8; 4096];
                let mut reads = 0;
                loop {
                    let n = match stream.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    reads += 1;
                    if reads % 20 == 0 {
                        buf[0] ^= 0xff;
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

#[test]
fn errors_in_client_processes_are_counted_and_summed() {
    let _machine = common::shared_machine();
    let addr = corrupting_server();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let cmd = load_with_64_files(
        addr,
        &[
            "-c",
            "60",
            "-d",
            "1500ms",
            "--warmup",
            "500ms",
            "--client-processes",
            "2",
        ],
        &out,
    );
    let (o, seen) = watch(spawn(cmd));
    expect(&o, 1, &["mismatch"]);
    assert!(
        survivors(&seen).is_empty(),
        "a client process outlived bench load"
    );
    let doc = valid_result(&out);
    let run = &doc["runs"][0];
    let errors = run["errors"].as_u64().unwrap();
    assert!(errors > 0, "{run}");
    assert_eq!(run["error_kinds"]["mismatch"], errors, "{run}");
    let per = run["client"]["per_process"].as_array().unwrap();
    assert!(
        per.iter().all(|p| p["errors"].as_u64().unwrap() > 0),
        "every process met the corrupted answers: {per:?}"
    );
    assert_merged(run, 2);
}

#[test]
fn a_client_process_that_dies_fails_the_run_and_takes_the_others_down() {
    let _machine = common::shared_machine();
    let (addr, server) = reactor();
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = load_with_64_files(
        addr,
        &["-c", "100", "-d", "5s", "--warmup", "500ms"],
        &dir.path().join("r.json"),
    );
    cmd.env(
        iomodels::hooks::FAULT,
        iomodels::hooks::FAULT_CLIENT_PROCESS_EXIT,
    );
    let started = Instant::now();
    let (o, seen) = watch(spawn(cmd));
    expect(
        &o,
        3,
        &[
            "client process 2 of 3",
            "exit code 3",
            iomodels::hooks::FAULT_CLIENT_PROCESS_EXIT,
        ],
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "bench load went on after a client process died"
    );
    assert_eq!(seen.len(), 3, "client processes seen: {seen:?}");
    assert!(
        survivors(&seen).is_empty(),
        "a client process outlived the failure"
    );
    server.stop().unwrap();
}

#[test]
fn sigkill_of_the_parent_leaves_no_client_process() {
    let _machine = common::shared_machine();
    let (addr, server) = reactor();
    let dir = tempfile::tempdir().unwrap();
    let cmd = load_with_64_files(
        addr,
        &["-c", "100", "-d", "60s", "--warmup", "500ms"],
        &dir.path().join("r.json"),
    );
    let mut child = spawn(cmd);
    let deadline = Instant::now() + Duration::from_secs(20);
    let seen = loop {
        let now = client_processes(child.id());
        if now.len() == 3 {
            break now;
        }
        assert!(Instant::now() < deadline, "no client processes started");
        std::thread::sleep(Duration::from_millis(20));
    };
    std::thread::sleep(Duration::from_millis(1500));
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        survivors(&seen),
        Vec::<u32>::new(),
        "client processes outlived SIGKILL"
    );
    server.stop().unwrap();
}

#[test]
fn bench_run_splits_the_client_on_request_and_records_it() {
    let _machine = common::shared_machine();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let o = bench()
        .args([
            "run",
            "--model",
            "reactor",
            "-c",
            "40",
            "-d",
            "1s",
            "--warmup",
            "300ms",
            "--client-processes",
            "2",
            "--accounting",
            "off",
            "--no-report",
            "--quiet",
        ])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    expect(&o, 0, &[]);
    let doc = valid_result(&out);
    let run = &doc["runs"][0];
    assert_merged(run, 2);
    assert_eq!(run["starved_connections"], 0, "{run}");
    assert!(run["server"]["threads"].as_u64().unwrap() >= 1, "{run}");
}
