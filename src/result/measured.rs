//! From a measured outcome to the result file's run: the load generator's figures, the
//! warnings they call for, and the server's costs per request (`bench run` and `bench load`).

use std::time::Duration;

use super::warning::{Shortfall, Warning, LATE_S};
use super::{OpenLoopFigures, PacingError, Run, ServerCosts};
use crate::load::{self, LoadConfig, LoadOutcome};
use crate::metrics::histogram::{encode, LatencySummary};
use crate::metrics::process::ProcessCounters;

/// The server's costs over a window of `requests`.
pub fn costs(window: &ProcessCounters, requests: u64) -> ServerCosts {
    let per = |v: f64| (requests > 0).then(|| round(v / requests as f64, 3));
    ServerCosts {
        cpu_user_s: round(window.cpu_user_s, 3),
        cpu_sys_s: round(window.cpu_sys_s, 3),
        cpu_us_per_request: per(window.cpu_s() * 1e6),
        voluntary_ctx_switches: window.voluntary_ctx_switches,
        involuntary_ctx_switches: window.involuntary_ctx_switches,
        ctx_switches_per_request: window.ctx_switches().and_then(|n| per(n as f64)),
        peak_rss_bytes: window.peak_rss_bytes,
        threads: window.threads,
        connections_per_loop: None,
    }
}

/// `v` rounded to `places` decimals.
pub fn round(v: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (v * f).round() / f
}

/// What identifies a run beyond the load configuration.
pub struct RunIdentity {
    pub model: Option<String>,
    pub threads: Option<usize>,
    /// The readiness poller the model waited with; `None` for a model that waits on none.
    pub poller: Option<String>,
    pub repeat_index: usize,
    pub server_cpus: Vec<usize>,
    pub work_us: u64,
    pub block_us: u64,
}

/// Above this p99 pacing error (µs) the load generator says it could not keep its schedule.
const PACING_WARN_US: f64 = 250.0;

/// The open-loop figures of a run, and the warnings they call for: the rate not reached, and
/// why (the client, or the server), and a client that sent late.
fn open_loop_figures(
    open: &load::OpenLoop,
    rate: f64,
    achieved: f64,
    window: Duration,
    client: &load::ClientCost,
    connections: usize,
    warnings: &mut Vec<Warning>,
) -> OpenLoopFigures {
    let q = |p: f64| {
        if open.pacing.is_empty() {
            0.0
        } else {
            open.pacing.value_at_quantile(p) as f64
        }
    };
    let pacing = PacingError {
        p50: q(0.5),
        p99: q(0.99),
        max: if open.pacing.is_empty() {
            0.0
        } else {
            open.pacing.max() as f64
        },
        samples: open.pacing.len(),
    };
    if pacing.p99 > PACING_WARN_US {
        warnings.push(Warning::SentLate {
            p99_us: pacing.p99,
            max_us: pacing.max,
        });
    }
    if achieved < 0.99 * rate {
        let why = if client.saturated {
            Shortfall::ClientBusy {
                busy_percent: client.busy_fraction * 100.0,
            }
        } else if open.unsent > 0 {
            Shortfall::Unsent {
                unsent: open.unsent,
                connections,
            }
        } else {
            Shortfall::ServerSlow
        };
        warnings.push(Warning::RateMissed {
            achieved,
            rate,
            why,
        });
    }
    OpenLoopFigures {
        requested_rps: rate,
        achieved_rps: round(achieved, 1),
        sent_rps: round(open.sent as f64 / window.as_secs_f64().max(1e-9), 1),
        unsent_requests: open.unsent,
        pacing_error_us: pacing,
    }
}

/// Whether the client was saturated, and the warning that says so. In an open loop a thread
/// that always has a request due or an answer to read never sleeps, so its CPU reads busy long
/// before it falls behind; its schedule says whether it did: the client is saturated when it
/// was busy and also sent late.
fn client_warnings(outcome: &mut LoadOutcome, client_cpus_flag: &str) -> Vec<Warning> {
    if let Some(open) = &outcome.open_loop {
        let late =
            !open.pacing.is_empty() && open.pacing.value_at_quantile(0.99) as f64 > PACING_WARN_US;
        outcome.client.saturated &= late;
    }
    if !outcome.client.saturated {
        return Vec::new();
    }
    vec![Warning::ClientSaturated {
        busy_percent: outcome.client.busy_fraction * 100.0,
        open_loop: outcome.open_loop.is_some(),
        flag: client_cpus_flag.into(),
    }]
}

/// How the failure of a run whose server fell silent begins ([`stalled`]).
pub const STALLED: &str = "the server stopped answering:";

/// Whether a run failed only because its server fell silent with requests waiting: its
/// figures are then whole, and what it served is the measure of what it starved.
pub fn failed_only_by_stalling(run: &Run) -> bool {
    run.failure
        .as_deref()
        .is_some_and(|f| f.starts_with(STALLED) && !f.contains("; "))
}

/// The run's failure: a server silent at the end, with requests waiting, stalled; those
/// requests are errors of their own kind (`unanswered`) and the run failed, whatever else was
/// measured (`failure`, said after it).
fn stalled(outcome: &mut LoadOutcome, failure: Option<String>) -> Option<String> {
    let Some(silent) = outcome.stalled_for() else {
        return failure;
    };
    *outcome.errors.entry("unanswered".into()).or_default() += outcome.unfinished;
    let stall = format!(
        "{STALLED} nothing answered in the last {:.1} s of the window while {} requests \
         waited (the time series shows when)",
        silent.as_secs_f64(),
        outcome.unfinished
    );
    Some(match failure {
        Some(other) => format!("{stall}; {other}"),
        None => stall,
    })
}

/// Builds a result-file run from a load outcome (shared by `bench run` and `bench load`).
pub fn to_run(
    id: RunIdentity,
    config: &LoadConfig,
    mut outcome: LoadOutcome,
    server: Option<ServerCosts>,
    failure: Option<String>,
    client_cpus_flag: &str,
) -> anyhow::Result<Run> {
    let mut warnings = client_warnings(&mut outcome, client_cpus_flag);
    if outcome.starved_connections > 0 && outcome.requests > 0 {
        warnings.push(Warning::Starved {
            starved: outcome.starved_connections,
            connections: config.shape.connections,
        });
    }
    if outcome.requests == 0 && failure.is_none() {
        warnings.push(Warning::NoRequest);
    }
    let open_loop = match (&outcome.open_loop, config.shape.rate) {
        (Some(open), Some(rate)) => Some(open_loop_figures(
            open,
            rate,
            outcome.throughput_rps(),
            outcome.window,
            &outcome.client,
            config.shape.connections,
            &mut warnings,
        )),
        _ => None,
    };
    for (kind, text) in &outcome.first_errors {
        warnings.push(Warning::FirstError {
            kind: kind.clone(),
            text: text.clone(),
        });
    }
    if let Some(seg) = outcome.segment.as_ref().filter(|s| s.late_s > LATE_S) {
        warnings.push(Warning::StartedLate {
            segment: format!("{}/{}", seg.index, seg.of),
            late_s: seg.late_s,
            warmup_s: config.shape.warmup.as_secs_f64(),
        });
    }
    let failure = stalled(&mut outcome, failure);
    let window_s = outcome.window.as_secs_f64();
    let errors = outcome.error_count();
    let warmup_errors: u64 = outcome.warmup_errors.values().sum();
    if warmup_errors > 0 {
        warnings.push(Warning::WarmupErrors {
            count: warmup_errors,
            kinds: format!("{:?}", outcome.warmup_errors),
        });
    }
    Ok(Run {
        model: id.model,
        command: None,
        workload: config.shape.workload.name().into(),
        connections: config.shape.connections,
        payload: config.shape.payload,
        pipeline: config.shape.pipeline,
        rate: config.shape.rate,
        threads: id.threads,
        poller: id.poller,
        client_threads: outcome.threads,
        repeat_index: id.repeat_index,
        point: serde_json::Map::new(),
        work_us: id.work_us,
        block_us: id.block_us,
        server_cpus: id.server_cpus,
        client_cpus: config
            .cpus
            .as_ref()
            .map(|c| c.cpus().to_vec())
            .unwrap_or_default(),
        duration_s: round(window_s, 3),
        warmup_s: config.shape.warmup.as_secs_f64(),
        requests: outcome.requests,
        errors,
        error_kinds: outcome.errors.clone(),
        warmup_errors,
        warmup_error_kinds: outcome.warmup_errors.clone(),
        throughput_rps: round(outcome.throughput_rps(), 1),
        throughput_mibps: round(outcome.throughput_mibps(), 3),
        latency_us: outcome.latency(),
        latency_uncorrected_us: outcome
            .open_loop
            .as_ref()
            .map(|o| LatencySummary::of(&o.uncorrected)),
        histogram: encode(&outcome.histogram)?,
        histogram_uncorrected: match &outcome.open_loop {
            Some(o) => Some(encode(&o.uncorrected)?),
            None => None,
        },
        open_loop,
        slo_probe: None,
        timeseries: outcome.timeseries,
        server,
        client: outcome.client,
        syscalls: None,
        syscalls_unavailable: Some("not counted".into()),
        connections_established: outcome.connected,
        unfinished_requests: outcome.unfinished,
        stalled_requests: outcome.stalled,
        starved_connections: outcome.starved_connections,
        io_uring: None,
        failure,
        warnings,
        segment: outcome.segment,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::histogram::{new_histogram, record};

    fn client(busy: f64, saturated: bool) -> load::ClientCost {
        load::ClientCost {
            cpu_user_s: 0.5,
            cpu_sys_s: 0.5,
            busy_fraction: busy,
            saturated,
            syscalls: None,
            processes: 1,
            per_process: Vec::new(),
        }
    }

    /// An open loop whose free connections sent `pacing_us` late, with `unsent` requests never
    /// sent.
    fn open(pacing_us: &[u64], sent: u64, unsent: u64) -> load::OpenLoop {
        let mut pacing = new_histogram();
        for &us in pacing_us {
            record(&mut pacing, us);
        }
        load::OpenLoop {
            uncorrected: new_histogram(),
            pacing,
            sent,
            unsent,
        }
    }

    #[test]
    fn costs_are_per_request_and_rounded() {
        let window = ProcessCounters {
            cpu_user_s: 0.123_44,
            cpu_sys_s: 0.2,
            voluntary_ctx_switches: Some(30),
            involuntary_ctx_switches: Some(10),
            peak_rss_bytes: 4 << 20,
            rss_bytes: 3 << 20,
            threads: 2,
        };
        let c = costs(&window, 4000);
        assert_eq!((c.cpu_user_s, c.cpu_sys_s), (0.123, 0.2));
        // 323,440 µs over 4,000 requests; 40 switches over 4,000.
        assert_eq!(c.cpu_us_per_request, Some(80.86));
        assert_eq!(c.ctx_switches_per_request, Some(0.01));
        assert_eq!((c.peak_rss_bytes, c.threads), (4 << 20, 2));
        // No request: no figure per request, not a division by zero.
        let none = costs(&window, 0);
        assert_eq!(
            (none.cpu_us_per_request, none.ctx_switches_per_request),
            (None, None)
        );
    }

    #[test]
    fn an_open_loop_on_schedule_warns_of_nothing() {
        let mut warnings = Vec::new();
        let window = Duration::from_secs(2);
        let f = open_loop_figures(
            &open(&[5, 10, 20], 20_000, 0),
            10_000.0,
            9_950.0,
            window,
            &client(0.3, false),
            50,
            &mut warnings,
        );
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(
            (f.requested_rps, f.achieved_rps, f.sent_rps),
            (10_000.0, 9_950.0, 10_000.0)
        );
        assert_eq!((f.unsent_requests, f.pacing_error_us.samples), (0, 3));
    }

    #[test]
    fn a_missed_rate_says_why_client_first_then_unsent_then_the_server() {
        let window = Duration::from_secs(1);
        let why = |client: &load::ClientCost, unsent: u64| {
            let mut warnings = Vec::new();
            open_loop_figures(
                &open(&[5], 8_000, unsent),
                10_000.0,
                8_000.0,
                window,
                client,
                50,
                &mut warnings,
            );
            match warnings.as_slice() {
                [Warning::RateMissed {
                    achieved,
                    rate,
                    why,
                }] => {
                    assert_eq!((*achieved, *rate), (8_000.0, 10_000.0));
                    why.clone()
                }
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(
            why(&client(0.97, true), 5),
            Shortfall::ClientBusy { busy_percent: 97.0 }
        );
        assert_eq!(
            why(&client(0.3, false), 5),
            Shortfall::Unsent {
                unsent: 5,
                connections: 50
            }
        );
        assert_eq!(why(&client(0.3, false), 0), Shortfall::ServerSlow);
    }

    #[test]
    fn a_client_that_sent_late_is_said() {
        let mut warnings = Vec::new();
        open_loop_figures(
            &open(&[400, 500, 900], 10_000, 0),
            10_000.0,
            10_000.0,
            Duration::from_secs(1),
            &client(0.5, false),
            50,
            &mut warnings,
        );
        assert!(
            matches!(warnings.as_slice(), [Warning::SentLate { max_us, .. }] if *max_us >= 900.0),
            "{warnings:?}"
        );
    }
}
