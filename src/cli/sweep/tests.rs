//! Tests of the `[matrix]`: its keys as nested loops, its values checked one by one and
//! point by point, what cannot be swept, the limit on points.

use serde_json::Value as Json;

use crate::cli::scenario::tests::{matrix_of, strs, sweep, TWO_BY_THREE};
use crate::cli::Cli;
use clap::Parser;

#[test]
fn a_matrix_sweeps_its_keys_like_nested_loops() {
    let e = sweep(TWO_BY_THREE, &["--model", "reactor"]).unwrap();
    assert_eq!(
        matrix_of(&e).unwrap(),
        [
            ("connections".to_string(), "[10,100]".to_string()),
            ("payload".to_string(), "[64,4096,65536]".to_string())
        ]
    );
    let expected = [
        (10, 64),
        (10, 4096),
        (10, 65536),
        (100, 64),
        (100, 4096),
        (100, 65536),
    ];
    assert_eq!(e.points.len(), expected.len());
    for (p, (c, size)) in e.points.iter().zip(expected) {
        assert_eq!(
            p.values,
            [
                ("connections".to_string(), Json::from(c)),
                ("payload".to_string(), Json::from(size))
            ]
        );
        let connections = format!("--connections={c}");
        let payload = format!("--payload={size}");
        assert_eq!(
            strs(&p.args),
            [
                "bench",
                "run",
                "--workload=http",
                &connections,
                &payload,
                "--scenario",
                "s.toml",
                "--model",
                "reactor"
            ]
        );
        // And clap takes each as it stands.
        let cli = Cli::try_parse_from(&p.args).unwrap();
        let crate::cli::Command::Run(run) = cli.command else {
            panic!("not a run")
        };
        assert_eq!((run.shape.connections, run.shape.payload), (c, size));
    }
    // `_` or `-` in the file, `_` in the values.
    let e = sweep("[matrix]\nwork-us = [0, 200]\n", &[]).unwrap();
    assert_eq!(
        e.points[1].values,
        [("work_us".to_string(), Json::from(200))]
    );
    assert_eq!(strs(&e.points[1].args)[2], "--work-us=200");
    // Strings stay strings.
    let e = sweep(
        "[matrix]\nworkload = [\"echo\", \"http\"]\nduration = [\"1s\"]\n",
        &[],
    )
    .unwrap();
    assert_eq!(e.points.len(), 2);
    assert_eq!(
        e.points[1].values,
        [
            ("workload".to_string(), Json::from("http")),
            ("duration".to_string(), Json::from("1s"))
        ]
    );
    assert_eq!(
        strs(&e.points[1].args)[..4],
        ["bench", "run", "--workload=http", "--duration=1s"]
    );
}

#[test]
fn without_a_matrix_there_is_one_point_as_before() {
    let e = sweep("connections = 5\nmodels = [\"reactor\"]\n", &["-d", "1s"]).unwrap();
    assert!(e.matrix.is_none());
    assert_eq!(e.points.len(), 1);
    assert!(e.points[0].values.is_empty());
    assert_eq!(
        strs(&e.points[0].args),
        [
            "bench",
            "run",
            "--connections=5",
            "--model=reactor",
            "--scenario",
            "s.toml",
            "-d",
            "1s"
        ]
    );
    // An empty matrix is no matrix.
    let e = sweep("[matrix]\n", &["--all"]).unwrap();
    assert!(e.matrix.is_none());
    assert_eq!(e.points.len(), 1);
}

#[test]
fn models_in_the_matrix_run_at_every_point() {
    let text = "connections = 5\n[matrix]\nmodels = [\"reactor\", \"tokio\"]\npipeline = [1, 16]\n";
    let e = sweep(text, &[]).unwrap();
    assert_eq!(
        matrix_of(&e).unwrap(),
        [("pipeline".to_string(), "[1,16]".to_string())]
    );
    assert_eq!(
        strs(&e.points[1].args),
        [
            "bench",
            "run",
            "--connections=5",
            "--model=reactor",
            "--model=tokio",
            "--pipeline=16",
            "--scenario",
            "s.toml"
        ]
    );
    // The command line's models replace them.
    let e = sweep(text, &["--model", "blocking"]).unwrap();
    assert_eq!(
        strs(&e.points[0].args),
        [
            "bench",
            "run",
            "--connections=5",
            "--pipeline=1",
            "--scenario",
            "s.toml",
            "--model",
            "blocking"
        ]
    );
    // "all" too; models alone are no sweep.
    let e = sweep("[matrix]\nmodels = \"all\"\n", &[]).unwrap();
    assert!(e.matrix.is_none());
    assert_eq!(strs(&e.points[0].args)[2], "--all");
    // Checked like the top level's, named as the matrix's.
    let e = sweep("[matrix]\nmodels = [\"nope\"]\n", &[]).unwrap_err();
    assert!(e.contains("line 2, key `matrix.models`"), "{e}");
    assert!(e.contains("nope"), "{e}");
    let e = sweep("[matrix]\nmodels = [1]\n", &[]).unwrap_err();
    assert!(
        e.contains("line 2, key `matrix.models`: model names are strings"),
        "{e}"
    );
    // Not both places.
    let e = sweep("models = \"all\"\n[matrix]\nmodels = [\"reactor\"]\n", &[]).unwrap_err();
    assert!(
        e.contains(
            "scenario s.toml, line 3, key `matrix.models`: `models` is also set at the top \
             level, line 1"
        ),
        "{e}"
    );
}

#[test]
fn a_switch_is_swept_false_then_true() {
    let e = sweep(
        "[matrix]\nuring_zc = [false, true]\npayload = [4096]\n",
        &["--model", "proactor-uring"],
    )
    .unwrap();
    assert_eq!(
        matrix_of(&e).unwrap(),
        [
            ("uring_zc".to_string(), "[false,true]".to_string()),
            ("payload".to_string(), "[4096]".to_string())
        ]
    );
    assert_eq!(e.points.len(), 2);
    assert_eq!(
        e.points[0].values[0],
        ("uring_zc".to_string(), Json::Bool(false))
    );
    assert_eq!(
        e.points[1].values[0],
        ("uring_zc".to_string(), Json::Bool(true))
    );
    let tail = ["--scenario", "s.toml", "--model", "proactor-uring"];
    assert_eq!(
        strs(&e.points[0].args),
        [&["bench", "run", "--payload=4096"][..], &tail].concat()
    );
    assert_eq!(
        strs(&e.points[1].args),
        [&["bench", "run", "--uring-zc", "--payload=4096"][..], &tail].concat()
    );
}

#[test]
fn a_bad_value_names_the_file_the_line_the_key_and_the_value() {
    let text = "workload = \"http\"\n\
                # connections = [0] in a comment\n\
                \n\
                [matrix]\n\
                payload = [64]\n\
                \n\
                connections = [10, 0]\n";
    let e = sweep(text, &[]).unwrap_err();
    assert!(
        e.starts_with(
            "scenario s.toml, line 7, key `matrix.connections`, value 0: invalid value '0' \
             for '--connections <CONNECTIONS>': "
        ),
        "{e}"
    );
    let e = sweep("[matrix]\nworkload = [\"http\", \"ftp\"]\n", &[]).unwrap_err();
    assert!(
        e.starts_with("scenario s.toml, line 2, key `matrix.workload`, value \"ftp\": "),
        "{e}"
    );
    assert!(e.contains("invalid value 'ftp' for '--workload"), "{e}");
    let e = sweep("[matrix]\nduration = [\"1s\", \"soon\"]\n", &[]).unwrap_err();
    assert!(
        e.contains("line 2, key `matrix.duration`, value \"soon\": "),
        "{e}"
    );
    let e = sweep("[matrix]\npoller = [\"epoll\", \"kqueue\"]\n", &[]).unwrap_err();
    assert!(e.contains("key `matrix.poller`, value \"kqueue\""), "{e}");
    let e = sweep("[matrix]\nconnections = [-3]\n", &[]).unwrap_err();
    assert!(e.contains("key `matrix.connections`, value -3: "), "{e}");
    // Even for a key the command line fixes: the file is wrong either way.
    let e = sweep("[matrix]\nconnections = [0]\n", &["-c", "5"]).unwrap_err();
    assert!(e.contains("key `matrix.connections`, value 0"), "{e}");
    // A value of the top level is named at the top level, not in the matrix.
    let e = sweep("connections = 0\n[matrix]\npayload = [1]\n", &[]).unwrap_err();
    assert!(
        e.contains("line 1, key `connections`: invalid value"),
        "{e}"
    );
}

#[test]
fn matrix_values_of_the_wrong_kind_are_refused() {
    let cases: &[(&str, &str)] = &[
        (
            "[matrix]\nconnections = 10\n",
            "line 2, key `matrix.connections`: write the list of values to sweep, like \
             connections = [10]; one value alone goes at the top level",
        ),
        (
            "[matrix]\nconnections = []\n",
            "line 2, key `matrix.connections`: the list is empty: give at least one value",
        ),
        (
            "[matrix]\nuring_zc = []\n",
            "key `matrix.uring_zc`: the list is empty: give at least one value, like \
             uring_zc = [false, true]",
        ),
        (
            "[matrix]\nconnections = [[10, 100]]\n",
            "line 2, key `matrix.connections`, value [10, 100]: a list of lists: write one \
             list of values",
        ),
        (
            "[matrix]\nconnections = [{ a = 1 }]\n",
            "line 2, key `matrix.connections`, value { a = 1 }: a table is not a value",
        ),
        (
            "[matrix.connections]\nmin = 1\n",
            "line 1, key `matrix.connections`: write the list of values to sweep, like \
             connections = [1, 2], not a table",
        ),
        (
            "[matrix]\nconnections = [true]\n",
            "key `matrix.connections`, value true: takes a value, not true/false",
        ),
        (
            "[matrix]\nuring_zc = [0, 1]\n",
            "line 2, key `matrix.uring_zc`, value 0: is a switch: write uring_zc = [false, \
             true]",
        ),
        (
            "[matrix]\nconnections = [10, 10]\n",
            "key `matrix.connections`, value 10: listed twice",
        ),
        (
            "[matrix]\npayload = [64]\nconections = [10]\n",
            "line 3, key `matrix.conections`: unknown key (the matrix's keys are the bench \
             run options that can be swept: ",
        ),
        (
            "matrix = 3\n",
            "line 1, key `matrix`: write a [matrix] table",
        ),
    ];
    for (text, expected) in cases {
        let e = sweep(text, &[]).unwrap_err();
        assert!(e.starts_with("scenario s.toml, "), "{e}");
        assert!(e.contains(expected), "{text:?}\n{e}\nwanted {expected}");
    }
}

#[test]
fn what_applies_to_the_whole_sweep_is_not_swept() {
    let cases = [
        (
            "out = [\"a.json\", \"b.json\"]",
            "one result file holds the whole sweep",
        ),
        ("repeat = [1, 3]", "the repeats apply to every point"),
        ("quiet = [false, true]", "it applies to the whole sweep"),
        (
            "accounting = [\"same\", \"off\"]",
            "counts system calls one way",
        ),
        (
            "scenario = [\"x.toml\"]",
            "a scenario file cannot load another",
        ),
        ("all = [true]", "write models = \"all\""),
    ];
    for (line, why) in cases {
        let e = sweep(&format!("connections = 5\n[matrix]\n{line}\n"), &[]).unwrap_err();
        let key = line.split(' ').next().unwrap();
        assert!(
            e.contains(&format!("scenario s.toml, line 3, key `matrix.{key}`: ")),
            "{e}"
        );
        assert!(e.contains(why), "{e}");
    }
}

#[test]
fn a_key_both_fixed_and_swept_names_both_lines() {
    let e = sweep(
        "# connections = 1\nworkload = \"http\"\nconnections = 50\n\n[matrix]\n\
         connections = [10, 100]\n",
        &[],
    )
    .unwrap_err();
    assert_eq!(
        e,
        "scenario s.toml, line 6, key `matrix.connections`: `connections` is also set at \
         the top level, line 3: set one value there or sweep a list here, not both"
    );
    // `_` and `-` alike.
    let e = sweep("work-us = 5\n[matrix]\nwork_us = [1, 2]\n", &[]).unwrap_err();
    assert!(
        e.contains("line 3, key `matrix.work_us`: `work-us` is also set at the top level, line 1"),
        "{e}"
    );
}

#[test]
fn more_than_a_thousand_points_are_refused() {
    let text = "[matrix]\nconnections = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]\n\
                payload = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n\
                pipeline = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n";
    let e = sweep(text, &[]).unwrap_err();
    assert!(
        e.contains(
            "scenario s.toml, line 1, key `matrix`: the matrix makes 1100 points (11 × 10 × \
             10), more than 1000: split the sweep into several scenario files"
        ),
        "{e}"
    );
    // Fixing a key on the command line brings it under.
    let e = sweep(text, &["-p", "1"]).unwrap();
    assert_eq!(e.points.len(), 110);
    // 1000 is allowed.
    let text = "[matrix]\nconnections = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n\
                payload = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n\
                pipeline = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n";
    let e = sweep(text, &[]).unwrap();
    assert_eq!(e.points.len(), 1000);
    assert_eq!(
        e.points[999].values,
        [
            ("connections".to_string(), Json::from(10)),
            ("payload".to_string(), Json::from(10)),
            ("pipeline".to_string(), Json::from(10))
        ]
    );
}

#[test]
fn inline_and_dotted_matrices_sweep_too() {
    let e = sweep("matrix = { connections = [1, 2], payload = [3] }\n", &[]).unwrap();
    assert_eq!(e.points.len(), 2);
    let e = sweep(
        "workload = \"http\"\nmatrix.connections = [1, 2]\nmatrix.payload = [0]\n",
        &[],
    )
    .unwrap_err();
    assert!(e.contains("line 3, key `matrix.payload`, value 0"), "{e}");
}
