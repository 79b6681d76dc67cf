//! Scenario files: `bench run --scenario FILE`, a TOML file of `bench run` options.
//!
//! Each key is a long option of `bench run` (`connections = 100`, `workload = "http"`,
//! `work_us = 200`, `quiet = true`; `_` and `-` alike), plus `models`: a list of names or
//! `"all"`. The file's options go before the command line's, so an option given on the command
//! line wins (and `--model`/`--all` there replace the file's `models`). Values are checked by
//! the same parsers as the command line; an unknown key, a bad value or a value of the wrong
//! kind is refused with the file, the line and the key named (exit 2).

use std::ffi::OsString;
use std::path::Path;

use clap::error::ContextKind;
use clap::{CommandFactory, Parser};

use crate::cli::Cli;
use crate::Error;

/// The command line with the options of the `--scenario` file of a `bench run`, if any,
/// inserted right after `run`; other command lines come back as they were.
pub fn expand_args(args: Vec<OsString>) -> Result<Vec<OsString>, Error> {
    if args.get(1).and_then(|a| a.to_str()) != Some("run") {
        return Ok(args);
    }
    let Some(path) = scenario_path(&args[2..]) else {
        return Ok(args);
    };
    let user_picks_models = args[2..]
        .iter()
        .filter_map(|a| a.to_str())
        .any(|a| a == "--model" || a.starts_with("--model=") || a == "--all");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        Error::Usage(format!(
            "cannot read the scenario file {}: {e}",
            path.display()
        ))
    })?;
    let from_file = scenario_args(&path, &text, user_picks_models)?;
    let mut out = args[..2].to_vec();
    out.extend(from_file.into_iter().map(OsString::from));
    out.extend(args[2..].iter().cloned());
    Ok(out)
}

/// The value of `--scenario` among `bench run`'s arguments.
fn scenario_path(args: &[OsString]) -> Option<std::path::PathBuf> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let a = a.to_str()?;
        if a == "--" {
            return None;
        }
        if a == "--scenario" {
            return it.next().map(Into::into);
        }
        if let Some(v) = a.strip_prefix("--scenario=") {
            return Some(v.into());
        }
    }
    None
}

/// The options a scenario file stands for, as command-line arguments, checked.
pub fn scenario_args(path: &Path, text: &str, skip_models: bool) -> Result<Vec<String>, Error> {
    let where_ = |key: &str| match line_of(text, key) {
        Some(line) => format!("scenario {}, line {line}, key `{key}`", path.display()),
        None => format!("scenario {}, key `{key}`", path.display()),
    };
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        Error::Usage(format!(
            "scenario {} is not valid TOML: {}",
            path.display(),
            e.to_string().trim_end()
        ))
    })?;
    let run = Cli::command();
    let run = run
        .find_subcommand("run")
        .expect("bench run is a subcommand");
    let mut args: Vec<String> = Vec::new();
    let mut picks_models = false;
    for (key, value) in &table {
        let name = key.replace('_', "-");
        if name == "models" || name == "model" {
            picks_models = true;
            if skip_models {
                continue;
            }
            match value {
                toml::Value::String(s) if s == "all" => args.push("--all".into()),
                toml::Value::String(s) => args.push(format!("--model={s}")),
                toml::Value::Array(names) => {
                    for n in names {
                        let Some(n) = n.as_str() else {
                            return Err(Error::Usage(format!(
                                "{}: model names are strings, like models = [\"reactor\", \"tokio\"]",
                                where_(key)
                            )));
                        };
                        args.push(format!("--model={n}"));
                    }
                }
                _ => {
                    return Err(Error::Usage(format!(
                    "{}: write models = \"all\" or a list of names, like models = [\"reactor\"]",
                    where_(key)
                )))
                }
            }
            continue;
        }
        let arg = run
            .get_arguments()
            .find(|a| a.get_long() == Some(name.as_str()) && name != "scenario" && name != "help");
        let Some(arg) = arg else {
            let mut known: Vec<String> = run
                .get_arguments()
                .filter_map(|a| a.get_long())
                .filter(|l| !matches!(*l, "scenario" | "help" | "model" | "all"))
                .map(|l| l.replace('-', "_"))
                .collect();
            known.insert(0, "models".into());
            return Err(Error::Usage(format!(
                "{}: unknown key (the keys are bench run's options: {})",
                where_(key),
                known.join(", ")
            )));
        };
        let takes_value = arg.get_action().takes_values();
        match (value, takes_value) {
            (toml::Value::Boolean(on), false) => {
                if *on {
                    args.push(format!("--{name}"));
                }
            }
            (toml::Value::Boolean(_), true) => {
                return Err(Error::Usage(format!(
                    "{}: takes a value, not true/false",
                    where_(key)
                )))
            }
            (_, false) => {
                return Err(Error::Usage(format!(
                    "{}: is a switch: write {key} = true",
                    where_(key)
                )))
            }
            // One argument each (`--key=value`), so that a value starting with `-` stays a
            // value.
            (toml::Value::String(s), true) => args.push(format!("--{name}={s}")),
            (toml::Value::Integer(n), true) => args.push(format!("--{name}={n}")),
            (toml::Value::Float(x), true) => args.push(format!("--{name}={x}")),
            (toml::Value::Array(_), true) => {
                return Err(Error::Usage(format!(
                    "{}: takes one value (sweeping a list of values is not supported yet)",
                    where_(key)
                )))
            }
            (_, true) => {
                return Err(Error::Usage(format!(
                    "{}: write a number or a string",
                    where_(key)
                )))
            }
        }
    }
    // Check every value with the command line's own parsers, now, naming the key.
    let mut check = vec!["bench".to_string(), "run".to_string()];
    check.extend(args.iter().cloned());
    if skip_models || !picks_models {
        check.push("--all".into());
    }
    if let Err(e) = Cli::try_parse_from(&check) {
        let key = match e.get(ContextKind::InvalidArg) {
            Some(clap::error::ContextValue::String(flag)) => flag
                .trim_start_matches("--")
                .split([' ', '='])
                .next()
                .unwrap_or_default()
                .replace('-', "_"),
            _ => String::new(),
        };
        let why = e
            .to_string()
            .lines()
            .next()
            .unwrap_or_default()
            .trim_start_matches("error: ")
            .to_string();
        let at = if key.is_empty() {
            format!("scenario {}", path.display())
        } else {
            let key = if key == "model" || key == "all" {
                "models".to_string()
            } else {
                key
            };
            let file_key = table
                .keys()
                .find(|k| k.replace('-', "_") == key || (key == "models" && *k == "model"))
                .cloned()
                .unwrap_or(key);
            where_(&file_key)
        };
        return Err(Error::Usage(format!("{at}: {why}")));
    }
    Ok(args)
}

/// The line (from 1) where `key` is set.
fn line_of(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|line| {
            let line = line.trim_start();
            line.strip_prefix(key)
                .or_else(|| line.strip_prefix(&format!("\"{key}\"")))
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

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

        let e = args("connections = [10, 100]\n").unwrap_err();
        assert!(e.contains("takes one value"), "{e}");

        let e = args("models = [\"nope\"]\n").unwrap_err();
        assert!(e.contains("key `models`"), "{e}");
        assert!(e.contains("nope"), "{e}");

        let e = args("connections = \n").unwrap_err();
        assert!(e.contains("is not valid TOML"), "{e}");
        assert!(e.contains("line 1"), "{e}");

        let e = args("scenario = \"x.toml\"\n").unwrap_err();
        assert!(e.contains("unknown key"), "{e}");
    }
}
