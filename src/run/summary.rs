//! What `bench run` prints at the end: the tables per point, failures and errors per run, and
//! the warnings, one line per kind.

use super::{counting, Plan};
use crate::output::warnings;
use crate::report::table;
use crate::result::warning::Warning;
use crate::result::{describe_point, ResultFile, Run, SloCapacity};

/// The tables: per point, the models' runs (or their SLO capacities); then failures, errors
/// and warnings (`counting_gap`: why no system call was counted, when that is known).
pub(super) fn print_summary(
    plan: &Plan,
    result: &ResultFile,
    common_warnings: &[Warning],
    counting_gap: Option<&str>,
) {
    for point in &plan.points {
        let runs: Vec<Run> = result
            .runs
            .iter()
            .filter(|r| r.point == point.values && r.slo_probe.is_none())
            .cloned()
            .collect();
        let found: Vec<&SloCapacity> = result
            .slo
            .iter()
            .filter(|s| s.point == point.values)
            .collect();
        if runs.is_empty() && found.is_empty() {
            continue;
        }
        if !point.values.is_empty() {
            crate::outln!("\n{}", describe_point(&point.values));
        }
        if !runs.is_empty() {
            // A point that counted keeps its sys/req column, `-` where a count is missing,
            // with the line below that says why.
            let counted = counting::counts(&point.opts);
            crate::out!("{}", table::render_counted(&runs, counted));
        }
        if !found.is_empty() {
            crate::out!("{}", table::render_slo(&found, &result.runs));
        }
    }
    for run in &result.runs {
        let who = run.model.as_deref().unwrap_or("target");
        let probe = run
            .slo_probe
            .as_ref()
            .map_or(String::new(), |p| format!(", probe {}", p.index));
        if let Some(failure) = &run.failure {
            crate::errln!(
                "{who} (repeat {}{probe}): FAILED: {failure}",
                run.repeat_index + 1
            );
        }
        if run.errors + run.warmup_errors > 0 {
            crate::errln!(
                "{who} (repeat {}{probe}): errors by kind:{}",
                run.repeat_index + 1,
                table::kinds(&run.error_kinds, &run.warmup_error_kinds)
            );
        }
    }
    // Probes past the capacity warn of the rate they missed by design: those stay in the file.
    let plain: Vec<Run> = result
        .runs
        .iter()
        .filter(|r| r.slo_probe.is_none())
        .cloned()
        .collect();
    for line in warnings::lines(&plain, common_warnings) {
        crate::errln!("{line}");
    }
    let counted: Vec<Run> = plan
        .points
        .iter()
        .filter(|p| counting::counts(&p.opts))
        .flat_map(|p| plain.iter().filter(|r| r.point == p.values).cloned())
        .collect();
    for line in warnings::counting_lines(&counted, counting_gap) {
        crate::errln!("{line}");
    }
    for found in &result.slo {
        for w in &found.warnings {
            crate::errln!("warning: {} (SLO search): {w}", found.model);
        }
    }
}
