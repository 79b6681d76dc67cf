//! `bench run --server NAME=COMMAND`: an outside server's whole life under the harness, driven
//! with a small echo server of the tests' own (tests/outside/server.py; Python 3 is on every
//! machine this project builds on): ready, measured (its whole process tree), stopped, and
//! nothing left behind, however it behaves.
#![cfg(target_os = "linux")]

mod common;

use std::path::Path;

use common::{bench, expect, text};

/// The test server's command, with `args` and a tag unique to the test, to find its processes.
fn server(name: &str, args: &str, tag: &str) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/outside/server.py");
    format!(
        "{name}=python3 {} {{port}} {args} --tag {tag}",
        script.display()
    )
}

/// Processes whose command line holds `tag`.
fn left_with(tag: &str) -> Vec<String> {
    let mut left = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(tag) {
            left.push(format!(
                "{}: {cmdline}",
                entry.file_name().to_string_lossy()
            ));
        }
    }
    left
}

/// A unique tag for this test's server processes.
fn tag(test: &str) -> String {
    format!("iomodels-test-{test}-{}", std::process::id())
}

/// `bench run` with the run's short lengths, writing to `out`.
fn run(out: &Path, extra: &[&str]) -> std::process::Output {
    let _machine = common::shared_machine();
    bench()
        .args([
            "run",
            "-c",
            "4",
            "-d",
            "1s",
            "--warmup",
            "0.5s",
            "--no-report",
            "--quiet",
        ])
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

fn result(out: &Path) -> serde_json::Value {
    common::valid_result(out)
}

#[test]
fn an_outside_server_is_run_measured_and_stopped_like_a_model() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let t = tag("whole");
    let spec = server("py", "", &t);
    let o = run(&out, &["--server", &spec, "--accounting", "same"]);
    expect(&o, 0, &["py"]);
    let r = result(&out);
    let run = &r["runs"][0];
    assert_eq!(run["model"], "py");
    assert!(run["command"].as_str().unwrap().contains("{port}"), "{run}");
    assert_eq!(r["scenario"]["servers"]["py"], run["command"]);
    assert_eq!(run["errors"], 0);
    assert!(run["requests"].as_u64().unwrap() > 100, "{run}");
    // Its costs are measured as a model's are: CPU, switches, memory, one thread.
    let server = &run["server"];
    assert!(
        server["cpu_us_per_request"].as_f64().unwrap() > 0.0,
        "{server}"
    );
    assert!(
        server["peak_rss_bytes"].as_u64().unwrap() > 1 << 20,
        "{server}"
    );
    assert_eq!(server["threads"], 1, "{server}");
    // Its system calls by name, from its first instruction: an echo costs a receive and a send.
    let calls = &run["syscalls"]["by_name_per_request"];
    for call in ["recvfrom", "sendto"] {
        let n = calls[call].as_f64().unwrap_or(0.0);
        assert!((0.9..1.1).contains(&n), "{call} {n}/request: {calls}");
    }
    assert!(left_with(&t).is_empty(), "left behind: {:?}", left_with(&t));
}

#[test]
fn a_server_that_forks_a_worker_is_measured_whole() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let t = tag("fork");
    let spec = server("forker", "--fork", &t);
    let o = run(&out, &["--server", &spec, "--accounting", "same"]);
    expect(&o, 0, &[]);
    let run = &result(&out)["runs"][0];
    assert_eq!(run["errors"], 0);
    // The first process only waits for its worker: the CPU, the calls and the second thread
    // are the worker's, which only a count of the whole tree sees.
    let server = &run["server"];
    assert_eq!(server["threads"], 2, "master and worker: {server}");
    assert!(
        server["cpu_us_per_request"].as_f64().unwrap() > 1.0,
        "{server}"
    );
    let sends = run["syscalls"]["by_name_per_request"]["sendto"]
        .as_f64()
        .unwrap_or(0.0);
    assert!((0.9..1.1).contains(&sends), "sendto {sends}/request: {run}");
    assert!(left_with(&t).is_empty(), "left behind: {:?}", left_with(&t));
}

#[test]
fn a_server_that_exits_before_ready_is_exit_3_with_its_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let t = tag("early");
    let o = run(
        &out,
        &["--server", &server("early", "--exit-before-ready", &t)],
    );
    expect(
        &o,
        3,
        &[
            "the server `early` exited before it accepted a connection",
            "exit code 1",
            "server.py: cannot start: told to fail",
        ],
    );
    assert!(left_with(&t).is_empty());
}

#[test]
fn a_server_that_never_listens_is_exit_3_with_its_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let t = tag("never");
    let o = run(&out, &["--server", &server("mute", "--never-ready", &t)]);
    expect(
        &o,
        3,
        &[
            "the server `mute` accepted no connection",
            "within 15 s",
            "server.py: waiting for ever without listening",
        ],
    );
    assert!(left_with(&t).is_empty(), "left behind: {:?}", left_with(&t));
}

#[test]
fn a_server_that_dies_mid_run_fails_the_run_and_the_result_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let t = tag("dies");
    // Ready at once, then the warm-up (0.5 s), and it exits 0.9 s after it started listening:
    // inside the measured window. A model beside it keeps its run.
    let spec = server("dies", "--die-after 0.9", &t);
    let o = run(
        &out,
        &[
            "--model",
            "reactor",
            "--server",
            &spec,
            "--accounting",
            "off",
        ],
    );
    expect(&o, 1, &["the server exited during the run", "exit code 7"]);
    let r = result(&out);
    let runs = r["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{r}");
    assert!(runs[0]["failure"].is_null(), "reactor: {}", runs[0]);
    assert_eq!(runs[1]["model"], "dies");
    assert!(runs[1]["failure"]
        .as_str()
        .unwrap()
        .contains("exited during the run"));
    assert!(left_with(&t).is_empty(), "left behind: {:?}", left_with(&t));
}

#[test]
fn a_server_that_daemonizes_is_refused_and_nothing_is_left() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let t = tag("daemon");
    let o = run(&out, &["--server", &server("daemon", "--daemonize", &t)]);
    expect(
        &o,
        2,
        &[
            "the server `daemon` daemonized",
            "stopped now",
            "nginx -g 'daemon off;'",
        ],
    );
    assert!(left_with(&t).is_empty(), "left behind: {:?}", left_with(&t));
}

#[test]
fn bad_server_specs_are_refused_before_anything_starts() {
    for (args, says) in [
        (
            vec!["--server", "reactor=python3 x.py {port}"],
            "is a model's: name it otherwise",
        ),
        (vec!["--server", "a=python3 x.py"], "put {port} where"),
        (
            vec!["--server", "a=x {port}", "--server", "a=y {port}"],
            "two servers are named `a`",
        ),
    ] {
        let o = bench().arg("run").args(&args).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        assert!(text(&o).contains(says), "{args:?}: {}", text(&o));
    }
}

#[test]
fn a_scenario_file_names_its_outside_servers_in_a_servers_table() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let t = tag("scenario");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/outside/server.py");
    let file = dir.path().join("s.toml");
    std::fs::write(
        &file,
        format!(
            "models = [\"reactor\"]\naccounting = \"off\"\n\n[servers.py]\ncommand = \"python3 {} \
             {{port}} --tag {t}\"\n",
            script.display()
        ),
    )
    .unwrap();
    let o = run(&out, &["--scenario", file.to_str().unwrap()]);
    expect(&o, 0, &[]);
    let r = result(&out);
    assert_eq!(
        r["scenario"]["models"],
        serde_json::json!(["reactor", "py"])
    );
    assert!(r["scenario"]["servers"]["py"]
        .as_str()
        .unwrap()
        .contains(&t));
    let models: Vec<&str> = r["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["model"].as_str().unwrap())
        .collect();
    assert_eq!(models, ["reactor", "py"]);
    assert!(left_with(&t).is_empty(), "left behind: {:?}", left_with(&t));
}

/// `[[points]]`: each point its own options and its own models and servers, one result file
/// (the counterparts scenario's shape); a key set at the top and in a point is refused.
#[test]
fn listed_points_run_their_own_models_and_servers() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let t = tag("points");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/outside/server.py");
    let file = dir.path().join("s.toml");
    let text = format!(
        "accounting = \"off\"\n\n[[points]]\nconnections = 3\nmodels = [\"reactor\"]\n\n\
         [[points]]\nconnections = 2\n[points.servers.py]\ncommand = \"python3 {} {{port}} \
         --tag {t}\"\n",
        script.display()
    );
    std::fs::write(&file, &text).unwrap();
    let o = bench()
        .args([
            "run",
            "-d",
            "1s",
            "--warmup",
            "0.3s",
            "--no-report",
            "--quiet",
        ])
        .arg("--scenario")
        .arg(&file)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    expect(&o, 0, &[]);
    let r = result(&out);
    let runs: Vec<(String, u64)> = r["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["model"].as_str().unwrap().to_string(),
                r["point"]["connections"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(runs, [("reactor".into(), 3), ("py".into(), 2)]);
    assert!(left_with(&t).is_empty(), "left behind: {:?}", left_with(&t));
    std::fs::write(&file, format!("connections = 4\n{text}")).unwrap();
    let o = bench()
        .args(["run", "--scenario"])
        .arg(&file)
        .output()
        .unwrap();
    expect(
        &o,
        2,
        &["point 1 of [[points]]: `connections` is set at the top level too"],
    );
}
