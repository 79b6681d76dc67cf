//! A comparison as text (a terminal), Markdown (a pull-request comment: one table, regressions
//! first, arrows and percentages) or JSON (for scripts).

use std::fmt::Write;

use super::{Comparison, Metric, Verdict, METRICS};
use crate::report::table::grid_aligned;

/// How a comparison is printed (`--format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Markdown,
    Json,
}

impl Format {
    /// Every format, in the order `--help` lists them.
    pub const ALL: &'static [Format] = &[Format::Text, Format::Markdown, Format::Json];

    pub fn name(self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::Markdown => "markdown",
            Format::Json => "json",
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .iter()
            .copied()
            .find(|f| f.name() == s)
            .ok_or_else(|| format!("unknown format `{s}`: write text, markdown or json"))
    }
}

/// One line of the verdict table.
struct Line {
    verdict: Verdict,
    run: String,
    metric: &'static str,
    baseline: String,
    current: String,
    change: String,
    interval: String,
}

/// A figure as its metric writes it, or as a ratio under `--normalize-to` (counts stay as
/// they are).
fn figure(m: &Metric, v: f64, normalized: bool) -> String {
    if normalized && !m.count {
        format!("{v:.3}x")
    } else {
        (m.show)(v)
    }
}

fn percent(x: f64) -> String {
    if x.is_infinite() {
        "new".into()
    } else {
        format!("{:+.1}%", x * 100.0)
    }
}

/// Every metric of every run, regressions first, then improvements, then the rest.
fn lines(c: &Comparison) -> Vec<Line> {
    let normalized = c.normalized_to.is_some();
    let mut out = Vec::new();
    for row in &c.rows {
        for m in METRICS {
            let Some(ch) = row.metrics.get(m.key) else {
                continue;
            };
            out.push(Line {
                verdict: ch.verdict,
                run: row.describe(),
                metric: m.name,
                baseline: figure(m, ch.baseline, normalized),
                current: figure(m, ch.current, normalized),
                change: percent(ch.change),
                interval: ch.interval.map_or(
                    format!("n/a (threshold ±{:.0}%)", ch.threshold * 100.0),
                    |(lo, hi)| {
                        format!(
                            "[{}, {}] p={:.3}",
                            percent(lo),
                            percent(hi),
                            ch.p_value.unwrap_or(1.0)
                        )
                    },
                ),
            });
        }
    }
    let rank = |v: Verdict| match v {
        Verdict::Regressed => 0,
        Verdict::Improved => 1,
        Verdict::NoChange => 2,
    };
    out.sort_by_key(|l| rank(l.verdict));
    out
}

fn word(v: Verdict) -> &'static str {
    match v {
        Verdict::Regressed => "regressed",
        Verdict::Improved => "improved",
        Verdict::NoChange => "no change",
    }
}

fn arrow(v: Verdict) -> &'static str {
    match v {
        Verdict::Regressed => "🔴 regressed",
        Verdict::Improved => "🟢 improved",
        Verdict::NoChange => "⚪ no change",
    }
}

/// The comparison in `format`.
pub fn render(c: &Comparison, format: Format) -> String {
    match format {
        Format::Json => {
            let doc = serde_json::json!({
                "regressions": c.regressions(),
                "verdict": if c.regressions() > 0 { "regressed" } else { "ok" },
                "comparison": c,
            });
            serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
        }
        Format::Text => text(c),
        Format::Markdown => markdown(c),
    }
}

fn summary(c: &Comparison) -> String {
    let n = c.regressions();
    let improved = c
        .rows
        .iter()
        .flat_map(|r| r.metrics.values())
        .filter(|ch| ch.verdict == Verdict::Improved)
        .count();
    let mut s = if n > 0 {
        format!("{n} regression{}", if n == 1 { "" } else { "s" })
    } else {
        "no regression".to_string()
    };
    if c.missing_is_regression && !c.missing.is_empty() {
        let _ = write!(
            s,
            " ({} of them a run that failed or is missing)",
            c.missing.len()
        );
    }
    if improved > 0 {
        let _ = write!(
            s,
            ", {improved} improvement{}",
            if improved == 1 { "" } else { "s" }
        );
    }
    if let Some(m) = &c.normalized_to {
        let _ = write!(
            s,
            " (figures as ratios to {m} in the same run; {m} itself against the others, its \
             counts as they are)"
        );
    }
    s
}

/// The lines under the table: missing runs first, then changes common to every model, then
/// the notes.
fn footnotes(c: &Comparison) -> Vec<String> {
    let mut out: Vec<String> = c
        .missing
        .iter()
        .map(|m| {
            format!(
                "{}: {} {}",
                if c.missing_is_regression {
                    "REGRESSION"
                } else {
                    "allowed (--allow-missing)"
                },
                m.run,
                m.why
            )
        })
        .collect();
    let normalized = c.normalized_to.is_some();
    out.extend(c.common.iter().map(|ch| ch.describe(normalized)));
    out.extend(c.notes.iter().cloned());
    if !c.only_in_current.is_empty() {
        out.push(format!(
            "only in the current file: {}",
            c.only_in_current.join(", ")
        ));
    }
    out
}

fn text(c: &Comparison) -> String {
    let lines = lines(c);
    let header = [
        "verdict",
        "run",
        "metric",
        "baseline",
        "current",
        "change",
        "interval (one-sided 95% bounds)",
    ];
    let rows: Vec<Vec<String>> = lines
        .iter()
        .map(|l| {
            vec![
                word(l.verdict).to_string(),
                l.run.clone(),
                l.metric.to_string(),
                l.baseline.clone(),
                l.current.clone(),
                l.change.clone(),
                l.interval.clone(),
            ]
        })
        .collect();
    // The figures right-aligned, the words left.
    let mut out = grid_aligned(&header, &rows, |i| (3..=5).contains(&i));
    let _ = writeln!(out, "{}", summary(c));
    for f in footnotes(c) {
        let _ = writeln!(out, "note: {f}");
    }
    out
}

fn markdown(c: &Comparison) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "### bench compare: {}\n", summary(c));
    let _ = writeln!(
        out,
        "| | run | metric | baseline | current | change | interval (one-sided 95% bounds) |\n|---|---|---|---:|---:|---:|---|"
    );
    for l in lines(c) {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            arrow(l.verdict),
            l.run.replace('|', "\\|"),
            l.metric,
            l.baseline,
            l.current,
            l.change,
            l.interval
        );
    }
    for f in footnotes(c) {
        let _ = writeln!(out, "\n*{f}*");
    }
    out
}
