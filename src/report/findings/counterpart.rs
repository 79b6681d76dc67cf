//! The counterparts finding: at a point where an outside server (`bench run --server`) ran
//! beside an exhibit (the counterparts scenario pairs Redis with `reactor`, memcached with
//! `multi-reactor`, nginx with `reuseport`), how their mechanisms compare, figure by figure:
//! system calls per request and the calls by name, the calls only one of them makes, context
//! switches, CPU per request (a lead only past the spread), threads and memory.

use super::lead::Figures;
use crate::metrics::stats;
use crate::report::spread::Sample;
use crate::result::{Metric, Run};

/// A call counts as one a server makes when it makes at least this many per request.
const NOTABLE: f64 = 0.05;

/// The findings comparing each outside server at this point with each exhibit beside it.
pub(super) fn counterparts(at: &str, runs: &[&Run], figs: &[&Figures]) -> Vec<String> {
    let outside = |f: &Figures| {
        runs.iter()
            .any(|r| r.model.as_deref() == Some(f.model.as_str()) && r.command.is_some())
    };
    let servers: Vec<&Figures> = figs.iter().copied().filter(|f| outside(f)).collect();
    let exhibits: Vec<&Figures> = figs.iter().copied().filter(|f| !outside(f)).collect();
    let mut out = Vec::new();
    for s in &servers {
        for e in &exhibits {
            out.push(format!("{at}{}", pair(runs, s, e)));
        }
    }
    out
}

fn pair(runs: &[&Run], s: &Figures, e: &Figures) -> String {
    let of = |f: &Figures, metric: Metric| {
        let mine: Vec<&Run> = runs
            .iter()
            .copied()
            .filter(|r| r.model.as_deref() == Some(f.model.as_str()) && r.failure.is_none())
            .collect();
        Sample::of(&mine, metric)
    };
    let (s_calls, e_calls) = (calls(runs, &s.model), calls(runs, &e.model));
    let mut parts = vec![format!(
        "counterparts: {} (an outside server) beside the exhibit {}",
        s.model, e.model
    )];
    if let (Some(a), Some(b)) = (s.syscalls, e.syscalls) {
        let names = |calls: &[(String, f64)]| {
            calls
                .iter()
                .map(|(n, v)| format!("{n} {v:.2}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        parts.push(format!(
            "system calls per request {} {a:.2} ({}) against {} {b:.2} ({})",
            s.model,
            names(&s_calls),
            e.model,
            names(&e_calls)
        ));
        let only = |x: &[(String, f64)], y: &[(String, f64)]| -> Vec<String> {
            x.iter()
                .filter(|(n, _)| !y.iter().any(|(m, _)| m == n))
                .map(|(n, _)| n.clone())
                .collect()
        };
        let (mine, theirs) = (only(&s_calls, &e_calls), only(&e_calls, &s_calls));
        if !mine.is_empty() || !theirs.is_empty() {
            parts.push(format!(
                "where their calls differ, {} makes {} where {} makes {}",
                s.model,
                list(&mine),
                e.model,
                list(&theirs)
            ));
        }
    }
    if let (Some(a), Some(b)) = (s.ctxsw, e.ctxsw) {
        parts.push(format!(
            "context switches per request {a:.2} against {b:.2}"
        ));
    }
    if let (Some(a), Some(b)) = (s.cpu, e.cpu) {
        let ratio = a.median / b.median;
        let spread = a.spread(Metric::Cpu).max(b.spread(Metric::Cpu));
        let verdict = if ratio.max(1.0 / ratio) > 1.0 + spread {
            format!("{ratio:.2}x, past the spread of {:.0}%", spread * 100.0)
        } else {
            format!(
                "{ratio:.2}x, within the spread of {:.0}%: a tie",
                spread * 100.0
            )
        };
        parts.push(format!(
            "CPU per request {:.1} µs against {:.1} µs ({verdict})",
            a.median, b.median
        ));
    }
    if let (Some(a), Some(b)) = (of(s, Metric::Threads), of(e, Metric::Threads)) {
        parts.push(format!("threads {:.0} against {:.0}", a.median, b.median));
    }
    if let (Some(a), Some(b)) = (of(s, Metric::Rss), of(e, Metric::Rss)) {
        let mib = |v: f64| v / (1024.0 * 1024.0);
        parts.push(format!(
            "peak memory {:.1} MiB against {:.1} MiB",
            mib(a.median),
            mib(b.median)
        ));
    }
    format!("{} (medians of the repeats).", parts.join("; "))
}

/// The calls `model` makes at least [`NOTABLE`] times per request (the median over its
/// repeats that were counted), most first.
fn calls(runs: &[&Run], model: &str) -> Vec<(String, f64)> {
    let mine: Vec<&Run> = runs
        .iter()
        .copied()
        .filter(|r| r.model.as_deref() == Some(model) && r.failure.is_none())
        .collect();
    let mut names: Vec<String> = Vec::new();
    for r in &mine {
        let per = r
            .syscalls
            .as_ref()
            .and_then(|s| s.by_name_per_request.as_ref());
        for name in per.into_iter().flat_map(|m| m.keys()) {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
    }
    let mut out: Vec<(String, f64)> = names
        .into_iter()
        .filter_map(|name| {
            let v = stats::med(&mine, |r| {
                r.syscalls
                    .as_ref()?
                    .by_name_per_request
                    .as_ref()?
                    .get(&name)
                    .copied()
                    .flatten()
            })?;
            (v >= NOTABLE).then_some((name, v))
        })
        .collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1));
    out
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "nothing of its own".into()
    } else {
        names.join(", ")
    }
}
