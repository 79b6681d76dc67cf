//! `[[points]]` in a scenario file: an explicit list of points, each a table of `bench run`
//! options with its own `models` and `[points.servers.NAME]`, instead of a `[matrix]`'s every
//! combination. For runs whose points differ in which models they run: the counterparts
//! scenario pairs Redis with `reactor` on `resp`, memcached with `multi-reactor` on `memcache`,
//! nginx with `reuseport` on `http`, each pair a point of one result file.
//!
//! A point's options go after the file's top level; a key set both at the top and in a point is
//! refused, as one set both at the top and in the matrix is. A point's values (the result's
//! `point`, which the report groups runs by) are its options but `models` and `servers`.

use clap::Command;
use serde_json::Value as Json;

use super::check::{check, explain, is_models, same_key, Src};
use super::sweep::PointParts;
use crate::Error;

/// The most points a file may list.
const MAX_LISTED: usize = 100;

/// The file's `[[points]]`, each point's values and options, every point checked with the
/// top level's options (`base`).
pub(super) fn read(
    src: Src,
    table: &toml::Table,
    cmd: &mut Command,
    base: &[String],
    skip_models: bool,
    top_picks_models: bool,
) -> Result<Vec<PointParts>, Error> {
    let Some(list) = table.get("points") else {
        return Ok(Vec::new());
    };
    let how = "write each point as a table of its own: [[points]] with options such as workload \
               = \"resp\" and models = [\"reactor\"]";
    let Some(list) = list
        .as_array()
        .filter(|l| l.iter().all(toml::Value::is_table))
    else {
        return Err(src.usage(None, "points", how));
    };
    if table.contains_key("matrix") {
        return Err(src.usage(
            None,
            "points",
            "a file lists its points or sweeps a [matrix], not both",
        ));
    }
    if list.is_empty() || list.len() > MAX_LISTED {
        return Err(src.usage(
            None,
            "points",
            format!("list between 1 and {MAX_LISTED} points"),
        ));
    }
    let run = cmd
        .find_subcommand("run")
        .expect("bench run is a subcommand")
        .clone();
    let mut out = Vec::new();
    for (i, point) in list.iter().enumerate() {
        let point = point.as_table().expect("checked above");
        let at = |why: String| {
            Error::Usage(format!(
                "scenario {}, point {} of [[points]]: {why}",
                src.path.display(),
                i + 1
            ))
        };
        if let Some(key) = point
            .keys()
            .find(|k| table.keys().any(|t| t != "points" && same_key(t, k)))
        {
            return Err(at(format!(
                "`{key}` is set at the top level too: set it in one place"
            )));
        }
        let (options, picks) = super::keys::read_top_level(src, point, &run, skip_models)
            .map_err(|e| at(e.to_string()))?;
        let mut values = Vec::new();
        for (key, value) in point {
            if is_models(key) || key == "servers" {
                continue;
            }
            values.push((key.replace('-', "_"), json(value)));
        }
        let add_all = skip_models || !(top_picks_models || picks.is_some());
        let mut line = base.to_vec();
        line.extend(options.iter().cloned());
        if let Err(e) = check(cmd, &line, &[], add_all) {
            return Err(at(explain(&e).1));
        }
        // A point is its options: two with the same could not be told apart in the result.
        if let Some(j) = out.iter().position(|(v, _)| *v == values) {
            return Err(at(format!(
                "it sets what point {} sets ({}): put the models and servers of one set of \
                 options in one point",
                j + 1,
                if values.is_empty() {
                    "no option".to_string()
                } else {
                    values
                        .iter()
                        .map(|(k, v)| format!("{k} = {v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            )));
        }
        out.push((values, options));
    }
    Ok(out)
}

/// A scalar of the file as JSON (tables and lists are refused by the option's own check).
fn json(value: &toml::Value) -> Json {
    match value {
        toml::Value::String(s) => Json::String(s.clone()),
        toml::Value::Integer(n) => Json::from(*n),
        toml::Value::Boolean(b) => Json::Bool(*b),
        toml::Value::Float(x) => serde_json::Number::from_f64(*x).map_or(Json::Null, Json::Number),
        other => Json::String(other.to_string()),
    }
}
