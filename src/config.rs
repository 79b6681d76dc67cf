//! Values typed on the command line, parsed and checked before anything starts.
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
                cpus.extend(lo..=hi);
            }
            None => cpus.push(part.parse().map_err(|_| bad())?),
        }
    }
    let max = crate::sys::max_cpus();
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

#[cfg(test)]
mod tests {
    use super::*;

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
