//! `bench merge`: one result from the files of a run's segments (`bench load --segment I/N
//! --start-at TIME --json FILE` on each host).
//!
//! The files must be every segment of one run, once each: the same target, workload and load
//! shape, the same `--start-at` (so their windows are one stretch of time and their intervals
//! line up), the same build, and the segments `1/N` to `N/N`. Anything else is refused with what
//! differs, since a merge of runs that are not one run reports figures no run had (averaged
//! percentiles; a rate over misaligned windows). The merged run is then made from the
//! segments' tallies exactly (`load::merge_segments`: histograms added, counts summed, the time
//! series added slot by slot), and is a normal result: it validates, reports and compares like
//! any other. Each segment's warnings are kept, named by its segment and host, and every
//! segment is listed in `client.per_process` with its host, its lateness and how busy it was.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::measured::{to_run, RunIdentity};
use super::warning::Warning;
use super::{ResultFile, Run, Scenario};
use crate::load::{self, LoadConfig, Segment, SegmentRecord, Shape};
use crate::protocol::Workload;
use crate::Error;

/// One segment's file, read.
pub struct SegmentFile {
    pub path: PathBuf,
    pub file: ResultFile,
}

/// The run merged from `files`, or why they are not the segments of one run.
pub fn merge_files(files: Vec<SegmentFile>) -> anyhow::Result<ResultFile> {
    let mut segments = files
        .into_iter()
        .map(Checked::of)
        .collect::<Result<Vec<_>, Error>>()?;
    segments.sort_by_key(|s| s.record().index);
    check_one_run(&segments)?;
    let first = &segments[0];
    let scenario = first.file.file.scenario.clone();
    let config = whole_config(&scenario)?;
    let n = segments.len();
    let mut warnings = Vec::new();
    let mut failures = Vec::new();
    let mut hosts = BTreeSet::new();
    for s in &segments {
        let r = s.record();
        let who = match &r.host {
            Some(host) => format!("segment {}/{} ({host})", r.index, r.of),
            None => format!("segment {}/{}", r.index, r.of),
        };
        hosts.extend(r.host.clone());
        for w in &s.run().warnings {
            warnings.push(Warning::Text(format!("{who}: {w}")));
        }
        if let Some(f) = &s.run().failure {
            failures.push(format!("{who}: {f}"));
        }
    }
    let env = {
        let mut env = first.file.file.env.clone();
        env.hostname = hosts.into_iter().collect::<Vec<_>>().join(", ");
        env
    };
    let tool = first.file.file.tool.clone();
    let records: Vec<SegmentRecord> = segments.into_iter().map(|s| s.into_record()).collect();
    let outcome = load::merge_segments(records, config.shape.interval)?;
    let threads = outcome.threads;
    let mut run = to_run(
        RunIdentity {
            model: None,
            threads: None,
            poller: None,
            repeat_index: 0,
            server_cpus: Vec::new(),
            work_us: 0,
            block_us: 0,
        },
        &config,
        outcome,
        None,
        (!failures.is_empty()).then(|| failures.join("; ")),
        "--cpus on the segment's host",
    )?;
    run.syscalls_unavailable =
        Some("bench load does not count the system calls of the server it drives".into());
    run.warnings.extend(warnings);
    let mut file = ResultFile::new(
        Scenario {
            client_threads: threads,
            client_cpus: Vec::new(),
            segments: Some(n),
            ..scenario
        },
        env,
    );
    file.tool = tool;
    file.runs.push(run);
    Ok(file)
}

/// A file that holds one segment's run.
struct Checked {
    file: SegmentFile,
}

impl Checked {
    fn of(file: SegmentFile) -> Result<Checked, Error> {
        let not = |why: &str| {
            Error::Usage(format!(
                "{} is not a segment's result: {why} (bench merge takes the --json files of \
                 `bench load --segment I/N --start-at TIME`, one per segment)",
                file.path.display()
            ))
        };
        match file.file.runs.as_slice() {
            [run] if run.segment.is_some() => {}
            [_] => return Err(not("its run was not a segment (no --segment)")),
            runs => return Err(not(&format!("it holds {} runs, not one", runs.len()))),
        }
        if file.file.scenario.command != "load" {
            return Err(not(&format!(
                "it was written by `bench {}`",
                file.file.scenario.command
            )));
        }
        Ok(Checked { file })
    }

    fn run(&self) -> &Run {
        &self.file.file.runs[0]
    }

    fn record(&self) -> &SegmentRecord {
        self.run().segment.as_ref().expect("checked in Checked::of")
    }

    fn into_record(self) -> SegmentRecord {
        let mut file = self.file.file;
        file.runs.remove(0).segment.expect("checked in Checked::of")
    }

    fn name(&self) -> String {
        self.file.path.display().to_string()
    }
}

/// Every segment of one run, once each; refused with what differs otherwise.
fn check_one_run(segments: &[Checked]) -> Result<(), Error> {
    let first = &segments[0];
    let of = first.record().of;
    let refuse = |why: String| {
        Error::Usage(format!(
            "these files are not the segments of one run: {why}"
        ))
    };
    for s in segments {
        let r = s.record();
        if r.of != of {
            return Err(refuse(format!(
                "{} is segment {}/{} and {} is segment {}/{}",
                first.name(),
                first.record().index,
                of,
                s.name(),
                r.index,
                r.of
            )));
        }
        if let Some(field) = differing(&first.file.file.scenario, &s.file.file.scenario) {
            return Err(refuse(format!(
                "{} and {} differ in {field}",
                first.name(),
                s.name()
            )));
        }
        if s.file.file.tool != first.file.file.tool {
            return Err(refuse(format!(
                "{} was made by {} {} and {} by {} {}: run one build on every host",
                first.name(),
                first.file.file.tool.version,
                first.file.file.tool.git_commit,
                s.name(),
                s.file.file.tool.version,
                s.file.file.tool.git_commit
            )));
        }
        let connections = first.file.file.scenario.connections;
        let segment = Segment {
            index: r.index,
            of: r.of,
        };
        if load::stripe(segment, connections) != (r.first_connection, r.connections) {
            return Err(refuse(format!(
                "{} says it drove connections {}..{} as segment {segment}, which is not that \
                 segment's stripe of {connections} connections",
                s.name(),
                r.first_connection,
                r.first_connection + r.connections as u64
            )));
        }
    }
    if first.file.file.scenario.start_at.is_none() {
        return Err(refuse(format!(
            "{} was not started with --start-at: segments must share one start time, or their \
             windows are different stretches of time and their intervals cannot be lined up \
             (run every segment with the same --start-at)",
            first.name()
        )));
    }
    for pair in segments.windows(2) {
        if pair[0].record().index == pair[1].record().index {
            return Err(refuse(format!(
                "{} and {} are both segment {}/{of}",
                pair[0].name(),
                pair[1].name(),
                pair[0].record().index
            )));
        }
    }
    let have: BTreeSet<usize> = segments.iter().map(|s| s.record().index).collect();
    let missing: Vec<String> = (1..=of)
        .filter(|i| !have.contains(i))
        .map(|i| format!("{i}/{of}"))
        .collect();
    if !missing.is_empty() {
        return Err(refuse(format!(
            "segment(s) {} missing: give every segment's file",
            missing.join(", ")
        )));
    }
    Ok(())
}

/// The first field of the run's definition in which two segments' scenarios differ.
fn differing(a: &Scenario, b: &Scenario) -> Option<&'static str> {
    let fields: [(&str, bool); 11] = [
        ("target", a.target == b.target),
        ("workload", a.workload == b.workload),
        ("connections", a.connections == b.connections),
        ("payload", a.payload == b.payload),
        ("pipeline", a.pipeline == b.pipeline),
        ("rate", a.rate == b.rate),
        ("timeout", a.timeout_s == b.timeout_s),
        ("interval", a.interval_s == b.interval_s),
        ("duration", a.duration_s == b.duration_s),
        ("warm-up", a.warmup_s == b.warmup_s),
        ("--start-at", a.start_at == b.start_at),
    ];
    fields.into_iter().find(|(_, same)| !same).map(|(f, _)| f)
}

/// The whole run's load, as the merged run's figures see it.
fn whole_config(s: &Scenario) -> anyhow::Result<LoadConfig> {
    let workload: Workload = s.workload.parse().map_err(Error::Usage)?;
    let secs = |v: f64| Duration::from_secs_f64(v.max(0.0));
    Ok(LoadConfig {
        // The figures do not read the target; the scenario keeps it as given.
        target: SocketAddr::from(([0, 0, 0, 0], 0)),
        shape: Shape {
            workload,
            connections: s.connections,
            duration: secs(s.duration_s),
            warmup: secs(s.warmup_s),
            payload: s.payload,
            pipeline: s.pipeline,
            timeout: s.timeout_s.map(secs),
            rate: s.rate,
            interval: secs(s.interval_s),
        },
        threads: s.client_threads,
        http: None,
        cpus: None,
        count_syscalls: false,
        connect_timeout: Duration::ZERO,
        processes: 1,
        segment: None,
        start_at: None,
    })
}
