//! One plotted value per chart kind held against the figure of the result file it draws (the
//! drawing tests in tests/charts.rs check the files, not what they show): a bar's length, a
//! line's point.

use super::chart::{Chart, Panel};
use super::charts_of;
use super::style::Colors;
use crate::result::{ResultFile, Run};

fn fixture(name: &str) -> ResultFile {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/fixtures/{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn chart(file: &ResultFile, stem: &str) -> Chart {
    let colors = Colors::new(std::slice::from_ref(file));
    charts_of(file, &colors)
        .unwrap()
        .into_iter()
        .find(|c| c.stem == stem)
        .unwrap_or_else(|| panic!("no {stem} chart"))
}

/// The value of bar `row` in panel `panel` (its segments stacked).
fn bar(c: &Chart, panel: usize, row: &str) -> f64 {
    let Panel::Bars(p) = &c.panels[panel] else {
        panic!("{}: panel {panel} is not bars", c.stem)
    };
    let r = p.rows.iter().find(|r| r.name == row).unwrap();
    r.segments.iter().map(|s| s.0).sum()
}

/// The points of line `name` in panel `panel`.
fn points(c: &Chart, panel: usize, name: &str) -> Vec<(f64, f64)> {
    let Panel::Lines(p) = &c.panels[panel] else {
        panic!("{}: panel {panel} is not lines", c.stem)
    };
    let l = p.lines.iter().find(|l| l.name == name).unwrap();
    l.points.iter().map(|p| (p.0, p.1)).collect()
}

fn runs<'a>(file: &'a ResultFile, model: &str) -> Vec<&'a Run> {
    file.runs
        .iter()
        .filter(|r| r.model.as_deref() == Some(model))
        .collect()
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * b.abs().max(1e-12)
}

#[test]
fn throughput_bar_is_the_median_of_the_repeats() {
    let f = fixture("closed-loop");
    let c = chart(&f, "throughput");
    // blocking: 97,647 and 118,071 req/s, median 107,859.
    assert_eq!(bar(&c, 0, "blocking"), (97_647.0 + 118_071.0) / 2.0);
}

#[test]
fn mechanism_bar_is_the_system_calls_per_request() {
    let f = fixture("closed-loop");
    let c = chart(&f, "mechanism");
    let per: Vec<f64> = runs(&f, "reactor")
        .iter()
        .map(|r| r.syscalls.as_ref().unwrap().per_request.unwrap())
        .collect();
    let median = (per[0] + per[1]) / 2.0;
    let drawn = bar(&c, 0, "reactor");
    assert!(close(drawn, median, 0.01), "drawn {drawn}, figures {per:?}");
}

#[test]
fn spectrum_at_the_99th_percentile_is_the_runs_p99() {
    let f = fixture("open-loop");
    let c = chart(&f, "latency-spectrum");
    let p99 = runs(&f, "reactor")[0].latency_us.p99;
    // x = 2 is the 99th percentile (1 - 10^-x).
    let (_, y) = points(&c, 0, "reactor")
        .into_iter()
        .find(|(x, _)| (x - 2.0).abs() < 1e-9)
        .unwrap();
    assert!(close(y, p99, 0.01), "drawn {y} µs, p99 {p99} µs");
}

#[test]
fn sweep_point_is_the_median_at_that_value() {
    let f = fixture("sweep");
    let c = chart(&f, "sweep-throughput");
    let at10: Vec<f64> = runs(&f, "proactor-uring")
        .iter()
        .filter(|r| r.point.get("connections") == Some(&10.into()))
        .map(|r| r.throughput_rps)
        .collect();
    let drawn = points(&c, 0, "proactor-uring");
    let (_, y) = drawn.iter().find(|(x, _)| *x == 10.0).unwrap();
    let mut sorted = at10.clone();
    sorted.sort_by(f64::total_cmp);
    let median = crate::metrics::stats::median(sorted.iter().copied()).unwrap();
    assert_eq!(*y, median, "{drawn:?} vs {at10:?}");
}

#[test]
fn latency_vs_throughput_point_is_a_probes_figures() {
    let f = fixture("slo");
    let c = chart(&f, "latency-vs-throughput");
    let drawn = points(&c, 0, "reactor");
    let probe = f
        .runs
        .iter()
        .find(|r| r.slo_probe.as_ref().is_some_and(|p| p.index > 0))
        .unwrap();
    assert!(
        drawn
            .iter()
            .any(|(x, y)| *x == probe.throughput_rps && *y == probe.latency_us.p99),
        "({}, {}) not among {drawn:?}",
        probe.throughput_rps,
        probe.latency_us.p99
    );
}

#[test]
fn timeseries_point_is_the_intervals_rate() {
    let f = fixture("open-loop");
    let c = chart(&f, "timeseries");
    let run = runs(&f, "multi-reactor")[0];
    let first = &run.timeseries[0];
    let drawn = points(&c, 0, "multi-reactor");
    assert_eq!(drawn[0], (first.t_s, first.requests as f64 / first.t_s));
}
