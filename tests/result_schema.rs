//! The result file the real binary writes matches schema/result.schema.json and its invariants,
//! and the schema is strict enough to reject broken files.

use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

mod common;
use common::schema_errors as errors;

const BENCH: &str = env!("CARGO_BIN_EXE_bench");

/// One real `bench run --all`, shared by the tests (it takes a few seconds).
fn result() -> &'static Value {
    static RESULT: OnceLock<Value> = OnceLock::new();
    RESULT.get_or_init(|| {
        let dir = tempfile::tempdir().expect("cannot create a temporary folder");
        let out = dir.path().join("r.json");
        let run = Command::new(BENCH)
            .args(["run", "--all", "--duration", "1s", "--warmup", "200ms"])
            .args(["--connections", "50", "--quiet", "--out"])
            .arg(&out)
            .output()
            .expect("cannot start bench");
        assert_eq!(
            run.status.code(),
            Some(0),
            "bench run --all failed ({}):\n{}",
            run.status,
            String::from_utf8_lossy(&run.stderr)
        );
        let text = std::fs::read_to_string(&out).expect("bench run wrote no result file");
        serde_json::from_str(&text).expect("the result file is not JSON")
    })
}

fn available_models() -> Vec<String> {
    let out = Command::new(BENCH)
        .args(["models", "--json"])
        .output()
        .expect("cannot start bench models");
    assert!(out.status.success(), "bench models --json failed");
    let models: Value = serde_json::from_slice(&out.stdout).expect("bench models --json: not JSON");
    let mut names: Vec<String> = models
        .as_array()
        .expect("bench models --json: not an array")
        .iter()
        .filter(|m| m["available"] == Value::Bool(true))
        .map(|m| {
            m["name"]
                .as_str()
                .expect("a model without a name")
                .to_string()
        })
        .collect();
    names.sort();
    names
}

/// Each model's default poller from `bench models --json` (the first it lists), or null.
fn default_poller(model: &str) -> Value {
    let out = Command::new(BENCH)
        .args(["models", "--json"])
        .output()
        .expect("cannot start bench models");
    let models: Value = serde_json::from_slice(&out.stdout).expect("bench models --json: not JSON");
    let entry = models
        .as_array()
        .expect("bench models --json: not an array")
        .iter()
        .find(|m| m["name"] == model)
        .unwrap_or_else(|| panic!("{model} is not in bench models --json"));
    entry["pollers"][0].clone()
}

fn f64_of(v: &Value, what: &str) -> f64 {
    v.as_f64()
        .unwrap_or_else(|| panic!("{what} is not a number: {v}"))
}

#[test]
fn real_result_matches_schema_and_invariants() {
    let doc = result();
    let errs = errors(doc);
    assert!(
        errs.is_empty(),
        "the result file breaks the schema:\n{}",
        errs.join("\n")
    );

    assert_eq!(doc["schema_version"], 1);
    assert_eq!(
        doc["scenario"]["poller"],
        if cfg!(unix) {
            Value::from("epoll")
        } else {
            Value::Null
        },
        "`bench run --all` without --poller runs the reactor with epoll (no poller choice on \
         Windows)"
    );
    let runs = doc["runs"].as_array().expect("runs is not an array");
    let mut models: Vec<String> = runs
        .iter()
        .map(|r| {
            r["model"]
                .as_str()
                .expect("a run without a model")
                .to_string()
        })
        .collect();
    models.sort();
    assert_eq!(models, available_models(), "one run per available model");

    for run in runs {
        let model = run["model"].as_str().unwrap_or("?");
        let num = |path: &str| {
            let v = path.split('.').fold(run, |v, key| &v[key]);
            f64_of(v, &format!("{model}: {path}"))
        };
        assert!(num("requests") > 0.0, "{model}: no requests");
        assert_eq!(
            run.get("poller"),
            Some(&default_poller(model)),
            "{model}: the run's poller is not the model's default (or null)"
        );
        assert_eq!(run["errors"], 0, "{model}: errors {}", run["error_kinds"]);
        assert!(
            run["failure"].is_null(),
            "{model}: failed: {}",
            run["failure"]
        );
        assert!(run["server"].is_object(), "{model}: no server costs");
        assert!(
            num("server.cpu_user_s") + num("server.cpu_sys_s") > 0.0,
            "{model}: no server CPU"
        );
        if cfg!(windows) {
            // Windows keeps no per-process count: null, never a made-up zero.
            for key in [
                "voluntary_ctx_switches",
                "involuntary_ctx_switches",
                "ctx_switches_per_request",
            ] {
                assert!(run["server"][key].is_null(), "{model}: {key} is not null");
            }
        } else {
            let switches =
                num("server.voluntary_ctx_switches") + num("server.involuntary_ctx_switches");
            assert!(switches > 0.0, "{model}: no context switches");
        }
        assert!(num("server.peak_rss_bytes") > 0.0, "{model}: no peak RSS");
        assert!(num("server.threads") >= 1.0, "{model}: no server threads");
        let (p50, p99, max) = (
            num("latency_us.p50"),
            num("latency_us.p99"),
            num("latency_us.max"),
        );
        assert!(
            p50 <= p99 && p99 <= max,
            "{model}: p50 {p50} p99 {p99} max {max}"
        );
        let series = run["timeseries"]
            .as_array()
            .expect("timeseries is not an array");
        assert!(!series.is_empty(), "{model}: empty timeseries");
    }
}

#[test]
fn schema_rejects_broken_files() {
    let valid = result();
    let broken = |what: &str, edit: &dyn Fn(&mut Value)| {
        let mut doc = valid.clone();
        edit(&mut doc);
        assert!(
            !errors(&doc).is_empty(),
            "the schema accepts a file with {what}"
        );
    };
    broken("no runs[0].requests", &|d| {
        d["runs"][0]
            .as_object_mut()
            .expect("runs[0] is not an object")
            .remove("requests");
    });
    broken("schema_version 2", &|d| d["schema_version"] = 2.into());
    broken("runs[0].poller kqueue", &|d| {
        d["runs"][0]["poller"] = "kqueue".into()
    });
    broken("runs[0].requests -1", &|d| {
        d["runs"][0]["requests"] = (-1).into()
    });
}

/// Regression: answers that arrived in the same poll batch just after the window closed were
/// counted, in an extra time-series slot past `duration_s`.
#[test]
fn completions_after_the_window_are_not_counted() {
    for run in result()["runs"].as_array().expect("runs is not an array") {
        let model = run["model"].as_str().unwrap_or("?");
        let series = run["timeseries"].as_array().expect("timeseries");
        let summed: u64 = series
            .iter()
            .map(|i| i["requests"].as_u64().unwrap_or(0))
            .sum();
        assert_eq!(
            summed,
            run["requests"].as_u64().unwrap_or(0),
            "{model}: series vs total"
        );
        let duration = f64_of(&run["duration_s"], "duration_s");
        let last = f64_of(&series[series.len() - 1]["t_s"], "t_s");
        assert!(
            last <= duration.ceil(),
            "{model}: a slot at {last}s past a {duration}s window"
        );
    }
}

/// Regression: the load generator closed its connections as the window closed, racing the
/// server's closing snapshot, so `blocking` reported a handful of threads instead of one per
/// connection.
#[test]
fn the_closing_snapshot_sees_every_connection_open() {
    let runs = result()["runs"].as_array().expect("runs is not an array");
    let blocking = runs
        .iter()
        .find(|r| r["model"] == "blocking")
        .expect("no blocking run");
    let threads = f64_of(&blocking["server"]["threads"], "server.threads");
    let connections = f64_of(&blocking["connections"], "connections");
    assert!(
        threads > connections,
        "blocking had {threads} threads for {connections} connections at the window's close"
    );
}

/// The stored histogram is the full merged one: it decodes, and holds one value per answered
/// request plus one per stalled request.
#[test]
fn the_histogram_holds_every_recorded_request() {
    for run in result()["runs"].as_array().expect("runs is not an array") {
        let model = run["model"].as_str().unwrap_or("?");
        let text = run["histogram"]
            .as_str()
            .expect("histogram is not a string");
        let h = iomodels::metrics::histogram::decode(text)
            .unwrap_or_else(|e| panic!("{model}: histogram does not decode: {e}"));
        let expected =
            run["requests"].as_u64().unwrap() + run["stalled_requests"].as_u64().unwrap();
        assert_eq!(h.len(), expected, "{model}: histogram count");
        assert_eq!(
            h.max() as f64,
            f64_of(&run["latency_us"]["max"], "max"),
            "{model}"
        );
    }
}

/// Regression: once the harness pinned itself to the client CPUs, `env.cpus` reported the one
/// CPU it could use instead of the machine's.
#[test]
fn env_reports_the_machines_cpus_not_the_harness_pinning() {
    let online = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(result()["env"]["cpus"].as_u64().unwrap() as usize, online);
}

/// Models with several loops record how their connections spread, and every connection of
/// the run is counted once.
#[test]
fn connections_per_loop_accounts_for_every_connection() {
    for run in result()["runs"].as_array().expect("runs is not an array") {
        let Some(spread) = run["server"]["connections_per_loop"].as_array() else {
            continue;
        };
        let total: u64 = spread.iter().map(|n| n.as_u64().unwrap_or(0)).sum();
        assert_eq!(
            total,
            run["connections"].as_u64().unwrap(),
            "{}",
            run["model"]
        );
        assert_eq!(
            spread.len() as u64,
            run["threads"].as_u64().unwrap(),
            "{}",
            run["model"]
        );
    }
}
