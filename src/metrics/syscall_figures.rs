//! The system-call figures of a run (`syscalls`, and `client.syscalls` for the load
//! generator's own): totals over the measured window, and per request of the pass that
//! counted them.
//!
//! The wire format is the schema's `syscalls` object: the keys in this order, `per_request`
//! (and each `by_name_per_request` value) null when no request completed, and the keys the
//! schema leaves optional absent when a file has none (files written before they existed).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::metrics::syscalls::SyscallCounts;

/// How the server's calls are counted (`syscalls.method`).
pub const SERVER_METHOD: &str = "perf-tracepoint: raw_syscalls:sys_enter and \
     syscalls:sys_enter_<name>, every server thread from its first instruction (inherit, \
     enable-on-exec), read at the measured window's edges";

/// How the load generator's calls are counted (`client.syscalls.method`).
pub const CLIENT_METHOD: &str =
    "perf-tracepoint: each load thread's own counters, read at the measured window's edges";

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SyscallFigures {
    /// Every call made over the window.
    pub total: u64,
    /// `total` per request, to four places; null when no request completed.
    pub per_request: Option<f64>,
    /// The calls made at least once, by name.
    pub by_name: BTreeMap<String, u64>,
    /// `by_name` per request, to four places (each null when no request completed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by_name_per_request: Option<BTreeMap<String, Option<f64>>>,
    /// The requests of the pass that counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<u64>,
    /// How they were counted ([`SERVER_METHOD`], [`CLIENT_METHOD`]).
    pub method: String,
    /// `same` (the timed pass) or `separate` (a pass of its own).
    pub pass: String,
    /// The length of the window they were counted over (a pass of its own that only counts
    /// is shorter than the timed one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_s: Option<f64>,
}

impl SyscallFigures {
    /// `counts` as the result file holds them: totals, and per request of the pass that
    /// counted (`requests` of it), with no window length yet.
    pub fn new(counts: &SyscallCounts, requests: u64, pass: &str, method: &str) -> Self {
        let per = |n: u64| (requests > 0).then(|| round(n as f64 / requests as f64, 4));
        let by_name: BTreeMap<String, u64> = counts
            .by_name
            .iter()
            .filter(|(_, &n)| n > 0)
            .map(|(k, &n)| (k.to_string(), n))
            .collect();
        let per_name = by_name.iter().map(|(k, &n)| (k.clone(), per(n))).collect();
        SyscallFigures {
            total: counts.total,
            per_request: per(counts.total),
            by_name,
            by_name_per_request: Some(per_name),
            requests: Some(requests),
            method: method.to_string(),
            pass: pass.to_string(),
            window_s: None,
        }
    }

    /// These figures with the length of the window they were counted over.
    pub fn with_window(mut self, window_s: f64) -> Self {
        self.window_s = Some(window_s);
        self
    }

    /// Calls of `name` per request; `None` when not counted, or no request completed.
    pub fn per_request_of(&self, name: &str) -> Option<f64> {
        *self.by_name_per_request.as_ref()?.get(name)?
    }
}

/// `v` to `places` decimal places (as `run` rounds every figure it records).
fn round(v: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (v * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wire format: the keys in the order files have always had them, nulls where no
    /// request completed.
    #[test]
    fn writes_the_keys_in_the_schema_order() {
        let counts = SyscallCounts {
            total: 30,
            by_name: [
                ("read".into(), 20),
                ("write".into(), 10),
                ("poll".into(), 0),
            ]
            .into(),
        };
        let f = SyscallFigures::new(&counts, 3, "same", CLIENT_METHOD).with_window(1.5);
        let text = serde_json::to_string(&f).unwrap();
        assert_eq!(
            text,
            format!(
                "{{\"total\":30,\"per_request\":10.0,\"by_name\":{{\"read\":20,\"write\":10}},\
                 \"by_name_per_request\":{{\"read\":6.6667,\"write\":3.3333}},\"requests\":3,\
                 \"method\":\"{CLIENT_METHOD}\",\"pass\":\"same\",\"window_s\":1.5}}"
            )
        );
        assert_eq!(f.per_request_of("read"), Some(6.6667));
        let none = SyscallFigures::new(&counts, 0, "separate", CLIENT_METHOD);
        let text = serde_json::to_string(&none).unwrap();
        assert!(text.contains("\"per_request\":null"), "{text}");
        assert!(text.contains("{\"read\":null,\"write\":null}"), "{text}");
        assert!(!text.contains("window_s"), "{text}");
        assert_eq!(
            SERVER_METHOD,
            "perf-tracepoint: raw_syscalls:sys_enter and syscalls:sys_enter_<name>, every server thread from its first instruction (inherit, enable-on-exec), read at the measured window's edges"
        );
    }

    /// Every fixture's figures, read typed and written back, are the text they were.
    #[test]
    fn fixtures_round_trip_byte_for_byte() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let file: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            for run in file["runs"].as_array().unwrap() {
                for figures in [&run["syscalls"], &run["client"]["syscalls"]] {
                    if figures.is_null() {
                        continue;
                    }
                    let typed: SyscallFigures = serde_json::from_value(figures.clone()).unwrap();
                    assert_eq!(
                        serde_json::to_string_pretty(&typed).unwrap(),
                        serde_json::to_string_pretty(figures).unwrap(),
                        "{}",
                        path.display()
                    );
                    seen += 1;
                }
            }
        }
        assert!(seen > 0, "no fixture has system-call figures");
    }
}
