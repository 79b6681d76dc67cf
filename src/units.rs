//! Units and values typed on the command line (CPU lists, durations, sizes, counts, rates,
//! latency objectives), parsed and checked before anything starts.
//!
//! Parsers here back clap's `value_parser`s, so a bad value is reported by clap with the option
//! named and exit code 2, before any server or connection exists.

use std::fmt;
use std::time::Duration;

/// A set of CPU numbers, written like `0`, `0-3`, `0,2`, `0-1,4`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpuList(Vec<usize>);

impl CpuList {
    pub fn new(mut cpus: Vec<usize>) -> Self {
        cpus.sort_unstable();
        cpus.dedup();
        CpuList(cpus)
    }

    pub fn cpus(&self) -> &[usize] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for CpuList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(usize::to_string).collect();
        f.write_str(&parts.join(","))
    }
}

/// Parses a CPU list; the message names the accepted forms.
pub fn parse_cpu_list(text: &str) -> Result<CpuList, String> {
    let hint = "write CPUs like 0, 0-3 or 0,2";
    let max = crate::sys::max_cpus();
    let mut cpus = Vec::new();
    for part in text.split(',') {
        let part = part.trim();
        let bad = || format!("`{part}` is not a CPU number or range: {hint}");
        match part.split_once('-') {
            Some((lo, hi)) => {
                let lo: usize = lo.trim().parse().map_err(|_| bad())?;
                let hi: usize = hi.trim().parse().map_err(|_| bad())?;
                if lo > hi {
                    return Err(format!("CPU range `{part}` runs backwards: {hint}"));
                }
                // Listed up to its first CPU that does not exist (refused below, as before):
                // `0-99999999999` whole would be an allocation that aborts the process.
                cpus.extend(lo..=hi.min(lo.max(max)));
            }
            None => cpus.push(part.parse().map_err(|_| bad())?),
        }
    }
    if let Some(&cpu) = cpus.iter().find(|&&c| c >= max) {
        return Err(format!(
            "CPU {cpu} does not exist here (this machine has CPUs 0-{}): {hint}",
            max - 1
        ));
    }
    Ok(CpuList::new(cpus))
}

/// Parses a duration such as `10s`, `500ms`, `2m` (humantime's syntax). A bare number is
/// refused: `10` could mean seconds or milliseconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|err| {
        format!("`{text}` is not a duration ({err}): write it with a unit, like 10s, 500ms or 2m")
    })
}

/// Parses a duration that must be longer than zero (a measured window, a run).
pub fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    if d.is_zero() {
        return Err(format!(
            "`{text}` is zero: give a duration longer than zero, like 10s"
        ));
    }
    Ok(d)
}

/// Parses a count that must be at least 1 (connections, threads).
pub fn parse_count(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("`{text}` is not a whole number of at least 1")),
    }
}

/// Parses a byte count with an optional binary suffix: `64`, `4k`, `1m` (KiB, MiB).
pub fn parse_size(text: &str) -> Result<usize, String> {
    let t = text.trim().to_ascii_lowercase();
    let (digits, mult) = match t.trim_end_matches(['b', 'i']) {
        s if s.ends_with('k') => (&s[..s.len() - 1], 1024),
        s if s.ends_with('m') => (&s[..s.len() - 1], 1024 * 1024),
        s => (s, 1),
    };
    digits
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .filter(|&n| n > 0)
        .ok_or_else(|| {
            format!("`{text}` is not a positive size in bytes: write it like 64, 4k or 1m")
        })
}

/// The highest `--rate` taken: far beyond what one machine's loopback can answer.
pub const MAX_RATE: f64 = 10_000_000.0;

/// Parses a request rate per second: `1000`, `2500.5`, `20k`, `1.5M` (decimal suffixes).
pub fn parse_rate(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let (digits, mult) = match t {
        s if s.ends_with(['k', 'K']) => (&s[..s.len() - 1], 1e3),
        s if s.ends_with('M') => (&s[..s.len() - 1], 1e6),
        s => (s, 1.0),
    };
    match digits.parse::<f64>().map(|r| r * mult) {
        Ok(r) if r.is_finite() && r > 0.0 && r <= MAX_RATE => Ok(r),
        _ => Err(format!(
            "`{text}` is not a rate in requests per second above 0 and at most 10M: write it \
             like 1000, 20k or 1.5M"
        )),
    }
}

/// A latency objective: a percentile of the corrected latency at or under a limit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Slo {
    /// The percentile, 0-100 (99.9 for `p999`).
    pub percentile: f64,
    pub limit: Duration,
}

impl Slo {
    /// The percentile as the result file's latency keys name it: p50, p99, p999, p9999.
    pub fn key(&self) -> String {
        format!("p{}", self.percentile).replace('.', "")
    }
}

impl fmt::Display for Slo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "p{}<={}",
            self.percentile,
            humantime::format_duration(self.limit)
        )
    }
}

/// Parses an objective like `p99=2ms`, `p99.9=10ms`, `p999=10ms` (99.9), `p50=500us`.
pub fn parse_slo(text: &str) -> Result<Slo, String> {
    let hint = "write it like p99=2ms, p99.9=10ms or p50=500us";
    let Some((name, limit)) = text.trim().split_once('=') else {
        return Err(format!("`{text}` is not an objective: {hint}"));
    };
    let Some(digits) = name.trim().strip_prefix(['p', 'P']) else {
        return Err(format!("`{name}` is not a percentile: {hint}"));
    };
    let percentile = match digits {
        "999" => 99.9,
        "9999" => 99.99,
        "99999" => 99.999,
        d => d.parse::<f64>().unwrap_or(f64::NAN),
    };
    if !(percentile > 0.0 && percentile < 100.0) {
        return Err(format!(
            "`{name}` is not a percentile between p0 and p100: {hint}"
        ));
    }
    let limit = parse_positive_duration(limit.trim()).map_err(|e| format!("{e} ({hint})"))?;
    Ok(Slo { percentile, limit })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates() {
        assert_eq!(parse_rate("1000").unwrap(), 1000.0);
        assert_eq!(parse_rate("20k").unwrap(), 20_000.0);
        assert_eq!(parse_rate("1.5M").unwrap(), 1_500_000.0);
        assert_eq!(parse_rate("0.5").unwrap(), 0.5);
        for bad in ["0", "-5", "fast", "1e99", "NaN", "inf", ""] {
            assert!(parse_rate(bad).unwrap_err().contains("20k"), "{bad}");
        }
    }

    #[test]
    fn objectives() {
        let s = parse_slo("p99=2ms").unwrap();
        assert_eq!((s.percentile, s.limit), (99.0, Duration::from_millis(2)));
        assert_eq!(s.key(), "p99");
        assert_eq!(s.to_string(), "p99<=2ms");
        assert_eq!(parse_slo("p99.9=10ms").unwrap().key(), "p999");
        assert_eq!(parse_slo("p999=10ms").unwrap().percentile, 99.9);
        assert_eq!(
            parse_slo("p50=500us").unwrap().limit,
            Duration::from_micros(500)
        );
        for bad in [
            "p99", "99=2ms", "p100=1ms", "p0=1ms", "px=1ms", "p99=2", "p99=0ms",
        ] {
            assert!(parse_slo(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0").unwrap().cpus(), &[0]);
        assert_eq!(parse_cpu_list("1,0").unwrap().cpus(), &[0, 1]);
        assert_eq!(parse_cpu_list("0-1").unwrap().cpus(), &[0, 1]);
        assert!(parse_cpu_list("1-0").unwrap_err().contains("backwards"));
        assert!(parse_cpu_list("x").unwrap_err().contains("0-3"));
        assert!(parse_cpu_list("").is_err());
        assert!(parse_cpu_list("100000")
            .unwrap_err()
            .contains("does not exist"));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("10").unwrap_err().contains("with a unit"));
        assert!(parse_duration("fast").is_err());
    }

    #[test]
    fn positive_values() {
        assert!(parse_positive_duration("0s")
            .unwrap_err()
            .contains("longer than zero"));
        assert_eq!(
            parse_positive_duration("1s").unwrap(),
            Duration::from_secs(1)
        );
        assert_eq!(parse_count("3").unwrap(), 3);
        assert!(parse_count("0").is_err());
        assert!(parse_count("-1").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64").unwrap(), 64);
        assert_eq!(parse_size("4k").unwrap(), 4096);
        assert_eq!(parse_size("1MiB").unwrap(), 1 << 20);
        assert!(parse_size("0").is_err());
        assert!(parse_size("lots").is_err());
    }
}
