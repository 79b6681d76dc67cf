//! `bench deploy`: the Kubernetes manifest of deploy/kubernetes/load-job.yaml, rendered for one
//! run: N segments, a target, a start time, an image, and the load's options.
//!
//! The manifest is the committed file itself (compiled in), its `{{...}}` filled. The load's
//! options are checked here as `bench load` would parse them, so that a typo fails now, not in
//! N pods at the start time; the options the job sets for each pod (`--target`, `--segment`,
//! `--start-at`, `--json`) are refused. Nothing here talks to a cluster: the output goes to
//! `kubectl apply -f -`.

use std::time::{Duration, SystemTime};

use clap::Parser;

use super::{Cli, Command, DeployArgs};
use crate::Error;

/// The manifest, with its `{{...}}` to fill.
pub const TEMPLATE: &str = include_str!("../../deploy/kubernetes/load-job.yaml");

/// Time allowed past the run's end before the jobs are stopped: image pulls, the connect
/// phase, the merge.
const SLACK: Duration = Duration::from_secs(600);

/// The manifest for `a`, or what is wrong with it.
pub fn render(a: &DeployArgs) -> Result<String, Error> {
    check_name(&a.name)?;
    for (what, value) in [("--target", &a.target), ("--image", &a.image)] {
        if value.is_empty() || value.contains(|c: char| c.is_whitespace() || "\"'\\{}".contains(c))
        {
            return Err(Error::Usage(format!(
                "{what} `{value}` cannot go into the manifest: it must be one word without \
                 quotes, backslashes or braces"
            )));
        }
    }
    for set in ["--target", "--segment", "--start-at", "--json"] {
        if a.load
            .iter()
            .any(|o| o == set || o.starts_with(&format!("{set}=")))
        {
            return Err(Error::Usage(format!(
                "{set} is set by the job for each pod: drop it from the load's options"
            )));
        }
    }
    if a.load.iter().any(|o| o.contains('\n')) {
        return Err(Error::Usage("a load option holds a line break".into()));
    }
    let load = parse_load(a)?;
    if load.shape.connections < a.segments {
        return Err(Error::Usage(format!(
            "{} segments need at least {} connections, one each, and the run has {} (give \
             --connections after --)",
            a.segments, a.segments, load.shape.connections
        )));
    }
    let now = SystemTime::now();
    let run_s = (load.shape.warmup + load.shape.duration).as_secs();
    let ahead = a.start_at.time().duration_since(now).map_err(|_| {
        Error::Usage(format!(
            "--start-at {} has passed: give a time ahead, far enough for the pods to be \
             scheduled and started (`date -u -d '+5 min' +%FT%TZ`)",
            a.start_at
        ))
    })?;
    let deadline = ahead + Duration::from_secs(run_s) + SLACK;
    let run = run_id(&a.start_at.to_string());
    let options: String = a
        .load
        .iter()
        .map(|o| {
            shlex::try_quote(o)
                .map(|q| format!(" {q}"))
                .map_err(|_| Error::Usage(format!("the load option `{o}` cannot be quoted")))
        })
        .collect::<Result<_, _>>()?;
    let fills = [
        ("{{segments}}", a.segments.to_string()),
        ("{{target}}", a.target.clone()),
        ("{{start_at}}", a.start_at.to_string()),
        ("{{image}}", a.image.clone()),
        ("{{name}}", a.name.clone()),
        ("{{run}}", run.clone()),
        ("{{dir}}", format!("/results/{}-{run}", a.name)),
        ("{{deadline_s}}", deadline.as_secs().to_string()),
        ("{{load_args}}", options),
    ];
    let mut text = TEMPLATE.to_string();
    for (key, value) in fills {
        text = text.replace(key, &value);
    }
    // The header's usage lines keep their own example; only the manifest below is filled.
    Ok(format!(
        "# Rendered by: bench deploy --segments {} --target {} --start-at {} --image {} --name \
         {} --{}\n{text}",
        a.segments,
        a.target,
        a.start_at,
        a.image,
        a.name,
        a.load
            .iter()
            .map(|o| format!(" {}", shlex::try_quote(o).unwrap_or_default()))
            .collect::<String>()
    ))
}

/// The load options as `bench load` parses them.
fn parse_load(a: &DeployArgs) -> Result<super::LoadArgs, Error> {
    let args = ["bench", "load", "--target", &a.target]
        .into_iter()
        .map(String::from)
        .chain(a.load.iter().cloned());
    match Cli::try_parse_from(args) {
        Ok(Cli {
            command: Command::Load(load),
            ..
        }) => Ok(load),
        Ok(_) => unreachable!("parsed as `bench load`"),
        Err(e) => Err(Error::Usage(format!(
            "the load's options (after --) are not bench load's: {}",
            e.render().to_string().trim()
        ))),
    }
}

/// A Kubernetes object name's part: lowercase letters, digits and `-`, starting with a letter,
/// short enough for the jobs' names (`NAME-RUN-merge`) to stay within 63 characters.
fn check_name(name: &str) -> Result<(), Error> {
    let ok = name.len() <= 40
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "--name `{name}` is not a Kubernetes name: lowercase letters, digits and `-`, from a \
             letter, at most 40 characters"
        )))
    }
}

/// The run's name in the jobs' names and the results' folder: the start time, lowercase,
/// without punctuation (`2026-12-02T18:00:00Z` -> `20261202t180000z`).
fn run_id(start_at: &str) -> String {
    start_at
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::StartAt;

    fn args(segments: usize, load: &[&str]) -> DeployArgs {
        DeployArgs {
            segments,
            target: "echo.bench.svc.cluster.local:7000".into(),
            // An hour ahead, in whole seconds.
            start_at: StartAt::at(
                SystemTime::UNIX_EPOCH
                    + Duration::from_secs(
                        SystemTime::now()
                            .duration_since(SystemTime::UNIX_EPOCH)
                            .unwrap()
                            .as_secs()
                            + 3600,
                    ),
            ),
            image: "registry.example/iomodels:1".into(),
            name: "iomodels-load".into(),
            load: load.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn the_manifest_is_an_indexed_job_of_n_segments_and_a_merge() {
        let a = args(4, &["--rate", "20k", "-c", "200", "--duration", "30s"]);
        let text = render(&a).unwrap();
        assert!(!text.contains("{{"), "every placeholder filled:\n{text}");
        for needle in [
            "completionMode: Indexed",
            "completions: 4",
            "parallelism: 4",
            "value: \"echo.bench.svc.cluster.local:7000\"",
            &format!("value: \"{}\"", a.start_at),
            "image: \"registry.example/iomodels:1\"",
            "segment=$((JOB_COMPLETION_INDEX + 1))",
            "--segment \"$segment/$SEGMENTS\"",
            "segment-$segment.json\" --rate 20k -c 200 --duration 30s",
            "exec bench merge \"$RESULTS\"/segment-*.json --out \"$RESULTS/merged.json\"",
            "claimName: iomodels-load-results",
        ] {
            assert!(text.contains(needle), "lacks `{needle}`:\n{text}");
        }
        // Three objects: the claim, the load job, the merge job.
        assert_eq!(text.matches("\n---\n").count(), 2);
        let deadline: u64 = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("activeDeadlineSeconds: "))
            .unwrap()
            .parse()
            .unwrap();
        // An hour ahead, 31 s of run, 600 s of slack.
        assert!((4_225..=4_232).contains(&deadline), "{deadline}");
        let run = a
            .start_at
            .to_string()
            .replace(['-', ':'], "")
            .to_lowercase();
        assert!(
            text.contains(&format!("name: iomodels-load-{run}-merge")),
            "{text}"
        );
    }

    #[test]
    fn options_that_cannot_run_are_refused_before_any_pod_starts() {
        let refused = |a: DeployArgs, needle: &str| {
            let e = render(&a).unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
        };
        refused(args(4, &["--json", "x.json"]), "set by the job");
        refused(args(4, &["--segment=1/2"]), "set by the job");
        refused(args(4, &["--rate", "fast"]), "not bench load's");
        refused(
            args(4, &["-c", "3"]),
            "4 segments need at least 4 connections",
        );
        let mut a = args(2, &[]);
        a.name = "Load_Test".into();
        refused(a, "not a Kubernetes name");
        let mut a = args(2, &[]);
        a.target = "host:7000\" evil".into();
        refused(a, "cannot go into the manifest");
        let mut a = args(2, &[]);
        a.start_at = StartAt::at(SystemTime::now() - Duration::from_secs(5));
        refused(a, "has passed");
        // A quoted option stays one word in the pod's shell.
        let text = render(&args(2, &["--expect-body", "Hello, World!"])).unwrap();
        assert!(text.contains("--expect-body 'Hello, World!'"), "{text}");
    }
}
