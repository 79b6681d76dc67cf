//! `bench compare RESULT --base A --head B`: two servers of one result file, measured
//! interleaved on the same machine (`bench run --server A=... --server B=... --repeat N`),
//! judged as a baseline file against a current one: the same matching, statistics and rules.
//!
//! The file is split in two: A's runs (the baseline) and B's (the current), both renamed B so
//! that each of A's experiments meets B's at the same point; with `--normalize-to MODEL`, that
//! model's runs go into both, so each server's figures are divided by the model's from its own
//! rounds. Every other run is left out.

use crate::output::format::label;
use crate::result::ResultFile;
use crate::Error;

/// The baseline (`base`'s runs) and the current file (`head`'s), both named `head`.
pub fn split(
    file: &ResultFile,
    base: &str,
    head: &str,
    reference: Option<&str>,
) -> Result<(ResultFile, ResultFile), Error> {
    let mut names: Vec<String> = Vec::new();
    for run in &file.runs {
        let l = label(run);
        if !names.contains(&l) {
            names.push(l);
        }
    }
    for (flag, name) in [("--base", base), ("--head", head)] {
        if !names.iter().any(|n| n == name) {
            return Err(Error::Usage(format!(
                "{flag} {name}: the file has no run of `{name}` (it has {})",
                names.join(", ")
            )));
        }
    }
    if base == head {
        return Err(Error::Usage(
            "--base and --head name the same server: name the two that were interleaved".into(),
        ));
    }
    if let Some(r) = reference.filter(|r| *r == base || *r == head) {
        return Err(Error::Usage(format!(
            "--normalize-to {r} names one of the two compared: name a third model run in the \
             same rounds, or drop it"
        )));
    }
    let side = |who: &str| {
        let mut part = file.clone();
        part.runs.retain(|r| {
            let l = label(r);
            l == who || reference == Some(l.as_str())
        });
        for run in &mut part.runs {
            if label(run) == who {
                run.model = Some(head.to_string());
            }
        }
        part
    };
    Ok((side(base), side(head)))
}
