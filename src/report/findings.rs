//! The findings of a report: per sweep point, which model won on throughput, p99 and CPU per
//! request and by how much, the mechanism figures that go with it, the caveats that apply, and
//! the gaps of a file (what it did not measure). Only statements the figures support.

use std::fmt::Write;

use crate::metrics::stats;
use crate::output::format::{fmt_rate, fmt_us, label};
use crate::result::{describe_point, ResultFile, Run, SloCapacity};

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

/// One model's medians at one point.
struct Figures {
    model: String,
    throughput: f64,
    p99: f64,
    cpu: Option<f64>,
    syscalls: Option<f64>,
    by_name: Vec<(String, f64)>,
    ctxsw: Option<f64>,
    saturated: bool,
}

fn figures(runs: &[&Run]) -> Vec<Figures> {
    distinct(runs.iter().map(|r| label(r)))
        .into_iter()
        .filter_map(|model| {
            let mine: Vec<&Run> = runs
                .iter()
                .copied()
                .filter(|r| label(r) == model && r.failure.is_none())
                .collect();
            let med = |f: &dyn Fn(&Run) -> Option<f64>| stats::med(&mine, f);
            let mut by_name: Vec<(String, f64)> = Vec::new();
            if let Some(first) = mine.iter().find_map(|r| r.syscalls.as_ref()) {
                if let Some(names) = &first.by_name_per_request {
                    for name in names.keys() {
                        let v = med(&|r: &Run| r.syscalls.as_ref()?.per_request_of(name));
                        if let Some(v) = v.filter(|v| *v >= 0.01) {
                            by_name.push((name.clone(), v));
                        }
                    }
                }
            }
            by_name.sort_by(|a, b| b.1.total_cmp(&a.1));
            by_name.truncate(3);
            Some(Figures {
                model,
                throughput: med(&|r: &Run| Some(r.throughput_rps))?,
                p99: med(&|r: &Run| Some(r.latency_us.p99))?,
                cpu: med(&|r: &Run| r.server.as_ref()?.cpu_us_per_request),
                syscalls: med(&|r: &Run| r.syscalls.as_ref()?.per_request),
                by_name,
                ctxsw: med(&|r: &Run| r.server.as_ref()?.ctx_switches_per_request),
                saturated: mine.iter().any(|r| r.client.saturated),
            })
        })
        .collect()
}

/// Ratios closer than this are called a tie: runs of the same model on a shared 2-CPU
/// machine move by 10% and more between runs (README).
const TIE: f64 = 1.10;

/// The findings of one result file: per point, which model won on throughput, p99 and CPU
/// per request, by how much, what mechanism figures go with it, and the caveats that apply.
/// Only statements the figures support: a lead under 10% is called a tie.
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

/// The findings at one point (`at` its prefix): who leads in throughput (or, in an open loop,
/// who fell behind), p99 and CPU, the mechanism, and a saturated load generator.
fn point_findings(out: &mut Vec<String>, at: &str, plain: &[&Run]) {
    let figs = figures(plain);
    let open_rate = plain
        .iter()
        .map(|r| r.rate)
        .reduce(|a, b| if a == b { a } else { None })
        .flatten();
    if let (Some(rate), true) = (open_rate, figs.len() >= 2) {
        // An open loop's throughput is the rate asked for, unless a model fell behind.
        let behind: Vec<String> = figs
            .iter()
            .filter(|f| f.throughput < 0.99 * rate)
            .map(|f| format!("{} ({} req/s)", f.model, fmt_rate(f.throughput)))
            .collect();
        out.push(format!(
            "{at}open loop at {} req/s: {}",
            fmt_rate(rate),
            if behind.is_empty() {
                "every model answered the rate asked for, so the comparison is in latency \
                 and cost, not throughput."
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
                |f| Some(f.throughput),
                true,
                |v| { format!("{} req/s", fmt_rate(v)) }
            )
        ));
    }
    if figs.len() >= 2 {
        out.push(format!(
            "{at}{}",
            lead(&figs, "p99 latency", |f| Some(f.p99), false, fmt_us)
        ));
        if figs.iter().filter(|f| f.cpu.is_some()).count() >= 2 {
            out.push(format!(
                "{at}{}",
                lead(
                    &figs,
                    "server CPU per request",
                    |f| f.cpu,
                    false,
                    |v| { format!("{v:.1} µs") }
                )
            ));
        }
        if let Some(m) = mechanism(&figs) {
            out.push(format!("{at}{m}"));
        }
    } else if let Some(f) = figs.first() {
        out.push(format!(
            "{at}{}: {} req/s, p99 {} (one model: nothing to compare).",
            f.model,
            fmt_rate(f.throughput),
            fmt_us(f.p99)
        ));
    }
    let client_bound: Vec<&str> = figs
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

/// "`a` had the highest throughput: 1.20x `b` (next) and 1.90x `c` (last)", or a tie.
fn lead(
    figs: &[Figures],
    what: &str,
    value: impl Fn(&Figures) -> Option<f64>,
    higher_wins: bool,
    fmt: impl Fn(f64) -> String,
) -> String {
    let mut ranked: Vec<(&str, f64)> = figs
        .iter()
        .filter_map(|f| Some((f.model.as_str(), value(f)?)))
        .filter(|(_, v)| *v > 0.0)
        .collect();
    ranked.sort_by(|a, b| {
        if higher_wins {
            b.1.total_cmp(&a.1)
        } else {
            a.1.total_cmp(&b.1)
        }
    });
    let (Some(best), Some(next), Some(last)) = (ranked.first(), ranked.get(1), ranked.last())
    else {
        return format!("{what}: not enough figures to compare.");
    };
    let ratio = |a: f64, b: f64| if higher_wins { a / b } else { b / a };
    let best_word = if higher_wins { "highest" } else { "lowest" };
    let ties: Vec<&str> = ranked
        .iter()
        .filter(|(_, v)| ratio(best.1, *v) < TIE)
        .map(|(m, _)| *m)
        .collect();
    if ties.len() > 1 {
        let behind = if ties.contains(&last.0) {
            String::new()
        } else {
            format!(
                "; {} is {:.2}x behind the best at {}",
                last.0,
                ratio(best.1, last.1),
                fmt(last.1)
            )
        };
        return format!(
            "{what}: {} are within 10% of each other ({}), a tie on this machine{behind}.",
            ties.join(", "),
            ranked
                .iter()
                .filter(|(m, _)| ties.contains(m))
                .map(|(m, v)| format!("{m} {}", fmt(*v)))
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    let mut against = format!(
        "{:.2}x {} at {}",
        ratio(best.1, next.1),
        next.0,
        fmt(next.1)
    );
    if ranked.len() > 2 {
        let _ = write!(
            against,
            ", {:.2}x {} at {}",
            ratio(best.1, last.1),
            last.0,
            fmt(last.1)
        );
    }
    format!(
        "{what}: {} had the {best_word}, {} ({against}).",
        best.0,
        fmt(best.1)
    )
}

/// The system-call and context-switch figures that go with the comparison.
fn mechanism(figs: &[Figures]) -> Option<String> {
    let counted: Vec<&Figures> = figs.iter().filter(|f| f.syscalls.is_some()).collect();
    let mut parts = Vec::new();
    if counted.len() >= 2 {
        let fewest = counted.iter().min_by(|a, b| {
            a.syscalls
                .unwrap_or(0.0)
                .total_cmp(&b.syscalls.unwrap_or(0.0))
        })?;
        let most = counted.iter().max_by(|a, b| {
            a.syscalls
                .unwrap_or(0.0)
                .total_cmp(&b.syscalls.unwrap_or(0.0))
        })?;
        let names = |f: &Figures| {
            f.by_name
                .iter()
                .map(|(n, v)| format!("{n} {v:.2}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if fewest.model != most.model {
            parts.push(format!(
                "system calls per request: {} {:.2} ({}) vs {} {:.2} ({})",
                fewest.model,
                fewest.syscalls.unwrap_or(0.0),
                names(fewest),
                most.model,
                most.syscalls.unwrap_or(0.0),
                names(most)
            ));
        }
    }
    let switching: Vec<String> = figs
        .iter()
        .filter_map(|f| Some((f, f.ctxsw?)))
        .filter(|(_, c)| *c >= 0.5)
        .map(|(f, c)| format!("{} {c:.2}", f.model))
        .collect();
    if !switching.is_empty() {
        let rest = if switching.len() < figs.len() {
            " (the others under 0.5)"
        } else {
            ""
        };
        parts.push(format!(
            "context switches per request: {}{rest}",
            switching.join(", ")
        ));
    }
    (!parts.is_empty()).then(|| format!("Mechanism: {}.", parts.join("; ")))
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
