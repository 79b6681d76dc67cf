//! `bench report`: report.md from fixed result files (snapshots in tests/snapshots/), the HTML
//! page self-contained, the files a report is made of, bad input refused, and `bench run`
//! writing a report unless told not to.
//!
//! A snapshot that differs fails the test and leaves the new text beside it as
//! `NAME.md.new`; `UPDATE_SNAPSHOTS=1 cargo test --test report` rewrites them (read the diff
//! before committing).

mod common;

use std::path::{Path, PathBuf};

use common::{bench, expect, text};
use iomodels::report::document;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The report of `names` (fixture files), as `bench report` writes it into a temporary
/// folder; returns report.md and the folder.
fn report_of(names: &[&str]) -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<(String, iomodels::result::ResultFile)> = names
        .iter()
        .map(|n| {
            (
                format!("tests/fixtures/{n}"),
                iomodels::result::load(&fixture(n)).unwrap_or_else(|e| panic!("{n}: {e:#}")),
            )
        })
        .collect();
    let written = document::write(&files, dir.path()).unwrap();
    let md = std::fs::read_to_string(&written.markdown).unwrap();
    (md, dir)
}

fn check_snapshot(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(format!("{name}.md"));
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "no snapshot {}: run UPDATE_SNAPSHOTS=1 cargo test --test report, then read it",
            path.display()
        )
    });
    if expected != actual {
        let new = path.with_extension("md.new");
        std::fs::write(&new, actual).unwrap();
        let line = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .map_or(expected.lines().count().min(actual.lines().count()), |i| i);
        panic!(
            "{} differs from the report written now (first at line {}): compare with {}",
            path.display(),
            line + 1,
            new.display()
        );
    }
}

#[test]
fn report_md_snapshots() {
    for (snapshot, names) in [
        ("closed-loop", vec!["closed-loop.json"]),
        ("open-loop", vec!["open-loop.json"]),
        ("sweep", vec!["sweep.json"]),
        ("slo", vec!["slo.json"]),
        // Gaps: no system-call counts and one run without server costs; a file written before
        // the newer fields existed; several files in one report.
        (
            "gaps-and-older",
            vec!["no-syscalls.json", "older-echo-default.json"],
        ),
    ] {
        let (md, _dir) = report_of(&names);
        check_snapshot(snapshot, &md);
    }
}

/// What a reader can rely on, asserted directly (the snapshots pin the rest).
#[test]
fn findings_say_who_won_by_how_much_and_why() {
    let (md, _dir) = report_of(&["closed-loop.json"]);
    // Winners with ratios, the mechanism with system calls by name, the client-bound caveat.
    assert!(
        md.contains(
            "throughput: reactor, proactor-uring are within the run-to-run spread of each other \
             (reactor 167.1k req/s, proactor-uring 135.2k req/s), a tie on these figures; \
             blocking is 1.55x behind"
        ),
        "{md}"
    );
    assert!(
        md.contains("Mechanism: system calls per request: proactor-uring 0.06"),
        "{md}"
    );
    assert!(
        md.contains("context switches per request: blocking 1.00"),
        "{md}"
    );
    assert!(md.contains("the load generator was saturated"), "{md}");
    // Every scenario option and the environment.
    for needle in [
        "| connections | 50 |",
        "| kernel |",
        "| server CPUs | 0 |",
        "| tool |",
    ] {
        assert!(md.contains(needle), "{needle}: {md}");
    }
    let (md, _dir) = report_of(&["no-syscalls.json"]);
    assert!(md.contains("### Gaps"), "{md}");
    assert!(md.contains("System calls not counted"), "{md}");
    assert!(md.contains("No server costs"), "{md}");
    let (md, _dir) = report_of(&["open-loop.json"]);
    assert!(
        md.contains("open loop at 20.0k req/s: every ranked model answered"),
        "{md}"
    );
}

/// index.html stands alone: the charts' SVG inline, no script, no link to anywhere.
#[test]
fn the_html_report_is_self_contained() {
    let (_, dir) = report_of(&["closed-loop.json", "sweep.json"]);
    let html = std::fs::read_to_string(dir.path().join("index.html")).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
    // (The SVG namespace, xmlns="http://www.w3.org/2000/svg", is a name, not a fetch.)
    for banned in [
        "<script",
        "<img",
        "<link",
        "src=",
        "href=\"http",
        "url(",
        "@import",
    ] {
        let at = html.find(banned);
        assert!(
            at.is_none(),
            "index.html has {banned}: {:?}",
            at.map(|i| &html[i..(i + 200).min(html.len())])
        );
    }
    let charts: Vec<PathBuf> = std::fs::read_dir(dir.path().join("charts"))
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    let svgs = charts
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "svg"))
        .count();
    assert_eq!(
        html.matches("<svg").count(),
        svgs,
        "every chart inline once"
    );
    assert!(html.contains("<table>"), "{html}");
}

#[test]
fn bad_result_files_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let not_json = dir.path().join("x.json");
    std::fs::write(&not_json, "hello").unwrap();
    let newer = dir.path().join("newer.json");
    std::fs::write(&newer, r#"{"schema_version": 99, "runs": []}"#).unwrap();
    let other = dir.path().join("other.json");
    std::fs::write(&other, r#"{"schema_version": 1, "runs": 3}"#).unwrap();
    for (path, needle) in [
        (dir.path().join("missing.json"), "cannot read"),
        (not_json, "not JSON"),
        (newer, "schema 99"),
        (other, "cannot be read as a result file"),
    ] {
        let o = bench().arg("report").arg(&path).output().unwrap();
        expect(&o, 2, &[needle]);
    }
    let o = bench().arg("report").output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

/// `bench run` writes its report beside the result file; `--no-report` does not.
#[test]
fn bench_run_writes_a_report_unless_told_not_to() {
    let _machine = common::shared_machine();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run.json");
    let o = bench()
        .args(["run", "--model", "reactor", "-c", "2", "-d", "300ms"])
        .args(["--warmup", "50ms", "--accounting", "off", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    expect(&o, 0, &["report written to"]);
    let report = dir.path().join("run");
    assert!(report.join("report.md").is_file());
    assert!(report.join("index.html").is_file());

    let out = dir.path().join("quiet.json");
    let o = bench()
        .args(["run", "--model", "reactor", "-c", "2", "-d", "300ms"])
        .args([
            "--warmup",
            "50ms",
            "--accounting",
            "off",
            "--no-report",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    expect(&o, 0, &[]);
    assert!(!text(&o).contains("report written"), "{}", text(&o));
    assert!(!dir.path().join("quiet").exists());
}

/// closed-loop.json (reactor, blocking, proactor-uring, two repeats each, 50 connections),
/// with its runs as `edit` leaves them.
fn edited(edit: impl Fn(&mut iomodels::result::Run)) -> iomodels::result::ResultFile {
    let mut file = iomodels::result::load(&fixture("closed-loop.json")).unwrap();
    file.runs.iter_mut().for_each(edit);
    file
}

/// Issue 20: threadpool was crowned lowest p99 while 99 of its 100 connections completed
/// nothing. A model that starved connections is named, not ranked.
#[test]
fn a_starved_model_never_wins_latency() {
    let file = edited(|r| {
        if r.model.as_deref() == Some("blocking") {
            r.starved_connections = 49;
            r.latency_us.p99 = 1.0;
        }
    });
    let found = iomodels::report::findings::findings(&file).join("\n");
    assert!(
        found.contains("not ranked: blocking served 1 of 50 connections"),
        "{found}"
    );
    assert!(!found.contains("blocking had the"), "{found}");
    assert!(!found.contains("blocking 1µs"), "{found}");
}

/// Issue 20: a 10% lead from single runs was called a win while figures move more than that
/// between runs of one model. Inside the A/A spread it is a tie, said to rest on one run;
/// past the repeats' own spread it is a lead.
#[test]
fn a_single_run_lead_inside_the_spread_is_a_tie() {
    let mut file = edited(|r| {
        r.latency_us.p99 = if r.model.as_deref() == Some("reactor") {
            100.0
        } else {
            120.0
        };
    });
    file.runs.retain(|r| r.repeat_index == 0);
    let found = iomodels::report::findings::findings(&file).join("\n");
    assert!(
        found.contains(
            "p99 latency: reactor, blocking, proactor-uring are within the run-to-run spread"
        ),
        "{found}"
    );
    assert!(found.contains("one run each"), "{found}");
    // Two tight repeats each: a 1.2x lead is past their 2% spread.
    let file = edited(|r| {
        let base = if r.model.as_deref() == Some("reactor") {
            100.0
        } else {
            120.0
        };
        r.latency_us.p99 = base + r.repeat_index as f64;
    });
    let found = iomodels::report::findings::findings(&file).join("\n");
    assert!(
        found.contains("p99 latency: reactor had the lowest, 100µs (1.20x"),
        "{found}"
    );
    assert!(
        found.contains("medians of 2 repeats, spread up to 1%"),
        "{found}"
    );
}

fn expectation(toml_text: &str) -> iomodels::result::Expectation {
    toml::from_str(toml_text).unwrap()
}

/// Issue 20: a claim report opens with its verdict: holds, does not hold, or cannot be told
/// (here a saturated load generator).
#[test]
fn expectations_are_judged_holds_does_not_hold_or_cannot_be_told() {
    use iomodels::report::verdict::{judge, overall, Verdict};
    let mut file = edited(|r| {
        r.client.saturated = false;
        r.throughput_rps = match r.model.as_deref() {
            Some("reactor") => 100_000.0 + r.repeat_index as f64 * 1000.0,
            Some("blocking") => 20_000.0 + r.repeat_index as f64 * 200.0,
            _ => 101_000.0,
        };
    });
    let holds = expectation(
        "says = \"reactor serves several times blocking\"\nmetric = \"throughput\"\n\
         ratio = [\"reactor\", \"blocking\"]\nat_least = 3.0",
    );
    let ties = expectation(
        "says = \"reactor ties proactor-uring\"\nmetric = \"throughput\"\n\
         ratio = [\"reactor\", \"proactor-uring\"]\nwithin = 0.1",
    );
    let fails = expectation(
        "says = \"blocking matches reactor\"\nmetric = \"throughput\"\n\
         ratio = [\"blocking\", \"reactor\"]\nat_least = 0.9",
    );
    file.scenario.expect = vec![holds.clone(), ties, fails];
    let judged = judge(&file);
    let verdicts: Vec<Verdict> = judged.iter().map(|j| j.verdict).collect();
    assert_eq!(
        verdicts,
        [Verdict::Holds, Verdict::Holds, Verdict::DoesNotHold],
        "{judged:#?}"
    );
    assert!(
        judged[0]
            .why
            .contains("reactor 100.5k req/s / blocking 20.1k req/s = 5.00"),
        "{}",
        judged[0].why
    );
    assert_eq!(overall(&judged), Verdict::DoesNotHold);
    // The report opens each file with the verdict, and the result with it fits the schema.
    let md = document::markdown(&[("x.json".into(), file.clone())], &[]);
    assert!(
        md.contains("### Verdict\n\nThe claim **does not hold**"),
        "{md}"
    );
    let json = serde_json::to_value(&file).unwrap();
    assert!(
        common::schema_errors(&json).is_empty(),
        "{:?}",
        common::schema_errors(&json)
    );
    // A saturated load generator: the figures are the client's, not the servers'.
    file.runs[0].client.saturated = true;
    file.scenario.expect = vec![holds];
    let judged = judge(&file);
    assert_eq!(judged[0].verdict, Verdict::CannotTell, "{judged:#?}");
    assert!(judged[0].why.contains("saturated"), "{}", judged[0].why);
    assert_eq!(overall(&judged), Verdict::CannotTell);
    // A server's own count is still its own with a saturated client: judged.
    let counted = expectation(
        "says = \"reactor makes as many system calls as blocking\"\nmetric = \"syscalls\"\n\
         ratio = [\"reactor\", \"blocking\"]\nwithin = 0.5",
    );
    file.scenario.expect = vec![counted];
    let judged = judge(&file);
    assert_ne!(judged[0].verdict, Verdict::CannotTell, "{judged:#?}");
}

/// A model that failed only because it fell silent with connections waiting (threadpool at
/// C10K) is judged on what it served, which is the claim; any other failure leaves nothing.
#[test]
fn a_model_that_failed_by_starving_is_judged_on_what_it_served() {
    use iomodels::report::verdict::{judge, Verdict};
    let stall = format!(
        "{} nothing answered in the last 4.0 s of the window while 99 requests waited",
        iomodels::result::measured::STALLED
    );
    let served = expectation(
        "says = \"blocking serves at most half the connections reactor serves\"\n\
         metric = \"served\"\nratio = [\"blocking\", \"reactor\"]\nat_most = 0.5",
    );
    let judge_with = |failure: &str| {
        let mut file = edited(|r| {
            if r.model.as_deref() == Some("blocking") {
                r.starved_connections = r.connections as u64 - 1;
                r.failure = Some(failure.to_string());
            }
        });
        file.scenario.expect = vec![served.clone()];
        judge(&file).remove(0)
    };
    let starved = judge_with(&stall);
    assert_eq!(starved.verdict, Verdict::Holds, "{starved:#?}");
    assert!(
        starved.why.contains("served: blocking 1 / reactor"),
        "{}",
        starved.why
    );
    for other in [
        "the server exited with status 1",
        &format!("{stall}; the server died"),
    ] {
        let died = judge_with(other);
        assert_eq!(died.verdict, Verdict::CannotTell, "{other}: {died:#?}");
        assert!(died.why.contains("blocking failed"), "{}", died.why);
    }
}

/// Each claim scenario states its claim as expectations the report can judge.
#[test]
fn every_claim_scenario_states_expectations() {
    for claim in [
        "c10k",
        "handler-cpu",
        "handler-blocking",
        "pollers",
        "scaling-connections",
        "readiness-vs-completion",
    ] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("scenarios/{claim}.toml"));
        let expanded = iomodels::cli::scenario::expand(vec![
            "bench".into(),
            "run".into(),
            "--scenario".into(),
            path.into_os_string(),
        ])
        .unwrap_or_else(|e| panic!("{claim}: {e}"));
        assert!(
            !expanded.expect.is_empty(),
            "{claim}.toml has no [[expect]]"
        );
    }
}

/// A tie (`within`) read through the spread as the other bounds are: a noisy 1.3x is neither
/// a tie nor a lead (cannot be told), a steady 1.3x is no tie, a steady 1.01x is one.
#[test]
fn a_tie_is_judged_through_the_spread() {
    use iomodels::report::verdict::{judge, Verdict};
    let tie = expectation(
        "says = \"reactor ties blocking\"\nmetric = \"throughput\"\n\
         ratio = [\"reactor\", \"blocking\"]\nwithin = 0.05",
    );
    let verdict_for = |reactor: [f64; 2], blocking: f64| {
        let mut file = edited(|r| {
            r.client.saturated = false;
            r.throughput_rps = match r.model.as_deref() {
                Some("reactor") => reactor[r.repeat_index],
                _ => blocking,
            };
        });
        file.scenario.expect = vec![tie.clone()];
        judge(&file)[0].verdict
    };
    assert_eq!(
        verdict_for([100_000.0, 160_000.0], 100_000.0),
        Verdict::CannotTell
    );
    assert_eq!(
        verdict_for([130_000.0, 130_000.0], 100_000.0),
        Verdict::DoesNotHold
    );
    assert_eq!(
        verdict_for([101_000.0, 101_000.0], 100_000.0),
        Verdict::Holds
    );
}

/// A poller is part of a model's label (`reactor (select)`), not of the sweep point: the
/// pollers claim, sweeping `poller` and `connections`, is judged per connections value.
#[test]
fn a_swept_poller_is_a_model_not_a_point() {
    use iomodels::report::verdict::judge;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("results/reference/claims/pollers.json");
    let file = iomodels::result::load(&path).unwrap();
    for j in judge(&file) {
        assert!(!j.why.contains("sweep points"), "{}", j.why);
    }
}

/// Issue 21: an outside server beside an exhibit gets a finding that compares their mechanism
/// figure by figure: calls by name, the calls only one makes, switches, CPU through the spread.
#[test]
fn an_outside_server_is_compared_with_the_exhibit_beside_it() {
    let file = edited(|r| {
        if r.model.as_deref() == Some("blocking") {
            r.command = Some("my-server --port {port}".into());
        }
    });
    let found = iomodels::report::findings::findings(&file).join("\n");
    let line = found
        .lines()
        .find(|l| {
            l.contains("counterparts: blocking (an outside server) beside the exhibit reactor")
        })
        .unwrap_or_else(|| panic!("{found}"));
    for part in [
        "system calls per request blocking",
        "against reactor",
        "CPU per request",
    ] {
        assert!(line.contains(part), "{line}");
    }
    let plain = iomodels::report::findings::findings(&edited(|_| {})).join("\n");
    assert!(!plain.contains("counterparts:"), "{plain}");
}

/// Issue 23: tokio at 1,000 busy connections had p99 120x its p50, the reactor's 6x; the
/// findings said nothing of it. A tail out of proportion, in every repeat, is named, with its
/// documented cause where there is one; a tail like the others' is not.
#[test]
fn a_tail_out_of_proportion_is_named_with_its_cause() {
    let skewed = |model: &'static str| {
        move |r: &mut iomodels::result::Run| {
            r.latency_us.p50 = 100.0 + r.repeat_index as f64;
            r.latency_us.p99 = 600.0;
            if r.model.as_deref() == Some("proactor-uring") {
                r.model = Some(model.into());
                r.latency_us.p99 = 100_000.0 + r.repeat_index as f64 * 5_000.0;
            }
        }
    };
    let found = iomodels::report::findings::findings(&edited(skewed("tokio"))).join("\n");
    assert!(
        found.contains("tokio's tail is out of proportion: p99 102.50ms is 1020x its p50 100µs"),
        "{found}"
    );
    assert!(found.contains("where reactor's is 6.0x"), "{found}");
    assert!(found.contains("in every one of 2 repeats"), "{found}");
    assert!(found.contains("its scheduler's doing"), "{found}");
    let found = iomodels::report::findings::findings(&edited(skewed("someone"))).join("\n");
    assert!(
        found.contains("someone's tail is out of proportion"),
        "{found}"
    );
    assert!(!found.contains("scheduler"), "{found}");
    let found = iomodels::report::findings::findings(&edited(|_| {})).join("\n");
    assert!(!found.contains("out of proportion"), "{found}");
}
