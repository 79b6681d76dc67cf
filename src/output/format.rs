//! How figures are written for a person: rates, times, sizes, significant digits, a run's
//! label. Shared by the table, the findings, the charts, the progress line and
//! `bench compare`.

use crate::result::Run;

/// A run's row label: the model, with its poller when not the default (`reactor (poll)`).
pub fn label(run: &Run) -> String {
    let model = run.model.as_deref().unwrap_or("target");
    match run.poller.as_deref() {
        Some(p) if p != crate::models::Poller::default().name() => format!("{model} ({p})"),
        _ => model.to_string(),
    }
}

/// `v` rounded to `digits` significant digits (0 and non-finite values give 0).
pub fn round_sig(v: f64, digits: i32) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return 0.0;
    }
    let e = digits - 1 - v.abs().log10().floor() as i32;
    // Divide by a whole power of ten rather than multiply by a fraction of one, so that 81,700
    // comes back as 81700.0 and not 81699.99999999999.
    if e < 0 {
        let unit = 10f64.powi(-e);
        (v / unit).round() * unit
    } else {
        let scale = 10f64.powi(e);
        (v * scale).round() / scale
    }
}

pub fn fmt_us(us: f64) -> String {
    if us >= 1_000_000.0 {
        format!("{:.2}s", us / 1e6)
    } else if us >= 1000.0 {
        format!("{:.2}ms", us / 1e3)
    } else {
        format!("{us:.0}µs")
    }
}

pub fn fmt_rate(rps: f64) -> String {
    if rps >= 10_000.0 {
        format!("{:.1}k", rps / 1e3)
    } else {
        format!("{rps:.0}")
    }
}

pub fn fmt_bytes(b: f64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    if b >= 1024.0 * MIB {
        format!("{:.2}GiB", b / (1024.0 * MIB))
    } else {
        format!("{:.1}MiB", b / MIB)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_sig_keeps_three_digits() {
        assert_eq!(round_sig(81_653.5, 3), 81_700.0);
        assert_eq!(round_sig(1_234.0, 3), 1_230.0);
        assert_eq!(round_sig(-1_234.0, 3), -1_230.0);
        assert_eq!(round_sig(0.0, 3), 0.0);
        assert_eq!(round_sig(f64::NAN, 3), 0.0);
        assert_eq!(round_sig(99_960.0, 3), 100_000.0);
        assert_eq!(round_sig(0.05814, 3), 0.0581);
    }

    #[test]
    fn units() {
        assert_eq!(fmt_us(52.0), "52µs");
        assert_eq!(fmt_us(1234.0), "1.23ms");
        assert_eq!(fmt_rate(123_456.0), "123.5k");
        assert_eq!(fmt_bytes(3.0 * 1024.0 * 1024.0), "3.0MiB");
    }
}
