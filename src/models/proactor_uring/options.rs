//! The experiment options of `proactor-uring` (`--uring-*`) and the record of how its rings
//! were set up: plain data, shared by the command line, `bench serve`'s ready line and the
//! result file. It imports nothing of the models, so the contract can name it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The experiment options of `proactor-uring` (`--uring-*`), all off by default; recorded in
/// the result's scenario when given.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UringOptions {
    /// `--uring-sqpoll`: a kernel thread polls the submission queue (no `DEFER_TASKRUN`).
    pub sqpoll: bool,
    /// `--uring-zc`: SEND_ZC for sends of at least [`ZC_MIN_BYTES`].
    pub zc: bool,
    /// `--uring-listener`.
    pub listener: UringListener,
}

/// Sends at least this long use SEND_ZC under `--uring-zc`: below a few KiB, pinning pages and
/// the extra notification cost more than the copy they save.
pub const ZC_MIN_BYTES: usize = 3 * 1024;

/// How the rings get their connections.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UringListener {
    /// Each ring accepts on its own SO_REUSEPORT listener; the kernel spreads connections by
    /// hash.
    #[default]
    PerThread,
    /// Every ring arms a multishot accept on one shared listener.
    Shared,
}

impl UringListener {
    /// Every choice, in the order `--help` lists them.
    pub const ALL: &'static [UringListener] = &[UringListener::PerThread, UringListener::Shared];

    pub fn name(self) -> &'static str {
        match self {
            UringListener::PerThread => "per-thread",
            UringListener::Shared => "shared",
        }
    }

    /// One line for `--help`.
    pub fn help(self) -> &'static str {
        match self {
            UringListener::PerThread => {
                "Each ring accepts on its own SO_REUSEPORT listener; the kernel spreads \
                 connections by hash"
            }
            UringListener::Shared => "Every ring arms a multishot accept on one shared listener",
        }
    }
}

impl fmt::Display for UringListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for UringListener {
    type Err = String;

    /// A choice by its name; the error names the choices.
    fn from_str(s: &str) -> Result<Self, String> {
        UringListener::ALL
            .iter()
            .copied()
            .find(|l| l.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = UringListener::ALL.iter().map(|l| l.name()).collect();
                format!(
                    "invalid value '{s}' [possible values: {}]",
                    names.join(", ")
                )
            })
    }
}

/// How the rings were set up: what the kernel accepted. In `bench serve`'s ready line and
/// counters, and in the result.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct UringSetup {
    /// The `IORING_SETUP_*` flags the rings run with (e.g. `SINGLE_ISSUER`, `DEFER_TASKRUN`).
    pub setup_flags: Vec<String>,
    /// Flag sets tried first and refused by the kernel, each as `A|B`.
    pub refused: Vec<String>,
    pub sqpoll: bool,
    /// SEND_ZC for sends of at least `zc_min_bytes`.
    pub send_zc: bool,
    pub zc_min_bytes: usize,
    pub listener: UringListener,
    /// Connections are direct descriptors in each ring's registered file table.
    pub registered_files: bool,
    /// Provided buffers per ring, and their size.
    pub buffers: u32,
    pub buffer_bytes: u32,
    /// How connections receive: a capped multishot recv, or single-shot where the kernel has no
    /// cap (absent in results made before it was recorded).
    #[serde(default)]
    pub recv: String,
}

#[cfg(test)]
mod tests {
    use super::UringListener;

    #[test]
    fn listener_names_parse_back_and_a_bad_one_names_the_choices() {
        for &l in UringListener::ALL {
            assert_eq!(l.name().parse::<UringListener>(), Ok(l));
            assert_eq!(l.to_string(), l.name());
        }
        let e = "both".parse::<UringListener>().unwrap_err();
        assert!(e.contains("per-thread, shared"), "{e}");
    }
}
