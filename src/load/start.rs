//! A common start for load generators on several hosts (`--start-at TIME`): an absolute
//! wall-clock time, RFC 3339, at which every segment's timeline starts, so that their warm-ups
//! and measured windows are the same stretch of time and their time series line up interval by
//! interval. Each segment turns it into a point on its own monotonic clock once, before it
//! connects; how late it actually started (its connections were not up in time) is measured
//! there and recorded.
//!
//! The hosts' clocks are taken as they are: keep them synchronised (NTP, chrony), as any
//! distributed load tool asks. A skew of a few milliseconds shifts a segment's window by as
//! much, against a window of seconds.

use std::fmt;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// An absolute wall-clock time, as `--start-at` gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StartAt(SystemTime);

impl StartAt {
    pub fn at(time: SystemTime) -> StartAt {
        StartAt(time)
    }

    pub fn time(&self) -> SystemTime {
        self.0
    }

    /// Seconds since the Unix epoch.
    pub fn unix_s(&self) -> f64 {
        unix_s(self.0)
    }

    /// The same moment on this process's monotonic clock (the one the load's timeline runs
    /// on), read against the wall clock now.
    pub fn instant(&self) -> Instant {
        let (now, wall) = (Instant::now(), SystemTime::now());
        match self.0.duration_since(wall) {
            Ok(ahead) => now + ahead,
            Err(behind) => now.checked_sub(behind.duration()).unwrap_or(now),
        }
    }
}

/// Seconds since the Unix epoch of `time` (negative before it).
pub fn unix_s(time: SystemTime) -> f64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

impl fmt::Display for StartAt {
    /// RFC 3339 in UTC, to the millisecond when it has a fraction: `2026-12-02T18:00:00Z`.
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let whole = self
            .0
            .duration_since(UNIX_EPOCH)
            .is_ok_and(|d| d.subsec_nanos() == 0);
        if whole {
            write!(f, "{}", humantime::format_rfc3339_seconds(self.0))
        } else {
            write!(f, "{}", humantime::format_rfc3339_millis(self.0))
        }
    }
}

/// In a file or on a pipe: RFC 3339 to the nanosecond.
impl serde::Serialize for StartAt {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_rfc3339_nanos(self.0))
    }
}

impl<'de> serde::Deserialize<'de> for StartAt {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<StartAt, D::Error> {
        let text = String::deserialize(d)?;
        parse_start_at(&text).map_err(serde::de::Error::custom)
    }
}

/// clap value parser for `--start-at`: RFC 3339, `Z` or a `+HH:MM`/`-HH:MM` offset, with or
/// without a fraction of a second (`2026-12-02T18:00:00Z`, `2026-12-02T19:00:00.5+01:00`).
pub fn parse_start_at(text: &str) -> Result<StartAt, String> {
    let bad = |why: &str| {
        format!(
            "`{text}` is not a time --start-at understands: {why} (write it as RFC 3339, like \
             2026-12-02T18:00:00Z; `date -u -d '+1 min' +%FT%TZ` prints one a minute ahead)"
        )
    };
    let text = text.trim();
    let (local, offset) = split_offset(text).ok_or_else(|| bad("it names no time zone"))?;
    let time = humantime::parse_rfc3339(&format!("{local}Z")).map_err(|e| bad(&e.to_string()))?;
    let time = if offset >= 0 {
        time.checked_sub(Duration::from_secs(offset as u64))
    } else {
        time.checked_add(Duration::from_secs(offset.unsigned_abs()))
    }
    .ok_or_else(|| bad("it is out of range"))?;
    Ok(StartAt(time))
}

/// The local part of an RFC 3339 time and its offset east of UTC in seconds; `None` when it
/// has no zone.
fn split_offset(text: &str) -> Option<(&str, i64)> {
    if let Some(local) = text.strip_suffix('Z').or_else(|| text.strip_suffix('z')) {
        return Some((local, 0));
    }
    let cut = text.len().checked_sub(6)?;
    let (local, zone) = (text.get(..cut)?, text.get(cut..)?);
    let sign = match zone.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (h, m) = zone[1..].split_once(':')?;
    let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60 && local.contains('T')).then_some((local, sign * (h * 3600 + m * 60)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_times_with_a_zone_are_read_as_utc() {
        let z = parse_start_at("2026-12-02T18:00:00Z").unwrap();
        assert_eq!(z.unix_s(), 1_796_234_400.0);
        assert_eq!(z.to_string(), "2026-12-02T18:00:00Z");
        let east = parse_start_at("2026-12-02T19:00:00+01:00").unwrap();
        assert_eq!(east, z);
        let west = parse_start_at("2026-12-02T12:30:00-05:30").unwrap();
        assert_eq!(west, z);
        let frac = parse_start_at("2026-12-02T18:00:00.250Z").unwrap();
        assert_eq!(frac.unix_s(), 1_796_234_400.25);
        assert_eq!(frac.to_string(), "2026-12-02T18:00:00.250Z");
    }

    #[test]
    fn a_time_without_a_zone_or_malformed_is_refused_with_the_form() {
        for bad in [
            "2026-12-02T18:00:00",
            "18:00",
            "2026-13-02T18:00:00Z",
            "+01:00",
            "",
        ] {
            let e = parse_start_at(bad).unwrap_err();
            assert!(e.contains("2026-12-02T18:00:00Z"), "{bad}: {e}");
        }
    }

    #[test]
    fn the_monotonic_instant_keeps_the_distance_from_now() {
        let ahead = StartAt::at(SystemTime::now() + Duration::from_secs(3));
        let left = ahead.instant().saturating_duration_since(Instant::now());
        assert!(left > Duration::from_millis(2_900) && left <= Duration::from_secs(3));
        let behind = StartAt::at(SystemTime::now() - Duration::from_secs(2));
        let ago = Instant::now().saturating_duration_since(behind.instant());
        assert!(ago >= Duration::from_millis(1_990), "{ago:?}");
    }
}
