//! A run split into segments (`bench load --segment I/N --start-at TIME`), merged (`bench
//! merge`): the merge is exact and keeps the asked rate, the merged file is a normal result,
//! and files that are not the segments of one run are refused with what differs.
#![cfg(target_os = "linux")]

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

use common::segments::{check_merge, start_in};
use common::{bench, expect, valid_result};
use iomodels::protocol::{Cost, Protocol, Workload};
use serde_json::Value;

const RATE: f64 = 3000.0;

/// Three segments of one open-loop run against a reactor in this process, and their merge:
/// run once, shared by the tests (their folder lives as long as the tests).
struct Split {
    dir: tempfile::TempDir,
    segments: Vec<PathBuf>,
    merged: PathBuf,
    merge: Output,
}

fn split() -> &'static Split {
    static SPLIT: OnceLock<Split> = OnceLock::new();
    SPLIT.get_or_init(|| {
        let (addr, server) = reactor();
        let dir = tempfile::tempdir().unwrap();
        let start = start_in(2.0);
        let segments: Vec<PathBuf> = (1..=3)
            .map(|i| dir.path().join(format!("segment-{i}.json")))
            .collect();
        let loads: Vec<_> = segments
            .iter()
            .enumerate()
            .map(|(i, out)| {
                bench()
                    .args(["load", "--target", &addr.to_string(), "--cpus", "1"])
                    .args(["--connections", "12", "--rate", &RATE.to_string()])
                    .args(["--duration", "2s", "--warmup", "500ms", "--quiet"])
                    .args(["--segment", &format!("{}/3", i + 1), "--start-at", &start])
                    .arg("--json")
                    .arg(out)
                    .stdout(std::process::Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for mut load in loads {
            assert!(load.wait().unwrap().success(), "a segment failed");
        }
        drop(server);
        let merged = dir.path().join("merged.json");
        let merge = bench()
            .arg("merge")
            .args(segments.iter().rev())
            .arg("--out")
            .arg(&merged)
            .output()
            .unwrap();
        Split {
            dir,
            segments,
            merged,
            merge,
        }
    })
}

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

fn read(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn segments_started_at_one_time_merge_into_the_whole_run() {
    let s = split();
    expect(&s.merge, 0, &["(over 3 segments)", "segment 2/3 on"]);
    let merged = valid_result(&s.merged);
    let segments: Vec<Value> = s.segments.iter().map(|p| valid_result(p)).collect();
    let share = check_merge(&merged, &segments, RATE);
    assert!(
        (share - 1.0).abs() <= 0.01,
        "merged rate {share} of the asked"
    );
    let run = &merged["runs"][0];
    assert_eq!(merged["scenario"]["segments"], 3);
    assert_eq!(run["connections"], 12);
    assert_eq!(run["open_loop"]["requested_rps"], RATE);
    assert!(
        run.get("segment").is_none(),
        "the merged run is a whole run"
    );
    // Each segment's own file is its stripe: 4 connections and a third of the rate.
    for (i, seg) in segments.iter().enumerate() {
        let r = &seg["runs"][0];
        assert_eq!(r["connections"], 4);
        assert_eq!(r["segment"]["first_connection"], 4 * i as u64);
        assert_eq!(r["open_loop"]["requested_rps"], RATE / 3.0);
        assert!(r["segment"]["late_s"].as_f64().unwrap() < 0.5);
    }
    // A normal result: it reports and compares.
    let report = bench()
        .args(["report", "--out"])
        .arg(s.dir.path().join("report"))
        .arg(&s.merged)
        .output()
        .unwrap();
    expect(&report, 0, &[]);
    let compare = bench()
        .arg("compare")
        .args([&s.merged, &s.merged])
        .arg("--allow-dirty")
        .output()
        .unwrap();
    expect(&compare, 0, &[]);
}

/// `bench merge` on `files`, with `edit` applied to the last one first (into a copy).
fn merge_edited(files: &[&Path], edit: impl Fn(&mut Value)) -> Output {
    let s = split();
    let mut paths: Vec<PathBuf> = files.iter().map(|p| p.to_path_buf()).collect();
    if let Some(last) = paths.last_mut() {
        let mut doc = read(last);
        edit(&mut doc);
        let copy = s
            .dir
            .path()
            .join(format!("edited-{}.json", fastrand::u64(..)));
        std::fs::write(&copy, doc.to_string()).unwrap();
        *last = copy;
    }
    bench()
        .arg("merge")
        .args(&paths)
        .arg("--out")
        .arg(s.dir.path().join("refused.json"))
        .output()
        .unwrap()
}

#[test]
fn merge_refuses_files_that_are_not_the_segments_of_one_run() {
    let s = split();
    let [a, b, c] = [&s.segments[0], &s.segments[1], &s.segments[2]].map(|p| p.as_path());
    let same = |_: &mut Value| {};
    expect(
        &merge_edited(&[a, b], same),
        2,
        &["not the segments of one run", "3/3 missing"],
    );
    expect(
        &merge_edited(&[a, b, b, c], same),
        2,
        &["are both segment 2/3"],
    );
    expect(
        &merge_edited(&[a, b, c], |d| d["scenario"]["rate"] = 4000.0.into()),
        2,
        &["differ in rate"],
    );
    expect(
        &merge_edited(&[a, b, c], |d| {
            d["scenario"]["start_at"] = "2026-12-02T18:00:00Z".into()
        }),
        2,
        &["differ in --start-at"],
    );
    expect(
        &merge_edited(&[a, b, c], |d| d["runs"][0]["segment"]["of"] = 4.into()),
        2,
        &["is segment 3/4"],
    );
    expect(
        &merge_edited(&[a, b, c], |d| {
            d["runs"][0].as_object_mut().unwrap().remove("segment");
        }),
        2,
        &["is not a segment's result", "no --segment"],
    );
    expect(
        &merge_edited(&[a, b, c], |d| d["tool"]["git_commit"] = "0000000".into()),
        2,
        &["run one build on every host"],
    );
    let damaged = merge_edited(&[a, b, c], |d| {
        d["runs"][0]["segment"]["tally"]["histogram"] = "AAAA".into()
    });
    assert_ne!(damaged.status.code(), Some(0));
    expect(
        &damaged,
        damaged.status.code().unwrap(),
        &["segment 3/3 holds a damaged tally"],
    );
    assert!(
        !s.dir.path().join("refused.json").exists(),
        "nothing written when refused"
    );
}

#[test]
fn bad_segment_options_are_refused_with_the_fix() {
    let load = |args: &[&str]| {
        bench()
            .args(["load", "--target", "127.0.0.1:9", "--duration", "1s"])
            .args(args)
            .output()
            .unwrap()
    };
    expect(
        &load(&["--segment", "5/4"]),
        2,
        &["I must be from 1 to N", "--segment 2/4"],
    );
    expect(
        &load(&["--segment", "1/4", "-c", "3"]),
        2,
        &["4 segments need at least 4 connections"],
    );
    expect(
        &load(&["--start-at", "2020-01-01T00:00:00Z"]),
        2,
        &["has passed", "date -u -d '+1 min' +%FT%TZ"],
    );
    expect(&load(&["--start-at", "2020-01-01 00:00"]), 2, &["RFC 3339"]);
    expect(
        &load(&["--segment", "1/2", "--client-processes", "2"]),
        2,
        &["--segment runs in one process"],
    );
}
