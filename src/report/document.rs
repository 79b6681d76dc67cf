//! The report: `bench report RESULT... --out DIR` (and the end of `bench run`): a Markdown
//! report (report.md), a self-contained HTML report (index.html: the charts inline, no network
//! needed) and the charts as SVG and PNG files (charts/), with findings generated from the
//! data, the environment and every scenario option.
//!
//! The report is a pure function of the result files (no clock, no machine state), so the same
//! files give the same report; the tests compare it with checked-in snapshots.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::charts::{self, ChartFile};
use super::result::{ResultFile, Run, SloCapacity, SCHEMA_VERSION};
use super::table::{self, fmt_rate, fmt_us, median};
use crate::Error;

/// Where the charts go, relative to the report.
pub const CHART_DIR: &str = "charts";

/// What [`write`] wrote.
#[derive(Debug)]
pub struct Written {
    pub markdown: PathBuf,
    pub html: PathBuf,
    pub charts: usize,
}

/// The report folder for a result file: beside it, named after it (run-X.json -> run-X/).
pub fn default_dir(result: &Path) -> PathBuf {
    result.with_extension("")
}

/// Reads a result file: unreadable, not JSON, written by a newer schema, or missing a field
/// this version needs are errors that say so (exit 2). Fields added after a file was written
/// take their defaults, and their gaps are labelled in the report.
pub fn load(path: &Path) -> anyhow::Result<ResultFile> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::Usage(format!(
            "cannot read the result file {}: {e}",
            path.display()
        ))
    })?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        Error::Usage(format!(
            "{} is not a result file: it is not JSON ({e})",
            path.display()
        ))
    })?;
    match value.get("schema_version").and_then(|v| v.as_u64()) {
        Some(v) if v > u64::from(SCHEMA_VERSION) => {
            return Err(Error::Usage(format!(
                "{} was written with result schema {v}; this bench reads schema \
                 {SCHEMA_VERSION} and older: use a newer bench",
                path.display()
            ))
            .into())
        }
        Some(_) => {}
        None => {
            return Err(Error::Usage(format!(
                "{} is not a result file: it has no schema_version",
                path.display()
            ))
            .into())
        }
    }
    serde_json::from_value(value).map_err(|e| {
        Error::Usage(format!(
            "{} cannot be read as a result file ({e}): was it written by another tool?",
            path.display()
        ))
        .into()
    })
}

/// Writes report.md, index.html and the charts into `out` (created if missing); `files` are
/// the result files with the names to show them by.
pub fn write(files: &[(String, ResultFile)], out: &Path) -> anyhow::Result<Written> {
    std::fs::create_dir_all(out).map_err(|e| {
        Error::Environment(format!(
            "cannot create the report folder {}: {e} (pick another with --out)",
            out.display()
        ))
    })?;
    let results: Vec<ResultFile> = files.iter().map(|(_, f)| f.clone()).collect();
    let charts = charts::draw_all(&results, &out.join(CHART_DIR))
        .with_context(|| format!("cannot draw the charts into {}", out.display()))?;
    let md = markdown(files, &charts);
    let page = html(&md, &charts);
    let markdown_path = out.join("report.md");
    let html_path = out.join("index.html");
    write_atomic(&markdown_path, md.as_bytes())?;
    write_atomic(&html_path, page.as_bytes())?;
    Ok(Written {
        markdown: markdown_path,
        html: html_path,
        charts: charts.len(),
    })
}

/// A file written whole or not at all (temporary file, then rename).
fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Error::Environment(format!("cannot write {}: {e}", path.display())).into()
        })
}

/// The Markdown report.
pub fn markdown(files: &[(String, ResultFile)], charts: &[ChartFile]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# iomodels report\n");
    let tools: Vec<String> = files
        .iter()
        .map(|(_, f)| {
            format!(
                "{} {} (commit {})",
                f.tool.name, f.tool.version, f.tool.git_commit
            )
        })
        .fold(Vec::new(), |mut v, t| {
            if !v.contains(&t) {
                v.push(t);
            }
            v
        });
    let _ = writeln!(
        out,
        "From {} result file{} written by {}. Figures are medians over repeats; ratios compare \
         models measured in the same run, which is the comparison a shared machine supports.\n",
        files.len(),
        if files.len() == 1 { "" } else { "s" },
        tools.join(", ")
    );
    for (i, (name, file)) in files.iter().enumerate() {
        section(&mut out, i + 1, name, file);
    }
    if !charts.is_empty() {
        let _ = writeln!(out, "## Charts\n");
        for c in charts {
            let _ = writeln!(
                out,
                "### {}\n\n![{}]({CHART_DIR}/{}.svg)\n\n{} ([PNG]({CHART_DIR}/{}.png))\n",
                c.title, c.title, c.stem, c.caption, c.stem
            );
        }
    }
    out
}

/// One result file's section: scenario, environment, findings, tables.
fn section(out: &mut String, index: usize, name: &str, file: &ResultFile) {
    let s = &file.scenario;
    let _ = writeln!(out, "## {index}. {}\n", title(name, file));
    let _ = writeln!(out, "### Scenario\n");
    let mut options: Vec<(&str, String)> = vec![
        ("command", format!("bench {}", s.command)),
        ("models", s.models.join(", ")),
        ("workload", s.workload.clone()),
        ("connections", s.connections.to_string()),
        ("client threads", s.client_threads.to_string()),
        ("payload", format!("{} B", s.payload)),
        ("pipeline", s.pipeline.to_string()),
        (
            "rate",
            s.rate.map_or("closed loop".into(), |r| {
                format!("{} req/s (open loop)", fmt_rate(r))
            }),
        ),
        ("duration", format!("{} s", s.duration_s)),
        ("warm-up", format!("{} s", s.warmup_s)),
        ("repeat", s.repeat.to_string()),
        ("time series interval", format!("{} s", s.interval_s)),
        (
            "server threads",
            s.server_threads
                .map_or("the number of server CPUs".into(), |t| t.to_string()),
        ),
        ("poller", s.poller.clone().unwrap_or_else(|| "-".into())),
        ("work per request", format!("{} µs", s.work_us)),
        ("blocking per request", format!("{} µs", s.block_us)),
        ("system calls", s.accounting.clone()),
        ("server CPUs", cpus(&s.server_cpus)),
        ("client CPUs", cpus(&s.client_cpus)),
    ];
    if let Some(t) = s.timeout_s {
        options.push(("timeout", format!("{t} s")));
    }
    if let Some(target) = &s.target {
        options.push(("target", target.clone()));
    }
    if let Some(u) = &s.uring_options {
        options.push((
            "io_uring options",
            serde_json::to_string(u).unwrap_or_default(),
        ));
    }
    if let Some(f) = &s.file {
        options.push(("scenario file", format!("`{f}`")));
    }
    if let Some(m) = &s.matrix {
        let sweep: Vec<String> = m.iter().map(|(k, v)| format!("{k} = {v}")).collect();
        options.push(("sweep", sweep.join("; ")));
    }
    if !s.slo.is_empty() {
        options.push(("SLO search", s.slo.join(", ")));
    }
    key_values(out, &options);
    let e = &file.env;
    let _ = writeln!(out, "### Environment\n");
    key_values(
        out,
        &[
            ("kernel", e.kernel.clone()),
            ("os", e.os.clone()),
            ("CPU", format!("{} ({} CPUs)", e.cpu_model, e.cpus)),
            (
                "load average at start",
                e.loadavg_at_start.map_or("-".into(), |l| {
                    format!("{:.2} {:.2} {:.2}", l[0], l[1], l[2])
                }),
            ),
            ("hostname", e.hostname.clone()),
            ("rustc", e.rustc.clone()),
            (
                "tool",
                format!(
                    "{} {} (commit {})",
                    file.tool.name, file.tool.version, file.tool.git_commit
                ),
            ),
        ],
    );
    let _ = writeln!(out, "### Findings\n");
    for f in findings(file) {
        let _ = writeln!(out, "- {f}");
    }
    out.push('\n');
    let _ = writeln!(out, "### Results\n");
    for (point, runs) in groups(file) {
        if !point.is_empty() {
            let _ = writeln!(out, "#### {point}\n");
        }
        let plain: Vec<Run> = runs
            .iter()
            .filter(|r| r.slo_probe.is_none())
            .map(|r| (*r).clone())
            .collect();
        if !plain.is_empty() {
            let (header, rows) = table::cells(&plain);
            out.push_str(&table::markdown(&header, &rows));
            for note in table::notes(&plain) {
                let _ = writeln!(out, "\n*{note}*");
            }
            out.push('\n');
        }
        let found: Vec<&SloCapacity> = file
            .slo
            .iter()
            .filter(|f| describe(&f.point) == point)
            .collect();
        if let Some((title, header, rows)) = table::slo_cells(&found, &file.runs) {
            let _ = writeln!(out, "{title}:\n");
            out.push_str(&table::markdown(&header, &rows));
            out.push('\n');
        }
    }
    let gaps = gaps(file);
    if !gaps.is_empty() {
        let _ = writeln!(out, "### Gaps\n");
        for g in gaps {
            let _ = writeln!(out, "- {g}");
        }
        out.push('\n');
    }
}

fn title(name: &str, file: &ResultFile) -> String {
    let what = match &file.scenario.file {
        Some(f) => format!("scenario `{f}`"),
        None if !file.scenario.slo.is_empty() => {
            format!("capacity at {}", file.scenario.slo.join(", "))
        }
        None => format!(
            "{}, {} connections{}",
            file.scenario.workload,
            file.scenario.connections,
            file.scenario
                .rate
                .map_or(String::new(), |r| format!(", {} req/s", fmt_rate(r)))
        ),
    };
    format!("{what} (`{name}`)")
}

fn cpus(list: &[usize]) -> String {
    if list.is_empty() {
        "-".into()
    } else {
        list.iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }
}

fn key_values(out: &mut String, rows: &[(&str, String)]) {
    let _ = writeln!(out, "| | |\n|---|---|");
    for (k, v) in rows {
        let _ = writeln!(out, "| {k} | {} |", v.replace('|', "\\|"));
    }
    out.push('\n');
}

/// `connections=100 payload=64` (empty for a run that is not part of a sweep).
fn describe(point: &serde_json::Map<String, serde_json::Value>) -> String {
    point
        .iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => format!("{k}={s}"),
            v => format!("{k}={v}"),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The file's runs by sweep point, in the order they ran.
fn groups(file: &ResultFile) -> Vec<(String, Vec<&Run>)> {
    let mut groups: Vec<(String, Vec<&Run>)> = Vec::new();
    for run in &file.runs {
        let key = describe(&run.point);
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, runs)) => runs.push(run),
            None => groups.push((key, vec![run])),
        }
    }
    groups
}

/// One model's medians at one point.
struct Figures {
    model: String,
    throughput: f64,
    p99: f64,
    cpu: Option<f64>,
    syscalls: Option<f64>,
    by_name: Vec<(String, f64)>,
    ctxsw: Option<f64>,
    saturated: bool,
}

fn figures(runs: &[&Run]) -> Vec<Figures> {
    let mut models: Vec<String> = Vec::new();
    for r in runs {
        let name = table::label(r);
        if !models.contains(&name) {
            models.push(name);
        }
    }
    models
        .into_iter()
        .filter_map(|model| {
            let mine: Vec<&&Run> = runs
                .iter()
                .filter(|r| table::label(r) == model && r.failure.is_none())
                .collect();
            let med = |f: &dyn Fn(&Run) -> Option<f64>| median(mine.iter().filter_map(|r| f(r)));
            let mut by_name: Vec<(String, f64)> = Vec::new();
            if let Some(first) = mine.iter().find_map(|r| r.syscalls.as_ref()) {
                if let Some(names) = first["by_name_per_request"].as_object() {
                    for name in names.keys() {
                        let v = med(&|r: &Run| {
                            r.syscalls.as_ref()?["by_name_per_request"][name].as_f64()
                        });
                        if let Some(v) = v.filter(|v| *v >= 0.01) {
                            by_name.push((name.clone(), v));
                        }
                    }
                }
            }
            by_name.sort_by(|a, b| b.1.total_cmp(&a.1));
            by_name.truncate(3);
            Some(Figures {
                model,
                throughput: med(&|r: &Run| Some(r.throughput_rps))?,
                p99: med(&|r: &Run| Some(r.latency_us.p99))?,
                cpu: med(&|r: &Run| r.server.as_ref()?.cpu_us_per_request),
                syscalls: med(&|r: &Run| r.syscalls.as_ref()?["per_request"].as_f64()),
                by_name,
                ctxsw: med(&|r: &Run| r.server.as_ref()?.ctx_switches_per_request),
                saturated: mine.iter().any(|r| r.client.saturated),
            })
        })
        .collect()
}

/// Ratios closer than this are called a tie: runs of the same model on a shared 2-CPU
/// machine move by 10% and more between runs (README).
const TIE: f64 = 1.10;

/// The findings of one result file: per point, which model won on throughput, p99 and CPU
/// per request, by how much, what mechanism figures go with it, and the caveats that apply.
/// Only statements the figures support: a lead under 10% is called a tie.
pub fn findings(file: &ResultFile) -> Vec<String> {
    let mut out = Vec::new();
    for (point, runs) in groups(file) {
        let at = if point.is_empty() {
            String::new()
        } else {
            format!("At {point}: ")
        };
        let plain: Vec<&Run> = runs
            .iter()
            .copied()
            .filter(|r| r.slo_probe.is_none())
            .collect();
        let figs = figures(&plain);
        let open_rate = plain
            .iter()
            .map(|r| r.rate)
            .reduce(|a, b| if a == b { a } else { None })
            .flatten();
        if let (Some(rate), true) = (open_rate, figs.len() >= 2) {
            // An open loop's throughput is the rate asked for, unless a model fell behind.
            let behind: Vec<String> = figs
                .iter()
                .filter(|f| f.throughput < 0.99 * rate)
                .map(|f| format!("{} ({} req/s)", f.model, fmt_rate(f.throughput)))
                .collect();
            out.push(format!(
                "{at}open loop at {} req/s: {}",
                fmt_rate(rate),
                if behind.is_empty() {
                    "every model answered the rate asked for, so the comparison is in latency \
                     and cost, not throughput."
                        .to_string()
                } else {
                    format!("fell behind: {}.", behind.join(", "))
                }
            ));
        } else if figs.len() >= 2 {
            out.push(format!(
                "{at}{}",
                lead(
                    &figs,
                    "throughput",
                    |f| Some(f.throughput),
                    true,
                    |v| { format!("{} req/s", fmt_rate(v)) }
                )
            ));
        }
        if figs.len() >= 2 {
            out.push(format!(
                "{at}{}",
                lead(&figs, "p99 latency", |f| Some(f.p99), false, fmt_us)
            ));
            if figs.iter().filter(|f| f.cpu.is_some()).count() >= 2 {
                out.push(format!(
                    "{at}{}",
                    lead(
                        &figs,
                        "server CPU per request",
                        |f| f.cpu,
                        false,
                        |v| { format!("{v:.1} µs") }
                    )
                ));
            }
            if let Some(m) = mechanism(&figs) {
                out.push(format!("{at}{m}"));
            }
        } else if let Some(f) = figs.first() {
            out.push(format!(
                "{at}{}: {} req/s, p99 {} (one model: nothing to compare).",
                f.model,
                fmt_rate(f.throughput),
                fmt_us(f.p99)
            ));
        }
        let client_bound: Vec<&str> = figs
            .iter()
            .filter(|f| f.saturated)
            .map(|f| f.model.as_str())
            .collect();
        if !client_bound.is_empty() {
            out.push(format!(
                "{at}Caveat: the load generator was saturated in the runs of {}: their \
                 throughput is a lower bound for the server, and differences between them are \
                 differences at the client's ceiling.",
                client_bound.join(", ")
            ));
        }
    }
    for found in &file.slo {
        let at = describe(&found.point);
        out.push(format!(
            "{}{}: capacity at {} {} (closed-loop ceiling {} req/s, {} probes){}.",
            if at.is_empty() {
                String::new()
            } else {
                format!("At {at}: ")
            },
            found.model,
            found.objectives.join(", "),
            found
                .capacity_rps
                .map_or("none: no rate probed met it".into(), |c| format!(
                    "{} req/s",
                    fmt_rate(c)
                )),
            fmt_rate(found.closed_loop_rps),
            found.probes,
            if found.warnings.is_empty() {
                ""
            } else {
                "; client-bound"
            }
        ));
    }
    out.extend(caveats(file));
    out
}

/// "`a` had the highest throughput: 1.20x `b` (next) and 1.90x `c` (last)", or a tie.
fn lead(
    figs: &[Figures],
    what: &str,
    value: impl Fn(&Figures) -> Option<f64>,
    higher_wins: bool,
    fmt: impl Fn(f64) -> String,
) -> String {
    let mut ranked: Vec<(&str, f64)> = figs
        .iter()
        .filter_map(|f| Some((f.model.as_str(), value(f)?)))
        .filter(|(_, v)| *v > 0.0)
        .collect();
    ranked.sort_by(|a, b| {
        if higher_wins {
            b.1.total_cmp(&a.1)
        } else {
            a.1.total_cmp(&b.1)
        }
    });
    let (Some(best), Some(next), Some(last)) = (ranked.first(), ranked.get(1), ranked.last())
    else {
        return format!("{what}: not enough figures to compare.");
    };
    let ratio = |a: f64, b: f64| if higher_wins { a / b } else { b / a };
    let best_word = if higher_wins { "highest" } else { "lowest" };
    let ties: Vec<&str> = ranked
        .iter()
        .filter(|(_, v)| ratio(best.1, *v) < TIE)
        .map(|(m, _)| *m)
        .collect();
    if ties.len() > 1 {
        let behind = if ties.contains(&last.0) {
            String::new()
        } else {
            format!(
                "; {} is {:.2}x behind the best at {}",
                last.0,
                ratio(best.1, last.1),
                fmt(last.1)
            )
        };
        return format!(
            "{what}: {} are within 10% of each other ({}), a tie on this machine{behind}.",
            ties.join(", "),
            ranked
                .iter()
                .filter(|(m, _)| ties.contains(m))
                .map(|(m, v)| format!("{m} {}", fmt(*v)))
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    let mut against = format!(
        "{:.2}x {} at {}",
        ratio(best.1, next.1),
        next.0,
        fmt(next.1)
    );
    if ranked.len() > 2 {
        let _ = write!(
            against,
            ", {:.2}x {} at {}",
            ratio(best.1, last.1),
            last.0,
            fmt(last.1)
        );
    }
    format!(
        "{what}: {} had the {best_word}, {} ({against}).",
        best.0,
        fmt(best.1)
    )
}

/// The system-call and context-switch figures that go with the comparison.
fn mechanism(figs: &[Figures]) -> Option<String> {
    let counted: Vec<&Figures> = figs.iter().filter(|f| f.syscalls.is_some()).collect();
    let mut parts = Vec::new();
    if counted.len() >= 2 {
        let fewest = counted.iter().min_by(|a, b| {
            a.syscalls
                .unwrap_or(0.0)
                .total_cmp(&b.syscalls.unwrap_or(0.0))
        })?;
        let most = counted.iter().max_by(|a, b| {
            a.syscalls
                .unwrap_or(0.0)
                .total_cmp(&b.syscalls.unwrap_or(0.0))
        })?;
        let names = |f: &Figures| {
            f.by_name
                .iter()
                .map(|(n, v)| format!("{n} {v:.2}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if fewest.model != most.model {
            parts.push(format!(
                "system calls per request: {} {:.2} ({}) vs {} {:.2} ({})",
                fewest.model,
                fewest.syscalls.unwrap_or(0.0),
                names(fewest),
                most.model,
                most.syscalls.unwrap_or(0.0),
                names(most)
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

/// Caveats about the whole file: a busy machine, Wine, failures, errors.
fn caveats(file: &ResultFile) -> Vec<String> {
    let mut out = Vec::new();
    let env = &file.env;
    if let Some([load, ..]) = env
        .loadavg_at_start
        .filter(|l| l[0] > 0.5 * env.cpus as f64)
    {
        out.push(format!(
            "Caveat: the machine was busy when the run started (load average {load:.2} on {} \
             CPUs): expect noisy figures.",
            env.cpus
        ));
    }
    if env.kernel.contains("Wine") || env.os.contains("Wine") {
        out.push(
            "Caveat: measured under Wine: the figures show correctness, not Windows's speed."
                .into(),
        );
    }
    let failed: Vec<String> = file
        .runs
        .iter()
        .filter(|r| r.failure.is_some() && r.slo_probe.is_none())
        .map(|r| {
            format!(
                "{} (repeat {})",
                r.model.as_deref().unwrap_or("target"),
                r.repeat_index + 1
            )
        })
        .collect();
    if !failed.is_empty() {
        out.push(format!(
            "Failed runs (left out of the figures above): {}.",
            failed.join(", ")
        ));
    }
    let errors: u64 = file
        .runs
        .iter()
        .filter(|r| r.slo_probe.is_none())
        .map(|r| r.errors + r.warmup_errors)
        .sum();
    if errors > 0 {
        out.push(format!(
            "{errors} invalid or failed requests were counted: see the errors column."
        ));
    }
    out
}

/// What the file lacks, labelled: no system-call counts, no server costs, fields written
/// before they existed.
fn gaps(file: &ResultFile) -> Vec<String> {
    let mut out = Vec::new();
    let uncounted: Vec<String> = file
        .runs
        .iter()
        .filter(|r| r.syscalls.is_none())
        .map(|r| {
            format!(
                "{}{}",
                r.model.as_deref().unwrap_or("target"),
                r.syscalls_unavailable
                    .as_deref()
                    .map_or(String::new(), |why| format!(" ({why})"))
            )
        })
        .fold(Vec::new(), |mut v, s| {
            if !v.contains(&s) {
                v.push(s);
            }
            v
        });
    if !uncounted.is_empty() {
        out.push(format!(
            "System calls not counted for: {}. Their `sys/req` column is absent or `-`.",
            uncounted.join("; ")
        ));
    }
    let no_server: Vec<&str> = file
        .runs
        .iter()
        .filter(|r| r.server.is_none())
        .map(|r| r.model.as_deref().unwrap_or("target"))
        .fold(Vec::new(), |mut v, s| {
            if !v.contains(&s) {
                v.push(s);
            }
            v
        });
    if !no_server.is_empty() {
        out.push(format!(
            "No server costs (CPU, context switches, memory) for: {} (an outside server, or \
             its counters could not be read); shown as `-`.",
            no_server.join(", ")
        ));
    }
    out
}

/// The HTML page: the Markdown rendered (pulldown-cmark, GitHub tables), each chart's SVG
/// inlined where the Markdown links it, a small stylesheet; nothing fetched from anywhere.
pub fn html(markdown: &str, charts: &[ChartFile]) -> String {
    let mut options = pulldown_cmark::Options::empty();
    options.insert(pulldown_cmark::Options::ENABLE_TABLES);
    let parser = pulldown_cmark::Parser::new_ext(markdown, options);
    let mut body = String::new();
    pulldown_cmark::html::push_html(&mut body, parser);
    for c in charts {
        let img = format!(
            "<img src=\"{CHART_DIR}/{}.svg\" alt=\"{}\" />",
            c.stem,
            escape(&c.title)
        );
        let svg = c
            .svg
            .trim_start_matches(|ch: char| ch != '<')
            .trim_start_matches("<?xml version=\"1.0\" encoding=\"UTF-8\"?>")
            .to_string();
        body = body.replace(&img, &format!("<figure class=\"chart\">{svg}</figure>"));
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>iomodels report</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n{body}</body>\n</html>\n"
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const STYLE: &str = "body { font-family: sans-serif; max-width: 1100px; margin: 2em auto; \
padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; }
td { font-variant-numeric: tabular-nums; }
figure.chart { margin: 1em 0; }
figure.chart svg { max-width: 100%; height: auto; }
code { background: #f4f4f4; padding: 0 0.2em; }
";
