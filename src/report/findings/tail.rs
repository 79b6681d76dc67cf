//! A tail out of proportion: a ranked model whose p99 is many times its own median, in every
//! repeat, while another model's at the same point is not. Some requests (in a closed loop,
//! some connections) waited far longer than the rest: a fairness failure that the median and
//! the throughput do not show. Where the cause of one model's tail is known and documented,
//! the finding names it.

use super::lead::Figures;
use crate::output::format::fmt_us;

/// A p99 at least this many times the p50, in every repeat, is a tail out of proportion.
const RATIO: f64 = 10.0;
/// ... and at least this many times the ratio of the best-proportioned model at the point.
const AGAINST_BEST: f64 = 3.0;

/// The documented causes, by model (the label's first word).
const CAUSES: &[(&str, &str)] = &[(
    "tokio",
    "In tokio this is its scheduler's doing, not the exhibit's: a worker runs the tasks that \
     I/O woke from its own queue of 256, moves half of it to the global queue when it \
     overflows, and polls the global queue only once every 2-127 tasks (tuned to about \
     200 µs) while its own queue keeps refilling, so under many busy connections the \
     overflowed ones wait; see DESIGN.md, \"tokio\".",
)];

/// The tail findings at one point (`at` its prefix), over the ranked models.
pub(super) fn tails(at: &str, figs: &[&Figures]) -> Vec<String> {
    // (model, median p50, median p99, median ratio, smallest ratio of any repeat, repeats).
    let ratios: Vec<(&str, f64, f64, f64, f64, usize)> = figs
        .iter()
        .filter(|f| f.ranked())
        .filter_map(|f| {
            let (p50, p99) = (f.p50?, f.p99?);
            (p50.median > 0.0 && p50.max > 0.0).then(|| {
                (
                    f.model.as_str(),
                    p50.median,
                    p99.median,
                    p99.median / p50.median,
                    p99.min / p50.max,
                    p99.n.min(p50.n),
                )
            })
        })
        .collect();
    let Some(best) = ratios.iter().min_by(|a, b| a.3.total_cmp(&b.3)) else {
        return Vec::new();
    };
    ratios
        .iter()
        .filter(|r| r.4 >= RATIO && r.3 >= AGAINST_BEST * best.3)
        .map(|&(model, p50, p99, ratio, least, n)| {
            let spread = if n > 1 {
                format!("at least {least:.0}x in every one of {n} repeats")
            } else {
                "one run: no spread of its own".to_string()
            };
            let cause = CAUSES
                .iter()
                .find(|(name, _)| model.split_whitespace().next() == Some(*name))
                .map_or(String::new(), |(_, why)| format!(" {why}"));
            format!(
                "{at}{model}'s tail is out of proportion: p99 {} is {ratio:.0}x its p50 {} \
                 ({spread}), where {}'s is {:.1}x: some requests \
                 waited far longer than the rest, which its median and throughput do not \
                 show.{cause}",
                fmt_us(p99),
                fmt_us(p50),
                best.0,
                best.3
            )
        })
        .collect()
}
