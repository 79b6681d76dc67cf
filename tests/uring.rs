//! `proactor-uring` as a user meets it: the probe's verdict when io_uring is refused (forced
//! with the test hook `IOMODELS_REFUSE_IO_URING`), the ring-setup fallbacks (forced with
//! `IOMODELS_URING_SETUP`) reported in the ready line, the counters and the result, its options
//! refused by other models, and one client that never reads not starving the others of
//! provided buffers.
//!
//! These tests need io_uring (Linux 6.1+, not disabled by sysctl or seccomp); where it is
//! refused they fail and say so.
#![cfg(target_os = "linux")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStdout, Stdio};
use std::time::{Duration, Instant};

use iomodels::hooks::{
    REFUSE_IO_URING as URING_REFUSE_ENV, URING_RECV as URING_RECV_ENV,
    URING_SETUP as URING_SETUP_ENV,
};

mod common;
use common::*;

/// `proactor-uring`'s entry in `bench models --json`, with `env` set.
fn listing(env: &[(&str, &str)]) -> serde_json::Value {
    let mut cmd = bench();
    cmd.args(["models", "--json"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let o = cmd.output().unwrap();
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "proactor-uring")
        .expect("proactor-uring is listed")
        .clone()
}

/// Fails, saying why, when this machine refuses io_uring.
fn require_io_uring() {
    let uring = listing(&[]);
    assert!(
        uring["available"] == true,
        "these tests need io_uring, which this machine refuses: {} (Linux 6.1 or later with \
         kernel.io_uring_disabled = 0 and no seccomp filter on io_uring)",
        uring["unavailable_reason"]
    );
}

#[test]
fn refused_io_uring_is_reported_everywhere_and_skipped_by_all() {
    let o = bench()
        .env(URING_REFUSE_ENV, "1")
        .arg("models")
        .output()
        .unwrap();
    expect(&o, 0, &["proactor-uring", "UNAVAILABLE: io_uring refused"]);
    let uring = listing(&[(URING_REFUSE_ENV, "1")]);
    assert_eq!(uring["available"], false, "{uring}");
    assert!(
        uring["unavailable_reason"]
            .as_str()
            .unwrap()
            .contains(URING_REFUSE_ENV),
        "{uring}"
    );

    let o = bench()
        .env(URING_REFUSE_ENV, "1")
        .args(["serve", "--model", "proactor-uring"])
        .output()
        .unwrap();
    expect(
        &o,
        3,
        &["model `proactor-uring` cannot run here", "io_uring refused"],
    );
    let o = bench()
        .env(URING_REFUSE_ENV, "1")
        .args(["run", "--model", "proactor-uring", "-d", "200ms"])
        .output()
        .unwrap();
    expect(&o, 3, &["model `proactor-uring` cannot run here"]);

    // --all runs the others and says it skipped this one.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("all.json");
    let o = bench()
        .env(URING_REFUSE_ENV, "1")
        .args([
            "run", "--all", "-d", "200ms", "--warmup", "0s", "-c", "4", "-q",
        ])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    expect(&o, 0, &["note: skipping proactor-uring: io_uring refused"]);
    let result: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let models: Vec<&str> = result["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["model"].as_str().unwrap())
        .collect();
    assert!(!models.contains(&"proactor-uring"), "{models:?}");
    assert!(models.contains(&"reactor"), "{models:?}");
}

/// A server that is killed if the test fails before stopping it.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `bench serve --model proactor-uring` with `extra` and `env`; returns it, its stdout
/// and its ready line.
fn serve(
    extra: &[&str],
    env: &[(&str, &str)],
) -> (Server, BufReader<ChildStdout>, serde_json::Value) {
    let mut cmd = bench();
    cmd.args(["serve", "--model", "proactor-uring"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = Server(cmd.spawn().unwrap());
    let mut out = BufReader::new(child.0.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let ready: serde_json::Value = serde_json::from_str(&line)
        .unwrap_or_else(|_| panic!("the ready line is not JSON: {line:?}"));
    (child, out, ready)
}

fn echo_once(addr: &str, msg: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(msg).unwrap();
    let mut back = vec![0u8; msg.len()];
    s.read_exact(&mut back).unwrap();
    back
}

fn stop(mut child: Server, out: BufReader<ChildStdout>) -> serde_json::Value {
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) };
    let lines: Vec<String> = out.lines().map_while(Result::ok).collect();
    assert_eq!(child.0.wait().unwrap().code(), Some(0));
    serde_json::from_str(lines.last().expect("a final line")).unwrap()
}

#[test]
fn ring_setup_falls_back_and_reports_the_flags_it_got() {
    require_io_uring();
    for (forced, flags, refused) in [
        (None, vec!["SINGLE_ISSUER", "DEFER_TASKRUN"], 0),
        (Some("coop"), vec!["COOP_TASKRUN"], 1),
        (Some("none"), vec![], 2),
    ] {
        let env: Vec<(&str, &str)> = forced.map(|f| (URING_SETUP_ENV, f)).into_iter().collect();
        let (child, out, ready) = serve(&["--threads", "2"], &env);
        let setup = &ready["io_uring"];
        assert_eq!(setup["setup_flags"], serde_json::json!(flags), "{ready}");
        assert_eq!(
            setup["refused"].as_array().unwrap().len(),
            refused,
            "{ready}"
        );
        assert_eq!(setup["registered_files"], true, "{ready}");
        assert_eq!(setup["listener"], "per-thread", "{ready}");
        let addr = ready["listening"].as_str().unwrap().to_string();
        let msg: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        assert_eq!(echo_once(&addr, &msg), msg, "{forced:?}");
        let end = stop(child, out);
        assert_eq!(end["counters"]["io_uring"], *setup, "{end}");
    }
    let (child, out, ready) = serve(&["--uring-sqpoll", "--uring-zc"], &[]);
    let setup = &ready["io_uring"];
    assert_eq!(setup["sqpoll"], true, "{ready}");
    assert_eq!(setup["send_zc"], true, "{ready}");
    assert!(
        setup["setup_flags"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("SQPOLL")),
        "{ready}"
    );
    let addr = ready["listening"].as_str().unwrap().to_string();
    let msg: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
    assert_eq!(echo_once(&addr, &msg), msg);
    stop(child, out);
}

/// The recv a ring arms: a multishot recv the kernel ends after 32 KiB (Linux 6.17 and later),
/// else single-shot recvs (forced with `IOMODELS_URING_RECV=single`); both serve every byte
/// and are recorded.
#[test]
fn recvs_are_capped_multishot_or_single_shot_and_recorded() {
    require_io_uring();
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut numbers = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|n| n.parse::<u32>());
    let version = (numbers.next(), numbers.next());
    let has_cap =
        matches!(version, (Some(Ok(major)), Some(Ok(minor))) if (major, minor) >= (6, 17));
    for (forced, expected) in [
        (None, if has_cap { "multishot" } else { "single-shot" }),
        (Some("single"), "single-shot"),
    ] {
        let env: Vec<(&str, &str)> = forced.map(|f| (URING_RECV_ENV, f)).into_iter().collect();
        let (child, out, ready) = serve(&["--threads", "1"], &env);
        let recv = ready["io_uring"]["recv"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            recv.starts_with(expected),
            "{forced:?} on {release}: {ready}"
        );
        let addr = ready["listening"].as_str().unwrap().to_string();
        // Several armings' worth, in one message.
        let msg: Vec<u8> = (0..300_000u32).map(|i| (i % 241) as u8).collect();
        assert_eq!(echo_once(&addr, &msg), msg, "{forced:?}");
        stop(child, out);
    }
}

#[test]
fn the_result_records_how_the_rings_were_set_up() {
    require_io_uring();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let o = bench()
        .args([
            "run",
            "--model",
            "proactor-uring",
            "--model",
            "reactor",
            "-d",
            "300ms",
            "--warmup",
            "0s",
            "-c",
            "8",
            "--uring-listener",
            "shared",
            "-q",
        ])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    expect(&o, 0, &[]);
    let result: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(
        result["scenario"]["uring_options"]["listener"], "shared",
        "{}",
        result["scenario"]
    );
    let runs = result["runs"].as_array().unwrap();
    let uring = runs
        .iter()
        .find(|r| r["model"] == "proactor-uring")
        .unwrap();
    assert_eq!(uring["io_uring"]["listener"], "shared", "{uring}");
    assert!(
        !uring["io_uring"]["setup_flags"]
            .as_array()
            .unwrap()
            .is_empty(),
        "{uring}"
    );
    assert!(uring["errors"] == 0 && uring["requests"].as_u64().unwrap() > 0);
    let reactor = runs.iter().find(|r| r["model"] == "reactor").unwrap();
    assert!(reactor.get("io_uring").is_none(), "{reactor}");
}

#[test]
fn uring_options_on_other_models_exit_2() {
    let o = bench()
        .args(["serve", "--model", "reactor", "--uring-zc"])
        .output()
        .unwrap();
    expect(&o, 2, &["apply to proactor-uring only"]);
    let o = bench()
        .args(["run", "--model", "reactor", "--uring-sqpoll", "-d", "1s"])
        .output()
        .unwrap();
    expect(
        &o,
        2,
        &["apply to proactor-uring only", "--model proactor-uring"],
    );
}

/// Clients that send without reading hold at most a buffer each: the ring keeps serving the
/// others, and the server's memory stays bounded.
#[test]
fn clients_that_never_read_do_not_starve_the_others() {
    require_io_uring();
    let (child, out, ready) = serve(&["--threads", "1"], &[]);
    let addr = ready["listening"].as_str().unwrap().to_string();
    let mut hogs: Vec<TcpStream> = (0..8).map(|_| TcpStream::connect(&addr).unwrap()).collect();
    for h in &hogs {
        h.set_nonblocking(true).unwrap();
    }
    let chunk = vec![9u8; 64 * 1024];
    let deadline = Instant::now() + Duration::from_millis(1500);
    let mut sent = 0usize;
    while Instant::now() < deadline {
        for h in &mut hogs {
            if let Ok(n) = h.write(&chunk) {
                sent += n;
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(sent > 8 << 20, "the hogs sent only {sent} bytes");
    for round in 0..20u8 {
        let msg = vec![round; 4096];
        assert_eq!(echo_once(&addr, &msg), msg, "round {round}");
    }
    let rss = std::fs::read_to_string(format!("/proc/{}/status", child.0.id()))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap()
        * 1024;
    // The bound by design: 8 backlogs capped at 4 MiB each (plus the one in flight), the
    // buffer ring (32 MiB once every buffer was filled), the binary and its stacks.
    // (Measured when written: 76 MiB.)
    assert!(rss < 112 << 20, "{} MiB resident", rss >> 20);
    drop(hogs);
    stop(child, out);
}

/// A reply to a socket with no room: the send that found none (MSG_DONTWAIT, -EAGAIN) goes
/// again parked until the peer reads, every byte arrives in order, and meanwhile another client
/// is answered at once (a wait that counted on the parked send's completion would hold it;
/// with `--idle-timeout 0` no sweep would end that wait).
#[test]
fn a_reply_to_a_full_socket_is_sent_whole_and_holds_no_one() {
    require_io_uring();
    let (child, out, ready) = serve(&["--threads", "1", "--idle-timeout", "0"], &[]);
    let addr = ready["listening"].as_str().unwrap().to_string();
    // 32 MiB, more than loopback's socket buffers hold: the echo fills them while the client
    // is not reading yet.
    let msg: Vec<u8> = (0..32u32 << 20).map(|i| (i % 251) as u8).collect();
    let mut big = TcpStream::connect(&addr).unwrap();
    big.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut reader = big.try_clone().unwrap();
    let expected = msg.clone();
    let read_back = std::thread::spawn(move || {
        // Read nothing for a while, so the server's sends find the socket full.
        std::thread::sleep(Duration::from_millis(1500));
        let mut back = vec![0u8; expected.len()];
        reader.read_exact(&mut back).unwrap();
        back == expected
    });
    let writer = std::thread::spawn(move || big.write_all(&msg).map(|_| big));
    // Meanwhile, with the big echo's sends waiting for room:
    std::thread::sleep(Duration::from_millis(300));
    for round in 0..5u8 {
        let started = Instant::now();
        assert_eq!(
            echo_once(&addr, &[round; 64]),
            vec![round; 64],
            "round {round}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "round {round}: answered after {:?}",
            started.elapsed()
        );
    }
    let big = writer.join().unwrap().unwrap();
    assert!(
        read_back.join().unwrap(),
        "the 32 MiB echo came back altered"
    );
    drop(big);
    stop(child, out);
}

/// A full registered file table (more connections than the open-file limit allows) fails
/// the multishot accept with -ENFILE: the ring backs off, and serves the waiting clients as
/// the served ones leave.
#[test]
fn a_full_file_table_backs_off_and_recovers() {
    require_io_uring();
    let mut cmd = bench();
    cmd.args(["serve", "--model", "proactor-uring", "--threads", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    with_fd_limit(&mut cmd, 16);
    let mut child = Server(cmd.spawn().unwrap());
    let mut out = BufReader::new(child.0.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let ready: serde_json::Value = serde_json::from_str(&line).unwrap();
    let addr = ready["listening"].as_str().unwrap().parse().unwrap();
    let left = clients_left_unserved(addr, 40);
    // The back-off must not spin: the server used little CPU while clients waited.
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.0.id())).unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    stop(child, out);
    assert_eq!(left, 0, "{left} of 40 clients never served");
    assert!(ticks < 100, "the server burnt {ticks} clock ticks of CPU");
}
