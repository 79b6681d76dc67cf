//! Load from several hosts, on one machine: network namespaces as the hosts (one server host
//! and three load hosts, each with its own hostname, joined by veth pairs to a bridge in a
//! namespace of its own), all made and removed by this test. The load hosts run one segment
//! each of one open-loop run, started at one `--start-at`; `bench merge` makes one result of
//! their files. The merged rate is the asked one within 1%, the merged request count is the
//! segments' sum, and the merged histogram is the union of the segments' samples.
//!
//! Needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN, to make namespaces) and `ip` (iproute2:
//! `apt-get install iproute2`; scripts/test.sh installs it when missing). Load goes only to
//! the server namespace this test made.
#![cfg(target_os = "linux")]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::segments::{check_merge, start_in};
use common::valid_result;

const BENCH: &str = env!("CARGO_BIN_EXE_bench");
const RATE: f64 = 4000.0;
const LOAD_HOSTS: usize = 3;

/// Runs `ip ARGS`; panics with what to install or grant when it cannot.
fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap_or_else(|e| {
        panic!(
            "cannot run `ip` ({e}): this test makes network namespaces with iproute2; install \
             it (apt-get install iproute2; scripts/test.sh does when missing)"
        )
    });
    assert!(
        out.status.success(),
        "`ip {}` failed: {}this test makes network namespaces, which needs root \
         (CAP_NET_ADMIN and CAP_SYS_ADMIN)",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The test's network: a bridge in namespace `{tag}sw`, and one namespace per host with an
/// `eth0` on it, 10.77.0.(k+1)/24. Dropping it kills what runs in them and removes them.
struct Net {
    tag: String,
    hosts: Vec<String>,
}

impl Net {
    fn new(hosts: usize) -> Net {
        let tag = format!("iom{}-", std::process::id());
        let mut net = Net {
            tag: tag.clone(),
            hosts: Vec::new(),
        };
        let sw = net.switch();
        ip(&["netns", "add", &sw]);
        ip(&["-n", &sw, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &sw, "link", "set", "br0", "up"]);
        for k in 0..hosts {
            let host = format!("{tag}h{k}");
            ip(&["netns", "add", &host]);
            net.hosts.push(host.clone());
            let port = format!("p{k}");
            ip(&[
                "-n", &host, "link", "add", "eth0", "type", "veth", "peer", "name", &port, "netns",
                &sw,
            ]);
            ip(&[
                "-n",
                &host,
                "addr",
                "add",
                &format!("10.77.0.{}/24", k + 1),
                "dev",
                "eth0",
            ]);
            ip(&["-n", &host, "link", "set", "eth0", "up"]);
            ip(&["-n", &host, "link", "set", "lo", "up"]);
            ip(&["-n", &sw, "link", "set", &port, "master", "br0"]);
            ip(&["-n", &sw, "link", "set", &port, "up"]);
        }
        net
    }

    fn switch(&self) -> String {
        format!("{}sw", self.tag)
    }

    /// `bench ARGS` on host `k`, whose hostname is `name`.
    fn bench(&self, k: usize, name: &str, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args([
            "netns",
            "exec",
            &self.hosts[k],
            "unshare",
            "--uts",
            "sh",
            "-c",
        ])
        .arg("hostname \"$0\" && exec \"$@\"")
        .args([name, BENCH])
        .args(args);
        c
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in self.hosts.iter().chain(std::iter::once(&self.switch())) {
            // Whatever still runs in it is killed; then the namespace (and its veth) goes.
            if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    let _ = Command::new("kill").args(["-9", pid]).status();
                }
            }
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// A child killed when the test ends, whatever happens.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn segments_on_three_hosts_merge_into_the_asked_rate() {
    let net = Net::new(1 + LOAD_HOSTS);
    let server = "10.77.0.1:7000";
    let mut serve = Killed(
        net.bench(
            0,
            "server",
            &["serve", "--model", "reactor", "--listen", server],
        )
        .args(["--cpus", "0", "--duration", "60s"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("cannot start the server in its namespace"),
    );
    let mut ready = String::new();
    BufReader::new(serve.0.stdout.as_mut().unwrap())
        .read_line(&mut ready)
        .unwrap();
    assert!(ready.contains("7000"), "the server's ready line: {ready}");

    let dir = tempfile::tempdir().unwrap();
    let start = start_in(3.0);
    let files: Vec<_> = (1..=LOAD_HOSTS)
        .map(|i| dir.path().join(format!("segment-{i}.json")))
        .collect();
    let rate = RATE.to_string();
    let loads: Vec<Killed> = files
        .iter()
        .enumerate()
        .map(|(i, out)| {
            let segment = format!("{}/{LOAD_HOSTS}", i + 1);
            let host = format!("load-{}", i + 1);
            Killed(
                net.bench(i + 1, &host, &["load", "--target", server, "--cpus", "1"])
                    .args(["--connections", "30", "--rate", &rate])
                    .args(["--duration", "3s", "--warmup", "1s", "--quiet"])
                    .args(["--segment", &segment, "--start-at", &start, "--json"])
                    .arg(out)
                    .stdout(Stdio::null())
                    .spawn()
                    .expect("cannot start a segment in its namespace"),
            )
        })
        .collect();
    for mut load in loads {
        let status = load.0.wait().unwrap();
        assert!(status.success(), "a segment failed: {status}");
    }
    let merged_path = dir.path().join("merged.json");
    let merge = Command::new(BENCH)
        .arg("merge")
        .args(&files)
        .arg("--out")
        .arg(&merged_path)
        .output()
        .unwrap();
    assert!(
        merge.status.success(),
        "bench merge: {}",
        String::from_utf8_lossy(&merge.stderr)
    );
    println!("{}", String::from_utf8_lossy(&merge.stdout));
    let merged = valid_result(&merged_path);
    let segments: Vec<_> = files.iter().map(|f| valid_result(f)).collect();
    let share = check_merge(&merged, &segments, RATE);
    assert!(
        (share - 1.0).abs() <= 0.01,
        "the merged rate is {:.2}% of the asked",
        share * 100.0
    );
    let hosts: Vec<&str> = merged["runs"][0]["client"]["per_process"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["host"].as_str().unwrap())
        .collect();
    assert_eq!(hosts, ["load-1", "load-2", "load-3"]);
    drop(serve);
    std::thread::sleep(Duration::from_millis(10));
}
