//! The rounds of `bench run`: for each point, `--repeat` rounds of every model, interleaved
//! (A B C A B C), each run recorded into the result file as soon as it is measured.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use super::measure::Job;
use super::plan::{pin_self, PointPlace};
use super::{Plan, PlanPoint};
use crate::report::document;
use crate::result::warning::Warning;
use crate::result::{describe_point, ResultFile, Run};
use crate::Error;

/// One `bench run`: the result so far and where it goes.
pub(super) struct Session {
    pub(super) result: ResultFile,
    out: PathBuf,
    /// Warnings of every run (placement, a busy machine), said once in the summary.
    pub(super) common_warnings: Vec<Warning>,
    stop: &'static AtomicBool,
    /// Print a line per run as it starts.
    progress: bool,
    /// Runs started, for the progress lines.
    done: usize,
    /// The exit code so far: 1 once a run failed or had errors.
    pub(super) code: i32,
}

/// What stops the rounds early.
enum Halt {
    /// A signal: the runs so far are kept.
    Stopped,
    /// An error after which nothing more can be measured; reported after the summary.
    Fatal(anyhow::Error),
}

impl Session {
    pub(super) fn new(
        result: ResultFile,
        out: PathBuf,
        common_warnings: Vec<Warning>,
        stop: &'static AtomicBool,
        progress: bool,
    ) -> Self {
        Session {
            result,
            out,
            common_warnings,
            stop,
            progress,
            done: 0,
            code: 0,
        }
    }

    /// Runs every point; returns the error that ended the rounds early, if one did (an error
    /// writing the result file is returned at once).
    pub(super) fn run(
        &mut self,
        plan: &Plan,
        places: &[PointPlace],
    ) -> anyhow::Result<Option<anyhow::Error>> {
        let total: usize = plan
            .points
            .iter()
            .map(|p| p.opts.repeat * p.opts.subjects().len())
            .sum();
        for (point, at) in plan.points.iter().zip(places) {
            if !std::ptr::eq(at, &places[0]) {
                pin_self(&at.place.client)?;
            }
            if self.progress && !point.values.is_empty() {
                crate::errln!("point {}", describe_point(&point.values));
            }
            for repeat_index in 0..point.opts.repeat {
                for subject in point.opts.subjects() {
                    if self.stop.load(Ordering::Acquire) {
                        return Ok(None);
                    }
                    let job = Job {
                        subject,
                        repeat_index,
                        opts: &point.opts,
                        at,
                        stop: self.stop,
                        progress: self.progress,
                    };
                    self.announce(&job, total);
                    match self.one(point, &job) {
                        Ok(()) => {}
                        Err(Halt::Stopped) => return Ok(None),
                        Err(Halt::Fatal(e)) => return Ok(Some(e)),
                    }
                    self.result.write_atomic(&self.out)?;
                }
            }
        }
        Ok(None)
    }

    /// The line that says which run starts.
    fn announce(&mut self, job: &Job, total: usize) {
        self.done += 1;
        if !self.progress {
            return;
        }
        let opts = job.opts;
        crate::errln!(
            "[{}/{total}] {} (repeat {}/{}): {} warm-up + {} measured{}",
            self.done,
            job.subject,
            job.repeat_index + 1,
            opts.repeat,
            humantime::format_duration(opts.shape.warmup),
            humantime::format_duration(opts.shape.duration),
            if opts.slo.is_empty() {
                String::new()
            } else {
                " per probe".to_string()
            }
        );
    }

    /// One model, one repeat: its run (or an SLO search's probes and capacity), recorded.
    fn one(&mut self, point: &PlanPoint, job: &Job) -> Result<(), Halt> {
        let opts = job.opts;
        let step = if opts.slo.is_empty() {
            job.accounted(opts.shape.rate).map(|run| (vec![run], None))
        } else {
            job.slo_search().map(|(runs, found)| (runs, Some(found)))
        };
        let (runs, found) = match step {
            Ok(step) => step,
            // A signal during the server's start: the interrupted path.
            Err(_) if self.stop.load(Ordering::Acquire) => return Err(Halt::Stopped),
            // The server could not start: report what was measured before, then this.
            Err(e) => return Err(Halt::Fatal(e)),
        };
        for run in runs {
            self.record(point, run)?;
        }
        if let Some(mut found) = found {
            found.point = point.values.clone();
            self.result.slo.push(found);
        }
        Ok(())
    }

    /// One run into the result, with the point's values and the common warnings; a run
    /// without counts when `--accounting` was asked for ends the rounds.
    fn record(&mut self, point: &PlanPoint, mut run: Run) -> Result<(), Halt> {
        let opts = &point.opts;
        if opts.accounting_required {
            if let Some(why) = &run.syscalls_unavailable {
                return Err(Halt::Fatal(anyhow::Error::new(Error::Environment(
                    format!(
                        "--accounting {} was asked for, but system calls cannot be counted here: \
                     {why}",
                        opts.accounting.name()
                    ),
                ))));
            }
        }
        run.point = point.values.clone();
        run.warnings
            .splice(0..0, self.common_warnings.iter().cloned());
        if run.failure.is_some() || run.errors > 0 || run.warmup_errors > 0 {
            // A probe past the capacity may fail its objectives, not the run.
            if run.slo_probe.is_none() || run.failure.is_some() {
                self.code = 1;
            }
        }
        self.result.runs.push(run);
        Ok(())
    }

    /// Says where the result went, and writes the report beside it when asked.
    pub(super) fn finish(&self, report: bool) {
        if self.result.runs.is_empty() {
            crate::errln!("no run finished: nothing written");
            return;
        }
        let out = &self.out;
        crate::errln!("result written to {}", out.display());
        if report {
            // The measurements are safe in the result file: a report that cannot be drawn
            // is said, and `bench report` can try again.
            let dir = document::default_dir(out);
            match document::write(&[(out.display().to_string(), self.result.clone())], &dir) {
                Ok(w) => crate::errln!("report written to {}", w.html.display()),
                Err(e) => crate::errln!(
                    "warning: no report: {e:#} (the result file is complete; try `bench report \
                     {}`)",
                    out.display()
                ),
            }
        }
    }
}
