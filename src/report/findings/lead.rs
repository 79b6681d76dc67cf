//! Who leads at one point, and only when the figures say so: each model's figures over its
//! repeats ([`Figures`]), the models that cannot be ranked (a failed run, a connection left
//! unserved: [`unranked`]), the lead on one metric past the run-to-run spread ([`lead`]), and
//! the mechanism figures that go with it ([`mechanism`]).

use std::fmt::Write;

use super::distinct;
use crate::metrics::stats;
use crate::output::format::label;
use crate::report::spread::{basis, Sample};
use crate::result::{Metric, Run};

/// One model's figures at one point.
pub(super) struct Figures {
    pub(super) model: String,
    pub(super) throughput: Option<Sample>,
    pub(super) p50: Option<Sample>,
    pub(super) p99: Option<Sample>,
    pub(super) cpu: Option<Sample>,
    pub(super) syscalls: Option<f64>,
    by_name: Vec<(String, f64)>,
    pub(super) ctxsw: Option<f64>,
    pub(super) saturated: bool,
    /// Why it is not ranked (a failed run, connections left unserved); `None` when it is.
    pub(super) unranked: Option<String>,
}

impl Figures {
    pub(super) fn ranked(&self) -> bool {
        self.unranked.is_none()
    }
}

/// Each model's figures at one point, in the order the models ran.
pub(super) fn figures(runs: &[&Run]) -> Vec<Figures> {
    distinct(runs.iter().map(|r| label(r)))
        .into_iter()
        .map(|model| {
            let all: Vec<&Run> = runs.iter().copied().filter(|r| label(r) == model).collect();
            let mine: Vec<&Run> = all
                .iter()
                .copied()
                .filter(|r| r.failure.is_none())
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
            Figures {
                throughput: Sample::of(&mine, Metric::Throughput),
                p50: Sample::of(&mine, Metric::P50),
                p99: Sample::of(&mine, Metric::P99),
                cpu: Sample::of(&mine, Metric::Cpu),
                syscalls: med(&|r: &Run| r.syscalls.as_ref()?.per_request),
                by_name,
                ctxsw: med(&|r: &Run| r.server.as_ref()?.ctx_switches_per_request),
                saturated: mine.iter().any(|r| r.client.saturated),
                unranked: unranked(&model, &all),
                model,
            }
        })
        .collect()
}

/// Why a model's runs at one point cannot be ranked: a run failed, or a connection completed
/// nothing in the window (its latency figures speak only for the connections served); `None`
/// when every run served every connection.
pub(crate) fn unranked(model: &str, runs: &[&Run]) -> Option<String> {
    let failed = runs.iter().filter(|r| r.failure.is_some()).count();
    if failed > 0 {
        return Some(format!(
            "{model} failed in {failed} of {} run{}",
            runs.len(),
            if runs.len() == 1 { "" } else { "s" }
        ));
    }
    let worst = runs.iter().max_by_key(|r| r.starved_connections)?;
    (worst.starved_connections > 0).then(|| {
        let served = (worst.connections as u64).saturating_sub(worst.starved_connections);
        format!(
            "{model} served {served} of {} connections{}",
            worst.connections,
            if runs.len() > 1 {
                " (its worst repeat)"
            } else {
                ""
            }
        )
    })
}

/// "`a` had the highest throughput, X (1.20x `b` at Y, 1.90x `c` at Z); medians of 3
/// repeats, spread up to 7%", or the models whose figures are within the spread of the best
/// named as a tie. A lead counts only when the ratio of the medians exceeds 1 + the larger
/// relative spread of the two ([`Sample::spread`]: the repeats' own, or the A/A figure for a
/// single run). Only ranked models take part.
pub(super) fn lead(
    figs: &[&Figures],
    what: &str,
    metric: Metric,
    value: impl Fn(&Figures) -> Option<Sample>,
    fmt: impl Fn(f64) -> String,
) -> String {
    let higher_wins = metric.higher_is_better();
    let mut ranked: Vec<(&str, Sample)> = figs
        .iter()
        .filter(|f| f.ranked())
        .filter_map(|f| Some((f.model.as_str(), value(f)?)))
        .filter(|(_, s)| s.median > 0.0)
        .collect();
    ranked.sort_by(|a, b| {
        if higher_wins {
            b.1.median.total_cmp(&a.1.median)
        } else {
            a.1.median.total_cmp(&b.1.median)
        }
    });
    let (Some(best), Some(next), Some(last)) = (ranked.first(), ranked.get(1), ranked.last())
    else {
        return format!("{what}: not enough ranked figures to compare.");
    };
    let ratio = |a: &Sample, b: &Sample| {
        if higher_wins {
            a.median / b.median
        } else {
            b.median / a.median
        }
    };
    let spread = |a: &Sample, b: &Sample| a.spread(metric).max(b.spread(metric));
    let ties: Vec<&(&str, Sample)> = ranked
        .iter()
        .filter(|(_, s)| ratio(&best.1, s) <= 1.0 + spread(&best.1, s))
        .collect();
    let samples: Vec<Sample> = ranked.iter().map(|(_, s)| *s).collect();
    let basis = basis(&samples, metric);
    if ties.len() > 1 {
        let behind = if ties.iter().any(|(m, _)| *m == last.0) {
            String::new()
        } else {
            format!(
                "; {} is {:.2}x behind the best at {}",
                last.0,
                ratio(&best.1, &last.1),
                fmt(last.1.median)
            )
        };
        return format!(
            "{what}: {} are within the run-to-run spread of each other ({}), a tie on these \
             figures{behind} ({basis}).",
            ties.iter().map(|(m, _)| *m).collect::<Vec<_>>().join(", "),
            ties.iter()
                .map(|(m, s)| format!("{m} {}", fmt(s.median)))
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    let mut against = format!(
        "{:.2}x {} at {}",
        ratio(&best.1, &next.1),
        next.0,
        fmt(next.1.median)
    );
    if ranked.len() > 2 {
        let _ = write!(
            against,
            ", {:.2}x {} at {}",
            ratio(&best.1, &last.1),
            last.0,
            fmt(last.1.median)
        );
    }
    format!(
        "{what}: {} had the {}, {} ({against}; {basis}).",
        best.0,
        if higher_wins { "highest" } else { "lowest" },
        fmt(best.1.median)
    )
}

/// The system-call and context-switch figures that go with the comparison (ranked models
/// only).
pub(super) fn mechanism(figs: &[&Figures]) -> Option<String> {
    let figs: Vec<&Figures> = figs.iter().copied().filter(|f| f.ranked()).collect();
    let counted: Vec<(&Figures, f64)> = figs
        .iter()
        .filter_map(|f| Some((*f, f.syscalls?)))
        .collect();
    let mut parts = Vec::new();
    if counted.len() >= 2 {
        let fewest = counted.iter().min_by(|a, b| a.1.total_cmp(&b.1))?;
        let most = counted.iter().max_by(|a, b| a.1.total_cmp(&b.1))?;
        let names = |f: &Figures| {
            f.by_name
                .iter()
                .map(|(n, v)| format!("{n} {v:.2}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if fewest.0.model != most.0.model {
            parts.push(format!(
                "system calls per request: {} {:.2} ({}) vs {} {:.2} ({})",
                fewest.0.model,
                fewest.1,
                names(fewest.0),
                most.0.model,
                most.1,
                names(most.0)
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
