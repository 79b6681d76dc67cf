//! The mechanism chart: what a request costs the server, in system calls by name, context
//! switches and CPU time.

use std::collections::BTreeMap;

use plotters::style::RGBColor;

use super::axes::{fmt_plain, Axis, Fmt};
use super::chart::{BarPanel, BarRow, Chart, LegendEntry, Panel, Swatch};
use super::data::{context, groups, Group, Selection};
use super::style::{Colors, CALL_COLORS, OTHER_COLOR};
use crate::metrics::stats::{med, median};
use crate::result::{ResultFile, Run};

/// The syscall names a stacked bar shows by name; the rest are `other`.
const TOP_CALLS: usize = 5;

/// The server's costs per request: system calls by name, context switches, CPU time; a panel
/// whose figures no run has is left out, and the caption says what was not counted.
pub(super) fn mechanism(file: &ResultFile, sel: &Selection, colors: &Colors) -> Option<Chart> {
    let groups = groups(&sel.runs, &sel.skip());
    if groups.is_empty() {
        return None;
    }
    let mut costs = Costs::default();
    costs.add_syscalls(&groups);
    costs.add_server(&groups, colors);
    if costs.panels.is_empty() {
        return None;
    }
    let missing = costs.missing();
    let at = sel
        .sweep
        .as_ref()
        .map(|(_, at)| format!(" at {at}"))
        .unwrap_or_default();
    let mut panels: Vec<BarPanel> = costs.panels.into_iter().map(|(p, _)| p).collect();
    panels[0].names = true;
    Some(Chart {
        stem: "mechanism",
        title: format!("What a request costs the server{at} ({})", context(file)),
        caption: format!(
            "Per request, the median over repeats of what the server spent{at}: {}; shorter is \
             cheaper{missing}.",
            costs.reads.join(", ")
        ),
        panels: panels.into_iter().map(Panel::Bars).collect(),
        legend: costs.legend,
    })
}

/// The chart's panels as they are found, with the words the caption needs about each.
#[derive(Default)]
struct Costs {
    /// Each panel with what it is called in the caption.
    panels: Vec<(BarPanel, &'static str)>,
    /// How to read each panel, for the caption.
    reads: Vec<String>,
    /// The figures no run has, whose panels are left out.
    uncounted: Vec<&'static str>,
    legend: Vec<LegendEntry>,
}

impl Costs {
    /// The system calls panel and its legend of call names, or the calls as not counted.
    fn add_syscalls(&mut self, groups: &[Group]) {
        match syscall_panel(groups) {
            Some((panel, entries)) => {
                self.reads.push(format!(
                    "system calls stacked by name (the {} most made, the rest as other)",
                    entries.len() - 1
                ));
                self.legend = entries;
                self.panels.push((panel, "system calls"));
            }
            None => self.uncounted.push("system calls"),
        }
    }

    /// A panel each for context switches and CPU time, or each as not counted.
    fn add_server(&mut self, groups: &[Group], colors: &Colors) {
        type Figure = fn(&Run) -> Option<f64>;
        let server: [(&str, &str, &'static str, &str, Figure); 2] = [
            (
                "Context switches",
                "switches per request",
                "context switches",
                "context switches (voluntary and involuntary)",
                |r| r.server.as_ref()?.ctx_switches_per_request,
            ),
            (
                "Server CPU time",
                "CPU µs per request",
                "server CPU time",
                "server CPU time in µs (user and system)",
                |r| r.server.as_ref()?.cpu_us_per_request,
            ),
        ];
        for (title, desc, what, read, figure) in server {
            let rows: Vec<BarRow> = groups
                .iter()
                .map(|g| match med(&g.runs, figure) {
                    Some(v) => BarRow {
                        name: g.name.clone(),
                        segments: vec![(v, colors.of(&g.model))],
                        range: None,
                        text: fmt_plain(v),
                    },
                    None => BarRow::not_counted(&g.name),
                })
                .collect();
            if rows.iter().all(|r| r.segments.is_empty()) {
                self.uncounted.push(what);
                continue;
            }
            self.reads.push(read.into());
            self.panels.push((BarPanel::new(title, desc, rows), what));
        }
    }

    /// ` (… not counted; … not counted for …)`: the figures no run has, then per panel the
    /// series without them; empty when every series has every figure.
    fn missing(&self) -> String {
        let mut missing = Vec::new();
        if !self.uncounted.is_empty() {
            missing.push(format!("{} not counted", join_and(&self.uncounted)));
        }
        for (panel, what) in &self.panels {
            let rows: Vec<&str> = panel
                .rows
                .iter()
                .filter(|r| r.segments.is_empty())
                .map(|r| r.name.as_str())
                .collect();
            if !rows.is_empty() {
                missing.push(format!("{what} not counted for {}", rows.join(", ")));
            }
        }
        if missing.is_empty() {
            String::new()
        } else {
            format!(" ({})", missing.join("; "))
        }
    }
}

/// System calls per request stacked by name, with the legend of the names; none when no run
/// counted them.
fn syscall_panel(groups: &[Group]) -> Option<(BarPanel, Vec<LegendEntry>)> {
    let calls = median_calls(groups);
    if calls.iter().all(Option::is_none) {
        return None;
    }
    // The names made most by any model, in that order.
    let mut top: Vec<(&str, f64)> = Vec::new();
    for (name, v) in calls.iter().flatten().flatten() {
        match top.iter_mut().find(|(n, _)| n == name) {
            Some(t) => t.1 = t.1.max(*v),
            None => top.push((name, *v)),
        }
    }
    top.retain(|(_, v)| *v >= 0.005);
    top.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
    top.truncate(TOP_CALLS);
    let color = |i: usize| CALL_COLORS[i % CALL_COLORS.len()];
    let rows = groups
        .iter()
        .zip(&calls)
        .map(|(g, c)| {
            let Some(c) = c else {
                return BarRow::not_counted(&g.name);
            };
            let of = |name: &str| c.iter().find(|(n, _)| n == name).map_or(0.0, |x| x.1);
            let mut segments: Vec<(f64, RGBColor)> = top
                .iter()
                .enumerate()
                .map(|(i, (name, _))| (of(name), color(i)))
                .collect();
            let other = c
                .iter()
                .filter(|(n, _)| !top.iter().any(|(t, _)| t == n))
                .map(|(_, v)| v)
                .sum();
            segments.push((other, OTHER_COLOR));
            BarRow {
                name: g.name.clone(),
                text: fmt_plain(segments.iter().map(|s| s.0).sum()),
                segments,
                range: None,
            }
        })
        .collect();
    let mut legend: Vec<LegendEntry> = top
        .iter()
        .enumerate()
        .map(|(i, (name, _))| LegendEntry {
            label: name.to_string(),
            swatch: Swatch::Fill(color(i)),
        })
        .collect();
    legend.push(LegendEntry {
        label: "other calls".into(),
        swatch: Swatch::Fill(OTHER_COLOR),
    });
    let panel = BarPanel::new("System calls", "calls per request", rows);
    Some((panel, legend))
}

/// Each group's median calls per request, by name (sorted); `None` for a group whose runs
/// counted none.
fn median_calls(groups: &[Group]) -> Vec<Option<Vec<(String, f64)>>> {
    groups
        .iter()
        .map(|g| {
            let maps: Vec<&BTreeMap<String, Option<f64>>> = g
                .runs
                .iter()
                .filter_map(|r| r.syscalls.as_ref()?.by_name_per_request.as_ref())
                .collect();
            if maps.is_empty() {
                return None;
            }
            let mut names: Vec<&String> = maps.iter().flat_map(|m| m.keys()).collect();
            names.sort();
            names.dedup();
            let per_name = names.into_iter().filter_map(|n| {
                let v = median(
                    maps.iter()
                        .filter_map(|m| m.get(n.as_str()).copied().flatten()),
                )?;
                Some((n.clone(), v))
            });
            Some(per_name.collect())
        })
        .collect()
}

impl BarPanel {
    /// A titled panel whose axis runs from zero past its longest bar.
    fn new(title: &str, desc: &str, rows: Vec<BarRow>) -> Self {
        BarPanel {
            title: Some(title.into()),
            x: Axis::from_zero(max_of(&rows), Fmt::Plain, desc),
            rows,
            names: false,
        }
    }
}

impl BarRow {
    fn not_counted(name: &str) -> Self {
        BarRow {
            name: name.to_string(),
            segments: Vec::new(),
            range: None,
            text: "not counted".into(),
        }
    }
}

fn max_of(rows: &[BarRow]) -> f64 {
    rows.iter()
        .map(|r| {
            let total: f64 = r.segments.iter().map(|s| s.0).sum();
            total.max(r.range.map_or(0.0, |r| r.1))
        })
        .fold(0.0, f64::max)
}

fn join_and(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => one.to_string(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::SyscallFigures;

    /// Regression: repeats of one model that made different calls (a call made in one repeat
    /// only) panicked the chart when its figures were untyped JSON; the call missing from a
    /// repeat is left out of that repeat's median.
    #[test]
    fn repeats_with_different_calls_give_a_median_each() {
        let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/closed-loop.json");
        let file = crate::result::load(&fixture).unwrap();
        let mut runs: Vec<Run> = file.runs.iter().take(2).cloned().collect();
        let calls = |pairs: &[(&str, f64)]| SyscallFigures {
            total: 0,
            per_request: None,
            by_name: BTreeMap::new(),
            by_name_per_request: Some(
                pairs
                    .iter()
                    .map(|(n, v)| (n.to_string(), Some(*v)))
                    .collect(),
            ),
            requests: None,
            method: String::new(),
            pass: "same".into(),
            window_s: None,
        };
        runs[0].syscalls = Some(calls(&[("read", 1.0), ("accept4", 0.5)]));
        runs[1].syscalls = Some(calls(&[("read", 3.0)]));
        let group = Group {
            name: "m".into(),
            model: "m".into(),
            variant: 0,
            runs: runs.iter().collect(),
        };
        let medians = median_calls(&[group]);
        assert_eq!(
            medians,
            vec![Some(vec![
                ("accept4".to_string(), 0.5),
                ("read".to_string(), 2.0)
            ])]
        );
    }
}
