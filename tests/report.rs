//! `bench report`: report.md from fixed result files (snapshots in tests/snapshots/), the HTML
//! page self-contained, the files a report is made of, bad input refused, and `bench run`
//! writing a report unless told not to.
//!
//! A snapshot that differs fails the test and leaves the new text beside it as
//! `NAME.md.new`; `UPDATE_SNAPSHOTS=1 cargo test --test report` rewrites them (read the diff
//! before committing).

mod common;

use std::path::{Path, PathBuf};

use common::{bench, expect, text};
use iomodels::report::document;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The report of `names` (fixture files), as `bench report` writes it into a temporary
/// folder; returns report.md and the folder.
fn report_of(names: &[&str]) -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<(String, iomodels::result::ResultFile)> = names
        .iter()
        .map(|n| {
            (
                format!("tests/fixtures/{n}"),
                iomodels::result::load(&fixture(n)).unwrap_or_else(|e| panic!("{n}: {e:#}")),
            )
        })
        .collect();
    let written = document::write(&files, dir.path()).unwrap();
    let md = std::fs::read_to_string(&written.markdown).unwrap();
    (md, dir)
}

fn check_snapshot(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(format!("{name}.md"));
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "no snapshot {}: run UPDATE_SNAPSHOTS=1 cargo test --test report, then read it",
            path.display()
        )
    });
    if expected != actual {
        let new = path.with_extension("md.new");
        std::fs::write(&new, actual).unwrap();
        let line = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .map_or(expected.lines().count().min(actual.lines().count()), |i| i);
        panic!(
            "{} differs from the report written now (first at line {}): compare with {}",
            path.display(),
            line + 1,
            new.display()
        );
    }
}

#[test]
fn report_md_snapshots() {
    for (snapshot, names) in [
        ("closed-loop", vec!["closed-loop.json"]),
        ("open-loop", vec!["open-loop.json"]),
        ("sweep", vec!["sweep.json"]),
        ("slo", vec!["slo.json"]),
        // Gaps: no system-call counts and one run without server costs; a file written before
        // the newer fields existed; several files in one report.
        (
            "gaps-and-older",
            vec!["no-syscalls.json", "older-echo-default.json"],
        ),
    ] {
        let (md, _dir) = report_of(&names);
        check_snapshot(snapshot, &md);
    }
}

/// What a reader can rely on, asserted directly (the snapshots pin the rest).
#[test]
fn findings_say_who_won_by_how_much_and_why() {
    let (md, _dir) = report_of(&["closed-loop.json"]);
    // Winners with ratios, the mechanism with system calls by name, the client-bound caveat.
    assert!(
        md.contains("throughput: reactor had the highest, 167.1k req/s (1.24x proactor-uring"),
        "{md}"
    );
    assert!(
        md.contains("Mechanism: system calls per request: proactor-uring 0.06"),
        "{md}"
    );
    assert!(
        md.contains("context switches per request: blocking 1.00"),
        "{md}"
    );
    assert!(md.contains("the load generator was saturated"), "{md}");
    // Every scenario option and the environment.
    for needle in [
        "| connections | 50 |",
        "| kernel |",
        "| server CPUs | 0 |",
        "| tool |",
    ] {
        assert!(md.contains(needle), "{needle}: {md}");
    }
    let (md, _dir) = report_of(&["no-syscalls.json"]);
    assert!(md.contains("### Gaps"), "{md}");
    assert!(md.contains("System calls not counted"), "{md}");
    assert!(md.contains("No server costs"), "{md}");
    let (md, _dir) = report_of(&["open-loop.json"]);
    assert!(
        md.contains("open loop at 20.0k req/s: every model answered"),
        "{md}"
    );
}

/// index.html stands alone: the charts' SVG inline, no script, no link to anywhere.
#[test]
fn the_html_report_is_self_contained() {
    let (_, dir) = report_of(&["closed-loop.json", "sweep.json"]);
    let html = std::fs::read_to_string(dir.path().join("index.html")).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
    // (The SVG namespace, xmlns="http://www.w3.org/2000/svg", is a name, not a fetch.)
    for banned in [
        "<script",
        "<img",
        "<link",
        "src=",
        "href=\"http",
        "url(",
        "@import",
    ] {
        let at = html.find(banned);
        assert!(
            at.is_none(),
            "index.html has {banned}: {:?}",
            at.map(|i| &html[i..(i + 200).min(html.len())])
        );
    }
    let charts: Vec<PathBuf> = std::fs::read_dir(dir.path().join("charts"))
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    let svgs = charts
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "svg"))
        .count();
    assert_eq!(
        html.matches("<svg").count(),
        svgs,
        "every chart inline once"
    );
    assert!(html.contains("<table>"), "{html}");
}

#[test]
fn bad_result_files_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let not_json = dir.path().join("x.json");
    std::fs::write(&not_json, "hello").unwrap();
    let newer = dir.path().join("newer.json");
    std::fs::write(&newer, r#"{"schema_version": 99, "runs": []}"#).unwrap();
    let other = dir.path().join("other.json");
    std::fs::write(&other, r#"{"schema_version": 1, "runs": 3}"#).unwrap();
    for (path, needle) in [
        (dir.path().join("missing.json"), "cannot read"),
        (not_json, "not JSON"),
        (newer, "schema 99"),
        (other, "cannot be read as a result file"),
    ] {
        let o = bench().arg("report").arg(&path).output().unwrap();
        expect(&o, 2, &[needle]);
    }
    let o = bench().arg("report").output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

/// `bench run` writes its report beside the result file; `--no-report` does not.
#[test]
fn bench_run_writes_a_report_unless_told_not_to() {
    let _machine = common::shared_machine();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run.json");
    let o = bench()
        .args(["run", "--model", "reactor", "-c", "2", "-d", "300ms"])
        .args(["--warmup", "50ms", "--accounting", "off", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    expect(&o, 0, &["report written to"]);
    let report = dir.path().join("run");
    assert!(report.join("report.md").is_file());
    assert!(report.join("index.html").is_file());

    let out = dir.path().join("quiet.json");
    let o = bench()
        .args(["run", "--model", "reactor", "-c", "2", "-d", "300ms"])
        .args([
            "--warmup",
            "50ms",
            "--accounting",
            "off",
            "--no-report",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    expect(&o, 0, &[]);
    assert!(!text(&o).contains("report written"), "{}", text(&o));
    assert!(!dir.path().join("quiet").exists());
}
