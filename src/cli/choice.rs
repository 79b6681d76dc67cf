//! Options whose value is one of a domain enum's names (`--workload echo`, `--format json`):
//! one generic value parser, so the enums below the front end stay free of clap.
//!
//! A domain enum gives its names (`name()`), every value (`ALL`) and a `FromStr`; [`Choice`]
//! adds what `--help` says of each value, and [`choice`] builds the parser: clap checks the name
//! against the list (its error names the accepted values, `--help` lists them as
//! `[possible values: ...]` or, with the values' help, under "Possible values:"), then the
//! enum's own `FromStr` makes the value.

use std::str::FromStr;

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};

use crate::compare::Format;
use crate::metrics::syscalls::Accounting;
use crate::models::{Poller, UringListener};
use crate::protocol::Workload;

/// A domain enum offered as an option's value.
pub trait Choice: Copy + FromStr + Send + Sync + 'static {
    /// Every value, in the order `--help` lists them.
    fn all() -> &'static [Self];
    /// The name the command line takes.
    fn name(self) -> &'static str;
    /// The value's line under "Possible values:" in `--help`; none for a plain list.
    fn help(self) -> Option<&'static str> {
        None
    }
}

/// The value parser of an option that takes one of `T`'s names.
pub fn choice<T: Choice>() -> impl TypedValueParser<Value = T> {
    let values = T::all().iter().map(|v| {
        let value = PossibleValue::new(v.name());
        match v.help() {
            Some(help) => value.help(help),
            None => value,
        }
    });
    // The names were checked against the list: FromStr of each is the enum's own promise.
    PossibleValuesParser::new(values).try_map(|name| {
        T::from_str(&name).map_err(|_| format!("`{name}` is listed but does not parse"))
    })
}

impl Choice for Poller {
    fn all() -> &'static [Self] {
        Poller::ALL
    }
    fn name(self) -> &'static str {
        Poller::name(self)
    }
    fn help(self) -> Option<&'static str> {
        Some(Poller::help(self))
    }
}

impl Choice for UringListener {
    fn all() -> &'static [Self] {
        UringListener::ALL
    }
    fn name(self) -> &'static str {
        UringListener::name(self)
    }
    fn help(self) -> Option<&'static str> {
        Some(UringListener::help(self))
    }
}

impl Choice for Workload {
    fn all() -> &'static [Self] {
        Workload::ALL
    }
    fn name(self) -> &'static str {
        Workload::name(self)
    }
    fn help(self) -> Option<&'static str> {
        Some(match self {
            Workload::Echo => "TCP echo: every byte received is sent back",
            Workload::Http => {
                "HTTP/1.1 keep-alive, `GET /plaintext` answered like the TechEmpower plaintext test"
            }
            Workload::Resp => {
                "Redis's protocol: a GET of a preset key whose value is --payload bytes (PING with \
                 --payload 0)"
            }
            Workload::Memcache => {
                "memcached's text protocol: a get of a preset key whose value is --payload bytes"
            }
        })
    }
}

impl Choice for Accounting {
    fn all() -> &'static [Self] {
        Accounting::ALL
    }
    fn name(self) -> &'static str {
        Accounting::name(self)
    }
    fn help(self) -> Option<&'static str> {
        Some(match self {
            Accounting::Separate => {
                "Count in short passes of their own (the server, then the load generator; 1 s \
                 each after 0.5 s of warm-up); timings come from the timed pass"
            }
            Accounting::Same => "Count in the timed pass itself",
            Accounting::Off => "Do not count",
        })
    }
}

impl Choice for Format {
    fn all() -> &'static [Self] {
        Format::ALL
    }
    fn name(self) -> &'static str {
        Format::name(self)
    }
}

#[cfg(test)]
mod tests {
    use clap::{Arg, Command};

    use super::*;

    fn parse<T: Choice>(value: &str) -> Result<T, clap::Error> {
        Command::new("t")
            .arg(Arg::new("x").long("x").value_parser(choice::<T>()))
            .try_get_matches_from(["t", "--x", value])
            .map(|m| *m.get_one::<T>("x").expect("a value"))
    }

    #[test]
    fn every_name_parses_to_its_value_and_others_name_the_choices() {
        for &w in Workload::ALL {
            assert_eq!(parse::<Workload>(w.name()).unwrap(), w);
        }
        for &f in Format::ALL {
            assert_eq!(parse::<Format>(f.name()).unwrap(), f);
        }
        for &a in Accounting::ALL {
            assert_eq!(parse::<Accounting>(a.name()).unwrap(), a);
        }
        let e = parse::<Format>("x").unwrap_err().to_string();
        assert!(e.contains("[possible values: text, markdown, json]"), "{e}");
        let e = parse::<Workload>("ECHO").unwrap_err().to_string();
        assert!(
            e.contains("[possible values: echo, http, resp, memcache]"),
            "{e}"
        );
    }
}
