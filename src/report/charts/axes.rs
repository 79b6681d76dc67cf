//! Axes and numbers: each axis's range and ticks (linear, logarithmic or named), and how
//! tick values and figures are written.

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::types::RangedCoordf64;

use crate::output::format::round_sig;

/// One axis: its range and ticks in data units, drawn on a log10 scale when `log`.
pub(super) struct Axis {
    pub(super) log: bool,
    pub(super) lo: f64,
    pub(super) hi: f64,
    pub(super) ticks: Vec<f64>,
    pub(super) fmt: Fmt,
    pub(super) desc: String,
}

/// How an axis writes its tick values.
#[derive(Clone)]
pub(super) enum Fmt {
    /// 950, 15k, 1.2M.
    Count,
    /// 350µs, 1.2ms, 2s.
    Micros,
    /// 2.5, 10.
    Plain,
    /// The spectrum's x, log10(1/(1-p)): 90%, 99.9%.
    Percentile,
    /// Names at 0, 1, 2...
    Names(Vec<String>),
}

impl Axis {
    /// A linear axis from zero to a round number above `max`.
    pub(super) fn from_zero(max: f64, fmt: Fmt, desc: &str) -> Self {
        let max = if max.is_finite() && max > 0.0 {
            max * 1.06
        } else {
            1.0
        };
        let step = nice_step(max / 5.0);
        let n = (max / step).ceil() as usize;
        Axis {
            log: false,
            lo: 0.0,
            hi: n as f64 * step,
            ticks: (0..=n).map(|i| i as f64 * step).collect(),
            fmt,
            desc: desc.into(),
        }
    }

    /// A linear axis over `lo..hi` and a little more, between round numbers (not below zero
    /// when the values are not).
    pub(super) fn around(lo: f64, hi: f64, fmt: Fmt, desc: &str) -> Self {
        let pad = if hi > lo {
            (hi - lo) * 0.05
        } else {
            lo.abs().max(1.0) * 0.1
        };
        let step = nice_step((hi - lo + 2.0 * pad) / 5.0);
        let mut first = ((lo - pad) / step).floor();
        if lo >= 0.0 {
            first = first.max(0.0);
        }
        let last = ((hi + pad) / step).ceil();
        Axis {
            log: false,
            lo: first * step,
            hi: last * step,
            ticks: (first as i64..=last as i64)
                .map(|k| k as f64 * step)
                .collect(),
            fmt,
            desc: desc.into(),
        }
    }

    /// A log axis between values of the 1-2-5 series around `lo..hi`.
    pub(super) fn log(lo: f64, hi: f64, fmt: Fmt, desc: &str) -> Self {
        let lo = if lo.is_finite() && lo > 0.0 { lo } else { 1.0 };
        let hi = if hi.is_finite() && hi > lo {
            hi
        } else {
            lo * 2.0
        };
        let series = |k: i32| [1.0, 2.0, 5.0].map(|m| m * 10f64.powi(k));
        let decade = |v: f64| v.log10().floor() as i32;
        let below = (decade(lo) - 1..=decade(lo))
            .flat_map(series)
            .filter(|v| *v <= lo * 1.0001)
            .fold(f64::NAN, f64::max);
        let above = (decade(hi)..=decade(hi) + 1)
            .flat_map(series)
            .filter(|v| *v >= hi * 0.9999)
            .fold(f64::NAN, f64::min);
        let decades = (above / below).log10();
        let within = |v: &f64| *v >= below * 0.9999 && *v <= above * 1.0001;
        let ticks: Vec<f64> = if decades > 2.5 {
            let powers: Vec<f64> = (decade(below)..=decade(above) + 1)
                .map(|k| 10f64.powi(k))
                .filter(within)
                .collect();
            // The ends too, unless they sit close to a power of ten.
            let far = |v: f64| powers.iter().all(|p| (v / p).log10().abs() > 0.25);
            let mut t: Vec<f64> = [below, above].into_iter().filter(|v| far(*v)).collect();
            t.extend(powers);
            t.sort_by(f64::total_cmp);
            t
        } else if decades >= 0.9 {
            (decade(below)..=decade(above))
                .flat_map(series)
                .filter(within)
                .collect()
        } else {
            (decade(below)..=decade(above))
                .flat_map(|k| (1..10).map(move |m| f64::from(m) * 10f64.powi(k)))
                .filter(within)
                .collect()
        };
        Axis {
            log: true,
            lo: below,
            hi: above,
            ticks,
            fmt,
            desc: format!("{desc} (log scale)"),
        }
    }

    /// An axis through the given values (a sweep's), logarithmic when they are positive and
    /// span more than a factor of 20.
    pub(super) fn of_values(values: &[f64], fmt: Fmt, desc: &str) -> Self {
        let (lo, hi) = extent(values.iter().copied());
        let mut ticks = values.to_vec();
        ticks.sort_by(f64::total_cmp);
        ticks.dedup();
        let log = lo > 0.0 && hi / lo > 20.0;
        if ticks.len() > 12 {
            return if log {
                let mut a = Axis::log(lo, hi, fmt, desc);
                a.desc = desc.into();
                a
            } else {
                Axis::from_zero(hi, fmt, desc)
            };
        }
        let (lo, hi) = if log {
            (lo / 1.25, hi * 1.25)
        } else if hi > lo {
            let pad = (hi - lo) * 0.05;
            (lo - pad, hi + pad)
        } else {
            (lo - 1.0, hi + 1.0)
        };
        Axis {
            log,
            lo,
            hi,
            ticks,
            fmt,
            desc: if log {
                format!("{desc} (log scale)")
            } else {
                desc.into()
            },
        }
    }

    /// Named positions 0, 1, 2...
    pub(super) fn names(names: Vec<String>, desc: &str) -> Self {
        Axis {
            log: false,
            lo: -0.5,
            hi: names.len() as f64 - 0.5,
            ticks: (0..names.len()).map(|i| i as f64).collect(),
            fmt: Fmt::Names(names),
            desc: desc.into(),
        }
    }

    /// Where a value lies on the drawn (linear) coordinate.
    pub(super) fn at(&self, v: f64) -> f64 {
        if self.log {
            v.max(1e-12).log10()
        } else {
            v
        }
    }

    pub(super) fn spec(&self) -> Ticked {
        Ticked {
            linear: (self.at(self.lo)..self.at(self.hi)).into(),
            ticks: self.ticks.iter().map(|t| self.at(*t)).collect(),
        }
    }

    /// A tick's label, from its drawn coordinate.
    pub(super) fn label(&self, at: f64) -> String {
        let v = if self.log { 10f64.powf(at) } else { at };
        self.fmt.show(v)
    }
}

/// An axis as plotters draws it: linear (a log axis is drawn in log10 units), with the
/// axis's ticks and no lighter grid. (plotters' own `WithKeyPoints` over `f64` cannot take a
/// label formatter.)
pub(super) struct Ticked {
    linear: RangedCoordf64,
    ticks: Vec<f64>,
}

impl Ranged for Ticked {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.linear.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.linear.range()
    }
}

impl Fmt {
    fn show(&self, v: f64) -> String {
        match self {
            Fmt::Count => fmt_count(v),
            Fmt::Micros => fmt_micros(v),
            Fmt::Plain => fmt_plain(v),
            Fmt::Percentile => fmt_percentile(v),
            Fmt::Names(names) => names
                .get(v.round().max(0.0) as usize)
                .cloned()
                .unwrap_or_default(),
        }
    }
}

/// 1, 2, 2.5 or 5 times a power of ten, at least `raw`.
fn nice_step(raw: f64) -> f64 {
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let nice = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .find(|n| f <= n * 1.0001)
        .unwrap_or(10.0);
    nice * mag
}

/// Rounds to three significant digits, trailing zeros dropped: 1.25, 150, 0.058.
pub(super) fn fmt_plain(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return "0".into();
    }
    let digits = (2 - v.abs().log10().floor() as i32).clamp(0, 6) as usize;
    let s = format!("{v:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// 950, 15k, 1.2M.
pub(super) fn fmt_count(v: f64) -> String {
    // Three significant digits before picking the unit, so 999.7 reads 1ms.
    let v = round_sig(v, 3);
    match v.abs() {
        a if a >= 1e9 => format!("{}G", fmt_plain(v / 1e9)),
        a if a >= 1e6 => format!("{}M", fmt_plain(v / 1e6)),
        a if a >= 1e3 => format!("{}k", fmt_plain(v / 1e3)),
        _ => fmt_plain(v),
    }
}

/// 350µs, 1.2ms, 2s.
pub(super) fn fmt_micros(v: f64) -> String {
    // Three significant digits before picking the unit, so 999.7 reads 1k.
    let v = round_sig(v, 3);
    match v.abs() {
        a if a >= 1e6 => format!("{}s", fmt_plain(v / 1e6)),
        a if a >= 1e3 => format!("{}ms", fmt_plain(v / 1e3)),
        _ => format!("{}µs", fmt_plain(v)),
    }
}

/// The spectrum's x, log10(1/(1-p)), as a percentile: 0.301 is 50%, 3 is 99.9%.
fn fmt_percentile(x: f64) -> String {
    let digits = (x.round() as i32 - 2).clamp(0, 6) as usize;
    let p = 100.0 * (1.0 - 10f64.powf(-x));
    let s = format!("{p:.digits$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    format!("{s}%")
}

/// The low and high ends of some values (1 and 10 when there are none).
pub(super) fn extent(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if lo > hi {
        (1.0, 10.0)
    } else {
        (lo, hi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_like_a_person_writes_them() {
        assert_eq!(fmt_count(150_000.0), "150k");
        assert_eq!(fmt_count(165_758.0), "166k");
        assert_eq!(fmt_count(999.7), "1k");
        assert_eq!(fmt_count(1_250_000.0), "1.25M");
        assert_eq!(fmt_count(0.0), "0");
        assert_eq!(fmt_micros(376.0), "376µs");
        assert_eq!(fmt_micros(1200.0), "1.2ms");
        assert_eq!(fmt_micros(2_000_000.0), "2s");
        assert_eq!(fmt_plain(0.0583), "0.0583");
        assert_eq!(fmt_plain(0.1 * 3.0), "0.3");
        assert_eq!(fmt_percentile(2f64.log10()), "50%");
        assert_eq!(fmt_percentile(1.0), "90%");
        assert_eq!(fmt_percentile(3.0), "99.9%");
        assert_eq!(fmt_percentile(5.0), "99.999%");
    }

    #[test]
    fn log_axis_has_ticks_inside_a_narrow_range() {
        // No power of ten lies between 350 and 700: the ticks must not be empty.
        let axis = Axis::log(350.0, 700.0, Fmt::Micros, "p99");
        assert!(axis.lo <= 350.0 && axis.hi >= 700.0);
        assert!(axis.ticks.len() >= 3, "{:?}", axis.ticks);
        let wide = Axis::log(92.0, 10_759.0, Fmt::Micros, "p99");
        assert!(wide.ticks.contains(&100.0) && wide.ticks.contains(&10_000.0));
    }

    #[test]
    fn sweep_axis_turns_logarithmic_past_twenty_fold() {
        assert!(Axis::of_values(&[1.0, 10.0, 100.0], Fmt::Count, "connections").log);
        assert!(!Axis::of_values(&[10.0, 50.0, 100.0], Fmt::Count, "connections").log);
        assert!(!Axis::of_values(&[0.0, 20.0, 200.0], Fmt::Count, "work_us").log);
    }
}
