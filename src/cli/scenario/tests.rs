//! Tests of scenario files: the top level's keys as options, the command line against the
//! file, reading the file. The helpers here serve the matrix's tests too (`sweep/tests.rs`).

use std::ffi::OsString;
use std::path::Path;

use clap::CommandFactory;
use serde_json::Value as Json;

use super::*;

/// The options a scenario file stands for, as command-line arguments, checked: its top level
/// (and its matrix's `models`). A matrix is checked too, every point of it, but its points are
/// not among these arguments: [`expand`] gives them.
fn scenario_args(path: &Path, text: &str, skip_models: bool) -> Result<Vec<String>, Error> {
    let mut cmd = Cli::command();
    let (file, _expect) = read(Src { path, text }, skip_models, &mut cmd)?;
    let all: Vec<&Dim> = file.dims.iter().collect();
    points(&file, &all, &mut cmd)?;
    Ok(file.base)
}

fn args(text: &str) -> Result<Vec<String>, String> {
    scenario_args(Path::new("s.toml"), text, false).map_err(|e| e.to_string())
}

pub(in crate::cli) fn os(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

pub(in crate::cli) fn strs(args: &[OsString]) -> Vec<&str> {
    args.iter().map(|a| a.to_str().unwrap()).collect()
}

/// `bench run --scenario s.toml USER...` with s.toml holding `text`.
pub(in crate::cli) fn sweep(text: &str, user: &[&str]) -> Result<Expanded, String> {
    let mut line = os(&["bench", "run", "--scenario", "s.toml"]);
    line.extend(os(user));
    expand_file(line, Path::new("s.toml"), text).map_err(|e| e.to_string())
}

/// The swept keys and their values, as JSON text.
pub(in crate::cli) fn matrix_of(e: &Expanded) -> Option<Vec<(String, String)>> {
    e.matrix.as_ref().map(|m| {
        m.iter()
            .map(|(k, vs)| (k.clone(), serde_json::to_string(vs).unwrap()))
            .collect()
    })
}

pub(in crate::cli) const TWO_BY_THREE: &str = "# A sweep: connections = [1] here is a comment\n\
                            workload = \"http\"\n\
                            \n\
                            [matrix]\n\
                            connections = [10, 100]\n\
                            payload = [64, 4096, 65536]\n";

#[test]
fn keys_become_options() {
    let a = args(
        "# a comment\nworkload = \"http\"\nconnections = 100\npipeline = 16\nwork_us = 5\n\
         duration = \"2s\"\nquiet = true\nmodels = [\"reactor\", \"tokio\"]\n",
    )
    .unwrap();
    assert_eq!(
        a,
        [
            "--workload=http",
            "--connections=100",
            "--pipeline=16",
            "--work-us=5",
            "--duration=2s",
            "--quiet",
            "--model=reactor",
            "--model=tokio"
        ]
    );
    assert_eq!(args("models = \"all\"").unwrap(), ["--all"]);
}

#[test]
fn the_command_lines_models_replace_the_files() {
    let a = scenario_args(
        Path::new("s.toml"),
        "models = [\"reactor\"]\nconnections = 5",
        true,
    )
    .unwrap();
    assert_eq!(a, ["--connections=5"]);
}

#[test]
fn errors_name_the_file_the_line_and_the_key() {
    let e = args("connections = 10\nconections = 5\n").unwrap_err();
    assert!(
        e.contains("scenario s.toml, line 2, key `conections`: unknown key"),
        "{e}"
    );
    assert!(e.contains("connections"), "{e}");

    let e = args("workload = \"ftp\"\n").unwrap_err();
    assert!(e.contains("line 1, key `workload`"), "{e}");
    assert!(e.contains("ftp"), "{e}");

    let e = args("\n\nduration = \"soon\"\n").unwrap_err();
    assert!(e.contains("line 3, key `duration`"), "{e}");

    let e = args("connections = 0\n").unwrap_err();
    assert!(e.contains("key `connections`"), "{e}");
    let e = args("connections = -3\n").unwrap_err();
    assert!(e.contains("key `connections`"), "{e}");
    // A value that starts with `-` is a value.
    assert_eq!(args("out = \"-r.json\"").unwrap(), ["--out=-r.json"]);

    let e = args("quiet = 3\n").unwrap_err();
    assert!(e.contains("is a switch"), "{e}");

    // A list is a sweep, and sweeps go in [matrix].
    let e = args("connections = [10, 100]\n").unwrap_err();
    assert!(
        e.contains("line 1, key `connections`: takes one value"),
        "{e}"
    );
    assert!(e.contains("[matrix] connections = [10, 100]"), "{e}");
    let e = args("uring_zc = [false, true]\n").unwrap_err();
    assert!(e.contains("is a switch"), "{e}");
    assert!(e.contains("[matrix]"), "{e}");

    let e = args("models = [\"nope\"]\n").unwrap_err();
    assert!(e.contains("key `models`"), "{e}");
    assert!(e.contains("nope"), "{e}");

    let e = args("connections = \n").unwrap_err();
    assert!(e.contains("is not valid TOML"), "{e}");
    assert!(e.contains("line 1"), "{e}");

    let e = args("scenario = \"x.toml\"\n").unwrap_err();
    assert!(e.contains("unknown key"), "{e}");
}

#[test]
fn commands_without_a_scenario_come_back_unchanged() {
    for line in [
        &["bench", "models", "--json"][..],
        &["bench", "run", "--all", "-c", "5"],
        &["bench"],
        &[
            "bench",
            "load",
            "--target",
            "x",
            "--scenario",
            "nowhere.toml",
        ],
    ] {
        let e = expand(os(line)).unwrap();
        assert!(e.matrix.is_none());
        assert_eq!(e.points.len(), 1);
        assert!(e.points[0].values.is_empty());
        assert_eq!(strs(&e.points[0].args), line);
    }
}

#[test]
fn the_command_line_fixes_a_matrix_key() {
    for user in [
        &["--connections", "5"][..],
        &["--connections=5"],
        &["-c", "5"],
        &["-c5"],
        &["-qc5"],
        &["-c=5", "--all"],
    ] {
        let e = sweep(TWO_BY_THREE, user).unwrap();
        assert_eq!(
            matrix_of(&e).unwrap(),
            [("payload".to_string(), "[64,4096,65536]".to_string())],
            "{user:?}"
        );
        assert_eq!(e.points.len(), 3, "{user:?}");
        for p in &e.points {
            let a = strs(&p.args);
            let file = &a[..a.len() - user.len() - 2];
            assert!(
                !file.iter().any(|a| a.starts_with("--connections")),
                "{a:?}"
            );
            assert!(a.ends_with(user), "{a:?}");
            assert_eq!(p.values.len(), 1);
        }
    }
    // A switch fixed on the command line.
    let e = sweep(
        "[matrix]\nuring_zc = [false, true]\nconnections = [1, 2]\n",
        &["--uring-zc"],
    )
    .unwrap();
    assert_eq!(e.points.len(), 2);
    assert_eq!(
        e.points[0].values,
        [("connections".to_string(), Json::from(1))]
    );
    // Every key fixed: no sweep, one point, the user's options last.
    let e = sweep(TWO_BY_THREE, &["-c", "5", "--payload", "1k"]).unwrap();
    assert!(e.matrix.is_none());
    assert_eq!(e.points.len(), 1);
    assert!(e.points[0].values.is_empty());
    assert_eq!(
        strs(&e.points[0].args),
        [
            "bench",
            "run",
            "--workload=http",
            "--scenario",
            "s.toml",
            "-c",
            "5",
            "--payload",
            "1k"
        ]
    );
    // Only options count: a value that reads like one does not.
    let e = sweep(TWO_BY_THREE, &["--out", "-c"]).unwrap();
    assert_eq!(e.points.len(), 6);
}

#[test]
fn a_command_line_that_does_not_parse_is_left_to_its_own_parse() {
    // Its own error is for the caller's parse to report: the file still expands, whole.
    for user in [
        &["-qc5", "--bogus"][..],
        &["--connections", "0"],
        &["--help", "-c", "7"],
        &["--model", "nope", "--connections=7"],
    ] {
        let e = sweep(TWO_BY_THREE, user).unwrap();
        assert_eq!(e.points.len(), 6, "{user:?}");
        let last = strs(&e.points[5].args);
        assert_eq!(&last[last.len() - user.len()..], user, "{user:?}");
    }
}

#[test]
fn expand_reads_the_file_and_names_it_in_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.toml");
    let path_str = path.to_str().unwrap();
    std::fs::write(&path, TWO_BY_THREE).unwrap();
    let line = os(&["bench", "run", "--scenario", path_str, "--all"]);
    let e = expand(line.clone()).unwrap();
    assert_eq!(e.points.len(), 6);
    assert_eq!(
        strs(&e.points[5].args)[3..5],
        ["--connections=100", "--payload=65536"]
    );
    // `--scenario=FILE` too; the command line fixing both keys leaves one point.
    let line = os(&[
        "bench",
        "run",
        &format!("--scenario={path_str}"),
        "-c",
        "1",
        "--payload",
        "1",
    ]);
    let e = expand(line).unwrap();
    assert_eq!(e.points.len(), 1);
    assert_eq!(
        strs(&e.points[0].args)[..3],
        ["bench", "run", "--workload=http"]
    );
    // Errors name the file as given.
    std::fs::write(&path, "[matrix]\nconnections = [0]\n").unwrap();
    let err = expand(os(&["bench", "run", "--scenario", path_str]))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&format!(
            "scenario {path_str}, line 2, key `matrix.connections`, value 0"
        )),
        "{err}"
    );
    let err = expand(os(&["bench", "run", "--scenario", "/nonexistent/s.toml"]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cannot read the scenario file /nonexistent/s.toml"),
        "{err}"
    );
}

#[test]
fn scenario_args_gives_the_top_level_and_checks_the_matrix() {
    assert_eq!(
        args("workload = \"http\"\n[matrix]\nmodels = [\"reactor\"]\nconnections = [1, 2]\n")
            .unwrap(),
        ["--workload=http", "--model=reactor"]
    );
    let e = args("[matrix]\nconnections = [1, 0]\n").unwrap_err();
    assert!(
        e.contains("line 2, key `matrix.connections`, value 0"),
        "{e}"
    );
}

/// `[[expect]]`: read into the expansion, and a bad one refused with the fix named.
#[test]
fn expectations_are_read_and_checked() {
    let head = "models = [\"reactor\", \"tokio\"]\n[matrix]\nconnections = [1, 10]\n";
    let good = "[[expect]]\nsays = \"tie\"\nwhere = { connections = 10 }\nmetric = \"p99\"\n\
                ratio = [\"reactor\", \"tokio\"]\nwithin = 0.25\n";
    let e = sweep(&format!("{head}{good}"), &[]).unwrap();
    assert_eq!(e.expect.len(), 1);
    assert_eq!(e.expect[0].at["connections"], 10);
    assert_eq!(e.expect[0].metric, crate::result::Metric::P99);
    for (bad, needle) in [
        (
            good.replace("= 10 }", "= 100 }"),
            "does not run (it runs 1, 10)",
        ),
        (
            good.replace("\"p99\"", "\"p98\""),
            "metric `p98` is none of",
        ),
        (good.replace("within = 0.25", ""), "exactly one of at_least"),
        (
            good.replace("within = 0.25", "within = 0.25\nat_most = 2"),
            "exactly one of",
        ),
        (
            good.replace("[\"reactor\", \"tokio\"]", "\"reactor\""),
            "two models",
        ),
        (good.replace("says", "claim"), "unknown key `claim`"),
    ] {
        let err = sweep(&format!("{head}{bad}"), &[]).unwrap_err();
        assert!(err.contains(needle), "{needle}: {err}");
    }
    let no_matrix =
        "models = [\"reactor\"]\n[[expect]]\nsays = \"x\"\nwhere = { connections = 1 }\n\
                     metric = \"p99\"\nratio = [\"reactor\", \"tokio\"]\nat_most = 2\n";
    let err = sweep(no_matrix, &[]).unwrap_err();
    assert!(err.contains("has no [matrix]"), "{err}");
}
