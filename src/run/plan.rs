//! Where a point of `bench run` runs: the server's and the client's CPUs, the client's threads
//! and processes, the open-file limit, the poller each model gets, and the result file's
//! scenario made from the first point.

use std::path::PathBuf;

use anyhow::Context;

use super::{Plan, RunOptions};
use crate::load;
use crate::metrics::syscalls::Accounting;
use crate::models::{Model, Poller, SERVER_OWN_FDS};
use crate::result::warning::Warning;
use crate::result::Env;
use crate::result::Scenario;
use crate::units::CpuList;
use crate::{sys, Error};

/// Where the server and the client run.
pub(super) struct Placement {
    pub(super) server: CpuList,
    pub(super) client: CpuList,
    pub(super) warnings: Vec<Warning>,
}

pub(super) fn placement(opts: &RunOptions) -> anyhow::Result<Placement> {
    let allowed = sys::allowed_cpus().context("cannot read this process's CPUs")?;
    let mut warnings = Vec::new();
    let server = match &opts.server_cpus {
        Some(cpus) => cpus.clone(),
        None => CpuList::new(vec![allowed.first().copied().unwrap_or(0)]),
    };
    let client = match &opts.client_cpus {
        Some(cpus) => cpus.clone(),
        None => {
            let rest: Vec<usize> = allowed
                .iter()
                .copied()
                .filter(|c| !server.cpus().contains(c))
                .collect();
            if rest.is_empty() {
                server.clone()
            } else {
                CpuList::new(rest)
            }
        }
    };
    if client.cpus().iter().any(|c| server.cpus().contains(c)) {
        warnings.push(Warning::CpusOverlap {
            server: server.to_string(),
            client: client.to_string(),
        });
    }
    Ok(Placement {
        server,
        client,
        warnings,
    })
}

/// Where one point runs, and with how many client threads and processes.
pub(super) struct PointPlace {
    pub(super) place: Placement,
    pub(super) client_threads: usize,
    pub(super) client_processes: usize,
}

/// The result file's scenario: the first point's options.
pub(super) fn scenario_of(opts: &RunOptions, at: &PointPlace) -> Scenario {
    Scenario {
        models: opts
            .subjects()
            .iter()
            .map(|s| s.name().to_string())
            .collect(),
        servers: opts
            .servers
            .iter()
            .map(|s| (s.name.clone(), s.command.clone()))
            .collect(),
        repeat: opts.repeat,
        server_threads: opts.threads,
        poller: opts
            .models
            .iter()
            .find_map(|m| effective_poller(m, opts.poller))
            .map(|p| p.name().to_string()),
        server_cpus: at.place.server.cpus().to_vec(),
        client_cpus: at.place.client.cpus().to_vec(),
        work_us: opts.work_us,
        block_us: opts.block_us,
        accounting: opts.accounting.name().into(),
        uring_options: opts.uring,
        idle_timeout_s: Some(opts.idle_timeout)
            .filter(|t| !t.is_zero())
            .map(|t| t.as_secs_f64()),
        file: opts.scenario_file.clone(),
        slo: opts.slo.iter().map(ToString::to_string).collect(),
        ..Scenario::of_shape("run", &opts.shape, at.client_threads)
    }
}

/// Pins the calling process's threads (present and future) to `cpus`; the error lists the
/// CPUs this process may use.
pub fn pin_self(cpus: &CpuList) -> anyhow::Result<()> {
    sys::pin_process(cpus.cpus()).map_err(|e| {
        let allowed = sys::allowed_cpus()
            .map(|c| CpuList::new(c).to_string())
            .unwrap_or_else(|_| "?".into());
        Error::Environment(format!(
            "cannot pin to CPUs {cpus} ({e}): this process may use CPUs {allowed}; pick from those"
        ))
        .into()
    })
}

/// Raises the open-file limit to its hard maximum (inherited by the server and the client
/// processes) and says in how many processes the load generator must run for `connections`
/// (`requested`: `--client-processes`); fails with the fix when no split fits.
pub fn client_processes(
    connections: usize,
    threads: usize,
    requested: Option<usize>,
    counting: bool,
) -> anyhow::Result<load::ProcessPlan> {
    sys::raise_nofile_limit().context("cannot read the open-file limit")?;
    Ok(load::plan_processes(
        connections,
        threads,
        requested,
        counting,
    )?)
}

/// Fails with the fix when the server, one process, cannot hold `connections` under the
/// open-file limit (each is a descriptor, beside the server's own).
pub(super) fn server_descriptors(connections: usize) -> anyhow::Result<()> {
    let limit = sys::raise_nofile_limit().context("cannot read the open-file limit")?;
    let needed = (connections + SERVER_OWN_FDS) as u64;
    if limit < needed {
        anyhow::bail!(Error::Environment(format!(
            "the server is one process, and {connections} connections need about {needed} open \
             files in it, but a process may open only {limit} here (the hard limit): use at \
             most {} connections, or raise the limit (ulimit -Hn, or limits.conf)",
            limit.saturating_sub(SERVER_OWN_FDS as u64)
        )));
    }
    Ok(())
}

/// `results/run-<UTC time, to the millisecond>.json`, relative to the current folder.
pub fn default_out() -> PathBuf {
    let stamp = humantime::format_rfc3339_millis(std::time::SystemTime::now())
        .to_string()
        .replace([':', '-'], "");
    PathBuf::from("results").join(format!("run-{}.json", stamp.trim_end_matches('Z')))
}

/// The poller `model` runs with when `bench run` was given `requested`: a model that waits on
/// no poller ignores `--poller` (`app` checked that some model takes it).
pub fn effective_poller(model: &Model, requested: Option<Poller>) -> Option<Poller> {
    if model.pollers.is_empty() {
        None
    } else {
        model.poller(requested).ok().flatten()
    }
}

/// Where each point of `plan` runs: its models checked, its CPUs, client threads and
/// processes; the harness pinned to the first point's client CPUs. Also returns why the load
/// generator was split over processes, once per reason.
pub(super) fn places(plan: &Plan) -> anyhow::Result<(Vec<PointPlace>, Vec<String>)> {
    let mut places = Vec::with_capacity(plan.points.len());
    for point in &plan.points {
        for model in &point.opts.models {
            model.ensure_available()?;
        }
        let place = placement(&point.opts)?;
        // More threads than connections would idle: the count recorded is the count that ran.
        let client_threads = point
            .opts
            .client_threads
            .unwrap_or(place.client.len())
            .clamp(1, point.opts.shape.connections);
        places.push(PointPlace {
            place,
            client_threads,
            client_processes: 1,
        });
    }
    // The whole harness (its helper threads too) stays off the server's CPUs; each server
    // re-pins itself to the server CPUs.
    pin_self(&places[0].place.client)?;
    let mut reasons = Vec::new();
    for (point, at) in plan.points.iter().zip(&mut places) {
        let opts = &point.opts;
        server_descriptors(opts.shape.connections)?;
        let split = client_processes(
            opts.shape.connections,
            at.client_threads,
            opts.client_processes,
            opts.accounting != Accounting::Off,
        )?;
        at.client_processes = split.processes;
        if let Some(why) = split.reason.filter(|why| !reasons.contains(why)) {
            reasons.push(why);
        }
    }
    Ok((places, reasons))
}

/// The warnings of every run: the placements' (once each), and a machine busy at the start.
pub(super) fn common_warnings(places: &[PointPlace], env: &Env) -> Vec<Warning> {
    let mut common: Vec<Warning> = Vec::new();
    for p in places {
        for w in &p.place.warnings {
            if !common.contains(w) {
                common.push(w.clone());
            }
        }
    }
    if let Some([load, ..]) = env
        .loadavg_at_start
        .filter(|l| l[0] > 0.5 * env.cpus as f64)
    {
        common.push(Warning::MachineBusy {
            load,
            cpus: env.cpus,
        });
    }
    common
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::load::Shape;
    use crate::models::MODELS;
    use crate::protocol::Workload;

    fn model(name: &str) -> &'static Model {
        MODELS.iter().find(|m| m.name == name).unwrap()
    }

    fn opts(models: &[&str], workload: Workload) -> RunOptions {
        RunOptions {
            models: models.iter().map(|m| model(m)).collect(),
            servers: Vec::new(),
            shape: Shape {
                workload,
                connections: 50,
                duration: Duration::from_secs(5),
                warmup: Duration::from_secs(1),
                payload: 64,
                pipeline: 1,
                timeout: None,
                rate: None,
                interval: Duration::from_secs(1),
            },
            client_threads: None,
            client_processes: None,
            slo: Vec::new(),
            repeat: 3,
            threads: None,
            server_cpus: Some(CpuList::new(vec![0])),
            client_cpus: Some(CpuList::new(vec![1])),
            work_us: 0,
            block_us: 0,
            poller: None,
            uring: None,
            idle_timeout: Duration::ZERO,
            out: None,
            report: true,
            scenario_file: None,
            accounting: Accounting::Separate,
            accounting_required: false,
            quiet: true,
        }
    }

    #[test]
    fn separate_cpus_place_without_a_warning_and_shared_ones_warn() {
        let apart = placement(&opts(&["reactor"], Workload::Echo)).unwrap();
        assert_eq!(
            (apart.server.cpus(), apart.client.cpus()),
            (&[0][..], &[1][..])
        );
        assert!(apart.warnings.is_empty());
        let mut shared = opts(&["reactor"], Workload::Echo);
        shared.client_cpus = Some(CpuList::new(vec![0, 1]));
        let place = placement(&shared).unwrap();
        assert_eq!(place.warnings.len(), 1);
        assert!(
            place.warnings[0]
                .to_string()
                .starts_with("server CPUs 0 and client CPUs 0,1 overlap"),
            "{:?}",
            place.warnings
        );
    }

    #[test]
    fn the_scenario_records_the_first_points_options_as_run() {
        let at = |o: &RunOptions| PointPlace {
            place: placement(o).unwrap(),
            client_threads: 2,
            client_processes: 1,
        };
        let echo = opts(&["blocking", "reactor"], Workload::Echo);
        let scenario = scenario_of(&echo, &at(&echo));
        assert_eq!(scenario.command, "run");
        assert_eq!(scenario.models, ["blocking", "reactor"]);
        assert_eq!((scenario.payload, scenario.client_threads), (64, 2));
        assert_eq!(
            (scenario.server_cpus, scenario.client_cpus),
            (vec![0], vec![1])
        );
        // The poller of the first model that waits on one (epoll, Linux's default; the
        // reactor waits on none elsewhere); no idle timeout given: none.
        if cfg!(target_os = "linux") {
            assert_eq!(scenario.poller.as_deref(), Some("epoll"));
        }
        assert_eq!(scenario.idle_timeout_s, None);
        assert_eq!(scenario.accounting, "separate");

        // HTTP sends no echo payload; a model that waits on no poller records none.
        let mut http = opts(&["blocking"], Workload::Http);
        http.idle_timeout = Duration::from_secs(30);
        let scenario = scenario_of(&http, &at(&http));
        assert_eq!(scenario.payload, 0);
        assert_eq!(scenario.poller, None);
        assert_eq!(scenario.idle_timeout_s, Some(30.0));
    }

    #[test]
    fn the_default_result_file_is_under_results_named_by_utc_time() {
        let out = default_out();
        let name = out.file_name().unwrap().to_str().unwrap();
        assert_eq!(out.parent(), Some(std::path::Path::new("results")));
        // run-YYYYMMDDTHHMMSS.mmm.json
        assert!(
            name.starts_with("run-") && name.ends_with(".json"),
            "{name}"
        );
        assert_eq!(name.len(), "run-20261203T101500.123.json".len(), "{name}");
    }
}
