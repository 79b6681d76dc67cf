//! The verdicts on a claim scenario's expectations (the result's `scenario.expect`): for each,
//! **holds**, **does not hold**, or **cannot be told on this machine**, with the figures and
//! the spread it rests on; and one verdict over all of them.
//!
//! An expectation compares the medians of two models' figures at one sweep point (the first
//! over the second). The ratio is read as uncertain by the larger relative spread `s` of the
//! two (their repeats' own, or the A/A figure for a single run, [`spread`](super::spread)):
//! `at_least x` holds when ratio / (1 + s) >= x and does not hold when ratio x (1 + s) < x;
//! `at_most x` the mirror; with d = max(ratio, 1 / ratio), `within w` holds when
//! d (1 + s) - 1 <= w and does not hold when d / (1 + s) - 1 > w. Anything between cannot be told, as it cannot when a model
//! involved failed, left connections unserved (except on `served` itself, which a run that
//! failed only by falling silent is still judged on), ran with a
//! saturated load generator (for throughput and latency, which are then the client's), or lacks
//! the figure.

use std::fmt;

use super::findings::unranked;
use super::spread::{pct, Sample};
use crate::output::format::label;
use crate::result::measured::failed_only_by_stalling;
use crate::result::{describe_point, Bound, Expectation, Metric, ResultFile, Run};

/// What the figures say of an expectation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Holds,
    DoesNotHold,
    CannotTell,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Holds => "holds",
            Verdict::DoesNotHold => "does not hold",
            Verdict::CannotTell => "cannot be told on this machine",
        })
    }
}

/// One expectation judged.
#[derive(Clone, Debug, PartialEq)]
pub struct Judged {
    pub expectation: Expectation,
    pub verdict: Verdict,
    /// The figures it rests on, or why it cannot be told.
    pub why: String,
}

/// Every expectation of the file, judged, in the file's order.
pub fn judge(file: &ResultFile) -> Vec<Judged> {
    file.scenario
        .expect
        .iter()
        .map(|e| {
            let (verdict, why) = judge_one(file, e);
            Judged {
                expectation: e.clone(),
                verdict,
                why,
            }
        })
        .collect()
}

/// The verdict over all: it holds when every expectation holds, does not when one does not,
/// and cannot be told otherwise (or when there is none).
pub fn overall(judged: &[Judged]) -> Verdict {
    if judged.iter().any(|j| j.verdict == Verdict::DoesNotHold) {
        Verdict::DoesNotHold
    } else if !judged.is_empty() && judged.iter().all(|j| j.verdict == Verdict::Holds) {
        Verdict::Holds
    } else {
        Verdict::CannotTell
    }
}

fn judge_one(file: &ResultFile, e: &Expectation) -> (Verdict, String) {
    let cannot = |why: String| (Verdict::CannotTell, why);
    let at = describe_point(&e.at);
    let at = if at.is_empty() {
        String::new()
    } else {
        format!(" at {at}")
    };
    let Some(bound) = e.bound() else {
        return cannot("the expectation has no single bound (at_least, at_most or within)".into());
    };
    let here: Vec<&Run> = file
        .runs
        .iter()
        .filter(|r| r.slo_probe.is_none())
        .filter(|r| e.at.iter().all(|(k, v)| r.point.get(k) == Some(v)))
        .collect();
    let points: Vec<String> =
        super::findings::distinct(here.iter().map(|r| super::findings::point_of(r)));
    if points.len() > 1 {
        return cannot(format!(
            "its `where` picks {} sweep points ({}), not one: name every swept key",
            points.len(),
            points.join("; ")
        ));
    }
    let mut samples = Vec::new();
    for model in &e.ratio {
        let mine: Vec<&Run> = here
            .iter()
            .copied()
            .filter(|r| label(r) == *model)
            .collect();
        if mine.is_empty() {
            return cannot(format!("no run of {model}{at} in this file"));
        }
        if let Some(why) = unranked(model, &mine) {
            // What a model served is whole even when it starved connections, and even when
            // the run failed only because the server fell silent: that is what `served` is
            // about. Any other failure leaves no figure to judge.
            let served_whole = mine
                .iter()
                .all(|r| r.failure.is_none() || failed_only_by_stalling(r));
            if e.metric != Metric::Served || !served_whole {
                return cannot(why);
            }
        }
        // A saturated load generator caps throughput and latency at its own ceiling; the
        // server's costs per request (CPU, system calls, switches) and its memory and threads
        // are still the server's.
        let client_bound = matches!(
            e.metric,
            Metric::Throughput | Metric::P50 | Metric::P99 | Metric::P999
        );
        if client_bound && mine.iter().any(|r| r.client.saturated) {
            return cannot(format!(
                "the load generator was saturated in {model}'s runs: its figures are the \
                 client's ceiling, not the server's"
            ));
        }
        let Some(sample) = Sample::of(&mine, e.metric) else {
            return cannot(format!("{model} has no {} figure{at}", e.metric));
        };
        samples.push(sample);
    }
    let (a, b) = (samples[0], samples[1]);
    if b.median <= 0.0 || a.median <= 0.0 {
        return cannot(format!(
            "a {} figure of 0 makes no ratio ({} {}, {} {})",
            e.metric, e.ratio[0], a.median, e.ratio[1], b.median
        ));
    }
    let ratio = a.median / b.median;
    let s = a.spread(e.metric).max(b.spread(e.metric));
    let (lo, hi) = (ratio / (1.0 + s), ratio * (1.0 + s));
    let figures = format!(
        "{}{at}: {} {} / {} {} = {ratio:.2}, {}",
        e.metric,
        e.ratio[0],
        show(a.median, e.metric),
        e.ratio[1],
        show(b.median, e.metric),
        rests_on(a, b, e.metric, s)
    );
    let (verdict, against) = match bound {
        Bound::AtLeast(x) => (
            if lo >= x {
                Verdict::Holds
            } else if hi < x {
                Verdict::DoesNotHold
            } else {
                Verdict::CannotTell
            },
            format!("expected at least {x}"),
        ),
        Bound::AtMost(x) => (
            if hi <= x {
                Verdict::Holds
            } else if lo > x {
                Verdict::DoesNotHold
            } else {
                Verdict::CannotTell
            },
            format!("expected at most {x}"),
        ),
        Bound::Within(w) => {
            // The distance from a tie, read through the spread as the other bounds are: it
            // holds when even the far end of the spread is within w, does not when even the
            // near end is past it; noise never makes a tie.
            let d = ratio.max(1.0 / ratio);
            (
                if d * (1.0 + s) - 1.0 <= w {
                    Verdict::Holds
                } else if d / (1.0 + s) - 1.0 > w {
                    Verdict::DoesNotHold
                } else {
                    Verdict::CannotTell
                },
                format!("expected within {} of 1", pct(w)),
            )
        }
    };
    let tail = if verdict == Verdict::CannotTell {
        "; the bound lies inside the spread: more repeats could tell"
    } else {
        ""
    };
    (verdict, format!("{figures}; {against}{tail}"))
}

/// "3 and 3 repeats, spread 4% and 9%", or, for a single run, the A/A spread it was given.
fn rests_on(a: Sample, b: Sample, metric: Metric, s: f64) -> String {
    if a.measured() && b.measured() {
        format!(
            "medians of {} and {} repeats, spread {} and {}",
            a.n,
            b.n,
            pct(a.spread(metric)),
            pct(b.spread(metric))
        )
    } else {
        let runs = |n: usize| match n {
            1 => "one run".to_string(),
            n => format!("{n} repeats"),
        };
        format!(
            "{} against {}: a single run is given the A/A spread of {metric}, so the ratio \
             could be off by {}",
            runs(a.n),
            runs(b.n),
            pct(s)
        )
    }
}

/// A figure as the table shows it.
fn show(v: f64, metric: Metric) -> String {
    match metric {
        Metric::Throughput => format!("{} req/s", crate::output::format::fmt_rate(v)),
        Metric::P50 | Metric::P99 | Metric::P999 => crate::output::format::fmt_us(v),
        Metric::Cpu => format!("{v:.1} µs"),
        Metric::Syscalls | Metric::Ctxsw => format!("{v:.2}"),
        Metric::Rss => format!("{:.1} MiB", v / (1024.0 * 1024.0)),
        Metric::Threads | Metric::Served => format!("{v:.0}"),
    }
}
