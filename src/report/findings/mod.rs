//! The findings of a report: per sweep point, which model won on throughput, p99 and CPU per
//! request and by how much, the mechanism figures that go with it, the caveats that apply, and
//! the gaps of a file (what it did not measure). Only statements the figures support: a model
//! that failed or left connections unserved is never ranked, and a lead must clear the
//! run-to-run spread ([`lead`]).

mod counterpart;
mod lead;
mod tail;

pub(crate) use lead::unranked;
use lead::{figures, lead, mechanism, Figures};

use super::spread::Sample;
use crate::output::format::{fmt_rate, fmt_us};
use crate::result::{describe_point, Metric, ResultFile, Run, SloCapacity};

/// A run's sweep point as the report names it, without the poller: a swept poller is part of
/// the model's label (`reactor (select)`), not of the point.
pub(super) fn point_of(run: &Run) -> String {
    let mut point = run.point.clone();
    point.remove("poller");
    describe_point(&point)
}

/// The items in the order they first come, each once.
pub(super) fn distinct<T: PartialEq>(items: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut out = Vec::new();
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

/// The file's runs by sweep point, in the order they ran.
pub(super) fn groups(file: &ResultFile) -> Vec<(String, Vec<&Run>)> {
    let mut groups: Vec<(String, Vec<&Run>)> = Vec::new();
    for run in &file.runs {
        let key = describe_point(&run.point);
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, runs)) => runs.push(run),
            None => groups.push((key, vec![run])),
        }
    }
    groups
}

/// The findings of one result file: per point, which model won on throughput, p99 and CPU
/// per request, by how much, what mechanism figures go with it, and the caveats that apply.
/// Only statements the figures support: a model that failed or left connections unserved is
/// named, not ranked; a lead inside the run-to-run spread is a tie ([`lead::lead`]).
pub fn findings(file: &ResultFile) -> Vec<String> {
    let mut out = Vec::new();
    for (point, runs) in groups(file) {
        let at = if point.is_empty() {
            String::new()
        } else {
            format!("At {point}: ")
        };
        let plain: Vec<&Run> = runs
            .iter()
            .copied()
            .filter(|r| r.slo_probe.is_none())
            .collect();
        point_findings(&mut out, &at, &plain);
    }
    for found in &file.slo {
        out.push(capacity_finding(found));
    }
    out.extend(caveats(file));
    out
}

/// The findings at one point (`at` its prefix): the models not ranked and why, who leads in
/// throughput (or, in an open loop, who fell behind), p99 and CPU, the mechanism, and a
/// saturated load generator.
fn point_findings(out: &mut Vec<String>, at: &str, plain: &[&Run]) {
    let all = figures(plain);
    let unranked: Vec<&str> = all.iter().filter_map(|f| f.unranked.as_deref()).collect();
    if !unranked.is_empty() {
        out.push(format!(
            "{at}not ranked: {}. The figures of a model that failed or left connections \
             unserved speak only for what it served, so it is named best on nothing.",
            unranked.join("; ")
        ));
    }
    let figs: Vec<&Figures> = all.iter().filter(|f| f.ranked()).collect();
    let open_rate = plain
        .iter()
        .map(|r| r.rate)
        .reduce(|a, b| if a == b { a } else { None })
        .flatten();
    let median = |s: Option<Sample>| s.map_or(0.0, |s| s.median);
    if let (Some(rate), true) = (open_rate, figs.len() >= 2) {
        // An open loop's throughput is the rate asked for, unless a model fell behind.
        let behind: Vec<String> = figs
            .iter()
            .filter(|f| median(f.throughput) < 0.99 * rate)
            .map(|f| format!("{} ({} req/s)", f.model, fmt_rate(median(f.throughput))))
            .collect();
        out.push(format!(
            "{at}open loop at {} req/s: {}",
            fmt_rate(rate),
            if behind.is_empty() {
                "every ranked model answered the rate asked for, so the comparison is in \
                 latency and cost, not throughput."
                    .to_string()
            } else {
                format!("fell behind: {}.", behind.join(", "))
            }
        ));
    } else if figs.len() >= 2 {
        out.push(format!(
            "{at}{}",
            lead(
                &figs,
                "throughput",
                Metric::Throughput,
                |f| f.throughput,
                |v| format!("{} req/s", fmt_rate(v))
            )
        ));
    }
    if figs.len() >= 2 {
        out.push(format!(
            "{at}{}",
            lead(&figs, "p99 latency", Metric::P99, |f| f.p99, fmt_us)
        ));
        if figs.iter().filter(|f| f.cpu.is_some()).count() >= 2 {
            out.push(format!(
                "{at}{}",
                lead(
                    &figs,
                    "server CPU per request",
                    Metric::Cpu,
                    |f| f.cpu,
                    |v| format!("{v:.1} µs")
                )
            ));
        }
        if let Some(m) = mechanism(&figs) {
            out.push(format!("{at}{m}"));
        }
        out.extend(tail::tails(at, &figs));
        out.extend(counterpart::counterparts(at, plain, &figs));
    } else if let [f] = figs.as_slice() {
        out.push(format!(
            "{at}{}: {} req/s, p99 {} (one ranked model: nothing to compare).",
            f.model,
            fmt_rate(median(f.throughput)),
            fmt_us(median(f.p99))
        ));
    }
    let client_bound: Vec<&str> = all
        .iter()
        .filter(|f| f.saturated)
        .map(|f| f.model.as_str())
        .collect();
    if !client_bound.is_empty() {
        out.push(format!(
            "{at}Caveat: the load generator was saturated in the runs of {}: their \
             throughput is a lower bound for the server, and differences between them are \
             differences at the client's ceiling.",
            client_bound.join(", ")
        ));
    }
}

/// What one model's SLO search found.
fn capacity_finding(found: &SloCapacity) -> String {
    let at = describe_point(&found.point);
    format!(
        "{}{}: capacity at {} {} (closed-loop ceiling {} req/s, {} probes){}.",
        if at.is_empty() {
            String::new()
        } else {
            format!("At {at}: ")
        },
        found.model,
        found.objectives.join(", "),
        found
            .capacity_rps
            .map_or("none: no rate probed met it".into(), |c| format!(
                "{} req/s",
                fmt_rate(c)
            )),
        fmt_rate(found.closed_loop_rps),
        found.probes,
        if found.warnings.is_empty() {
            ""
        } else {
            "; client-bound"
        }
    )
}

/// Caveats about the whole file: a busy machine, Wine, failures, errors.
fn caveats(file: &ResultFile) -> Vec<String> {
    let mut out = Vec::new();
    let env = &file.env;
    if let Some([load, ..]) = env
        .loadavg_at_start
        .filter(|l| l[0] > 0.5 * env.cpus as f64)
    {
        out.push(format!(
            "Caveat: the machine was busy when the run started (load average {load:.2} on {} \
             CPUs): expect noisy figures.",
            env.cpus
        ));
    }
    if env.kernel.contains("Wine") || env.os.contains("Wine") {
        out.push(
            "Caveat: measured under Wine: the figures show correctness, not Windows's speed."
                .into(),
        );
    }
    let failed: Vec<String> = file
        .runs
        .iter()
        .filter(|r| r.failure.is_some() && r.slo_probe.is_none())
        .map(|r| {
            format!(
                "{} (repeat {})",
                r.model.as_deref().unwrap_or("target"),
                r.repeat_index + 1
            )
        })
        .collect();
    if !failed.is_empty() {
        out.push(format!(
            "Failed runs (left out of the figures above): {}.",
            failed.join(", ")
        ));
    }
    let errors: u64 = file
        .runs
        .iter()
        .filter(|r| r.slo_probe.is_none())
        .map(|r| r.errors + r.warmup_errors)
        .sum();
    if errors > 0 {
        out.push(format!(
            "{errors} invalid or failed requests were counted: see the errors column."
        ));
    }
    out
}

/// What the file lacks, labelled: no system-call counts, no server costs, fields written
/// before they existed.
pub(super) fn gaps(file: &ResultFile) -> Vec<String> {
    let mut out = Vec::new();
    let uncounted: Vec<String> =
        distinct(file.runs.iter().filter(|r| r.syscalls.is_none()).map(|r| {
            format!(
                "{}{}",
                r.model.as_deref().unwrap_or("target"),
                r.syscalls_unavailable
                    .as_deref()
                    .map_or(String::new(), |why| format!(" ({why})"))
            )
        }));
    if !uncounted.is_empty() {
        out.push(format!(
            "System calls not counted for: {}. Their `sys/req` column is absent or `-`.",
            uncounted.join("; ")
        ));
    }
    let no_server: Vec<&str> = distinct(
        file.runs
            .iter()
            .filter(|r| r.server.is_none())
            .map(|r| r.model.as_deref().unwrap_or("target")),
    );
    if !no_server.is_empty() {
        out.push(format!(
            "No server costs (CPU, context switches, memory) for: {} (an outside server, or \
             its counters could not be read); shown as `-`.",
            no_server.join(", ")
        ));
    }
    out
}
