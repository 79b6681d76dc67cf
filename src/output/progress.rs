//! The live progress line of a long run, on a terminal only (indicatif draws it on stderr and
//! clears it when the pass ends, so the table and the result file are all that stays).

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::format::{fmt_rate, fmt_us};
use crate::load::{Edge, Tick};

/// One pass's progress line; does nothing when not shown.
pub struct ProgressLine {
    bar: Option<ProgressBar>,
}

impl ProgressLine {
    /// A line prefixed with `label` (the model), drawn only when `shown` (a terminal, and no
    /// `--quiet`).
    pub fn new(shown: bool, label: &str) -> ProgressLine {
        let bar = shown.then(|| {
            let bar = ProgressBar::with_draw_target(Some(1000), ProgressDrawTarget::stderr());
            // A fixed template: a bad one is a programming error caught by the tests, and
            // falls back on the default style rather than failing the run.
            if let Ok(style) = ProgressStyle::with_template("{prefix:>18} [{bar:24}] {msg}")
                .map(|s| s.progress_chars("=> "))
            {
                bar.set_style(style);
            }
            bar.set_prefix(label.to_string());
            bar
        });
        ProgressLine { bar }
    }

    /// Shows what the load generator reported; other events pass by.
    pub fn on_edge(&self, edge: &Edge) {
        if let (Some(bar), Edge::Tick(tick)) = (&self.bar, edge) {
            bar.set_position(fraction(tick.elapsed, tick.length));
            bar.set_message(message(tick));
        }
    }

    /// Removes the line.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Drop for ProgressLine {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Thousandths of the phase done.
fn fraction(elapsed: Duration, length: Duration) -> u64 {
    let f = elapsed.as_secs_f64() / length.as_secs_f64().max(1e-9);
    (f.clamp(0.0, 1.0) * 1000.0) as u64
}

/// `warm-up 0.5s/1s` or `2.5s/5s  152.3k req/s  p99 450µs  0 errors`.
pub fn message(tick: &Tick) -> String {
    let clock = format!(
        "{:.1}s/{}",
        tick.elapsed.as_secs_f64(),
        humantime::format_duration(tick.length)
    );
    if tick.warming_up {
        return format!("warm-up {clock}");
    }
    let p99 = tick.p99_us.map_or("-".to_string(), |us| fmt_us(us as f64));
    format!(
        "{clock}  {} req/s  p99 {p99}  {} errors",
        fmt_rate(tick.rps),
        tick.errors
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_like_the_table() {
        let mut tick = Tick {
            warming_up: true,
            elapsed: Duration::from_millis(500),
            length: Duration::from_secs(1),
            rps: 0.0,
            requests: 0,
            errors: 0,
            p99_us: None,
        };
        assert_eq!(message(&tick), "warm-up 0.5s/1s");
        tick.warming_up = false;
        tick.elapsed = Duration::from_millis(2500);
        tick.length = Duration::from_secs(5);
        tick.rps = 152_300.0;
        tick.p99_us = Some(450);
        assert_eq!(message(&tick), "2.5s/5s  152.3k req/s  p99 450µs  0 errors");
        assert_eq!(fraction(tick.elapsed, tick.length), 500);
        // A hidden line takes every event and draws nothing.
        let line = ProgressLine::new(false, "reactor");
        line.on_edge(&Edge::Tick(tick));
        line.finish();
    }
}
