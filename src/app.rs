//! Turns a parsed command line into work: one function per command. The settings each command
//! runs with come from `cli::options`; this module starts the work and prints its outcome.

use std::io::IsTerminal;

use clap::Parser;

use crate::cli::options::{self, run_options};
use crate::cli::scenario::Expanded;
use crate::cli::{Cli, Command, CompareArgs, LoadArgs, ReportArgs, RunArgs};
use crate::load::{run_load, LoadConfig};
use crate::models::MODELS;
use crate::output::progress::ProgressLine;
use crate::report::{document, table};
use crate::result::{self, Env, ResultFile, Run, Scenario};
use crate::run::{self, RunIdentity};
use crate::serve::serve;
use crate::Error;

/// Runs a command; returns the exit code for a command that finished.
pub fn execute(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Models { json } => models(json),
        Command::Serve(a) => serve(&options::serve_options(a)),
        Command::Load(a) => load(&a),
        Command::Run(a) => run_models(*a),
        Command::Report(a) => report(&a),
        Command::Compare(a) => compare(&a),
        Command::Docs { files, check } => docs(&files, check),
        Command::Merge { files, out } => merge(&files, &out),
        Command::Deploy(a) => {
            crate::out!("{}", crate::cli::deploy::render(&a)?);
            Ok(0)
        }
        Command::LoadPart => crate::load::run_client_process(),
    }
}

/// `bench run` without a sweep: the models run into one result file, judged against
/// `--baseline` when given.
fn run_models(a: RunArgs) -> anyhow::Result<i32> {
    let gate = Gate::of(&a);
    let mut opts = run_options(a, true)?;
    let out = opts.out.clone().unwrap_or_else(run::default_out);
    opts.out = Some(out.clone());
    gate.check()?;
    let code = run::run(&opts)?;
    gate.judge(&out, code)
}

/// `bench run --baseline FILE [--normalize-to MODEL]`: the run's result compared with a
/// baseline once it is written.
struct Gate {
    baseline: Option<std::path::PathBuf>,
    normalize_to: Option<String>,
    allow_dirty: bool,
}

impl Gate {
    fn of(a: &RunArgs) -> Gate {
        Gate {
            baseline: a.baseline.clone(),
            normalize_to: a.normalize_to.clone(),
            allow_dirty: a.allow_dirty,
        }
    }

    /// A baseline that cannot be read, or that `bench compare` would refuse (a `-dirty` build
    /// without --allow-dirty), stops the run before anything is measured.
    fn check(&self) -> anyhow::Result<()> {
        if let Some(b) = &self.baseline {
            let file = result::load(b)?;
            crate::compare::check_baseline(&file, self.allow_dirty)?;
        }
        Ok(())
    }

    /// The exit code: the run's, or 1 when the comparison finds a regression.
    fn judge(&self, out: &std::path::Path, code: i32) -> anyhow::Result<i32> {
        let Some(b) = &self.baseline else {
            return Ok(code);
        };
        if !out.is_file() || code == run::EXIT_INTERRUPTED {
            return Ok(code);
        }
        // The run judges the models it ran, not the baseline's others.
        let ran = result::load(out)?.scenario.models;
        let c = crate::compare::compare_files(
            b,
            out,
            &crate::compare::Options {
                threshold: None,
                metric_thresholds: Vec::new(),
                normalize_to: self.normalize_to.clone(),
                only_models: Some(ran),
                allow_dirty: self.allow_dirty,
                ..Default::default()
            },
        )?;
        crate::outln!("\ncompared with the baseline {}:", b.display());
        crate::out!(
            "{}",
            crate::compare::render(&c, crate::compare::Format::Text)
        );
        Ok(code.max(i32::from(c.regressions() > 0)))
    }
}

/// `bench docs`: every file's tables regenerated (or, with `check`, compared: exit 1 when one
/// differs).
fn docs(files: &[std::path::PathBuf], check: bool) -> anyhow::Result<i32> {
    let mut stale = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f)
            .map_err(|e| Error::Usage(format!("cannot read {}: {e}", f.display())))?;
        let dir = f.parent().unwrap_or(std::path::Path::new("."));
        let fresh = crate::report::docs::regenerate(&text, dir)
            .map_err(|e| Error::Usage(format!("{}: {e}", f.display())))?;
        if fresh == text {
            continue;
        }
        if check {
            stale.push(f.display().to_string());
        } else {
            result::write_atomic(f, fresh.as_bytes())
                .map_err(|e| Error::Environment(format!("cannot write {}: {e}", f.display())))?;
            crate::outln!("{}: tables regenerated", f.display());
        }
    }
    if stale.is_empty() {
        return Ok(0);
    }
    crate::errln!(
        "tables differ from their data in: {} (run `bench docs {}`)",
        stale.join(", "),
        stale.join(" ")
    );
    Ok(1)
}

/// `bench compare`: exit 0 without a regression, 1 with one, 2 for files that cannot be
/// compared.
fn compare(a: &CompareArgs) -> anyhow::Result<i32> {
    let opts = crate::compare::Options {
        threshold: a.threshold.iter().rev().find_map(|t| match t {
            crate::cli::Threshold::All(t) => Some(*t),
            crate::cli::Threshold::Metric(..) => None,
        }),
        metric_thresholds: a
            .threshold
            .iter()
            .filter_map(|t| match t {
                crate::cli::Threshold::Metric(name, t) => Some((name.clone(), *t)),
                crate::cli::Threshold::All(_) => None,
            })
            .collect(),
        normalize_to: a.normalize_to.clone(),
        allow_missing: a.allow_missing,
        allow_dirty: a.allow_dirty,
        only_models: None,
    };
    let c = match (&a.current, &a.base, &a.head) {
        (None, Some(base), Some(head)) => {
            crate::compare::compare_within(&a.baseline, base, head, &opts)?
        }
        (Some(current), _, _) => crate::compare::compare_files(&a.baseline, current, &opts)?,
        _ => anyhow::bail!(crate::Error::Usage(
            "give two result files, BASELINE and CURRENT, or one with --base and --head (two \
             servers of one run)"
                .into()
        )),
    };
    crate::out!("{}", crate::compare::render(&c, a.format));
    Ok(if c.regressions() > 0 { 1 } else { 0 })
}

/// `bench report`: reads every file first (a bad one stops it before anything is written).
fn report(a: &ReportArgs) -> anyhow::Result<i32> {
    let mut files = Vec::with_capacity(a.results.len());
    for path in &a.results {
        files.push((path.display().to_string(), result::load(path)?));
    }
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| document::default_dir(&a.results[0]));
    let written = document::write(&files, &out)?;
    crate::errln!(
        "report written to {} and {} ({} charts)",
        written.markdown.display(),
        written.html.display(),
        written.charts
    );
    Ok(0)
}

/// Runs a command line with its scenario file expanded: a sweep's points (each a `bench run`
/// command line) become one plan, run into one result file; anything else runs as parsed.
pub fn execute_expanded(expanded: Expanded) -> anyhow::Result<i32> {
    let Expanded {
        points,
        matrix,
        expect,
        ..
    } = expanded;
    // A file without a sweep runs as its one command line would, unless it has expectations
    // for the result to carry.
    if points.len() == 1 && matrix.is_none() && expect.is_empty() {
        let cli = Cli::parse_from(&points[0].args);
        return execute(cli);
    }
    let mut plan = run::Plan {
        points: Vec::with_capacity(points.len()),
        matrix: matrix.map(|m| {
            m.into_iter()
                .map(|(k, v)| (k, serde_json::Value::Array(v)))
                .collect()
        }),
        expect,
    };
    let mut gate = None;
    for (i, point) in points.into_iter().enumerate() {
        // Every point was checked with these parsers when the file was read; `--help` and
        // the like end here as they would without a sweep.
        let cli = Cli::try_parse_from(&point.args).unwrap_or_else(|e| e.exit());
        let Command::Run(args) = cli.command else {
            anyhow::bail!(Error::Usage("only bench run takes a scenario sweep".into()));
        };
        let values: serde_json::Map<String, serde_json::Value> = point.values.into_iter().collect();
        if gate.is_none() {
            gate = Some(Gate::of(&args));
        }
        let opts = run_options(*args, i == 0).map_err(|e| {
            let at = crate::result::describe_point(&values);
            match e.downcast::<Error>() {
                Ok(Error::Usage(why)) if at.is_empty() => Error::Usage(why).into(),
                Ok(Error::Usage(why)) => Error::Usage(format!("at the point {at}: {why}")).into(),
                Ok(other) => anyhow::Error::new(other),
                Err(e) => e,
            }
        })?;
        plan.points.push(run::PlanPoint { values, opts });
    }
    let Some(gate) = gate else {
        anyhow::bail!(Error::Usage("the scenario has no point to run".into()));
    };
    let out = plan.points[0]
        .opts
        .out
        .clone()
        .unwrap_or_else(run::default_out);
    for p in &mut plan.points {
        p.opts.out = Some(out.clone());
    }
    gate.check()?;
    let code = run::run_plan(&plan)?;
    gate.judge(&out, code)
}

fn models(json: bool) -> anyhow::Result<i32> {
    if json {
        let list: Vec<serde_json::Value> = MODELS
            .iter()
            .map(|m| {
                let why = (m.availability)().err();
                serde_json::json!({
                    "name": m.name,
                    "available": why.is_none(),
                    "unavailable_reason": why,
                    "summary": m.summary,
                    "example": m.example,
                    "threads": m.threads.describe(),
                    "pollers": m.pollers.iter().map(|p| p.name()).collect::<Vec<_>>(),
                })
            })
            .collect();
        crate::outln!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(0);
    }
    let width = MODELS.iter().map(|m| m.name.len()).max().unwrap_or(0);
    for m in MODELS {
        let status = match (m.availability)() {
            Ok(()) => "available".to_string(),
            Err(why) => format!("UNAVAILABLE: {why}"),
        };
        crate::outln!("{:width$}  {status}", m.name);
        crate::outln!("{:width$}  {}; like {}", "", m.summary, m.example);
        crate::outln!("{:width$}  --threads: {}", "", m.threads.describe());
        if let Some((default, others)) = m.pollers.split_first() {
            let others: String = others.iter().map(|p| format!(", {}", p.name())).collect();
            crate::outln!(
                "{:width$}  --poller: {} (default){others}",
                "",
                default.name()
            );
        }
    }
    Ok(0)
}

/// `bench load`: drives the target, prints what it measured, writes the result file when
/// asked; exit 1 when requests failed.
fn load(a: &LoadArgs) -> anyhow::Result<i32> {
    let target = options::load_target(a)?;
    if let Some(cpus) = &a.cpus {
        // Every thread of the client, the helpers too, so none of them runs beside the server.
        run::pin_self(cpus)?;
    }
    let stop = run::stop_on_signals()?;
    let config = options::load_config(a, target)?;
    let target = config.target;
    let env = Env::capture();
    let show = !a.shape.quiet && std::io::stdout().is_terminal();
    if show {
        announce_load(&config);
    }
    let line = ProgressLine::new(show, &target.to_string());
    let mut outcome = run_load(&config, stop, &mut |edge| line.on_edge(&edge))?;
    line.finish();
    if let Some(segment) = outcome.segment.as_mut() {
        segment.host = Some(env.hostname.clone());
    }
    if outcome.connected == 0 {
        return Err(Error::Environment(format!(
            "cannot connect to {target}: no connection succeeded (is a server listening there?)"
        ))
        .into());
    }
    let interrupted = outcome.interrupted;
    let mut run = run::to_run(
        RunIdentity {
            model: None,
            threads: None,
            poller: None,
            repeat_index: 0,
            server_cpus: Vec::new(),
            work_us: 0,
            block_us: 0,
        },
        &config.segment_view(),
        outcome,
        None,
        interrupted.then(|| "interrupted by a signal before the window closed".to_string()),
        "--cpus",
    )?;
    run.syscalls_unavailable =
        Some("bench load does not count the system calls of the server it drives".into());
    print_load_run(&run);
    let code = if interrupted {
        run::EXIT_INTERRUPTED
    } else if run.failure.is_some() || run.errors > 0 || run.warmup_errors > 0 {
        1
    } else {
        0
    };
    if let Some(path) = &a.json {
        let mut file = ResultFile::new(load_scenario(a, &config, &run), env);
        file.runs.push(run);
        file.write_atomic(path)?;
        crate::errln!("result written to {}", path.display());
    }
    Ok(code)
}

/// `bench merge`: the segments' files merged into `out`, printed as `bench load` prints a run;
/// exit 1 when requests failed, as `bench load`.
fn merge(files: &[std::path::PathBuf], out: &std::path::Path) -> anyhow::Result<i32> {
    let read = files
        .iter()
        .map(|path| {
            Ok(result::segments::SegmentFile {
                path: path.clone(),
                file: result::load(path)?,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let merged = result::segments::merge_files(read)?;
    let run = &merged.runs[0];
    print_load_run(run);
    for p in &run.client.per_process {
        crate::outln!(
            "  segment {} on {}: {} connections, {} requests, {} errors, client busy {:.0}%, \
             started {:.3} s late",
            p.segment.as_deref().unwrap_or("?"),
            p.host.as_deref().unwrap_or("?"),
            p.connections,
            p.requests,
            p.errors + p.warmup_errors,
            p.busy_fraction.unwrap_or_default() * 100.0,
            p.late_s.unwrap_or_default()
        );
    }
    let code = if run.failure.is_some() || run.errors > 0 || run.warmup_errors > 0 {
        1
    } else {
        0
    };
    merged.write_atomic(out)?;
    crate::errln!("merged result written to {}", out.display());
    Ok(code)
}

/// What `bench load` is about to do, on a terminal.
fn announce_load(config: &LoadConfig) {
    let mine = config.segment_view();
    crate::errln!(
        "driving {}{} with {} connections on {} threads{}: {}{} warm-up + {} measured",
        config.target,
        config.segment.map_or(String::new(), |s| format!(
            " (segment {s} of a run of {} connections)",
            config.shape.connections
        )),
        mine.shape.connections,
        mine.threads,
        if config.processes > 1 {
            format!(" in {} processes", config.processes)
        } else {
            String::new()
        },
        config
            .start_at
            .map_or(String::new(), |at| format!("from {at}, ")),
        humantime::format_duration(config.shape.warmup),
        humantime::format_duration(config.shape.duration)
    );
}

/// `bench load`'s table, its summary line, its warnings and its failure.
fn print_load_run(run: &Run) {
    crate::out!("{}", table::render(std::slice::from_ref(run)));
    crate::outln!(
        "{} requests in {:.2}s, {} errors{}; client CPU busy {:.0}%{}",
        run.requests,
        run.duration_s,
        run.errors + run.warmup_errors,
        table::kinds(&run.error_kinds, &run.warmup_error_kinds),
        run.client.busy_fraction * 100.0,
        if run.client.per_process.iter().any(|p| p.host.is_some()) {
            format!(" (over {} segments)", run.client.processes)
        } else if run.client.processes > 1 {
            format!(" (over {} client processes)", run.client.processes)
        } else {
            String::new()
        }
    );
    for w in &run.warnings {
        crate::errln!("warning: {w}");
    }
    if let Some(why) = &run.failure {
        crate::errln!("failed: {why}");
    }
}

/// The scenario of `bench load --json`'s result file.
fn load_scenario(a: &LoadArgs, config: &LoadConfig, run: &Run) -> Scenario {
    Scenario {
        target: Some(a.target.clone()),
        client_cpus: run.client_cpus.clone(),
        start_at: config.start_at.map(|at| at.to_string()),
        ..Scenario::of_shape("load", &config.shape, config.threads)
    }
}
