//! `bench run --slo`: each model's capacity at a latency objective, found by a closed-loop
//! probe for the ceiling and open-loop probes bisecting below it (DESIGN.md, "Capacity at an
//! objective").

use std::sync::atomic::Ordering;

use super::measure::Job;
use crate::metrics::histogram::decode;
use crate::output::format;
use crate::result::warning::Warning;
use crate::result::{Run, SloCapacity, SloProbe};

/// The most open-loop probes of one SLO search.
const SLO_MAX_PROBES: usize = 8;
/// The search stops once the bracket is this narrow (missed / met).
const SLO_PRECISION: f64 = 1.05;
/// A probe must answer at least this share of its rate.
const SLO_MIN_ACHIEVED: f64 = 0.99;

impl Job<'_> {
    /// The highest rate that meets every objective: a closed-loop probe bounds the search
    /// from above (no open loop answers faster than the closed loop's ceiling), then open-loop
    /// probes halve the bracket [met, missed] until it is narrower than 5% or 8 probes have
    /// run. A probe meets the objectives when it ran clean (no failure, no error), answered
    /// at least 99% of its rate, and each objective's percentile of the corrected latency is
    /// within its limit. Every probe is returned, in order.
    /// Probe 0: closed loop, the ceiling the search starts under.
    fn closed_loop_probe(&self, probe: SloProbe) -> anyhow::Result<Run> {
        let mut ceiling = self.accounted(None)?;
        ceiling.slo_probe = Some(probe);
        if self.progress {
            crate::errln!(
                "      probe 0 (closed loop): {} req/s",
                format::fmt_rate(ceiling.throughput_rps)
            );
        }
        Ok(ceiling)
    }

    pub(super) fn slo_search(&self) -> anyhow::Result<(Vec<Run>, SloCapacity)> {
        let objectives: Vec<String> = self.opts.slo.iter().map(ToString::to_string).collect();
        let probe_of = |index, met, missed| SloProbe {
            objectives: objectives.clone(),
            index,
            met,
            missed,
        };
        let mut runs = Vec::new();
        let ceiling = self.closed_loop_probe(probe_of(
            0,
            false,
            Some("the closed-loop probe sets no rate: it bounds the search".into()),
        ))?;
        let closed = ceiling.throughput_rps;
        let clean = ceiling.failure.is_none() && ceiling.errors + ceiling.warmup_errors == 0;
        runs.push(ceiling);
        let mut found = SloCapacity {
            model: self.subject.name().to_string(),
            repeat_index: self.repeat_index,
            point: serde_json::Map::new(),
            objectives: objectives.clone(),
            capacity_rps: None,
            missed_rps: None,
            closed_loop_rps: closed,
            probes: 1,
            warnings: Vec::new(),
        };
        if !clean || closed <= 0.0 {
            return Ok((runs, found));
        }
        let (mut met, mut missed): (Option<f64>, f64) = (None, closed);
        for index in 1..=SLO_MAX_PROBES {
            if self.stop.load(Ordering::Acquire) {
                break;
            }
            let low = met.unwrap_or(0.0);
            if met.is_some_and(|m| missed / m <= SLO_PRECISION) {
                break;
            }
            // Rounded to 3 significant digits: rates people can type again.
            let rate = format::round_sig((low + missed) / 2.0, 3);
            let mut run = self.accounted(Some(rate))?;
            let why = self.misses(&run, rate);
            if self.progress {
                crate::errln!(
                    "      probe {index}: {} req/s asked, {} answered, p99 {}: {}",
                    format::fmt_rate(rate),
                    format::fmt_rate(run.throughput_rps),
                    format::fmt_us(run.latency_us.p99),
                    why.as_deref().unwrap_or("met")
                );
            }
            run.slo_probe = Some(probe_of(index, why.is_none(), why.clone()));
            found.probes += 1;
            let failed = run.failure.is_some();
            runs.push(run);
            if failed {
                break;
            }
            match why {
                None => met = Some(rate),
                Some(_) => {
                    missed = rate;
                    found.missed_rps = Some(rate);
                }
            }
        }
        found.capacity_rps = met;
        found.warnings.extend(client_bound(&runs, &found));
        Ok((runs, found))
    }

    /// Why `run` at `rate` misses the objectives; `None` when it meets them all.
    fn misses(&self, run: &Run, rate: f64) -> Option<String> {
        if let Some(failure) = &run.failure {
            return Some(format!("failed: {failure}"));
        }
        if run.errors + run.warmup_errors > 0 {
            return Some(format!("{} errors", run.errors + run.warmup_errors));
        }
        if run.throughput_rps < SLO_MIN_ACHIEVED * rate {
            return Some(format!(
                "answered {:.1}% of the rate",
                run.throughput_rps / rate * 100.0
            ));
        }
        let histogram = match decode(&run.histogram) {
            Ok(h) => h,
            Err(e) => return Some(format!("its histogram cannot be read: {e:#}")),
        };
        let over: Vec<String> = self
            .opts
            .slo
            .iter()
            .filter_map(|slo| {
                let us = if histogram.is_empty() {
                    f64::INFINITY
                } else {
                    histogram.value_at_quantile(slo.percentile / 100.0) as f64
                };
                (us > slo.limit.as_secs_f64() * 1e6).then(|| {
                    format!(
                        "p{} {} > {}",
                        slo.percentile,
                        format::fmt_us(us),
                        humantime::format_duration(slo.limit)
                    )
                })
            })
            .collect();
        (!over.is_empty()).then(|| over.join(", "))
    }
}

/// A probe at the bracket's edges whose client was saturated: the client, not the server, may
/// have set the capacity.
fn client_bound(runs: &[Run], found: &SloCapacity) -> Option<Warning> {
    let edge = |rate: Option<f64>| {
        runs.iter()
            .find(|r| r.rate.is_some() && r.rate == rate && r.client.saturated)
    };
    let r = edge(found.missed_rps).or_else(|| edge(found.capacity_rps))?;
    Some(Warning::ClientBound {
        busy_percent: r.client.busy_fraction * 100.0,
        rate: format::fmt_rate(r.rate.unwrap_or_default()),
    })
}
