//! The settings each command runs with, built from what the user typed: `bench run`'s
//! [`RunOptions`], `bench serve`'s [`ServeOptions`], `bench load`'s [`LoadConfig`]. The checks
//! across options (a poller the models cannot use, `--rate` with `--pipeline`, a target that
//! is no address) happen here, before anything starts: exit code 2.

use std::path::Path;
use std::time::Duration;

use super::target::parse_target;
pub use super::target::Target;
use super::{LoadArgs, LoadShape, RunArgs, ServeArgs};
use crate::load::{LoadConfig, Segment, Shape, StartAt};
use crate::metrics::syscalls::Accounting;
use crate::models::{Model, Poller, FD_SETSIZE, MODELS, SELECT_MAX_CONNECTIONS, SERVER_OWN_FDS};
use crate::protocol::Workload;
use crate::run::{self, RunOptions};
use crate::serve::ServeOptions;
use crate::{sys, Error};

/// `bench serve`'s options.
pub fn serve_options(a: ServeArgs) -> ServeOptions {
    ServeOptions {
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
    }
}

/// `bench run`'s options, checked; `notes`: say which models `--all` skips.
/// A result written into a `results/reference/` or `results/baseline/` folder is one that
/// documents and the CI gate quote: a build with uncommitted changes (`-dirty`) may not make
/// it, since nobody could rebuild the code it measured, unless `--allow-dirty`.
pub fn refuse_dirty_reference(out: &Path, commit: &str, allow: bool) -> anyhow::Result<()> {
    let parts: Vec<String> = out
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let kept = parts
        .windows(2)
        .any(|w| w[0] == "results" && (w[1] == "reference" || w[1] == "baseline"));
    if kept && commit.ends_with("-dirty") && !allow {
        return Err(Error::Usage(format!(
            "{} is a reference or baseline result, and this build has uncommitted changes \
             (commit {commit}): commit them and rebuild, or pass --allow-dirty",
            out.display()
        ))
        .into());
    }
    Ok(())
}

pub fn run_options(a: RunArgs, notes: bool) -> anyhow::Result<RunOptions> {
    let models = chosen_models(a.all, &a.model, notes);
    check_servers(&a.server)?;
    check_poller(&models, a.handler.poller, a.shape.connections)?;
    check_load_shape(&a.shape, !a.slo.is_empty())?;
    check_uring(&models, a.handler.uring_given())?;
    if let Some(out) = &a.out {
        refuse_dirty_reference(out, env!("IOMODELS_GIT_COMMIT"), a.allow_dirty)?;
    }
    Ok(RunOptions {
        models,
        servers: a.server.clone(),
        shape: shape_of(&a.shape, a.shape.workload.unwrap_or(Workload::Echo)),
        client_threads: a.client_threads,
        client_processes: a.shape.client_processes,
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
                Accounting::Separate
            } else {
                Accounting::Off
            }),
        accounting_required: a.accounting.is_some_and(|a| a != Accounting::Off),
        quiet: a.shape.quiet,
    })
}

/// The models of a run: every model available here (`--all`; `notes`: say which it skips), or
/// those named, each once, in the order first named.
fn chosen_models(all: bool, named: &[&'static Model], notes: bool) -> Vec<&'static Model> {
    let mut chosen: Vec<&'static Model> = Vec::new();
    if all {
        for m in MODELS {
            match (m.availability)() {
                Ok(()) => chosen.push(m),
                Err(why) if notes => crate::errln!("note: skipping {}: {why}", m.name),
                Err(_) => {}
            }
        }
    } else {
        for &m in named {
            if !chosen.iter().any(|c| c.name == m.name) {
                chosen.push(m);
            }
        }
    }
    chosen
}

/// Outside servers need Linux (their process tree is read from /proc) and names of their own.
fn check_servers(servers: &[crate::run::OutsideServer]) -> Result<(), Error> {
    if !servers.is_empty() && !cfg!(target_os = "linux") {
        return Err(Error::Environment(
            "--server needs Linux: an outside server's process tree is read from /proc".into(),
        ));
    }
    for (i, s) in servers.iter().enumerate() {
        if servers[..i].iter().any(|o| o.name == s.name) {
            return Err(Error::Usage(format!(
                "two servers are named `{}`: give each --server a name of its own",
                s.name
            )));
        }
    }
    Ok(())
}

/// The `--uring-*` options need a model that takes them.
fn check_uring(models: &[&'static Model], given: bool) -> Result<(), Error> {
    if given && !models.iter().any(|m| m.uring_options) {
        return Err(Error::Usage(
            "the --uring-* options apply to proactor-uring only, and this run has no \
             proactor-uring: add --model proactor-uring, or drop them"
                .into(),
        ));
    }
    Ok(())
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

/// `bench load`'s target, checked with the load's shape before anything starts.
pub fn load_target(a: &LoadArgs) -> Result<Target, Error> {
    check_load_shape(&a.shape, false)?;
    parse_target(&a.target, a.shape.workload, a.expect_body.as_deref())
}

/// `bench load`'s configuration: the client threads (default: one per client CPU, at most one
/// per connection; with `--segment I/N`, that many per segment) and the client processes (said
/// when the open-file limit asks for more than one).
pub fn load_config(a: &LoadArgs, target: Target) -> anyhow::Result<LoadConfig> {
    let client_cpus = match &a.cpus {
        Some(cpus) => cpus.len(),
        None => sys::allowed_cpus().map_or(1, |c| c.len()),
    };
    let of = a.segment.map_or(1, |s| s.of);
    let threads = a
        .threads
        .unwrap_or(client_cpus * of)
        .clamp(1, a.shape.connections);
    let processes = match a.segment {
        None => {
            let split = run::client_processes(
                a.shape.connections,
                threads,
                a.shape.client_processes,
                false,
            )?;
            if let Some(why) = split.reason.as_ref().filter(|_| !a.shape.quiet) {
                crate::errln!("note: {why}");
            }
            split.processes
        }
        Some(segment) => segment_fits(a, segment, threads)?,
    };
    if let Some(at) = a.start_at {
        start_in_reach(at, &a.shape)?;
    }
    Ok(LoadConfig {
        target: target.addr,
        shape: Shape {
            // HTTP sends no echo payload.
            payload: match target.workload {
                Workload::Http => 0,
                _ => a.shape.payload,
            },
            ..shape_of(&a.shape, target.workload)
        },
        threads,
        http: target.http,
        count_syscalls: false,
        cpus: a.cpus.clone(),
        connect_timeout: crate::load::connect_timeout(a.shape.connections),
        processes,
        segment: a.segment,
        start_at: a.start_at,
    })
}

/// A segment runs in one process: it needs a connection of its own at least, and its stripe
/// must fit under the open-file limit (more segments make the stripes smaller). Returns 1.
fn segment_fits(a: &LoadArgs, segment: Segment, threads: usize) -> anyhow::Result<usize> {
    let connections = a.shape.connections;
    if a.shape.client_processes.is_some_and(|p| p > 1) {
        anyhow::bail!(Error::Usage(
            "--segment runs in one process: drop --client-processes and give the run more \
             segments instead (--segment I/N with a larger N, one per process or host)"
                .into()
        ));
    }
    if segment.of > connections {
        anyhow::bail!(Error::Usage(format!(
            "--segment {segment}: {} segments need at least {} connections, one each, and the \
             run has {connections} (raise --connections or use fewer segments)",
            segment.of, segment.of
        )));
    }
    let stripe = connections.div_ceil(segment.of);
    let mine = threads.div_ceil(segment.of);
    let split = run::client_processes(stripe, mine, None, false)?;
    if split.processes > 1 {
        anyhow::bail!(Error::Environment(format!(
            "--segment {segment}: a stripe of about {stripe} connections does not fit in one \
             process here ({}): split the run into more segments",
            split.reason.unwrap_or_default()
        )));
    }
    Ok(1)
}

/// `--start-at` must leave the run something to measure, and be no further ahead than a day
/// (a further one is a typo more often than a plan).
fn start_in_reach(at: StartAt, shape: &LoadShape) -> Result<(), Error> {
    let now = std::time::SystemTime::now();
    let end = at.time() + shape.warmup + shape.duration;
    if end <= now {
        return Err(Error::Usage(format!(
            "--start-at {at} has passed, and the run it starts (warm-up and window) would be \
             over already: give a time ahead (`date -u -d '+1 min' +%FT%TZ`)"
        )));
    }
    if at.time() > now + Duration::from_secs(24 * 3600) {
        return Err(Error::Usage(format!(
            "--start-at {at} is more than a day ahead: is it the time you meant (RFC 3339, in \
             UTC with Z, or with its offset)?"
        )));
    }
    Ok(())
}

/// The load's shape as the command line gave it, with `workload`.
fn shape_of(a: &LoadShape, workload: Workload) -> Shape {
    Shape {
        workload,
        connections: a.connections,
        duration: a.duration,
        warmup: a.warmup,
        payload: a.payload,
        pipeline: a.pipeline,
        timeout: a.timeout,
        rate: a.rate,
        interval: a.interval,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dirty_build_may_not_write_a_reference_or_baseline_result() {
        let dirty = "0123abc-dirty";
        for kept in ["results/reference/echo.json", "x/results/baseline/ci.json"] {
            let e = refuse_dirty_reference(Path::new(kept), dirty, false).unwrap_err();
            assert!(e.to_string().contains("--allow-dirty"), "{e}");
            refuse_dirty_reference(Path::new(kept), dirty, true).unwrap();
            refuse_dirty_reference(Path::new(kept), "0123abc", false).unwrap();
        }
        refuse_dirty_reference(Path::new("results/run-1.json"), dirty, false).unwrap();
    }

    /// `bench serve`'s options through their command line and back.
    fn round_trip(opts: &ServeOptions) -> ServeOptions {
        use clap::Parser;
        let args = opts.to_args();
        let cli = crate::cli::Cli::try_parse_from(std::iter::once("bench".into()).chain(args))
            .unwrap_or_else(|e| panic!("{e}"));
        match cli.command {
            crate::cli::Command::Serve(a) => serve_options(a),
            other => panic!("not serve: {other:?}"),
        }
    }

    #[test]
    fn serve_options_round_trip_through_their_command_line() {
        use std::time::Duration;

        use crate::models::{Poller, UringListener, UringOptions, MODELS};
        use crate::units::CpuList;
        let model = |name: &str| MODELS.iter().find(|m| m.name == name).unwrap();
        let plain = ServeOptions {
            model: model("reactor"),
            workload: Workload::Echo,
            listen: "127.0.0.1:0".parse().unwrap(),
            threads: None,
            cpus: None,
            work_us: 0,
            block_us: 0,
            poller: None,
            uring: UringOptions::default(),
            uring_given: false,
            message_size: None,
            idle_timeout: Duration::from_secs(60),
            duration: None,
            stdin_control: false,
        };
        let every = ServeOptions {
            model: model("proactor-uring"),
            workload: Workload::Http,
            listen: "127.0.0.1:7000".parse().unwrap(),
            threads: Some(3),
            // CPU 0 is on every machine; the list is checked against this one.
            cpus: Some(CpuList::new(vec![0])),
            work_us: 5,
            block_us: 7,
            poller: Some(Poller::Poll),
            uring: UringOptions {
                sqpoll: true,
                zc: true,
                listener: UringListener::Shared,
            },
            uring_given: true,
            message_size: Some(4096),
            idle_timeout: Duration::from_millis(1500),
            duration: Some(Duration::from_secs(30)),
            stdin_control: true,
        };
        // Given, but all defaults: still given.
        let defaults_given = ServeOptions {
            uring_given: true,
            idle_timeout: Duration::ZERO,
            ..plain.clone()
        };
        for opts in [plain, every, defaults_given] {
            let back = round_trip(&opts);
            assert_eq!(back.to_args(), opts.to_args());
            assert_eq!(back.model.name, opts.model.name);
            assert_eq!(
                (back.workload, back.listen, back.threads, back.cpus.clone()),
                (opts.workload, opts.listen, opts.threads, opts.cpus.clone())
            );
            assert_eq!(
                (back.work_us, back.block_us, back.poller, back.message_size),
                (opts.work_us, opts.block_us, opts.poller, opts.message_size)
            );
            assert_eq!(
                (back.uring, back.uring_given, back.idle_timeout),
                (opts.uring, opts.uring_given, opts.idle_timeout)
            );
            assert_eq!(
                (back.duration, back.stdin_control),
                (opts.duration, opts.stdin_control)
            );
        }
    }
}
