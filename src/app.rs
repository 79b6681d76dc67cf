//! Turns a parsed command line into work: one function per command.

use std::io::IsTerminal;
use std::net::{SocketAddr, ToSocketAddrs};

use clap::Parser;

use crate::cli::{Cli, Command, LoadArgs, LoadShape, RunArgs};
use crate::load::{run_load, HttpRequest, LoadConfig, Shape};
use crate::models::{Model, Poller, FD_SETSIZE, MODELS, SELECT_MAX_CONNECTIONS, SERVER_OWN_FDS};
use crate::protocol::Workload;
use crate::report::document;
use crate::report::env::Env;
use crate::report::progress::ProgressLine;
use crate::report::result::{ResultFile, Scenario};
use crate::report::table;
use crate::run::{self, RunIdentity, RunOptions};
use crate::serve::{serve, ServeOptions};
use crate::{sys, Error};

/// Runs a command; returns the exit code for a command that finished.
pub fn execute(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Models { json } => models(json),
        Command::Serve(a) => serve(&ServeOptions {
            model: a.model,
            workload: a.workload,
            listen: a.listen,
            threads: a.handler.threads,
            cpus: a.cpus,
            work_us: a.handler.work_us,
            block_us: a.handler.block_us,
            poller: a.handler.poller,
            uring: a.handler.uring(),
            uring_given: a.handler.uring_given(),
            message_size: a.message_size,
            idle_timeout: a.handler.idle_timeout,
            duration: a.duration,
            stdin_control: a.stdin_control,
        }),
        Command::Load(a) => load(&a),
        Command::Run(a) => {
            let gate = Gate::of(&a);
            let mut opts = run_options(a, true)?;
            let out = opts.out.clone().unwrap_or_else(run::default_out);
            opts.out = Some(out.clone());
            gate.check()?;
            let code = run::run(&opts)?;
            gate.judge(&out, code)
        }
        Command::Report(a) => report(&a),
        Command::Compare(a) => compare(&a),
        Command::LoadPart => crate::load::run_client_process(),
    }
}

/// `bench run --baseline FILE [--normalize-to MODEL]`: the run's result compared with a
/// baseline once it is written.
struct Gate {
    baseline: Option<std::path::PathBuf>,
    normalize_to: Option<String>,
}

impl Gate {
    fn of(a: &RunArgs) -> Gate {
        Gate {
            baseline: a.baseline.clone(),
            normalize_to: a.normalize_to.clone(),
        }
    }

    /// A baseline that cannot be read stops the run before anything is measured.
    fn check(&self) -> anyhow::Result<()> {
        if let Some(b) = &self.baseline {
            document::load(b)?;
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
        let c = crate::compare::compare_files(
            b,
            out,
            &crate::compare::Options {
                threshold: None,
                normalize_to: self.normalize_to.clone(),
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

/// `bench compare`: exit 0 without a regression, 1 with one, 2 for files that cannot be
/// compared.
fn compare(a: &crate::cli::CompareArgs) -> anyhow::Result<i32> {
    let opts = crate::compare::Options {
        threshold: a.threshold,
        normalize_to: a.normalize_to.clone(),
    };
    let c = crate::compare::compare_files(&a.baseline, &a.current, &opts)?;
    crate::out!("{}", crate::compare::render(&c, a.format));
    Ok(if c.regressions() > 0 { 1 } else { 0 })
}

/// `bench report`: reads every file first (a bad one stops it before anything is written).
fn report(a: &crate::cli::ReportArgs) -> anyhow::Result<i32> {
    let mut files = Vec::with_capacity(a.results.len());
    for path in &a.results {
        files.push((path.display().to_string(), document::load(path)?));
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
pub fn execute_expanded(expanded: crate::scenario::Expanded) -> anyhow::Result<i32> {
    let crate::scenario::Expanded { points, matrix } = expanded;
    if points.len() == 1 && matrix.is_none() {
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
        let opts = run_options(args, i == 0).map_err(|e| {
            let at = crate::report::result::describe_point(&values);
            match e.downcast::<Error>() {
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

/// `bench run`'s options, checked; `notes`: say which models `--all` skips.
fn run_options(a: RunArgs, notes: bool) -> anyhow::Result<RunOptions> {
    let models: Vec<&'static Model> = if a.all {
        let mut chosen = Vec::new();
        for m in MODELS {
            match (m.availability)() {
                Ok(()) => chosen.push(m),
                Err(why) if notes => crate::errln!("note: skipping {}: {why}", m.name),
                Err(_) => {}
            }
        }
        chosen
    } else {
        let mut chosen: Vec<&'static Model> = Vec::new();
        for m in a.model {
            if !chosen.iter().any(|c| c.name == m.name) {
                chosen.push(m);
            }
        }
        chosen
    };
    check_poller(&models, a.handler.poller, a.shape.connections)?;
    check_load_shape(&a.shape, !a.slo.is_empty())?;
    if a.handler.uring_given() && !models.iter().any(|m| m.uring_options) {
        return Err(Error::Usage(
            "the --uring-* options apply to proactor-uring only, and this run has no \
             proactor-uring: add --model proactor-uring, or drop them"
                .into(),
        )
        .into());
    }
    Ok(RunOptions {
        models,
        workload: a.shape.workload.unwrap_or(Workload::Echo),
        connections: a.shape.connections,
        client_threads: a.client_threads,
        client_processes: a.shape.client_processes,
        duration: a.shape.duration,
        warmup: a.shape.warmup,
        payload: a.shape.payload,
        pipeline: a.shape.pipeline,
        timeout: a.shape.timeout,
        rate: a.shape.rate,
        interval: a.shape.interval,
        slo: a.slo.clone(),
        repeat: a.repeat as usize,
        threads: a.handler.threads,
        server_cpus: a.server_cpus,
        client_cpus: a.client_cpus,
        work_us: a.handler.work_us,
        block_us: a.handler.block_us,
        poller: a.handler.poller,
        uring: a.handler.uring_given().then(|| a.handler.uring()),
        idle_timeout: a.handler.idle_timeout,
        out: a.out,
        report: !a.no_report,
        scenario_file: a.scenario.map(|p| p.display().to_string()),
        // Counting needs Linux perf: elsewhere the default is not to try. An SLO search's
        // probes are timed only, unless counting is asked for.
        accounting: a
            .accounting
            .unwrap_or(if cfg!(target_os = "linux") && a.slo.is_empty() {
                crate::cli::Accounting::Separate
            } else {
                crate::cli::Accounting::Off
            }),
        accounting_required: a
            .accounting
            .is_some_and(|a| a != crate::cli::Accounting::Off),
        quiet: a.shape.quiet,
    })
}

/// `--poller` must apply to at least one of the models (the others ignore it: their runs
/// record no poller), each model that waits on a poller must have that one, and select must be
/// able to watch every connection: checked before anything starts, exit code 2.
fn check_poller(
    models: &[&'static Model],
    requested: Option<Poller>,
    connections: usize,
) -> Result<(), Error> {
    let takers: Vec<&&Model> = models.iter().filter(|m| !m.pollers.is_empty()).collect();
    if let (Some(_), [], Some(first)) = (requested, takers.as_slice(), models.first()) {
        first.poller(requested)?;
    }
    for model in &takers {
        if model.poller(requested)? == Some(Poller::Select) && connections > SELECT_MAX_CONNECTIONS
        {
            return Err(Error::Usage(format!(
                "select cannot watch {connections} connections (FD_SETSIZE is {FD_SETSIZE}, and \
                 the server keeps {SERVER_OWN_FDS} descriptors for itself): use --poller poll or \
                 epoll, or at most {SELECT_MAX_CONNECTIONS} connections"
            )));
        }
    }
    Ok(())
}

/// Where `bench load` sends its load: the address, the workload, and for HTTP the request.
#[derive(Debug)]
struct Target {
    addr: SocketAddr,
    workload: Workload,
    http: Option<HttpRequest>,
}

/// `HOST:PORT` (echo, or HTTP for `/plaintext` with `--workload http`) or
/// `http://HOST[:PORT][/PATH]` (HTTP).
fn parse_target(
    target: &str,
    workload: Option<Workload>,
    expect_body: Option<&str>,
) -> Result<Target, Error> {
    let bad = |why: String| {
        Error::Usage(format!(
            "cannot use `{target}` as --target: {why} (write it as HOST:PORT, like \
             127.0.0.1:7000, or as http://HOST:PORT/PATH)"
        ))
    };
    // The address to connect to, the Host header (the authority as typed), the path.
    let (authority, host, path, url) = match target.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => {
            let (authority, path) = match rest.find(['/', '?']) {
                Some(i) if rest[i..].starts_with('?') => (&rest[..i], format!("/{}", &rest[i..])),
                Some(i) => (&rest[..i], rest[i..].to_string()),
                None => (rest, "/".to_string()),
            };
            if path
                .bytes()
                .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
            {
                return Err(bad(
                    "the path has spaces or control characters (percent-encode them)".into(),
                ));
            }
            if authority.is_empty() {
                return Err(bad("it names no host".into()));
            }
            // A port-less authority gets HTTP's 80 ("[::1]" and "host" alike).
            let has_port = authority
                .rsplit_once(':')
                .is_some_and(|(_, port)| !port.contains(']'));
            let host = authority.to_string();
            let authority = if has_port {
                host.clone()
            } else {
                format!("{authority}:80")
            };
            (authority, host, path, true)
        }
        Some((scheme, _)) => {
            return Err(bad(format!(
                "the {scheme}:// scheme is not supported (http:// only; no TLS)"
            )))
        }
        None => (
            target.to_string(),
            target.to_string(),
            "/plaintext".to_string(),
            false,
        ),
    };
    let workload = match (workload, url) {
        (Some(Workload::Echo), true) => {
            return Err(bad(
                "an http:// target speaks HTTP: drop --workload echo, or give HOST:PORT".into(),
            ))
        }
        (Some(w), _) => w,
        (None, true) => Workload::Http,
        (None, false) => Workload::Echo,
    };
    if expect_body.is_some() && workload != Workload::Http {
        return Err(Error::Usage(
            "--expect-body is for the HTTP workload: add --workload http or use an http:// \
             target"
                .into(),
        ));
    }
    let addr = authority
        .to_socket_addrs()
        .map_err(|e| bad(e.to_string()))?
        .next()
        .ok_or_else(|| bad("it resolves to no address".into()))?;
    let http = (workload == Workload::Http).then(|| HttpRequest {
        host,
        path,
        expect_body: expect_body.map(|b| b.as_bytes().to_vec()),
    });
    Ok(Target {
        addr,
        workload,
        http,
    })
}

/// The open loop paces single requests: `--rate` with `--pipeline` above 1 is refused, and so
/// is `--slo` (a search over rates) with `--rate` (a rate of its own) or `--pipeline`.
fn check_load_shape(shape: &LoadShape, slo: bool) -> Result<(), Error> {
    if shape.rate.is_some() && shape.pipeline > 1 {
        return Err(Error::Usage(
            "--rate paces single requests, one in flight per connection (as wrk2 does): drop \
             --pipeline, or drop --rate for a closed loop of pipelined batches"
                .into(),
        ));
    }
    if slo && shape.rate.is_some() {
        return Err(Error::Usage(
            "--slo searches for the highest rate that meets the objective, so it sets the rate \
             itself: drop --rate"
                .into(),
        ));
    }
    if slo && shape.pipeline > 1 {
        return Err(Error::Usage(
            "--slo probes with the open loop, which paces single requests: drop --pipeline".into(),
        ));
    }
    Ok(())
}

fn load(a: &LoadArgs) -> anyhow::Result<i32> {
    check_load_shape(&a.shape, false)?;
    let Target {
        addr: target,
        workload,
        http,
    } = parse_target(&a.target, a.shape.workload, a.expect_body.as_deref())?;
    if let Some(cpus) = &a.cpus {
        // Every thread of the client, the helpers too, so none of them runs beside the server.
        run::pin_self(cpus)?;
    }
    let stop = run::stop_on_signals()?;
    let client_cpus = match &a.cpus {
        Some(cpus) => cpus.len(),
        None => sys::allowed_cpus().map_or(1, |c| c.len()),
    };
    let threads = a
        .threads
        .unwrap_or(client_cpus)
        .clamp(1, a.shape.connections);
    let split = run::client_processes(
        a.shape.connections,
        threads,
        a.shape.client_processes,
        false,
    )?;
    if let Some(why) = split.reason.as_ref().filter(|_| !a.shape.quiet) {
        crate::errln!("note: {why}");
    }
    let config = LoadConfig {
        target,
        shape: Shape {
            workload,
            connections: a.shape.connections,
            duration: a.shape.duration,
            warmup: a.shape.warmup,
            payload: match workload {
                Workload::Echo => a.shape.payload,
                Workload::Http => 0,
            },
            pipeline: a.shape.pipeline,
            timeout: a.shape.timeout,
            rate: a.shape.rate,
            interval: a.shape.interval,
        },
        threads,
        http,
        count_syscalls: false,
        cpus: a.cpus.clone(),
        connect_timeout: crate::load::connect_timeout(a.shape.connections),
        processes: split.processes,
    };
    let env = Env::capture();
    if !a.shape.quiet && std::io::stdout().is_terminal() {
        crate::errln!(
            "driving {target} with {} connections on {} threads{}: {} warm-up + {} measured",
            config.shape.connections,
            config.threads,
            if config.processes > 1 {
                format!(" in {} processes", config.processes)
            } else {
                String::new()
            },
            humantime::format_duration(config.shape.warmup),
            humantime::format_duration(config.shape.duration)
        );
    }
    let line = ProgressLine::new(
        !a.shape.quiet && std::io::stdout().is_terminal(),
        &target.to_string(),
    );
    let outcome = run_load(&config, stop, &mut |edge| line.on_edge(&edge))?;
    line.finish();
    if outcome.connected == 0 {
        return Err(Error::Environment(format!(
            "cannot connect to {target}: no connection succeeded (is a server listening there?)"
        ))
        .into());
    }
    let interrupted = outcome.interrupted;
    let run = run::to_run(
        RunIdentity {
            model: None,
            threads: None,
            poller: None,
            repeat_index: 0,
            server_cpus: Vec::new(),
            work_us: 0,
            block_us: 0,
        },
        &config,
        outcome,
        None,
        interrupted.then(|| "interrupted by a signal before the window closed".to_string()),
        "--cpus",
    )?;
    let mut run = run;
    run.syscalls_unavailable =
        Some("bench load does not count the system calls of the server it drives".into());
    crate::out!("{}", table::render(std::slice::from_ref(&run)));
    crate::outln!(
        "{} requests in {:.2}s, {} errors{}; client CPU busy {:.0}%{}",
        run.requests,
        run.duration_s,
        run.errors + run.warmup_errors,
        table::kinds(&run.error_kinds, &run.warmup_error_kinds),
        run.client.busy_fraction * 100.0,
        if run.client.processes > 1 {
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
    let code = if interrupted {
        run::EXIT_INTERRUPTED
    } else if run.failure.is_some() || run.errors > 0 || run.warmup_errors > 0 {
        1
    } else {
        0
    };
    if let Some(path) = &a.json {
        let scenario = Scenario {
            command: "load".into(),
            models: Vec::new(),
            target: Some(a.target.clone()),
            workload: config.shape.workload.name().into(),
            connections: config.shape.connections,
            client_threads: config.threads,
            payload: config.shape.payload,
            pipeline: config.shape.pipeline,
            timeout_s: config.shape.timeout.map(|t| t.as_secs_f64()),
            rate: config.shape.rate,
            interval_s: config.shape.interval.as_secs_f64(),
            duration_s: config.shape.duration.as_secs_f64(),
            warmup_s: config.shape.warmup.as_secs_f64(),
            repeat: 1,
            server_threads: None,
            poller: None,
            server_cpus: Vec::new(),
            client_cpus: run.client_cpus.clone(),
            work_us: 0,
            block_us: 0,
            accounting: "off".into(),
            uring_options: None,
            idle_timeout_s: None,
            file: None,
            matrix: None,
            slo: Vec::new(),
        };
        let mut file = ResultFile::new(scenario, env);
        file.runs.push(run);
        file.write_atomic(path)?;
        crate::errln!("result written to {}", path.display());
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(target: &str) -> (SocketAddr, String, String) {
        let t = parse_target(target, None, None).unwrap();
        assert_eq!(t.workload, Workload::Http, "{target}");
        let r = t.http.unwrap();
        (t.addr, r.host, r.path)
    }

    #[test]
    fn targets_take_wrks_url_forms() {
        let (addr, host, path) = http("http://127.0.0.1:8080/plaintext");
        assert_eq!(addr.to_string(), "127.0.0.1:8080");
        assert_eq!(
            (host.as_str(), path.as_str()),
            ("127.0.0.1:8080", "/plaintext")
        );
        let (_, _, path) = http("http://127.0.0.1:8080");
        assert_eq!(path, "/");
        let (_, host, path) = http("http://127.0.0.1:8080?x=1");
        assert_eq!((host.as_str(), path.as_str()), ("127.0.0.1:8080", "/?x=1"));
        let (addr, host, _) = http("http://127.0.0.1/a");
        assert_eq!((addr.port(), host.as_str()), (80, "127.0.0.1"));
        let (addr, _, _) = http("http://[::1]:9/");
        assert!(addr.is_ipv6());

        let t = parse_target("127.0.0.1:7000", None, None).unwrap();
        assert_eq!(t.workload, Workload::Echo);
        assert!(t.http.is_none());
        let t = parse_target("127.0.0.1:7000", Some(Workload::Http), Some("hi")).unwrap();
        let r = t.http.unwrap();
        assert_eq!(
            (r.path.as_str(), r.expect_body),
            ("/plaintext", Some(b"hi".to_vec()))
        );

        for bad in ["http://127.0.0.1:1/a b", "http:///x", "ftp://h:1/"] {
            assert!(parse_target(bad, None, None).is_err(), "{bad}");
        }
    }
}
