//! The warnings `bench run` prints under its table: one line per kind of warning, naming the
//! models it applies to, with the figures that differ between them given as ranges. The
//! result file and the report keep each run's own warnings, figures and all.

use crate::result::warning::{Figure, Warning};
use crate::result::Run;

/// The warnings to print: the run-wide ones first, without a model; then one line per kind.
/// A kind is a warning's text with its figures blanked (`client CPU saturated: ... busy #% of
/// its CPUs ...`, [`Warning::kind`]). A kind that one model has keeps today's line (`warning: reactor: ...`, its
/// figures from its first run, with a count when it recurs over repeats); a kind that several
/// have names them all, its differing figures as ranges (`busy 95-98%`).
pub fn lines(runs: &[Run], common: &[Warning]) -> Vec<String> {
    let mut lines = common
        .iter()
        .map(|w| format!("warning: {w}"))
        .collect::<Vec<_>>();
    // kind -> (model, warning) of every run that has it, in order
    let mut kinds: Vec<(String, Vec<(String, &Warning)>)> = Vec::new();
    for run in runs {
        let model = run.model.clone().unwrap_or_else(|| "target".into());
        for w in run.warnings.iter().filter(|w| !common.contains(w)) {
            let key = w.kind();
            let seen = (model.clone(), w);
            match kinds.iter_mut().find(|(k, _)| *k == key) {
                Some((_, all)) => all.push(seen),
                None => kinds.push((key, vec![seen])),
            }
        }
    }
    for (_, all) in kinds {
        let mut models: Vec<&str> = Vec::new();
        for (model, _) in &all {
            if !models.contains(&model.as_str()) {
                models.push(model);
            }
        }
        let of = runs
            .iter()
            .filter(|r| models.contains(&r.model.as_deref().unwrap_or("target")))
            .count();
        let (text, times) = if models.len() == 1 {
            let times =
                (of > 1).then(|| format!(" [{} of {of} runs; figures from the first]", all.len()));
            (all[0].1.to_string(), times)
        } else {
            let same: Vec<&Warning> = all.iter().map(|(_, w)| *w).collect();
            let times = (of > models.len()).then(|| format!(" [{} of {of} runs]", all.len()));
            (merge(&same), times)
        };
        lines.push(format!(
            "warning: {}: {text}{}",
            models.join(", "),
            times.unwrap_or_default()
        ));
    }
    lines
}

/// The lines that say why a table that counted has `-` for sys/req: `gap` (tracefs missing
/// for good), said once; otherwise, per reason, the runs that have no counts and no failure or
/// warning that already says why.
pub fn counting_lines(runs: &[Run], gap: Option<&str>) -> Vec<String> {
    let uncounted = runs.iter().filter(|r| r.syscalls.is_none());
    if let Some(gap) = gap {
        return if uncounted.count() > 0 {
            vec![format!("warning: {gap}")]
        } else {
            Vec::new()
        };
    }
    // reason -> models
    let mut reasons: Vec<(&str, Vec<&str>)> = Vec::new();
    for run in uncounted {
        let explained =
            run.failure.is_some() || run.warnings.iter().any(Warning::is_counting_failure);
        let Some(why) = run.syscalls_unavailable.as_deref().filter(|_| !explained) else {
            continue;
        };
        let model = run.model.as_deref().unwrap_or("target");
        match reasons.iter_mut().find(|(r, _)| *r == why) {
            Some((_, models)) if !models.contains(&model) => models.push(model),
            Some(_) => {}
            None => reasons.push((why, vec![model])),
        }
    }
    reasons
        .into_iter()
        .map(|(why, models)| format!("warning: no sys/req for {}: {why}", models.join(", ")))
        .collect()
}

/// Warnings of one kind as one: the figures that differ between them as `min-max`.
fn merge(all: &[&Warning]) -> String {
    let figures: Vec<Vec<Figure>> = all.iter().map(|w| w.figures()).collect();
    all[0].render(&mut |i, first| {
        let (mut low, mut high) = (first.clone(), first);
        for f in figures.iter().filter_map(|fs| fs.get(i)) {
            if f.value < low.value {
                low = f.clone();
            }
            if f.value > high.value {
                high = f.clone();
            }
        }
        if low.value == high.value {
            low.shown
        } else {
            format!("{}-{}", low.shown, high.shown)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(model: &str, repeat_index: usize, warnings: &[Warning]) -> Run {
        let json = serde_json::json!({
            "model": model, "workload": "echo", "connections": 50, "payload": 64, "pipeline": 1,
            "rate": null, "threads": 1, "client_threads": 1, "repeat_index": repeat_index,
            "server_cpus": [0], "client_cpus": [1], "duration_s": 1.0, "warmup_s": 0.0,
            "requests": 100, "errors": 0, "error_kinds": {}, "warmup_errors": 0,
            "warmup_error_kinds": {}, "throughput_rps": 100.0, "throughput_mibps": 0.0,
            "latency_us": {"min": 1.0, "mean": 2.0, "p50": 2.0, "p90": 3.0, "p99": 40.0,
                           "p999": 50.0, "p9999": 60.0, "max": 70.0},
            "histogram": "", "timeseries": [], "server": null,
            "client": {"cpu_user_s": 0.0, "cpu_sys_s": 0.0, "busy_fraction": 0.0,
                       "saturated": false},
            "syscalls": null, "syscalls_unavailable": "not counted",
            "connections_established": 50, "unfinished_requests": 0, "stalled_requests": 0,
            "starved_connections": 0, "failure": null, "warnings": []
        });
        let mut run: Run = serde_json::from_value(json).unwrap();
        run.warnings = warnings.to_vec();
        run
    }

    fn saturated(busy: u32) -> Warning {
        Warning::ClientSaturated {
            busy_percent: busy as f64,
            open_loop: false,
            flag: "--client-cpus".into(),
        }
    }

    fn late(p99_ms: f64) -> Warning {
        Warning::SentLate {
            p99_us: p99_ms * 1000.0,
            max_us: 20_000.0,
        }
    }

    #[test]
    fn one_line_per_kind_naming_its_models_with_ranges() {
        let busy = Warning::MachineBusy {
            load: 1.12,
            cpus: 2,
        };
        let starved = Warning::Starved {
            starved: 49,
            connections: 50,
        };
        let runs = [
            run("blocking", 0, &[busy.clone(), saturated(97)]),
            run("threadpool", 0, &[busy.clone(), starved.clone()]),
            run("reactor", 0, &[busy.clone(), saturated(95)]),
            run("tokio", 0, &[busy.clone(), saturated(98)]),
        ];
        let lines = lines(&runs, std::slice::from_ref(&busy));
        assert_eq!(
            lines,
            [
                format!("warning: {busy}"),
                "warning: blocking, reactor, tokio: client CPU saturated: the load generator \
                 was busy 95-98% of its CPUs, so the server may be faster than measured (give \
                 the client more CPUs with --client-cpus, or use fewer connections)"
                    .to_string(),
                format!("warning: threadpool: {starved}"),
            ]
        );
    }

    #[test]
    fn a_warning_of_one_model_keeps_its_line_and_repeats_are_counted() {
        let runs = [
            run("reactor", 0, &[saturated(97)]),
            run("blocking", 0, &[late(1.5), saturated(90)]),
            run("reactor", 1, &[saturated(96)]),
            run("blocking", 1, &[late(2.25)]),
        ];
        assert_eq!(
            lines(&runs, &[]),
            [
                format!(
                    "warning: reactor, blocking: {} [3 of 4 runs]",
                    saturated(97).to_string().replace("97%", "90-97%")
                ),
                format!(
                    "warning: blocking: {} [2 of 2 runs; figures from the first]",
                    late(1.5)
                ),
            ]
        );
        // One run, one model: exactly today's line.
        let one = [run("reactor", 0, &[saturated(97)])];
        assert_eq!(
            lines(&one, &[]),
            [format!("warning: reactor: {}", saturated(97))]
        );
    }

    #[test]
    fn figures_merge_as_shown_with_their_decimals() {
        let busy = |load| Warning::MachineBusy { load, cpus: 2 };
        let (a, b, c) = (busy(1.5), busy(12.25), busy(1.504));
        assert_eq!(
            merge(&[&a, &b, &c]),
            "the machine was busy when the run started (load average 1.50-12.25 on 2 CPUs): \
             expect noisy figures; repeat with --repeat and compare medians"
        );
        // Equal as shown: one figure.
        assert_eq!(merge(&[&a, &c]), a.to_string());
    }

    #[test]
    fn a_warning_read_from_a_file_groups_only_with_the_same_text() {
        let runs = [
            run("reactor", 0, &["the first reset error said: x".into()]),
            run("tokio", 0, &["the first reset error said: x".into()]),
            run("blocking", 0, &["the first reset error said: y".into()]),
        ];
        assert_eq!(
            lines(&runs, &[]),
            [
                "warning: reactor, tokio: the first reset error said: x",
                "warning: blocking: the first reset error said: y",
            ]
        );
    }

    #[test]
    fn uncounted_runs_are_said_once_per_reason() {
        let mut a = run("reactor", 0, &[]);
        a.syscalls_unavailable = Some("the kernel refused".into());
        let mut b = run("blocking", 0, &[]);
        b.syscalls_unavailable = Some("the kernel refused".into());
        let mut failed = run("tokio", 0, &[]);
        failed.failure = Some("the server exited".into());
        let runs = [a, b, failed];
        assert_eq!(
            counting_lines(&runs, None),
            ["warning: no sys/req for reactor, blocking: the kernel refused"]
        );
        assert_eq!(
            counting_lines(&runs, Some("no tracefs")),
            ["warning: no tracefs"]
        );
    }
}
