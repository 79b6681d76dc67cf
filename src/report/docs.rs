//! `bench docs FILE... [--check]`: the tables of a document (README.md, DESIGN.md) generated
//! from committed result files by `bench` itself, so that the figures a document quotes cannot
//! drift from the data. A table is a marked block:
//!
//! ```text
//! <!-- bench table results/reference/echo.json point="connections=50" models="reactor,tokio" columns="req/s,p99,CPU µs/req" -->
//! (generated: the table, then a line naming the file, its commit and repeats)
//! <!-- end bench table -->
//! ```
//!
//! `point` picks a sweep point (as the report writes it, `connections=50`), `models` and
//! `columns` pick rows and columns (the model column always comes first); all three are
//! optional. A claim's verdict is a block too, `<!-- bench verdict FILE -->` ... `<!-- end
//! bench verdict -->`: the verdict of the file's `[[expect]]` expectations, as its report
//! opens. The file is read relative to the document's folder. A result made by a build with
//! uncommitted changes (`-dirty`) is refused: nobody could rebuild what it measured.

use std::fmt::Write;
use std::path::Path;

use super::{document, table};
use crate::result::{self, describe_point, ResultFile, Run};
use crate::Error;

const OPEN: &str = "<!-- bench table ";
const CLOSE: &str = "<!-- end bench table -->";
const OPEN_VERDICT: &str = "<!-- bench verdict ";
const CLOSE_VERDICT: &str = "<!-- end bench verdict -->";

/// One block's request: the file and what to take from it.
#[derive(Debug, PartialEq)]
struct Block {
    file: String,
    point: Option<String>,
    models: Option<Vec<String>>,
    columns: Option<Vec<String>>,
}

/// The document with every block regenerated; an error names the line of a bad block.
pub fn regenerate(doc: &str, dir: &Path) -> anyhow::Result<String> {
    let mut out = String::new();
    let mut lines = doc.split_inclusive('\n').enumerate();
    while let Some((n, line)) = lines.next() {
        out.push_str(line);
        let trimmed = line.trim();
        let (spec, close, verdict) = if let Some(spec) = trimmed.strip_prefix(OPEN) {
            (spec, CLOSE, false)
        } else if let Some(spec) = trimmed.strip_prefix(OPEN_VERDICT) {
            (spec, CLOSE_VERDICT, true)
        } else {
            continue;
        };
        let block = parse(spec.trim_end_matches("-->").trim())
            .map_err(|e| Error::Usage(format!("line {}: {e}", n + 1)))?;
        // The old contents up to the end line are dropped; another block's opening line
        // before it means this block's end line is missing (dropping on would eat prose).
        let mut closed = false;
        for (_, l) in lines.by_ref() {
            let l = l.trim();
            if l == close {
                closed = true;
                break;
            }
            if l.starts_with(OPEN) || l.starts_with(OPEN_VERDICT) {
                break;
            }
        }
        if !closed {
            return Err(Error::Usage(format!(
                "line {}: the block has no `{close}` line before the next block or the end: \
                 add one",
                n + 1
            ))
            .into());
        }
        let made = if verdict {
            verdict_of(&block, dir)
        } else {
            table_of(&block, dir)
        };
        out.push_str(
            &made.map_err(|e| Error::Usage(format!("line {} ({}): {e}", n + 1, block.file)))?,
        );
        out.push_str(close);
        out.push('\n');
    }
    Ok(out)
}

/// `file key="value" key="value"`.
fn parse(spec: &str) -> Result<Block, String> {
    let (file, mut rest) = spec
        .split_once(char::is_whitespace)
        .map_or((spec, ""), |(f, r)| (f, r.trim()));
    if file.is_empty() {
        return Err("a table names its result file: `<!-- bench table FILE -->`".into());
    }
    let mut block = Block {
        file: file.to_string(),
        point: None,
        models: None,
        columns: None,
    };
    while !rest.is_empty() {
        let (key, after) = rest
            .split_once("=\"")
            .ok_or_else(|| format!("expected key=\"value\" at `{rest}`"))?;
        let (value, after) = after
            .split_once('"')
            .ok_or_else(|| format!("the value of `{key}` has no closing quote"))?;
        let list = || value.split(',').map(|s| s.trim().to_string()).collect();
        match key.trim() {
            "point" => block.point = Some(value.to_string()),
            "models" => block.models = Some(list()),
            "columns" => block.columns = Some(list()),
            other => {
                return Err(format!(
                    "unknown key `{other}`: write point, models or columns"
                ))
            }
        }
        rest = after.trim();
    }
    Ok(block)
}

/// A result file a document may quote: one made by a clean commit.
fn clean(block: &Block, dir: &Path) -> anyhow::Result<ResultFile> {
    let file = result::load(&dir.join(&block.file))?;
    let commit = &file.tool.git_commit;
    if commit.ends_with("-dirty") {
        return Err(Error::Usage(format!(
            "made by a build with uncommitted changes ({commit}): remake it from a clean \
             commit before a document quotes it"
        ))
        .into());
    }
    Ok(file)
}

/// The block's claim verdict and its source line.
fn verdict_of(block: &Block, dir: &Path) -> anyhow::Result<String> {
    let file = clean(block, dir)?;
    let text = document::verdict_text(&file)
        .ok_or_else(|| Error::Usage("the file has no [[expect]] expectations to judge".into()))?;
    let repeats = file
        .runs
        .iter()
        .map(|r| r.repeat_index + 1)
        .max()
        .unwrap_or(1);
    let commit = &file.tool.git_commit;
    Ok(format!(
        "{text}\n<sub>From [{}]({}), commit {}, {repeats} repeat{}.</sub>\n",
        block.file,
        block.file,
        short(commit),
        if repeats == 1 { "" } else { "s" }
    ))
}

/// The block's table and its source line.
fn table_of(block: &Block, dir: &Path) -> anyhow::Result<String> {
    let file = clean(block, dir)?;
    let commit = &file.tool.git_commit;
    let runs: Vec<Run> = file
        .runs
        .iter()
        .filter(|r| r.slo_probe.is_none())
        .filter(|r| {
            block
                .point
                .as_ref()
                .map_or(true, |p| describe_point(&r.point) == *p)
        })
        .filter(|r| {
            block.models.as_ref().map_or(true, |m| {
                m.iter().any(|m| crate::output::format::label(r) == *m)
            })
        })
        .cloned()
        .collect();
    if runs.is_empty() {
        return Err(Error::Usage("no run matches the block's point and models".into()).into());
    }
    let points: Vec<String> = super::findings::distinct(runs.iter().map(super::findings::point_of));
    if points.len() > 1 {
        return Err(Error::Usage(format!(
            "the runs span {} sweep points ({}): pick one with point=\"...\" (a median across \
             points is no figure)",
            points.len(),
            points.join("; ")
        ))
        .into());
    }
    let (header, rows) = table::cells(&runs);
    let keep: Vec<usize> = match &block.columns {
        None => (0..header.len()).collect(),
        Some(cols) => {
            let mut keep = vec![0];
            for c in cols {
                let i = header.iter().position(|h| h == c).ok_or_else(|| {
                    Error::Usage(format!(
                        "no column `{c}` in this file's table (it has: {})",
                        header[1..].join(", ")
                    ))
                })?;
                keep.push(i);
            }
            keep
        }
    };
    let pick = |row: &[String]| keep.iter().map(|&i| row[i].clone()).collect::<Vec<_>>();
    let rows: Vec<Vec<String>> = rows.iter().map(|r| pick(r)).collect();
    let mut out = table::markdown(&pick(&header), &rows);
    let repeats = runs.iter().map(|r| r.repeat_index + 1).max().unwrap_or(1);
    let _ = writeln!(
        out,
        "\n<sub>From [{}]({}), commit {}, {}{}.</sub>",
        block.file,
        block.file,
        short(commit),
        if repeats > 1 {
            format!("medians of {repeats} interleaved repeats")
        } else {
            "one run: one sample".to_string()
        },
        block
            .point
            .as_ref()
            .map_or(String::new(), |p| format!(", at {p}"))
    );
    Ok(out)
}

/// A commit's first seven characters.
fn short(commit: &str) -> String {
    commit.chars().take(7).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_spec_is_parsed() {
        let b = parse(r#"results/x.json point="connections=50" columns="req/s, p99""#).unwrap();
        assert_eq!(
            b,
            Block {
                file: "results/x.json".into(),
                point: Some("connections=50".into()),
                models: None,
                columns: Some(vec!["req/s".into(), "p99".into()]),
            }
        );
        assert!(parse(r#"x.json colour="red""#)
            .unwrap_err()
            .contains("unknown key"));
        assert!(parse(r#"x.json point="a"#).unwrap_err().contains("closing"));
    }
}
