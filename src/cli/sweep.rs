//! The `[matrix]` of a scenario file: its keys read into swept dimensions ([`Dim`]), and the
//! points of the sweep ([`points`]), the first key varying slowest, like nested loops in file
//! order. `models` in the matrix is no dimension: the models run at every point.

use std::ffi::OsString;

use clap::Command;
use serde_json::Value as Json;

use super::check::{
    check, explain, find_option, is_models, line_of, models_args, not_sweepable, same_key,
    scalar_arg, unknown_key, Src, Wrong,
};
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
    /// The file's `[[expect]]`, checked; empty without.
    pub expect: Vec<crate::result::Expectation>,
    /// The points are a `[[points]]` list (then `matrix` holds each key's values, not a
    /// product of them).
    pub listed: bool,
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
    pub(super) fn single(args: Vec<OsString>) -> Expanded {
        Expanded {
            points: vec![Point {
                values: Vec::new(),
                args,
            }],
            matrix: None,
            expect: Vec::new(),
            listed: false,
        }
    }
}

/// A swept key of the matrix.
pub(super) struct Dim {
    /// As the file wrote it.
    pub(super) key: String,
    /// With `_`.
    pub(super) name: String,
    /// clap's id of its option.
    pub(super) id: String,
    /// As JSON.
    pub(super) values: Vec<Json>,
    /// Each value's argument (None: a switch set to false).
    pub(super) args: Vec<Option<String>>,
}

/// The matrix of a scenario file, read and checked key by key (its values with the top level
/// are checked by [`super::check::check_values`]).
pub(super) struct Matrix<'t> {
    /// The swept keys, models left out, command-line fixed ones included.
    pub(super) dims: Vec<Dim>,
    /// The arguments of its `models` (empty when the command line picks the models).
    pub(super) models: Vec<String>,
    /// Its key that picks the models, as written.
    pub(super) models_key: Option<&'t str>,
}

/// Reads the `matrix` value of the file's `table`; `skip_models`: the command line picks the
/// models.
pub(super) fn read_matrix<'t>(
    src: Src,
    table: &'t toml::Table,
    matrix: &'t toml::Value,
    run: &Command,
    skip_models: bool,
) -> Result<Matrix<'t>, Error> {
    let toml::Value::Table(matrix) = matrix else {
        return Err(src.usage(
            None,
            "matrix",
            "write a [matrix] table at the end of the file, each key an option and its \
             list of values to sweep, like connections = [10, 100]",
        ));
    };
    let section = Some("matrix");
    let mut out = Matrix {
        dims: Vec::new(),
        models: Vec::new(),
        models_key: None,
    };
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
        if is_models(key) {
            out.models_key = Some(key);
            if !skip_models {
                out.models
                    .extend(models_args(value).map_err(|why| src.usage(section, key, why))?);
            }
            continue;
        }
        out.dims.push(read_dim(src, key, value, run)?);
    }
    Ok(out)
}

/// One key of the matrix other than `models`: an option that can be swept, and its list of
/// values.
fn read_dim(src: Src, key: &str, value: &toml::Value, run: &Command) -> Result<Dim, Error> {
    let section = Some("matrix");
    let name = key.replace('_', "-");
    if let Some(why) = not_sweepable(&name) {
        return Err(src.usage(section, key, why));
    }
    let Some(arg) = find_option(run, &name) else {
        return Err(src.usage(section, key, unknown_key(run, true)));
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
        key: key.to_string(),
        name: key.replace('-', "_"),
        id: arg.get_id().as_str().to_string(),
        values: Vec::new(),
        args: Vec::new(),
    };
    for v in list {
        let bad = |why: &str| src.usage_value(section, key, v, why);
        let (json, a) = dim_value(key, &name, takes_value, v).map_err(|why| bad(&why))?;
        if dim.args.contains(&a) {
            return Err(bad("listed twice (once is enough)"));
        }
        dim.values.push(json);
        dim.args.push(a);
    }
    Ok(dim)
}

/// One value of a swept key: as JSON, and its argument (None for a switch set to false); or
/// why it does not fit.
fn dim_value(
    key: &str,
    name: &str,
    takes_value: bool,
    v: &toml::Value,
) -> Result<(Json, Option<String>), String> {
    let a = match scalar_arg(name, takes_value, v) {
        Ok(a) => a,
        Err(Wrong::BoolForValue) => return Err("takes a value, not true/false".into()),
        Err(Wrong::NotBool) => return Err(format!("is a switch: write {key} = [false, true]")),
        Err(Wrong::List) => {
            return Err(format!(
                "a list of lists: write one list of values, like {key} = [1, 2]"
            ))
        }
        Err(Wrong::Table) => return Err("a table is not a value: write numbers or strings".into()),
        Err(Wrong::Other) => return Err("write a number or a string".into()),
    };
    let json = match v {
        toml::Value::String(s) => Json::String(s.clone()),
        toml::Value::Integer(n) => Json::from(*n),
        toml::Value::Boolean(b) => Json::Bool(*b),
        toml::Value::Float(x) => match serde_json::Number::from_f64(*x) {
            Some(x) => Json::Number(x),
            None => return Err("write a finite number, or a string".into()),
        },
        _ => unreachable!("scalar_arg took only strings, numbers and booleans"),
    };
    Ok((json, a))
}

/// A point of a sweep: its keys and values, and its options.
pub(super) type PointParts = (Vec<(String, Json)>, Vec<String>);

/// The points of the sweep over `swept` (the first varying slowest): each point's keys
/// and values, and its options; every point checked with the file's options.
pub(super) fn points(
    file: &File,
    swept: &[&Dim],
    cmd: &mut Command,
) -> Result<Vec<PointParts>, Error> {
    let count = swept
        .iter()
        .try_fold(1usize, |n, d| n.checked_mul(d.values.len()));
    if count.map_or(true, |n| n > MAX_POINTS) {
        let sizes: Vec<String> = swept.iter().map(|d| d.values.len().to_string()).collect();
        let count = count.map_or("too many".to_string(), |n| n.to_string());
        return Err(file.src.usage(
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
            if let Err(e) = check(cmd, &file.base, &options, file.add_all) {
                return Err(point_error(file.src, &e, swept, &index));
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
fn point_error(src: Src, e: &clap::Error, swept: &[&Dim], index: &[usize]) -> Error {
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
        Some((d, &i)) => src.usage_value(
            Some("matrix"),
            &d.key,
            &d.values[i],
            format!("{why} (at the point {point})"),
        ),
        None => Error::Usage(format!(
            "scenario {}, at the point {point}: {why}",
            src.path.display()
        )),
    }
}

#[cfg(test)]
mod tests;

/// A scenario file read and checked, not yet expanded.
pub(super) struct File<'a> {
    pub(super) src: Src<'a>,
    /// The options of the top level and the matrix's `models`, in file order.
    pub(super) base: Vec<String>,
    /// Whether the trial parses need `--all` (no models picked by the file, or its models
    /// left out for the command line's).
    pub(super) add_all: bool,
    /// The matrix's keys, models left out, command-line fixed ones included.
    pub(super) dims: Vec<Dim>,
    /// The points `[[points]]` lists, when it does (then there is no matrix).
    pub(super) listed: Vec<PointParts>,
}

/// Each value of the matrix with the file's options (the points, values together, are checked
/// by [`super::sweep::points`]).
pub(super) fn check_values(
    src: Src,
    cmd: &mut Command,
    base: &[String],
    dims: &[Dim],
    add_all: bool,
) -> Result<(), Error> {
    for dim in dims {
        for (value, arg) in dim.values.iter().zip(&dim.args) {
            let Some(arg) = arg else { continue };
            if let Err(e) = check(cmd, base, std::slice::from_ref(arg), add_all) {
                let (_, why) = explain(&e);
                return Err(src.usage_value(Some("matrix"), &dim.key, value, why));
            }
        }
    }
    Ok(())
}
