//! Checking a scenario file's keys and values, and saying what is wrong with one: where it
//! sits in the file ([`Src`]: the file, the line, the key), what kind of value an option takes,
//! which keys exist and which cannot be swept, and a trial parse of the options with the
//! command line's own parsers ([`check`]) whose clap error [`explain`] turns into one line
//! naming the key.

use std::path::Path;

use clap::error::{ContextKind, ContextValue};
use clap::{Arg, Command, FromArgMatches};

use crate::cli::Cli;
use crate::Error;
/// A scenario file, for messages.
#[derive(Clone, Copy)]
pub(super) struct Src<'a> {
    pub(super) path: &'a Path,
    pub(super) text: &'a str,
}

impl Src<'_> {
    /// "scenario FILE, line N, key `KEY`" for a key of the top level (`section` None) or of a
    /// table.
    pub(super) fn at(&self, section: Option<&str>, key: &str) -> String {
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

    pub(super) fn usage(
        &self,
        section: Option<&str>,
        key: &str,
        why: impl std::fmt::Display,
    ) -> Error {
        Error::Usage(format!("{}: {why}", self.at(section, key)))
    }

    /// "scenario FILE, line N, key `KEY`, value V: WHY".
    pub(super) fn usage_value(
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
pub(super) fn line_of(text: &str, section: Option<&str>, key: &str) -> Option<usize> {
    let doc = toml::de::DeTable::parse(text).ok()?;
    let mut table = doc.get_ref();
    if let Some(section) = section {
        let (_, value) = table.iter().find(|(k, _)| &**k.get_ref() == section)?;
        table = value.get_ref().as_table()?;
    }
    let (k, _) = table.iter().find(|(k, _)| &**k.get_ref() == key)?;
    Some(text[..k.span().start].matches('\n').count() + 1)
}

/// Why a value does not fit an option.
pub(super) enum Wrong {
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
pub(super) fn scalar_arg(
    name: &str,
    takes_value: bool,
    value: &toml::Value,
) -> Result<Option<String>, Wrong> {
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
pub(super) fn models_args(value: &toml::Value) -> Result<Vec<String>, &'static str> {
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

pub(super) fn is_models(key: &str) -> bool {
    matches!(key.replace('_', "-").as_str(), "models" | "model")
}

/// Whether two keys name the same option (`_` and `-` alike; `model` and `models` too).
pub(super) fn same_key(a: &str, b: &str) -> bool {
    a.replace('-', "_") == b.replace('-', "_") || (is_models(a) && is_models(b))
}

/// The option of `bench run` that a key names.
pub(super) fn find_option<'c>(run: &'c Command, name: &str) -> Option<&'c Arg> {
    run.get_arguments()
        .find(|a| a.get_long() == Some(name) && name != "scenario" && name != "help")
}

/// "unknown key (the keys are ...)", for the top level or the matrix.
pub(super) fn unknown_key(run: &Command, in_matrix: bool) -> String {
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
pub(super) fn not_sweepable(name: &str) -> Option<&'static str> {
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

/// The file's options alone (the top level and the models), with the command line's parsers:
/// an error names the key of the file it is about. `models_at`: where the file picks its models
/// (the section and the key as written).
pub(super) fn check_options(
    src: Src,
    table: &toml::Table,
    cmd: &mut Command,
    base: &[String],
    models_at: Option<(Option<&str>, &str)>,
    add_all: bool,
) -> Result<(), Error> {
    let Err(e) = check(cmd, base, &[], add_all) else {
        return Ok(());
    };
    let (key, why) = explain(&e);
    let Some(key) = key else {
        return Err(Error::Usage(format!(
            "scenario {}: {why}",
            src.path.display()
        )));
    };
    let at = match models_at {
        Some((section, file_key)) if is_models(&key) || key == "all" => src.at(section, file_key),
        _ => match table.keys().find(|k| *k != "matrix" && same_key(k, &key)) {
            Some(file_key) => src.at(None, file_key),
            None => format!("scenario {}", src.path.display()),
        },
    };
    Err(Error::Usage(format!("{at}: {why}")))
}

/// Parses `bench run <options> <more> [--all]` with the command line's own parsers.
pub(super) fn check(
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
pub(super) fn explain(e: &clap::Error) -> (Option<String>, String) {
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
}
