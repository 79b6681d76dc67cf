//! The warnings `bench run` prints under its table: one line per kind of warning, naming the
//! models it applies to, with the figures that differ between them given as ranges. The
//! result file and the report keep each run's own warnings, figures and all.

use crate::result::Run;

/// The warnings to print: the run-wide ones first, without a model; then one line per kind.
/// A kind is a warning's text with its numbers blanked (`client CPU saturated: ... busy #% of
/// its CPUs ...`). A kind that one model has keeps today's line (`warning: reactor: ...`, its
/// figures from its first run, with a count when it recurs over repeats); a kind that several
/// have names them all, its differing figures as ranges (`busy 95-98%`).
pub fn lines(runs: &[Run], common: &[String]) -> Vec<String> {
    let mut lines = common
        .iter()
        .map(|w| format!("warning: {w}"))
        .collect::<Vec<_>>();
    // kind -> (model, text) of every run that has it, in order
    let mut kinds: Vec<(String, Vec<(String, &str)>)> = Vec::new();
    for run in runs {
        let model = run.model.clone().unwrap_or_else(|| "target".into());
        for w in run.warnings.iter().filter(|w| !common.contains(w)) {
            let key = kind(w);
            let seen = (model.clone(), w.as_str());
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
            let texts: Vec<&str> = all.iter().map(|(_, t)| *t).collect();
            let times = (of > models.len()).then(|| format!(" [{} of {of} runs]", all.len()));
            (merge(&texts), times)
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
        let explained = run.failure.is_some()
            || run
                .warnings
                .iter()
                .any(|w| w.starts_with("the counting pass failed"));
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

/// A warning's kind: its text with each number (digits, maybe a decimal part) as `#`.
fn kind(text: &str) -> String {
    pieces(text)
        .into_iter()
        .map(|p| match p {
            Piece::Number(_) => "#",
            Piece::Text(t) => t,
        })
        .collect()
}

/// Texts of one kind as one: the numbers that differ between them as `min-max`.
fn merge(texts: &[&str]) -> String {
    let all: Vec<Vec<Piece>> = texts.iter().map(|t| pieces(t)).collect();
    let mut out = String::new();
    for (i, piece) in all[0].iter().enumerate() {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Number(first) => {
                let mut low = (*first, value(first));
                let mut high = low;
                for n in all.iter().filter_map(|p| match p.get(i) {
                    Some(Piece::Number(n)) => Some(*n),
                    _ => None,
                }) {
                    let v = value(n);
                    if v < low.1 {
                        low = (n, v);
                    }
                    if v > high.1 {
                        high = (n, v);
                    }
                }
                if low.1 == high.1 {
                    out.push_str(low.0);
                } else {
                    out.push_str(&format!("{}-{}", low.0, high.0));
                }
            }
        }
    }
    out
}

fn value(number: &str) -> f64 {
    number.parse().unwrap_or(0.0)
}

/// A piece of a warning's text.
#[derive(Debug, PartialEq)]
enum Piece<'a> {
    Number(&'a str),
    Text(&'a str),
}

/// `text` cut into numbers (`97`, `1.5`) and the text between them.
fn pieces(text: &str) -> Vec<Piece<'_>> {
    let bytes = text.as_bytes();
    let mut pieces = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let mut end = i;
        while end < bytes.len() && bytes[end].is_ascii_digit() {
            end += 1;
        }
        if end + 1 < bytes.len() && bytes[end] == b'.' && bytes[end + 1].is_ascii_digit() {
            end += 1;
            while end < bytes.len() && bytes[end].is_ascii_digit() {
                end += 1;
            }
        }
        if start < i {
            pieces.push(Piece::Text(&text[start..i]));
        }
        pieces.push(Piece::Number(&text[i..end]));
        (start, i) = (end, end);
    }
    if start < bytes.len() {
        pieces.push(Piece::Text(&text[start..]));
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(model: &str, repeat_index: usize, warnings: &[&str]) -> Run {
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
            "starved_connections": 0, "failure": null, "warnings": warnings
        });
        serde_json::from_value(json).unwrap()
    }

    fn saturated(busy: u32) -> String {
        format!(
            "client CPU saturated: the load generator was busy {busy}% of its CPUs, so the \
             server may be faster than measured (give the client more CPUs with --client-cpus, \
             or use fewer connections)"
        )
    }

    #[test]
    fn one_line_per_kind_naming_its_models_with_ranges() {
        let busy = "the machine was busy when the run started (load average 1.12 on 2 CPUs)";
        let starved = "49 of 50 connections completed no request in the measured window";
        let runs = [
            run("blocking", 0, &[busy, &saturated(97)]),
            run("threadpool", 0, &[busy, starved]),
            run("reactor", 0, &[busy, &saturated(95)]),
            run("tokio", 0, &[busy, &saturated(98)]),
        ];
        let lines = lines(&runs, &[busy.to_string()]);
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
            run("reactor", 0, &[&saturated(97)]),
            run("blocking", 0, &["1.5 ms late", &saturated(90)]),
            run("reactor", 1, &[&saturated(96)]),
            run("blocking", 1, &["2.25 ms late"]),
        ];
        assert_eq!(
            lines(&runs, &[]),
            [
                format!(
                    "warning: reactor, blocking: {} [3 of 4 runs]",
                    saturated(97).replace("97%", "90-97%")
                ),
                "warning: blocking: 1.5 ms late [2 of 2 runs; figures from the first]".into(),
            ]
        );
        // One run, one model: exactly today's line.
        let one = [run("reactor", 0, &[&saturated(97)])];
        assert_eq!(
            lines(&one, &[]),
            [format!("warning: reactor: {}", saturated(97))]
        );
    }

    #[test]
    fn numbers_are_cut_whole_with_their_decimals() {
        assert_eq!(kind("p99 1.5 ms, 20 of 30."), "p# # ms, # of #.");
        assert_eq!(
            merge(&["p99 1.5 ms, 20 of 30.", "p99 12.25 ms, 3 of 30."]),
            "p99 1.5-12.25 ms, 3-20 of 30."
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
