//! Scenario files: `bench run --scenario FILE`, a TOML file of `bench run` options.
//!
//! Each key is a long option of `bench run` (`connections = 100`, `workload = "http"`,
//! `work_us = 200`, `quiet = true`; `_` and `-` alike), plus `models`: a list of names or
//! `"all"`. The file's options go before the command line's, so an option given on the command
//! line wins (and `--model`/`--all` there replace the file's `models`). Values are checked by
//! the same parsers as the command line; an unknown key, a bad value or a value of the wrong
//! kind is refused with the file, the line and the key named (exit 2).
//!
//! A `[matrix]` table sweeps options: each key is an option and its value the list of values
//! to run (`connections = [10, 100]`; a switch takes `[false, true]`). [`expand`] gives one
//! command line per point of the sweep, the first key varying slowest, like nested loops in
//! file order. `models` may sit in the matrix too (it means what it means at the top level:
//! the models run at every point). An option set both at the top level and in the matrix is
//! refused; one the command line sets is fixed there and leaves the sweep. Every point's
//! command line is checked before anything runs.

use std::collections::HashSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::parser::ValueSource;
use clap::{Arg, Command, CommandFactory, FromArgMatches};
use serde_json::Value as Json;

use crate::cli::Cli;
use crate::Error;

/// The most points a matrix may make.
pub const MAX_POINTS: usize = 1000;

/// A `bench run` command line with its scenario file expanded: one argument list per point
/// of the sweep.
#[derive(Debug, Clone)]
pub struct Expanded {
    /// In sweep order: the first matrix key varies slowest, the last fastest (like nested
    /// loops in file order). A command line without --scenario, or a scenario without a
    /// matrix, gives exactly one point with no values and the arguments as they would have
    /// been before (file options inserted after `run`, then the user's).
    pub points: Vec<Point>,
    /// The matrix as the file wrote it (keys with `_`, e.g. "work_us"; values as JSON:
    /// numbers, strings, booleans), minus the keys the command line fixed; None when the file
    /// has no matrix (or every key was fixed).
    pub matrix: Option<Vec<(String, Vec<Json>)>>,
}

/// One point of a sweep.
#[derive(Debug, Clone)]
pub struct Point {
    /// The swept keys (with `_`) and this point's values, in matrix order.
    pub values: Vec<(String, Json)>,
    /// The whole command line for this point: ["bench", "run", <file's options>, <this
    /// point's options>, <the user's own options>].
    pub args: Vec<OsString>,
}

impl Expanded {
    /// A command line that stands for itself.
    fn single(args: Vec<OsString>) -> Expanded {
        Expanded {
            points: vec![Point {
                values: Vec::new(),
                args,
            }],
            matrix: None,
        }
    }
}

/// The command line of a `bench run` with its `--scenario` file expanded into one command
/// line per point of the file's matrix (one point without a matrix); other command lines,
/// and a `bench run` without `--scenario`, come back as the one point, unchanged. Every
/// point's options from the file are checked with the command line's parsers; the user's own
/// options are left to the caller's parse.
pub fn expand(args: Vec<OsString>) -> Result<Expanded, Error> {
    if args.get(1).and_then(|a| a.to_str()) != Some("run") {
        return Ok(Expanded::single(args));
    }
    let Some(path) = scenario_path(&args[2..]) else {
        return Ok(Expanded::single(args));
    };
    let text = std::fs::read_to_string(&path).map_err(|e| {
        Error::Usage(format!(
            "cannot read the scenario file {}: {e}",
            path.display()
        ))
    })?;
    expand_file(args, &path, &text)
}

/// [`expand`] with the scenario file read: `path` names it in messages, `text` is its content.
fn expand_file(args: Vec<OsString>, path: &Path, text: &str) -> Result<Expanded, Error> {
    let mut cmd = Cli::command();
    let given = given_on_command_line(&mut cmd, &args[2..]);
    let file = read(Src { path, text }, given.picks_models, &mut cmd)?;
    let swept: Vec<&Dim> = file
        .dims
        .iter()
        .filter(|d| !given.ids.contains(&d.id))
        .collect();
    let points = file.points(&swept, &mut cmd)?;
    let (head, user) = args.split_at(2);
    let points = points
        .into_iter()
        .map(|(values, options)| {
            let mut line = head.to_vec();
            line.extend(file.base.iter().map(OsString::from));
            line.extend(options.into_iter().map(OsString::from));
            line.extend(user.iter().cloned());
            Point { values, args: line }
        })
        .collect();
    let matrix = (!swept.is_empty()).then(|| {
        swept
            .iter()
            .map(|d| (d.name.clone(), d.values.clone()))
            .collect()
    });
    Ok(Expanded { points, matrix })
}

/// The value of `--scenario` among `bench run`'s arguments (the last one, as clap takes it).
fn scenario_path(args: &[OsString]) -> Option<PathBuf> {
    let mut found = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let Some(a) = a.to_str() else {
            continue;
        };
        if a == "--" {
            break;
        }
        if a == "--scenario" {
            found = it.next().map(Into::into);
        } else if let Some(v) = a.strip_prefix("--scenario=") {
            found = Some(v.into());
        }
    }
    found
}

/// What the user's own command line sets.
struct Given {
    /// The clap ids of the `run` options given on the command line.
    ids: HashSet<String>,
    /// Whether it picks the models (`--model` or `--all`).
    picks_models: bool,
}

/// Which `bench run` options the user's arguments (those after `run`) set: a trial parse by
/// clap (with `--all` added when they pick no models); none when they do not parse (a bad
/// value, `--help`: the caller's own parse reports it, whatever the sweep).
fn given_on_command_line(cmd: &mut Command, user: &[OsString]) -> Given {
    let mut line: Vec<OsString> = vec!["bench".into(), "run".into()];
    line.extend(user.iter().cloned());
    let mut matches = cmd.try_get_matches_from_mut(line.clone());
    let mut added_all = false;
    if matches!(&matches, Err(e) if e.kind() == ErrorKind::MissingRequiredArgument) {
        line.push("--all".into());
        added_all = true;
        matches = cmd.try_get_matches_from_mut(line);
    }
    let run = run_command(cmd);
    let ids: HashSet<String> = match matches
        .as_ref()
        .ok()
        .and_then(|m| m.subcommand_matches("run"))
    {
        Some(m) => run
            .get_arguments()
            .map(|a| a.get_id().as_str())
            .filter(|id| m.value_source(id) == Some(ValueSource::CommandLine))
            .filter(|id| !(added_all && *id == "all"))
            .map(String::from)
            .collect(),
        // They do not parse (a bad value, `--help`): the caller's own parse says so, whatever
        // the sweep.
        None => HashSet::new(),
    };
    let picks_models = ids.contains("model") || ids.contains("all");
    Given { ids, picks_models }
}

fn run_command(cmd: &Command) -> &Command {
    cmd.find_subcommand("run")
        .expect("bench run is a subcommand")
}

/// A scenario file, for messages.
#[derive(Clone, Copy)]
struct Src<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Src<'_> {
    /// "scenario FILE, line N, key `KEY`" for a key of the top level (`section` None) or of a
    /// table.
    fn at(&self, section: Option<&str>, key: &str) -> String {
        let shown = match section {
            Some(s) => format!("{s}.{key}"),
            None => key.to_string(),
        };
        match line_of(self.text, section, key) {
            Some(line) => format!(
                "scenario {}, line {line}, key `{shown}`",
                self.path.display()
            ),
            None => format!("scenario {}, key `{shown}`", self.path.display()),
        }
    }

    fn usage(&self, section: Option<&str>, key: &str, why: impl std::fmt::Display) -> Error {
        Error::Usage(format!("{}: {why}", self.at(section, key)))
    }

    /// "scenario FILE, line N, key `KEY`, value V: WHY".
    fn usage_value(
        &self,
        section: Option<&str>,
        key: &str,
        value: impl std::fmt::Display,
        why: impl std::fmt::Display,
    ) -> Error {
        Error::Usage(format!("{}, value {value}: {why}", self.at(section, key)))
    }
}

/// The line (from 1) where `key` is set, at the top level (`section` None) or in the table
/// `section` (`[matrix]`, `matrix = { ... }` or `matrix.key = ...`), as the TOML parser
/// places it: comments, strings and the other sections do not count.
fn line_of(text: &str, section: Option<&str>, key: &str) -> Option<usize> {
    let doc = toml::de::DeTable::parse(text).ok()?;
    let mut table = doc.get_ref();
    if let Some(section) = section {
        let (_, value) = table.iter().find(|(k, _)| &**k.get_ref() == section)?;
        table = value.get_ref().as_table()?;
    }
    let (k, _) = table.iter().find(|(k, _)| &**k.get_ref() == key)?;
    Some(text[..k.span().start].matches('\n').count() + 1)
}

/// A swept key of the matrix.
struct Dim {
    /// As the file wrote it.
    key: String,
    /// With `_`.
    name: String,
    /// clap's id of its option.
    id: String,
    /// As JSON.
    values: Vec<Json>,
    /// Each value's argument (None: a switch set to false).
    args: Vec<Option<String>>,
}

/// A scenario file read and checked, not yet expanded.
struct File<'a> {
    src: Src<'a>,
    /// The options of the top level and the matrix's `models`, in file order.
    base: Vec<String>,
    /// Whether the trial parses need `--all` (no models picked by the file, or its models
    /// left out for the command line's).
    add_all: bool,
    /// The matrix's keys, models left out, command-line fixed ones included.
    dims: Vec<Dim>,
}

/// Why a value does not fit an option.
enum Wrong {
    /// true/false for an option that takes a value.
    BoolForValue,
    /// Not true/false for a switch.
    NotBool,
    List,
    Table,
    /// A datetime.
    Other,
}

/// The argument for one value of option `--name` (None for a switch set to false).
fn scalar_arg(name: &str, takes_value: bool, value: &toml::Value) -> Result<Option<String>, Wrong> {
    match (value, takes_value) {
        (toml::Value::Array(_), _) => Err(Wrong::List),
        (toml::Value::Table(_), _) => Err(Wrong::Table),
        (toml::Value::Boolean(on), false) => Ok(on.then(|| format!("--{name}"))),
        (toml::Value::Boolean(_), true) => Err(Wrong::BoolForValue),
        (_, false) => Err(Wrong::NotBool),
        // One argument each (`--key=value`), so that a value starting with `-` stays a value.
        (toml::Value::String(s), true) => Ok(Some(format!("--{name}={s}"))),
        (toml::Value::Integer(n), true) => Ok(Some(format!("--{name}={n}"))),
        (toml::Value::Float(x), true) => Ok(Some(format!("--{name}={x}"))),
        (toml::Value::Datetime(_), true) => Err(Wrong::Other),
    }
}

/// The arguments of a `models` key: "all" or a list of names.
fn models_args(value: &toml::Value) -> Result<Vec<String>, &'static str> {
    match value {
        toml::Value::String(s) if s == "all" => Ok(vec!["--all".into()]),
        toml::Value::String(s) => Ok(vec![format!("--model={s}")]),
        toml::Value::Array(names) => names
            .iter()
            .map(|n| match n.as_str() {
                Some(n) => Ok(format!("--model={n}")),
                None => Err("model names are strings, like models = [\"reactor\", \"tokio\"]"),
            })
            .collect(),
        _ => Err("write models = \"all\" or a list of names, like models = [\"reactor\"]"),
    }
}

fn is_models(key: &str) -> bool {
    matches!(key.replace('_', "-").as_str(), "models" | "model")
}

/// Whether two keys name the same option (`_` and `-` alike; `model` and `models` too).
fn same_key(a: &str, b: &str) -> bool {
    a.replace('-', "_") == b.replace('-', "_") || (is_models(a) && is_models(b))
}

/// The option of `bench run` that a key names.
fn find_option<'c>(run: &'c Command, name: &str) -> Option<&'c Arg> {
    run.get_arguments()
        .find(|a| a.get_long() == Some(name) && name != "scenario" && name != "help")
}

/// "unknown key (the keys are ...)", for the top level or the matrix.
fn unknown_key(run: &Command, in_matrix: bool) -> String {
    let mut known: Vec<String> = run
        .get_arguments()
        .filter_map(|a| a.get_long())
        .filter(|l| !matches!(*l, "scenario" | "help" | "model" | "all"))
        .filter(|l| !in_matrix || not_sweepable(l).is_none())
        .map(|l| l.replace('-', "_"))
        .collect();
    known.insert(0, "models".into());
    if in_matrix {
        format!(
            "unknown key (the matrix's keys are the bench run options that can be swept: {}, \
             and models)",
            known[1..].join(", ")
        )
    } else {
        format!(
            "unknown key (the keys are bench run's options: {}; and a [matrix] table of them to \
             sweep)",
            known.join(", ")
        )
    }
}

/// Why an option cannot be swept, if it cannot.
fn not_sweepable(name: &str) -> Option<&'static str> {
    Some(match name {
        "out" => {
            "cannot be swept: one result file holds the whole sweep; set `out` at the top level"
        }
        "repeat" => {
            "cannot be swept: the repeats apply to every point; set `repeat` at the top level"
        }
        "quiet" => "cannot be swept: it applies to the whole sweep; set `quiet` at the top level",
        "accounting" => {
            "cannot be swept: the whole sweep counts system calls one way, so that its points \
             compare; set `accounting` at the top level"
        }
        "scenario" => "cannot be swept: a scenario file cannot load another",
        "all" => "is not a sweep: write models = \"all\" (at the top level or in the matrix)",
        _ => return None,
    })
}

/// Reads and checks a scenario file: its top level, its matrix, each value of the matrix with
/// the top level (the points themselves are checked by [`File::points`]).
fn read<'a>(src: Src<'a>, skip_models: bool, cmd: &mut Command) -> Result<File<'a>, Error> {
    let table: toml::Table = src.text.parse().map_err(|e: toml::de::Error| {
        Error::Usage(format!(
            "scenario {} is not valid TOML: {}",
            src.path.display(),
            e.to_string().trim_end()
        ))
    })?;
    let run = run_command(cmd).clone();
    let mut base: Vec<String> = Vec::new();
    // Where the file picks its models: the section and the key as written.
    let mut models_at: Option<(Option<&str>, &str)> = None;
    for (key, value) in &table {
        if key == "matrix" {
            continue;
        }
        let name = key.replace('_', "-");
        if is_models(key) {
            models_at = Some((None, key));
            if !skip_models {
                base.extend(models_args(value).map_err(|why| src.usage(None, key, why))?);
            }
            continue;
        }
        // `all = true` picks the models as `models = "all"` does, so the command line's
        // `--model` replaces it too (left in, it put `--all` beside `--model`: clap refuses).
        if name == "all" && skip_models {
            continue;
        }
        let Some(arg) = find_option(&run, &name) else {
            return Err(src.usage(None, key, unknown_key(&run, false)));
        };
        let takes_value = arg.get_action().takes_values();
        match scalar_arg(&name, takes_value, value) {
            Ok(a) => base.extend(a),
            Err(Wrong::BoolForValue) => {
                return Err(src.usage(None, key, "takes a value, not true/false"))
            }
            Err(Wrong::NotBool | Wrong::Table) if !takes_value => {
                return Err(src.usage(None, key, format!("is a switch: write {key} = true")))
            }
            Err(Wrong::List) if !takes_value => {
                return Err(src.usage(
                    None,
                    key,
                    format!(
                        "is a switch: write {key} = true, or sweep it in a [matrix] table at the \
                         end of the file: {key} = [false, true]"
                    ),
                ))
            }
            Err(Wrong::List) => {
                return Err(src.usage(
                    None,
                    key,
                    format!(
                        "takes one value; to sweep a list of values, move it to a [matrix] table \
                         at the end of the file: [matrix] {key} = {value}"
                    ),
                ))
            }
            Err(_) => return Err(src.usage(None, key, "write a number or a string")),
        }
    }

    let mut dims: Vec<Dim> = Vec::new();
    if let Some(matrix) = table.get("matrix") {
        let toml::Value::Table(matrix) = matrix else {
            return Err(src.usage(
                None,
                "matrix",
                "write a [matrix] table at the end of the file, each key an option and its \
                 list of values to sweep, like connections = [10, 100]",
            ));
        };
        let section = Some("matrix");
        for (key, value) in matrix {
            if let Some(top) = table.keys().find(|k| *k != "matrix" && same_key(k, key)) {
                let top_line =
                    line_of(src.text, None, top).map_or(String::new(), |l| format!(", line {l}"));
                return Err(src.usage(
                    section,
                    key,
                    format!(
                        "`{top}` is also set at the top level{top_line}: set one value there or \
                         sweep a list here, not both"
                    ),
                ));
            }
            let name = key.replace('_', "-");
            if is_models(key) {
                models_at = Some((section, key));
                if !skip_models {
                    base.extend(models_args(value).map_err(|why| src.usage(section, key, why))?);
                }
                continue;
            }
            if let Some(why) = not_sweepable(&name) {
                return Err(src.usage(section, key, why));
            }
            let Some(arg) = find_option(&run, &name) else {
                return Err(src.usage(section, key, unknown_key(&run, true)));
            };
            let takes_value = arg.get_action().takes_values();
            let toml::Value::Array(list) = value else {
                let why = if value.is_table() {
                    format!("write the list of values to sweep, like {key} = [1, 2], not a table")
                } else {
                    format!(
                        "write the list of values to sweep, like {key} = [{value}]; one value \
                         alone goes at the top level, before [matrix]"
                    )
                };
                return Err(src.usage(section, key, why));
            };
            if list.is_empty() {
                let example = if takes_value {
                    "[1, 2]"
                } else {
                    "[false, true]"
                };
                return Err(src.usage(
                    section,
                    key,
                    format!("the list is empty: give at least one value, like {key} = {example}"),
                ));
            }
            let mut dim = Dim {
                key: key.clone(),
                name: key.replace('-', "_"),
                id: arg.get_id().as_str().to_string(),
                values: Vec::new(),
                args: Vec::new(),
            };
            for v in list {
                let bad = |why: &str| src.usage_value(section, key, v, why);
                let a = match scalar_arg(&name, takes_value, v) {
                    Ok(a) => a,
                    Err(Wrong::BoolForValue) => return Err(bad("takes a value, not true/false")),
                    Err(Wrong::NotBool) => {
                        return Err(bad(&format!("is a switch: write {key} = [false, true]")))
                    }
                    Err(Wrong::List) => {
                        return Err(bad(&format!(
                            "a list of lists: write one list of values, like {key} = [1, 2]"
                        )))
                    }
                    Err(Wrong::Table) => {
                        return Err(bad("a table is not a value: write numbers or strings"))
                    }
                    Err(Wrong::Other) => return Err(bad("write a number or a string")),
                };
                let json = match v {
                    toml::Value::String(s) => Json::String(s.clone()),
                    toml::Value::Integer(n) => Json::from(*n),
                    toml::Value::Boolean(b) => Json::Bool(*b),
                    toml::Value::Float(x) => match serde_json::Number::from_f64(*x) {
                        Some(x) => Json::Number(x),
                        None => return Err(bad("write a finite number, or a string")),
                    },
                    _ => unreachable!("scalar_arg took only strings, numbers and booleans"),
                };
                if dim.args.contains(&a) {
                    return Err(bad("listed twice (once is enough)"));
                }
                dim.values.push(json);
                dim.args.push(a);
            }
            dims.push(dim);
        }
    }

    let add_all = skip_models || models_at.is_none();
    // The file's options alone, with the command line's parsers, naming the key.
    if let Err(e) = check(cmd, &base, &[], add_all) {
        let (key, why) = explain(&e);
        let Some(key) = key else {
            return Err(Error::Usage(format!(
                "scenario {}: {why}",
                src.path.display()
            )));
        };
        let at = match models_at {
            Some((section, file_key)) if is_models(&key) || key == "all" => {
                src.at(section, file_key)
            }
            _ => match table.keys().find(|k| *k != "matrix" && same_key(k, &key)) {
                Some(file_key) => src.at(None, file_key),
                None => format!("scenario {}", src.path.display()),
            },
        };
        return Err(Error::Usage(format!("{at}: {why}")));
    }
    // Each value of the matrix with them.
    for dim in &dims {
        for (value, arg) in dim.values.iter().zip(&dim.args) {
            let Some(arg) = arg else { continue };
            if let Err(e) = check(cmd, &base, std::slice::from_ref(arg), add_all) {
                let (_, why) = explain(&e);
                return Err(src.usage_value(Some("matrix"), &dim.key, value, why));
            }
        }
    }
    Ok(File {
        src,
        base,
        add_all,
        dims,
    })
}

/// A point of a sweep: its keys and values, and its options.
type PointParts = (Vec<(String, Json)>, Vec<String>);

impl File<'_> {
    /// The points of the sweep over `swept` (the first varying slowest): each point's keys
    /// and values, and its options; every point checked with the file's options.
    fn points(&self, swept: &[&Dim], cmd: &mut Command) -> Result<Vec<PointParts>, Error> {
        let count = swept
            .iter()
            .try_fold(1usize, |n, d| n.checked_mul(d.values.len()));
        if count.map_or(true, |n| n > MAX_POINTS) {
            let sizes: Vec<String> = swept.iter().map(|d| d.values.len().to_string()).collect();
            let count = count.map_or("too many".to_string(), |n| n.to_string());
            return Err(self.src.usage(
                None,
                "matrix",
                format!(
                    "the matrix makes {count} points ({}), more than {MAX_POINTS}: split the \
                     sweep into several scenario files (or fix some keys on the command line)",
                    sizes.join(" × ")
                ),
            ));
        }
        let mut out = Vec::new();
        let mut index = vec![0usize; swept.len()];
        loop {
            let values: Vec<(String, Json)> = swept
                .iter()
                .zip(&index)
                .map(|(d, &i)| (d.name.clone(), d.values[i].clone()))
                .collect();
            let options: Vec<String> = swept
                .iter()
                .zip(&index)
                .filter_map(|(d, &i)| d.args[i].clone())
                .collect();
            // With one key or none, the point is the file's options and one value, checked
            // already.
            if swept.len() > 1 {
                if let Err(e) = check(cmd, &self.base, &options, self.add_all) {
                    return Err(self.point_error(&e, swept, &index));
                }
            }
            out.push((values, options));
            // The next point: the last key fastest.
            let mut k = swept.len();
            loop {
                if k == 0 {
                    return Ok(out);
                }
                k -= 1;
                index[k] += 1;
                if index[k] < swept[k].values.len() {
                    break;
                }
                index[k] = 0;
            }
        }
    }

    /// The error of a point whose values pass one by one but not together.
    fn point_error(&self, e: &clap::Error, swept: &[&Dim], index: &[usize]) -> Error {
        let (key, why) = explain(e);
        let point: Vec<String> = swept
            .iter()
            .zip(index)
            .map(|(d, &i)| format!("{} = {}", d.key, d.values[i]))
            .collect();
        let point = point.join(", ");
        let dim = key.and_then(|key| {
            swept
                .iter()
                .zip(index)
                .find(|(d, _)| same_key(&d.key, &key))
        });
        match dim {
            Some((d, &i)) => self.src.usage_value(
                Some("matrix"),
                &d.key,
                &d.values[i],
                format!("{why} (at the point {point})"),
            ),
            None => Error::Usage(format!(
                "scenario {}, at the point {point}: {why}",
                self.src.path.display()
            )),
        }
    }
}

/// Parses `bench run <options> <more> [--all]` with the command line's own parsers.
fn check(
    cmd: &mut Command,
    options: &[String],
    more: &[String],
    add_all: bool,
) -> Result<(), clap::Error> {
    let mut line = vec!["bench", "run"];
    line.extend(options.iter().chain(more).map(String::as_str));
    if add_all {
        line.push("--all");
    }
    let matches = cmd.try_get_matches_from_mut(line)?;
    Cli::from_arg_matches(&matches).map(drop)
}

/// The key a clap error is about (the option's long name with `_`), if it names one, and the
/// error's first paragraph on one line.
fn explain(e: &clap::Error) -> (Option<String>, String) {
    let key = match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(flag)) => Some(
            flag.trim_start_matches('-')
                .split([' ', '='])
                .next()
                .unwrap_or_default()
                .replace('-', "_"),
        )
        .filter(|k| !k.is_empty()),
        _ => None,
    };
    // Not the first line alone: "the following required arguments were not provided:" and
    // "[possible values: ...]" go on below it, and a value with a line break in it would cut
    // it short (such a value is shown escaped).
    let mut text = e.to_string();
    if let Some(ContextValue::String(value)) = e.get(ContextKind::InvalidValue) {
        if value.chars().any(char::is_control) {
            text = text.replace(value.as_str(), &value.escape_debug().to_string());
        }
    }
    let paragraph = text.split("\n\n").next().unwrap_or_default();
    let lines: Vec<&str> = paragraph.lines().map(str::trim).collect();
    let why = lines.join(" ").trim_start_matches("error: ").to_string();
    (key, why)
}
#[cfg(test)]
mod tests {
    use super::*;

    /// The options a scenario file stands for, as command-line arguments, checked: its top level
    /// (and its matrix's `models`). A matrix is checked too, every point of it, but its points are
    /// not among these arguments: [`expand`] gives them.
    fn scenario_args(path: &Path, text: &str, skip_models: bool) -> Result<Vec<String>, Error> {
        let mut cmd = Cli::command();
        let file = read(Src { path, text }, skip_models, &mut cmd)?;
        let all: Vec<&Dim> = file.dims.iter().collect();
        file.points(&all, &mut cmd)?;
        Ok(file.base)
    }
    use clap::Parser;

    fn args(text: &str) -> Result<Vec<String>, String> {
        scenario_args(Path::new("s.toml"), text, false).map_err(|e| e.to_string())
    }

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

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    fn strs(args: &[OsString]) -> Vec<&str> {
        args.iter().map(|a| a.to_str().unwrap()).collect()
    }

    /// `bench run --scenario s.toml USER...` with s.toml holding `text`.
    fn sweep(text: &str, user: &[&str]) -> Result<Expanded, String> {
        let mut line = os(&["bench", "run", "--scenario", "s.toml"]);
        line.extend(os(user));
        expand_file(line, Path::new("s.toml"), text).map_err(|e| e.to_string())
    }

    /// The swept keys and their values, as JSON text.
    fn matrix_of(e: &Expanded) -> Option<Vec<(String, String)>> {
        e.matrix.as_ref().map(|m| {
            m.iter()
                .map(|(k, vs)| (k.clone(), serde_json::to_string(vs).unwrap()))
                .collect()
        })
    }

    const TWO_BY_THREE: &str = "# A sweep: connections = [1] here is a comment\n\
                                workload = \"http\"\n\
                                \n\
                                [matrix]\n\
                                connections = [10, 100]\n\
                                payload = [64, 4096, 65536]\n";

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
    fn models_in_the_matrix_run_at_every_point() {
        let text =
            "connections = 5\n[matrix]\nmodels = [\"reactor\", \"tokio\"]\npipeline = [1, 16]\n";
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
            e.contains(
                "line 3, key `matrix.work_us`: `work-us` is also set at the top level, line 1"
            ),
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
    fn line_of_finds_the_key_in_its_section() {
        let text = "# connections = 1 in a comment\n\
                    description = \"\"\"\n\
                    connections = 2 in a string\n\
                    \"\"\"\n\
                    connections = 3\n\
                    [matrix]\n\
                    # payload = [1]\n\
                    \"payload\" = [1]\n\
                    connections = [4]\n";
        assert_eq!(line_of(text, None, "connections"), Some(5));
        assert_eq!(line_of(text, Some("matrix"), "connections"), Some(9));
        assert_eq!(line_of(text, Some("matrix"), "payload"), Some(8));
        assert_eq!(line_of(text, None, "payload"), None);
        assert_eq!(line_of(text, None, "matrix"), Some(6));
        // An inline table and dotted keys.
        let text = "workload = \"http\"\nmatrix = { connections = [1], payload = [2] }\n";
        assert_eq!(line_of(text, Some("matrix"), "payload"), Some(2));
        let text = "workload = \"http\"\nmatrix.connections = [1]\n\nmatrix.payload = [2]\n";
        assert_eq!(line_of(text, Some("matrix"), "payload"), Some(4));
        assert_eq!(line_of(text, None, "workload"), Some(1));
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
}
