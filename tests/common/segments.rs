//! What a merge of a run's segments must be, checked on the files themselves: the merged
//! request count is the segments' sum, the merged histogram is the sum of the segments' own
//! tallies (the union of their samples), and an open loop's rate is the asked one.

use iomodels::metrics::histogram::{decode, new_histogram};
use serde_json::Value;

/// A time `secs` seconds ahead, RFC 3339 in UTC to the millisecond.
pub fn start_in(secs: f64) -> String {
    let at = std::time::SystemTime::now() + std::time::Duration::from_secs_f64(secs);
    humantime::format_rfc3339_millis(at).to_string()
}

/// Checks `merged` against `segments` (their result files), prints each segment's figures and
/// the merged ones, and returns the merged rate over the asked one.
#[track_caller]
pub fn check_merge(merged: &Value, segments: &[Value], asked: f64) -> f64 {
    let run = &merged["runs"][0];
    let mut union = new_histogram();
    let mut requests = 0;
    println!("segment  host        conns  requests    req/s    p50 µs   p99 µs  late s");
    for s in segments {
        let r = &s["runs"][0];
        let seg = &r["segment"];
        let tally = decode(seg["tally"]["histogram"].as_str().unwrap()).unwrap();
        union.add(&tally).unwrap();
        requests += r["requests"].as_u64().unwrap();
        assert_eq!(
            seg["tally"]["requests"], r["requests"],
            "a segment's run counts what its tally holds"
        );
        println!(
            "{:>7}  {:<10} {:>6} {:>9} {:>8.1} {:>9} {:>8} {:>7.4}",
            format!("{}/{}", seg["index"], seg["of"]),
            seg["host"].as_str().unwrap_or("-"),
            seg["connections"].as_u64().unwrap(),
            r["requests"].as_u64().unwrap(),
            r["throughput_rps"].as_f64().unwrap(),
            r["latency_us"]["p50"].as_f64().unwrap(),
            r["latency_us"]["p99"].as_f64().unwrap(),
            seg["late_s"].as_f64().unwrap()
        );
    }
    let rate = run["throughput_rps"].as_f64().unwrap();
    println!(
        "{:>7}  {:<10} {:>6} {:>9} {:>8.1} {:>9} {:>8}   (asked {asked} req/s: {:.2}%; p99 \
         uncorrected {} µs)",
        "merged",
        format!("{} segments", segments.len()),
        merged["scenario"]["connections"].as_u64().unwrap(),
        run["requests"].as_u64().unwrap(),
        rate,
        run["latency_us"]["p50"].as_f64().unwrap(),
        run["latency_us"]["p99"].as_f64().unwrap(),
        rate / asked * 100.0,
        run["latency_uncorrected_us"]["p99"]
    );
    assert_eq!(
        run["requests"].as_u64().unwrap(),
        requests,
        "the merged request count is the segments' sum"
    );
    assert_eq!(run["stalled_requests"], 0, "a healthy run stalls nothing");
    let merged_histogram = decode(run["histogram"].as_str().unwrap()).unwrap();
    assert_eq!(
        merged_histogram, union,
        "the merged histogram is the union of every segment's samples"
    );
    assert_eq!(merged_histogram.len(), requests);
    assert_eq!(
        run["client"]["per_process"].as_array().unwrap().len(),
        segments.len()
    );
    rate / asked
}
