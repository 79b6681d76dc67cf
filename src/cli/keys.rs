//! The keys of one table of a scenario file (its top level, or a `[[points]]` entry) read into
//! `bench run` arguments: each key a long option, `models` the models, `[servers.NAME]` the
//! outside servers.

use clap::Command;

use super::check::{find_option, is_models, models_args, scalar_arg, unknown_key, Src, Wrong};
use crate::Error;

/// The options of the file's top level, in file order (its `models` left out when
/// `skip_models`), and the key that picks its models, if one does.
pub(super) fn read_top_level<'t>(
    src: Src,
    table: &'t toml::Table,
    run: &Command,
    skip_models: bool,
) -> Result<(Vec<String>, Option<&'t str>), Error> {
    let mut base: Vec<String> = Vec::new();
    let mut models_key = None;
    for (key, value) in table {
        if key == "matrix" || key == "expect" || key == "points" {
            continue;
        }
        let name = key.replace('_', "-");
        if key == "servers" {
            models_key = models_key.or(Some(key.as_str()));
            if !skip_models {
                base.extend(servers_args(value).map_err(|why| src.usage(None, key, why))?);
            }
            continue;
        }
        if is_models(key) {
            models_key = Some(key.as_str());
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
        let Some(arg) = find_option(run, &name) else {
            return Err(src.usage(None, key, unknown_key(run, false)));
        };
        let takes_value = arg.get_action().takes_values();
        match scalar_arg(&name, takes_value, value) {
            Ok(a) => base.extend(a),
            Err(wrong) => {
                return Err(src.usage(None, key, top_level_wrong(key, value, takes_value, wrong)))
            }
        }
    }
    Ok((base, models_key))
}

/// The arguments of a `[servers.NAME]` table per outside server, each with its `command`:
/// `--server=NAME=COMMAND`.
fn servers_args(value: &toml::Value) -> Result<Vec<String>, String> {
    const HOW: &str = "write each outside server as a table of its own: [servers.redis] with \
                       command = \"redis-server --port {port}\"";
    let Some(servers) = value.as_table() else {
        return Err(HOW.into());
    };
    servers
        .iter()
        .map(|(name, server)| {
            let table = server.as_table().ok_or(HOW)?;
            if let Some(other) = table.keys().find(|k| *k != "command") {
                return Err(format!(
                    "[servers.{name}] has an unknown key `{other}` (its one key is command)"
                ));
            }
            match table.get("command") {
                Some(toml::Value::String(command)) => Ok(format!("--server={name}={command}")),
                _ => Err(format!(
                    "[servers.{name}] needs command = \"...\", the command that starts it with \
                     {{port}} where it takes the port"
                )),
            }
        })
        .collect()
}

/// Why a value of the top level does not fit its option.
fn top_level_wrong(key: &str, value: &toml::Value, takes_value: bool, wrong: Wrong) -> String {
    match wrong {
        Wrong::BoolForValue => "takes a value, not true/false".into(),
        Wrong::NotBool | Wrong::Table if !takes_value => format!("is a switch: write {key} = true"),
        Wrong::List if !takes_value => format!(
            "is a switch: write {key} = true, or sweep it in a [matrix] table at the end of the \
             file: {key} = [false, true]"
        ),
        Wrong::List => format!(
            "takes one value; to sweep a list of values, move it to a [matrix] table at the end \
             of the file: [matrix] {key} = {value}"
        ),
        _ => "write a number or a string".into(),
    }
}
