//! The report's charts (src/report/charts/), drawn from the fixture result files: every chart
//! the data supports is written as a well-formed SVG and a PNG of the stated size, and the
//! ones it does not support are not written at all.

use std::collections::HashSet;
use std::io::Cursor;
use std::path::Path;

use iomodels::report::charts::{self, ChartFile, HEIGHT, WIDTH};
use iomodels::result::ResultFile;

fn fixture(name: &str) -> ResultFile {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Draws the files' charts into a fresh folder, checks every file, and returns the charts.
fn draw(files: &[ResultFile]) -> Vec<ChartFile> {
    let dir = tempfile::tempdir().unwrap();
    // A folder that does not exist yet: draw_all creates it.
    let out = dir.path().join("charts");
    let charts = charts::draw_all(files, &out).unwrap();
    let mut expected: Vec<String> = charts
        .iter()
        .flat_map(|c| [format!("{}.svg", c.stem), format!("{}.png", c.stem)])
        .collect();
    expected.sort();
    let mut written: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    written.sort();
    assert_eq!(
        written, expected,
        "exactly two files per chart, nothing else"
    );
    for chart in &charts {
        assert!(
            !chart.title.is_empty() && !chart.caption.is_empty(),
            "{}",
            chart.stem
        );
        let svg = std::fs::read_to_string(out.join(format!("{}.svg", chart.stem))).unwrap();
        assert_eq!(
            svg, chart.svg,
            "{}: the returned SVG is the file's",
            chart.stem
        );
        check_svg(&chart.stem, &svg);
        let png = std::fs::read(out.join(format!("{}.png", chart.stem))).unwrap();
        check_png(&chart.stem, &png);
    }
    charts
}

fn check_svg(stem: &str, svg: &str) {
    let doc = roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("{stem}.svg: {e}"));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg", "{stem}.svg");
    let count = |names: &[&str]| {
        root.descendants()
            .filter(|n| names.contains(&n.tag_name().name()))
            .count()
    };
    assert!(
        count(&["path", "polyline", "rect", "polygon", "line", "circle"]) > 10,
        "{stem}.svg draws shapes"
    );
    assert!(count(&["text"]) > 5, "{stem}.svg has text");
}

fn check_png(stem: &str, bytes: &[u8]) {
    let decoder = png::Decoder::new(Cursor::new(bytes));
    let mut reader = decoder
        .read_info()
        .unwrap_or_else(|e| panic!("{stem}.png: {e}"));
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (WIDTH, HEIGHT), "{stem}.png");
    assert_eq!(info.color_type, png::ColorType::Rgb, "{stem}.png");
    let colors: HashSet<&[u8]> = buf[..info.buffer_size()].chunks(3).collect();
    assert!(
        colors.len() > 20,
        "{stem}.png has only {} colours",
        colors.len()
    );
}

fn stems(charts: &[ChartFile]) -> Vec<&str> {
    charts.iter().map(|c| c.stem.as_str()).collect()
}

fn chart<'a>(charts: &'a [ChartFile], stem: &str) -> &'a ChartFile {
    charts
        .iter()
        .find(|c| c.stem == stem)
        .unwrap_or_else(|| panic!("no {stem} in {:?}", stems(charts)))
}

#[test]
fn closed_loop_draws_the_per_model_charts() {
    let charts = draw(&[fixture("closed-loop")]);
    assert_eq!(
        stems(&charts),
        ["throughput", "latency-spectrum", "mechanism", "timeseries"]
    );
    let spectrum = &chart(&charts, "latency-spectrum").svg;
    for model in ["reactor", "blocking", "proactor-uring"] {
        assert!(spectrum.contains(model), "the legend names {model}");
    }
    assert!(spectrum.contains("99.9%"), "percentile ticks");
    assert!(
        !spectrum.contains("(sent)"),
        "no uncorrected line in a closed loop"
    );
    let mechanism = chart(&charts, "mechanism");
    assert!(mechanism.svg.contains("recvfrom"), "calls stacked by name");
    assert!(!mechanism.caption.contains("not counted"));
}

#[test]
fn open_loop_adds_the_uncorrected_line() {
    let charts = draw(&[fixture("open-loop")]);
    assert_eq!(
        stems(&charts),
        ["throughput", "latency-spectrum", "mechanism", "timeseries"],
        "one rate: no latency-vs-throughput"
    );
    let spectrum = chart(&charts, "latency-spectrum");
    assert!(spectrum.svg.contains("reactor (sent)"));
    assert!(spectrum.svg.contains("multi-reactor (sent)"));
    assert!(spectrum.caption.contains("(sent)"));
}

#[test]
fn sweep_draws_lines_along_the_swept_key() {
    let charts = draw(&[fixture("sweep")]);
    assert_eq!(
        stems(&charts),
        [
            "latency-spectrum",
            "mechanism",
            "sweep-throughput",
            "sweep-p99"
        ],
        "a sweep has no throughput bars and no time series"
    );
    assert!(chart(&charts, "latency-spectrum")
        .title
        .contains("connections=100"));
    let tput = chart(&charts, "sweep-throughput");
    assert!(
        tput.svg.contains("connections (log scale)"),
        "1..100 spans > 20x"
    );
    assert!(chart(&charts, "sweep-p99").svg.contains("log scale"));
}

#[test]
fn slo_search_draws_latency_against_throughput() {
    let charts = draw(&[fixture("slo")]);
    assert_eq!(stems(&charts), ["latency-vs-throughput"], "probes only");
    let chart = chart(&charts, "latency-vs-throughput");
    assert!(chart.svg.contains("objective p99"), "the objective's line");
    assert!(chart.svg.contains("proactor-uring"));
}

#[test]
fn missing_counts_are_said_not_drawn() {
    let charts = draw(&[fixture("no-syscalls")]);
    assert_eq!(
        stems(&charts),
        ["throughput", "latency-spectrum", "mechanism", "timeseries"]
    );
    let mechanism = chart(&charts, "mechanism");
    assert!(
        mechanism.caption.contains("system calls not counted"),
        "{}",
        mechanism.caption
    );
    assert!(
        mechanism.caption.contains("not counted for blocking"),
        "{}",
        mechanism.caption
    );
    assert!(!mechanism.svg.contains("System calls"), "no empty panel");
}

#[test]
fn older_file_still_draws() {
    let charts = draw(&[fixture("older-echo-default")]);
    assert_eq!(
        stems(&charts),
        ["throughput", "latency-spectrum", "mechanism", "timeseries"]
    );
    let mechanism = chart(&charts, "mechanism");
    assert!(
        mechanism.caption.contains("system calls not counted"),
        "{}",
        mechanism.caption
    );
    for model in ["threadpool", "proactor-emulated", "tokio"] {
        assert!(chart(&charts, "throughput").svg.contains(model));
    }
}

#[test]
fn several_files_prefix_their_stems() {
    let charts = draw(&[fixture("closed-loop"), fixture("slo")]);
    assert_eq!(
        stems(&charts),
        [
            "1-throughput",
            "1-latency-spectrum",
            "1-mechanism",
            "1-timeseries",
            "2-latency-vs-throughput"
        ]
    );
    // A model keeps its colour across files: reactor is the first model seen in both.
    let reactor = "#1F77B4";
    assert!(chart(&charts, "1-throughput").svg.contains(reactor));
    assert!(chart(&charts, "2-latency-vs-throughput")
        .svg
        .contains(reactor));
}

#[test]
fn no_files_no_charts() {
    let dir = tempfile::tempdir().unwrap();
    let charts = charts::draw_all(&[], dir.path()).unwrap();
    assert!(charts.is_empty());
}
