//! What the charts plot, common to every kind: which runs, grouped into which series, and
//! the words that say what they measured.

use serde_json::Value;

use super::axes::fmt_count;
use crate::output::format::label;
use crate::result::{show_value, ResultFile, Run};

/// The runs the per-model charts (throughput, spectrum, mechanism) show: complete runs, no SLO
/// probes; in a sweep, those at the largest value of the first swept key.
pub(super) struct Selection<'a> {
    pub(super) runs: Vec<&'a Run>,
    /// In a sweep: the swept key, and `key=value` of the point shown.
    pub(super) sweep: Option<(String, String)>,
}

impl<'a> Selection<'a> {
    pub(super) fn plain(file: &'a ResultFile) -> Self {
        let ok: Vec<&Run> = file
            .runs
            .iter()
            .filter(|r| r.failure.is_none() && r.slo_probe.is_none())
            .collect();
        let Some(key) = sweep_key(file) else {
            return Selection {
                runs: ok.into_iter().filter(|r| r.point.is_empty()).collect(),
                sweep: None,
            };
        };
        let values: Vec<&Value> = ok.iter().filter_map(|r| r.point.get(&key)).collect();
        let largest = if values.iter().all(|v| v.is_number()) {
            values
                .iter()
                .copied()
                .max_by(|a, b| num(a).total_cmp(&num(b)))
        } else {
            values.last().copied()
        };
        let Some(largest) = largest.cloned() else {
            return Selection {
                runs: Vec::new(),
                sweep: None,
            };
        };
        let runs = ok
            .into_iter()
            .filter(|r| r.point.get(&key).is_some_and(|v| same(v, &largest)))
            .collect();
        let at = format!("{key}={}", show_value(&largest));
        Selection {
            runs,
            sweep: Some((key, at)),
        }
    }

    pub(super) fn skip(&self) -> Vec<&str> {
        self.sweep.iter().map(|(k, _)| k.as_str()).collect()
    }
}

/// The first key of the file's sweep, if it has one.
pub(super) fn sweep_key(file: &ResultFile) -> Option<String> {
    let from_matrix = file
        .scenario
        .matrix
        .as_ref()
        .and_then(|m| m.keys().next().cloned());
    from_matrix.or_else(|| {
        file.runs
            .iter()
            .find_map(|r| r.point.keys().next().cloned())
    })
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

/// Whether two swept values are the same (100 and 100.0 are).
pub(super) fn same(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// Runs of one series, in the order the series first appear.
pub(super) struct Group<'a> {
    pub(super) name: String,
    pub(super) model: String,
    pub(super) variant: usize,
    pub(super) runs: Vec<&'a Run>,
}

/// Groups runs by model and by their values of the swept keys not in `skip`
/// (`reactor, payload=64`).
pub(super) fn groups<'a>(runs: &[&'a Run], skip: &[&str]) -> Vec<Group<'a>> {
    let mut out: Vec<Group<'a>> = Vec::new();
    let mut variants: Vec<String> = Vec::new();
    for run in runs {
        let model = label(run);
        let rest: String = run
            .point
            .iter()
            .filter(|(k, _)| !skip.contains(&k.as_str()))
            .map(|(k, v)| format!(", {k}={}", show_value(v)))
            .collect();
        let name = format!("{model}{rest}");
        match out.iter_mut().find(|g| g.name == name) {
            Some(g) => g.runs.push(run),
            None => {
                let variant = match variants.iter().position(|v| *v == rest) {
                    Some(i) => i,
                    None => {
                        variants.push(rest);
                        variants.len() - 1
                    }
                };
                out.push(Group {
                    name,
                    model,
                    variant,
                    runs: vec![run],
                });
            }
        }
    }
    out
}

/// What the runs measured, for titles: `echo, 50 connections, 64 B`.
pub(super) fn context(file: &ResultFile) -> String {
    let s = &file.scenario;
    let swept = |k: &str| s.matrix.as_ref().is_some_and(|m| m.contains_key(k));
    let mut parts = vec![s.workload.clone()];
    if !swept("connections") {
        let plural = if s.connections == 1 { "" } else { "s" };
        parts.push(format!("{} connection{plural}", s.connections));
    }
    if s.workload == "echo" && !swept("payload") {
        parts.push(format!("{} B", s.payload));
    }
    if let Some(rate) = s.rate.filter(|_| !swept("rate")) {
        parts.push(format!("open loop at {} req/s", fmt_count(rate)));
    }
    parts.join(", ")
}
