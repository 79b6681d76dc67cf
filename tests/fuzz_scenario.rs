//! Fuzzing scenario files: `scenario::expand` (what `bench run --scenario FILE` calls before
//! anything else) on generated files written to a temporary file: any text or bytes, the real
//! files of scenarios/ mutated (bytes deleted, inserted or replaced, lines swapped or repeated,
//! values and keys replaced by others of any type: huge numbers, unicode, lists, tables,
//! dates), and files built from `bench run`'s own options with values of every kind and
//! matrices of every size. Nothing runs: `expand` only reads and checks, and the points it
//! gives are only parsed. A failure is shrunk and kept in proptest-regressions/fuzz_scenario.txt.
//!
//! Properties:
//! - no input panics (or aborts: an allocation the size of a number in the file would);
//! - a refusal is a usage error (exit code 2) whose message names the file and says why;
//! - an accepted file gives 1 to `MAX_POINTS` points: exactly one without a matrix, else the
//!   product of the matrix's list lengths, each point a distinct combination of the listed
//!   values in matrix order, and each point's command line parses as a `bench run`.
//!
//! `PROPTEST_CASES=N` sets the cases per property (default [`CASES`]); a long run:
//! `PROPTEST_CASES=200000 cargo test --release --test fuzz_scenario` (DESIGN.md, "Fuzzing").

mod common;

use std::collections::HashSet;
use std::ffi::OsString;
use std::io::Write;
use std::path::Path;
use std::sync::OnceLock;

use clap::{CommandFactory, Parser};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{select, Index};

use iomodels::cli::scenario::{expand, MAX_POINTS};
use iomodels::cli::{Cli, Command};

/// Cases per property unless `PROPTEST_CASES` is set: several seconds of `cargo test
/// --release` on a 2-CPU machine (every case builds clap's command and parses with it); a
/// debug build (scripts/test.sh) runs a quarter as many.
const CASES: u32 = 4_000;

fn config() -> ProptestConfig {
    common::proptest_config("proptest-regressions/fuzz_scenario.txt", CASES)
}

// ---------------------------------------------------------------------------------------------
// The property.

/// Writes `text` to a temporary file, expands `bench run --scenario FILE <user>`, and checks
/// the outcome.
fn check(text: &[u8], user: &[&str]) -> Result<(), TestCaseError> {
    let mut file = tempfile::Builder::new()
        .suffix(".toml")
        .tempfile()
        .expect("a temporary file");
    file.write_all(text).expect("write the scenario");
    let path = file.path();
    let mut args: Vec<OsString> = ["bench", "run", "--scenario"].map(OsString::from).into();
    args.push(path.into());
    args.extend(user.iter().map(OsString::from));
    match expand(args) {
        Err(e) => refused(&e, path),
        Ok(x) => accepted(&x),
    }
}

fn refused(e: &iomodels::Error, path: &Path) -> Result<(), TestCaseError> {
    let msg = e.to_string();
    prop_assert_eq!(e.exit_code(), 2, "not a usage error: {}", msg);
    prop_assert!(
        msg.contains(&path.display().to_string()),
        "the message does not name the file: {}",
        msg
    );
    prop_assert!(
        !msg.trim_end().ends_with(':'),
        "the message says where, not why: {}",
        msg
    );
    Ok(())
}

fn accepted(x: &iomodels::cli::scenario::Expanded) -> Result<(), TestCaseError> {
    let n = x.points.len();
    prop_assert!((1..=MAX_POINTS).contains(&n), "{} points", n);
    match &x.matrix {
        None => {
            prop_assert_eq!(n, 1);
            prop_assert!(x.points[0].values.is_empty());
        }
        Some(matrix) if x.listed => {
            // `[[points]]`: each point's values among the keys' values, no point twice.
            let mut seen = HashSet::new();
            for p in &x.points {
                for (key, value) in &p.values {
                    let listed = matrix.iter().find(|(dim, _)| dim == key);
                    prop_assert!(
                        listed.is_some_and(|(_, values)| values.contains(value)),
                        "{} = {} is not listed",
                        key,
                        value
                    );
                }
                prop_assert!(
                    seen.insert(format!("{:?}", p.values)),
                    "a point twice: {:?}",
                    p.values
                );
            }
        }
        Some(matrix) => {
            let product: usize = matrix.iter().map(|(_, values)| values.len()).product();
            prop_assert_eq!(n, product, "points against the matrix {:?}", matrix);
            let mut seen = HashSet::new();
            for p in &x.points {
                prop_assert_eq!(p.values.len(), matrix.len());
                for ((key, value), (dim, values)) in p.values.iter().zip(matrix) {
                    prop_assert_eq!(key, dim);
                    prop_assert!(values.contains(value), "{} = {} is not listed", key, value);
                }
                prop_assert!(
                    seen.insert(format!("{:?}", p.values)),
                    "a point twice: {:?}",
                    p.values
                );
            }
        }
    }
    for p in &x.points {
        // Without models from the file or the user, the command line must add some.
        let mut args = p.args.clone();
        let picks = |a: &OsString| {
            a.to_str()
                .is_some_and(|a| a == "--all" || a.starts_with("--model="))
        };
        if !args.iter().any(picks) {
            args.push("--all".into());
        }
        match Cli::try_parse_from(&args) {
            Ok(Cli {
                command: Command::Run(_),
            }) => {}
            Ok(other) => return Err(TestCaseError::fail(format!("not a run: {other:?}"))),
            Err(e) => {
                return Err(TestCaseError::fail(format!(
                    "a point that does not parse: {args:?}: {e}"
                )))
            }
        }
    }
    Ok(())
}

/// The user's own options after `--scenario FILE` (each parses by itself).
const USER: &[&[&str]] = &[
    &[],
    &["--all"],
    &["--model=reactor"],
    &["--connections=7"],
    &["-c", "9"],
    &["--work-us", "3"],
];

// ---------------------------------------------------------------------------------------------
// What files are made of.

/// The real files of scenarios/.
fn real_files() -> &'static [Vec<u8>] {
    static FILES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    FILES.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let mut paths: Vec<_> = std::fs::read_dir(&dir)
            .expect("scenarios/")
            .map(|e| e.expect("a directory entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        paths.sort();
        assert!(paths.len() >= 5, "the scenario files are missing");
        paths
            .iter()
            .map(|p| std::fs::read(p).expect("a scenario file"))
            .collect()
    })
}

/// `bench run`'s long options as keys (with `_`), and keys that are not.
fn keys() -> Vec<String> {
    let cli = Cli::command();
    let run = cli.find_subcommand("run").expect("bench run");
    let mut keys: Vec<String> = run
        .get_arguments()
        .filter_map(|a| a.get_long())
        .map(|l| l.replace('-', "_"))
        .collect();
    keys.extend(
        [
            "models",
            "matrix",
            "work-us",
            "Connections",
            "nope",
            "",
            "\"quoted key\"",
            "a.b",
            "ü",
        ]
        .map(String::from),
    );
    keys
}

/// Values as TOML writes them: every type, edges of the parsers behind the options.
const VALUES: &[&str] = &[
    "0",
    "1",
    "-1",
    "7",
    "50",
    "1000",
    "10000",
    "9223372036854775807",
    "-9223372036854775808",
    "99999999999999999999",
    "0x10",
    "1.5",
    "-0.0",
    "1e308",
    "1e-308",
    "inf",
    "-inf",
    "nan",
    "true",
    "false",
    "\"\"",
    "\"http\"",
    "\"echo\"",
    "\"all\"",
    "\"reactor\"",
    "\"epoll\"",
    "\"select\"",
    "\"off\"",
    "\"separate\"",
    "\"5s\"",
    "\"0s\"",
    "\"500ms\"",
    "\"1ms\"",
    "\"10\"",
    "\"99999999999999999999s\"",
    "\"18446744073709551615y\"",
    "\"4k\"",
    "\"1m\"",
    "\"18446744073709551615k\"",
    "\"20k\"",
    "\"1.5M\"",
    "\"1e99\"",
    "\"p99=2ms\"",
    "\"p100=1ms\"",
    "\"0\"",
    "\"0-1\"",
    "\"1-0\"",
    "\"0,1\"",
    "\"0-99999999999\"",
    "\"0-18446744073709551615\"",
    "\"4294967296-4294967297\"",
    "\"out.json\"",
    "\"-c\"",
    "\"--all\"",
    "\"ü☃\u{1F600}\"",
    "\"\\u0000\"",
    "'literal'",
    "\"\"\"multi\nline\"\"\"",
    "[]",
    "[1, 2]",
    "[1, 1]",
    "[false, true]",
    "[\"reactor\", \"tokio\"]",
    "[[1], [2]]",
    "[1, \"a\"]",
    "{ a = 1 }",
    "{}",
    "1979-05-27T07:32:00Z",
    "07:32:00",
];

/// Bits of TOML to insert.
const TOML_BITS: &[&str] = &[
    "\n",
    " = ",
    "=",
    "[",
    "]",
    "[matrix]\n",
    "[[matrix]]\n",
    "{",
    "}",
    ",",
    "\"",
    "'",
    "#",
    ".",
    "models",
    "matrix.",
    "\u{FEFF}",
    "\r\n",
    "\t",
    "ü",
];

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => select(VALUES).prop_map(String::from),
        1 => any::<i64>().prop_map(|n| n.to_string()),
        1 => any::<f64>().prop_map(|x| format!("{x:?}")),
        1 => vec(any::<char>(), 0..12).prop_map(|c| toml_string(&c)),
    ]
}

/// `chars` as a TOML basic string: any Unicode, control characters escaped.
fn toml_string(chars: &[char]) -> String {
    let mut s = String::from('"');
    for &c in chars {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            c if c.is_control() => s.push_str(&format!("\\U{:08X}", u32::from(c))),
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

fn key() -> impl Strategy<Value = String> {
    select(keys())
}

/// A list of values for the matrix.
fn list() -> impl Strategy<Value = String> {
    vec(value(), 0..6).prop_map(|v| format!("[{}]", v.join(", ")))
}

/// A matrix of numeric options with distinct values: sweeps of every size, some over
/// `MAX_POINTS`.
fn sweep() -> impl Strategy<Value = String> {
    let dim = (
        select(
            &[
                "connections",
                "pipeline",
                "work_us",
                "block_us",
                "payload",
                "threads",
            ][..],
        ),
        // A long list: MAX_POINTS alone, or past it with any other key.
        prop_oneof![8 => 1usize..13, 1 => MAX_POINTS - 10..MAX_POINTS + 10],
    );
    vec(dim, 1..5).prop_map(|dims| {
        let mut seen = HashSet::new();
        dims.iter()
            .filter(|(key, _)| seen.insert(*key))
            .map(|(key, n)| {
                let values: Vec<String> = (1..=*n).map(|v| v.to_string()).collect();
                format!("{key} = [{}]\n", values.join(", "))
            })
            .collect()
    })
}

/// A file built from keys and values.
fn built() -> impl Strategy<Value = Vec<u8>> {
    let models = select(
        &[
            "",
            "models = \"all\"\n",
            "models = [\"reactor\", \"tokio\"]\n",
            "models = [\"nope\"]\n",
            "models = 3\n",
            "all = true\n",
        ][..],
    );
    let entries = vec((key(), value()), 0..6);
    let matrix = prop_oneof![
        1 => Just(String::new()),
        1 => vec((key(), list()), 0..4).prop_map(|d| {
            let mut seen = HashSet::new();
            let lines: String = d
                .iter()
                .filter(|(k, _)| seen.insert(k.clone()))
                .map(|(k, l)| format!("{k} = {l}\n"))
                .collect();
            format!("[matrix]\n{lines}")
        }),
        2 => sweep().prop_map(|s| format!("[matrix]\n{s}")),
    ];
    (models, entries, matrix).prop_map(|(models, entries, matrix)| {
        // A key twice is a TOML error: once is enough to reach the checks behind it.
        let mut seen = HashSet::new();
        let entries: String = entries
            .iter()
            .filter(|(k, _)| seen.insert(k.clone()))
            .map(|(k, v)| format!("{k} = {v}\n"))
            .collect();
        format!("{models}{entries}{matrix}").into_bytes()
    })
}

/// An edit of a file.
#[derive(Clone, Debug)]
enum Edit {
    Delete(Index, usize),
    Insert(Index, String),
    Replace(Index, u8),
    SwapLines(Index, Index),
    RepeatLine(Index),
    /// The value of a `key = value` line.
    Value(Index, String),
    /// The key of a `key = value` line.
    Key(Index, String),
}

fn edit() -> impl Strategy<Value = Edit> {
    let inserted = prop_oneof![
        select(TOML_BITS).prop_map(String::from),
        value(),
        key(),
        any::<char>().prop_map(String::from),
    ];
    prop_oneof![
        1 => (any::<Index>(), 1usize..12).prop_map(|(i, n)| Edit::Delete(i, n)),
        1 => (any::<Index>(), inserted).prop_map(|(i, s)| Edit::Insert(i, s)),
        1 => (any::<Index>(), prop_oneof![3 => b' '..=b'~', 1 => any::<u8>()])
            .prop_map(|(i, b)| Edit::Replace(i, b)),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Edit::SwapLines(a, b)),
        1 => any::<Index>().prop_map(Edit::RepeatLine),
        3 => (any::<Index>(), prop_oneof![value(), list()]).prop_map(|(i, v)| Edit::Value(i, v)),
        2 => (any::<Index>(), key()).prop_map(|(i, k)| Edit::Key(i, k)),
    ]
}

/// Splits into lines, each with its `\n`.
fn lines(bytes: &[u8]) -> Vec<Vec<u8>> {
    bytes
        .split_inclusive(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

fn apply(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        let mut lines = lines(&bytes);
        // The `key = value` lines (not comments).
        let assignments: Vec<usize> = (0..lines.len())
            .filter(|&i| lines[i].contains(&b'=') && !lines[i].starts_with(b"#"))
            .collect();
        match e {
            Edit::Delete(i, n) => {
                let at = i.index(bytes.len() + 1);
                bytes.drain(at..(at + n).min(bytes.len()));
            }
            Edit::Insert(i, s) => {
                let at = i.index(bytes.len() + 1);
                bytes.splice(at..at, s.bytes());
            }
            Edit::Replace(i, b) if !bytes.is_empty() => {
                let at = i.index(bytes.len());
                bytes[at] = *b;
            }
            Edit::SwapLines(a, b) if !lines.is_empty() => {
                let n = lines.len();
                lines.swap(a.index(n), b.index(n));
                bytes = lines.concat();
            }
            Edit::RepeatLine(i) if !lines.is_empty() => {
                let at = i.index(lines.len());
                lines.insert(at, lines[at].clone());
                bytes = lines.concat();
            }
            Edit::Value(i, v) if !assignments.is_empty() => {
                let line = &mut lines[assignments[i.index(assignments.len())]];
                let eq = line.iter().position(|&b| b == b'=').unwrap_or_default();
                line.truncate(eq + 1);
                line.extend_from_slice(format!(" {v}\n").as_bytes());
                bytes = lines.concat();
            }
            Edit::Key(i, k) if !assignments.is_empty() => {
                let line = &mut lines[assignments[i.index(assignments.len())]];
                let eq = line.iter().position(|&b| b == b'=').unwrap_or_default();
                line.splice(..eq, format!("{k} ").bytes());
                bytes = lines.concat();
            }
            _ => {}
        }
    }
    bytes
}

fn mutated() -> impl Strategy<Value = Vec<u8>> {
    (any::<Index>(), vec(edit(), 1..8)).prop_map(|(file, edits)| {
        let files = real_files();
        apply(files[file.index(files.len())].clone(), &edits)
    })
}

/// Any text (TOML's characters drawn more often), or any bytes (not UTF-8: refused on reading).
fn anything() -> impl Strategy<Value = Vec<u8>> {
    let char = prop_oneof![
        3 => select(&b"abcmodels_-= []{}\"'#.,\n0123456789"[..]).prop_map(char::from),
        1 => any::<char>(),
    ];
    prop_oneof![
        3 => vec(char, 0..200).prop_map(|c| c.into_iter().collect::<String>().into_bytes()),
        1 => vec(any::<u8>(), 0..200),
    ]
}

proptest! {
    #![proptest_config(config())]

    /// Any text or bytes.
    #[test]
    fn any_text_is_refused_with_a_message_or_expands(text in anything(), user in select(USER)) {
        check(&text, user)?;
    }

    /// The real files, mutated.
    #[test]
    fn mutated_real_files_are_refused_with_a_message_or_expand(
        text in mutated(),
        user in select(USER),
    ) {
        check(&text, user)?;
    }

    /// Files of real keys with values of every kind, and matrices of every size.
    #[test]
    fn built_files_are_refused_with_a_message_or_expand(text in built(), user in select(USER)) {
        check(&text, user)?;
    }
}

/// The real files themselves expand (the starting point of the mutations).
#[test]
fn the_real_files_expand() {
    for text in real_files() {
        check(text, &[]).unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// Regressions: failures the properties found, kept as plain tests.

/// Expands `text` as a scenario file with the user's `args`.
fn expand_text(text: &str, user: &[&str]) -> Result<iomodels::cli::scenario::Expanded, String> {
    let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    let mut args: Vec<OsString> = ["bench", "run", "--scenario"].map(OsString::from).into();
    args.push(file.path().into());
    args.extend(user.iter().map(OsString::from));
    expand(args).map_err(|e| e.to_string())
}

/// Found by `mutated_real_files_are_refused_with_a_message_or_expand`: a CPU range was listed
/// whole before being checked against the machine, so `0-99999999999` asked for an 800 GB
/// vector and the process aborted. It is refused now, with the first CPU that does not exist.
#[test]
fn a_huge_cpu_range_is_refused_not_allocated() {
    for range in [
        "0-99999999999",
        "0-18446744073709551615",
        "4294967296-4294967297",
    ] {
        for key in ["server_cpus", "client_cpus"] {
            let e = expand_text(&format!("models = \"all\"\n{key} = \"{range}\"\n"), &[])
                .expect_err(range);
            assert!(e.contains("does not exist here"), "{e}");
            assert!(e.contains(&format!("key `{key}`")), "{e}");
        }
    }
}

/// Found by `built_files_are_refused_with_a_message_or_expand`: a file's `all = true` stayed
/// when the command line picked its own models, so the point had `--all` with `--model` and
/// clap refused it (naming an `--all` the user never typed). It gives way as `models` does.
#[test]
fn a_files_all_gives_way_to_the_command_lines_models() {
    let x = expand_text("all = true\nconnections = 3\n", &["--model=reactor"]).unwrap();
    let args = &x.points[0].args;
    assert!(!args.iter().any(|a| a == "--all"), "{args:?}");
    assert!(Cli::try_parse_from(args).is_ok(), "{args:?}");
    // Without a pick on the command line, the file's stands.
    let x = expand_text("all = true\n", &[]).unwrap();
    assert!(x.points[0].args.iter().any(|a| a == "--all"));
}

/// Found by `mutated_real_files_are_refused_with_a_message_or_expand`: for a required argument
/// missing, the message kept clap's first line only, "the following required arguments were
/// not provided:", and not which. It names them now.
#[test]
fn a_missing_required_argument_is_named() {
    let e = expand_text("models = []\n", &[]).unwrap_err();
    assert!(
        e.ends_with("not provided: <--model <MODEL>|--all|--server <NAME=COMMAND>>"),
        "{e}"
    );
    let e = expand_text("models = \"all\"\nnormalize_to = \"reactor\"\n", &[]).unwrap_err();
    assert!(e.ends_with("not provided: --baseline <BASELINE>"), "{e}");
}

/// Found by the long run of `built_files_are_refused_with_a_message_or_expand`: the message
/// was clap's first line, so a value with a line break in it cut it short (`invalid value
/// ':`). It is clap's first paragraph now, on one line, such a value escaped; the possible
/// values come along.
#[test]
fn a_value_with_a_line_break_is_shown_whole() {
    let e = expand_text("models = \"all\"\nconnections = \"a\\nb\"\n", &[]).unwrap_err();
    assert!(
        e.contains("invalid value 'a\\nb' for '--connections"),
        "{e}"
    );
    assert!(
        e.ends_with("`a\\nb` is not a whole number of at least 1"),
        "{e}"
    );
    let e = expand_text("models = \"all\"\nworkload = \"x\"\n", &[]).unwrap_err();
    assert!(
        e.ends_with("[possible values: echo, http, resp, memcache]"),
        "{e}"
    );
}
