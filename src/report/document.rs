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
use super::findings::{distinct, findings, gaps, groups};
use super::table;
use super::verdict::{self, Verdict};
use crate::output::format::fmt_rate;
use crate::result::{self, describe_point, ResultFile, Run, Scenario, SloCapacity};
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

/// A report file written whole or not at all ([`result::write_atomic`]).
fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    result::write_atomic(path, bytes)
        .map_err(|e| Error::Environment(format!("cannot write {}: {e}", path.display())).into())
}

/// The Markdown report.
pub fn markdown(files: &[(String, ResultFile)], charts: &[ChartFile]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# iomodels report\n");
    let tools: Vec<String> = distinct(files.iter().map(|(_, f)| {
        format!(
            "{} {} (commit {})",
            f.tool.name, f.tool.version, f.tool.git_commit
        )
    }));
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
    let _ = writeln!(out, "## {index}. {}\n", title(name, file));
    verdicts(out, file);
    let _ = writeln!(out, "### Scenario\n");
    key_values(out, &scenario_rows(&file.scenario));
    environment(out, file);
    let _ = writeln!(out, "### Findings\n");
    for f in findings(file) {
        let _ = writeln!(out, "- {f}");
    }
    out.push('\n');
    let _ = writeln!(out, "### Results\n");
    results(out, file);
    let gaps = gaps(file);
    if !gaps.is_empty() {
        let _ = writeln!(out, "### Gaps\n");
        for g in gaps {
            let _ = writeln!(out, "- {g}");
        }
        out.push('\n');
    }
}

/// The Verdict: the scenario's claim, judged expectation by expectation, then over all;
/// nothing for a file without expectations.
fn verdicts(out: &mut String, file: &ResultFile) {
    if let Some(text) = verdict_text(file) {
        let _ = writeln!(out, "### Verdict\n\n{text}");
    }
}

/// The claim's verdict over all, then each expectation's with the figures it rests on
/// (Markdown); `None` for a file without expectations.
pub fn verdict_text(file: &ResultFile) -> Option<String> {
    let judged = verdict::judge(file);
    if judged.is_empty() {
        return None;
    }
    let mut out = String::new();
    let overall = verdict::overall(&judged);
    let counts: Vec<String> = [Verdict::Holds, Verdict::DoesNotHold, Verdict::CannotTell]
        .into_iter()
        .filter_map(|v| {
            let n = judged.iter().filter(|j| j.verdict == v).count();
            (n > 0).then(|| format!("{v}: {n}"))
        })
        .collect();
    let _ = writeln!(
        out,
        "The claim **{overall}** over its {} expectation{} ({}).\n",
        judged.len(),
        if judged.len() == 1 { "" } else { "s" },
        counts.join("; ")
    );
    for j in &judged {
        let _ = writeln!(
            out,
            "- **{}**: {}. {}.",
            j.verdict, j.expectation.says, j.why
        );
    }
    Some(out)
}

/// Every scenario option, as the Scenario table's rows.
fn scenario_rows(s: &Scenario) -> Vec<(&'static str, String)> {
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
    options
}

/// The Environment table: the machine and the tool.
fn environment(out: &mut String, file: &ResultFile) {
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
}

/// The Results: per point, the table of runs and the SLO search's capacities.
fn results(out: &mut String, file: &ResultFile) {
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
            .filter(|f| describe_point(&f.point) == point)
            .collect();
        if let Some((title, header, rows)) = table::slo_cells(&found, &file.runs) {
            let _ = writeln!(out, "{title}:\n");
            out.push_str(&table::markdown(&header, &rows));
            out.push('\n');
        }
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
