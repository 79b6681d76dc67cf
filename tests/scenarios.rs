//! Scenario files and sweeps end to end: every file under scenarios/ loads, the default one is
//! the built-in default, a sweep writes one result file holding every point, errors name the
//! file, the line and the key; and the SLO search records its probes.

mod common;

use std::path::{Path, PathBuf};

use clap::Parser;
use common::{bench, expect, text, valid_result};
use iomodels::cli::{Cli, Command, RunArgs};

fn scenarios() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

fn run_args(args: &[std::ffi::OsString]) -> RunArgs {
    match Cli::try_parse_from(args).unwrap().command {
        Command::Run(a) => *a,
        other => panic!("not bench run: {other:?}"),
    }
}

/// Every file expands into points that parse, and says in a comment what it is for; the
/// claim scenarios (one per claim the project set out to test) are all there.
#[test]
fn every_scenario_file_loads_and_names_its_claim() {
    let files = scenarios();
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        assert!(
            text.trim_start().starts_with('#'),
            "{}: starts without a comment saying what it tests",
            path.display()
        );
        let expanded = iomodels::cli::scenario::expand(
            ["bench", "run", "--scenario"]
                .iter()
                .map(Into::into)
                .chain([path.clone().into_os_string()])
                .collect(),
        )
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(!expanded.points.is_empty());
        for point in &expanded.points {
            let a = run_args(&point.args);
            assert!(
                a.all || !a.model.is_empty(),
                "{}: no models",
                path.display()
            );
        }
    }
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    for claim in [
        "c10k",
        "handler-cpu",
        "handler-blocking",
        "pollers",
        "scaling-connections",
        "readiness-vs-completion",
    ] {
        assert!(
            names.iter().any(|n| n == claim),
            "no scenarios/{claim}.toml"
        );
        let text = std::fs::read_to_string(
            files
                .iter()
                .find(|p| p.file_stem().unwrap() == claim)
                .unwrap(),
        )
        .unwrap();
        assert!(text.contains("# Claim"), "{claim}.toml names no claim");
    }
}

/// scenarios/default.toml is what `bench run --all` runs.
#[test]
fn the_default_scenario_is_the_built_in_default() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/default.toml");
    let from_file = iomodels::cli::scenario::expand(vec![
        "bench".into(),
        "run".into(),
        "--scenario".into(),
        file.into_os_string(),
    ])
    .unwrap();
    assert_eq!(from_file.points.len(), 1);
    let f = run_args(&from_file.points[0].args);
    let d = run_args(&["bench".into(), "run".into(), "--all".into()]);
    assert!(f.all && d.all);
    let workload = |a: &RunArgs| {
        a.shape
            .workload
            .unwrap_or(iomodels::protocol::Workload::Echo)
    };
    assert_eq!(workload(&f), workload(&d));
    assert_eq!(f.shape.connections, d.shape.connections);
    assert_eq!(f.shape.payload, d.shape.payload);
    assert_eq!(f.shape.pipeline, d.shape.pipeline);
    assert_eq!(f.shape.duration, d.shape.duration);
    assert_eq!(f.shape.warmup, d.shape.warmup);
    assert_eq!(f.shape.rate, d.shape.rate);
    assert_eq!(f.repeat, d.repeat);
    assert_eq!(f.accounting, d.accounting);
    assert_eq!(f.handler.work_us, d.handler.work_us);
    assert_eq!(f.handler.block_us, d.handler.block_us);
    assert_eq!(f.handler.threads, d.handler.threads);
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// A 2 x 2 sweep, repeated twice, of one model: one result file, every run with its point,
/// the sweep recorded in the scenario; a command-line option fixes a swept key.
#[test]
fn a_sweep_writes_every_point_into_one_result_file() {
    let _machine = common::shared_machine();
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "sweep.toml",
        "# a small sweep\nmodels = [\"reactor\"]\nduration = \"300ms\"\nwarmup = \"100ms\"\n\
         accounting = \"off\"\n\n[matrix]\nconnections = [1, 3]\npayload = [16, 100]\n",
    );
    let out = dir.path().join("sweep.json");
    let o = bench()
        .args(["run", "--repeat", "2", "--scenario"])
        .arg(&file)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    expect(
        &o,
        0,
        &[
            "connections=1 payload=16",
            "connections=3 payload=100",
            "reactor",
        ],
    );
    let doc = valid_result(&out);
    assert_eq!(
        doc["scenario"]["matrix"],
        serde_json::json!({"connections": [1, 3], "payload": [16, 100]})
    );
    assert_eq!(doc["scenario"]["file"], file.display().to_string());
    let runs = doc["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 8, "2 x 2 points x 2 repeats");
    let mut seen = Vec::new();
    for r in runs {
        let point = &r["point"];
        assert_eq!(point["connections"], r["connections"], "{point}");
        assert_eq!(point["payload"], r["payload"], "{point}");
        assert_eq!(r["errors"], 0);
        assert!(r["requests"].as_u64().unwrap() > 0);
        seen.push((
            r["connections"].as_u64().unwrap(),
            r["payload"].as_u64().unwrap(),
            r["repeat_index"].as_u64().unwrap(),
        ));
    }
    // Points in file order (the last key fastest), each point's repeats together.
    assert_eq!(
        seen,
        [
            (1, 16, 0),
            (1, 16, 1),
            (1, 100, 0),
            (1, 100, 1),
            (3, 16, 0),
            (3, 16, 1),
            (3, 100, 0),
            (3, 100, 1)
        ]
    );

    // The command line fixes connections: the sweep is over payload alone.
    let o = bench()
        .args(["run", "-c", "2", "--scenario"])
        .arg(&file)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    expect(&o, 0, &["payload=16", "payload=100"]);
    let doc = valid_result(&out);
    assert_eq!(
        doc["scenario"]["matrix"],
        serde_json::json!({"payload": [16, 100]})
    );
    let runs = doc["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert!(runs.iter().all(|r| r["connections"] == 2), "{runs:?}");
}

#[test]
fn sweep_errors_name_the_file_the_line_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    for (body, needles) in [
        (
            "models = [\"reactor\"]\n\n[matrix]\nconnections = [10, 0]\n",
            vec!["line 4", "key `matrix.connections`", "value 0"],
        ),
        (
            "models = [\"reactor\"]\n[matrix]\nconections = [1, 2]\n",
            vec!["line 3", "matrix.conections", "unknown"],
        ),
        (
            "models = [\"reactor\"]\n[matrix]\npayload = 64\n",
            vec!["line 3", "matrix.payload", "list"],
        ),
        (
            "models = [\"reactor\"]\nrepeat = 2\n[matrix]\nrepeat = [1, 2]\n",
            vec!["matrix.repeat"],
        ),
        (
            "models = [\"reactor\"]\nconnections = 5\n[matrix]\nconnections = [1, 2]\n",
            vec!["line 2", "line 4", "connections"],
        ),
    ] {
        let file = write(dir.path(), "bad.toml", body);
        let o = bench()
            .args(["run", "--scenario"])
            .arg(&file)
            .output()
            .unwrap();
        let out = text(&o);
        assert_eq!(o.status.code(), Some(2), "{body}: {out}");
        assert!(out.contains("bad.toml"), "{body}: {out}");
        for n in needles {
            assert!(out.contains(n), "{body}: `{n}` missing from: {out}");
        }
    }
}

#[cfg(unix)]
fn f(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("{v} is not a number"))
}

/// `--slo`: a closed-loop probe, then open-loop probes; the capacity is the highest rate that
/// met the objective, every probe is in the file, and an objective nothing meets says so.
#[test]
#[cfg(unix)]
fn an_slo_search_records_every_probe_and_the_capacity() {
    let _machine = common::whole_machine();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("slo.json");
    let o = bench()
        .args(["run", "--model", "reactor", "--slo", "p99=50ms", "-c", "10"])
        .args(["-d", "500ms", "--warmup", "100ms", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    expect(&o, 0, &["capacity at p99<=50ms", "reactor"]);
    let doc = valid_result(&out);
    assert_eq!(doc["scenario"]["slo"], serde_json::json!(["p99<=50ms"]));
    let found = &doc["slo"][0];
    let runs = doc["runs"].as_array().unwrap();
    assert_eq!(found["probes"].as_u64().unwrap() as usize, runs.len());
    assert!(runs.len() >= 3, "{} probes", runs.len());
    // Probe 0 is the closed loop; it bounds the rates probed after it.
    assert!(runs[0]["rate"].is_null());
    assert_eq!(runs[0]["slo_probe"]["index"], 0);
    let closed = f(&runs[0]["throughput_rps"]);
    assert_eq!(f(&found["closed_loop_rps"]), closed);
    let mut best_met: Option<f64> = None;
    for (i, r) in runs.iter().enumerate().skip(1) {
        assert_eq!(r["slo_probe"]["index"], i);
        let rate = f(&r["rate"]);
        assert!(
            rate < closed,
            "probe {i} at {rate} over the ceiling {closed}"
        );
        if r["slo_probe"]["met"] == true {
            assert!(f(&r["latency_us"]["p99"]) <= 50_000.0, "{r}");
            assert!(f(&r["throughput_rps"]) >= 0.99 * rate, "{r}");
            best_met = Some(best_met.map_or(rate, |b: f64| b.max(rate)));
        } else {
            assert!(r["slo_probe"]["missed"].is_string(), "{r}");
        }
    }
    // 50 ms is far above anything a reactor on loopback shows below its ceiling.
    assert_eq!(found["capacity_rps"].as_f64(), best_met);
    assert!(best_met.is_some_and(|b| b >= 0.5 * closed), "{found}");

    // Nothing answers within a microsecond: no capacity, and the table says so.
    let o = bench()
        .args(["run", "--model", "reactor", "--slo", "p50=1us", "-c", "4"])
        .args(["-d", "200ms", "--warmup", "50ms", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    expect(&o, 0, &["none met"]);
    let doc = valid_result(&out);
    assert!(doc["slo"][0]["capacity_rps"].is_null(), "{}", doc["slo"][0]);
    assert!(doc["runs"]
        .as_array()
        .unwrap()
        .iter()
        .skip(1)
        .all(|r| r["slo_probe"]["met"] == false));
}
