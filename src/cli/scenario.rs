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
//!
//! `[[expect]]` tables state the scenario's claim as checks over its own figures
//! ([`expect`]); they travel into the result file for `bench report` to judge.

use std::collections::HashSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::error::ErrorKind;
use clap::parser::ValueSource;
use clap::{Command, CommandFactory};

use super::check::{check_options, Src};
use super::keys::read_top_level;
use super::sweep::{check_values, points, read_matrix, Dim, File};
pub use super::sweep::{Expanded, Point, MAX_POINTS};
use crate::cli::Cli;
use crate::result::Expectation;
use crate::Error;

mod expect;

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
    let (file, expect) = read(Src { path, text }, given.picks_models, &mut cmd)?;
    let swept: Vec<&Dim> = file
        .dims
        .iter()
        .filter(|d| !given.ids.contains(&d.id))
        .collect();
    let listed = !file.listed.is_empty();
    let points = if listed {
        file.listed.clone()
    } else {
        points(&file, &swept, &mut cmd)?
    };
    let (head, user) = args.split_at(2);
    let points: Vec<Point> = points
        .into_iter()
        .map(|(values, options)| {
            let mut line = head.to_vec();
            line.extend(file.base.iter().map(OsString::from));
            line.extend(options.into_iter().map(OsString::from));
            line.extend(user.iter().cloned());
            Point { values, args: line }
        })
        .collect();
    let matrix = if listed {
        listed_matrix(&points)
    } else {
        (!swept.is_empty()).then(|| {
            swept
                .iter()
                .map(|d| (d.name.clone(), d.values.clone()))
                .collect()
        })
    };
    Ok(Expanded {
        points,
        matrix,
        expect,
        listed,
    })
}

/// What listed points vary: each key of theirs with its values in point order (distinct).
fn listed_matrix(points: &[Point]) -> Option<Vec<(String, Vec<serde_json::Value>)>> {
    let mut keys: Vec<(String, Vec<serde_json::Value>)> = Vec::new();
    for point in points {
        for (key, value) in &point.values {
            match keys.iter_mut().find(|(k, _)| k == key) {
                Some((_, seen)) if !seen.contains(value) => seen.push(value.clone()),
                Some(_) => {}
                None => keys.push((key.clone(), vec![value.clone()])),
            }
        }
    }
    (!keys.is_empty()).then_some(keys)
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
    let picks_models = ids.contains("model") || ids.contains("all") || ids.contains("server");
    Given { ids, picks_models }
}

fn run_command(cmd: &Command) -> &Command {
    cmd.find_subcommand("run")
        .expect("bench run is a subcommand")
}

/// Reads and checks a scenario file: its top level, its matrix, each value of the matrix with
/// the top level (the points themselves are checked by [`points`]), and its expectations.
fn read<'a>(
    src: Src<'a>,
    skip_models: bool,
    cmd: &mut Command,
) -> Result<(File<'a>, Vec<Expectation>), Error> {
    let table = parse(src)?;
    let run = run_command(cmd).clone();
    let (mut base, top_models) = read_top_level(src, &table, &run, skip_models)?;
    // Where the file picks its models: the section and the key as written.
    let mut models_at = top_models.map(|key| (None, key));
    let mut dims = Vec::new();
    if let Some(matrix) = table.get("matrix") {
        let matrix = read_matrix(src, &table, matrix, &run, skip_models)?;
        base.extend(matrix.models);
        if let Some(key) = matrix.models_key {
            models_at = Some((Some("matrix"), key));
        }
        dims = matrix.dims;
    }
    let listed = super::points::read(src, &table, cmd, &base, skip_models, models_at.is_some())?;
    // Points that pick their own models leave the top level without: check it as if it had.
    let add_all = skip_models || models_at.is_none();
    check_options(src, &table, cmd, &base, models_at, add_all)?;
    check_values(src, cmd, &base, &dims, add_all)?;
    let expect = expect::read(src, &table, &dims)?;
    Ok((
        File {
            src,
            base,
            add_all,
            dims,
            listed,
        },
        expect,
    ))
}

/// The file as a TOML table.
fn parse(src: Src) -> Result<toml::Table, Error> {
    src.text.parse().map_err(|e: toml::de::Error| {
        Error::Usage(format!(
            "scenario {} is not valid TOML: {}",
            src.path.display(),
            e.to_string().trim_end()
        ))
    })
}

#[cfg(test)]
pub(super) mod tests;
