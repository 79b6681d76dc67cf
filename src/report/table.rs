//! The comparison table `bench run` prints: one row per model, medians over repeats.

use std::fmt::Write;

use crate::metrics::stats::{med, median};
use crate::output::format::{fmt_bytes, fmt_rate, fmt_us, label};
use crate::result::{Run, SloCapacity};

/// One column: its header, whether it shows the server's own costs (absent for an outside
/// server), and how a model's runs become its cell.
struct Column {
    header: &'static str,
    server: bool,
    /// Shown only when some run is open loop (`--rate`).
    open: bool,
    /// Shown only when some run has system-call counts.
    syscalls: bool,
    cell: fn(&[&Run]) -> String,
}

const COLUMNS: &[Column] = &[
    Column {
        header: "asked",
        server: false,
        open: true,
        syscalls: false,
        cell: |r| med(r, |r| r.rate).map_or("-".into(), fmt_rate),
    },
    Column {
        header: "req/s",
        server: false,
        open: false,
        syscalls: false,
        cell: |r| med(r, |r| Some(r.throughput_rps)).map_or("-".into(), fmt_rate),
    },
    Column {
        header: "p50",
        server: false,
        open: false,
        syscalls: false,
        cell: |r| med(r, |r| Some(r.latency_us.p50)).map_or("-".into(), fmt_us),
    },
    Column {
        header: "p99",
        server: false,
        open: false,
        syscalls: false,
        cell: |r| med(r, |r| Some(r.latency_us.p99)).map_or("-".into(), fmt_us),
    },
    Column {
        header: "p99 sent",
        server: false,
        open: true,
        syscalls: false,
        cell: |r| {
            med(r, |r| Some(r.latency_uncorrected_us.as_ref()?.p99)).map_or("-".into(), fmt_us)
        },
    },
    Column {
        header: "p99.9",
        server: false,
        open: false,
        syscalls: false,
        cell: |r| med(r, |r| Some(r.latency_us.p999)).map_or("-".into(), fmt_us),
    },
    Column {
        header: "max",
        server: false,
        open: false,
        syscalls: false,
        cell: |r| med(r, |r| Some(r.latency_us.max)).map_or("-".into(), fmt_us),
    },
    Column {
        header: "CPU µs/req",
        server: true,
        open: false,
        syscalls: false,
        cell: |r| {
            med(r, |r| r.server.as_ref()?.cpu_us_per_request)
                .map_or("-".into(), |v| format!("{v:.1}"))
        },
    },
    Column {
        header: "ctxsw/req",
        server: true,
        open: false,
        syscalls: false,
        cell: |r| {
            med(r, |r| r.server.as_ref()?.ctx_switches_per_request)
                .map_or("-".into(), |v| format!("{v:.2}"))
        },
    },
    Column {
        header: "RSS",
        server: true,
        open: false,
        syscalls: false,
        cell: |r| {
            med(r, |r| Some(r.server.as_ref()?.peak_rss_bytes as f64)).map_or("-".into(), fmt_bytes)
        },
    },
    // Live threads in the server at the window's close: what thread-per-connection costs.
    Column {
        header: "threads",
        server: true,
        open: false,
        syscalls: false,
        cell: |r| {
            med(r, |r| Some(r.server.as_ref()?.threads as f64))
                .map_or("-".into(), |v| format!("{v:.0}"))
        },
    },
    Column {
        header: "sys/req",
        server: true,
        open: false,
        syscalls: true,
        cell: |r| {
            med(r, |r| r.syscalls.as_ref()?.per_request).map_or("-".into(), |v| format!("{v:.2}"))
        },
    },
    Column {
        header: "top calls/req",
        server: true,
        open: false,
        syscalls: true,
        cell: top_calls,
    },
    // Connections that completed at least one request in the window, out of all.
    Column {
        header: "served",
        server: false,
        open: false,
        syscalls: false,
        cell: |r| {
            med(r, |r| {
                Some(r.connections.saturating_sub(r.starved_connections as usize) as f64)
            })
            .map_or("-".into(), |v| format!("{v:.0}/{}", r[0].connections))
        },
    },
    // Every error fails the run, so this is the sum over repeats, warm-up included.
    Column {
        header: "errors",
        server: false,
        open: false,
        syscalls: false,
        cell: |r| {
            r.iter()
                .map(|r| r.errors + r.warmup_errors)
                .sum::<u64>()
                .to_string()
        },
    },
];

/// The three calls made most per request (medians over the runs), like
/// `recvfrom 1.00 sendto 1.00 epoll_wait 0.31`.
fn top_calls(runs: &[&Run]) -> String {
    let mut names: Vec<String> = Vec::new();
    for r in runs {
        if let Some(map) = r
            .syscalls
            .as_ref()
            .and_then(|s| s.by_name_per_request.as_ref())
        {
            for name in map.keys() {
                if !names.contains(name) {
                    names.push(name.clone());
                }
            }
        }
    }
    let mut per: Vec<(String, f64)> = names
        .into_iter()
        .filter_map(|name| {
            let v = med(runs, |r| r.syscalls.as_ref()?.per_request_of(&name))?;
            Some((name, v))
        })
        .filter(|(_, v)| *v >= 0.005)
        .collect();
    per.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    if per.is_empty() {
        return "-".into();
    }
    per.iter()
        .take(3)
        .map(|(name, v)| format!("{name} {v:.2}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Renders the table; with repeats, every figure but `errors` (a sum) is the median of that
/// model's runs. The server's columns are left out when no run has the server's costs.
pub fn render(runs: &[Run]) -> String {
    render_counted(runs, false)
}

/// [`render`], with the system-call columns kept when `counted` (the run counted system
/// calls): `-` where a run has no counts, rather than columns that silently vanish.
pub fn render_counted(runs: &[Run], counted: bool) -> String {
    let (header, rows) = cells_counted(runs, counted);
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut out = grid(&header, &rows);
    for note in notes(runs) {
        let _ = writeln!(out, "({note})");
    }
    out
}

/// The notes under the table: how to read open-loop latencies, medians of repeats.
pub fn notes(runs: &[Run]) -> Vec<String> {
    let mut notes = Vec::new();
    if runs.iter().any(|r| r.rate.is_some()) {
        notes.push(
            "open loop: latency from each request's due time; `p99 sent` from its send, as a \
             load generator blind to coordinated omission reports it"
                .to_string(),
        );
    }
    let repeats = runs.iter().map(|r| r.repeat_index + 1).max().unwrap_or(1);
    if repeats > 1 {
        notes.push(format!(
            "medians of {repeats} interleaved repeats; errors summed"
        ));
    }
    notes
}

/// The table's header and rows, one row per model (see [`render`]).
pub fn cells(runs: &[Run]) -> (Vec<String>, Vec<Vec<String>>) {
    cells_counted(runs, false)
}

/// [`cells`], with the system-call columns kept when `counted` (see [`render_counted`]).
fn cells_counted(runs: &[Run], counted: bool) -> (Vec<String>, Vec<Vec<String>>) {
    let mut models: Vec<String> = Vec::new();
    for run in runs {
        let name = label(run);
        if !models.contains(&name) {
            models.push(name);
        }
    }
    let with_server = runs.iter().any(|r| r.server.is_some());
    let with_syscalls = counted || runs.iter().any(|r| r.syscalls.is_some());
    let with_open = runs.iter().any(|r| r.rate.is_some());
    let columns: Vec<&Column> = COLUMNS
        .iter()
        .filter(|c| {
            (with_server || !c.server) && (with_syscalls || !c.syscalls) && (with_open || !c.open)
        })
        .collect();
    let header: Vec<String> = std::iter::once("model")
        .chain(columns.iter().map(|c| c.header))
        .map(String::from)
        .collect();
    let mut rows: Vec<Vec<String>> = Vec::new();
    for model in &models {
        let mine: Vec<&Run> = runs.iter().filter(|r| label(r) == *model).collect();
        let failed = mine.iter().any(|r| r.failure.is_some());
        let mut row = vec![format!("{model}{}", if failed { " (failed)" } else { "" })];
        row.extend(columns.iter().map(|c| (c.cell)(&mine)));
        rows.push(row);
    }
    (header, rows)
}

/// A Markdown (GitHub) table; `|` in a cell is escaped.
pub fn markdown(header: &[String], rows: &[Vec<String>]) -> String {
    let cell = |c: &str| c.replace('|', "\\|");
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| {} |",
        header
            .iter()
            .map(|h| cell(h))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    let _ = writeln!(
        out,
        "|{}",
        header
            .iter()
            .enumerate()
            .map(|(i, _)| if i == 0 { "---|" } else { "---:|" })
            .collect::<String>()
    );
    for row in rows {
        let _ = writeln!(
            out,
            "| {} |",
            row.iter().map(|c| cell(c)).collect::<Vec<_>>().join(" | ")
        );
    }
    out
}

/// Columns of text, the first left-aligned and the others right-aligned.
fn grid(header: &[&str], rows: &[Vec<String>]) -> String {
    grid_aligned(header, rows, |i| i > 0)
}

/// Columns of text two spaces apart; column `i` right-aligned when `right(i)`. No line ends
/// in spaces.
pub fn grid_aligned(
    header: &[&str],
    rows: &[Vec<String>],
    right: impl Fn(usize) -> bool,
) -> String {
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([header[i].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    let line = |cells: Vec<&str>, out: &mut String| {
        let start = out.len();
        for (i, cell) in cells.iter().enumerate() {
            let pad = " ".repeat(widths[i] - cell.chars().count());
            let gap = if i == 0 { "" } else { "  " };
            if right(i) {
                let _ = write!(out, "{gap}{pad}{cell}");
            } else {
                let _ = write!(out, "{gap}{cell}{pad}");
            }
        }
        let end = start + out[start..].trim_end().len();
        out.truncate(end);
        out.push('\n');
    };
    line(header.to_vec(), &mut out);
    for row in rows {
        line(row.iter().map(String::as_str).collect(), &mut out);
    }
    out
}

/// The capacities an SLO search found, one row per model (medians over repeats), with the
/// latencies of the probe at the capacity.
pub fn render_slo(found: &[&SloCapacity], runs: &[Run]) -> String {
    let Some((title, header, rows)) = slo_cells(found, runs) else {
        return String::new();
    };
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    format!("{title}\n{}", grid(&header, &rows))
}

/// The SLO table's title, header and rows (see [`render_slo`]); `None` without findings.
pub fn slo_cells(
    found: &[&SloCapacity],
    runs: &[Run],
) -> Option<(String, Vec<String>, Vec<Vec<String>>)> {
    let first = found.first()?;
    let mut models: Vec<&str> = Vec::new();
    for f in found {
        if !models.contains(&f.model.as_str()) {
            models.push(&f.model);
        }
    }
    let header = [
        "model",
        "capacity",
        "p50 there",
        "p99 there",
        "missed at",
        "closed loop",
        "probes",
    ];
    let mut rows = Vec::new();
    for model in models {
        let mine: Vec<&&SloCapacity> = found.iter().filter(|f| f.model == model).collect();
        let capacity = median(mine.iter().filter_map(|f| f.capacity_rps));
        // The probes that met the objectives at each repeat's capacity.
        let there: Vec<&Run> = runs
            .iter()
            .filter(|r| {
                r.model.as_deref() == Some(model)
                    && r.point == first.point
                    && r.slo_probe.as_ref().is_some_and(|p| p.met)
                    && mine
                        .iter()
                        .any(|f| f.repeat_index == r.repeat_index && f.capacity_rps == r.rate)
            })
            .collect();
        rows.push(vec![
            model.to_string(),
            capacity.map_or("none met".into(), fmt_rate),
            med(&there, |r| Some(r.latency_us.p50)).map_or("-".into(), fmt_us),
            med(&there, |r| Some(r.latency_us.p99)).map_or("-".into(), fmt_us),
            median(mine.iter().filter_map(|f| f.missed_rps)).map_or("-".into(), fmt_rate),
            median(mine.iter().map(|f| f.closed_loop_rps)).map_or("-".into(), fmt_rate),
            mine.iter()
                .map(|f| f.probes.to_string())
                .collect::<Vec<_>>()
                .join("+"),
        ]);
    }
    let title = format!(
        "capacity at {}: the highest rate probed that met {} (open loop, corrected latency; \
         closed loop: the ceiling the search started under)",
        first.objectives.join(", "),
        if first.objectives.len() > 1 {
            "them all"
        } else {
            "it"
        }
    );
    Some((title, header.iter().map(|h| h.to_string()).collect(), rows))
}

/// Error counts as ` kind=n ...`, warm-up ones marked: ` mismatch=3 warm-up:connect=1`.
pub fn kinds(
    window: &std::collections::BTreeMap<String, u64>,
    warmup: &std::collections::BTreeMap<String, u64>,
) -> String {
    let mut out = String::new();
    for (kind, n) in window {
        let _ = write!(out, " {kind}={n}");
    }
    for (kind, n) in warmup {
        let _ = write!(out, " warm-up:{kind}={n}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(model: &str, rps: f64, starved: u64, repeat_index: usize) -> Run {
        let json = serde_json::json!({
            "model": model, "workload": "echo", "connections": 50, "payload": 64, "pipeline": 1,
            "rate": null, "threads": 1, "client_threads": 1, "repeat_index": repeat_index,
            "server_cpus": [0], "client_cpus": [1], "duration_s": 1.0, "warmup_s": 0.0,
            "requests": 100, "errors": 0, "error_kinds": {}, "warmup_errors": 0,
            "warmup_error_kinds": {}, "throughput_rps": rps,
            "throughput_mibps": 0.0,
            "latency_us": {"min": 1.0, "mean": 2.0, "p50": 2.0, "p90": 3.0, "p99": 40.0,
                           "p999": 50.0, "p9999": 60.0, "max": 70.0},
            "histogram": "", "timeseries": [], "server": null,
            "client": {"cpu_user_s": 0.0, "cpu_sys_s": 0.0, "busy_fraction": 0.0,
                       "saturated": false},
            "syscalls": null, "connections_established": 50, "unfinished_requests": 0, "stalled_requests": 0,
            "starved_connections": starved, "failure": null, "warnings": []
        });
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn renders_one_aligned_row_per_model_with_medians() {
        let runs = [
            run("reactor", 100.0, 0, 0),
            run("threadpool", 10.0, 49, 0),
            run("reactor", 300.0, 0, 1),
            run("threadpool", 30.0, 49, 1),
            run("reactor", 200.0, 0, 2),
            run("threadpool", 20.0, 49, 2),
        ];
        let text = render(&runs);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        let cols = |l: &str| l.split_whitespace().count();
        // No run has server costs: the server's columns are left out.
        assert!(
            !lines[0].contains("CPU") && !lines[0].contains("RSS"),
            "{text}"
        );
        assert_eq!(cols(lines[0]), cols(lines[1]), "{text}");
        assert_eq!(cols(lines[1]), cols(lines[2]), "{text}");
        assert!(
            lines[1].starts_with("reactor") && lines[1].contains(" 200 "),
            "{text}"
        );
        assert!(lines[2].contains(" 1/50 "), "{text}");
        assert!(lines[3].contains("medians of 3"), "{text}");
        assert_eq!(
            kinds(
                &[("mismatch".into(), 3)].into(),
                &[("connect".into(), 1)].into()
            ),
            " mismatch=3 warm-up:connect=1"
        );
    }
}
