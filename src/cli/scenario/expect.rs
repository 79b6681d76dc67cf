//! A scenario file's `[[expect]]` tables: its claim as checks over its own figures, read into
//! [`Expectation`]s that the result file carries for `bench report` to judge.
//!
//! ```toml
//! [[expect]]
//! says = "at 200 µs of work, reactor's p99 is several times multi-reactor's"
//! where = { work_us = 200 }          # a point of the [matrix]; omitted: every run
//! metric = "p99"                     # throughput p50 p99 p999 cpu syscalls ctxsw rss threads served
//! ratio = ["reactor", "multi-reactor"]   # the first's median over the second's
//! at_least = 3.0                     # or at_most = X, or within = W (a tie: |ratio - 1| <= W)
//! ```
//!
//! A model is named as the report's table labels it (`reactor (poll)` for a poller other than
//! the default). `where` names matrix keys and values the matrix has.

use serde_json::Value as Json;

use super::super::check::Src;
use super::super::sweep::Dim;
use crate::result::{Expectation, Metric};
use crate::Error;

const KEYS: &str = "says, where, metric, ratio, at_least, at_most, within";

/// The file's expectations, checked; none when it has no `expect` key.
pub(super) fn read(src: Src, table: &toml::Table, dims: &[Dim]) -> Result<Vec<Expectation>, Error> {
    let Some(value) = table.get("expect") else {
        return Ok(Vec::new());
    };
    let Some(list) = value.as_array() else {
        return Err(src.usage(
            None,
            "expect",
            "write each expectation as an [[expect]] table (says, metric, ratio, and one of \
             at_least, at_most, within)",
        ));
    };
    list.iter()
        .enumerate()
        .map(|(i, item)| {
            one(item, dims).map_err(|why| {
                src.usage(
                    None,
                    "expect",
                    format!("expectation {} of {}: {why}", i + 1, list.len()),
                )
            })
        })
        .collect()
}

fn one(item: &toml::Value, dims: &[Dim]) -> Result<Expectation, String> {
    let Some(t) = item.as_table() else {
        return Err("write it as an [[expect]] table".into());
    };
    if let Some(k) = t
        .keys()
        .find(|k| !KEYS.split(", ").any(|known| known == *k))
    {
        return Err(format!("unknown key `{k}` (the keys are {KEYS})"));
    }
    let text = |key: &str| -> Result<String, String> {
        match t.get(key) {
            Some(toml::Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
            Some(_) => Err(format!("`{key}` takes a string, like {key} = \"...\"")),
            None => Err(format!("`{key}` is missing")),
        }
    };
    let says = text("says")?;
    let name = text("metric")?;
    let metric = Metric::parse(&name).ok_or_else(|| {
        let all: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
        format!("metric `{name}` is none of {}", all.join(", "))
    })?;
    let ratio = match t.get("ratio").and_then(|v| v.as_array()).map(Vec::as_slice) {
        Some([toml::Value::String(a), toml::Value::String(b)]) => [a.clone(), b.clone()],
        _ => return Err("`ratio` takes two models, like ratio = [\"reactor\", \"tokio\"]".into()),
    };
    let number = |key: &str| -> Result<Option<f64>, String> {
        let v = match t.get(key) {
            None => return Ok(None),
            Some(toml::Value::Float(x)) => *x,
            Some(toml::Value::Integer(n)) => *n as f64,
            Some(_) => return Err(format!("`{key}` takes a number, like {key} = 2.0")),
        };
        if v.is_finite() && v >= 0.0 {
            Ok(Some(v))
        } else {
            Err(format!("`{key}` takes a number of 0 or more"))
        }
    };
    let e = Expectation {
        says,
        at: at(t.get("where"), dims)?,
        metric,
        ratio,
        at_least: number("at_least")?,
        at_most: number("at_most")?,
        within: number("within")?,
    };
    if e.bound().is_none() {
        return Err("give exactly one of at_least, at_most and within".into());
    }
    Ok(e)
}

/// `where`: matrix keys (with `_`) and values the matrix sweeps.
fn at(value: Option<&toml::Value>, dims: &[Dim]) -> Result<serde_json::Map<String, Json>, String> {
    let mut out = serde_json::Map::new();
    let Some(value) = value else {
        return Ok(out);
    };
    let Some(t) = value.as_table() else {
        return Err(
            "`where` takes a table of matrix keys, like where = { connections = 100 }".into(),
        );
    };
    for (key, v) in t {
        let name = key.replace('-', "_");
        let Some(dim) = dims.iter().find(|d| d.name == name) else {
            let keys: Vec<&str> = dims.iter().map(|d| d.name.as_str()).collect();
            return Err(if keys.is_empty() {
                format!("`where` names `{key}`, but the file has no [matrix]: leave `where` out")
            } else {
                format!(
                    "`where` names `{key}`, which the [matrix] does not sweep ({})",
                    keys.join(", ")
                )
            });
        };
        let json = match v {
            toml::Value::String(s) => Json::String(s.clone()),
            toml::Value::Integer(n) => Json::from(*n),
            toml::Value::Boolean(b) => Json::Bool(*b),
            toml::Value::Float(x) => {
                serde_json::Number::from_f64(*x).map_or(Json::Null, Json::Number)
            }
            _ => Json::Null,
        };
        if !dim.values.contains(&json) {
            let values: Vec<String> = dim.values.iter().map(crate::result::show_value).collect();
            return Err(format!(
                "`where` has {key} = {v}, which the [matrix] does not run (it runs {})",
                values.join(", ")
            ));
        }
        out.insert(name, json);
    }
    Ok(out)
}
