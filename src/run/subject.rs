//! What one run of `bench run` measures: a model (the project's own exhibit, run as a
//! `bench serve` child) or an outside server (`--server NAME=COMMAND`, `outside.rs`).

use std::fmt;

use crate::models::Model;
use crate::units::CpuList;

/// The placeholders an outside server's command may hold.
const PLACEHOLDERS: [&str; 3] = ["{port}", "{threads}", "{cpus}"];

/// `--server NAME=COMMAND` as given, its command split into words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutsideServer {
    pub name: String,
    /// As typed, for the result file and messages.
    pub command: String,
    words: Vec<String>,
}

impl OutsideServer {
    /// Parses `NAME=COMMAND`: NAME of letters, digits, `-`, `_` and `.`, not a model's;
    /// COMMAND split as a shell splits words (quotes respected; no variables, globs or
    /// pipes), and holding `{port}`.
    pub fn parse(spec: &str) -> Result<OutsideServer, String> {
        let Some((name, command)) = spec.split_once('=') else {
            return Err(format!(
                "`{spec}` is not NAME=COMMAND: write it like redis='redis-server --port {{port}}'"
            ));
        };
        let name = name.trim();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(format!(
                "the server's name `{name}` is not a name: use letters, digits, -, _ and ."
            ));
        }
        if crate::models::find(name).is_ok() {
            return Err(format!(
                "the server's name `{name}` is a model's: name it otherwise (e.g. my-{name}), so \
                 that the results can tell them apart"
            ));
        }
        let words = shlex::split(command).ok_or_else(|| {
            format!("the command of `{name}` has an unclosed quote or a trailing backslash")
        })?;
        if words.is_empty() {
            return Err(format!("the server `{name}` has no command"));
        }
        if !words.iter().any(|w| w.contains("{port}")) {
            return Err(format!(
                "the command of `{name}` does not say where to listen: put {{port}} where it \
                 takes the port (bench picks a free one on 127.0.0.1), e.g. redis-server --port \
                 {{port}}"
            ));
        }
        Ok(OutsideServer {
            name: name.to_string(),
            command: command.trim().to_string(),
            words,
        })
    }

    /// The command's words with `{port}`, `{threads}` and `{cpus}` filled in.
    pub fn words(&self, port: u16, threads: usize, cpus: &CpuList) -> Vec<String> {
        let values = [port.to_string(), threads.to_string(), cpus.to_string()];
        self.words
            .iter()
            .map(|w| {
                PLACEHOLDERS
                    .iter()
                    .zip(&values)
                    .fold(w.clone(), |w, (p, v)| w.replace(p, v))
            })
            .collect()
    }

    /// Whether the command takes `{threads}` (then the run records that thread count).
    pub fn takes_threads(&self) -> bool {
        self.words.iter().any(|w| w.contains("{threads}"))
    }
}

impl std::str::FromStr for OutsideServer {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OutsideServer::parse(s)
    }
}

/// One model or one outside server.
#[derive(Clone, Copy, Debug)]
pub enum Subject<'a> {
    Model(&'static Model),
    Server(&'a OutsideServer),
}

impl Subject<'_> {
    pub fn name(&self) -> &str {
        match self {
            Subject::Model(m) => m.name,
            Subject::Server(s) => &s.name,
        }
    }
}

impl fmt::Display for Subject<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_splits_as_a_shell_would_and_fills_its_placeholders() {
        let s = OutsideServer::parse(
            "redis=redis-server --port {port} --save \"\" --io-threads {threads} --x 'a b'",
        )
        .unwrap();
        assert_eq!(s.name, "redis");
        assert!(s.takes_threads());
        assert_eq!(
            s.words(7000, 2, &CpuList::new(vec![0, 1])),
            [
                "redis-server",
                "--port",
                "7000",
                "--save",
                "",
                "--io-threads",
                "2",
                "--x",
                "a b"
            ]
        );
    }

    #[test]
    fn bad_specs_are_refused_with_the_fix() {
        for (spec, says) in [
            ("redis-server --port 1", "not NAME=COMMAND"),
            ("reactor=x {port}", "is a model's"),
            ("a b=x {port}", "is not a name"),
            ("r=", "has no command"),
            ("r=x 'unclosed {port}", "unclosed quote"),
            ("r=redis-server", "put {port}"),
        ] {
            let why = OutsideServer::parse(spec).unwrap_err();
            assert!(why.contains(says), "{spec}: {why}");
        }
    }
}
